import { describe, expect, it } from 'vitest';
import { type Decision, decide, LAW, parseControllerState } from '../../src/core/decide.js';
import type { CoreState } from '../../src/core/state.js';
import { type Action, REASONS, type Reason, type Signals } from '../../src/core/types.js';
import { absent, LIMITS, policy, run, type Step, sev, steadyState, T0, value } from './helpers.js';

interface Row {
  readonly name: string;
  /** Builds the decision under test. */
  readonly decide: () => Decision;
  readonly reason: Reason;
  readonly action: Action;
  /** Exact percentage, or a check of it. */
  readonly percent?: number | ((p: number) => boolean);
  /** Substrings the message must contain. */
  readonly message?: readonly string[];
}

const P = policy();
const one = (current: number | null, signals: Signals, pol = P, extra: Partial<Step> = {}) =>
  run(pol, current, [{ signals, ...extra }]).last;

/** Blind on errorRate for `seconds` (one cycle every 30 s, then one at exactly `seconds`). */
function blindFor(seconds: number, current: number, pol = P, signals?: Signals): Decision {
  const blindSignals = signals ?? { ...sev(), errorRate: absent('QueryFailed') };
  const steps: Step[] = [{ signals: blindSignals }];
  let t = 0;
  while (t + 30 < seconds) {
    steps.push({ signals: blindSignals });
    t += 30;
  }
  steps.push({ signals: blindSignals, after: seconds - t });
  return run(pol, current, steps).last;
}

