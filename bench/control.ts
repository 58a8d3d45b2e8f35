/**
 * Control quality: the decision core against what users would otherwise do, and against the oracle, on the
 * same scenarios, seeds and plant. Run: `npx tsx bench/control.ts [--seeds 20] [--duration 2h] [--quick]
 * [--scenarios steady,surge]` (= `npm run bench:control`).
 *
 * Prints one overview table, one table per scenario and the targets for our controller, and writes them to
 * bench/out/control.md, every figure to bench/out/control.json and the capacity-drop chart (seed 1) to
 * bench/out/capacity-drop.svg. Nothing is tuned here: it only measures.
 */
import { realpathSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { SignalName } from '../src/core/types.js';
import { formatDuration, parseDuration } from '../src/policy/duration.js';
import {
  buildScenario,
  DEFAULT_SIM_DURATION_SECONDS,
  decideController,
  describeScenario,
  isScenarioName,
  runClosedLoop,
  SCENARIO_NAMES,
  type Scenario,
  type ScenarioName,
  type SimResult,
  type SimSummary,
  scenarioPolicy,
  scheduleAt,
} from '../src/sim/index.js';
import {
  DEFAULT_FLAGGER,
  DEFAULT_HPA,
  flaggerController,
  hpaController,
  isBlindSignal,
  oracleController,
  quantiseDown,
  staticController,
  trueOracle,
} from './contenders.js';

const SELF = fileURLToPath(import.meta.url);
export const OUT_DIR = join(dirname(SELF), 'out');

/** The hand-set value most users start with. */
export const STATIC_PERCENT = 10;

export const CONTENDER_IDS = ['static-10', 'best-static', 'hpa', 'flagger', 'ours', 'oracle'] as const;
export type ContenderId = (typeof CONTENDER_IDS)[number];

export const CONTENDER_LABELS: Record<ContenderId, string> = {
  'static-10': `static ${STATIC_PERCENT} %`,
  'best-static': 'best static (hindsight)',
  hpa: 'HPA-style',
  flagger: 'Flagger-style',
  ours: 'ours (decide)',
  oracle: 'oracle',
};

/** The targets for our controller (see bench/README.md). */
export const TARGETS = {
  /** Mirrored requests as a share of the oracle's, at least. */
  share: 0.9,
  /** Share of the time in breach, at most. */
  breachShare: 0.01,
  /** Back under the guardrails after the capacity drop within this many evaluation intervals. */
  recoveryIntervals: 2,
  writesPerHour: 30,
  /** Rise over the last known safe level while blind, at most (pp). */
  blindRise: 0,
} as const;

/** What to run. */
export interface ControlOptions {
  /** Seeds 1..seeds for every scenario. */
  readonly seeds: number;
  readonly durationSeconds: number;
  readonly scenarios: readonly ScenarioName[];
}

/** Thrown for an invalid command-line option; the message names the option and the value. */
export class ControlOptionError extends Error {
  override readonly name = 'ControlOptionError';
}

/**
 * Parses the command line.
 * `--quick` means 3 seeds of 1 h unless `--seeds` or `--duration` say otherwise.
 * @throws ControlOptionError naming the option and the value.
 */
export function parseOptions(argv: readonly string[]): ControlOptions {
  let values: { seeds?: string; duration?: string; quick?: boolean; scenarios?: string };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        seeds: { type: 'string' },
        duration: { type: 'string' },
        quick: { type: 'boolean', default: false },
        scenarios: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ControlOptionError(`bench:control: ${err instanceof Error ? err.message : String(err)}`);
  }
  let seeds = values.quick ? 3 : 20;
  if (values.seeds !== undefined) {
    seeds = Number(values.seeds);
    if (!(Number.isInteger(seeds) && seeds >= 1 && seeds <= 10_000)) {
      throw new ControlOptionError(
        `bench:control: --seeds: must be an integer in 1..10000 (got ${values.seeds})`,
      );
    }
  }
  let durationSeconds = values.quick ? 3600 : DEFAULT_SIM_DURATION_SECONDS;
  if (values.duration !== undefined) {
    const parsed = parseDuration(values.duration);
    if (parsed === undefined || parsed < 60 || parsed > 7 * 86_400) {
      throw new ControlOptionError(
        `bench:control: --duration: must be a duration between 1m and 7d such as 2h or 30m (got ${values.duration})`,
      );
    }
    durationSeconds = Math.round(parsed);
  }
  let scenarios: readonly ScenarioName[] = SCENARIO_NAMES;
  if (values.scenarios !== undefined) {
    const names = values.scenarios.split(',').map((s) => s.trim());
    const bad = names.find((n) => !isScenarioName(n));
    if (bad !== undefined || names.length === 0) {
      throw new ControlOptionError(
        `bench:control: --scenarios: unknown scenario ${JSON.stringify(bad ?? '')} (known: ${SCENARIO_NAMES.join(', ')})`,
      );
    }
    scenarios = names.filter(isScenarioName);
  }
  return { seeds, durationSeconds, scenarios };
}

