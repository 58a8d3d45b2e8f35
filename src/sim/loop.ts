/**
 * The closed loop: a controller decides every evaluation interval on what Prometheus shows, its writes reach
 * the target after a propagation delay, and the plant answers. The loop is generic over the controller so
 * that baselines (static, HPA-style, Flagger-style) run on exactly the same plant and observations.
 */
import { productionWindowSeconds } from '../core/defaults.js';
import type { Action, ControlPolicy, ObservationTiming, Signal, SignalName, Signals } from '../core/types.js';
import {
  createPlant,
  inBreach,
  maxSeverity,
  oraclePercent,
  type PlantStep,
  productionRps,
  safeUtilisation,
  scheduleAt,
  type TrueSignals,
  trueSignals,
  utilisationOf,
} from './plant.js';
import { createObserver, type ObservationConfig, staleAfterFor } from './prometheus.js';
import { createRandom, streamSeed } from './random.js';
import { buildScenario, type Scenario, type ScenarioName, scenarioPolicy } from './scenarios.js';

/** What a controller is given each evaluation; the same shape as the decision core's input. */
export interface ControllerInput<S> {
  /** Epoch milliseconds. */
  readonly now: number;
  readonly policy: ControlPolicy;
  /** The percentage currently written; null = none set (Istio mirrors 100 %). */
  readonly currentPercent: number | null;
  readonly signals: Signals;
  readonly requestRate?: Signal;
  /**
   * Production requests/s of the mirrored route, as Prometheus computes it over
   * `productionWindowSeconds(window, scrape interval)`; undefined when the run withholds it.
   */
  readonly productionRate?: Signal;
  /** The true scrape interval and propagation delay of the run, as if the caller had learned them. */
  readonly observation?: ObservationTiming;
  /** What the controller returned last time; undefined on the first evaluation. */
  readonly state: S | undefined;
}

/** What a controller returns; the decision core's Decision has this shape and more. */
export interface ControllerDecision<S> {
  readonly percent: number;
  readonly action: Action;
  readonly reason?: string;
  readonly message?: string;
  readonly state: S;
}

/** A controller: pure, its memory carried in `state` from one evaluation to the next. */
export type Controller<S> = (input: ControllerInput<S>) => ControllerDecision<S>;

/**
 * The observation time scale of a run, set independently of the scenario: how often Prometheus scrapes,
 * how often the controller decides and the rate window of its queries.
 */
export interface TimeScale {
  /** 1 to 30 s in the benchmark grid; any positive number here. */
  readonly scrapeIntervalSeconds: number;
  readonly intervalSeconds: number;
  readonly windowSeconds: number;
}

/** What to simulate. */
export interface SimOptions {
  /** A scenario name (built from `seed` and `durationSeconds`) or a scenario built by the caller. */
  readonly scenario: ScenarioName | Scenario;
  /** Seeds the scenario's variation, the plant's noise and the missed scrapes. */
  readonly seed: number;
  /** Length of the run in seconds; default 2 h. */
  readonly durationSeconds?: number;
  /** Default: the embedded simulator policy with the scenario's bound changes. */
  readonly policy?: ControlPolicy;
  /** Epoch milliseconds of simulated time 0, passed to the controller as `now`. */
  readonly startEpochMs?: number;
  /**
   * Overrides the scenario's scrape interval (its scrape phase is then drawn per seed, uniformly in
   * [0, scrape interval)) and the policy's interval and window. The Stale limit becomes
   * `staleAfterFor(scrape interval)`.
   */
  readonly timeScale?: TimeScale;
  /** Whether the controller is given the production rate; default true. */
  readonly productionFeed?: boolean;
}

/** The share of the oracle's percentage that counts as having reached it, for `reachSeconds`. */
export const REACH_SHARE = 0.85;

/** One evaluation of the controller. */
export interface SimSample {
  /** Seconds since the start. */
  readonly t: number;
  /** Percentage the target was receiving at `t` (writes take a propagation delay to apply). */
  readonly percent: number;
  /** Percentage written after this evaluation (the previous one when it held). */
  readonly setPercent: number;
  /** The largest safe percentage at `t`. */
  readonly oraclePercent: number;
  readonly action: Action;
  readonly reason: string;
  /** What the controller saw. */
  readonly observed: Signals;
  /** The production rate it was given; undefined when the run withholds it. */
  readonly observedProductionRate?: Signal;
  /** The target's true signals at `t`. */
  readonly truth: TrueSignals;
  /** Whether the true target is above any guardrail at `t`. */
  readonly breach: boolean;
  /** Seconds in breach since the previous evaluation. */
  readonly breachSeconds: number;
  readonly productionRps: number;
  readonly capacityRps: number;
}

