/**
 * The baselines that bench/control.ts runs against the decision core: what users would otherwise do. Each is
 * a pure function of the simulator's Controller<S> contract (input in, decision and memory out, no clock,
 * no I/O), so it runs on exactly the same plant, observations and seeds as `decide()`.
 */
import type { ControlPolicy, Signal, SignalName, Signals } from '../src/core/types.js';
import {
  type Controller,
  type ControllerDecision,
  type ControllerInput,
  oraclePercent,
  productionRps,
  type Scenario,
  SIM_EPOCH_MS,
  safeUtilisation,
  scheduleAt,
} from '../src/sim/index.js';

/** Percentages are written in multiples of this (pp), as the decision core does. */
export const QUANTUM_PERCENT = 0.01;

/** Rounds down to the quantum: a baseline never rounds itself into a breach. */
export const quantiseDown = (p: number): number => Math.floor(p / QUANTUM_PERCENT + 1e-9) * QUANTUM_PERCENT;

const clamp = (x: number, lo: number, hi: number): number => Math.min(hi, Math.max(lo, x));

/** Guardrails the policy watches, with their limits. */
function watched(policy: ControlPolicy): Array<readonly [SignalName, number]> {
  const out: Array<readonly [SignalName, number]> = [];
  for (const [name, limit] of Object.entries(policy.guardrails) as Array<[SignalName, number | undefined]>) {
    if (limit !== undefined) out.push([name, limit]);
  }
  return out;
}

/** No usable value for a configured guardrail. NoTraffic is a fact (nothing mirrored), not blindness. */
export const isBlindSignal = (s: Signal | undefined): boolean =>
  s === undefined || (s.kind === 'absent' && s.reason !== 'NoTraffic');

/** What a baseline sees of the guardrails this evaluation. */
export interface GuardrailView {
  /** observed / limit per guardrail that has a value. */
  readonly severities: ReadonlyArray<readonly [SignalName, number]>;
  /** Some configured guardrail has no usable data. */
  readonly blind: boolean;
}

/** Severities and blindness of `signals` against the policy's guardrails. */
export function viewGuardrails(policy: ControlPolicy, signals: Signals): GuardrailView {
  const severities: Array<readonly [SignalName, number]> = [];
  let blind = false;
  for (const [name, limit] of watched(policy)) {
    const s = signals[name];
    if (isBlindSignal(s)) blind = true;
    if (s?.kind !== 'value') continue;
    const severity = limit > 0 ? s.value / limit : s.value > 0 ? Number.POSITIVE_INFINITY : 0;
    severities.push([name, severity]);
  }
  return { severities, blind };
}

/** Writes `target` unless it is already in effect (to the quantum). */
function move<S>(current: number, target: number, reason: string, state: S): ControllerDecision<S> {
  if (Math.abs(target - current) < QUANTUM_PERCENT / 2)
    return { percent: current, action: 'hold', reason, state };
  return { percent: target, action: target > current ? 'increase' : 'decrease', reason, state };
}

/** The percentage in effect: unset means Istio mirrors 100 %. */
const currentOf = (input: ControllerInput<unknown>): number => input.currentPercent ?? 100;

// ---------------------------------------------------------------------------------------------------------
// Static

/** A static controller remembers nothing. */
export type StaticState = null;

/**
 * A hand-set constant: writes `percent` (clamped to the policy's bounds, rounded down to the quantum) once
 * and never changes it, whatever the signals say.
 */
export function staticController(percent: number): Controller<StaticState> {
  return (input) => {
    const { minPercent, maxPercent } = input.policy.bounds;
    const target = quantiseDown(clamp(percent, minPercent, maxPercent));
    return move(currentOf(input), target, 'Static', null);
  };
}

// ---------------------------------------------------------------------------------------------------------
// HPA-style proportional

