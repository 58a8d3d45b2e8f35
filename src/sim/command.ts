/**
 * The `simulate` command's logic, apart from flag parsing: check the flags, load a policy file if one is
 * given, run the scenario(s) and print the chart, the summary or JSON.
 */
import type { ControlPolicy } from '../core/types.js';
import { describeRoute } from '../mesh/route.js';
import { parseDuration } from '../policy/duration.js';
import { loadPolicyFile } from '../policy/load.js';
import { formatProblem } from '../policy/parse.js';
import type { MirrorPolicy } from '../policy/types.js';
import type { SimResult } from './loop.js';
import { renderChart, renderSummary, renderSummaryTable } from './render.js';
import {
  DEFAULT_SCENARIO,
  DEFAULT_SIM_POLICY,
  isScenarioName,
  SCENARIO_NAMES,
  type ScenarioName,
} from './scenarios.js';
import { simulate } from './simulate.js';

/** The flags as commander hands them over (strings, unchecked). */
export interface SimulateFlags {
  readonly scenario: string;
  readonly policy?: string;
  readonly duration: string;
  readonly seed: string;
  readonly output: string;
  readonly chart: boolean;
  /** Prometheus' scrape interval, e.g. 1s or 30s; unset = the scenario's (15 s). */
  readonly scrapeInterval?: string;
}

export const DEFAULT_SIMULATE_FLAGS: SimulateFlags = {
  scenario: DEFAULT_SCENARIO,
  duration: '2h',
  seed: '1',
  output: 'table',
  chart: true,
};

/** Where the command writes, and how the terminal looks. */
export interface SimulateIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** Terminal width in columns. */
  readonly columns: number;
  /** Whether to emit ANSI colours. */
  readonly color: boolean;
}

/** Longest run accepted: a week at one-second steps is about 600,000 plant steps, still a few seconds. */
const MAX_DURATION_SECONDS = 7 * 24 * 3600;
/** Shortest run: one rate window plus a few evaluations, or the chart says nothing. */
const MIN_DURATION_SECONDS = 5 * 60;

/** Thrown for a flag value the command cannot use; the message names the flag and the value. */
export class FlagError extends Error {
  override readonly name = 'FlagError';
}

interface Plan {
  readonly scenarios: readonly ScenarioName[];
  readonly all: boolean;
  readonly durationSeconds: number;
  readonly seed: number;
  readonly output: 'table' | 'json';
  /** Seconds; undefined = the scenario's own. */
  readonly scrapeIntervalSeconds: number | undefined;
}

/**
 * Checks the flags.
 * @throws FlagError naming the flag and the value.
 */
export function checkFlags(flags: SimulateFlags): Plan {
  const name = flags.scenario;
  const all = name === 'all';
  if (!all && !isScenarioName(name)) {
    throw new FlagError(
      `simulate: --scenario: must be one of ${[...SCENARIO_NAMES, 'all'].join(', ')} (got "${flags.scenario}")`,
    );
  }
  const durationSeconds = parseDuration(flags.duration);
  if (durationSeconds === undefined) {
    throw new FlagError(
      `simulate: --duration: must be a duration such as 2h or 90m (got "${flags.duration}")`,
    );
  }
  if (durationSeconds < MIN_DURATION_SECONDS || durationSeconds > MAX_DURATION_SECONDS) {
    throw new FlagError(`simulate: --duration: must be between 5m and 7d (got "${flags.duration}")`);
  }
  if (!/^\d{1,10}$/.test(flags.seed) || Number(flags.seed) > 0xffffffff) {
    throw new FlagError(`simulate: --seed: must be an integer from 0 to 4294967295 (got "${flags.seed}")`);
  }
  if (flags.output !== 'table' && flags.output !== 'json') {
    throw new FlagError(`simulate: --output: must be table or json (got "${flags.output}")`);
  }
  let scrapeIntervalSeconds: number | undefined;
  if (flags.scrapeInterval !== undefined) {
    const scrape = parseDuration(flags.scrapeInterval);
    if (scrape === undefined || scrape < 1 || scrape > 300) {
      throw new FlagError(
        `simulate: --scrape-interval: must be a duration between 1s and 5m such as 15s (got "${flags.scrapeInterval}")`,
      );
    }
    scrapeIntervalSeconds = scrape;
  }
  return {
    scenarios: all || !isScenarioName(name) ? SCENARIO_NAMES : [name],
    scrapeIntervalSeconds,
    all,
    // Whole seconds: the plant steps one second at a time.
    durationSeconds: Math.round(durationSeconds),
    seed: Number(flags.seed),
    output: flags.output,
  };
}

