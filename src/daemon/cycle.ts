import type { Logger } from 'pino';
import { type ControllerState, decide, parseControllerState } from '../core/decide.js';
import type { Action, Mode, Reason, Signal, SignalName, Signals, TimingSource } from '../core/types.js';
import { SIGNAL_NAMES } from '../core/types.js';
import {
  ConflictError,
  currentPercent,
  describeRoute,
  listKey,
  listRoutes,
  locateTarget,
  locationLabel,
  MeshError,
  type PauseSource,
  pauseState,
  type RouteKind,
  type RouteObject,
  type RouteStore,
  readStateAnnotation,
  routeId,
  stateAnnotation,
} from '../mesh/index.js';
import type { MirrorPolicy } from '../policy/types.js';
import {
  type SignalOrigin,
  type SignalReading,
  type SignalRequest,
  type SignalSource,
  signalOrigin,
} from '../signals/index.js';
import { resolveObservation } from '../signals/scrape.js';
import { findOverride, noteOverride, type OverrideMemory } from './override.js';
import { productionRequest } from './production.js';

/** Route objects written at once in one cycle; bounds the load a cycle with many changes puts on the API server. */
export const MAX_CONCURRENT_WRITES = 8;

/** How many times a write is retried after a concurrent edit before the cycle gives up on it. */
export const MAX_WRITE_ATTEMPTS = 3;

/** What one cycle did for one policy: the row of `plan`, the audit record of `run`. */
export interface PolicyOutcome {
  policy: string;
  /** Kind of the managed route object: VirtualService, HTTPRoute or GRPCRoute. */
  routeKind: RouteKind;
  /** "NAMESPACE/NAME" of the route object. */
  routeId: string;
  /**
   * Where the managed mirror sits in it: http route names (or `http[i]`) of a VirtualService; the rule's
   * name (or `rules[i]`, plus `/backendRefs[k]` for a backend's filter) of an HTTPRoute or GRPCRoute.
   */
  routes: string[];
  currentPercent: number | null;
  proposedPercent: number | null;
  action: Action | null;
  reason: Reason | null;
  message: string;
  /** Observed value per signal; null where not configured or absent. */
  signals: Record<SignalName, number | null>;
  /** Why a configured signal has no value (NoTraffic, NoSeries, QueryFailed, Stale). */
  absent: Partial<Record<SignalName, string>>;
  guardrails: MirrorPolicy['guardrails'];
  // The next three are always set by runCycle; optional so that outcomes built elsewhere stay valid.
  /** The scrape interval the decision assumed, and where it came from (policy, learned, default). */
  scrapeInterval?: { seconds: number; source: TimingSource };
  /** Production requests/s of the mirrored route; null when unknown (see productionAbsent). */
  productionRps?: number | null;
  /** Why the production rate is unknown (NoTraffic, NoSeries, QueryFailed, Stale). */
  productionAbsent?: string;
  /**
   * Which metrics the built-in signal queries read: the policy's preset (spec.signals.preset) and, for the
   * Istio presets, the reporter. Always set by runCycle.
   */
  signalSource?: SignalOrigin;
  /** FeedForward when the decision used the production rate, FeedbackOnly when not; null without a decision. */
  mode?: Mode | null;
  /**
   * Someone else changed back the percentage this controller left: who, what it found and what it had
   * left, how many times in a row, and until when (epoch ms) it does not write; `fresh` on the cycle that
   * noticed it.
   */
  override?: OverrideMemory & { readonly fresh: boolean };
  /** Why the route is paused, when it is: the pause annotation, the brake, or another controller owns it. */
  pausedBy?: PauseSource;
  /** written: patched; recorded: dry run; none: nothing to write; failed: write gave up. */
  write: 'written' | 'recorded' | 'none' | 'failed';
  error?: string;
  /** The route object as last read or written, for Events; absent when it could not be read. */
  object?: RouteObject;
}

