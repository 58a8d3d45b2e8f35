/**
 * The global brake: for every managed VirtualService, set each policy's mirror to its minPercent and pause
 * the automation, until released.
 *
 * Mechanism: the brake sets the pause annotation every writer already obeys (`mirror-autoscaler.io/paused:
 * "true"`) and a marker annotation, `mirror-autoscaler.io/brake`, that records when and what the pause
 * annotation held before. Release acts only where the marker is, and puts the pause annotation back as it
 * was: a VirtualService a person paused by hand stays paused. Both are one JSON Patch per VirtualService,
 * guarded by its resourceVersion (and, for release, by the marker's exact value), so a brake never overwrites
 * a concurrent edit; a conflict is re-read and tried again, a bounded number of times.
 *
 * Pure planning (planBrake, planRelease) is separate from the loop that reads and writes (brakeVirtualService,
 * releaseVirtualService), so the rules are tested without a server.
 */
import type { MirrorPolicy } from '../policy/types.js';
import { ConflictError, MeshError } from './errors.js';
import { buildRoutePatch, type Location, locateTarget, type RouteKind } from './route.js';
import {
  BRAKE_ANNOTATION,
  currentPercent,
  escapePointerToken,
  flaggerOwner,
  type JsonPatchOp,
  PAUSED_ANNOTATION,
  roundPercent,
  type VirtualService,
} from './virtualservice.js';

/** Attempts per VirtualService when concurrent edits keep changing it. */
export const MAX_BRAKE_ATTEMPTS = 3;

/** What the brake annotation records. */
export interface BrakeMarker {
  /** When the brake was applied (ISO 8601). */
  readonly at: string;
  /** The pause annotation's value before the brake, or null when there was none; release restores it. */
  readonly pausedBefore: string | null;
  /** Mirror percentage per policy before the brake, for the record (release does not restore it). */
  readonly from: Readonly<Record<string, number>>;
}

/** Reads the brake marker of a VirtualService: undefined when absent, a MeshError when unreadable. */
export function readBrakeMarker(vs: VirtualService): BrakeMarker | undefined | MeshError {
  const raw = vs.metadata.annotations?.[BRAKE_ANNOTATION];
  if (raw === undefined) return undefined;
  const id = `${vs.metadata.namespace}/${vs.metadata.name}`;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    value = undefined;
  }
  const v = value as Partial<BrakeMarker> | undefined;
  if (
    typeof v !== 'object' ||
    v === null ||
    typeof v.at !== 'string' ||
    !(v.pausedBefore === null || typeof v.pausedBefore === 'string')
  ) {
    return new MeshError(
      'InvalidObject',
      id,
      `VirtualService ${id}: annotation ${BRAKE_ANNOTATION}: must be JSON like {"at":"…","pausedBefore":null,"from":{}} (got ${JSON.stringify(raw.slice(0, 60))})`,
    );
  }
  const from = typeof v.from === 'object' && v.from !== null ? v.from : {};
  return { at: v.at, pausedBefore: v.pausedBefore, from };
}

/** What the brake (or its release) did, or would do, to one VirtualService. */
export type BrakeResultKind =
  /** brake: percentages set to minPercent and paused (or, in a dry run, would be). */
  | 'braked'
  /** brake: already braked and at minPercent; nothing written. */
  | 'alreadyBraked'
  /** release: the brake's pause removed (or, in a dry run, would be). */
  | 'released'
  /** release: no brake marker; left as it is. */
  | 'notBraked'
  /** left alone on purpose (owned by a Flagger Canary). */
  | 'skipped'
  | 'failed';

export interface BrakeResult {
  /** `namespace/name` of the route object. */
  readonly virtualService: string;
  /** Its kind. */
  readonly routeKind: RouteKind;
  readonly policies: readonly string[];
  readonly kind: BrakeResultKind;
  /** The highest mirror percentage of the managed mirrors before, when it could be read. */
  readonly from: number | null;
  /** The highest after (or, in a dry run, what it would be). */
  readonly to: number | null;
  /** One sentence for the operator: what was done, or why not. */
  readonly detail: string;
  readonly dryRun: boolean;
  /** The object as last read or written, for Events. */
  readonly object?: VirtualService;
}

/** The reads and the guarded write the brake needs; KubernetesRouteStore provides them. */
export interface BrakeStore {
  get(namespace: string, name: string, kind?: RouteKind): Promise<VirtualService>;
  patchObject(vs: VirtualService, ops: readonly JsonPatchOp[]): Promise<VirtualService>;
}