const rows: readonly Row[] = [
  // Headroom and its limits.
  {
    name: 'headroom on every guardrail raises by at most the factor plus the step',
    decide: () => one(10, sev()),
    reason: 'Headroom',
    action: 'increase',
    percent: (p) => p > 10 && p <= 10 * 1.5 + 1,
  },
  {
    name: 'a raise is capped at maxPercent',
    decide: () => one(40, sev({ cpu: 0.1, err: 0.1, lat: 0.1 })),
    reason: 'Headroom',
    action: 'increase',
    percent: 50,
  },
  {
    name: 'headroom at maxPercent holds at the bound',
    decide: () => one(50, sev()),
    reason: 'AtBound',
    action: 'hold',
    percent: 50,
  },
  {
    name: 'min = max holds at the bound with headroom',
    decide: () => one(10, sev(), policy({ min: 10, max: 10 })),
    reason: 'AtBound',
    action: 'hold',
    percent: 10,
  },
  {
    name: 'severity just below the band raises',
    decide: () => one(10, sev({ cpu: 0.79, err: 0.1, lat: 0.1 })),
    reason: 'Headroom',
    action: 'increase',
    percent: (p) => p > 10,
  },
  {
    name: 'a raise smaller than minChangePercent is not written',
    decide: () => one(10, sev(), policy({ control: { minChangePercent: 10 } })),
    reason: 'ChangeTooSmall',
    action: 'hold',
    percent: 10,
  },
  {
    name: 'a latency close to the target leaves only a step too small to write',
    decide: () => one(40, sev({ cpu: 0.1, err: 0.1, lat: 0.79 }), policy({ max: 100 })),
    reason: 'ChangeTooSmall',
    action: 'hold',
    percent: 40,
  },
  // Feed-forward.
  {
    name: 'production up in one cycle under readings at the target decreases at once',
    decide: () =>
      run(P, 20, [
        ...Array.from({ length: 6 }, () => ({ signals: sev({ cpu: 0.96 }), productionRate: value(1000) })),
        { signals: sev({ cpu: 0.96 }), productionRate: value(2000) },
      ]).last,
    reason: 'FollowProduction',
    action: 'decrease',
    percent: 14.84,
    message: ['production up'],
  },
  {
    name: 'production down for three readings under readings in the band keeps the load',
    decide: () =>
      run(P, 20, [
        ...Array.from({ length: 6 }, () => ({ signals: sev({ cpu: 0.9 }), productionRate: value(1000) })),
        ...Array.from({ length: 3 }, () => ({ signals: sev({ cpu: 0.9 }), productionRate: value(500) })),
      ]).last,
    reason: 'FollowProduction',
    action: 'increase',
    percent: 40,
    message: ['keep the load, 20 -> 40'],
  },
  // Hold band.
  {
    name: 'severity inside (1 - hysteresis, 1] holds',
    decide: () => one(20, sev({ cpu: 0.9 })),
    reason: 'WithinTolerance',
    action: 'hold',
    percent: 20,
  },
  {
    name: 'severity exactly 1 is within tolerance, not a breach',
    decide: () => one(20, sev({ lat: 1 })),
    reason: 'WithinTolerance',
    action: 'hold',
    percent: 20,
  },
  // Breaches.
  {
    name: 'a large breach halves the percentage',
    decide: () => one(20, sev({ err: 3.1 })),
    reason: 'GuardrailBreached',
    action: 'decrease',
    percent: 10,
    message: ['errorRate 0.031 > 0.01 (severity 3.1)', '20 -> 10'],
  },
  {
    name: 'a small breach with no reading before it still cuts by 30 %',
    decide: () => one(20, sev({ cpu: 1.05 })),
    reason: 'GuardrailBreached',
    action: 'decrease',
    percent: 14,
  },
  {
    name: 'a breach is cut on the latest value even when another guardrail is blind',
    decide: () => one(20, { ...sev({ cpu: 1.5 }), errorRate: absent('QueryFailed') }),
    reason: 'GuardrailBreached',
    action: 'decrease',
    // Back to the target severity (0.95 with the default band): 20 * 0.95 / 1.5, down to the quantum.
    percent: 12.66,
  },
  {
    name: 'a breach at minPercent holds at the bound',
    decide: () => one(5, sev({ cpu: 1.5 }), policy({ min: 5 })),
    reason: 'AtBound',
    action: 'hold',
    percent: 5,
    message: ['already at minPercent 5'],
  },
  {
    name: 'a breach with min = max holds at the bound',
    decide: () => one(10, sev({ lat: 2 }), policy({ min: 10, max: 10 })),
    reason: 'AtBound',
    action: 'hold',
    percent: 10,
  },
  {
    name: 'a cut never goes below minPercent',
    decide: () => one(6, sev({ cpu: 3 }), policy({ min: 5 })),
    reason: 'GuardrailBreached',
    action: 'decrease',
    percent: 5,
  },
  {
    name: 'a breach while a cut is still in flight only trims (quantile reading, same overload)',
    decide: () => run(P, 20, [{ signals: sev({ lat: 1.5 }) }, { signals: sev({ lat: 1.5 }) }]).last,
    reason: 'GuardrailBreached',
    action: 'decrease',
    percent: 12.56,
    message: ['not fully visible yet', 'trim 12.66 -> 12.56'],
  },
  {
    name: 'a rate reading that keeps rising after a cut cuts again',
    decide: () => run(P, 20, [{ signals: sev({ cpu: 1.1 }) }, { signals: sev({ cpu: 1.3 }) }]).last,
    reason: 'GuardrailBreached',
    action: 'decrease',
    // 20 * 0.7 = 14; the cost per percent climbed from 1.1 / 20 to 1.3 / 19.3 (the window-weighted
    // percentage), so the climb is carried over the rest of the window: about 1.42 at 14 %, cut to 0.95.
    percent: 9.38,
  },
  {
    name: 'a quantile reading that climbs after a cut while CPU, read beside it, is within its limit only trims',
    // The slow requests of the overload are a growing share of a window whose newer part carries fewer
    // requests: the quantile climbs whether or not the cut was enough. CPU, a sum over the window, judges.
    decide: () =>
      run(P, 20, [
        { signals: sev({ cpu: 0.6, lat: 1.5 }) },
        { signals: sev({ cpu: 0.6, lat: 1.7 }), after: 45 },
      ]).last,
    reason: 'GuardrailBreached',
    action: 'decrease',
    percent: 12.56,
    message: ['not fully visible yet', 'trim 12.66 -> 12.56'],
  },
  {
    name: 'a quantile reading that climbs after a cut, with no CPU guardrail, cuts again in proportion',
    // 20 * 0.7 = 14 (a fresh cut takes at least 30 %); then 1.27 climbs more than 5 % over 1.2 with over
    // a quarter of the window past the cut: 14 * 0.95 / 1.27, not the fresh cut's 14 * 0.7 = 9.8.
    decide: () =>
      run(policy({ guardrails: { latencyP99Ms: 500 } }), 20, [
        { signals: { latencyP99Ms: value(600) } },
        { signals: { latencyP99Ms: value(635) }, after: 45 },
      ]).last,
    reason: 'GuardrailBreached',
    action: 'decrease',
    percent: 10.47,
  },
  {
    name: 'a cut in flight never more than halves, however far over its limit a quantile still reads',
    // 94 % of the window past the cut, p99 still at 40 times its limit (the window's last slow requests):
    // 12.66 * 0.5, not 12.66 * 0.95 / 40.
    decide: () =>
      run(P, 20, [{ signals: sev({ lat: 1.5 }) }, { signals: sev({ lat: 40 }), after: 125 }]).last,
    reason: 'GuardrailBreached',
    action: 'decrease',
    percent: 6.33,
  },
  {
    name: 'a quantile reading that still breaches once the window has passed the cut cuts again',
    decide: () =>
      run(P, 20, [{ signals: sev({ lat: 1.5 }) }, { signals: sev({ lat: 1.5 }), after: 150 }]).last,
    reason: 'GuardrailBreached',
    action: 'decrease',
    // 20 * 0.95 / 1.5 = 12.66, then again: 12.66 * 0.95 / 1.5.
    percent: 8.01,
  },
  {
    name: 'a marginal breach after a reading within the limit is brought back to the target in proportion',
    decide: () =>
      run(
        P,
        20,
        [0.94, 0.97, 0.94, 0.97, 0.94, 0.97, 1.01].map((cpu) => ({ signals: sev({ cpu }) })),
      ).last,
    reason: 'GuardrailBreached',
    action: 'decrease',
    // 20 * 0.95 / 1.01; the jump 0.97 -> 1.01 is within twice the readings' scatter, so not extrapolated.
    percent: 18.81,
  },
  {
    name: 'a marginal breach after a reading already past the limit cuts again (trim while in flight)',
    decide: () =>
      run(
        P,
        20,
        [0.94, 0.97, 0.94, 0.97, 0.94, 0.97, 1.01, 1.01].map((cpu) => ({ signals: sev({ cpu }) })),
      ).last,
    reason: 'GuardrailBreached',
    action: 'decrease',
    // The smallest cut (0.1 pp), floored onto the grid.
    percent: 18.64,
    message: ['trim 18.81 -> 18.64'],
  },
  // Bounds.
  {
    name: 'no percentage set means 100 %, brought down to maxPercent',
    decide: () => one(null, sev()),
    reason: 'OutOfBounds',
    action: 'decrease',
    percent: 50,
    message: ['unset (Istio mirrors 100 %)'],
  },
  {
    name: 'no percentage set with maxPercent 100 is already at the bound',
    decide: () => one(null, sev(), policy({ max: 100 })),
    reason: 'AtBound',
    action: 'hold',
    percent: 100,
  },
  {
    name: 'below minPercent is raised to it even during a breach',
    decide: () => one(2, sev({ cpu: 2 }), policy({ min: 5 })),
    reason: 'OutOfBounds',
    action: 'increase',
    percent: 5,
  },
  {
    name: 'below minPercent is raised to it even when blind',
    decide: () => one(2, { ...sev(), latencyP99Ms: absent('Stale') }, policy({ min: 5 })),
    reason: 'OutOfBounds',
    action: 'increase',
    percent: 5,
  },
  {
    name: 'above maxPercent comes down to it when blind',
    decide: () => one(80, { ...sev(), latencyP99Ms: absent('Stale') }),
    reason: 'OutOfBounds',
    action: 'decrease',
    percent: 50,
  },
  {
    name: 'above maxPercent with a breach cuts below the bound',
    decide: () => one(80, sev({ cpu: 3 })),
    reason: 'GuardrailBreached',
    action: 'decrease',
    percent: 40,
  },
  // Blindness.
  {
    name: 'a failed query holds',
    decide: () => one(20, { ...sev(), errorRate: absent('QueryFailed') }),
    reason: 'NoData',
    action: 'hold',
    percent: 20,
    message: ['errorRate QueryFailed'],
  },
  {
    name: 'a configured guardrail missing from the signals counts as NoSeries',
    decide: () => one(20, { cpuUtilization: value(0.2), errorRate: value(0.001) }),
    reason: 'NoData',
    action: 'hold',
    message: ['latencyP99Ms NoSeries'],
  },
  {
    name: 'a non-finite value counts as blind',
    decide: () => one(20, { ...sev(), cpuUtilization: value(Number.NaN) }),
    reason: 'NoData',
    action: 'hold',
  },
  {
    name: 'an infinite value counts as blind',
    decide: () => one(20, { ...sev(), latencyP99Ms: value(Number.POSITIVE_INFINITY) }),
    reason: 'NoData',
    action: 'hold',
  },
  {
    name: 'a negative value counts as blind',
    decide: () => one(20, { ...sev(), errorRate: value(-1) }),
    reason: 'NoData',
    action: 'hold',
  },
  {
    name: 'blind for less than blindHoldSeconds still holds',
    decide: () => blindFor(299, 20),
    reason: 'NoData',
    action: 'hold',
    percent: 20,
  },
  {
    name: 'blind for blindHoldSeconds halves toward minPercent',
    decide: () => blindFor(300, 20),
    reason: 'BlindDecay',
    action: 'decrease',
    percent: 10,
  },
  {
    name: 'blind decay stops at minPercent',
    decide: () => blindFor(300, 3, policy({ min: 2 })),
    reason: 'BlindDecay',
    action: 'decrease',
    percent: 2,
  },
  {
    name: 'blind at minPercent holds at the bound',
    decide: () => blindFor(400, 2, policy({ min: 2 })),
    reason: 'AtBound',
    action: 'hold',
    percent: 2,
  },
  {
    name: 'a policy without guardrails has nothing to judge by',
    decide: () => one(20, sev(), policy({ guardrails: {} })),
    reason: 'NoData',
    action: 'hold',
  },
  // No traffic and cold start.
  {
    name: 'cold start from 0 % when CPU has headroom and latency/errors have no traffic',
    decide: () =>
      one(0, {
        cpuUtilization: value(0.1),
        errorRate: absent('NoTraffic'),
        latencyP99Ms: absent('NoTraffic'),
      }),
    reason: 'ColdStart',
    action: 'increase',
    percent: 1,
  },
  {
    name: 'cold start with only latency configured',
    decide: () =>
      one(0, { latencyP99Ms: absent('NoTraffic') }, policy({ guardrails: { latencyP99Ms: 300 } })),
    reason: 'ColdStart',
    action: 'increase',
    percent: 1,
  },
  {
    name: 'cold start from 0 % with every signal present',
    decide: () => one(0, sev({ cpu: 0.1, err: 0, lat: 0.1 })),
    reason: 'ColdStart',
    action: 'increase',
    percent: 1,
  },
  {
    name: 'cold start needs CPU when CPU is configured',
    decide: () => one(0, { errorRate: absent('NoTraffic'), latencyP99Ms: absent('NoTraffic') }),
    reason: 'NoData',
    action: 'hold',
    percent: 0,
  },
  {
    name: 'CPU reported as NoTraffic is blindness, not traffic',
    decide: () =>
      one(0, {
        cpuUtilization: absent('NoTraffic'),
        errorRate: absent('NoTraffic'),
        latencyP99Ms: absent('NoTraffic'),
      }),
    reason: 'NoData',
    action: 'hold',
  },
  {
    name: 'cold start holds when CPU has no room',
    decide: () =>
      one(0, {
        cpuUtilization: value(0.72),
        errorRate: absent('NoTraffic'),
        latencyP99Ms: absent('NoTraffic'),
      }),
    reason: 'WithinTolerance',
    action: 'hold',
    percent: 0,
  },
  {
    name: 'cold start is withheld when the write budget is spent',
    decide: () =>
      one(
        0,
        { cpuUtilization: value(0.1), errorRate: absent('NoTraffic'), latencyP99Ms: absent('NoTraffic') },
        policy({ control: { maxWritesPerHour: 0 } }),
      ),
    reason: 'WriteBudget',
    action: 'hold',
    percent: 0,
  },
  {
    name: 'cold start at maxPercent 0 holds at the bound',
    decide: () =>
      one(
        0,
        { cpuUtilization: value(0.1), errorRate: absent('NoTraffic'), latencyP99Ms: absent('NoTraffic') },
        policy({ max: 0 }),
      ),
    reason: 'AtBound',
    action: 'hold',
    percent: 0,
  },
  {
    name: 'no traffic above the cold-start step holds without decaying',
    decide: () =>
      blindFor(3600, 20, P, {
        cpuUtilization: value(0.2),
        errorRate: absent('NoTraffic'),
        latencyP99Ms: absent('NoTraffic'),
      }),
    reason: 'NoData',
    action: 'hold',
    percent: 20,
    message: ['NoTraffic'],
  },
  {
    name: 'no traffic contradicted by the request rate is blindness and decays',
    decide: () => {
      const signals = {
        cpuUtilization: value(0.2),
        errorRate: absent('NoTraffic'),
        latencyP99Ms: value(100),
      };
      const steps: Step[] = Array.from({ length: 11 }, () => ({ signals, requestRate: value(5) }));
      return run(P, 20, steps).last;
    },
    reason: 'BlindDecay',
    action: 'decrease',
    percent: 10,
  },
  // Cooldown and dead time.
  {
    name: 'no raise during the cooldown after a cut',
    // The derived cooldown is the settle time: propagation 5 s + window 120 s + scrape 15 s = 140 s.
    decide: () => run(P, 20, [{ signals: sev({ cpu: 1.2 }) }, { signals: sev(), after: 139 }]).last,
    reason: 'Cooldown',
    action: 'hold',
    percent: 14,
  },
  {
    name: 'the derived cooldown (propagation + window + scrape) expires',
    decide: () => run(P, 20, [{ signals: sev({ cpu: 1.2 }) }, { signals: sev(), after: 140 }]).last,
    reason: 'Headroom',
    action: 'increase',
    percent: (p) => p > 14,
  },
  {
    name: 'a configured cooldown is used as is',
    decide: () =>
      run(policy({ control: { cooldownSeconds: 600 } }), 20, [
        { signals: sev({ cpu: 1.2 }) },
        { signals: sev(), after: 599 },
      ]).last,
    reason: 'Cooldown',
    action: 'hold',
  },
  {
    name: 'no raise again before the last raise is visible in the window',
    decide: () => run(P, 10, [{ signals: sev() }, { signals: sev() }]).last,
    reason: 'Settling',
    action: 'hold',
    message: ['visible in the 120 s window'],
  },
  {
    name: 'raises again once half the window reflects the last raise',
    decide: () => run(P, 10, [{ signals: sev() }, { signals: sev(), after: 90 }]).last,
    reason: 'Headroom',
    action: 'increase',
  },
  {
    name: 'a raise in flight that projects past the limit is taken back before the breach shows',
    decide: () => run(P, 10, [{ signals: sev() }, { signals: sev({ cpu: 0.95 }) }]).last,
    reason: 'Settling',
    action: 'decrease',
    percent: (p) => p >= 10 && p < 14.5,
    message: ['take back'],
  },
  {
    name: 'a percentage changed by someone else is treated as just changed',
    decide: () => run(P, 10, [{ signals: sev() }, { signals: sev(), after: 600, current: 20 }]).last,
    reason: 'Settling',
    action: 'hold',
    percent: 20,
  },
  {
    name: 'a steady rise that projects past the limit by the next cycle is met before it shows',
    decide: () =>
      run(P, 20, [
        { signals: sev({ cpu: 0.84 }) },
        { signals: sev({ cpu: 0.88 }) },
        { signals: sev({ cpu: 0.93 }) },
      ]).last,
    reason: 'Settling',
    action: 'decrease',
    message: ['rising at a steady 20 %'],
  },
  {
    name: 'a slow steady drift over a window of readings is met before it reaches the limit',
    // +0.005 a cycle: the trend counts once the readings span the window (120 s) and the rise stands out
    // of the measured noise; the eighth reading projects past 0.98 by the next cycle.
    decide: () =>
      run(
        P,
        20,
        [0.93, 0.935, 0.94, 0.945, 0.95, 0.955, 0.96, 0.965].map((cpu) => ({ signals: sev({ cpu }) })),
      ).last,
    reason: 'Settling',
    action: 'decrease',
    percent: 19.11,
    message: ['rising at a steady 20 %', 'projects to severity 0.982'],
  },
  {
    name: 'three readings of a slow drift are not yet a trend',
    decide: () =>
      run(P, 20, [
        { signals: sev({ cpu: 0.95 }) },
        { signals: sev({ cpu: 0.948 }) },
        { signals: sev({ cpu: 0.965 }) },
      ]).last,
    reason: 'WithinTolerance',
    action: 'hold',
    percent: 20,
  },
  {
    name: 'flat readings just under the limit are held, not eased',
    decide: () =>
      run(P, 20, [
        { signals: sev({ cpu: 0.99 }) },
        { signals: sev({ cpu: 0.99 }) },
        { signals: sev({ cpu: 0.99 }) },
      ]).last,
    reason: 'WithinTolerance',
    action: 'hold',
    percent: 20,
  },
  {
    name: 'raises wait until the rate window no longer spans a gap in the data',
    decide: () =>
      run(P, 20, [{ signals: { ...sev(), errorRate: absent('QueryFailed') } }, { signals: sev(), after: 60 }])
        .last,
    reason: 'Settling',
    action: 'hold',
    message: ['data came back'],
  },
  // Memory: breach level and write budget.
  {
    name: 'below a remembered breach level a raise goes at once to 90 % of it, no further',
    decide: () =>
      decide({
        now: T0,
        policy: P,
        currentPercent: 17,
        signals: sev({ cpu: 0.2, err: 0.05, lat: 0.2 }),
        state: steadyState(17, T0 - 30_000, {
          breach: { at: T0 - 60_000, percent: 20, signal: 'errorRate' },
        }),
      }),
    reason: 'Headroom',
    action: 'increase',
    // The low edge: 20 * (1 - hysteresis * LAW.breachApproach) = 18, though the headroom allows more.
    percent: 18,
    message: ['near the last breach at 20 %'],
  },
  {
    name: 'above 90 % of a remembered breach level raises only by a small additive step',
    decide: () =>
      decide({
        now: T0,
        policy: P,
        currentPercent: 15,
        signals: sev({ cpu: 0.2, err: 0.05, lat: 0.2 }),
        state: steadyState(15, T0 - 30_000, {
          breach: { at: T0 - 60_000, percent: 16.5, signal: 'errorRate' },
        }),
      }),
    reason: 'Headroom',
    action: 'increase',
    // The creep: the larger of half the step (0.5) and the smallest raise worth a write (3 % of 15).
    percent: 15.5,
    message: ['near the last breach at 16.5 %'],
  },
  {
    name: 'the breach level is forgotten after breachMemorySeconds',
    decide: () =>
      decide({
        now: T0,
        policy: P,
        currentPercent: 17,
        signals: sev({ cpu: 0.2, err: 0.05, lat: 0.2 }),
        state: steadyState(17, T0 - 30_000, {
          breach: { at: T0 - 1_800_000, percent: 20, signal: 'errorRate' },
        }),
      }),
    reason: 'Headroom',
    action: 'increase',
    percent: (p) => p > 18,
  },
  {
    name: 'an increase is withheld when the hourly write budget is spent',
    decide: () =>
      decide({
        now: T0,
        policy: P,
        currentPercent: 10,
        signals: sev(),
        state: steadyState(10, T0 - 30_000, {
          writesAgo: Array.from({ length: 30 }, (_, i) => 200 + i * 100),
        }),
      }),
    reason: 'WriteBudget',
    action: 'hold',
    percent: 10,
    message: ['30 writes in the last hour (max 30)'],
  },
  {
    name: 'writes older than an hour leave the budget',
    decide: () =>
      decide({
        now: T0,
        policy: P,
        currentPercent: 10,
        signals: sev(),
        state: steadyState(10, T0 - 30_000, { writesAgo: Array.from({ length: 30 }, (_, i) => 3571 + i) }),
      }),
    reason: 'Headroom',
    action: 'increase',
  },
  {
    name: 'a breach is cut even when the write budget is spent',
    decide: () =>
      decide({
        now: T0,
        policy: P,
        currentPercent: 10,
        signals: sev({ cpu: 2 }),
        state: steadyState(10, T0 - 30_000, {
          writesAgo: Array.from({ length: 30 }, (_, i) => 200 + i * 100),
        }),
      }),
    reason: 'GuardrailBreached',
    action: 'decrease',
    percent: 5,
  },
  // Guardrail details.
  {
    name: 'a signal without a configured guardrail is ignored',
    decide: () =>
      one(20, sev({ cpu: 0.3, err: 5 }), policy({ guardrails: { cpuUtilization: LIMITS.cpuUtilization } })),
    reason: 'Headroom',
    action: 'increase',
  },
  {
    name: 'a limit of 0 breaches on any non-zero reading',
    decide: () =>
      one(
        20,
        { cpuUtilization: value(0.1), errorRate: value(0.0001) },
        policy({ guardrails: { cpuUtilization: 0.8, errorRate: 0 } }),
      ),
    reason: 'GuardrailBreached',
    action: 'decrease',
    percent: 10,
  },
  {
    name: 'a limit of 0 with a zero reading is headroom',
    decide: () =>
      one(
        20,
        { cpuUtilization: value(0.1), errorRate: value(0) },
        policy({ guardrails: { cpuUtilization: 0.8, errorRate: 0 } }),
      ),
    reason: 'Headroom',
    action: 'increase',
  },
];

