/**
 * The baselines of bench/control.ts, rule by rule, and a smoke run of the benchmark machinery at one seed,
 * a short duration and two time scales. The smoke run checks the shape of what it produces (tables,
 * summaries, verdicts, chart, files), never the quality figures of the decision core.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HPA,
  DEFAULT_TRACKING,
  flaggerController,
  type HpaState,
  hpaController,
  oracleController,
  oracleFractionController,
  quantiseDown,
  SAFE_FRACTION,
  staticController,
  type TrackingState,
  trackingController,
  trackingStabilisationSeconds,
  trueOracle,
} from '../../bench/contenders.js';
import {
  aggregate,
  CONTENDER_IDS,
  CONTENDER_LABELS,
  type ContenderId,
  ControlOptionError,
  type ControlOptions,
  type ControlResults,
  evaluateTargets,
  formatReport,
  gridScales,
  parseOptions,
  type RunFigures,
  raisesWhileBlind,
  reachStat,
  renderSvg,
  runControlBenchmark,
  runControlBenchmarkParallel,
  scaleId,
  stat,
  summaries,
  TARGET_IDS,
  TARGETS,
  writeOutputs,
} from '../../bench/control.js';
import type { ControlPolicy, Signal, Signals } from '../../src/core/types.js';
import {
  buildScenario,
  type Controller,
  type ControllerInput,
  DEFAULT_SIM_POLICY,
  runClosedLoop,
  type ScenarioName,
  SIM_EPOCH_MS,
  scenarioPolicy,
} from '../../src/sim/index.js';

const POLICY: ControlPolicy = DEFAULT_SIM_POLICY; // bounds 1..50; cpu 0.8, errors 0.01, p99 500 ms
const NOW = SIM_EPOCH_MS + 3_600_000;
const v = (value: number): Signal => ({ kind: 'value', value });
const absent = (reason: 'NoSeries' | 'NoTraffic' | 'QueryFailed' | 'Stale'): Signal => ({
  kind: 'absent',
  reason,
});
/** Signals whose worst severity is `cpuSeverity` on CPU, the others far below their limits. */
const cpuAt = (cpuSeverity: number, extra: Signals = {}): Signals => ({
  cpuUtilization: v(0.8 * cpuSeverity),
  errorRate: v(0.001),
  latencyP99Ms: v(100),
  ...extra,
});

function input<S>(
  currentPercent: number | null,
  signals: Signals,
  state?: S,
  policy: ControlPolicy = POLICY,
  now = NOW,
): ControllerInput<S> {
  return { now, policy, currentPercent, signals, state };
}

describe('staticController', () => {
  const rows = [
    {
      name: 'writes the constant when another value is in effect',
      percent: 10,
      current: 5,
      want: 10,
      action: 'increase',
    },
    { name: 'holds once the constant is in effect', percent: 10, current: 10, want: 10, action: 'hold' },
    {
      name: 'an unset percentage (100 %) is brought down',
      percent: 10,
      current: null,
      want: 10,
      action: 'decrease',
    },
    { name: 'clamps to maxPercent', percent: 80, current: 10, want: 50, action: 'increase' },
    { name: 'clamps to minPercent', percent: 0.2, current: 10, want: 1, action: 'decrease' },
    { name: 'rounds down to the quantum', percent: 12.3456, current: 10, want: 12.34, action: 'increase' },
  ] as const;
  it.each(rows)('$name', ({ percent, current, want, action }) => {
    const d = staticController(percent)(input(current, cpuAt(3)));
    expect(d.action).toBe(action);
    expect(d.percent).toBeCloseTo(want, 9);
  });
});

