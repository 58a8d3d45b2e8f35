/**
 * String rules for names. Namespace, workload and the other names end up inside PromQL label matchers and
 * Kubernetes API paths, so they are held to Kubernetes' own rules: a charset without quotes, braces or
 * backslashes cannot break out of a `label="..."` matcher, which is what makes query templates injection-free.
 */

/** A string rule: an ECMAScript pattern (also emitted into the JSON Schema), a length cap and its wording. */
export interface StringRule {
  readonly pattern: string;
  readonly maxLength: number;
  /** Completes the sentence "must be …". */
  readonly describe: string;
}

/** Kubernetes DNS-1123 label: namespaces, policy names, subsets. */
export const DNS1123_LABEL: StringRule = {
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  maxLength: 63,
  describe:
    'a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters',
};

/** Kubernetes DNS-1123 subdomain: object names such as VirtualServices and Deployments. */
export const DNS1123_SUBDOMAIN: StringRule = {
  pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  maxLength: 253,
  describe:
    'a DNS-1123 subdomain: dot-separated lowercase labels of letters, digits and "-", at most 253 characters',
};

/** A service host as Istio's mirror destination names it: a lowercase DNS name, short or fully qualified. */
export const HOSTNAME: StringRule = {
  pattern: '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$',
  maxLength: 253,
  describe:
    'a lowercase DNS name such as checkout-shadow or checkout-shadow.shop.svc.cluster.local (labels of at most 63 characters)',
};

/** An Istio HTTP route name: free text in Istio, restricted here to a charset that is safe in logs and metrics labels. */
export const ROUTE_NAME: StringRule = {
  pattern: '^[A-Za-z0-9]([A-Za-z0-9._:/-]*[A-Za-z0-9])?$',
  maxLength: 253,
  describe:
    'a route name of letters, digits and ". _ : / -", starting and ending with a letter or digit, at most 253 characters',
};

/** A Gateway API SectionName (rule names of HTTPRoute and GRPCRoute): a lowercase DNS-1123 subdomain. */
export const SECTION_NAME: StringRule = {
  pattern: DNS1123_SUBDOMAIN.pattern,
  maxLength: 253,
  describe:
    'a rule name (a DNS-1123 subdomain: dot-separated lowercase labels of letters, digits and "-") or the rule\'s index (an integer >= 0)',
};

/** True when `value` satisfies `rule`. */
export function matchesRule(value: string, rule: StringRule): boolean {
  return value.length <= rule.maxLength && new RegExp(rule.pattern).test(value);
}
