import { describe, expect, it } from 'vitest';
import { type Controller, recoveryAfter, runClosedLoop } from '../../src/sim/loop.js';
import { inBreach, productionRps, scheduleAt, trueSignals } from '../../src/sim/plant.js';
import {
  buildScenario,
  DEFAULT_SIM_POLICY,
  SCENARIO_NAMES,
  scenarioPolicy,
} from '../../src/sim/scenarios.js';

/** Never writes: the target stays at the scenario's initial percentage. */
const holdStill: Controller<undefined> = (input) => ({
  percent: input.currentPercent ?? 100,
  action: 'hold',
  reason: 'WithinTolerance',
  state: undefined,
});

/** Writes `percent` once, then holds; counts its evaluations in its state. */
const setOnce =
  (percent: number): Controller<number> =>
  (input) =>
    input.state === undefined
      ? { percent, action: 'increase', state: 1 }
      : { percent: input.currentPercent ?? 100, action: 'hold', state: input.state + 1 };

describe('runClosedLoop with a static controller', () => {
  const duration = 1800;
  const seed = 3;
  const scenario = buildScenario('capacity-drop', seed, duration);
  const policy = scenarioPolicy(scenario);
  const result = runClosedLoop({ scenario, seed, durationSeconds: duration }, holdStill);

  /** The largest safe percentage by bisection on the percentage itself. */
  const oracle = (t: number): number => {
    const prod = productionRps(scenario.plant.traffic, t);
    const capacity = scheduleAt(scenario.plant.capacityRps, t);
    const safe = (p: number) =>
      !inBreach(policy.guardrails, trueSignals(scenario.plant.profile, (prod * p) / 100 / capacity));
    let lo = policy.bounds.minPercent;
    let hi = policy.bounds.maxPercent;
    if (safe(hi)) return hi;
    for (let i = 0; i < 50; i++) {
      const mid = (lo + hi) / 2;
      if (safe(mid)) lo = mid;
      else hi = mid;
    }
    return lo;
  };

  it('mirrors the initial percentage of production and compares it with the oracle', () => {
    expect(scenario.initialPercent).toBe(10);
    let mirrored = 0;
    let safe = 0;
    for (let t = 0; t < duration; t++) {
      const prod = productionRps(scenario.plant.traffic, t);
      mirrored += prod * 0.1;
      safe += (prod * oracle(t)) / 100;
    }
    expect(result.summary.mirroredRequests).toBeCloseTo(mirrored, 3);
    expect(result.summary.oracleRequests).toBeCloseTo(safe, 0);
    expect(result.summary.mirroredShare).toBeCloseTo(mirrored / safe, 6);
    expect(result.summary.meanPercent).toBeCloseTo(10, 9);
    let lowest = Number.POSITIVE_INFINITY;
    for (let t = 0; t < duration; t++) lowest = Math.min(lowest, oracle(t));
    expect(result.summary.minOraclePercent).toBeCloseTo(lowest, 6);
  });

  it('counts the seconds the true target spends above a guardrail', () => {
    let breach = 0;
    for (let t = 0; t < duration; t++) {
      const prod = productionRps(scenario.plant.traffic, t);
      const u = (prod * 0.1) / scheduleAt(scenario.plant.capacityRps, t);
      if (inBreach(policy.guardrails, trueSignals(scenario.plant.profile, u))) breach++;
    }
    // 10 % is safe at full capacity but not at half: the drop must show as breach.
    expect(breach).toBeGreaterThan(0);
    expect(result.summary.breachSeconds).toBe(breach);
    expect(result.samples.reduce((sum, s) => sum + s.breachSeconds, 0)).toBeLessThanOrEqual(breach);
    // A controller that never moves stays in breach until capacity returns.
    const drop = scenario.capacityDropAtSeconds ?? Number.NaN;
    expect(result.summary.recoverySeconds).toBe(breach);
    expect(drop).toBeGreaterThan(0);
  });

  it('evaluates every interval and never writes', () => {
    expect(result.samples).toHaveLength(duration / policy.intervalSeconds);
    expect(result.samples.map((s) => s.t).slice(0, 3)).toEqual([0, 30, 60]);
    expect(result.summary.writes).toBe(0);
    expect(result.summary.writesPerHour).toBe(0);
    expect(result.summary.maxPercentWhileBlind).toBeNull();
  });
});

