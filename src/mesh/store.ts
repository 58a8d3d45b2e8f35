/**
 * The RouteStore port: read VirtualServices, write a mirror percentage. The read–decide–write retry loop
 * that uses it lives in the reconcile cycle (src/daemon/cycle.ts).
 */
import type { MirrorLocation, VirtualService } from './virtualservice.js';

/** Where VirtualServices are read from and written to. `KubernetesRouteStore` is the real one. */
export interface RouteStore {
  /**
   * Every VirtualService in the given namespaces (one request per namespace, or one cluster-wide request
   * when `namespaces` is undefined), keyed `namespace/name`.
   */
  list(namespaces?: readonly string[]): Promise<Map<string, VirtualService>>;
  /** One VirtualService; rejects with NotFoundError when it does not exist. */
  get(namespace: string, name: string): Promise<VirtualService>;
  /**
   * Writes `newPercent` at `locations` (and `annotations`) with a JSON Patch guarded by the resourceVersion
   * of `vs`; rejects with ConflictError when the object changed since it was read.
   * @returns the object as stored after the write.
   */
  patchPercent(
    vs: VirtualService,
    locations: readonly MirrorLocation[],
    newPercent: number,
    annotations?: Readonly<Record<string, string>>,
  ): Promise<VirtualService>;
}
