import { type Command, Option } from 'commander';
import { createLogger } from '../daemon/audit.js';
import { runCycle } from '../daemon/cycle.js';
import { formatPlanTable, planJson } from '../daemon/format.js';
import { connect, loadPoliciesReporting } from '../daemon/wiring.js';
import { CONNECTION_HELP, connectionOptions } from './options.js';
import type { CommandIo } from './validate.js';

/** Flags of `plan`. */
export interface PlanFlags {
  policies: string;
  prometheusUrl?: string;
  prometheusCaFile?: string;
  kubeconfig?: string;
  output: 'table' | 'json';
}

/**
 * One evaluation of every policy against the live cluster and Prometheus; writes nothing.
 * Returns 0 when every policy was evaluated, 1 when any policy is invalid or could not be evaluated.
 */
export async function runPlan(flags: PlanFlags, io: CommandIo, env: NodeJS.ProcessEnv): Promise<number> {
  // Logs go to stderr so that stdout holds only the table or the JSON lines.
  const logger = createLogger({ level: env.LOG_LEVEL ?? 'warn', destination: process.stderr });
  try {
    const { policies, problems } = await loadPoliciesReporting(flags.policies, io);
    const { signals, routes } = connect(flags, env, logger);
    const outcomes = await runCycle(
      policies,
      { signals, routes, now: Date.now, logger, states: new Map() },
      {
        dryRun: true,
      },
    );
    if (flags.output === 'json') {
      for (const o of outcomes) io.stdout.write(`${JSON.stringify(planJson(o))}\n`);
    } else {
      io.stdout.write(formatPlanTable(outcomes));
    }
    return problems > 0 || outcomes.some((o) => o.error !== undefined) ? 1 : 0;
  } catch (err) {
    io.stderr.write(`plan: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** Registers the `plan` command. */
export function register(program: Command): void {
  connectionOptions(
    program
      .command('plan')
      .description(
        'Evaluate every policy once and print the mirror percentages it would set; writes nothing.',
      ),
  )
    .addOption(
      new Option('-o, --output <format>', 'table for people, json for one object per policy per line')
        .choices(['table', 'json'])
        .default('table'),
    )
    .addHelpText(
      'after',
      `${CONNECTION_HELP}

Columns: each signal as observed/guardrail (or why it has no value); PRODUCTION, the production
requests/s of the mirrored route; SCRAPE, the scrape interval the decision assumed and its source
(policy, learned or default); MODE, FeedForward when the decision used the production rate, else
FeedbackOnly.

Exit status: 0 when every policy was evaluated, 1 when a policy is invalid or could not be evaluated
(the others are still evaluated and printed).

Examples:
  mirror-autoscaler plan
  mirror-autoscaler plan --policies deploy/policies --output json | jq .`,
    )
    .action(async (flags: PlanFlags) => {
      process.exitCode = await runPlan(flags, process, process.env);
    });
}