/** The figures kept of one run: everything SimSummary has, plus the seed. */
export interface RunFigures extends SimSummary {
  readonly seed: number;
  /**
   * Evaluations that raised the percentage while some guardrail had no usable data. SimSummary's rise over
   * the last safe level also counts a raise made on the last full reading before the data went away; this
   * tells the two apart.
   */
  readonly raisesWhileBlind: number;
}

/** Counts the raises a run made on evaluations where some configured guardrail had no usable data. */
export function raisesWhileBlind(result: SimResult): number {
  const names = (Object.keys(result.policy.guardrails) as SignalName[]).filter(
    (n) => result.policy.guardrails[n] !== undefined,
  );
  return result.samples.filter(
    (s) => s.action === 'increase' && names.some((n) => isBlindSignal(s.observed[n])),
  ).length;
}

/** A mean over seeds and the worst seed for it (lowest for shares, highest for costs). */
export interface Stat {
  readonly mean: number;
  readonly worst: number;
  readonly worstSeed: number;
}

/** One contender on one scenario, over every seed. */
export interface Cell {
  readonly contender: ContenderId;
  readonly scenario: ScenarioName;
  readonly share: Stat;
  /** Share of the time in breach, in %. */
  readonly breachPercent: Stat;
  /** Severity-seconds above the limits. */
  readonly breachIntegral: Stat;
  /** Null when the scenario has no capacity drop. */
  readonly recoverySeconds: Stat | null;
  readonly writesPerHour: Stat;
  /** Highest percentage set while blind, over seeds; null when never blind. */
  readonly maxPercentWhileBlind: { readonly value: number; readonly seed: number } | null;
  /** Largest rise over the last safe level while blind, over seeds; null when never blind. */
  readonly maxRiseWhileBlind: { readonly value: number; readonly seed: number } | null;
  /** Raises made while blind, summed over seeds. */
  readonly raisesWhileBlind: number;
  readonly runs: readonly RunFigures[];
}

/** A percentage over time as steps: `[seconds, percent from then on]`. */
export type StepSeries = ReadonlyArray<readonly [t: number, percent: number]>;

/** The capacity-drop chart's data. */
export interface PlotData {
  readonly scenario: ScenarioName;
  readonly seed: number;
  readonly durationSeconds: number;
  readonly series: ReadonlyArray<{ readonly contender: ContenderId; readonly steps: StepSeries }>;
  /** The true oracle percentage, as steps. */
  readonly oracle: StepSeries;
  /** Spans `[from, to)` (seconds) in which the target had less capacity than at the start. */
  readonly reduced: ReadonlyArray<readonly [from: number, to: number]>;
}

export interface ControlResults {
  readonly options: ControlOptions;
  readonly intervalSeconds: number;
  readonly cells: readonly Cell[];
  readonly plot: PlotData | null;
}

