/**
 * Control quality on every time scale: the decision core against what users would otherwise pick, and
 * against the oracle, on the same scenarios, seeds and plant, over a grid of observation time scales
 * (scrape interval × evaluation interval and rate window). Run:
 * `npx tsx bench/control.ts [--seeds 10] [--duration 2h] [--quick] [--scenarios steady,surge]
 * [--scales 1/5/20,15/30/120] [--production-noise 0.05] [--jobs N]` (= `npm run bench:control`).
 *
 * Prints the summary per time scale and for the whole grid, the targets, one overview table and one detail
 * table (every figure per scenario and contender) per time scale, and writes them to bench/out/control.md,
 * every figure to bench/out/control.json and the capacity-drop chart (seed 1, the 15/30/120 time scale when
 * it is run, else the first) to bench/out/capacity-drop.svg. Runs are spread over child processes, one per
 * core. Nothing is tuned here: it only measures.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { SignalName } from '../src/core/types.js';
import { formatDuration, parseDuration } from '../src/policy/duration.js';
import {
  applyTimeScale,
  buildScenario,
  DEFAULT_SIM_DURATION_SECONDS,
  decideController,
  describeScenario,
  isScenarioName,
  REACH_SHARE,
  runClosedLoop,
  SCENARIO_NAMES,
  type Scenario,
  type ScenarioName,
  type SimResult,
  type SimSummary,
  scenarioPolicy,
  scheduleAt,
  type TimeScale,
  withProductionNoise,
} from '../src/sim/index.js';
import {
  DEFAULT_FLAGGER,
  DEFAULT_HPA,
  DEFAULT_TRACKING,
  flaggerController,
  hpaController,
  isBlindSignal,
  oracleController,
  oracleFractionController,
  quantiseDown,
  SAFE_FRACTION,
  staticController,
  trackingController,
  trueOracle,
} from './contenders.js';
import { isEntryPoint } from './entry.js';

const SELF = fileURLToPath(import.meta.url);
export const OUT_DIR = join(dirname(SELF), 'out');

/** The hand-set value most users start with. */
export const STATIC_PERCENT = 10;

export const CONTENDER_IDS = [
  'static-10',
  'best-static',
  'hpa',
  'flagger',
  'reference',
  'ours',
  'safe-92',
  'oracle',
] as const;
export type ContenderId = (typeof CONTENDER_IDS)[number];

export const CONTENDER_LABELS: Record<ContenderId, string> = {
  'static-10': `static ${STATIC_PERCENT} %`,
  'best-static': 'best static (hindsight)',
  hpa: 'HPA-style',
  flagger: 'Flagger-style',
  reference: 'target tracking (reference)',
  ours: 'ours (decide)',
  'safe-92': `${Math.round(SAFE_FRACTION * 100)} % of safe`,
  oracle: 'oracle',
};

// ---------------------------------------------------------------------------------------------------------
// The grid

/** Scrape intervals of the grid, seconds. */
export const GRID_SCRAPES = [1, 5, 15, 30] as const;
/** (evaluation interval, rate window) pairs of the grid, seconds. */
export const GRID_PAIRS = [
  [5, 20],
  [15, 60],
  [30, 120],
  [60, 300],
] as const;

/** A time scale's name: `scrape/interval/window` in seconds. */
export const scaleId = (s: TimeScale): string =>
  `${s.scrapeIntervalSeconds}/${s.intervalSeconds}/${s.windowSeconds}`;

/** Whether a time scale makes sense: a window of at least four scrapes, an interval of at least one. */
export const sensibleScale = (s: TimeScale): boolean =>
  s.windowSeconds >= 4 * s.scrapeIntervalSeconds && s.intervalSeconds >= s.scrapeIntervalSeconds;

/** Every sensible combination of GRID_SCRAPES and GRID_PAIRS (13 cells), scrape interval first. */
export function gridScales(): TimeScale[] {
  const out: TimeScale[] = [];
  for (const scrape of GRID_SCRAPES) {
    for (const [interval, window] of GRID_PAIRS) {
      const s = { scrapeIntervalSeconds: scrape, intervalSeconds: interval, windowSeconds: window };
      if (sensibleScale(s)) out.push(s);
    }
  }
  return out;
}

/** The cells `--quick` runs: one per scrape interval, from the fastest to the slowest setting. */
export const QUICK_SCALES = ['1/5/20', '5/15/60', '15/30/120', '30/60/300'] as const;

/** The time scale of the embedded policy and the scenarios' own 15 s scrapes: the capacity-drop chart's. */
export const REFERENCE_SCALE = '15/30/120';

/** The targets for our controller over the grid (see bench/README.md); reported, never asserted. */
export const TARGETS = {
  /** Mean over every cell of the mean mirrored share of the oracle's, at least. */
  gridShare: 0.92,
  /** Every cell's mean share, at least. */
  cellShare: 0.85,
  /** Mean over every cell of the mean time in breach (%), at most. */
  gridBreachPercent: 0.5,
  /** Every cell's mean time in breach (%), at most: also the breach limit for the comparison. */
  cellBreachPercent: 2,
} as const;