describe('runClosedLoop: writes and propagation', () => {
  it('a write reaches the target after the propagation delay and counts once', () => {
    const result = runClosedLoop({ scenario: 'steady', seed: 1, durationSeconds: 600 }, setOnce(20));
    const [first, second] = result.samples;
    expect(first?.percent).toBe(5);
    expect(first?.setPercent).toBe(20);
    expect(second?.percent).toBe(20);
    expect(result.summary.writes).toBe(1);
    expect(result.summary.writesPerHour).toBe(6);
    // 5 s at 5 % (the delay), then 595 s at 20 %.
    expect(result.summary.meanPercent).toBeCloseTo((5 * 5 + 595 * 20) / 600, 9);
  });

  it('passes the policy, a fixed clock and the previous state to the controller', () => {
    const seen: { now: number; state: number | undefined; current: number | null }[] = [];
    const policy = { ...DEFAULT_SIM_POLICY, intervalSeconds: 60 };
    runClosedLoop<number>(
      { scenario: 'steady', seed: 1, durationSeconds: 180, policy, startEpochMs: 1_000_000 },
      (input) => {
        seen.push({ now: input.now, state: input.state, current: input.currentPercent });
        expect(input.policy).toBe(policy);
        return { percent: 7, action: 'increase', state: (input.state ?? 0) + 1 };
      },
    );
    expect(seen).toEqual([
      { now: 1_000_000, state: undefined, current: 5 },
      { now: 1_060_000, state: 1, current: 7 },
      { now: 1_120_000, state: 2, current: 7 },
    ]);
  });
});

describe('runClosedLoop: blindness', () => {
  it('an outage makes evaluations blind and records the percentage held through it', () => {
    const result = runClosedLoop({ scenario: 'prometheus-outage', seed: 2 }, holdStill);
    // 3 minutes of failed queries = 6 evaluations, and the window is short of samples just after.
    expect(result.summary.blindEvaluations).toBeGreaterThanOrEqual(6);
    expect(result.summary.maxPercentWhileBlind).toBe(10);
    expect(result.summary.maxRiseWhileBlind).toBe(0);
    const failed = result.samples.filter((s) => s.observed.cpuUtilization?.kind === 'absent');
    expect(
      failed.some(
        (s) =>
          s.observed.cpuUtilization?.kind === 'absent' && s.observed.cpuUtilization.reason === 'QueryFailed',
      ),
    ).toBe(true);
  });

  it('a rise while blind is measured against the last level seen safe', () => {
    const climbBlind: Controller<undefined> = (input) => {
      const cpu = input.signals.cpuUtilization;
      const blind = cpu?.kind === 'absent';
      const current = input.currentPercent ?? 100;
      return blind
        ? { percent: current + 1, action: 'increase', state: undefined }
        : { percent: current, action: 'hold', state: undefined };
    };
    const result = runClosedLoop({ scenario: 'prometheus-outage', seed: 2 }, climbBlind);
    const blind = result.summary.blindEvaluations;
    expect(result.summary.maxRiseWhileBlind).toBe(blind);
    expect(result.summary.maxPercentWhileBlind).toBe(10 + blind);
  });
});

describe('runClosedLoop: determinism', () => {
  const summarise = (seed: number) =>
    runClosedLoop({ scenario: 'noisy', seed, durationSeconds: 1800 }, setOnce(15)).summary;

  it('the same seed gives the same result', () => {
    const a = runClosedLoop({ scenario: 'noisy', seed: 11, durationSeconds: 1800 }, setOnce(15));
    const b = runClosedLoop({ scenario: 'noisy', seed: 11, durationSeconds: 1800 }, setOnce(15));
    expect(b).toEqual(a);
  });

  it('different seeds give different results', () => {
    expect(summarise(11).mirroredRequests).not.toBe(summarise(12).mirroredRequests);
    const a = runClosedLoop({ scenario: 'noisy', seed: 11, durationSeconds: 600 }, holdStill);
    const b = runClosedLoop({ scenario: 'noisy', seed: 12, durationSeconds: 600 }, holdStill);
    expect(b.samples.map((s) => s.observed)).not.toEqual(a.samples.map((s) => s.observed));
  });

  it.each(SCENARIO_NAMES.map((name) => ({ name })))('a 2 h run of $name is fast', ({ name }) => {
    const started = performance.now();
    const result = runClosedLoop({ scenario: name, seed: 1 }, holdStill);
    expect(result.samples).toHaveLength(240);
    // Generous bound (CI machines vary); typical runs take a few tens of milliseconds.
    expect(performance.now() - started).toBeLessThan(1000);
  });
});