/** A plan for one VirtualService: the patch to send (undefined: nothing to write) and what it means. */
export interface BrakePlan {
  readonly ops: JsonPatchOp[] | undefined;
  readonly kind: BrakeResultKind;
  readonly from: number | null;
  readonly to: number | null;
  readonly detail: string;
}

function pct(p: number | null): string {
  return p === null ? '?' : `${p}%`;
}

/**
 * Plans the brake of one VirtualService managed by `policies`: every mirror they manage to its policy's
 * minPercent (the lowest, where two policies share a mirror), the pause annotation "true" and the marker,
 * in one patch guarded by the resourceVersion. Already braked and at minPercent: nothing to write. A
 * VirtualService owned by a Flagger Canary is skipped (Flagger rewrites its routes). A mirror that cannot
 * be located fails the plan: nothing is written to an object we cannot read safely.
 * @param now epoch milliseconds, recorded in the marker.
 */
export function planBrake(vs: VirtualService, policies: readonly MirrorPolicy[], now: number): BrakePlan {
  const owner = flaggerOwner(vs);
  if (owner !== undefined) {
    return {
      ops: undefined,
      kind: 'skipped',
      from: null,
      to: null,
      detail: `owned by Flagger Canary ${owner}; left to Flagger`,
    };
  }
  const targets = new Map<string, { location: Location; percent: number }>();
  const from: Record<string, number> = {};
  for (const policy of policies) {
    const located = locateTarget(vs, policy.route, policy.target);
    if (located instanceof MeshError) {
      return {
        ops: undefined,
        kind: 'failed',
        from: null,
        to: null,
        detail: `policy ${policy.name}: ${located.message}`,
      };
    }
    from[policy.name] = currentPercent(located);
    const min = roundPercent(policy.bounds.minPercent);
    for (const l of located) {
      const seen = targets.get(l.path);
      if (seen === undefined || min < seen.percent) targets.set(l.path, { location: l, percent: min });
    }
  }
  const all = [...targets.values()];
  const before = Math.max(...all.map((t) => t.location.percent));
  const after = Math.max(...all.map((t) => t.percent));
  const names = policies.map((p) => p.name).join(', ');
  const marker = readBrakeMarker(vs);
  if (marker instanceof MeshError) {
    return { ops: undefined, kind: 'failed', from: before, to: null, detail: marker.message };
  }
  const paused = vs.metadata.annotations?.[PAUSED_ANNOTATION];
  const atMin = all.every((t) => t.location.percent === t.percent);
  if (marker !== undefined && paused === 'true' && atMin) {
    return {
      ops: undefined,
      kind: 'alreadyBraked',
      from: before,
      to: before,
      detail: `already braked since ${marker.at}: mirror at ${pct(before)} (${names})`,
    };
  }
  // A brake applied again over an older one keeps the first marker: it knows what the pause was before.
  const annotations: Record<string, string> = { [PAUSED_ANNOTATION]: 'true' };
  if (marker === undefined) {
    const record: BrakeMarker = { at: new Date(now).toISOString(), pausedBefore: paused ?? null, from };
    annotations[BRAKE_ANNOTATION] = JSON.stringify(record);
  }
  // One group per target percentage; the first carries the resourceVersion test and the annotations.
  const byPercent = new Map<number, Location[]>();
  for (const t of all) byPercent.set(t.percent, [...(byPercent.get(t.percent) ?? []), t.location]);
  const ops: JsonPatchOp[] = [];
  let first = true;
  for (const [percent, locations] of byPercent) {
    const part = buildRoutePatch(vs, locations, percent, first ? annotations : {});
    ops.push(...(first ? part : part.slice(1)));
    first = false;
  }
  return {
    ops,
    kind: 'braked',
    from: before,
    to: after,
    detail: `mirror ${pct(before)} -> ${pct(after)} (${names}); automation paused until brake --release`,
  };
}

/**
 * Plans the release of one VirtualService: where the brake marker is, remove it and put the pause
 * annotation back as it was before the brake (removed, or its old value); the patch tests the marker, so a
 * second brake in between is not released by mistake. Without a marker: nothing to write.
 */
