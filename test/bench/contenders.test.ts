/**
 * The baselines of bench/control.ts, rule by rule, and a smoke run of the benchmark machinery at one seed and
 * a short duration. The smoke run checks the shape of what it produces (tables, verdicts, chart, files),
 * never the quality figures themselves.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_HPA,
  flaggerController,
  type HpaState,
  hpaController,
  oracleController,
  quantiseDown,
  staticController,
  trueOracle,
} from '../../bench/contenders.js';
import {
  aggregate,
  CONTENDER_IDS,
  CONTENDER_LABELS,
  type ContenderId,
  ControlOptionError,
  type ControlResults,
  evaluateTargets,
  formatReport,
  parseOptions,
  type RunFigures,
  raisesWhileBlind,
  renderSvg,
  runControlBenchmark,
  stat,
  TARGET_IDS,
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

describe('parseOptions', () => {
  const rows = [
    { name: 'defaults: 20 seeds of 2 h, every scenario', argv: [], seeds: 20, duration: 7200, scenarios: 8 },
    { name: '--quick: 3 seeds of 1 h', argv: ['--quick'], seeds: 3, duration: 3600, scenarios: 8 },
    {
      name: '--quick with explicit seeds',
      argv: ['--quick', '--seeds', '5'],
      seeds: 5,
      duration: 3600,
      scenarios: 8,
    },
    {
      name: 'a duration and a scenario list',
      argv: ['--duration', '30m', '--scenarios', 'steady,surge'],
      seeds: 20,
      duration: 1800,
      scenarios: 2,
    },
  ];
  it.each(rows)('$name', ({ argv, seeds, duration, scenarios }) => {
    const o = parseOptions(argv);
    expect(o.seeds).toBe(seeds);
    expect(o.durationSeconds).toBe(duration);
    expect(o.scenarios).toHaveLength(scenarios);
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
    raisesWhileBlind: 0,
    ...over,
  };
}

describe('stat and aggregate', () => {
  it('stat takes the mean and the worst seed in the given direction', () => {
    expect(stat([0.9, 0.7, 0.8], [4, 5, 6], 'min')).toEqual({
      mean: expect.closeTo(0.8, 9),
      worst: 0.7,
      worstSeed: 5,
    });
    expect(stat([1, 3, 2], [4, 5, 6], 'max')).toEqual({ mean: 2, worst: 3, worstSeed: 5 });
    expect(() => stat([], [], 'min')).toThrow('stat: values: must not be empty (got none)');
  });

  it('aggregate keeps recovery only where the scenario has a drop, and the highest blind figures', () => {
    const c = aggregate('ours', 'capacity-drop', [
      figures(1, { recoverySeconds: 20, maxRiseWhileBlind: -1, maxPercentWhileBlind: 12 }),
      figures(2, {
        recoverySeconds: 40,
        breachShare: 0.02,
        maxRiseWhileBlind: 0.5,
        maxPercentWhileBlind: 11,
      }),
    ]);
    expect(c.recoverySeconds).toEqual({ mean: 30, worst: 40, worstSeed: 2 });
    expect(c.breachPercent.worst).toBeCloseTo(2, 9);
    expect(c.maxRiseWhileBlind).toEqual({ value: 0.5, seed: 2 });
    expect(c.maxPercentWhileBlind).toEqual({ value: 12, seed: 1 });
    expect(aggregate('ours', 'steady', [figures(1)]).recoverySeconds).toBeNull();
  });
});

describe('evaluateTargets', () => {
  /** Results on one scenario where each contender has the given share and breach share on one seed. */
  function results(
    scenario: ScenarioName,
    per: Partial<Record<ContenderId, Partial<RunFigures>>>,
  ): ControlResults {
    return {
      options: { seeds: 1, durationSeconds: 3600, scenarios: [scenario] },
      intervalSeconds: 30,
      cells: CONTENDER_IDS.map((id) =>
        aggregate(id, scenario, [figures(1, per[id] ?? { mirroredShare: 0.5 })]),
      ),
      plot: null,
    };
  }
  const verdict = (r: ControlResults, target: string) => evaluateTargets(r).find((x) => x.target === target);

  it('beats: a rival above the breach limit does not count, one within it does', () => {
    const r = results('steady', {
      ours: { mirroredShare: 0.92 },
      hpa: { mirroredShare: 1.2, breachShare: 0.4 },
      'best-static': { mirroredShare: 0.91 },
      oracle: { mirroredShare: 0.99 },
    });
    expect(verdict(r, 'beats')?.pass).toBe(true);
    const lost = results('steady', { ours: { mirroredShare: 0.92 }, 'best-static': { mirroredShare: 0.95 } });
    expect(verdict(lost, 'beats')?.pass).toBe(false);
    expect(verdict(lost, 'beats')?.value).toContain(CONTENDER_LABELS['best-static']);
  });

  it('judges share, breach, writes, blindness and recovery at their limits', () => {
    const ok = results('capacity-drop', {
      ours: {
        mirroredShare: 0.9,
        breachShare: 0.01,
        writesPerHour: 30,
        maxRiseWhileBlind: 0,
        recoverySeconds: 60,
      },
    });
    const byTarget = Object.fromEntries(evaluateTargets(ok).map((x) => [x.target, x.pass]));
    expect(byTarget).toMatchObject({ share: true, breach: true, recovery: true, writes: true, blind: true });
    const bad = results('capacity-drop', {
      ours: {
        mirroredShare: 0.89,
        breachShare: 0.011,
        writesPerHour: 31,
        maxRiseWhileBlind: 0.01,
        recoverySeconds: 61,
      },
    });
    const failed = Object.fromEntries(evaluateTargets(bad).map((x) => [x.target, x.pass]));
    expect(failed).toMatchObject({
      share: false,
      breach: false,
      recovery: false,
      writes: false,
      blind: false,
    });
    expect(verdict(results('steady', { ours: {} }), 'recovery')?.pass).toBeNull();
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

describe('the benchmark machinery (smoke run: 1 seed, 20 minutes)', () => {
  const scenarios: ScenarioName[] = ['capacity-drop', 'prometheus-outage'];
  const results = runControlBenchmark({ seeds: 1, durationSeconds: 1200, scenarios });
  const report = formatReport(results, 1.5);
  const tableRows = (header: string): string[][] => {
    const lines = report.split('\n');
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

  it('runs every contender on every scenario, one run per seed', () => {
    expect(results.cells).toHaveLength(scenarios.length * CONTENDER_IDS.length);
    for (const c of results.cells) expect(c.runs.map((r) => r.seed)).toEqual([1]);
    expect(results.intervalSeconds).toBe(30);
  });

  it("runs the best static at the first pass's lowest oracle percentage", () => {
    for (const scenario of scenarios) {
      const first = results.cells.find((c) => c.contender === 'static-10' && c.scenario === scenario);
      const best = results.cells.find((c) => c.contender === 'best-static' && c.scenario === scenario);
      const q = quantiseDown(first?.runs[0]?.minOraclePercent ?? Number.NaN);
      const scenarioRun = buildScenario(scenario, 1, 1200);
      const initial = scenarioRun.initialPercent ?? 100;
      const delay = scenarioRun.propagationDelaySeconds;
      // The initial percentage until its one write lands, the hindsight constant from then on.
      expect(best?.runs[0]?.meanPercent).toBeCloseTo((delay * initial + (1200 - delay) * q) / 1200, 6);
      expect(best?.runs[0]?.writes).toBe(1);
    }
  });

  it('prints an overview with a column per contender and a row per scenario', () => {
    const rows = tableRows('| scenario | static');
    expect(rows[0]).toEqual(['scenario', ...CONTENDER_IDS.map((id) => CONTENDER_LABELS[id])]);
    expect(rows.slice(2).map((r) => r[0])).toEqual(scenarios);
    for (const r of rows) expect(r).toHaveLength(CONTENDER_IDS.length + 1);
  });

  it('prints one table per scenario with a row per contender', () => {
    const tables = report.split('\n').filter((l) => l.startsWith('| contender |'));
    expect(tables).toHaveLength(scenarios.length);
    const rows = tableRows('| contender |');
    expect(rows.slice(2).map((r) => r[0])).toEqual(CONTENDER_IDS.map((id) => CONTENDER_LABELS[id]));
    for (const r of rows) expect(r).toHaveLength(11);
    // Recovery is reported for the capacity drop only.
    expect(rows[2]?.[6]).toMatch(/^\d+ \/ \d+$/);
    const outage = report.slice(report.indexOf('## prometheus-outage'));
    expect(
      outage
        .split('\n')
        .find((l) => l.startsWith(`| ${CONTENDER_LABELS.ours}`))
        ?.split('|')[7]
        ?.trim(),
    ).toBe('-');
  });

  it('prints a PASS, FAIL or n/a per target and scenario, and the count', () => {
    const rows = tableRows('| scenario | share >=');
    expect(rows).toHaveLength(2 + scenarios.length);
    for (const r of rows.slice(2)) {
      expect(r).toHaveLength(TARGET_IDS.length + 1);
      for (const cell of r.slice(1)) expect(cell).toMatch(/^(PASS|FAIL) |^n\/a$/);
    }
    const verdicts = evaluateTargets(results);
    const judged = verdicts.filter((x) => x.pass !== null);
    expect(judged).toHaveLength(scenarios.length * TARGET_IDS.length - 1); // no recovery outside the drop
    const passed = judged.filter((x) => x.pass).length;
    expect(report).toContain(`${passed} of ${judged.length} targets met.`);
  });

  it('draws every contender and the true oracle in the capacity-drop chart, with axes and a legend', () => {
    expect(results.plot?.series.map((s) => s.contender)).toEqual([...CONTENDER_IDS]);
    const svg = renderSvg(
      results.plot ?? {
        scenario: 'capacity-drop',
        seed: 1,
        durationSeconds: 1,
        series: [],
        oracle: [],
        reduced: [],
      },
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(balanced(svg)).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(CONTENDER_IDS.length + 1);
    for (const id of CONTENDER_IDS) expect(svg).toContain(`>${CONTENDER_LABELS[id]}</text>`);
    expect(svg).toContain('time (minutes)');
    expect(svg).toContain('mirror percentage (%)');
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
      const json: unknown = JSON.parse(await readFile(join(dir, 'control.json'), 'utf8'));
      expect(json).toMatchObject({ options: { seeds: 1, durationSeconds: 1200 }, intervalSeconds: 30 });
      expect((json as { cells: unknown[] }).cells).toHaveLength(results.cells.length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