describe('hpaController', () => {
  const hpa = hpaController();
  const target = DEFAULT_HPA.targetRatio;
  const rec = (secondsAgo: number, percent: number): readonly [number, number] => [
    NOW - secondsAgo * 1000,
    percent,
  ];
  const rows: ReadonlyArray<{
    name: string;
    current: number | null;
    signals: Signals;
    history?: ReadonlyArray<readonly [number, number]>;
    want: number;
    action: 'increase' | 'decrease' | 'hold';
    reason: string;
    policy?: ControlPolicy;
  }> = [
    {
      name: 'raises so that the worst signal lands on its target',
      current: 10,
      signals: cpuAt(0.6),
      want: quantiseDown((10 * target) / 0.6),
      action: 'increase',
      reason: 'Headroom',
    },
    {
      name: 'at most doubles per evaluation (the default scaleUp policy)',
      current: 10,
      signals: cpuAt(0.1),
      want: 20,
      action: 'increase',
      reason: 'Headroom',
    },
    {
      name: 'holds within the tolerance',
      current: 10,
      signals: cpuAt(target * 1.09),
      want: 10,
      action: 'hold',
      reason: 'WithinTolerance',
    },
    {
      name: 'cuts proportionally when nothing higher was recommended in the window',
      current: 10,
      signals: cpuAt(target * 2),
      want: 5,
      action: 'decrease',
      reason: 'GuardrailRatio',
    },
    {
      name: 'the worst signal decides',
      current: 10,
      signals: cpuAt(0.3, { latencyP99Ms: v(500 * target * 4) }),
      want: 2.5,
      action: 'decrease',
      reason: 'GuardrailRatio',
    },
    {
      name: 'a decrease goes only to the highest recommendation of the last 5 minutes',
      current: 10,
      signals: cpuAt(target * 2),
      history: [rec(200, 8), rec(100, 6)],
      want: 8,
      action: 'decrease',
      reason: 'GuardrailRatio',
    },
    {
      name: 'no decrease while a recommendation of the last 5 minutes was at or above the current value',
      current: 10,
      signals: cpuAt(target * 2),
      history: [rec(250, 12)],
      want: 10,
      action: 'hold',
      reason: 'Stabilising',
    },
    {
      name: 'recommendations older than 5 minutes are forgotten',
      current: 10,
      signals: cpuAt(target * 2),
      history: [rec(301, 12)],
      want: 5,
      action: 'decrease',
      reason: 'GuardrailRatio',
    },
    {
      name: 'increases are not stabilised',
      current: 10,
      signals: cpuAt(target / 1.5),
      history: [rec(60, 3)],
      want: 15,
      action: 'increase',
      reason: 'Headroom',
    },
    {
      name: 'no increase on missing data',
      current: 10,
      signals: cpuAt(0.3, { latencyP99Ms: absent('QueryFailed') }),
      want: 10,
      action: 'hold',
      reason: 'NoData',
    },
    {
      name: 'a decrease on the signals it has still goes through while another is missing',
      current: 10,
      signals: cpuAt(target * 2, { errorRate: absent('Stale') }),
      want: 5,
      action: 'decrease',
      reason: 'GuardrailRatio',
    },
    {
      name: 'holds with no data at all',
      current: 10,
      signals: {},
      want: 10,
      action: 'hold',
      reason: 'NoData',
    },
    {
      name: 'holds at 0 % (nothing to scale, as the HPA at zero replicas)',
      current: 0,
      signals: {
        cpuUtilization: absent('NoTraffic'),
        errorRate: absent('NoTraffic'),
        latencyP99Ms: absent('NoTraffic'),
      },
      want: 0,
      action: 'hold',
      reason: 'NoTraffic',
      policy: { ...POLICY, bounds: { minPercent: 0, maxPercent: 50 } },
    },
    {
      name: 'a value below minPercent is brought up to it even without traffic',
      current: 0,
      signals: {
        cpuUtilization: absent('NoTraffic'),
        errorRate: absent('NoTraffic'),
        latencyP99Ms: absent('NoTraffic'),
      },
      want: 1,
      action: 'increase',
      reason: 'NoTraffic',
    },
    {
      name: 'an increase is clamped to maxPercent',
      current: 40,
      signals: cpuAt(0.5),
      want: 50,
      action: 'increase',
      reason: 'Headroom',
    },
    {
      name: 'an unset percentage (100 %) is cut proportionally, clamped to maxPercent',
      current: null,
      signals: cpuAt(target * 1.5),
      want: 50,
      action: 'decrease',
      reason: 'GuardrailRatio',
    },
  ];
  it.each(rows)('$name', ({ current, signals, history, want, action, reason, policy }) => {
    const state: HpaState | undefined = history === undefined ? undefined : { recommendations: history };
    const d = hpa(input(current, signals, state, policy));
    expect(d.action).toBe(action);
    expect(d.reason).toBe(reason);
    expect(d.percent).toBeCloseTo(want, 9);
  });

  it('remembers its recommendations for the stabilisation window only', () => {
    const first = hpa(input(10, cpuAt(target * 2), { recommendations: [rec(400, 30), rec(100, 12)] }));
    expect(first.state.recommendations.map(([at]) => (NOW - at) / 1000)).toEqual([100, 0]);
    expect(first.state.recommendations.at(-1)?.[1]).toBeCloseTo(5, 9);
  });
});

