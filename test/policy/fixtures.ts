/** A valid policy whose line numbers the table tests rely on: edit with care. */
export const BASE = `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: checkout
spec:
  virtualService:
    name: checkout
    namespace: shop
  target:
    host: checkout-shadow
    workload: checkout-shadow
  bounds:
    minPercent: 1
    maxPercent: 100
  guardrails:
    cpuUtilization: 0.8
    errorRate: 0.02
    latencyP99Ms: 400
`;

/**
 * BASE with exact-text replacements applied, then `append` added at the end. Throws when a search text is
 * missing, so that a row cannot silently test the unedited base.
 */
export function edit(replacements: readonly (readonly [string, string])[], append = ''): string {
  let text = BASE;
  for (const [from, to] of replacements) {
    if (!text.includes(from)) throw new Error(`fixture edit: ${JSON.stringify(from)} not in BASE`);
    text = text.replace(from, to);
  }
  return text + append;
}
