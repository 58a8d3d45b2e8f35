import { type Command, Option } from 'commander';
import { DEFAULT_SIMULATE_FLAGS, runSimulate, type SimulateFlags } from '../sim/command.js';
import { DEFAULT_SCENARIO, describeScenario, SCENARIO_NAMES } from '../sim/scenarios.js';

/** Colours only on a terminal, and never when NO_COLOR is set to anything (https://no-color.org). */
function useColor(): boolean {
  const noColor = process.env.NO_COLOR;
  return process.stdout.isTTY === true && (noColor === undefined || noColor === '');
}

/** Registers the `simulate` command. */
export function register(program: Command): void {
  const width = Math.max(...SCENARIO_NAMES.map((n) => n.length));
  const scenarioList = SCENARIO_NAMES.map(
    (n) => `  ${n.padEnd(width)}  ${describeScenario(n)}${n === DEFAULT_SCENARIO ? ' (default)' : ''}`,
  ).join('\n');
  program
    .command('simulate')
    .description(
      'Run the controller against a simulated mirror target and chart the mirror percentage against the largest safe one.',
    )
    .addOption(
      new Option('-s, --scenario <name>', 'scenario to run, or "all" for a summary table of every scenario')
        .choices([...SCENARIO_NAMES, 'all'])
        .default(DEFAULT_SIMULATE_FLAGS.scenario),
    )
    .option('-p, --policy <file>', 'MirrorPolicy file to use instead of the embedded default policy')
    .option('-d, --duration <duration>', 'simulated time, e.g. 30m, 2h, 1d', DEFAULT_SIMULATE_FLAGS.duration)
    .option('--seed <n>', 'random seed (same seed, same run)', DEFAULT_SIMULATE_FLAGS.seed)
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['table', 'json'])
        .default(DEFAULT_SIMULATE_FLAGS.output),
    )
    .option('--scrape-interval <duration>', "Prometheus' scrape interval, e.g. 1s or 30s (default: 15s)")
    .option('--no-chart', 'print the summary without the chart')
    .addHelpText(
      'after',
      `
Scenarios:
${scenarioList}

The simulated target gets a share of ~2,000 production requests/s and serves ~400/s; its CPU,
p99 latency and error rate rise as it nears capacity. Prometheus scrapes it every 15 s (or
--scrape-interval; some scrapes missed, per scenario) and the controller sees rates over the
policy's window and the production rate, as in a cluster. The oracle is the largest percentage that keeps every guardrail of the true target
at or below its limit.

Summary: mirrored requests as a share of the oracle's, seconds in breach (true target above any
guardrail), writes, the highest percentage set while blind, recovery time after a capacity drop.

Examples:
  mirror-autoscaler simulate
  mirror-autoscaler simulate --scenario all
  mirror-autoscaler simulate --scenario surge --duration 1h --seed 7
  mirror-autoscaler simulate --scrape-interval 1s
  mirror-autoscaler simulate --policy policies/checkout.yaml --output json`,
    )
    .action(async (opts: SimulateFlags) => {
      // `simulate | head` closes the pipe early; that is the reader's choice, not a failure worth a stack trace.
      process.stdout.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EPIPE') throw err;
      });
      process.exitCode = await runSimulate(opts, {
        stdout: process.stdout,
        stderr: process.stderr,
        columns: process.stdout.columns ?? 100,
        color: useColor(),
      });
    });
}