describe('flaggerController', () => {
  const rows: ReadonlyArray<{
    name: string;
    threshold: number;
    current: number;
    signals: Signals;
    failedBefore?: number;
    want: number;
    action: 'increase' | 'decrease' | 'hold';
    failedAfter: number;
    policy?: ControlPolicy;
  }> = [
    {
      name: 'steps up while every check passes',
      threshold: 1,
      current: 10,
      signals: cpuAt(0.9),
      want: 15,
      action: 'increase',
      failedAfter: 0,
    },
    {
      name: 'a check at exactly the limit passes',
      threshold: 1,
      current: 10,
      signals: cpuAt(1),
      want: 15,
      action: 'increase',
      failedAfter: 0,
    },
    {
      name: 'the step stops at maxPercent',
      threshold: 1,
      current: 47,
      signals: cpuAt(0.5),
      want: 50,
      action: 'increase',
      failedAfter: 0,
    },
    {
      name: 'holds at maxPercent',
      threshold: 1,
      current: 50,
      signals: cpuAt(0.5),
      want: 50,
      action: 'hold',
      failedAfter: 0,
    },
    {
      name: 'threshold 1: the first failed check rolls back to minPercent',
      threshold: 1,
      current: 20,
      signals: cpuAt(1.01),
      want: 1,
      action: 'decrease',
      failedAfter: 0,
    },
    {
      name: 'threshold 2: the first failed check halts the step',
      threshold: 2,
      current: 20,
      signals: cpuAt(1.5),
      want: 20,
      action: 'hold',
      failedAfter: 1,
    },
    {
      name: 'threshold 2: the second failed check rolls back',
      threshold: 2,
      current: 20,
      signals: cpuAt(1.5),
      failedBefore: 1,
      want: 1,
      action: 'decrease',
      failedAfter: 0,
    },
    {
      name: 'failed checks count cumulatively, a pass does not reset them',
      threshold: 2,
      current: 20,
      signals: cpuAt(0.5),
      failedBefore: 1,
      want: 25,
      action: 'increase',
      failedAfter: 1,
    },
    {
      name: 'holds on missing data',
      threshold: 1,
      current: 20,
      signals: cpuAt(0.5, { latencyP99Ms: absent('NoSeries') }),
      failedBefore: 0,
      want: 20,
      action: 'hold',
      failedAfter: 0,
    },
    {
      name: 'a failed check counts even when another signal is missing',
      threshold: 1,
      current: 20,
      signals: cpuAt(2, { latencyP99Ms: absent('QueryFailed') }),
      want: 1,
      action: 'decrease',
      failedAfter: 0,
    },
    {
      name: 'steps up from 0 % with no traffic (nothing fails)',
      threshold: 1,
      current: 0,
      signals: {
        cpuUtilization: absent('NoTraffic'),
        errorRate: absent('NoTraffic'),
        latencyP99Ms: absent('NoTraffic'),
      },
      want: 5,
      action: 'increase',
      failedAfter: 0,
      policy: { ...POLICY, bounds: { minPercent: 0, maxPercent: 50 } },
    },
  ];
  it.each(rows)(
    '$name',
    ({ threshold, current, signals, failedBefore, want, action, failedAfter, policy }) => {
      const flagger = flaggerController({ stepPercent: 5, threshold });
      const state = failedBefore === undefined ? undefined : { failedChecks: failedBefore };
      const d = flagger(input(current, signals, state, policy));
      expect(d.action).toBe(action);
      expect(d.percent).toBeCloseTo(want, 9);
      expect(d.state.failedChecks).toBe(failedAfter);
    },
  );
});

describe('oracleController', () => {
  const duration = 1800;
  const seed = 2;
  const scenario = buildScenario('capacity-drop', seed, duration);
  const policy = scenarioPolicy(scenario);
  const truth = trueOracle(scenario, policy);
  const oracle = oracleController(scenario, policy);
  const dropAt = scenario.capacityDropAtSeconds ?? Number.NaN;
  const at = (t: number, current: number) =>
    oracle(input(current, {}, null, policy, SIM_EPOCH_MS + t * 1000));

  it('writes the true oracle percentage, rounded down, when nothing changes ahead', () => {
    const d = at(60, 5);
    expect(d.percent).toBeCloseTo(quantiseDown(truth(60)), 9);
    expect(d.percent).toBeLessThanOrEqual(truth(60));
    expect(d.action).toBe('increase');
  });

  it('looks ahead over the span its write will be in effect, so a drop is met before it comes', () => {
    // The write lands at t + 5 and stays until the next one lands at t + 35, 2 s past the drop.
    const t = dropAt - 33;
    expect(truth(t)).toBeGreaterThan(truth(dropAt) * 1.5);
    expect(at(t, truth(t)).percent).toBeCloseTo(quantiseDown(truth(dropAt + 1)), 9);
  });

  it('holds when its percentage is already in effect', () => {
    expect(at(60, quantiseDown(truth(60))).action).toBe('hold');
  });

  it('never breaches in closed loop on the capacity drop', () => {
    const r = runClosedLoop({ scenario, seed, durationSeconds: duration }, oracle);
    expect(r.summary.breachSeconds).toBe(0);
    expect(r.summary.mirroredShare).toBeGreaterThan(0.9);
    expect(r.summary.mirroredShare).toBeLessThanOrEqual(1);
  });
});

describe('raisesWhileBlind', () => {
  const options = { scenario: 'prometheus-outage' as const, seed: 1, durationSeconds: 1200 };
  it('counts every raise decided on an evaluation with a guardrail missing', () => {
    const climb: Controller<null> = (i) => ({
      percent: (i.currentPercent ?? 100) + 0.01,
      action: 'increase',
      state: null,
    });
    const r = runClosedLoop(options, climb);
    expect(r.summary.blindEvaluations).toBeGreaterThan(0);
    expect(raisesWhileBlind(r)).toBe(r.summary.blindEvaluations);
  });

  it('is 0 for a controller that holds on missing data', () => {
    const r = runClosedLoop(options, flaggerController());
    expect(r.summary.blindEvaluations).toBeGreaterThan(0);
    expect(raisesWhileBlind(r)).toBe(0);
  });
});

