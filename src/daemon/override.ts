/**
 * Noticing that someone else changed back the percentage this controller wrote (a GitOps sync re-applying
 * its manifest, a person, another controller), and backing off from the fight. Pure: time and memory are
 * passed in.
 *
 * The percentage the controller left in effect is in its state (`ControllerState.percent`, in memory and
 * in the route's state annotation). A route that shows another value was changed by someone else. Who did
 * it is read from `metadata.managedFields`: the newest entry that owns `spec` (Update and Apply operations
 * both record it). A change by this controller's own field manager (the brake, another replica) is not a
 * fight.
 *
 * A fight stops writes to the route for a back-off that doubles with each override in a row (5 minutes,
 * or two intervals when longer, up to an hour); an hour without override forgets it. A cut for a breached
 * guardrail still goes through: a fight never keeps more mirroring on an overloaded target.
 */
import type { ControllerState } from '../core/types.js';
import type { RouteObject } from '../mesh/virtualservice.js';

/** The field manager of this controller's writes (KubernetesRouteStore's default). */
export const OWN_FIELD_MANAGER = 'mirror-autoscaler';
/** First back-off, in seconds (or two intervals, when longer). */
export const OVERRIDE_BACKOFF_SECONDS = 5 * 60;
/** Longest back-off, in seconds. */
export const MAX_OVERRIDE_BACKOFF_SECONDS = 60 * 60;
/** Seconds without an override after which the count starts again. */
export const OVERRIDE_FORGET_SECONDS = 60 * 60;

/** What the controller remembers of a fight over one policy's route. */
export interface OverrideMemory {
  /** Overrides in a row. */
  readonly count: number;
  /** When (epoch ms) the last override was noticed. */
  readonly at: number;
  /** No write before this instant (epoch ms), except a cut for a breach. */
  readonly until: number;
  readonly manager: string;
  /** The percentage found on the route. */
  readonly found: number;
  /** The percentage this controller had left. */
  readonly ours: number;
  /** `at` of the controller state the override was measured against: a later write of ours starts a new round. */
  readonly stateAt: number;
}

/**
 * The manager that last changed the route's spec, from managedFields: the newest entry owning `f:spec`.
 * @returns undefined when managedFields say nothing about the spec.
 */
export function specManager(obj: RouteObject): string | undefined {
  const entries = obj.metadata.managedFields;
  if (!Array.isArray(entries)) return undefined;
  let best: { manager: string; time: string } | undefined;
  for (const e of entries as unknown[]) {
    if (typeof e !== 'object' || e === null) continue;
    const { manager, time, fieldsV1 } = e as Record<string, unknown>;
    if (typeof manager !== 'string' || typeof fieldsV1 !== 'object' || fieldsV1 === null) continue;
    if (!Object.hasOwn(fieldsV1, 'f:spec')) continue;
    const t = typeof time === 'string' ? time : '';
    if (best === undefined || t >= best.time) best = { manager, time: t };
  }
  return best?.manager;
}

/** An override noticed this cycle: someone else changed the percentage this controller left. */
export interface Override {
  readonly manager: string;
  readonly found: number;
  readonly ours: number;
}

/**
 * Whether the route shows a percentage other than the one the controller left, changed by someone else.
 * @param current the percentage on the route now
 * @param state the controller's state for this policy (undefined: it never wrote, nothing to fight over)
 */
export function findOverride(
  obj: RouteObject,
  current: number,
  state: ControllerState | undefined,
  ownManager: string = OWN_FIELD_MANAGER,
): Override | undefined {
  if (state === undefined || Math.abs(current - state.percent) < 1e-6) return undefined;
  const manager = specManager(obj) ?? 'unknown';
  if (manager === ownManager) return undefined;
  return { manager, found: current, ours: state.percent };
}

/** The back-off after `count` overrides in a row, in seconds. */
export function overrideBackoffSeconds(count: number, intervalSeconds: number): number {
  const base = Math.max(OVERRIDE_BACKOFF_SECONDS, 2 * intervalSeconds);
  return Math.min(MAX_OVERRIDE_BACKOFF_SECONDS, base * 2 ** Math.max(0, count - 1));
}

/**
 * The fight memory after this cycle's look at the route, and whether the override is new (to be counted
 * and reported once). An override already known (measured against the same state) keeps its memory.
 */
export function noteOverride(
  override: Override,
  state: ControllerState,
  memory: OverrideMemory | undefined,
  now: number,
  intervalSeconds: number,
): { memory: OverrideMemory; fresh: boolean } {
  if (memory !== undefined && memory.stateAt === state.at) return { memory, fresh: false };
  const inARow = memory !== undefined && now - memory.at < OVERRIDE_FORGET_SECONDS * 1000;
  const count = inARow ? memory.count + 1 : 1;
  return {
    memory: {
      count,
      at: now,
      until: now + overrideBackoffSeconds(count, intervalSeconds) * 1000,
      manager: override.manager,
      found: override.found,
      ours: override.ours,
      stateAt: state.at,
    },
    fresh: true,
  };
}