/** Mean and worst of `values` (one per seed, same order as `seeds`). */
export function stat(values: readonly number[], seeds: readonly number[], worst: 'min' | 'max'): Stat {
  if (values.length === 0) throw new RangeError('stat: values: must not be empty (got none)');
  let w = 0;
  for (let i = 1; i < values.length; i++) {
    const v = values[i] ?? 0;
    const best = values[w] ?? 0;
    if (worst === 'min' ? v < best : v > best) w = i;
  }
  return {
    mean: values.reduce((a, b) => a + b, 0) / values.length,
    worst: values[w] ?? 0,
    worstSeed: seeds[w] ?? 0,
  };
}

function maxOf(
  runs: readonly RunFigures[],
  field: (r: RunFigures) => number | null,
): { value: number; seed: number } | null {
  let out: { value: number; seed: number } | null = null;
  for (const r of runs) {
    const v = field(r);
    if (v !== null && (out === null || v > out.value)) out = { value: v, seed: r.seed };
  }
  return out;
}

/** Aggregates one contender's runs on one scenario. */
export function aggregate(contender: ContenderId, scenario: ScenarioName, runs: readonly RunFigures[]): Cell {
  const seeds = runs.map((r) => r.seed);
  const recoveries = runs.filter((r) => r.recoverySeconds !== null);
  return {
    contender,
    scenario,
    share: stat(
      runs.map((r) => r.mirroredShare),
      seeds,
      'min',
    ),
    breachPercent: stat(
      runs.map((r) => r.breachShare * 100),
      seeds,
      'max',
    ),
    breachIntegral: stat(
      runs.map((r) => r.breachIntegral),
      seeds,
      'max',
    ),
    recoverySeconds:
      recoveries.length === 0
        ? null
        : stat(
            recoveries.map((r) => r.recoverySeconds ?? 0),
            recoveries.map((r) => r.seed),
            'max',
          ),
    writesPerHour: stat(
      runs.map((r) => r.writesPerHour),
      seeds,
      'max',
    ),
    maxPercentWhileBlind: maxOf(runs, (r) => r.maxPercentWhileBlind),
    maxRiseWhileBlind: maxOf(runs, (r) => r.maxRiseWhileBlind),
    raisesWhileBlind: runs.reduce((a, r) => a + r.raisesWhileBlind, 0),
    runs,
  };
}

/** Percentage in effect over time, from the samples: a write lands after the propagation delay. */
export function effectiveSteps(result: SimResult): StepSeries {
  const delay = Math.max(0, result.scenario.propagationDelaySeconds);
  const first = result.samples[0];
  if (first === undefined) return [];
  const steps: Array<readonly [number, number]> = [[0, first.percent]];
  for (const s of result.samples) {
    if (s.action !== 'hold') steps.push([s.t + delay, s.setPercent]);
  }
  return steps;
}

/** The true oracle over a run, as steps (a new step whenever it moves by more than 0.05 pp). */
function oracleSteps(scenario: Scenario, durationSeconds: number): StepSeries {
  const at = trueOracle(scenario, scenarioPolicy(scenario));
  const steps: Array<readonly [number, number]> = [];
  let last = Number.NaN;
  for (let t = 0; t < durationSeconds; t++) {
    const v = at(t);
    if (!(Math.abs(v - last) <= 0.05)) {
      steps.push([t, v]);
      last = v;
    }
  }
  return steps;
}

function reducedSpans(scenario: Scenario, durationSeconds: number): Array<readonly [number, number]> {
  const full = scheduleAt(scenario.plant.capacityRps, 0);
  const spans: Array<readonly [number, number]> = [];
  let from: number | undefined;
  for (let t = 0; t <= durationSeconds; t++) {
    const low = t < durationSeconds && scheduleAt(scenario.plant.capacityRps, t) < full * 0.99;
    if (low && from === undefined) from = t;
    if (!low && from !== undefined) {
      spans.push([from, t]);
      from = undefined;
    }
  }
  return spans;
}