describe('trackingController (the HPA algorithm on the mirrored rate: the reference)', () => {
  const track = trackingController();
  const target = DEFAULT_TRACKING.targetRatio;
  const observation = { scrapeIntervalSeconds: 15, propagationSeconds: 5 };
  // Propagation + window + scrape: 5 + 120 + 15.
  const settleS = 140;
  const state = (over: Partial<TrackingState> = {}): TrackingState => ({
    load: 200,
    unit: 'rps',
    changedAt: NOW - 3600_000,
    recommendations: [],
    ...over,
  });
  const at = (
    current: number | null,
    signals: Signals,
    s: TrackingState | undefined,
    { production = 2000, requestRate = ((current ?? 100) * 2000) / 100 } = {},
  ) =>
    track({
      now: NOW,
      policy: POLICY,
      currentPercent: current,
      signals,
      requestRate: v(requestRate),
      ...(production > 0 ? { productionRate: v(production) } : {}),
      observation,
      state: s,
    });

  it('aims the worst severity at its target: load × target / severity, as a percentage of production', () => {
    const d = at(10, cpuAt(0.6), undefined);
    // 200 req/s at 10 % of 2,000; usage 0.6 / 0.9: 300 req/s = 15 %.
    expect(d.percent).toBeCloseTo(15, 9);
    expect(d.action).toBe('increase');
    expect(d.state).toMatchObject({ unit: 'rps', changedAt: NOW });
    expect(d.state.load).toBeCloseTo(300, 9);
  });

  it('holds within the tolerance', () => {
    expect(at(10, cpuAt(target * 1.09), state()).action).toBe('hold');
    expect(at(10, cpuAt(target * 0.91), state()).action).toBe('hold');
    expect(at(10, cpuAt(target * 0.85), state()).action).toBe('increase');
  });

  it('trusts a reading only once propagation + window + scrape have passed since the last change', () => {
    const young = at(10, cpuAt(0.5), state({ changedAt: NOW - (settleS - 1) * 1000 }));
    expect(young).toMatchObject({ action: 'hold', reason: 'Settling' });
    const old = at(10, cpuAt(0.5), state({ changedAt: NOW - settleS * 1000 }));
    expect(old.action).toBe('increase');
    // The wait follows the scrape interval it is told.
    const slow = track({
      now: NOW,
      policy: POLICY,
      currentPercent: 10,
      signals: cpuAt(0.5),
      requestRate: v(200),
      productionRate: v(2000),
      observation: { scrapeIntervalSeconds: 30, propagationSeconds: 5 },
      state: state({ changedAt: NOW - settleS * 1000 }),
    });
    expect(slow.reason).toBe('Settling');
  });

  it('uses the mirrored rate the reading was taken at', () => {
    // The target received 180 req/s over the window although 10 % of 2,000 is 200.
    const d = at(10, cpuAt(0.6), state(), { requestRate: 180 });
    expect(d.state.load).toBeCloseTo(270, 9);
  });

  it('stabilises raises to the lowest recommendation of the window, which scales with the time scale', () => {
    const recent = at(10, cpuAt(0.6), state({ recommendations: [[NOW - 200_000, 220]] }));
    expect(recent.state.load).toBeCloseTo(220, 9);
    expect(recent.percent).toBeCloseTo(11, 9);
    // 300 s at a 2 m window and 15 s scrapes: a recommendation 301 s old has left the window.
    const gone = at(10, cpuAt(0.6), state({ recommendations: [[NOW - 301_000, 220]] }));
    expect(gone.state.load).toBeCloseTo(300, 9);
    expect(trackingStabilisationSeconds(DEFAULT_TRACKING, 120, 15)).toBeCloseTo(300, 9);
    expect(trackingStabilisationSeconds(DEFAULT_TRACKING, 20, 1)).toBeCloseTo((300 * 21) / 135, 9);
    expect(trackingStabilisationSeconds(DEFAULT_TRACKING, 300, 30)).toBeCloseTo((300 * 330) / 135, 9);
  });

  it('cuts at once, whatever the window recommended, but at most halves the load per evaluation', () => {
    const high: TrackingState['recommendations'] = [[NOW - 60_000, 400]];
    const cut = at(10, cpuAt(1.8), state({ recommendations: high }));
    expect(cut).toMatchObject({ action: 'decrease', reason: 'GuardrailRatio' });
    expect(cut.percent).toBeCloseTo(5, 9);
    const deep = at(10, cpuAt(9), state());
    expect(deep.percent).toBeCloseTo(5, 9);
  });

  it('follows production with the percentage, holding the load, beyond a 5 % deadband', () => {
    const doubled = at(10, cpuAt(target), state(), { production: 4000 });
    expect(doubled).toMatchObject({ action: 'decrease', reason: 'FeedForward' });
    expect(doubled.percent).toBeCloseTo(5, 9);
    expect(doubled.state.changedAt).toBe(NOW - 3600_000);
    expect(at(10, cpuAt(target), state(), { production: 2080 }).action).toBe('hold');
  });

  it('without the production rate it tracks the percentage itself', () => {
    const d = at(10, cpuAt(0.6), undefined, { production: 0 });
    expect(d.state.unit).toBe('percent');
    expect(d.percent).toBeCloseTo(15, 9);
  });

  it('never raises on missing data, but still cuts on the signals it has', () => {
    const blind = at(10, cpuAt(0.5, { errorRate: absent('QueryFailed') }), state());
    expect(blind).toMatchObject({ action: 'hold', reason: 'NoData' });
    const cut = at(10, cpuAt(1.8, { errorRate: absent('QueryFailed') }), state());
    expect(cut.action).toBe('decrease');
  });

  it('starts at 1 % from 0 % (the HPA never runs below one replica)', () => {
    const d = track({
      now: NOW,
      policy: { ...POLICY, bounds: { minPercent: 0, maxPercent: 50 } },
      currentPercent: 0,
      signals: { cpuUtilization: v(0.1), errorRate: absent('NoTraffic'), latencyP99Ms: absent('NoTraffic') },
      productionRate: v(2000),
      observation,
      state: undefined,
    });
    expect(d).toMatchObject({ action: 'increase', percent: 1 });
  });

  it.each([
    ['1/5/20', { scrapeIntervalSeconds: 1, intervalSeconds: 5, windowSeconds: 20 }],
    ['15/30/120', { scrapeIntervalSeconds: 15, intervalSeconds: 30, windowSeconds: 120 }],
  ])(
    'in closed loop at %s: near the safe level on steady, and it meets a surge by feed-forward',
    (_, timeScale) => {
      const steady = runClosedLoop({ scenario: 'steady', seed: 1, durationSeconds: 3600, timeScale }, track);
      expect(steady.summary.mirroredShare).toBeGreaterThan(0.75);
      expect(steady.summary.breachShare).toBeLessThan(0.005);
      const surge = runClosedLoop({ scenario: 'surge', seed: 1, durationSeconds: 3600, timeScale }, track);
      const ramp = surge.scenario.plant.traffic.multiplier?.[0]?.[0] ?? Number.NaN;
      const before = surge.samples.filter((x) => x.t < ramp).at(-1)?.setPercent ?? Number.NaN;
      const during = surge.samples
        .filter((x) => x.t > ramp + 180 && x.t < ramp + 560)
        .map((x) => x.setPercent);
      // Production ×3: the percentage falls to about a third, and no reading needed to breach for it.
      for (const p of during) expect(p).toBeLessThan(before * 0.45);
      // Only the 30 s ramp, before the production window shows it, can breach (static 10 % breaches ~17 %).
      expect(surge.summary.breachShare).toBeLessThan(0.02);
    },
  );
});