/** Figures of one run. */
export interface SimSummary {
  readonly durationSeconds: number;
  /** Requests mirrored to the target over the run. */
  readonly mirroredRequests: number;
  /** Requests the oracle (largest safe percentage at every instant) would have mirrored. */
  readonly oracleRequests: number;
  /** mirroredRequests / oracleRequests (1 when the oracle mirrors nothing). */
  readonly mirroredShare: number;
  /** Seconds in which the true target was above any guardrail. */
  readonly breachSeconds: number;
  /** breachSeconds / durationSeconds. */
  readonly breachShare: number;
  /** Integral over time of (largest severity - 1) while in breach, severity-seconds. */
  readonly breachIntegral: number;
  /** Evaluations that changed the percentage (action other than hold). */
  readonly writes: number;
  readonly writesPerHour: number;
  /** Evaluations at which some configured guardrail had no usable data (NoTraffic does not count). */
  readonly blindEvaluations: number;
  /** Highest percentage set while blind; null when never blind. */
  readonly maxPercentWhileBlind: number | null;
  /**
   * Largest rise, while blind, over the percentage last seen safe (full data, no guardrail above its limit);
   * <= 0 means it never went above the last known safe level. Null when never blind or nothing was seen safe.
   */
  readonly maxRiseWhileBlind: number | null;
  /**
   * Seconds from the capacity drop until the target is back under every guardrail (end of the first breach
   * that starts within a minute of the drop; 0 when none does). Null when the scenario has no drop.
   */
  readonly recoverySeconds: number | null;
  /** Time-weighted mean of the percentage the target received, and of the oracle's. */
  readonly meanPercent: number;
  readonly meanOraclePercent: number;
  /** Lowest oracle percentage in any second: the best constant percentage that would have stayed safe. */
  readonly minOraclePercent: number;
  /**
   * Seconds from the start until the target first received at least REACH_SHARE of the oracle's
   * percentage; null when it never did.
   */
  readonly reachSeconds: number | null;
  /**
   * The same from the second the capacity came back (capacity-drop); null when the scenario has no return
   * or it never got there after it.
   */
  readonly reachAfterRestoreSeconds: number | null;
}

export interface SimResult {
  /** The scenario as run: with the time scale's observation when one was given. */
  readonly scenario: Scenario;
  readonly seed: number;
  readonly policy: ControlPolicy;
  readonly samples: readonly SimSample[];
  readonly summary: SimSummary;
}

/** Simulated time 0 (2026-01-01T00:00:00Z): fixed, so that results never depend on the wall clock. */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 1);
export const DEFAULT_SIM_DURATION_SECONDS = 2 * 3600;

function positive(name: string, value: number): void {
  if (!(Number.isFinite(value) && value > 0)) {
    throw new RangeError(`simulate: ${name}: must be a positive number (got ${value})`);
  }
}

/** Whether a signal leaves the controller without usable data. NoTraffic is a fact, not blindness. */
const isBlind = (s: Signal | undefined): boolean =>
  s === undefined || (s.kind === 'absent' && s.reason !== 'NoTraffic');

/**
 * The scenario and policy a time scale makes: the scenario's observation with the scrape interval, a scrape
 * phase drawn from the seed and the Stale limit of that interval; the policy with its interval and window.
 */
export function applyTimeScale(
  scenario: Scenario,
  policy: ControlPolicy,
  seed: number,
  timeScale: TimeScale | undefined,
): { scenario: Scenario; policy: ControlPolicy } {
  if (timeScale === undefined) return { scenario, policy };
  positive('timeScale.scrapeIntervalSeconds', timeScale.scrapeIntervalSeconds);
  positive('timeScale.intervalSeconds', timeScale.intervalSeconds);
  positive('timeScale.windowSeconds', timeScale.windowSeconds);
  const scrape = timeScale.scrapeIntervalSeconds;
  const phase = createRandom(streamSeed(seed, 'scrape-phase')).next() * scrape;
  const observation: ObservationConfig = {
    ...scenario.observation,
    scrapeIntervalSeconds: scrape,
    scrapeOffsetSeconds: phase,
    staleAfterSeconds: staleAfterFor(scrape),
  };
  return {
    scenario: { ...scenario, observation },
    policy: { ...policy, intervalSeconds: timeScale.intervalSeconds, windowSeconds: timeScale.windowSeconds },
  };
}