describe('runClosedLoop: options', () => {
  const rows = [
    {
      name: 'zero duration',
      options: { durationSeconds: 0 },
      message: 'simulate: durationSeconds: must be a positive number (got 0)',
    },
    {
      name: 'zero interval',
      options: { policy: { ...DEFAULT_SIM_POLICY, intervalSeconds: 0 } },
      message: 'simulate: policy.intervalSeconds: must be a positive number (got 0)',
    },
    {
      name: 'NaN window',
      options: { policy: { ...DEFAULT_SIM_POLICY, windowSeconds: Number.NaN } },
      message: 'simulate: policy.windowSeconds: must be a positive number (got NaN)',
    },
  ];
  it.each(rows)('refuses $name', ({ options, message }) => {
    expect(() => runClosedLoop({ scenario: 'steady', seed: 1, ...options }, holdStill)).toThrow(message);
  });

  it('refuses a controller that writes a non-finite percentage', () => {
    const broken: Controller<undefined> = () => ({
      percent: Number.NaN,
      action: 'increase',
      state: undefined,
    });
    expect(() => runClosedLoop({ scenario: 'steady', seed: 1 }, broken)).toThrow(
      'simulate: controller: percent must be a finite number (got NaN at t=0 s)',
    );
  });
});

describe('recoveryAfter', () => {
  const seconds = (pattern: string) => Uint8Array.from(pattern, (c) => (c === '#' ? 1 : 0));
  const rows = [
    { name: 'no drop in the scenario', breach: '....', dropAt: undefined, want: null },
    { name: 'no breach after the drop', breach: '..........', dropAt: 2, want: 0 },
    { name: 'breach from the drop', breach: '..####....', dropAt: 2, want: 4 },
    { name: 'breach starting a little later', breach: '....###...', dropAt: 2, want: 5 },
    { name: 'a later breach is not the drop', breach: `${'..........'.repeat(7)}##`, dropAt: 2, want: 0 },
    { name: 'breach until the end', breach: '..########', dropAt: 2, want: 8 },
  ];
  it.each(rows)('$name', ({ breach, dropAt, want }) => {
    expect(recoveryAfter(seconds(breach), dropAt)).toBe(want);
  });
});

/** Holds still and records what it was given. */
function recorder() {
  const seen: Array<{
    t: number;
    production: number | undefined;
    input: Parameters<Controller<undefined>>[0];
  }> = [];
  const controller: Controller<undefined> = (input) => {
    const p = input.productionRate;
    seen.push({
      t: (input.now - Date.UTC(2026, 0, 1)) / 1000,
      production: p?.kind === 'value' ? p.value : undefined,
      input,
    });
    return holdStill(input);
  };
  return { seen, controller };
}