describe('oracleFractionController (92 % of the true safe level)', () => {
  const duration = 1800;
  const seed = 2;
  const scenario = buildScenario('capacity-drop', seed, duration);
  const policy = scenarioPolicy(scenario);
  const oracle = oracleController(scenario, policy);
  const safe = oracleFractionController(scenario, policy);

  it('writes the given share of what the oracle writes, rounded down', () => {
    for (const t of [60, 600, (scenario.capacityDropAtSeconds ?? 0) - 20, 1500]) {
      const full = oracle(input(5, {}, null, policy, SIM_EPOCH_MS + t * 1000)).percent;
      const part = safe(input(5, {}, null, policy, SIM_EPOCH_MS + t * 1000)).percent;
      // `full` is itself rounded down to the 0.01 grid.
      expect(part).toBeLessThanOrEqual(SAFE_FRACTION * (full + 0.01));
      expect(part).toBeGreaterThan(SAFE_FRACTION * full - 0.011);
    }
  });

  it('in closed loop: about 92 % of the oracle, never in breach', () => {
    const r = runClosedLoop({ scenario, seed, durationSeconds: duration }, safe);
    expect(r.summary.breachSeconds).toBe(0);
    expect(r.summary.mirroredShare).toBeGreaterThan(0.9);
    expect(r.summary.mirroredShare).toBeLessThan(0.925);
  });

  it('refuses a share outside (0, 1]', () => {
    expect(() => oracleFractionController(scenario, policy, 0)).toThrow('(got 0)');
    expect(() => oracleFractionController(scenario, policy, 1.2)).toThrow('(got 1.2)');
  });
});

describe('the grid and parseOptions', () => {
  it('the grid keeps the 13 combinations with window >= 4 scrapes and interval >= 1 scrape', () => {
    expect(gridScales().map(scaleId)).toEqual([
      '1/5/20',
      '1/15/60',
      '1/30/120',
      '1/60/300',
      '5/5/20',
      '5/15/60',
      '5/30/120',
      '5/60/300',
      '15/15/60',
      '15/30/120',
      '15/60/300',
      '30/30/120',
      '30/60/300',
    ]);
  });

  const rows = [
    {
      name: 'defaults: 10 seeds of 2 h, every scenario, the grid',
      argv: [],
      seeds: 10,
      duration: 7200,
      scenarios: 8,
      scales: 13,
    },
    {
      name: '--quick: 3 seeds of 1 h, 4 cells',
      argv: ['--quick'],
      seeds: 3,
      duration: 3600,
      scenarios: 8,
      scales: 4,
    },
    {
      name: '--quick with explicit seeds and scales',
      argv: ['--quick', '--seeds', '5', '--scales', '1/5/20'],
      seeds: 5,
      duration: 3600,
      scenarios: 8,
      scales: 1,
    },
    {
      name: 'a duration, a scenario list and two cells',
      argv: ['--duration', '30m', '--scenarios', 'steady,surge', '--scales', '1/5/20,15/30/120'],
      seeds: 10,
      duration: 1800,
      scenarios: 2,
      scales: 2,
    },
  ];
  it.each(rows)('$name', ({ argv, seeds, duration, scenarios, scales }) => {
    const o = parseOptions(argv);
    expect(o.seeds).toBe(seeds);
    expect(o.durationSeconds).toBe(duration);
    expect(o.scenarios).toHaveLength(scenarios);
    expect(o.scales).toHaveLength(scales);
    expect(o.jobs).toBeGreaterThanOrEqual(1);
  });

  it('--scales reads scrape/interval/window', () => {
    expect(parseOptions(['--scales', '5/15/60']).scales).toEqual([
      { scrapeIntervalSeconds: 5, intervalSeconds: 15, windowSeconds: 60 },
    ]);
    expect(parseOptions(['--jobs', '1']).jobs).toBe(1);
  });

  it('--production-noise sets the noise on production traffic; 0.05 by default, 0 turns it off', () => {
    expect(parseOptions([]).productionNoise).toBe(0.05);
    expect(parseOptions(['--production-noise', '0']).productionNoise).toBe(0);
    expect(parseOptions(['--production-noise', '0.1']).productionNoise).toBe(0.1);
  });

  const bad = [
    {
      name: 'seeds not an integer',
      argv: ['--seeds', '2.5'],
      message: '--seeds: must be an integer in 1..10000 (got 2.5)',
    },
    {
      name: 'seeds zero',
      argv: ['--seeds', '0'],
      message: '--seeds: must be an integer in 1..10000 (got 0)',
    },
    {
      name: 'duration not a duration',
      argv: ['--duration', 'two hours'],
      message: '--duration: must be a duration between 1m and 7d such as 2h or 30m (got two hours)',
    },
    { name: 'duration too short', argv: ['--duration', '10s'], message: '(got 10s)' },
    {
      name: 'unknown scenario',
      argv: ['--scenarios', 'steady,flood'],
      message: '--scenarios: unknown scenario "flood"',
    },
    {
      name: 'a scale that is not three numbers',
      argv: ['--scales', '1/5'],
      message: '--scales: expected scrape/interval/window',
    },
    { name: 'a scrape interval above 30 s', argv: ['--scales', '60/60/300'], message: '(got "60/60/300")' },
    {
      name: 'a window of fewer than 4 scrapes',
      argv: ['--scales', '15/15/30'],
      message: 'at least 4 scrapes',
    },
    {
      name: 'an interval shorter than a scrape',
      argv: ['--scales', '30/15/120'],
      message: 'at least 4 scrapes',
    },
    { name: 'jobs zero', argv: ['--jobs', '0'], message: '--jobs: must be an integer in 1..256 (got 0)' },
    {
      name: 'a production noise above one half',
      argv: ['--production-noise', '0.9'],
      message: '--production-noise: must be a share in 0..0.5 such as 0.05 (got 0.9)',
    },
    { name: 'unknown option', argv: ['--seed', '3'], message: "'--seed'" },
  ];
  it.each(bad)('refuses $name', ({ argv, message }) => {
    expect(() => parseOptions(argv)).toThrow(ControlOptionError);
    expect(() => parseOptions(argv)).toThrow(message);
  });
});