/** Tuning of the HPA-style controller; defaults mirror the Kubernetes HPA's. */
export interface HpaSettings {
  /** Aim every guardrail at this share of its limit (the HPA's target utilisation). */
  readonly targetRatio: number;
  /** No change while |usage ratio - 1| <= tolerance (the HPA's --horizontal-pod-autoscaler-tolerance). */
  readonly tolerance: number;
  /** A decrease goes only down to the highest recommendation of this many seconds (scaleDown stabilisation). */
  readonly scaleDownStabilisationSeconds: number;
  /**
   * Largest factor of one increase. The HPA's default scaleUp policy allows +100 % per 15 s period; with one
   * evaluation per period that is at most a doubling per evaluation.
   */
  readonly maxIncreaseFactor: number;
}

export const DEFAULT_HPA: HpaSettings = {
  targetRatio: 0.9,
  tolerance: 0.1,
  scaleDownStabilisationSeconds: 300,
  maxIncreaseFactor: 2,
};

/** Recommendations of the stabilisation window: `[epoch ms, percent]`, oldest first. */
export interface HpaState {
  readonly recommendations: ReadonlyArray<readonly [at: number, percent: number]>;
}

/**
 * The HPA's rule with the mirror percentage in place of the replica count. The percentage is load on the
 * target, the inverse of replicas, so the HPA's `desired = current × observed / target` becomes
 * `desired = current / usage` with `usage = max over guardrails of observed / (targetRatio × limit)`: scale
 * so that the worst signal lands on its target.
 *
 * - Tolerance: |usage - 1| <= tolerance recommends the current value.
 * - Scale-up limit: at most `maxIncreaseFactor` times the current value per evaluation (the default
 *   scaleUp policy).
 * - Scale-down stabilisation: a decrease goes only to the highest recommendation of the window (the HPA's
 *   default scaleDown.stabilizationWindowSeconds = 300); increases are not stabilised (scaleUp window 0).
 * - Missing data never raises: with any guardrail blind, an increase becomes a hold (the HPA assumes the
 *   worst for missing pods). A decrease on the signals it does have still goes through.
 * - At 0 % nothing is mirrored, so nothing can be scaled proportionally: it holds, as the HPA disables
 *   scaling at zero replicas.
 */
export function hpaController(settings: HpaSettings = DEFAULT_HPA): Controller<HpaState> {
  return (input) => {
    const { policy, now } = input;
    const { minPercent, maxPercent } = policy.bounds;
    const current = currentOf(input);
    const windowStart = now - settings.scaleDownStabilisationSeconds * 1000;
    const kept = (input.state?.recommendations ?? []).filter(([at]) => at > windowStart && at <= now);
    const view = viewGuardrails(policy, input.signals);

    let recommendation = current;
    let reason = 'WithinTolerance';
    if (view.severities.length === 0) {
      reason = view.blind ? 'NoData' : 'NoTraffic';
    } else if (current <= 0) {
      reason = 'ScalingDisabled';
    } else {
      const usage = Math.max(...view.severities.map(([, s]) => s / settings.targetRatio));
      if (Math.abs(usage - 1) > settings.tolerance) {
        const desired = usage > 0 ? current / usage : Number.POSITIVE_INFINITY;
        if (desired > current && view.blind) {
          reason = 'NoData';
        } else {
          recommendation = clamp(
            Math.min(desired, current * settings.maxIncreaseFactor),
            minPercent,
            maxPercent,
          );
          reason = desired > current ? 'Headroom' : 'GuardrailRatio';
        }
      }
    }
    recommendation = quantiseDown(clamp(recommendation, minPercent, maxPercent));
    const recommendations = [...kept, [now, recommendation] as const];

    let target = current;
    if (recommendation > current) {
      target = recommendation;
    } else {
      // The highest recommendation in the window, this one included: a decrease waits until every
      // recommendation of the last five minutes agrees, which damps flapping on noisy readings.
      const stabilised = Math.max(...recommendations.map(([, p]) => p));
      if (stabilised < current) target = stabilised;
      else if (recommendation < current) reason = 'Stabilising';
    }
    return move(current, target, reason, { recommendations });
  };
}

// ---------------------------------------------------------------------------------------------------------
// Target tracking on the mirrored rate: the HPA's algorithm as a fair reference