/**
 * Runs `controller` in closed loop against a scenario's plant, observed through a Prometheus-like observer.
 * The plant advances in 1 s steps; the controller is evaluated every policy interval from t = 0. Before
 * t = 0 the target runs at the initial percentage for a rate window plus two scrapes, so the first
 * evaluation sees full windows.
 * @throws RangeError when the duration, interval or window is not a positive number.
 */
export function runClosedLoop<S>(options: SimOptions, controller: Controller<S>): SimResult {
  const duration = options.durationSeconds ?? DEFAULT_SIM_DURATION_SECONDS;
  positive('durationSeconds', duration);
  const seed = options.seed;
  const built =
    typeof options.scenario === 'string' ? buildScenario(options.scenario, seed, duration) : options.scenario;
  const { scenario, policy } = applyTimeScale(
    built,
    options.policy ?? scenarioPolicy(built),
    seed,
    options.timeScale,
  );
  positive('policy.intervalSeconds', policy.intervalSeconds);
  positive('policy.windowSeconds', policy.windowSeconds);
  positive('observation.scrapeIntervalSeconds', scenario.observation.scrapeIntervalSeconds);
  const epoch = options.startEpochMs ?? SIM_EPOCH_MS;
  const { plant: plantConfig, observation } = scenario;
  const profile = plantConfig.profile;
  const guardrails = policy.guardrails;
  const watched = (Object.keys(guardrails) as SignalName[]).filter((n) => guardrails[n] !== undefined);

  const scrape = observation.scrapeIntervalSeconds;
  const warmup = Math.ceil(policy.windowSeconds + 2 * scrape);
  const firstScrape =
    observation.scrapeOffsetSeconds - Math.ceil((observation.scrapeOffsetSeconds + warmup) / scrape) * scrape;
  const plant = createPlant(plantConfig, seed);
  const observer = createObserver(observation, seed, firstScrape, profile.cpuRequestCores);
  const productionFeed = options.productionFeed ?? true;
  const productionWindow = productionWindowSeconds(policy.windowSeconds, scrape);
  const timing: ObservationTiming = {
    scrapeIntervalSeconds: scrape,
    propagationSeconds: scenario.propagationDelaySeconds,
  };
  const restoreAt = scenario.capacityRestoredAtSeconds;
  let reachSeconds: number | null = null;
  let reachAfterRestoreSeconds: number | null = null;

  let written: number | null = scenario.initialPercent;
  let effective = written ?? 100;
  const pending: { at: number; percent: number }[] = [];
  let state: S | undefined;

  const samples: SimSample[] = [];
  const breachBySecond = new Uint8Array(Math.ceil(duration));
  let mirrored = 0;
  let oracleMirrored = 0;
  let percentSeconds = 0;
  let oracleSeconds = 0;
  let minOracle = Number.POSITIVE_INFINITY;
  let breachSeconds = 0;
  let breachIntegral = 0;
  let breachSinceSample = 0;
  let writes = 0;
  let blindEvaluations = 0;
  let maxPercentWhileBlind: number | null = null;
  let maxRiseWhileBlind: number | null = null;
  let lastSafePercent: number | undefined;
  let nextEvaluation = 0;
  const uSafe = safeUtilisation(guardrails, profile);
  // The oracle only depends on production and capacity: reuse it while they stay put (most seconds).
  let oracleProd = Number.NaN;
  let oracleCapacity = Number.NaN;
  let oracleValue = 0;
  const oracleAt = (prod: number, capacity: number): number => {
    if (oracleProd !== prod || oracleCapacity !== capacity) {
      oracleProd = prod;
      oracleCapacity = capacity;
      oracleValue = oraclePercent(policy.bounds, uSafe, prod, capacity, plantConfig.backgroundRps);
    }
    return oracleValue;
  };

  for (let t = -warmup; t < duration; t++) {
    while (pending.length > 0 && (pending[0]?.at ?? Number.POSITIVE_INFINITY) <= t) {
      effective = pending.shift()?.percent ?? effective;
    }
    observer.offer(t, plant.counters);

    if (t >= 0 && t >= nextEvaluation) {
      nextEvaluation += policy.intervalSeconds;
      const seen = observer.query(
        t,
        policy.windowSeconds,
        watched,
        productionFeed ? productionWindow : undefined,
      );
      const decision = controller({
        now: epoch + t * 1000,
        policy,
        currentPercent: written,
        signals: seen.signals,
        requestRate: seen.requestRate,
        ...(productionFeed ? { productionRate: seen.productionRate } : {}),
        observation: timing,
        state,
      });
      state = decision.state;
      const before = effective;
      if (decision.action !== 'hold') {
        if (!Number.isFinite(decision.percent)) {
          throw new RangeError(
            `simulate: controller: percent must be a finite number (got ${decision.percent} at t=${t} s)`,
          );
        }
        written = decision.percent;
        writes++;
        pending.push({ at: t + scenario.propagationDelaySeconds, percent: decision.percent });
        if (scenario.propagationDelaySeconds <= 0) effective = pending.shift()?.percent ?? effective;
      }

      const blind = watched.some((n) => isBlind(seen.signals[n]));
      if (blind) {
        blindEvaluations++;
        const set = written ?? 100;
        maxPercentWhileBlind = Math.max(maxPercentWhileBlind ?? Number.NEGATIVE_INFINITY, set);
        if (lastSafePercent !== undefined) {
          maxRiseWhileBlind = Math.max(maxRiseWhileBlind ?? Number.NEGATIVE_INFINITY, set - lastSafePercent);
        }
      } else {
        const observedBreach = watched.some((n) => {
          const s = seen.signals[n];
          const limit = guardrails[n];
          return s?.kind === 'value' && limit !== undefined && s.value > limit;
        });
        if (!observedBreach) lastSafePercent = before;
      }

      const prod = productionRps(plantConfig.traffic, t);
      const capacity = Math.max(0, scheduleAt(plantConfig.capacityRps, t));
      const truth = trueSignals(
        profile,
        utilisationOf((prod * before) / 100, plantConfig.backgroundRps, capacity),
      );
      samples.push({
        t,
        percent: before,
        setPercent: written ?? 100,
        oraclePercent: oracleAt(prod, capacity),
        action: decision.action,
        reason: decision.reason ?? '',
        observed: seen.signals,
        ...(productionFeed ? { observedProductionRate: seen.productionRate } : {}),
        truth,
        breach: inBreach(guardrails, truth),
        breachSeconds: breachSinceSample,
        productionRps: prod,
        capacityRps: capacity,
      });
      breachSinceSample = 0;
    }

    const stepResult: PlantStep = plant.advance(t, 1, effective);
    if (t < 0) continue;
    const oracle = oracleAt(stepResult.productionRps, stepResult.capacityRps);
    mirrored += stepResult.mirroredRps;
    oracleMirrored += (stepResult.productionRps * oracle) / 100;
    percentSeconds += effective;
    oracleSeconds += oracle;
    if (oracle < minOracle) minOracle = oracle;
    if (effective >= REACH_SHARE * oracle - 1e-9) {
      if (reachSeconds === null) reachSeconds = t;
      if (restoreAt !== undefined && t >= restoreAt && reachAfterRestoreSeconds === null) {
        reachAfterRestoreSeconds = t - restoreAt;
      }
    }
    const severity = maxSeverity(guardrails, stepResult.truth);
    if (severity > 1) {
      breachSeconds++;
      breachSinceSample++;
      breachIntegral += severity - 1;
      breachBySecond[t] = 1;
    }
  }

  const summary: SimSummary = {
    durationSeconds: duration,
    mirroredRequests: mirrored,
    oracleRequests: oracleMirrored,
    mirroredShare: oracleMirrored > 0 ? mirrored / oracleMirrored : 1,
    breachSeconds,
    breachShare: breachSeconds / duration,
    breachIntegral,
    writes,
    writesPerHour: (writes * 3600) / duration,
    blindEvaluations,
    maxPercentWhileBlind,
    maxRiseWhileBlind,
    recoverySeconds: recoveryAfter(breachBySecond, scenario.capacityDropAtSeconds),
    meanPercent: percentSeconds / Math.ceil(duration),
    meanOraclePercent: oracleSeconds / Math.ceil(duration),
    minOraclePercent: minOracle,
    reachSeconds,
    reachAfterRestoreSeconds,
  };
  return { scenario, seed, policy, samples, summary };
}

/**
 * Seconds from `dropAt` to the end of the first breach that starts within a minute of it.
 */
export function recoveryAfter(breachBySecond: Uint8Array, dropAt: number | undefined): number | null {
  if (dropAt === undefined) return null;
  const start = Math.max(0, Math.floor(dropAt));
  if (start >= breachBySecond.length) return null;
  let first = -1;
  for (let t = start; t < Math.min(breachBySecond.length, start + 60); t++) {
    if (breachBySecond[t] === 1) {
      first = t;
      break;
    }
  }
  if (first < 0) return 0;
  let end = first;
  while (end < breachBySecond.length && breachBySecond[end] === 1) end++;
  return end - dropAt;
}