/** A run's figures with everything in range; `over` replaces fields. */
function figures(seed: number, over: Partial<RunFigures> = {}): RunFigures {
  return {
    seed,
    durationSeconds: 3600,
    mirroredRequests: 900,
    oracleRequests: 1000,
    mirroredShare: 0.9,
    breachSeconds: 0,
    breachShare: 0,
    breachIntegral: 0,
    writes: 10,
    writesPerHour: 10,
    blindEvaluations: 0,
    maxPercentWhileBlind: null,
    maxRiseWhileBlind: null,
    recoverySeconds: null,
    meanPercent: 10,
    meanOraclePercent: 11,
    minOraclePercent: 9,
    reachSeconds: 100,
    reachAfterRestoreSeconds: null,
    raisesWhileBlind: 0,
    ...over,
  };
}

describe('stat, reachStat and aggregate', () => {
  it('stat takes the mean and the worst seed in the given direction', () => {
    expect(stat([0.9, 0.7, 0.8], [4, 5, 6], 'min')).toEqual({
      mean: expect.closeTo(0.8, 9),
      worst: 0.7,
      worstSeed: 5,
    });
    expect(stat([1, 3, 2], [4, 5, 6], 'max')).toEqual({ mean: 2, worst: 3, worstSeed: 5 });
    expect(() => stat([], [], 'min')).toThrow('stat: values: must not be empty (got none)');
  });

  it('reachStat averages the seeds that got there and counts those that never did', () => {
    expect(reachStat([100, null, 300])).toEqual({ mean: 200, worst: 300, never: 1 });
    expect(reachStat([null])).toEqual({ mean: null, worst: null, never: 1 });
  });

  it('aggregate keeps recovery and the reach after the return only for the capacity drop', () => {
    const c = aggregate('15/30/120', 'ours', 'capacity-drop', [
      figures(1, { recoverySeconds: 20, maxRiseWhileBlind: -1, reachAfterRestoreSeconds: 50 }),
      figures(2, {
        recoverySeconds: 40,
        breachShare: 0.02,
        maxRiseWhileBlind: 0.5,
        reachAfterRestoreSeconds: null,
      }),
    ]);
    expect(c.recoverySeconds).toEqual({ mean: 30, worst: 40, worstSeed: 2 });
    expect(c.breachPercent.worst).toBeCloseTo(2, 9);
    expect(c.maxRiseWhileBlind).toEqual({ value: 0.5, seed: 2 });
    expect(c.reachAfterRestoreSeconds).toEqual({ mean: 50, worst: 50, never: 1 });
    expect(c.reachSeconds).toEqual({ mean: 100, worst: 100, never: 0 });
    const steady = aggregate('15/30/120', 'ours', 'steady', [figures(1)]);
    expect(steady.recoverySeconds).toBeNull();
    expect(steady.reachAfterRestoreSeconds).toBeNull();
  });
});