/** Tuning of the target-tracking reference; the defaults are the Kubernetes HPA's. */
export interface TrackingSettings {
  /** Aim the worst guardrail at this share of its limit (the HPA's target utilisation). */
  readonly targetRatio: number;
  /** No change while |usage ratio - 1| <= tolerance (the HPA's default 0.1). */
  readonly tolerance: number;
  /**
   * The HPA's scale-down stabilisation window (300 s) at the reference time scale (30 s interval, 2 m
   * window, 15 s scrapes); it is scaled by (window + scrape) / (2 m + 15 s), the time one reading needs to
   * show a change, so that it spans the same number of settled readings on every time scale.
   */
  readonly stabilisationSeconds: number;
  /**
   * Smallest factor of one cut: the HPA's default scale-up policy at most doubles the replicas per period,
   * which halves the load per replica.
   */
  readonly minCutFactor: number;
  /** Re-aim the percentage at the tracked load when production moved it off by more than this share. */
  readonly feedForwardDeadband: number;
}

export const DEFAULT_TRACKING: TrackingSettings = {
  targetRatio: 0.9,
  tolerance: 0.1,
  stabilisationSeconds: 300,
  minCutFactor: 0.5,
  feedForwardDeadband: 0.05,
};

/** The reference time scale the HPA's 300 s belongs to: 2 m window plus 15 s scrapes. */
const REFERENCE_SETTLE_SECONDS = 120 + 15;

export interface TrackingState {
  /** The mirrored load it holds: requests/s when fed production, else the percentage itself. */
  readonly load: number;
  /** Whether `load` is in requests/s (production known) or in percent. */
  readonly unit: 'rps' | 'percent';
  /** When (epoch ms) the tracked load last changed; readings are trusted once they cover the change. */
  readonly changedAt: number;
  /** Trusted recommendations `[epoch ms, load]` within the stabilisation window, oldest first. */
  readonly recommendations: ReadonlyArray<readonly [at: number, load: number]>;
}

/** The stabilisation window of `settings` on a time scale (seconds). */
export function trackingStabilisationSeconds(
  settings: TrackingSettings,
  windowSeconds: number,
  scrapeIntervalSeconds: number,
): number {
  return (settings.stabilisationSeconds * (windowSeconds + scrapeIntervalSeconds)) / REFERENCE_SETTLE_SECONDS;
}

/**
 * The HPA's target-tracking algorithm applied to the mirrored load, a fair reference: what a user would get
 * by pointing the HPA's rule at the mirror percentage with everything the decision core is told.
 *
 * - It holds a mirrored load: requests/s when the production rate is known (the percentage is load /
 *   production, re-aimed whenever production moves the load off by more than the deadband), else the
 *   percentage.
 * - A reading is trusted only once it covers the last change of that load: propagation + window + scrape
 *   after it (it is told the true scrape interval and propagation delay). Until then it holds.
 * - On a trusted reading: usage = worst severity / targetRatio; within the tolerance (|usage - 1| <= 0.1)
 *   it recommends the current load, else load × (1 / usage), where load is the mirrored rate the reading
 *   was taken at (the target's request rate, else the held load): the HPA's desired = current × metric /
 *   target, with the load in place of the inverse of the replica count.
 * - Stabilisation, as the HPA's, in load terms: a raise (the HPA's scale-down, the risky direction) goes only
 *   to the lowest recommendation of the stabilisation window (the HPA takes the highest replica count);
 *   a cut (scale-up, window 0) goes at once, but at most halves the load per evaluation (the default
 *   scale-up policy doubles replicas at most).
 * - Missing data never raises; a cut on the signals it has still goes through. At 0 % it starts at
 *   max(minPercent, 1 %): the HPA never runs below one replica.
 */
