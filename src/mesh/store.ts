/**
 * The RouteStore port (read VirtualServices, write a mirror percentage) and what is built on it alone:
 * the bounded read–decide–write retry loop and a recording store for dry runs.
 */
import { ConflictError, MeshError } from './errors.js';
import {
  buildPercentPatch,
  currentPercent,
  isNoopChange,
  type JsonPatchOp,
  type LocateOptions,
  locateMirrors,
  type MirrorLocation,
  type MirrorSelector,
  pauseState,
  roundPercent,
  type VirtualService,
} from './virtualservice.js';

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

/** What to write, decided from the object as read. */
export interface PercentDecision {
  readonly percent: number;
  readonly annotations?: Readonly<Record<string, string>>;
}

/**
 * Decides the write for one read of the object; called again after each conflict with the fresh object.
 * Return undefined to write nothing.
 */
export type DecideFn = (
  vs: VirtualService,
  locations: readonly MirrorLocation[],
  attempt: number,
) => PercentDecision | undefined | Promise<PercentDecision | undefined>;

export interface UpdateTarget {
  readonly namespace: string;
  readonly name: string;
  readonly selector: MirrorSelector;
  /** The object as already read (e.g. from a list); when absent the first attempt reads it. */
  readonly vs?: VirtualService;
}

export interface UpdateOptions {
  /** Re-reads after a conflict before giving up; default 3. */
  readonly maxRetries?: number;
  readonly locate?: LocateOptions;
}

export type UpdateResult =
  | {
      readonly outcome: 'written';
      /** The object as stored after the write. */
      readonly vs: VirtualService;
      readonly locations: readonly MirrorLocation[];
      readonly from: number;
      readonly to: number;
      readonly attempts: number;
    }
  | {
      /** The decision equals what is already there: no write was sent. */
      readonly outcome: 'unchanged';
      readonly vs: VirtualService;
      readonly locations: readonly MirrorLocation[];
      readonly percent: number;
      readonly attempts: number;
    }
  | {
      /** `decide` returned undefined. */
      readonly outcome: 'declined';
      readonly vs: VirtualService;
      readonly locations: readonly MirrorLocation[];
      readonly attempts: number;
    }
  | {
      /** The object carries the pause annotation: nothing is written. */
      readonly outcome: 'paused';
      readonly vs: VirtualService;
      readonly attempts: number;
      readonly problem?: string;
    };

export const DEFAULT_MAX_RETRIES = 3;

/**
 * Read, locate, decide, write — and on a conflict re-read, locate and decide again, at most
 * `maxRetries` more times. Never writes to a paused object, to a shape that fails to locate, or when the
 * decision changes nothing.
 *
 * Why decide again instead of re-sending the same value: the conflicting writer may have been a person
 * lowering the percentage by hand, or another replica; the decision must be made on what is there now.
 *
 * @throws MeshError when the object's shape cannot be edited; ConflictError after `maxRetries` re-reads
 *   still conflict; any other KubernetesApiError from the store as is.
 */
export async function updateWithRetry(
  store: RouteStore,
  target: UpdateTarget,
  decide: DecideFn,
  options: UpdateOptions = {},
): Promise<UpdateResult> {
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  let lastConflict: ConflictError | undefined;
  for (let attempt = 1; attempt <= maxRetries + 1; attempt++) {
    const vs =
      attempt === 1 && target.vs !== undefined ? target.vs : await store.get(target.namespace, target.name);
    const pause = pauseState(vs);
    if (pause.paused) {
      return {
        outcome: 'paused',
        vs,
        attempts: attempt,
        ...(pause.problem === undefined ? {} : { problem: pause.problem }),
      };
    }
    const located = locateMirrors(vs, target.selector, options.locate);
    if (located instanceof MeshError) throw located;
    const decision = await decide(vs, located, attempt);
    if (decision === undefined) return { outcome: 'declined', vs, locations: located, attempts: attempt };
    if (isNoopChange(vs, located, decision.percent, decision.annotations)) {
      return {
        outcome: 'unchanged',
        vs,
        locations: located,
        percent: roundPercent(decision.percent),
        attempts: attempt,
      };
    }
    try {
      const written = await store.patchPercent(vs, located, decision.percent, decision.annotations);
      return {
        outcome: 'written',
        vs: written,
        locations: located,
        from: currentPercent(located),
        to: roundPercent(decision.percent),
        attempts: attempt,
      };
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      lastConflict = err;
    }
  }
  throw new ConflictError(
    {
      verb: 'patch',
      resource: lastConflict?.resource ?? 'virtualservices.networking.istio.io',
      namespace: target.namespace,
      name: target.name,
      ...(lastConflict?.code === undefined ? {} : { code: lastConflict.code }),
      ...(lastConflict?.status === undefined ? {} : { status: lastConflict.status }),
      cause: lastConflict,
    },
    maxRetries + 1,
  );
}

/** One write a RecordingRouteStore did not send. */
export interface RecordedPatch {
  /** `namespace/name`. */
  readonly key: string;
  readonly from: number;
  readonly to: number;
  readonly annotations: Readonly<Record<string, string>>;
  /** The JSON Patch that would have been sent. */
  readonly ops: readonly JsonPatchOp[];
}

/**
 * A RouteStore for dry runs: reads through to a real store, records writes instead of sending them.
 * Dry run is this store, not a flag in the control path, so `plan` exercises the same code as `run`.
 */
export class RecordingRouteStore implements RouteStore {
  readonly patches: RecordedPatch[] = [];

  constructor(private readonly inner: Pick<RouteStore, 'get' | 'list'>) {}

  list(namespaces?: readonly string[]): Promise<Map<string, VirtualService>> {
    return this.inner.list(namespaces);
  }

  get(namespace: string, name: string): Promise<VirtualService> {
    return this.inner.get(namespace, name);
  }

  /** Records the patch and returns `vs` unchanged: nothing was written. */
  async patchPercent(
    vs: VirtualService,
    locations: readonly MirrorLocation[],
    newPercent: number,
    annotations: Readonly<Record<string, string>> = {},
  ): Promise<VirtualService> {
    const ops = buildPercentPatch(vs, locations, newPercent, annotations);
    this.patches.push({
      key: `${vs.metadata.namespace}/${vs.metadata.name}`,
      from: currentPercent(locations),
      to: roundPercent(newPercent),
      annotations: { ...annotations },
      ops,
    });
    return vs;
  }
}