export function planRelease(vs: VirtualService): BrakePlan {
  const marker = readBrakeMarker(vs);
  if (marker instanceof MeshError) {
    return { ops: undefined, kind: 'failed', from: null, to: null, detail: marker.message };
  }
  const paused = vs.metadata.annotations?.[PAUSED_ANNOTATION];
  if (marker === undefined) {
    return {
      ops: undefined,
      kind: 'notBraked',
      from: null,
      to: null,
      detail:
        paused === undefined
          ? 'not braked; left as it is'
          : `not braked (paused "${paused}" by hand); left as it is`,
    };
  }
  const key = (k: string) => `/metadata/annotations/${escapePointerToken(k)}`;
  const ops: JsonPatchOp[] = [
    { op: 'test', path: '/metadata/resourceVersion', value: vs.metadata.resourceVersion },
    { op: 'test', path: key(BRAKE_ANNOTATION), value: vs.metadata.annotations?.[BRAKE_ANNOTATION] },
    { op: 'remove', path: key(BRAKE_ANNOTATION) },
  ];
  if (marker.pausedBefore === null) {
    if (paused !== undefined) ops.push({ op: 'remove', path: key(PAUSED_ANNOTATION) });
  } else {
    ops.push({ op: 'add', path: key(PAUSED_ANNOTATION), value: marker.pausedBefore });
  }
  return {
    ops,
    kind: 'released',
    from: null,
    to: null,
    detail:
      marker.pausedBefore === null
        ? `brake of ${marker.at} released; automation resumes at the next cycle`
        : `brake of ${marker.at} released; still paused ("${marker.pausedBefore}") as it was before the brake`,
  };
}

/** The route object to brake or release; kind defaults to VirtualService. */
export interface BrakeTarget {
  readonly namespace: string;
  readonly name: string;
  readonly kind?: RouteKind;
}

/** Options of brakeVirtualService / releaseVirtualService. */
export interface BrakeOptions {
  /** Plan and report, write nothing. */
  readonly dryRun: boolean;
  /** Epoch milliseconds. */
  readonly now: () => number;
  /** Default MAX_BRAKE_ATTEMPTS. */
  readonly maxAttempts?: number;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function apply(
  store: BrakeStore,
  { namespace, name, kind }: BrakeTarget,
  policies: readonly MirrorPolicy[],
  first: VirtualService | undefined,
  plan: (vs: VirtualService) => BrakePlan,
  options: BrakeOptions,
): Promise<BrakeResult> {
  const key = `${namespace}/${name}`;
  const names = policies.map((p) => p.name);
  const result = (
    p: Omit<BrakeResult, 'virtualService' | 'routeKind' | 'policies' | 'dryRun'>,
  ): BrakeResult => ({
    virtualService: key,
    routeKind: kind ?? 'VirtualService',
    policies: names,
    dryRun: options.dryRun,
    ...p,
  });
  const attempts = options.maxAttempts ?? MAX_BRAKE_ATTEMPTS;
  let vs = first;
  for (let attempt = 1; ; attempt++) {
    if (vs === undefined) {
      try {
        vs = await store.get(namespace, name, kind);
      } catch (err) {
        return result({ kind: 'failed', from: null, to: null, detail: message(err) });
      }
    }
    const p = plan(vs);
    if (p.ops === undefined || options.dryRun) {
      return result({ kind: p.kind, from: p.from, to: p.to, detail: p.detail, object: vs });
    }
    try {
      const written = await store.patchObject(vs, p.ops);
      return result({ kind: p.kind, from: p.from, to: p.to, detail: p.detail, object: written });
    } catch (err) {
      if (err instanceof ConflictError && attempt < attempts) {
        // Someone edited it since our read: read again and plan again, never overwrite their change.
        vs = undefined;
        continue;
      }
      return result({ kind: 'failed', from: p.from, to: null, detail: message(err), object: vs });
    }
  }
}

/**
 * Brakes one VirtualService (see planBrake), re-reading and re-planning after a conflict. Never rejects.
 * @param read the object as already read, if any (a LIST of its namespace); read with GET otherwise.
 */
export function brakeVirtualService(
  store: BrakeStore,
  target: BrakeTarget,
  policies: readonly MirrorPolicy[],
  options: BrakeOptions,
  read?: VirtualService,
): Promise<BrakeResult> {
  return apply(store, target, policies, read, (vs) => planBrake(vs, policies, options.now()), options);
}

/** Releases the brake of one VirtualService (see planRelease), like brakeVirtualService. Never rejects. */
export function releaseVirtualService(
  store: BrakeStore,
  target: BrakeTarget,
  policies: readonly MirrorPolicy[],
  options: BrakeOptions,
  read?: VirtualService,
): Promise<BrakeResult> {
  return apply(store, target, policies, read, planRelease, options);
}