/** What to run. */
export interface ControlOptions {
  /** Seeds 1..seeds for every scenario and time scale. */
  readonly seeds: number;
  readonly durationSeconds: number;
  readonly scenarios: readonly ScenarioName[];
  readonly scales: readonly TimeScale[];
  /**
   * ± share of production noise added to every scenario's traffic (a clipped Ornstein-Uhlenbeck process
   * correlated over 10 s, as in the live loop); 0 = the scenarios' traffic as built.
   */
  readonly productionNoise: number;
  /** Processes to run in; 1 = in this process. */
  readonly jobs: number;
}

/** Default production noise: what the live loop applies, and what real traffic looks like at 1 s. */
export const DEFAULT_PRODUCTION_NOISE = 0.05;

/** Thrown for an invalid command-line option; the message names the option and the value. */
export class ControlOptionError extends Error {
  override readonly name = 'ControlOptionError';
}

/** Parses `1/5/20,15/30/120` into time scales. */
export function parseScales(text: string): TimeScale[] {
  const out: TimeScale[] = [];
  for (const part of text.split(',').map((s) => s.trim())) {
    const m = /^(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)\/(\d+(?:\.\d+)?)$/.exec(part);
    const s =
      m === null
        ? undefined
        : { scrapeIntervalSeconds: Number(m[1]), intervalSeconds: Number(m[2]), windowSeconds: Number(m[3]) };
    if (
      s === undefined ||
      !(s.scrapeIntervalSeconds >= 1 && s.scrapeIntervalSeconds <= 30) ||
      !(s.intervalSeconds > 0 && s.windowSeconds > 0)
    ) {
      throw new ControlOptionError(
        `bench:control: --scales: expected scrape/interval/window in seconds, scrape 1..30, such as 1/5/20 (got ${JSON.stringify(part)})`,
      );
    }
    if (!sensibleScale(s)) {
      throw new ControlOptionError(
        `bench:control: --scales: ${part}: the window must hold at least 4 scrapes and the interval at least one`,
      );
    }
    out.push(s);
  }
  return out;
}

/**
 * Parses the command line. `--quick` means 3 seeds of 1 h on QUICK_SCALES unless `--seeds`, `--duration`
 * or `--scales` say otherwise.
 * @throws ControlOptionError naming the option and the value.
 */
export function parseOptions(argv: readonly string[]): ControlOptions {
  let values: {
    seeds?: string;
    duration?: string;
    quick?: boolean;
    scenarios?: string;
    scales?: string;
    'production-noise'?: string;
    jobs?: string;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        seeds: { type: 'string' },
        duration: { type: 'string' },
        quick: { type: 'boolean', default: false },
        scenarios: { type: 'string' },
        scales: { type: 'string' },
        'production-noise': { type: 'string' },
        jobs: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new ControlOptionError(`bench:control: ${err instanceof Error ? err.message : String(err)}`);
  }
  let seeds = values.quick ? 3 : 10;
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
  const scales =
    values.scales !== undefined
      ? parseScales(values.scales)
      : values.quick
        ? parseScales(QUICK_SCALES.join(','))
        : gridScales();
  let jobs = availableParallelism();
  if (values.jobs !== undefined) {
    jobs = Number(values.jobs);
    if (!(Number.isInteger(jobs) && jobs >= 1 && jobs <= 256)) {
      throw new ControlOptionError(
        `bench:control: --jobs: must be an integer in 1..256 (got ${values.jobs})`,
      );
    }
  }
  let productionNoise: number = DEFAULT_PRODUCTION_NOISE;
  if (values['production-noise'] !== undefined) {
    productionNoise = Number(values['production-noise']);
    if (!(Number.isFinite(productionNoise) && productionNoise >= 0 && productionNoise <= 0.5)) {
      throw new ControlOptionError(
        `bench:control: --production-noise: must be a share in 0..0.5 such as 0.05 (got ${values['production-noise']})`,
      );
    }
  }
  return { seeds, durationSeconds, scenarios, scales, productionNoise, jobs };
}

// ---------------------------------------------------------------------------------------------------------
// Runs