export function trackingController(settings: TrackingSettings = DEFAULT_TRACKING): Controller<TrackingState> {
  return (input) => {
    const { policy, now } = input;
    const { minPercent, maxPercent } = policy.bounds;
    const current = currentOf(input);
    const scrape = input.observation?.scrapeIntervalSeconds ?? 15;
    const propagation = input.observation?.propagationSeconds ?? 0;
    const settle = (propagation + policy.windowSeconds + scrape) * 1000;
    const window = trackingStabilisationSeconds(settings, policy.windowSeconds, scrape) * 1000;
    const pr = input.productionRate;
    const production = pr?.kind === 'value' && pr.value > 0 ? pr.value : undefined;
    const unit: TrackingState['unit'] = production === undefined ? 'percent' : 'rps';
    const toPercent = (load: number): number =>
      quantiseDown(clamp(unit === 'rps' ? (load / (production ?? 1)) * 100 : load, minPercent, maxPercent));
    const loadAt = (percent: number): number =>
      unit === 'rps' ? ((production ?? 0) * percent) / 100 : percent;

    const previous = input.state;
    // A new unit (production appeared or went away) restarts from what is in effect now.
    const fresh = previous === undefined || previous.unit !== unit;
    let load = fresh ? loadAt(current) : previous.load;
    // The loop (and a daemon that just started) gives full windows at the percentage in effect: trusted.
    let changedAt = fresh ? now - settle : previous.changedAt;
    let recommendations = fresh
      ? []
      : previous.recommendations.filter(([at]) => at > now - window && at <= now);
    let reason = 'WithinTolerance';

    if (current <= 0) {
      const start = Math.max(minPercent, 1);
      load = loadAt(start);
      return move(current, quantiseDown(start), 'Start', { load, unit, changedAt: now, recommendations: [] });
    }
    const view = viewGuardrails(policy, input.signals);
    const trusted = now >= changedAt + settle;
    if (view.severities.length === 0) {
      reason = view.blind ? 'NoData' : 'NoTraffic';
    } else if (!trusted) {
      reason = 'Settling';
    } else {
      const usage = Math.max(...view.severities.map(([, s]) => s / settings.targetRatio));
      const rr = input.requestRate;
      const measured = unit === 'rps' && rr?.kind === 'value' && rr.value > 0 ? rr.value : load;
      let recommendation = load;
      if (Math.abs(usage - 1) > settings.tolerance) {
        recommendation = usage > 0 ? measured / usage : Number.POSITIVE_INFINITY;
      }
      if (recommendation > load && view.blind) {
        reason = 'NoData';
      } else {
        recommendations = [...recommendations, [now, recommendation] as const];
        if (recommendation < load) {
          load = Math.max(recommendation, load * settings.minCutFactor);
          changedAt = now;
          reason = 'GuardrailRatio';
        } else {
          const stabilised = Math.min(...recommendations.map(([, l]) => l));
          if (stabilised > load * (1 + 1e-9)) {
            load = stabilised;
            changedAt = now;
            reason = 'Headroom';
          } else if (recommendation > load) {
            reason = 'Stabilising';
          }
        }
      }
    }
    // Keep the load within what the bounds allow, so that it never drifts off the percentage in effect.
    load = Math.min(Math.max(load, loadAt(minPercent)), loadAt(maxPercent));
    const state: TrackingState = { load, unit, changedAt, recommendations };
    const target = toPercent(load);
    if (changedAt !== now && unit === 'rps') {
      // Only production moved: re-aim when the load in effect is off by more than the deadband.
      const inEffect = loadAt(current);
      if (Math.abs(inEffect - load) <= settings.feedForwardDeadband * load) {
        return move(current, current, reason, state);
      }
      return move(current, target, 'FeedForward', state);
    }
    return move(current, target, reason, state);
  };
}

// ---------------------------------------------------------------------------------------------------------
// Flagger-style step and rollback

/** Tuning of the Flagger-style controller. */
export interface FlaggerSettings {
  /** Percentage points added per evaluation while every check passes (Flagger's stepWeight). */
  readonly stepPercent: number;
  /** Failed checks that trigger a rollback (Flagger's analysis.threshold). */
  readonly threshold: number;
}

/** Threshold 1: the first failed check rolls back, as a strict canary analysis does. */
export const DEFAULT_FLAGGER: FlaggerSettings = { stepPercent: 5, threshold: 1 };

export interface FlaggerState {
  /** Failed checks since the last rollback (Flagger counts them cumulatively, not consecutively). */
  readonly failedChecks: number;
}

/**
 * Flagger's canary analysis as a mirror controller: while every guardrail passes (observed <= limit), step
 * up by `stepPercent` to maxPercent; a failed check halts the step, and `threshold` failed checks roll back
 * to minPercent, after which a new analysis starts stepping up again once the checks pass. Missing data
 * holds (neither a pass nor a failure). Flagger itself counts a query without values as a failed check;
 * holding is the kinder reading and keeps missing scrapes from triggering rollbacks.
 */