describe('runClosedLoop: the time scale and the production feed', () => {
  it('a time scale sets the scrape interval, a per-seed phase, the interval, the window and the Stale limit', () => {
    const { seen, controller } = recorder();
    const timeScale = { scrapeIntervalSeconds: 5, intervalSeconds: 15, windowSeconds: 60 };
    const result = runClosedLoop(
      { scenario: 'steady', seed: 4, durationSeconds: 600, timeScale },
      controller,
    );
    expect(result.policy.intervalSeconds).toBe(15);
    expect(result.policy.windowSeconds).toBe(60);
    expect(result.scenario.observation.scrapeIntervalSeconds).toBe(5);
    expect(result.scenario.observation.staleAfterSeconds).toBe(120);
    const phase = result.scenario.observation.scrapeOffsetSeconds;
    expect(phase).toBeGreaterThanOrEqual(0);
    expect(phase).toBeLessThan(5);
    expect(phase).not.toBe(Math.round(phase));
    expect(seen.map((s) => s.t).slice(0, 3)).toEqual([0, 15, 30]);
    expect(seen).toHaveLength(40);
    for (const s of seen) {
      expect(s.input.observation).toEqual({ scrapeIntervalSeconds: 5, propagationSeconds: 5 });
    }
    const other = runClosedLoop({ scenario: 'steady', seed: 5, durationSeconds: 600, timeScale }, holdStill);
    expect(other.scenario.observation.scrapeOffsetSeconds).not.toBe(phase);
  });

  it('without a time scale the controller is told the scenario’s own scrape interval and propagation', () => {
    const { seen, controller } = recorder();
    runClosedLoop({ scenario: 'steady', seed: 1, durationSeconds: 300 }, controller);
    expect(seen[0]?.input.observation).toEqual({ scrapeIntervalSeconds: 15, propagationSeconds: 5 });
  });

  it.each([1, 5, 15, 30])(
    'production rate at %i s scrapes: Prometheus’ rate of the production counter',
    (scrape) => {
      const { seen, controller } = recorder();
      const timeScale = {
        scrapeIntervalSeconds: scrape,
        intervalSeconds: Math.max(5, scrape),
        windowSeconds: 4 * scrape + 20,
      };
      const result = runClosedLoop(
        { scenario: 'steady', seed: 2, durationSeconds: 900, timeScale },
        controller,
      );
      const truth = productionRps(result.scenario.plant.traffic, 0);
      for (const s of seen) {
        // Poisson counts over a window of at least 3 s of ~2,000/s: well within 5 %.
        expect(s.production).toBeDefined();
        expect(Math.abs((s.production ?? 0) / truth - 1)).toBeLessThan(0.05);
      }
    },
  );

  it('productionFeed: false withholds the production rate', () => {
    const { seen, controller } = recorder();
    runClosedLoop({ scenario: 'steady', seed: 1, durationSeconds: 300, productionFeed: false }, controller);
    expect(seen.every((s) => s.input.productionRate === undefined)).toBe(true);
  });

  it('the production rate is QueryFailed during a Prometheus outage', () => {
    const { seen, controller } = recorder();
    const result = runClosedLoop(
      { scenario: 'prometheus-outage', seed: 1, durationSeconds: 3600 },
      controller,
    );
    const outage = result.scenario.observation.outages[0];
    expect(outage).toBeDefined();
    const during = seen.filter(
      (s) => outage !== undefined && s.t >= outage.startSeconds && s.t < outage.endSeconds,
    );
    expect(during.length).toBeGreaterThan(0);
    for (const s of during) {
      expect(s.input.productionRate).toEqual(
        expect.objectContaining({ kind: 'absent', reason: 'QueryFailed' }),
      );
    }
  });

  // The surge is production ×3 over 30 s: a controller fed forward must see it within the production
  // window plus a scrape of the ramp's end, on every time scale.
  it.each([
    [1, 5, 20],
    [5, 15, 60],
    [15, 30, 120],
    [30, 60, 300],
  ])(
    'surge at %i s scrapes, %i s interval, %i s window: the production rate shows ×3 in time',
    (scrape, interval, window) => {
      const { seen, controller } = recorder();
      const timeScale = { scrapeIntervalSeconds: scrape, intervalSeconds: interval, windowSeconds: window };
      const duration = 3600;
      const result = runClosedLoop(
        { scenario: 'surge', seed: 1, durationSeconds: duration, timeScale },
        controller,
      );
      const traffic = result.scenario.plant.traffic;
      const base = productionRps(traffic, 0);
      const ramp = traffic.multiplier?.[0]?.[0] ?? Number.NaN;
      expect(productionRps(traffic, ramp + 30)).toBeCloseTo(3 * base, 6);
      const lag = Math.min(window, Math.ceil(3 * scrape)) + scrape;
      // Before the surge the controller sees about the base rate.
      const before = seen.filter((s) => s.t < ramp);
      expect(Math.abs((before[before.length - 1]?.production ?? 0) / base - 1)).toBeLessThan(0.05);
      // From the first evaluation at least `lag` after the ramp's end, it sees the tripled rate.
      // The samples carry what the controller was given.
      expect(result.samples.map((s) => s.observedProductionRate)).toEqual(
        seen.map((s) => s.input.productionRate),
      );
      const after = seen.find((s) => s.t >= ramp + 30 + lag);
      expect(after).toBeDefined();
      expect(after !== undefined && after.t - (ramp + 30 + lag)).toBeLessThan(interval);
      expect((after?.production ?? 0) / base).toBeGreaterThan(2.85);
      // And not before the surge began: no look-ahead.
      expect(seen.filter((s) => s.t <= ramp).every((s) => (s.production ?? 0) / base < 1.05)).toBe(true);
    },
  );

  it('reach: seconds until the target gets 85 % of the oracle, from the start and after capacity returns', () => {
    const duration = 3600;
    const scenario = buildScenario('capacity-drop', 1, duration);
    const back = scenario.capacityRestoredAtSeconds;
    expect(back).toBeDefined();
    // Static at 10 %: below 85 % of the oracle (~16 %) throughout, except while capacity is halved.
    const low = runClosedLoop({ scenario, seed: 1, durationSeconds: duration }, holdStill).summary;
    expect(low.reachSeconds).toBe(scenario.capacityDropAtSeconds);
    expect(low.reachAfterRestoreSeconds).toBeNull();
    // A controller that writes 30 % at once reaches it after the propagation delay.
    const high = runClosedLoop({ scenario, seed: 1, durationSeconds: duration }, setOnce(30)).summary;
    expect(high.reachSeconds).toBe(scenario.propagationDelaySeconds);
    expect(high.reachAfterRestoreSeconds).toBe(0);
  });
});