describe('summaries and targets', () => {
  const scales = [
    { scrapeIntervalSeconds: 1, intervalSeconds: 5, windowSeconds: 20 },
    { scrapeIntervalSeconds: 15, intervalSeconds: 30, windowSeconds: 120 },
  ];
  const scenarios: ScenarioName[] = ['steady', 'surge'];
  /** Results where `per(scale, scenario, contender)` gives the one seed's figures. */
  function results(
    per: (scale: string, scenario: ScenarioName, id: ContenderId) => Partial<RunFigures>,
  ): ControlResults {
    const options: ControlOptions = {
      seeds: 1,
      durationSeconds: 3600,
      scenarios,
      scales,
      productionNoise: 0,
      jobs: 1,
    };
    return {
      options,
      cells: scales.flatMap((s) =>
        scenarios.flatMap((scenario) =>
          CONTENDER_IDS.map((id) =>
            aggregate(scaleId(s), id, scenario, [figures(1, per(scaleId(s), scenario, id))]),
          ),
        ),
      ),
      plot: null,
    };
  }
  const pass = (r: ControlResults) => Object.fromEntries(evaluateTargets(r).map((x) => [x.target, x.pass]));

  it('a summary per time scale and one for the grid, over the cells’ means', () => {
    const r = results((scale, scenario, id) =>
      id === 'ours'
        ? { mirroredShare: scale === '1/5/20' && scenario === 'surge' ? 0.8 : 0.96, breachShare: 0.001 }
        : { mirroredShare: 0.9 },
    );
    const all = summaries(r);
    expect(all.map((s) => s.scope)).toEqual(['1/5/20', '15/30/120', 'grid']);
    expect(all[0]).toMatchObject({ cells: 2, shareMin: 0.8, shareMinAt: 'surge', comparable: 2, ahead: 1 });
    expect(all[0]?.shareMean).toBeCloseTo(0.88, 9);
    expect(all[2]).toMatchObject({ cells: 4, shareMinAt: '1/5/20 surge', comparable: 4, ahead: 3 });
    expect(all[2]?.shareMean).toBeCloseTo((0.8 + 3 * 0.96) / 4, 9);
    expect(all[2]?.breachMean).toBeCloseTo(0.1, 9);
    expect(all[2]?.behindAt).toEqual(['1/5/20 surge']);
  });

  it('judges every target at its limit', () => {
    const ok = results((_, __, id) =>
      id === 'ours'
        ? { mirroredShare: TARGETS.gridShare, breachShare: TARGETS.gridBreachPercent / 100 }
        : { mirroredShare: 0.5 },
    );
    expect(pass(ok)).toEqual({
      gridShare: true,
      cellShare: true,
      gridBreach: true,
      cellBreach: true,
      ahead: true,
    });
    const bad = results((scale, scenario, id) => {
      if (id === 'reference') return { mirroredShare: 0.95 };
      if (id !== 'ours') return { mirroredShare: 0.5 };
      const worst = scale === '1/5/20' && scenario === 'steady';
      return { mirroredShare: worst ? 0.84 : 0.93, breachShare: worst ? 0.0201 : 0.001 };
    });
    expect(pass(bad)).toEqual({
      gridShare: false,
      cellShare: false,
      gridBreach: false,
      cellBreach: false,
      ahead: false,
    });
    expect(TARGET_IDS).toHaveLength(5);
  });

  it('a cell where the reference breaches above the limit is not compared', () => {
    const r = results((_, __, id) =>
      id === 'reference' ? { mirroredShare: 0.99, breachShare: 0.05 } : { mirroredShare: 0.93 },
    );
    expect(summaries(r).at(-1)).toMatchObject({ comparable: 0, ahead: 0 });
  });
});

/** Whether every tag of an SVG document is closed in order (a small well-formedness check). */
function balanced(xml: string): boolean {
  const stack: string[] = [];
  for (const m of xml.matchAll(/<(\/?)([a-zA-Z][\w:-]*)[^>]*?(\/?)>/g)) {
    const [, close, name, selfClosing] = m;
    if (name === undefined) return false;
    if (selfClosing === '/') continue;
    if (close === '/') {
      if (stack.pop() !== name) return false;
    } else stack.push(name);
  }
  return stack.length === 0;
}