/** Dependencies of a cycle; everything that touches the world comes in here. */
export interface CycleDeps {
  signals: SignalSource;
  routes: RouteStore;
  /** Epoch milliseconds. */
  now: () => number;
  logger: Logger;
  /**
   * Asked right before every write; false turns the write into a recorded (dry-run) one. A replica that is
   * not the leader, or whose lease may have lapsed, must not write.
   */
  canWrite?: () => boolean;
  /** In-memory controller state per policy; read from the route object's annotation when missing. */
  states: Map<string, ControllerState>;
  /** Fights over a route per policy (see override.ts); without it overrides are taken as set, as before. */
  overrides?: Map<string, OverrideMemory>;
}

/**
 * Turns policies into the batched signal requests of one cycle. `routeObject` gives, per policy, its route
 * object as listed this cycle (for the primary service of the managed route); without it only
 * spec.production names the production traffic.
 */
export function signalRequests(
  policies: readonly MirrorPolicy[],
  routeObject: (p: MirrorPolicy) => RouteObject | undefined = () => undefined,
): SignalRequest[] {
  return policies.map((p) => {
    const scrape = p.observation?.scrapeIntervalSeconds;
    return {
      key: p.name,
      namespace: p.target.namespace,
      workload: p.target.workload,
      windowSeconds: p.windowSeconds,
      guardrails: SIGNAL_NAMES.filter((s) => p.guardrails[s] !== undefined),
      queries: p.queries,
      ...(scrape !== undefined && { scrapeIntervalSeconds: scrape }),
      production: productionRequest(p, routeObject(p)),
      ...(p.signalPreset !== undefined && { preset: p.signalPreset }),
    };
  });
}

/** Key of a policy's route object, unique across kinds: `HTTPRoute shop/checkout`. */
function objectKey(p: MirrorPolicy): string {
  return describeRoute(p.route);
}

function signalValues(signals: Signals, policy: MirrorPolicy): Pick<PolicyOutcome, 'signals' | 'absent'> {
  const values: Record<SignalName, number | null> = {
    cpuUtilization: null,
    errorRate: null,
    latencyP99Ms: null,
  };
  const absent: Partial<Record<SignalName, string>> = {};
  for (const name of SIGNAL_NAMES) {
    if (policy.guardrails[name] === undefined) continue;
    const s: Signal | undefined = signals[name];
    if (s?.kind === 'value') values[name] = s.value;
    else absent[name] = s?.reason ?? 'NoSeries';
  }
  return { signals: values, absent };
}

/** The state of one policy kept on its route object; malformed or foreign state is ignored. */
export function readState(vs: RouteObject, policy: string): ControllerState | undefined {
  const stored = readStateAnnotation(vs, policy);
  if (stored instanceof MeshError || !stored.found) return undefined;
  return parseControllerState(stored.value);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

const QUERY_FAILED = (detail: string): SignalReading => ({
  signals: Object.fromEntries(
    SIGNAL_NAMES.map((n) => [n, { kind: 'absent', reason: 'QueryFailed', detail }]),
  ),
  requestRate: { kind: 'absent', reason: 'QueryFailed', detail },
});

/**
 * One evaluation of every policy: one list of route objects per kind and namespace, one batch of signal queries,
 * then a decision per policy and, unless `dryRun`, a guarded JSON Patch for every change.
 * A broken policy yields an outcome with `error` and never stops the others.
 */
export async function runCycle(
  policies: readonly MirrorPolicy[],
  deps: CycleDeps,
  options: { dryRun: boolean },
): Promise<PolicyOutcome[]> {
  const now = deps.now();
  // Routes first: the default production query reads the primary destination of each managed route, so
  // the signals are asked for once the routes are known (one round trip more per cycle, and the readings
  // still come from one batch).
  const listed = await listRoutes(
    deps.routes,
    policies.map((p) => p.route),
  );
  const listOf = (p: MirrorPolicy) => listed.get(listKey(p.route));
  const vsOf = (p: MirrorPolicy): RouteObject | undefined => {
    const list = listOf(p);
    return list?.ok ? list.m.get(routeId(p.route)) : undefined;
  };
  const readings = await deps.signals
    .fetch(signalRequests(policies, vsOf), new Date(now))
    .catch((err: unknown) => {
      // fetch is not supposed to throw; if it does, every signal is failed, which can only hold or lower.
      deps.logger.error({ err }, 'signal source failed');
      return new Map<string, SignalReading>();
    });
  const outcomes: PolicyOutcome[] = new Array(policies.length);
  // Policies on the same route object go one after the other (each write changes its resourceVersion);
  // different objects are written concurrently, a bounded number at a time, so a cycle with many
  // changes does not wait for each PATCH in turn.
  const groups = new Map<string, number[]>();
  policies.forEach((p, i) => {
    const key = objectKey(p);
    groups.set(key, [...(groups.get(key) ?? []), i]);
  });
  const queue = [...groups.values()];
  const worker = async (): Promise<void> => {
    for (let group = queue.shift(); group !== undefined; group = queue.shift()) {
      for (const i of group) {
        const policy = policies[i] as MirrorPolicy;
        const reading = readings.get(policy.name) ?? QUERY_FAILED('no reading returned for this policy');
        const list = listOf(policy);
        if (list === undefined || !list.ok) {
          const why = list === undefined ? 'namespace was not listed' : list.err;
          outcomes[i] = failed(policy, reading, `listing ${policy.route.kind}s failed: ${why}`);
          continue;
        }
        outcomes[i] = await evaluate(policy, list.m, reading, deps, now, options.dryRun);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_CONCURRENT_WRITES, queue.length) }, worker));
  return outcomes;
}