/**
 * What a loaded policy file manages, for the output: `policy storefront: HTTPRoute web/storefront, rule
 * "browse", mirror to Service storefront-shadow`. The simulated plant is the same for every route kind: the
 * percentage reaches the target as the mesh applies it, whichever field holds it.
 */
export function describePolicyRoute(p: MirrorPolicy): string {
  const rule =
    p.route.rule === undefined
      ? ''
      : typeof p.route.rule === 'number'
        ? `, rule ${p.route.rule}`
        : `, ${p.route.kind === 'VirtualService' ? 'route' : 'rule'} "${p.route.rule}"`;
  const target =
    p.target.backend !== undefined
      ? `Service ${p.target.backend.namespace ?? p.route.namespace}/${p.target.backend.name}`
      : `host ${p.target.host}`;
  return `policy ${p.name}: ${describeRoute(p.route)}${rule}, mirror to ${target}`;
}

/** The JSON form of one run: everything but the scenario's internals. */
function resultJson(r: SimResult, withSamples: boolean, route?: string): Record<string, unknown> {
  return {
    scenario: r.scenario.name,
    description: r.scenario.description,
    seed: r.seed,
    ...(route !== undefined && { route }),
    policy: r.policy,
    summary: r.summary,
    ...(withSamples ? { samples: r.samples } : {}),
  };
}

/**
 * Runs the `simulate` command.
 * @returns the exit status: 0 on success, 1 for an invalid flag or policy file (reported on stderr).
 */
export async function runSimulate(flags: SimulateFlags, io: SimulateIo): Promise<number> {
  let plan: Plan;
  try {
    plan = checkFlags(flags);
  } catch (err) {
    if (!(err instanceof FlagError)) throw err;
    io.stderr.write(`${err.message}\n`);
    return 1;
  }

  let policy: ControlPolicy | undefined;
  let route: string | undefined;
  if (flags.policy !== undefined) {
    const loaded = await loadPolicyFile(flags.policy);
    if (loaded.policy === undefined || loaded.problems.length > 0) {
      const lines = loaded.problems.map(formatProblem);
      io.stderr.write(`${lines.length > 0 ? lines.join('\n') : `${flags.policy}: not a valid policy`}\n`);
      return 1;
    }
    policy = loaded.policy;
    route = describePolicyRoute(loaded.policy);
  }

  // A scrape interval of its own changes only the observation; interval and window stay the policy's.
  const base = policy ?? DEFAULT_SIM_POLICY;
  const timeScale =
    plan.scrapeIntervalSeconds === undefined
      ? undefined
      : {
          scrapeIntervalSeconds: plan.scrapeIntervalSeconds,
          intervalSeconds: base.intervalSeconds,
          windowSeconds: base.windowSeconds,
        };
  const results = plan.scenarios.map((name) =>
    simulate({
      scenario: name,
      seed: plan.seed,
      durationSeconds: plan.durationSeconds,
      ...(policy === undefined ? {} : { policy }),
      ...(timeScale === undefined ? {} : { timeScale }),
    }),
  );

  const [first] = results;
  if (plan.output === 'json') {
    const body =
      plan.all || first === undefined
        ? {
            seed: plan.seed,
            durationSeconds: plan.durationSeconds,
            ...(route !== undefined && { route }),
            results: results.map((r) => resultJson(r, false)),
          }
        : resultJson(first, true, route);
    io.stdout.write(`${JSON.stringify(body, null, 2)}\n`);
    return 0;
  }
  if (route !== undefined) io.stdout.write(`${route}\n`);
  if (plan.all || first === undefined) {
    io.stdout.write(renderSummaryTable(results.map((r) => ({ name: r.scenario.name, summary: r.summary }))));
    return 0;
  }
  if (flags.chart) io.stdout.write(`${renderChart(first, { columns: io.columns, color: io.color })}\n`);
  io.stdout.write(renderSummary(first));
  return 0;
}
