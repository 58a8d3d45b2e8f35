import { type Command, Option } from 'commander';
import { createLogger } from '../daemon/audit.js';
import { runCycle } from '../daemon/cycle.js';
import { formatPlanTable, planJson } from '../daemon/format.js';
import { connect, loadPoliciesReporting } from '../daemon/wiring.js';
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

/** Options shared by `plan` and `run`. */
export function connectionOptions(cmd: Command): Command {
  return cmd
    .addOption(
      new Option('-p, --policies <dir>', 'directory of MirrorPolicy files')
        .env('MIRROR_AUTOSCALER_POLICIES')
        .default('policies'),
    )
    .addOption(
      new Option(
        '--prometheus-url <url>',
        'Prometheus base URL (env PROMETHEUS_URL, default http://localhost:9090)',
      ),
    )
    .addOption(
      new Option(
        '--prometheus-ca-file <file>',
        'PEM CA bundle that verifies an https Prometheus (env PROMETHEUS_CA_FILE, default: system roots)',
      ),
    )
    .addOption(
      new Option(
        '--kubeconfig <file>',
        'kubeconfig file (default: KUBECONFIG, ~/.kube/config, then in-cluster)',
      ),
    );
}

export const CONNECTION_HELP = `
Prometheus: --prometheus-url, else PROMETHEUS_URL, else http://localhost:9090.
  Credentials (never logged): PROMETHEUS_BEARER_TOKEN or PROMETHEUS_BEARER_TOKEN_FILE,
  or PROMETHEUS_USERNAME with PROMETHEUS_PASSWORD or PROMETHEUS_PASSWORD_FILE.
  Per-query timeout: PROMETHEUS_TIMEOUT (default 10s).
  TLS with a private CA: --prometheus-ca-file, else PROMETHEUS_CA_FILE (PEM; default: system roots).
Kubernetes: --kubeconfig, else KUBECONFIG, ~/.kube/config, or the in-cluster service account.`;

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