/** The figures kept of one run: everything SimSummary has, plus the seed. */
export interface RunFigures extends SimSummary {
  readonly seed: number;
  /** Evaluations that raised the percentage while some guardrail had no usable data. */
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

/**
 * Runs one contender on a built scenario at a time scale. `bestStatic` is the hindsight constant of this
 * scenario and seed.
 */
export function runContender(
  contender: ContenderId,
  scenario: Scenario,
  seed: number,
  durationSeconds: number,
  bestStatic: number,
  timeScale?: TimeScale,
): SimResult {
  const options = { scenario, seed, durationSeconds, ...(timeScale === undefined ? {} : { timeScale }) };
  const policy = applyTimeScale(scenario, scenarioPolicy(scenario), seed, timeScale).policy;
  switch (contender) {
    case 'static-10':
      return runClosedLoop(options, staticController(STATIC_PERCENT));
    case 'best-static':
      return runClosedLoop(options, staticController(bestStatic));
    case 'hpa':
      return runClosedLoop(options, hpaController(DEFAULT_HPA));
    case 'flagger':
      return runClosedLoop(options, flaggerController(DEFAULT_FLAGGER));
    case 'reference':
      return runClosedLoop(options, trackingController(DEFAULT_TRACKING));
    case 'ours':
      return runClosedLoop(options, decideController);
    case 'safe-92':
      return runClosedLoop(options, oracleFractionController(scenario, policy, SAFE_FRACTION));
    case 'oracle':
      return runClosedLoop(options, oracleController(scenario, policy));
  }
}

/** One unit of work: every contender on one time scale, scenario and seed. */
export interface Task {
  readonly scale: TimeScale;
  readonly scenario: ScenarioName;
  readonly seed: number;
  readonly durationSeconds: number;
  /** ± share of production noise (see ControlOptions); absent = none. */
  readonly productionNoise?: number;
  /** Keep the percentage over time of every contender, for the chart. */
  readonly plot: boolean;
}

export interface TaskResult {
  readonly task: Task;
  readonly figures: Record<ContenderId, RunFigures>;
  readonly plot: PlotData | null;
}

/**
 * Runs a task. The static-10 run is the first pass: its minOraclePercent (which depends on the plant only)
 * is the best constant that would have stayed safe, rounded down to the percentage quantum.
 */
export function runTask(task: Task): TaskResult {
  const { scale, seed, durationSeconds } = task;
  const built = buildScenario(task.scenario, seed, durationSeconds);
  // withProductionNoise leaves the traffic as built when the noise is 0.
  const noisy = withProductionNoise(built.plant, seed, 0, durationSeconds, task.productionNoise ?? 0);
  const scenario = { ...built, plant: noisy };
  const first = runContender('static-10', scenario, seed, durationSeconds, 0, scale);
  const bestStatic = quantiseDown(first.summary.minOraclePercent);
  const results = new Map<ContenderId, SimResult>([['static-10', first]]);
  const figures: Partial<Record<ContenderId, RunFigures>> = {};
  for (const id of CONTENDER_IDS) {
    const result = results.get(id) ?? runContender(id, scenario, seed, durationSeconds, bestStatic, scale);
    if (task.plot) results.set(id, result);
    figures[id] = { ...result.summary, seed, raisesWhileBlind: raisesWhileBlind(result) };
  }
  const plot: PlotData | null = task.plot
    ? {
        scenario: task.scenario,
        seed,
        scale: scaleId(scale),
        durationSeconds,
        series: CONTENDER_IDS.map((id) => {
          const r = results.get(id);
          return { contender: id, steps: r === undefined ? [] : effectiveSteps(r) };
        }),
        oracle: oracleSteps(scenario, durationSeconds),
        reduced: reducedSpans(scenario, durationSeconds),
      }
    : null;
  return { task, figures: figures as Record<ContenderId, RunFigures>, plot };
}

/** Every task of a run, heaviest (fastest scrapes, shortest intervals) first so the queue drains evenly. */
export function tasksOf(options: ControlOptions): Task[] {
  const plotScale =
    options.scales.find((s) => scaleId(s) === REFERENCE_SCALE) !== undefined
      ? REFERENCE_SCALE
      : options.scales[0] === undefined
        ? ''
        : scaleId(options.scales[0]);
  const tasks: Task[] = [];
  for (const scale of options.scales) {
    for (const scenario of options.scenarios) {
      for (let seed = 1; seed <= options.seeds; seed++) {
        tasks.push({
          scale,
          scenario,
          seed,
          durationSeconds: options.durationSeconds,
          productionNoise: options.productionNoise,
          plot: scenario === 'capacity-drop' && seed === 1 && scaleId(scale) === plotScale,
        });
      }
    }
  }
  const cost = (t: Task): number => 1 / t.scale.scrapeIntervalSeconds + 1 / t.scale.intervalSeconds;
  return tasks.sort((a, b) => cost(b) - cost(a));
}

// ---------------------------------------------------------------------------------------------------------
// Aggregation

/** A mean over seeds and the worst seed for it (lowest for shares, highest for costs). */
export interface Stat {
  readonly mean: number;
  readonly worst: number;
  readonly worstSeed: number;
}

/** Time to reach REACH_SHARE of the oracle: over the seeds that reached it, and how many never did. */
export interface ReachStat {
  /** Null when no seed reached it. */
  readonly mean: number | null;
  readonly worst: number | null;
  readonly never: number;
}

/** One contender on one scenario at one time scale, over every seed. */
export interface Cell {
  readonly scale: string;
  readonly contender: ContenderId;
  readonly scenario: ScenarioName;
  readonly share: Stat;
  /** Share of the time in breach, in %. */
  readonly breachPercent: Stat;
  /** Severity-seconds above the limits. */
  readonly breachIntegral: Stat;
  /** Back under the guardrails after the capacity drop; null when the scenario has no drop. */
  readonly recoverySeconds: Stat | null;
  /** Time to REACH_SHARE of the oracle from the start. */
  readonly reachSeconds: ReachStat;
  /** The same after the capacity comes back; null when the scenario has no return. */
  readonly reachAfterRestoreSeconds: ReachStat | null;
  readonly writesPerHour: Stat;
  /** Largest rise over the last safe level while blind, over seeds; null when never blind. */
  readonly maxRiseWhileBlind: { readonly value: number; readonly seed: number } | null;
  /** Raises made while blind, summed over seeds. */
  readonly raisesWhileBlind: number;
  readonly runs: readonly RunFigures[];
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

/** Mean and worst of the seeds that reached the level, and how many never did. */
export function reachStat(values: ReadonlyArray<number | null>): ReachStat {
  const reached = values.filter((v): v is number => v !== null);
  return {
    mean: reached.length === 0 ? null : reached.reduce((a, b) => a + b, 0) / reached.length,
    worst: reached.length === 0 ? null : Math.max(...reached),
    never: values.length - reached.length,
  };
}

/** Aggregates one contender's runs on one scenario at one time scale. */
export function aggregate(
  scale: string,
  contender: ContenderId,
  scenario: ScenarioName,
  runs: readonly RunFigures[],
): Cell {
  const seeds = runs.map((r) => r.seed);
  const recoveries = runs.filter((r) => r.recoverySeconds !== null);
  let maxRise: Cell['maxRiseWhileBlind'] = null;
  for (const r of runs) {
    const v = r.maxRiseWhileBlind;
    if (v !== null && (maxRise === null || v > maxRise.value)) maxRise = { value: v, seed: r.seed };
  }
  const hasRestore = scenario === 'capacity-drop';
  return {
    scale,
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
    reachSeconds: reachStat(runs.map((r) => r.reachSeconds)),
    reachAfterRestoreSeconds: hasRestore ? reachStat(runs.map((r) => r.reachAfterRestoreSeconds)) : null,
    writesPerHour: stat(
      runs.map((r) => r.writesPerHour),
      seeds,
      'max',
    ),
    maxRiseWhileBlind: maxRise,
    raisesWhileBlind: runs.reduce((a, r) => a + r.raisesWhileBlind, 0),
    runs,
  };
}

export interface ControlResults {
  readonly options: ControlOptions;
  readonly cells: readonly Cell[];
  readonly plot: PlotData | null;
}

/** Aggregates task results into cells: per time scale, scenario and contender, seeds in order. */
export function collect(options: ControlOptions, results: readonly TaskResult[]): ControlResults {
  const cells: Cell[] = [];
  for (const scale of options.scales) {
    const id = scaleId(scale);
    for (const scenario of options.scenarios) {
      const mine = results
        .filter((r) => scaleId(r.task.scale) === id && r.task.scenario === scenario)
        .sort((a, b) => a.task.seed - b.task.seed);
      for (const contender of CONTENDER_IDS) {
        cells.push(
          aggregate(
            id,
            contender,
            scenario,
            mine.map((r) => r.figures[contender]),
          ),
        );
      }
    }
  }
  const plot = results.find((r) => r.plot !== null)?.plot ?? null;
  return { options, cells, plot };
}

/** Runs every task in this process (tests, `--jobs 1`). */
export function runControlBenchmark(
  options: ControlOptions,
  log: (line: string) => void = () => undefined,
): ControlResults {
  const started = performance.now();
  const results = tasksOf(options).map(runTask);
  log(`${results.length} tasks in ${((performance.now() - started) / 1000).toFixed(1)} s (1 process)`);
  return collect(options, results);
}

/**
 * Runs every task over `options.jobs` child processes of this module (each takes the next task when it
 * finishes one), or in this process when jobs is 1. Children run the TypeScript sources under tsx.
 * Every child is stopped when the run ends or fails.
 */
export async function runControlBenchmarkParallel(
  options: ControlOptions,
  log: (line: string) => void = () => undefined,
): Promise<ControlResults> {
  if (options.jobs <= 1) return runControlBenchmark(options, log);
  const tasks = tasksOf(options);
  const results: TaskResult[] = [];
  const children: ChildProcess[] = [];
  const started = performance.now();
  let next = 0;
  let lastLog = started;
  try {
    await new Promise<void>((resolve, reject) => {
      let running = 0;
      const feed = (child: ChildProcess): void => {
        const task = tasks[next];
        if (task === undefined) {
          child.send({ type: 'done' });
          return;
        }
        next++;
        child.send({ type: 'task', task });
      };
      const jobs = Math.min(options.jobs, tasks.length);
      if (jobs === 0) resolve();
      for (let i = 0; i < jobs; i++) {
        const child = fork(SELF, ['--worker'], {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        children.push(child);
        running++;
        child.on('message', (msg: { type: string; result?: TaskResult; error?: string }) => {
          if (msg.type === 'result' && msg.result !== undefined) {
            results.push(msg.result);
            const now = performance.now();
            if (now - lastLog > 10_000) {
              lastLog = now;
              log(`${results.length} of ${tasks.length} tasks, ${((now - started) / 1000).toFixed(0)} s`);
            }
            feed(child);
          } else if (msg.type === 'error') {
            reject(new Error(`bench:control: worker: ${msg.error ?? 'unknown error'}`));
          }
        });
        child.on('error', reject);
        child.on('exit', (code) => {
          running--;
          if (code !== 0 && results.length < tasks.length) {
            reject(new Error(`bench:control: worker ${child.pid} exited with ${code}`));
          } else if (running === 0) {
            if (results.length === tasks.length) resolve();
            else reject(new Error(`bench:control: ${tasks.length - results.length} tasks never finished`));
          }
        });
        feed(child);
      }
    });
  } finally {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) child.kill();
    }
  }
  log(
    `${results.length} tasks in ${((performance.now() - started) / 1000).toFixed(1)} s (${Math.min(options.jobs, tasks.length)} processes)`,
  );
  return collect(options, results);
}

/** The worker side: runs the tasks it is sent until told it is done. */
function serveTasks(): void {
  process.on('message', (msg: { type: string; task?: Task }) => {
    if (msg.type === 'done') {
      process.disconnect?.();
      return;
    }
    if (msg.type !== 'task' || msg.task === undefined) return;
    try {
      process.send?.({ type: 'result', result: runTask(msg.task) });
    } catch (err) {
      process.send?.({
        type: 'error',
        error: err instanceof Error ? (err.stack ?? err.message) : String(err),
      });
    }
  });
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

/** A percentage over time as steps: `[seconds, percent from then on]`. */
export type StepSeries = ReadonlyArray<readonly [t: number, percent: number]>;

/** The capacity-drop chart's data. */
export interface PlotData {
  readonly scenario: ScenarioName;
  readonly seed: number;
  /** The time scale it was run at (scaleId). */
  readonly scale: string;
  readonly durationSeconds: number;
  readonly series: ReadonlyArray<{ readonly contender: ContenderId; readonly steps: StepSeries }>;
  /** The true oracle percentage, as steps. */
  readonly oracle: StepSeries;
  /** Spans `[from, to)` (seconds) in which the target had less capacity than at the start. */
  readonly reduced: ReadonlyArray<readonly [from: number, to: number]>;
}

// ---------------------------------------------------------------------------------------------------------
// Summaries and targets

/** Our controller over a set of cells (one time scale, or the whole grid). */
export interface Summary {
  /** scaleId, or 'grid'. */
  readonly scope: string;
  readonly cells: number;
  /** Mean over the cells of the cell's mean share; the lowest cell and where. */
  readonly shareMean: number;
  readonly shareMin: number;
  readonly shareMinAt: string;
  /** Mean over the cells of the cell's mean time in breach (%); the highest cell and where. */
  readonly breachMean: number;
  readonly breachMax: number;
  readonly breachMaxAt: string;
  /** Cells where both ours and the reference stay within the cell breach limit, and those where ours mirrors more. */
  readonly comparable: number;
  readonly ahead: number;
  /** Cells (where) that are comparable but not ahead. */
  readonly behindAt: readonly string[];
  /** Mean time to REACH_SHARE of the oracle from the start, over the cells' means (reached seeds only). */
  readonly reachMean: number | null;
  /** Seeds that never reached it, over the cells. */
  readonly reachNever: number;
  readonly writesPerHourMean: number;
  /** The same share and breach means of the reference and of the 92 %-of-safe contender, for scale. */
  readonly reference: { readonly shareMean: number; readonly breachMean: number };
  readonly safe92: { readonly shareMean: number; readonly breachMean: number };
}

const mean = (xs: readonly number[]): number =>
  xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length;

function cellOf(
  results: ControlResults,
  scale: string,
  contender: ContenderId,
  scenario: ScenarioName,
): Cell {
  const cell = results.cells.find(
    (c) => c.scale === scale && c.contender === contender && c.scenario === scenario,
  );
  if (cell === undefined)
    throw new RangeError(`bench:control: no result for ${contender} on ${scenario} at ${scale}`);
  return cell;
}

/** Summarises our controller over the given time scales (all of the run's for the grid). */
export function summarise(results: ControlResults, scales: readonly string[], scope: string): Summary {
  const ours: Cell[] = [];
  const refs: Cell[] = [];
  const safes: Cell[] = [];
  for (const scale of scales) {
    for (const scenario of results.options.scenarios) {
      ours.push(cellOf(results, scale, 'ours', scenario));
      refs.push(cellOf(results, scale, 'reference', scenario));
      safes.push(cellOf(results, scale, 'safe-92', scenario));
    }
  }
  const where = (c: Cell): string => (scales.length === 1 ? c.scenario : `${c.scale} ${c.scenario}`);
  let minCell = ours[0];
  let maxCell = ours[0];
  for (const c of ours) {
    if (minCell === undefined || c.share.mean < minCell.share.mean) minCell = c;
    if (maxCell === undefined || c.breachPercent.mean > maxCell.breachPercent.mean) maxCell = c;
  }
  let comparable = 0;
  let ahead = 0;
  const behindAt: string[] = [];
  ours.forEach((o, i) => {
    const r = refs[i];
    if (r === undefined) return;
    const limit = TARGETS.cellBreachPercent;
    if (o.breachPercent.mean > limit || r.breachPercent.mean > limit) return;
    comparable++;
    if (o.share.mean > r.share.mean) ahead++;
    else behindAt.push(where(o));
  });
  const reaches = ours.map((c) => c.reachSeconds.mean).filter((x): x is number => x !== null);
  return {
    scope,
    cells: ours.length,
    shareMean: mean(ours.map((c) => c.share.mean)),
    shareMin: minCell?.share.mean ?? Number.NaN,
    shareMinAt: minCell === undefined ? '-' : where(minCell),
    breachMean: mean(ours.map((c) => c.breachPercent.mean)),
    breachMax: maxCell?.breachPercent.mean ?? Number.NaN,
    breachMaxAt: maxCell === undefined ? '-' : where(maxCell),
    comparable,
    ahead,
    behindAt,
    reachMean: reaches.length === 0 ? null : mean(reaches),
    reachNever: ours.reduce((a, c) => a + c.reachSeconds.never, 0),
    writesPerHourMean: mean(ours.map((c) => c.writesPerHour.mean)),
    reference: {
      shareMean: mean(refs.map((c) => c.share.mean)),
      breachMean: mean(refs.map((c) => c.breachPercent.mean)),
    },
    safe92: {
      shareMean: mean(safes.map((c) => c.share.mean)),
      breachMean: mean(safes.map((c) => c.breachPercent.mean)),
    },
  };
}

/** One summary per time scale, then the whole grid's. */
export function summaries(results: ControlResults): Summary[] {
  const ids = results.options.scales.map(scaleId);
  return [...ids.map((id) => summarise(results, [id], id)), summarise(results, ids, 'grid')];
}

export const TARGET_IDS = ['gridShare', 'cellShare', 'gridBreach', 'cellBreach', 'ahead'] as const;
export type TargetId = (typeof TARGET_IDS)[number];

/** One grid target: met or not, and what was measured. */
export interface Verdict {
  readonly target: TargetId;
  readonly label: string;
  readonly pass: boolean;
  readonly value: string;
}

/** Judges our controller against the grid targets (reported, not asserted). */
export function evaluateTargets(results: ControlResults): Verdict[] {
  const g = summaries(results).at(-1);
  if (g === undefined) return [];
  return [
    {
      target: 'gridShare',
      label: `mean share over the grid >= ${TARGETS.gridShare}`,
      pass: g.shareMean >= TARGETS.gridShare,
      value: f3(g.shareMean),
    },
    {
      target: 'cellShare',
      label: `every cell's mean share >= ${TARGETS.cellShare}`,
      pass: g.shareMin >= TARGETS.cellShare,
      value: `lowest ${f3(g.shareMin)} (${g.shareMinAt})`,
    },
    {
      target: 'gridBreach',
      label: `mean time in breach over the grid <= ${TARGETS.gridBreachPercent} %`,
      pass: g.breachMean <= TARGETS.gridBreachPercent,
      value: `${f2(g.breachMean)} %`,
    },
    {
      target: 'cellBreach',
      label: `every cell's mean time in breach <= ${TARGETS.cellBreachPercent} %`,
      pass: g.breachMax <= TARGETS.cellBreachPercent,
      value: `highest ${f2(g.breachMax)} % (${g.breachMaxAt})`,
    },
    {
      target: 'ahead',
      label: `more mirrored than the reference in every cell where both stay within ${TARGETS.cellBreachPercent} %`,
      pass: g.ahead === g.comparable,
      value: `${g.ahead} of ${g.comparable}${g.behindAt.length === 0 ? '' : `; behind: ${g.behindAt.join(', ')}`}`,
    },
  ];
}

// ---------------------------------------------------------------------------------------------------------
// Report

const f0 = (x: number): string => x.toFixed(0);
const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);
const f3 = (x: number): string => x.toFixed(3);
const row = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
const rule = (n: number): string => `|${'---|'.repeat(n)}`;

/** One summary as a line of text. */
export function summaryLine(s: Summary): string {
  const scope =
    s.scope === 'grid' ? `whole grid (${s.cells} cells)` : `time scale ${s.scope} (scrape/interval/window s)`;
  return (
    `${scope}: ours share mean ${f3(s.shareMean)}, lowest ${f3(s.shareMin)} (${s.shareMinAt}); ` +
    `breach mean ${f2(s.breachMean)} %, highest ${f2(s.breachMax)} % (${s.breachMaxAt}); ` +
    `ahead of the reference in ${s.ahead} of ${s.comparable} comparable cells; ` +
    `reach ${Math.round(REACH_SHARE * 100)} % in ${s.reachMean === null ? '-' : `${f0(s.reachMean)} s`}` +
    `${s.reachNever > 0 ? ` (${s.reachNever} seeds never)` : ''}; writes ${f1(s.writesPerHourMean)}/h | ` +
    `reference ${f3(s.reference.shareMean)} / ${f2(s.reference.breachMean)} %, ` +
    `${CONTENDER_LABELS['safe-92']} ${f3(s.safe92.shareMean)} / ${f2(s.safe92.breachMean)} %`
  );
}

/** The summary table: a row per time scale and one for the grid. */
export function summaryTable(results: ControlResults): string[] {
  const lines = [
    row([
      'time scale',
      'ours share mean',
      'lowest cell',
      'ours breach % mean',
      'highest cell',
      'ahead of reference',
      `reach ${Math.round(REACH_SHARE * 100)} % s (never)`,
      'writes/h',
      'reference share / breach %',
      `${CONTENDER_LABELS['safe-92']} share / breach %`,
    ]),
    rule(10),
  ];
  for (const s of summaries(results)) {
    lines.push(
      row([
        s.scope === 'grid' ? '**grid**' : s.scope,
        f3(s.shareMean),
        `${f3(s.shareMin)} (${s.shareMinAt})`,
        f2(s.breachMean),
        `${f2(s.breachMax)} (${s.breachMaxAt})`,
        `${s.ahead} of ${s.comparable}`,
        `${s.reachMean === null ? '-' : f0(s.reachMean)} (${s.reachNever})`,
        f1(s.writesPerHourMean),
        `${f3(s.reference.shareMean)} / ${f2(s.reference.breachMean)}`,
        `${f3(s.safe92.shareMean)} / ${f2(s.safe92.breachMean)}`,
      ]),
    );
  }
  return lines;
}

/** One time scale's overview: mean share per contender and scenario, flagged above the cell breach limit. */
export function overviewTable(results: ControlResults, scale: string): string[] {
  const lines = [
    row(['scenario', ...CONTENDER_IDS.map((id) => CONTENDER_LABELS[id])]),
    rule(CONTENDER_IDS.length + 1),
  ];
  for (const scenario of results.options.scenarios) {
    lines.push(
      row([
        scenario,
        ...CONTENDER_IDS.map((id) => {
          const c = cellOf(results, scale, id, scenario);
          const over = c.breachPercent.mean > TARGETS.cellBreachPercent;
          return `${f3(c.share.mean)}${over ? ` ✗ ${f1(c.breachPercent.mean)} %` : ''}`;
        }),
      ]),
    );
  }
  return lines;
}

const reachText = (r: ReachStat | null): string => {
  if (r === null) return '-';
  const base = r.mean === null ? 'never' : `${f0(r.mean)} / ${f0(r.worst ?? 0)}`;
  return r.never > 0 && r.mean !== null ? `${base} (${r.never} never)` : base;
};

/** One time scale's details: a row per scenario and contender. */
export function detailTable(results: ControlResults, scale: string): string[] {
  const lines = [
    row([
      'scenario',
      'contender',
      'share mean',
      'share worst (seed)',
      'breach % mean',
      'breach % worst (seed)',
      'recovery s mean / worst',
      `reach ${Math.round(REACH_SHARE * 100)} % s mean / worst`,
      'reach after restore s mean / worst',
      'writes/h mean / max',
      'max rise while blind (pp)',
    ]),
    rule(11),
  ];
  for (const scenario of results.options.scenarios) {
    for (const id of CONTENDER_IDS) {
      const c = cellOf(results, scale, id, scenario);
      const rec = c.recoverySeconds;
      lines.push(
        row([
          scenario,
          CONTENDER_LABELS[id],
          f3(c.share.mean),
          `${f3(c.share.worst)} (${c.share.worstSeed})`,
          f2(c.breachPercent.mean),
          `${f2(c.breachPercent.worst)} (${c.breachPercent.worstSeed})`,
          rec === null ? '-' : `${f0(rec.mean)} / ${f0(rec.worst)}`,
          reachText(c.reachSeconds),
          reachText(c.reachAfterRestoreSeconds),
          `${f1(c.writesPerHour.mean)} / ${f1(c.writesPerHour.worst)}`,
          c.maxRiseWhileBlind === null ? '-' : f2(c.maxRiseWhileBlind.value),
        ]),
      );
    }
  }
  return lines;
}

/** What the run was, for the report's head. */
export interface RunInfo {
  readonly runtimeSeconds?: number;
  /** `git rev-parse --short HEAD:src/core` or similar: which control law was measured. */
  readonly core?: string;
}

/** The markdown report; `details: false` leaves out the detail tables. */
export function formatReport(results: ControlResults, info: RunInfo = {}, details = true): string {
  const { options } = results;
  const verdicts = evaluateTargets(results);
  const passed = verdicts.filter((v) => v.pass).length;
  const head =
    `${options.seeds} seeds × ${options.scenarios.length} scenarios × ${options.scales.length} time scales × ` +
    `${CONTENDER_IDS.length} contenders, ${formatDuration(options.durationSeconds)} simulated each, ` +
    (options.productionNoise > 0
      ? `production traffic ±${f0(options.productionNoise * 100)} % noise (correlated over 10 s)`
      : 'no production noise') +
    (info.runtimeSeconds === undefined
      ? '.'
      : `; runtime ${info.runtimeSeconds.toFixed(0)} s in ${options.jobs} process${options.jobs === 1 ? '' : 'es'} on ${cpus()[0]?.model.trim() ?? 'unknown CPU'}.`) +
    (info.core === undefined ? '' : ` Control law: src/core at ${info.core}.`);
  const stab = (w: number, s: number): string => f0(DEFAULT_TRACKING.stabilisationSeconds * ((w + s) / 135));
  const lines = [
    '# Control quality on every time scale',
    '',
    head,
    '',
    "Time scale = scrape interval / evaluation interval / rate window, seconds (the scenario's scrape phase is drawn per seed). " +
      "Contenders: static 10 %; best static in hindsight (the run's lowest oracle percentage); " +
      `HPA-style (desired = current / max(observed / (${DEFAULT_HPA.targetRatio} × limit)), ×${DEFAULT_HPA.maxIncreaseFactor} at most, tolerance ${DEFAULT_HPA.tolerance}, ` +
      `decreases stabilised over ${DEFAULT_HPA.scaleDownStabilisationSeconds} s); ` +
      `Flagger-style (+${DEFAULT_FLAGGER.stepPercent} pp per interval while every guardrail passes, rollback to minPercent on a failed check); ` +
      `target tracking (reference): the HPA's algorithm on the mirrored requests/s (fed the production rate), worst severity aimed at ${DEFAULT_TRACKING.targetRatio} ` +
      `of its limit, tolerance ${DEFAULT_TRACKING.tolerance}, readings trusted once propagation + window + scrape have passed since a change, ` +
      `raises stabilised to the lowest recommendation of ${DEFAULT_TRACKING.stabilisationSeconds} s × (window + scrape) / 135 s ` +
      `(${stab(20, 1)} s at 1/5/20, ${stab(120, 15)} s at 15/30/120, ${stab(300, 30)} s at 30/60/300), cuts at once (at most halving); ` +
      'ours (decide(), fed the production rate and the true scrape interval and propagation delay); ' +
      `${CONTENDER_LABELS['safe-92']} (${SAFE_FRACTION} × the oracle's percentage at every instant: the practical ceiling under noise); ` +
      'the oracle (knows the true capacity, writes the largest percentage safe until its next write lands).',
    '',
    'Share = mirrored requests / those of the per-second true safe level. Breach = the true target above any guardrail, % of the time. ' +
      'Recovery = seconds from the capacity drop until back under every guardrail. ' +
      `Reach = seconds until the target first gets ${Math.round(REACH_SHARE * 100)} % of the oracle's percentage, from the start and after the capacity comes back (capacity-drop). ` +
      `A cell is one time scale × scenario, its figures the means over seeds; "comparable" cells are those where both ours and the reference stay within ${TARGETS.cellBreachPercent} % breach.`,
    '',
    '## Summary for ours',
    '',
    ...summaryTable(results),
    '',
    ...summaries(results).map(summaryLine),
    '',
    '## Targets (reported, not asserted)',
    '',
    row(['target', 'value', 'met']),
    rule(3),
    ...verdicts.map((v) => row([v.label, v.value, v.pass ? 'yes' : 'NO'])),
    '',
    `${passed} of ${verdicts.length} targets met.`,
    '',
    `## Mirrored share of the oracle per time scale (mean over seeds; ✗ = mean breach above ${TARGETS.cellBreachPercent} %)`,
  ];
  for (const scale of options.scales.map(scaleId)) {
    lines.push('', `### ${scale}`, '', ...overviewTable(results, scale));
  }
  if (details) {
    lines.push('', '## Details per time scale');
    for (const scale of options.scales.map(scaleId)) {
      lines.push('', `### ${scale}`, '', ...detailTable(results, scale));
    }
    lines.push('', '## Scenarios', '');
    for (const scenario of options.scenarios) lines.push(`- ${scenario}: ${describeScenario(scenario)}`);
  }
  lines.push('');
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Chart

const COLORS: Record<ContenderId, string> = {
  'static-10': '#7f7f7f',
  'best-static': '#8c564b',
  hpa: '#1f77b4',
  flagger: '#ff7f0e',
  reference: '#9467bd',
  ours: '#d62728',
  'safe-92': '#17becf',
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
      `Mirror percentage over time: ${plot.scenario}, seed ${plot.seed}, time scale ${plot.scale}`,
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
  const json = {
    ...results,
    options: { ...results.options, scales: results.options.scales.map(scaleId) },
    summaries: summaries(results),
    verdicts: evaluateTargets(results),
    targets: TARGETS,
  };
  await writeFile(join(dir, 'control.json'), `${JSON.stringify(json)}\n`);
  if (results.plot !== null) {
    const svg = join(dir, 'capacity-drop.svg');
    await writeFile(svg, renderSvg(results.plot));
    written.push(svg);
  }
  return written;
}

/** Which commit the control law came from, and whether it had changes on top. */
async function coreVersion(): Promise<string | undefined> {
  const { execFileSync } = await import('node:child_process');
  try {
    const cwd = join(dirname(SELF), '..');
    const commit = execFileSync('git', ['log', '-1', '--format=%h', '--', 'src/core'], {
      cwd,
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src/core'], {
      cwd,
      encoding: 'utf8',
    }).trim();
    return dirty === '' ? commit : `${commit} with uncommitted changes`;
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const core = await coreVersion();
  const started = performance.now();
  const results = await runControlBenchmarkParallel(options, (line) => process.stderr.write(`${line}\n`));
  const runtimeSeconds = (performance.now() - started) / 1000;
  const info: RunInfo = core === undefined ? { runtimeSeconds } : { runtimeSeconds, core };
  const report = formatReport(results, info);
  const written = await writeOutputs(results, report);
  process.stdout.write(report);
  process.stderr.write(`runtime ${runtimeSeconds.toFixed(1)} s; written ${written.join(', ')}\n`);
}

if (isEntryPoint(SELF)) {
  if (process.argv.includes('--worker')) {
    serveTasks();
  } else {
    main().catch((err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    });
  }
}