function blank(policy: MirrorPolicy, reading: SignalReading): PolicyOutcome {
  const observation = resolveObservation(policy, reading.scrapeInterval);
  const production = reading.productionRate;
  return {
    policy: policy.name,
    routeKind: policy.route.kind,
    routeId: routeId(policy.route),
    routes: [],
    currentPercent: null,
    proposedPercent: null,
    action: null,
    reason: null,
    message: '',
    ...signalValues(reading.signals, policy),
    guardrails: policy.guardrails,
    scrapeInterval: {
      seconds: observation.timing.scrapeIntervalSeconds,
      source: observation.scrapeIntervalSource,
    },
    productionRps: production?.kind === 'value' ? production.value : null,
    ...(production?.kind === 'absent' && { productionAbsent: production.reason }),
    signalSource: reading.origin ?? signalOrigin(policy),
    mode: null,
    write: 'none',
  };
}

function failed(policy: MirrorPolicy, reading: SignalReading, error: string): PolicyOutcome {
  return { ...blank(policy, reading), message: error, error };
}

async function evaluate(
  policy: MirrorPolicy,
  vsMap: Map<string, RouteObject>,
  reading: SignalReading,
  deps: CycleDeps,
  now: number,
  dryRun: boolean,
): Promise<PolicyOutcome> {
  const id = routeId(policy.route);
  const what = describeRoute(policy.route);
  const log = deps.logger.child({ policy: policy.name, routeKind: policy.route.kind, route: id });
  let vs = vsMap.get(id);
  for (let attempt = 1; ; attempt++) {
    if (!vs) return failed(policy, reading, `${what} not found`);
    const located = locateTarget(vs, policy.route, policy.target);
    if (!Array.isArray(located)) return failed(policy, reading, located.message);
    // Several routes may mirror to the target; the highest percentage in effect is the one the target feels.
    const current = currentPercent(located);
    const row: PolicyOutcome = {
      ...blank(policy, reading),
      routes: located.map(locationLabel),
      currentPercent: current,
      object: vs,
    };
    const pause = pauseState(vs);
    if (pause.paused) {
      return {
        ...row,
        ...(pause.source !== undefined && { pausedBy: pause.source }),
        proposedPercent: current,
        action: 'hold',
        reason: 'Paused',
        message: pause.problem ?? 'annotation mirror-autoscaler.io/paused is "true": automation paused',
      };
    }
    const state = deps.states.get(policy.name) ?? readState(vs, policy.name);
    const observation = resolveObservation(policy, reading.scrapeInterval);
    const decision = decide({
      now,
      policy,
      currentPercent: current,
      signals: reading.signals,
      requestRate: reading.requestRate,
      productionRate: reading.productionRate,
      observation: observation.timing,
      state,
    });
    const outcome: PolicyOutcome = {
      ...row,
      proposedPercent: decision.percent,
      action: decision.action,
      reason: decision.reason,
      message: decision.message,
      mode: decision.mode,
    };
    const fight =
      deps.overrides === undefined
        ? undefined
        : noticeOverride(policy, vs, current, state, deps.overrides, now);
    // While backing off from a fight nothing is written but a cut for a breach, and the state of a decision
    // not carried out is not kept (as in a dry run).
    if (
      fight !== undefined &&
      now < fight.until &&
      !(decision.action === 'decrease' && decision.reason === 'GuardrailBreached')
    ) {
      const backoff = Math.round((fight.until - fight.at) / 1000);
      if (fight.fresh) {
        log.warn(
          { override: fight },
          `mirror percentage changed from ${fight.ours} to ${fight.found} by ${fight.manager}; not writing this route for ${backoff}s`,
        );
      }
      return {
        ...outcome,
        proposedPercent: current,
        action: 'hold',
        reason: 'Overridden',
        message: `the percentage this controller left (${fight.ours}) was changed to ${fight.found} by ${fight.manager} (${fight.count} in a row): not writing this route until ${new Date(fight.until).toISOString()} (back-off ${backoff}s); a cut for a breach still goes through`,
        override: fight,
      };
    }
    const audit = {
      audit: true,
      routes: outcome.routes,
      from: current,
      to: decision.percent,
      action: decision.action,
      reason: decision.reason,
      mode: decision.mode,
      signals: outcome.signals,
      guardrails: policy.guardrails,
      productionRps: outcome.productionRps ?? null,
      scrapeIntervalSeconds: observation.timing.scrapeIntervalSeconds,
      scrapeIntervalSource: observation.scrapeIntervalSource,
      signalPreset: outcome.signalSource?.preset,
      ...(outcome.signalSource?.reporter !== undefined && { reporter: outcome.signalSource.reporter }),
    };
    if (decision.action === 'hold') {
      deps.states.set(policy.name, decision.state);
      return outcome;
    }
    if (dryRun || (deps.canWrite !== undefined && !deps.canWrite())) {
      // A dry run answers "what would it do now" from the real percentage every cycle, so the state of a
      // change that was never made is not kept.
      return { ...outcome, write: 'recorded' };
    }
    try {
      const updated = await deps.routes.patchPercent(
        vs,
        located,
        decision.percent,
        stateAnnotation(policy.name, decision.state),
      );
      vsMap.set(id, updated);
      deps.states.set(policy.name, decision.state);
      log.info(audit, `mirror percentage ${current} -> ${decision.percent}: ${decision.message}`);
      return { ...outcome, object: updated, write: 'written' };
    } catch (err) {
      if (err instanceof ConflictError && attempt < MAX_WRITE_ATTEMPTS) {
        // Someone else changed the object between our read and our patch: read again and decide again.
        log.debug({ attempt }, `conflict, re-reading ${policy.route.kind}`);
        try {
          vs = await deps.routes.get(policy.route.namespace, policy.route.name, policy.route.kind);
        } catch (readErr) {
          // Report what the re-read hit (deleted, forbidden, API server down), not a generic "not found".
          const error = `re-reading ${id} after a conflict failed: ${errorMessage(readErr)}`;
          log.warn({ err: readErr }, error);
          return { ...outcome, write: 'failed', error };
        }
        vsMap.set(id, vs);
        continue;
      }
      const error = `writing ${id} failed: ${errorMessage(err)}`;
      log.warn({ err }, error);
      return { ...outcome, write: 'failed', error };
    }
  }
}

/**
 * Looks for an override of the percentage this controller left and updates the fight memory of the policy.
 * @returns the fight in effect (with `fresh` on the cycle that noticed it), or undefined when there is none.
 */
function noticeOverride(
  policy: MirrorPolicy,
  obj: RouteObject,
  current: number,
  state: ControllerState | undefined,
  overrides: Map<string, OverrideMemory>,
  now: number,
): NonNullable<PolicyOutcome['override']> | undefined {
  const found = findOverride(obj, current, state);
  if (found === undefined || state === undefined) return undefined;
  const noted = noteOverride(found, state, overrides.get(policy.name), now, policy.intervalSeconds);
  overrides.set(policy.name, noted.memory);
  return { ...noted.memory, fresh: noted.fresh };
}