describe('the benchmark machinery (smoke run: 1 seed, 20 minutes, two time scales)', () => {
  const scenarios: ScenarioName[] = ['capacity-drop', 'prometheus-outage'];
  const scales = [
    { scrapeIntervalSeconds: 5, intervalSeconds: 15, windowSeconds: 60 },
    { scrapeIntervalSeconds: 15, intervalSeconds: 30, windowSeconds: 120 },
  ];
  const options: ControlOptions = {
    seeds: 1,
    durationSeconds: 1200,
    scenarios,
    scales,
    productionNoise: 0.05,
    jobs: 1,
  };
  const results = runControlBenchmark(options);
  const report = formatReport(results, { runtimeSeconds: 1.5, core: 'abc1234' });
  const printed = formatReport(results, { runtimeSeconds: 1.5 }, false);
  const tableRows = (text: string, header: string, from = 0): string[][] => {
    const lines = text.split('\n').slice(from);
    const start = lines.findIndex((l) => l.startsWith(header));
    const out: string[][] = [];
    for (const l of lines.slice(start)) {
      if (!l.startsWith('|')) break;
      out.push(
        l
          .slice(1, -1)
          .split('|')
          .map((c) => c.trim()),
      );
    }
    return out;
  };

  it('runs every contender on every time scale and scenario, one run per seed', () => {
    expect(results.cells).toHaveLength(scales.length * scenarios.length * CONTENDER_IDS.length);
    for (const c of results.cells) expect(c.runs.map((r) => r.seed)).toEqual([1]);
    expect(new Set(results.cells.map((c) => c.scale))).toEqual(new Set(['5/15/60', '15/30/120']));
  });

  it("runs the best static at the first pass's lowest oracle percentage", () => {
    for (const scenario of scenarios) {
      const first = results.cells.find((c) => c.contender === 'static-10' && c.scenario === scenario);
      const best = results.cells.find((c) => c.contender === 'best-static' && c.scenario === scenario);
      const q = quantiseDown(first?.runs[0]?.minOraclePercent ?? Number.NaN);
      const scenarioRun = buildScenario(scenario, 1, 1200);
      const initial = scenarioRun.initialPercent ?? 100;
      const delay = scenarioRun.propagationDelaySeconds;
      expect(best?.runs[0]?.meanPercent).toBeCloseTo((delay * initial + (1200 - delay) * q) / 1200, 6);
      expect(best?.runs[0]?.writes).toBe(1);
    }
  });

  it('the same cells in child processes as in this one', async () => {
    const parallel = await runControlBenchmarkParallel({ ...options, jobs: 2 });
    expect(
      parallel.cells.map((c) => [c.scale, c.scenario, c.contender, c.share.mean, c.breachPercent.mean]),
    ).toEqual(
      results.cells.map((c) => [c.scale, c.scenario, c.contender, c.share.mean, c.breachPercent.mean]),
    );
    expect(parallel.plot?.scale).toBe('15/30/120');
  }, 60_000);

  it('prints a summary row per time scale and one for the grid, and a summary line each', () => {
    const rows = tableRows(report, '| time scale |');
    expect(rows.slice(2).map((r) => r[0])).toEqual(['5/15/60', '15/30/120', '**grid**']);
    expect(report).toContain('time scale 5/15/60 (scrape/interval/window s): ours share mean ');
    expect(report).toContain('whole grid (4 cells): ours share mean ');
    expect(report).toContain('Control law: src/core at abc1234.');
  });

  it('prints an overview per time scale with a column per contender and a row per scenario', () => {
    const start = report.split('\n').indexOf('### 15/30/120');
    const rows = tableRows(report, '| scenario | static', start);
    expect(rows[0]).toEqual(['scenario', ...CONTENDER_IDS.map((id) => CONTENDER_LABELS[id])]);
    expect(rows.slice(2).map((r) => r[0])).toEqual(scenarios);
  });

  it('the file has a detail table per time scale, the printed report leaves them out', () => {
    const details = report.split('\n').filter((l) => l.startsWith('| scenario | contender |'));
    expect(details).toHaveLength(scales.length);
    expect(printed).not.toContain('| scenario | contender |');
    const rows = tableRows(report, '| scenario | contender |');
    expect(rows).toHaveLength(2 + scenarios.length * CONTENDER_IDS.length);
    for (const r of rows) expect(r).toHaveLength(11);
    const drop = rows.find((r) => r[0] === 'capacity-drop' && r[1] === CONTENDER_LABELS.oracle);
    expect(drop?.[6]).toMatch(/^\d+ \/ \d+$/);
    const outage = rows.find((r) => r[0] === 'prometheus-outage' && r[1] === CONTENDER_LABELS.ours);
    expect(outage?.[6]).toBe('-');
    expect(outage?.[8]).toBe('-');
  });

  it('prints every target with its value and whether it was met, and the count', () => {
    const rows = tableRows(report, '| target |');
    expect(rows).toHaveLength(2 + TARGET_IDS.length);
    for (const r of rows.slice(2)) expect(r[2]).toMatch(/^(yes|NO)$/);
    const passed = evaluateTargets(results).filter((x) => x.pass).length;
    expect(report).toContain(`${passed} of ${TARGET_IDS.length} targets met.`);
  });

  it('draws every contender and the true oracle in the capacity-drop chart, with axes and a legend', () => {
    const plot = results.plot;
    expect(plot?.series.map((s) => s.contender)).toEqual([...CONTENDER_IDS]);
    expect(plot?.scale).toBe('15/30/120');
    if (plot === null) throw new Error('no plot');
    const svg = renderSvg(plot);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(balanced(svg)).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(CONTENDER_IDS.length + 1);
    for (const id of CONTENDER_IDS) expect(svg).toContain(`>${CONTENDER_LABELS[id]}</text>`);
    expect(svg).toContain('time scale 15/30/120');
    expect(svg).toContain('reduced capacity');
  });

  it('writes the report, the figures and the chart', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'bench-control-'));
    try {
      const written = await writeOutputs(results, report, dir);
      expect(written.map((p) => p.slice(dir.length + 1))).toEqual([
        'control.md',
        'control.json',
        'capacity-drop.svg',
      ]);
      expect(await readFile(join(dir, 'control.md'), 'utf8')).toBe(report);
      const json = JSON.parse(await readFile(join(dir, 'control.json'), 'utf8')) as {
        options: unknown;
        cells: unknown[];
        summaries: unknown[];
      };
      expect(json.options).toMatchObject({
        seeds: 1,
        durationSeconds: 1200,
        scales: ['5/15/60', '15/30/120'],
      });
      expect(json.cells).toHaveLength(results.cells.length);
      expect(json.summaries).toHaveLength(3);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
