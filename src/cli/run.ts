import { type Command, Option } from 'commander';
import { createLogger } from '../daemon/audit.js';
import { Daemon } from '../daemon/daemon.js';
import { connect, envFlag, loadPoliciesReporting } from '../daemon/wiring.js';
import { CONNECTION_HELP, connectionOptions } from './plan.js';
import type { CommandIo } from './validate.js';

/** Flags of `run`. */
export interface RunFlags {
  policies: string;
  prometheusUrl?: string;
  kubeconfig?: string;
  dryRun?: boolean;
  once?: boolean;
  logLevel: string;
}

/**
 * Runs the reconcile loop until SIGTERM or SIGINT (or one cycle with `once`).
 * Returns the exit status: with `once`, 1 when any policy is invalid or could not be evaluated.
 */
export async function runDaemon(flags: RunFlags, io: CommandIo, env: NodeJS.ProcessEnv): Promise<number> {
  const logger = createLogger({ level: flags.logLevel });
  const dryRun = flags.dryRun === true || envFlag(env, 'MIRROR_AUTOSCALER_DRY_RUN');
  let daemon: Daemon;
  let problems: number;
  try {
    const loaded = await loadPoliciesReporting(flags.policies, io);
    problems = loaded.problems;
    const { signals, routes } = connect(flags, env, logger);
    daemon = new Daemon(loaded.policies, { signals, routes, now: Date.now, logger }, { dryRun });
    logger.info(
      {
        policies: loaded.policies.map((p) => p.name),
        invalidFiles: problems,
        dryRun,
        once: flags.once === true,
      },
      'starting',
    );
  } catch (err) {
    io.stderr.write(`run: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  if (flags.once === true) {
    const outcomes = await daemon.runBatch();
    return problems > 0 || outcomes.some((o) => o.error !== undefined) ? 1 : 0;
  }
  daemon.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'stopping: finishing the cycle in flight');
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await daemon.stop();
  logger.info('stopped');
  return 0;
}

/** Registers the `run` command. */
export function register(program: Command): void {
  connectionOptions(
    program
      .command('run')
      .description('Run the control loop: evaluate each policy at its interval and patch VirtualServices.'),
  )
    .addOption(
      new Option('--dry-run', 'log the percentages it would set every cycle; never write').env(
        'MIRROR_AUTOSCALER_DRY_RUN',
      ),
    )
    .option('--once', 'run one cycle of every policy and exit')
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['trace', 'debug', 'info', 'warn', 'error'])
        .env('LOG_LEVEL')
        .default('info'),
    )
    .addHelpText(
      'after',
      `${CONNECTION_HELP}

Logs are JSON lines on stdout. Every change of a mirror percentage is an audit line with
"audit":true, the policy, VirtualService, routes, from, to, reason and the signals.
State that matters for safety (last breach level, last decrease) is kept in the annotation
state.mirror-autoscaler.io/<policy> on the VirtualService, written in the same patch as the percentage.
A VirtualService annotated mirror-autoscaler.io/paused: "true" is never written.

Examples:
  mirror-autoscaler run --dry-run
  mirror-autoscaler run --once --policies deploy/policies`,
    )
    .action(async (flags: RunFlags) => {
      process.exitCode = await runDaemon(flags, process, process.env);
    });
}