export function flaggerController(settings: FlaggerSettings = DEFAULT_FLAGGER): Controller<FlaggerState> {
  return (input) => {
    const { policy } = input;
    const { minPercent, maxPercent } = policy.bounds;
    const current = currentOf(input);
    const failedBefore = input.state?.failedChecks ?? 0;
    const view = viewGuardrails(policy, input.signals);
    const failed = view.severities.some(([, s]) => s > 1);
    if (failed) {
      const failedChecks = failedBefore + 1;
      if (failedChecks >= settings.threshold) {
        return move(current, minPercent, 'Rollback', { failedChecks: 0 });
      }
      return move(current, current, 'CheckFailed', { failedChecks });
    }
    if (view.blind) return move(current, current, 'NoData', { failedChecks: failedBefore });
    const target = quantiseDown(clamp(current + settings.stepPercent, minPercent, maxPercent));
    return move(current, target, target > current ? 'Step' : 'AtBound', { failedChecks: failedBefore });
  };
}

// ---------------------------------------------------------------------------------------------------------
// Oracle

export type OracleState = null;

/**
 * The largest safe percentage of a scenario at second `t` (the simulator's oracle, from the true production
 * traffic and capacity), as a function of `t`.
 */
export function trueOracle(scenario: Scenario, policy: ControlPolicy): (t: number) => number {
  const { plant } = scenario;
  const uSafe = safeUtilisation(policy.guardrails, plant.profile);
  return (t) =>
    oraclePercent(
      policy.bounds,
      uSafe,
      productionRps(plant.traffic, t),
      Math.max(0, scheduleAt(plant.capacityRps, t)),
      plant.backgroundRps,
    );
}

/**
 * The oracle: it knows the scenario's true production traffic and capacity at every second, so it needs no
 * signals. At each evaluation it writes the largest percentage that keeps every guardrail of the true,
 * noiseless target within its limit for as long as the write will be in effect: from when it lands (after
 * the propagation delay) until the next evaluation's write lands. Without that look-ahead it would breach
 * for a few seconds at every step down of capacity. Its mirrored share is below 1 only because it is held
 * constant over an interval and rounded down to the quantum.
 * @param startEpochMs simulated time 0 of the run, to turn `now` back into scenario seconds.
 */
export function oracleController(
  scenario: Scenario,
  policy: ControlPolicy,
  startEpochMs: number = SIM_EPOCH_MS,
  fraction = 1,
): Controller<OracleState> {
  const at = trueOracle(scenario, policy);
  return (input) => {
    const t = Math.round((input.now - startEpochMs) / 1000);
    const from = t + Math.max(0, scenario.propagationDelaySeconds);
    let lowest = Number.POSITIVE_INFINITY;
    for (let s = from; s <= from + input.policy.intervalSeconds; s++) lowest = Math.min(lowest, at(s));
    const { minPercent, maxPercent } = input.policy.bounds;
    const target = clamp(quantiseDown(fraction * lowest), minPercent, maxPercent);
    return move(currentOf(input), target, fraction === 1 ? 'Oracle' : 'OracleFraction', null);
  };
}

/** The share of the true safe level the "92 % of safe" contender holds. */
export const SAFE_FRACTION = 0.92;

/**
 * A constant share of the true safe level at every instant: the oracle's percentage (with its look-ahead)
 * times `fraction`, rounded down. With 0.92 it is the practical ceiling under noise: a controller that reads
 * noisy signals cannot run closer to the edge without breaching.
 */
export function oracleFractionController(
  scenario: Scenario,
  policy: ControlPolicy,
  fraction: number = SAFE_FRACTION,
  startEpochMs: number = SIM_EPOCH_MS,
): Controller<OracleState> {
  if (!(fraction > 0 && fraction <= 1)) {
    throw new RangeError(`oracleFractionController: fraction: must be in (0, 1] (got ${fraction})`);
  }
  return oracleController(scenario, policy, startEpochMs, fraction);
}
