/**
 * Which production traffic a policy's mirror copies: the primary service of the managed route. Pure: reads a
 * VirtualService as listed, never the API server.
 */
import { locateMirrors, type VirtualService } from '../mesh/index.js';
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
 * The primary service of a policy: spec.production when set, else the primary destination of the first
 * route the policy manages in `vs` (undefined when the VirtualService is unknown or has no such route).
 */
export function productionService(
  policy: MirrorPolicy,
  vs: VirtualService | undefined,
): ServiceRef | undefined {
  if (policy.production !== undefined) {
    return { namespace: policy.production.namespace, name: policy.production.service };
  }
  if (vs === undefined) return undefined;
  const located = locateMirrors(vs, {
    ...(policy.virtualService.route !== undefined && { route: policy.virtualService.route }),
    host: policy.target.host,
    namespace: policy.virtualService.namespace,
    ...(policy.target.subset !== undefined && { subset: policy.target.subset }),
  });
  if (!Array.isArray(located)) return undefined;
  const first = located[0];
  if (first === undefined) return undefined;
  const spec = vs.spec;
  const http = isRecord(spec) && Array.isArray(spec.http) ? (spec.http as unknown[]) : [];
  return primaryDestination(http[first.routeIndex], vs.metadata.namespace);
}

/** What a policy asks the signal source about production: its primary service and its override, if any. */
export function productionRequest(policy: MirrorPolicy, vs: VirtualService | undefined): ProductionRequest {
  const service = productionService(policy, vs);
  const query = policy.queries.productionRate;
  return {
    ...(service !== undefined && { service }),
    ...(query !== undefined && { query }),
  };
}