/**
 * Runs one contender on a built scenario. `bestStatic` is the hindsight constant of this scenario and seed.
 */
export function runContender(
  contender: ContenderId,
  scenario: Scenario,
  seed: number,
  durationSeconds: number,
  bestStatic: number,
): SimResult {
  const options = { scenario, seed, durationSeconds };
  switch (contender) {
    case 'static-10':
      return runClosedLoop(options, staticController(STATIC_PERCENT));
    case 'best-static':
      return runClosedLoop(options, staticController(bestStatic));
    case 'hpa':
      return runClosedLoop(options, hpaController(DEFAULT_HPA));
    case 'flagger':
      return runClosedLoop(options, flaggerController(DEFAULT_FLAGGER));
    case 'ours':
      return runClosedLoop(options, decideController);
    case 'oracle':
      return runClosedLoop(options, oracleController(scenario, scenarioPolicy(scenario)));
  }
}

/**
 * Runs every contender on every scenario and seed. The static-10 run is the first pass: its
 * minOraclePercent (which depends on the plant only, not on the controller) is the best constant that would
 * have stayed safe, clamped to the bounds by the oracle and rounded down to the percentage quantum.
 */
export function runControlBenchmark(
  options: ControlOptions,
  log: (line: string) => void = () => undefined,
): ControlResults {
  const cells: Cell[] = [];
  let plot: PlotData | null = null;
  let intervalSeconds = 0;
  for (const name of options.scenarios) {
    const started = performance.now();
    const runs = new Map<ContenderId, RunFigures[]>(CONTENDER_IDS.map((id) => [id, []]));
    for (let seed = 1; seed <= options.seeds; seed++) {
      const scenario = buildScenario(name, seed, options.durationSeconds);
      intervalSeconds = scenarioPolicy(scenario).intervalSeconds;
      // First pass: any run gives the plant's lowest oracle percentage; the static-10 run is reused for it.
      const first = runContender('static-10', scenario, seed, options.durationSeconds, 0);
      const bestStatic = quantiseDown(first.summary.minOraclePercent);
      const results = new Map<ContenderId, SimResult>([['static-10', first]]);
      for (const id of CONTENDER_IDS) {
        const result =
          results.get(id) ?? runContender(id, scenario, seed, options.durationSeconds, bestStatic);
        results.set(id, result);
        runs.get(id)?.push({ ...result.summary, seed, raisesWhileBlind: raisesWhileBlind(result) });
      }
      if (name === 'capacity-drop' && seed === 1) {
        plot = {
          scenario: name,
          seed,
          durationSeconds: options.durationSeconds,
          series: CONTENDER_IDS.map((id) => {
            const r = results.get(id);
            return { contender: id, steps: r === undefined ? [] : effectiveSteps(r) };
          }),
          oracle: oracleSteps(scenario, options.durationSeconds),
          reduced: reducedSpans(scenario, options.durationSeconds),
        };
      }
    }
    for (const id of CONTENDER_IDS) cells.push(aggregate(id, name, runs.get(id) ?? []));
    log(`${name}: ${options.seeds} seeds in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return { options, intervalSeconds, cells, plot };
}

// ---------------------------------------------------------------------------------------------------------
// Targets

export const TARGET_IDS = ['share', 'breach', 'recovery', 'writes', 'blind', 'beats'] as const;
export type TargetId = (typeof TARGET_IDS)[number];

/** One target on one scenario: met or not, or not applicable (recovery outside capacity-drop). */
export interface Verdict {
  readonly target: TargetId;
  readonly scenario: ScenarioName;
  readonly pass: boolean | null;
  /** What was measured, for the table. */
  readonly value: string;
}

function cellOf(results: ControlResults, contender: ContenderId, scenario: ScenarioName): Cell {
  const cell = results.cells.find((c) => c.contender === contender && c.scenario === scenario);
  if (cell === undefined) throw new RangeError(`bench:control: no result for ${contender} on ${scenario}`);
  return cell;
}

/**
 * Judges our controller against its targets on every scenario. Every target is judged on the worst
 * seed (the figures hold for every seed, not on average), except "beats", which compares mean mirrored
 * shares with every non-oracle contender whose worst seed stays within the breach limit.
 */
export function evaluateTargets(results: ControlResults): Verdict[] {
  const out: Verdict[] = [];
  const recoveryLimit = TARGETS.recoveryIntervals * results.intervalSeconds;
  for (const scenario of results.options.scenarios) {
    const ours = cellOf(results, 'ours', scenario);
    out.push({
      target: 'share',
      scenario,
      pass: ours.share.worst >= TARGETS.share,
      value: `${f3(ours.share.worst)} (mean ${f3(ours.share.mean)})`,
    });
    out.push({
      target: 'breach',
      scenario,
      pass: ours.breachPercent.worst <= TARGETS.breachShare * 100,
      value: `${f2(ours.breachPercent.worst)} %`,
    });
    const rec = ours.recoverySeconds;
    out.push({
      target: 'recovery',
      scenario,
      pass: rec === null ? null : rec.worst <= recoveryLimit,
      value: rec === null ? '-' : `${Math.round(rec.worst)} s`,
    });
    out.push({
      target: 'writes',
      scenario,
      pass: ours.writesPerHour.worst <= TARGETS.writesPerHour,
      value: `${f1(ours.writesPerHour.worst)}/h`,
    });
    const rise = ours.maxRiseWhileBlind;
    out.push({
      target: 'blind',
      scenario,
      pass: rise === null || rise.value <= TARGETS.blindRise + 1e-9,
      value: rise === null ? 'never blind' : `${signed(rise.value)} pp`,
    });
    const rivals = CONTENDER_IDS.filter((id) => id !== 'ours' && id !== 'oracle')
      .map((id) => cellOf(results, id, scenario))
      .filter((c) => c.breachPercent.worst <= TARGETS.breachShare * 100);
    const best = rivals.reduce<Cell | undefined>(
      (a, c) => (a === undefined || c.share.mean > a.share.mean ? c : a),
      undefined,
    );
    out.push({
      target: 'beats',
      scenario,
      pass: best === undefined || ours.share.mean > best.share.mean,
      value:
        best === undefined
          ? 'no rival within the limit'
          : `${f3(ours.share.mean)} vs ${CONTENDER_LABELS[best.contender]} ${f3(best.share.mean)}`,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Report

const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);
const f3 = (x: number): string => x.toFixed(3);
const signed = (x: number): string => (x > 0 ? `+${f2(x)}` : f2(x));
const row = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
const rule = (n: number): string => `|${'---|'.repeat(n)}`;

const TARGET_HEADERS: Record<TargetId, string> = {
  share: `share >= ${TARGETS.share} (worst seed)`,
  breach: `breach <= ${TARGETS.breachShare * 100} %`,
  recovery: `recovery <= ${TARGETS.recoveryIntervals} intervals`,
  writes: `writes <= ${TARGETS.writesPerHour}/h`,
  blind: 'never above last safe while blind',
  beats: 'beats rivals within breach limit (mean share)',
};

/** The overview: mean mirrored share per contender and scenario, flagged when the worst seed breaches > 1 %. */
export function overviewTable(results: ControlResults): string[] {
  const lines = [
    row(['scenario', ...CONTENDER_IDS.map((id) => CONTENDER_LABELS[id])]),
    rule(CONTENDER_IDS.length + 1),
  ];
  for (const scenario of results.options.scenarios) {
    lines.push(
      row([
        scenario,
        ...CONTENDER_IDS.map((id) => {
          const c = cellOf(results, id, scenario);
          const over = c.breachPercent.worst > TARGETS.breachShare * 100;
          return `${f3(c.share.mean)}${over ? ` ✗ ${f1(c.breachPercent.mean)} %` : ''}`;
        }),
      ]),
    );
  }
  return lines;
}

/** One scenario's table: a row per contender. */
export function scenarioTable(results: ControlResults, scenario: ScenarioName): string[] {
  const lines = [
    row([
      'contender',
      'share mean',
      'share worst (seed)',
      'breach % mean',
      'breach % worst',
      'breach integral mean (sev·s)',
      'recovery s mean / worst',
      'writes/h mean / max',
      'max % while blind',
      'max rise while blind (pp)',
      'raises while blind (all seeds)',
    ]),
    rule(11),
  ];
  for (const id of CONTENDER_IDS) {
    const c = cellOf(results, id, scenario);
    const rec = c.recoverySeconds;
    lines.push(
      row([
        CONTENDER_LABELS[id],
        f3(c.share.mean),
        `${f3(c.share.worst)} (${c.share.worstSeed})`,
        f2(c.breachPercent.mean),
        `${f2(c.breachPercent.worst)} (${c.breachPercent.worstSeed})`,
        f1(c.breachIntegral.mean),
        rec === null ? '-' : `${Math.round(rec.mean)} / ${Math.round(rec.worst)}`,
        `${f1(c.writesPerHour.mean)} / ${f1(c.writesPerHour.worst)}`,
        c.maxPercentWhileBlind === null ? '-' : f2(c.maxPercentWhileBlind.value),
        c.maxRiseWhileBlind === null ? '-' : signed(c.maxRiseWhileBlind.value),
        c.maxPercentWhileBlind === null ? '-' : String(c.raisesWhileBlind),
      ]),
    );
  }
  return lines;
}

/** The targets table for our controller: a row per scenario, PASS/FAIL per target. */
export function targetsTable(results: ControlResults, verdicts: readonly Verdict[]): string[] {
  const lines = [row(['scenario', ...TARGET_IDS.map((t) => TARGET_HEADERS[t])]), rule(TARGET_IDS.length + 1)];
  for (const scenario of results.options.scenarios) {
    lines.push(
      row([
        scenario,
        ...TARGET_IDS.map((t) => {
          const v = verdicts.find((x) => x.scenario === scenario && x.target === t);
          if (v === undefined || v.pass === null) return 'n/a';
          return `${v.pass ? 'PASS' : 'FAIL'} ${v.value}`;
        }),
      ]),
    );
  }
  return lines;
}

/** The whole markdown report. */
export function formatReport(results: ControlResults, runtimeSeconds?: number): string {
  const { options } = results;
  const verdicts = evaluateTargets(results);
  const judged = verdicts.filter((v) => v.pass !== null);
  const passed = judged.filter((v) => v.pass === true).length;
  const lines = [
    '# Control quality',
    '',
    `${options.seeds} seeds × ${options.scenarios.length} scenarios × ${CONTENDER_IDS.length} contenders, ` +
      `${formatDuration(options.durationSeconds)} simulated each, evaluation interval ${results.intervalSeconds} s` +
      (runtimeSeconds === undefined
        ? '.'
        : `; runtime ${runtimeSeconds.toFixed(0)} s on ${cpus()[0]?.model.trim() ?? 'unknown CPU'} (one thread).`),
    '',
    "Contenders: static 10 %; best static in hindsight (the run's lowest oracle percentage, per scenario and seed: it " +
      'knows the future, and where capacity and traffic are constant it is the oracle); ' +
      `HPA-style (desired = current / max(observed / (${DEFAULT_HPA.targetRatio} × limit)), at most ×${DEFAULT_HPA.maxIncreaseFactor} per interval, tolerance ${DEFAULT_HPA.tolerance}, ` +
      `scale-down stabilisation ${DEFAULT_HPA.scaleDownStabilisationSeconds / 60} min, no increase on missing data, holds at 0 %); ` +
      `Flagger-style (+${DEFAULT_FLAGGER.stepPercent} pp per interval while every guardrail passes, rollback to minPercent ` +
      `after ${DEFAULT_FLAGGER.threshold} failed check${DEFAULT_FLAGGER.threshold === 1 ? '' : 's'}, hold on missing data); ` +
      'ours (decide()); the oracle (knows the true capacity, writes the largest percentage safe until its next write lands).',
    '',
    "Share = mirrored requests / the per-second oracle's. Breach = the true target above any guardrail. " +
      'Recovery = seconds from the capacity drop until back under every guardrail. Blind = some guardrail without usable data; ' +
      'the rise while blind is measured from the percentage in effect at the last full, safe reading, so a raise made on that ' +
      'reading counts too (the last column counts raises decided while blind).',
    '',
    '## Mirrored share of the oracle (mean over seeds)',
    '',
    '✗ = some seed spent more than 1 % of the time in breach (mean breach % shown).',
    '',
    ...overviewTable(results),
  ];
  for (const scenario of options.scenarios) {
    lines.push('', `## ${scenario}: ${describeScenario(scenario)}`, '', ...scenarioTable(results, scenario));
  }
  lines.push(
    '',
    '## Targets for ours',
    '',
    'Judged on the worst seed; "beats" compares mean shares with every non-oracle contender whose worst seed ' +
      'stays within 1 % breach.',
    '',
    ...targetsTable(results, verdicts),
    '',
    `${passed} of ${judged.length} targets met.`,
    '',
  );
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Chart

const COLORS: Record<ContenderId, string> = {
  'static-10': '#7f7f7f',
  'best-static': '#8c564b',
  hpa: '#1f77b4',
  flagger: '#ff7f0e',
  ours: '#d62728',
  oracle: '#2ca02c',
};

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A step series as an SVG path, from 0 to `end` seconds. */
function stepPath(
  steps: StepSeries,
  end: number,
  x: (t: number) => number,
  y: (p: number) => number,
): string {
  const [first] = steps;
  if (first === undefined) return '';
  const parts = [`M${x(first[0]).toFixed(1)},${y(first[1]).toFixed(1)}`];
  for (const [t, p] of steps.slice(1)) {
    if (t >= end) break;
    parts.push(`H${x(t).toFixed(1)}`, `V${y(p).toFixed(1)}`);
  }
  parts.push(`H${x(end).toFixed(1)}`);
  return parts.join('');
}

function tickStep(range: number, maxTicks: number, candidates: readonly number[]): number {
  for (const c of candidates) if (range / c <= maxTicks) return c;
  return candidates[candidates.length - 1] ?? range;
}

/**
 * The percentage over time of every contender and of the true oracle, as a self-contained SVG: axes with
 * ticks, the span of reduced capacity shaded, and a legend.
 */
export function renderSvg(plot: PlotData): string {
  const width = 1000;
  const height = 520;
  const m = { left: 60, right: 210, top: 40, bottom: 50 };
  const w = width - m.left - m.right;
  const h = height - m.top - m.bottom;
  const end = plot.durationSeconds;
  const all = [...plot.series.flatMap((s) => s.steps.map(([, p]) => p)), ...plot.oracle.map(([, p]) => p)];
  const yTickStep = tickStep(Math.max(...all, 1), 8, [1, 2, 5, 10, 20, 25, 50]);
  const yMax = Math.ceil(Math.max(...all, 1) / yTickStep) * yTickStep;
  const x = (t: number): number => m.left + (t / end) * w;
  const y = (p: number): number => m.top + h - (p / yMax) * h;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${m.left}" y="24" font-size="15" font-weight="bold">${esc(
      `Mirror percentage over time: ${plot.scenario}, seed ${plot.seed}`,
    )}</text>`,
  ];
  for (const [from, to] of plot.reduced) {
    out.push(
      `<rect x="${x(from).toFixed(1)}" y="${m.top}" width="${(x(to) - x(from)).toFixed(1)}" height="${h}" fill="#000000" fill-opacity="0.06"/>`,
      `<text x="${(x(from) + 4).toFixed(1)}" y="${m.top + 14}" fill="#555555">reduced capacity</text>`,
    );
  }
  // Grid and ticks.
  for (let p = 0; p <= yMax + 1e-9; p += yTickStep) {
    out.push(
      `<line x1="${m.left}" x2="${m.left + w}" y1="${y(p).toFixed(1)}" y2="${y(p).toFixed(1)}" stroke="#e0e0e0"/>`,
      `<text x="${m.left - 6}" y="${(y(p) + 4).toFixed(1)}" text-anchor="end">${p}</text>`,
    );
  }
  const xTick = tickStep(end, 12, [60, 300, 600, 900, 1800, 3600, 7200, 14_400, 43_200, 86_400]);
  for (let t = 0; t <= end + 1e-9; t += xTick) {
    out.push(
      `<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${m.top + h}" y2="${m.top + h + 5}" stroke="#000000"/>`,
      `<text x="${x(t).toFixed(1)}" y="${m.top + h + 18}" text-anchor="middle">${t / 60}</text>`,
    );
  }
  out.push(
    `<line x1="${m.left}" x2="${m.left + w}" y1="${m.top + h}" y2="${m.top + h}" stroke="#000000"/>`,
    `<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + h}" stroke="#000000"/>`,
    `<text x="${m.left + w / 2}" y="${height - 10}" text-anchor="middle">time (minutes)</text>`,
    `<text x="16" y="${m.top + h / 2}" text-anchor="middle" transform="rotate(-90 16 ${m.top + h / 2})">mirror percentage (%)</text>`,
  );
  // The true oracle under the contenders, dashed; ours last so it is on top.
  out.push(
    `<path d="${stepPath(plot.oracle, end, x, y)}" fill="none" stroke="#000000" stroke-width="1.5" stroke-dasharray="5,3"/>`,
  );
  const order = [...plot.series].sort(
    (a, b) => Number(a.contender === 'ours') - Number(b.contender === 'ours'),
  );
  for (const s of order) {
    out.push(
      `<path d="${stepPath(s.steps, end, x, y)}" fill="none" stroke="${COLORS[s.contender]}" stroke-width="${s.contender === 'ours' ? 2.2 : 1.4}"/>`,
    );
  }
  // Legend.
  const lx = m.left + w + 20;
  const entries: Array<readonly [string, string, string]> = [
    ['true oracle (largest safe %)', '#000000', '5,3'],
    ...plot.series.map((s) => [CONTENDER_LABELS[s.contender], COLORS[s.contender], ''] as const),
  ];
  entries.forEach(([label, color, dash], i) => {
    const ly = m.top + 10 + i * 20;
    out.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash === '' ? '' : ` stroke-dasharray="${dash}"`}/>`,
      `<text x="${lx + 30}" y="${ly + 4}">${esc(label)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Entry point

/** Writes control.md, control.json and (when the run includes capacity-drop, seed 1) capacity-drop.svg. */
export async function writeOutputs(
  results: ControlResults,
  report: string,
  dir: string = OUT_DIR,
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written = [join(dir, 'control.md'), join(dir, 'control.json')];
  await writeFile(join(dir, 'control.md'), report);
  const json = { ...results, verdicts: evaluateTargets(results), targets: TARGETS };
  await writeFile(join(dir, 'control.json'), `${JSON.stringify(json, null, 2)}\n`);
  if (results.plot !== null) {
    const svg = join(dir, 'capacity-drop.svg');
    await writeFile(svg, renderSvg(results.plot));
    written.push(svg);
  }
  return written;
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = performance.now();
  const results = runControlBenchmark(options, (line) => process.stderr.write(`${line}\n`));
  const runtime = (performance.now() - started) / 1000;
  const report = formatReport(results, runtime);
  const written = await writeOutputs(results, report);
  process.stdout.write(report);
  process.stderr.write(`runtime ${runtime.toFixed(1)} s; written ${written.join(', ')}\n`);
}

function isEntryPoint(): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === realpathSync(SELF);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
