/**
 * The RouteStore port: read route objects (VirtualServices, HTTPRoutes, GRPCRoutes), write a mirror percentage. The read–decide–write retry loop
 * that uses it lives in the reconcile cycle (src/daemon/cycle.ts).
 */
import type { Location, RouteKind, RouteRef } from './route.js';
import type { RouteObject } from './virtualservice.js';

/** Where route objects are read from and written to. `KubernetesRouteStore` is the real one. */
export interface RouteStore {
  /**
   * Every route object of a kind (default VirtualService) in the given namespaces (one request per
   * namespace, or one cluster-wide request when `namespaces` is undefined), keyed `namespace/name`.
   */
  list(namespaces?: readonly string[], kind?: RouteKind): Promise<Map<string, RouteObject>>;
  /** One route object (default a VirtualService); rejects with NotFoundError when it does not exist. */
  get(namespace: string, name: string, kind?: RouteKind): Promise<RouteObject>;
  /**
   * Writes `newPercent` at `locations` (and `annotations`) with a JSON Patch guarded by the resourceVersion
   * of `vs`; rejects with ConflictError when the object changed since it was read.
   * @returns the object as stored after the write.
   */
  patchPercent(
    vs: RouteObject,
    locations: readonly Location[],
    newPercent: number,
    annotations?: Readonly<Record<string, string>>,
  ): Promise<RouteObject>;
}

/** The route objects of one kind in one namespace, or why they could not be listed. */
export type Listed = { ok: true; m: Map<string, RouteObject> } | { ok: false; err: string };

/** Key of one LIST: a kind in a namespace (`HTTPRoute shop`). */
export function listKey(ref: Pick<RouteRef, 'kind' | 'namespace'>): string {
  return `${ref.kind} ${ref.namespace}`;
}

/**
 * One LIST per kind and namespace the refs name, sent together, each on its own: a namespace that may not
 * be read (or a kind the cluster does not serve) fails only its own entry, never the others.
 * @returns by listKey, the objects keyed `namespace/name`, or the error message.
 */
export async function listRoutes(
  store: Pick<RouteStore, 'list'>,
  refs: readonly Pick<RouteRef, 'kind' | 'namespace'>[],
): Promise<Map<string, Listed>> {
  const scopes = new Map<string, Pick<RouteRef, 'kind' | 'namespace'>>();
  for (const r of refs) scopes.set(listKey(r), r);
  const keys = [...scopes.keys()].sort();
  return new Map(
    await Promise.all(
      keys.map((key) => {
        const { kind, namespace } = scopes.get(key) as Pick<RouteRef, 'kind' | 'namespace'>;
        return store.list([namespace], kind).then(
          (m): [string, Listed] => [key, { ok: true, m }],
          (err: unknown): [string, Listed] => [
            key,
            { ok: false, err: err instanceof Error ? err.message : String(err) },
          ],
        );
      }),
    ),
  );
}
