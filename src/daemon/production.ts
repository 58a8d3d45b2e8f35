/**
 * Which production traffic a policy's mirror copies: the primary service of the managed route. Pure: reads a
 * route object as listed, never the API server.
 */
import { locateTarget, locationRuleIndex, type RouteObject } from '../mesh/index.js';
import type { MirrorPolicy } from '../policy/types.js';
import type { ServiceRef } from '../signals/promql.js';
import type { ProductionRequest } from '../signals/types.js';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The Kubernetes service a route destination host names: `name` (resolved against the VirtualService's
 * namespace, as Istio does), `name.namespace`, or `name.namespace.svc[.cluster domain]`. Any other host
 * (an external name, a ServiceEntry) is no Kubernetes service: undefined.
 */
export function serviceOfHost(host: string, vsNamespace: string): ServiceRef | undefined {
  const labels = host.trim().toLowerCase().replace(/\.$/, '').split('.');
  const [name, namespace, svc] = labels;
  if (name === undefined || name === '' || name === '*') return undefined;
  if (labels.length === 1) return { namespace: vsNamespace, name };
  if (namespace === undefined || namespace === '') return undefined;
  if (labels.length === 2 || svc === 'svc') return { namespace, name };
  return undefined;
}

/**
 * The primary destination of one http route: the `route[]` entry with the largest weight (the first on
 * ties). A lone destination takes all traffic whatever its weight; with several, an unset weight is 0.
 */
export function primaryDestination(route: unknown, vsNamespace: string): ServiceRef | undefined {
  if (!isRecord(route) || !Array.isArray(route.route)) return undefined;
  const entries = route.route as unknown[];
  let best: { host: string; weight: number } | undefined;
  for (const entry of entries) {
    if (!isRecord(entry) || !isRecord(entry.destination)) continue;
    const host = entry.destination.host;
    if (typeof host !== 'string') continue;
    const raw = entry.weight;
    const weight = typeof raw === 'number' && Number.isFinite(raw) ? raw : entries.length === 1 ? 100 : 0;
    if (best === undefined || weight > best.weight) best = { host, weight };
  }
  return best === undefined ? undefined : serviceOfHost(best.host, vsNamespace);
}

/**
 * The primary backend of one Gateway API rule: the Service `backendRefs[]` entry with the largest weight
 * (the first on ties). An unset weight is 1, the Gateway API default; a weight of 0 takes no traffic.
 */
export function primaryBackend(rule: unknown, routeNamespace: string): ServiceRef | undefined {
  if (!isRecord(rule) || !Array.isArray(rule.backendRefs)) return undefined;
  let best: { ref: ServiceRef; weight: number } | undefined;
  for (const ref of rule.backendRefs as unknown[]) {
    if (!isRecord(ref) || typeof ref.name !== 'string' || ref.name === '') continue;
    const group = ref.group ?? '';
    const kind = ref.kind ?? 'Service';
    if ((group !== '' && group !== 'core') || kind !== 'Service') continue;
    const raw = ref.weight;
    const weight = typeof raw === 'number' && Number.isFinite(raw) ? raw : 1;
    if (weight <= 0) continue;
    const namespace = typeof ref.namespace === 'string' ? ref.namespace : routeNamespace;
    if (best === undefined || weight > best.weight) best = { ref: { namespace, name: ref.name }, weight };
  }
  return best?.ref;
}

/**
 * The primary service of a policy: spec.production when set, else the primary destination (VirtualService)
 * or backend (Gateway API rule) of the first route or rule the policy manages in `obj` (undefined when the
 * object is unknown or has no such route).
 */
export function productionService(
  policy: MirrorPolicy,
  obj: RouteObject | undefined,
): ServiceRef | undefined {
  if (policy.production !== undefined) {
    return { namespace: policy.production.namespace, name: policy.production.service };
  }
  if (obj === undefined) return undefined;
  const located = locateTarget(obj, policy.route, policy.target);
  if (!Array.isArray(located)) return undefined;
  const first = located[0];
  if (first === undefined) return undefined;
  const spec = obj.spec;
  const list = policy.route.kind === 'VirtualService' ? 'http' : 'rules';
  const entries = isRecord(spec) && Array.isArray(spec[list]) ? (spec[list] as unknown[]) : [];
  const entry = entries[locationRuleIndex(first)];
  return policy.route.kind === 'VirtualService'
    ? primaryDestination(entry, obj.metadata.namespace)
    : primaryBackend(entry, obj.metadata.namespace);
}

/** What a policy asks the signal source about production: its primary service and its override, if any. */
export function productionRequest(policy: MirrorPolicy, vs: RouteObject | undefined): ProductionRequest {
  const service = productionService(policy, vs);
  const query = policy.queries.productionRate;
  return {
    ...(service !== undefined && { service }),
    ...(query !== undefined && { query }),
  };
}
