/**
 * The RouteStore port: read route objects (VirtualServices, HTTPRoutes, GRPCRoutes), write a mirror percentage. The read–decide–write retry loop
 * that uses it lives in the reconcile cycle (src/daemon/cycle.ts).
 */
import type { Location, RouteKind } from './route.js';
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