describe('decide', () => {
  it.each(rows)('$name', (row) => {
    const d = row.decide();
    expect(d.reason, d.message).toBe(row.reason);
    expect(d.action, d.message).toBe(row.action);
    if (typeof row.percent === 'number') expect(d.percent, d.message).toBeCloseTo(row.percent, 9);
    if (typeof row.percent === 'function')
      expect(row.percent(d.percent), `${d.percent}: ${d.message}`).toBe(true);
    for (const part of row.message ?? []) expect(d.message).toContain(part);
    expect(Number.isInteger(Math.round(d.percent * 100))).toBe(true);
  });

  // Above ~16.7 % the creep near a breach level is the smallest raise worth a write exactly; on the 0.01
  // grid it must still be written, not withheld by ChangeTooSmall for ever.
  it('the creep near a remembered breach level is written at 18 % too', () => {
    const d = decide({
      now: T0,
      policy: P,
      currentPercent: 18,
      signals: sev({ cpu: 0.2, err: 0.05, lat: 0.2 }),
      state: steadyState(18, T0 - 30_000, { breach: { at: T0 - 60_000, percent: 20, signal: 'errorRate' } }),
    });
    expect(d.reason, d.message).toBe('Headroom');
  });

  it('a trim from a percentage set off the grid by hand lands on the grid', () => {
    // Someone set 0.0134 % by hand; the smallest cut (0.01) from there is 0.0034, which is not a value to write.
    const pol = policy({
      min: 1e-9,
      max: 100,
      guardrails: { cpuUtilization: 0.26946720882978986, errorRate: 0.5, latencyP99Ms: 10 },
      intervalSeconds: 84,
      windowSeconds: 786,
      control: {
        minChangePercent: 0,
        cooldownSeconds: 0,
        hysteresis: 0,
        increaseStepPercent: 0,
        maxIncreaseFactor: 3,
      },
    });
    const d = run(pol, 0.013392586915697648, [
      { signals: { cpuUtilization: value(0.2694672088297899) } },
    ]).last;
    expect(d.action, d.message).toBe('decrease');
    expect(d.message).toContain('trim');
    expect(d.percent).toBe(1e-9);
  });

  it('a cold start whose first step is a minChangePercent off the grid rounds it up onto the grid', () => {
    const pol = policy({ min: 0, max: 100, control: { minChangePercent: 0.0931, increaseStepPercent: 0 } });
    const quiet = { ...sev({ cpu: 0, err: 0 }), latencyP99Ms: absent('NoTraffic') };
    const d = run(pol, 0, [{ signals: quiet }]).last;
    expect(d.reason, d.message).toBe('ColdStart');
    expect(d.percent).toBe(0.1);
  });

  it('the table covers every reason the core can give (Paused and Overridden belong to the caller)', () => {
    const covered = new Set(rows.map((r) => r.reason));
    const missing = REASONS.filter((r) => r !== 'Paused' && r !== 'Overridden' && !covered.has(r));
    expect(missing).toEqual([]);
  });

  it('reports the severity of each configured guardrail that has a value', () => {
    const d = one(20, {
      cpuUtilization: value(0.4),
      errorRate: absent('NoTraffic'),
      latencyP99Ms: value(250),
    });
    expect(d.severities).toEqual({ cpuUtilization: 0.5, latencyP99Ms: 0.5 });
  });

  it('produces a state that parses and stays small', () => {
    const d = run(P, 20, [
      { signals: sev({ cpu: 1.2 }) },
      { signals: sev({ lat: 1.1 }) },
      { signals: sev() },
    ]).last;
    expect(parseControllerState(JSON.parse(JSON.stringify(d.state)))).toEqual(d.state);
    expect(JSON.stringify(d.state).length).toBeLessThan(1024);
  });

  it('keeps a steady percentage in the band without writing', () => {
    const steps: Step[] = Array.from({ length: 40 }, () => ({
      signals: sev({ cpu: 0.96, err: 0.1, lat: 0.5 }),
    }));
    const { decisions } = run(P, 20, steps);
    expect(decisions.every((d) => d.action === 'hold' && d.reason === 'WithinTolerance')).toBe(true);
  });

  it('tops up once settled readings agree that the percentage sits low in the band', () => {
    const steps: Step[] = Array.from({ length: 4 }, () => ({
      signals: sev({ cpu: 0.85, err: 0.1, lat: 0.3 }),
    }));
    const { decisions } = run(P, 20, steps);
    // One reading is not enough: the band absorbs single readings; three that agree are.
    expect(decisions.slice(0, 2).map((d) => d.reason)).toEqual(['WithinTolerance', 'WithinTolerance']);
    const up = decisions.find((d) => d.action === 'increase');
    expect(up?.reason).toBe('Headroom');
    expect(up?.percent).toBeGreaterThan(20);
    // Toward the target severity, 1 - hysteresis * LAW.targetInBand = 0.95, and no further.
    expect(up?.percent).toBe(Math.floor(((20 * (1 - 0.2 * LAW.targetInBand)) / 0.85) * 100) / 100);
  });

  it('follows falling production up to the load anchor when the readings still have room there', () => {
    // Anchor: 300 req/s took severity 0.9. Now 10 % brings 200 req/s (20 req/s per percent) at CPU 0.6:
    // carried linearly to 300 req/s that is 0.9, within the target, so 15 % gives the anchor's load back.
    const state: CoreState = { ...steadyState(10, T0 - 30_000), anchor: [300, 0.9] };
    const d = run(
      P,
      10,
      [{ signals: sev({ cpu: 0.6, err: 0.1, lat: 0.2 }), requestRate: value(200) }],
      state,
    ).last;
    expect(d.action).toBe('increase');
    expect(d.reason).toBe('Headroom');
    expect(d.percent).toBe(15);
    expect(d.message).toContain('follow 10 -> 15');
  });

  it('does not follow the load anchor when the target now costs more per request', () => {
    // CPU 0.7 at 200 req/s carries to 1.05 at 300 req/s: capacity was lost, the anchor is stale.
    const state: CoreState = { ...steadyState(10, T0 - 30_000), anchor: [300, 0.9] };
    const d = run(
      P,
      10,
      [{ signals: sev({ cpu: 0.7, err: 0.1, lat: 0.2 }), requestRate: value(200) }],
      state,
    ).last;
    expect(d.message).not.toContain('follow');
    expect(d.percent).toBeLessThan(15);
  });

  it('a retract is not remembered as a breach: the next raises do not creep below the retracted level', () => {
    const { last } = run(P, 10, [{ signals: sev() }, { signals: sev({ cpu: 0.95 }) }]);
    expect(last.message).toContain('take back');
    expect(last.state.breach).toBeUndefined();
  });

  it('keeps the load anchor through a breach at a load well above it (production surged)', () => {
    // Anchor 300 req/s. Production tripled: the readings' window shows 450 req/s at an equivalent of a
    // third of the percentage, so the load that broke the target is 1350 req/s, far above the anchor.
    const state: CoreState = {
      ...steadyState(10, T0 - 30_000),
      anchor: [300, 0.9],
      basis: 1000,
      held: 1000,
      prod: [[30, 1000]],
    };
    const surged = run(
      P,
      10,
      [{ signals: sev({ lat: 3 }), requestRate: value(450), productionRate: value(3000) }],
      state,
    ).last;
    expect(surged.reason).toBe('GuardrailBreached');
    expect((surged.state as CoreState).anchor).toEqual([300, 0.9]);
    // The breach is remembered at the grown load, not at the 450 req/s the window still averaged (the
    // production reading, a rate over 60 s, itself covers part of that window: growth 1.2 here).
    expect(surged.state.breach?.rps ?? 0).toBeGreaterThan(1.15 * 450);
    // A capacity drop at the anchor's own load drops it.
    const dropped = run(P, 10, [{ signals: sev({ lat: 3 }), requestRate: value(300) }], {
      ...steadyState(10, T0 - 30_000),
      anchor: [300, 0.9],
    } as CoreState).last;
    expect((dropped.state as CoreState).anchor).toBeUndefined();
  });

  it('follows the load anchor back up past a knee signal that reads no more than it did there', () => {
    // p99 0.5 now, 0.9 the worst at the anchor: an assumed knee (elasticity 2) projected over ×1.5 puts
    // it at 1.1 and would block the way back; the reading says the target is where it was below the
    // anchor's load.
    const state: CoreState = { ...steadyState(10, T0 - 30_000), anchor: [300, 0.9] };
    const d = run(
      P,
      10,
      [{ signals: sev({ cpu: 0.5, err: 0.1, lat: 0.5 }), requestRate: value(200) }],
      state,
    ).last;
    expect(d.message).toContain('follow 10 -> 15');
    // Above the anchor's worst severity the knee signal blocks it.
    const blocked = run(
      P,
      10,
      [{ signals: sev({ cpu: 0.5, err: 0.1, lat: 0.95 }), requestRate: value(200) }],
      state,
    ).last;
    expect(blocked.message).not.toContain('follow');
  });

  describe('the calm memory: where the knee signals were seen calm, as CPU measures load', () => {
    const at = (calm: readonly [number, number, number]) =>
      ({ ...steadyState(10, T0 - 600_000), calm }) as CoreState;

    it('raises past the knee cap up to the CPU level at which the knee signal was calm', () => {
      // p99 0.4 now; it read 0.4 with CPU at 0.9, now 0.45: the load may double before CPU is back there.
      const d = run(
        P,
        10,
        [{ signals: sev({ cpu: 0.45, err: 0.1, lat: 0.4 }) }],
        at([0.9, 0.4, T0 - 60_000]),
      ).last;
      expect(d.reason, d.message).toBe('Headroom');
      expect(d.percent).toBe(20);
      // Without the memory the knee caps the raise near ×1.1.
      const capped = run(
        P,
        10,
        [{ signals: sev({ cpu: 0.45, err: 0.1, lat: 0.4 }) }],
        steadyState(10, T0 - 600_000),
      ).last;
      expect(capped.percent).toBeLessThan(11.5);
    });

    it('does not lift the knee cap when a knee signal now reads above what it read then', () => {
      const d = run(
        P,
        10,
        [{ signals: sev({ cpu: 0.45, err: 0.1, lat: 0.55 }) }],
        at([0.9, 0.4, T0 - 60_000]),
      ).last;
      expect(d.percent).toBeLessThan(11.5);
      // ...and the memory is dropped once it is contradicted by more than the slack (0.55 > 0.4 × 1.25),
      // and what the readings now say replaces it.
      expect((d.state as CoreState).calm?.slice(0, 2)).toEqual([0.45, 0.55]);
    });

    it('is learned from settled readings with the knee signals calm, and kept through a breach', () => {
      const calmRun = run(
        P,
        20,
        Array.from({ length: 3 }, () => ({ signals: sev({ cpu: 0.9, err: 0.1, lat: 0.4 }) })),
      );
      expect((calmRun.last.state as CoreState).calm?.slice(0, 2)).toEqual([0.9, 0.4]);
      // In an overload p99 shows the worst of the window at once while CPU, a mean, trails: no contradiction.
      const broke = run(P, 20, [{ signals: sev({ cpu: 0.9, err: 0.1, lat: 1.5 }) }], calmRun.last.state).last;
      expect(broke.reason).toBe('GuardrailBreached');
      expect((broke.state as CoreState).calm?.slice(0, 2)).toEqual([0.9, 0.4]);
    });
  });

  it('does not top up on readings that disagree (noise)', () => {
    const cpus = [0.85, 0.9, 0.84, 0.9, 0.85, 0.9];
    const { decisions } = run(
      P,
      20,
      cpus.map((cpu) => ({ signals: sev({ cpu, err: 0.1, lat: 0.3 }) })),
    );
    expect(decisions.every((d) => d.action === 'hold')).toBe(true);
  });

  it('settles between raises for at least half the window after the lag', () => {
    const steps: Step[] = Array.from({ length: 20 }, () => ({
      signals: sev({ cpu: 0.1, err: 0.1, lat: 0.1 }),
    }));
    const { decisions } = run(policy({ max: 100 }), 1, steps);
    const raises = decisions.flatMap((d, i) => (d.action === 'increase' ? [i] : []));
    expect(raises.length).toBeGreaterThan(2);
    // lag = propagation 5 s + half the 15 s scrape; then half the 120 s window.
    const settle = 5 + 15 / 2 + 120 * LAW.settleVisibility;
    for (let i = 1; i < raises.length; i++) {
      expect(((raises[i] ?? 0) - (raises[i - 1] ?? 0)) * 30).toBeGreaterThanOrEqual(settle);
    }
  });
});
