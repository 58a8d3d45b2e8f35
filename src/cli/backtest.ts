import { writeFileSync } from 'node:fs';
import { type Command, type CommanderError, Option } from 'commander';
import { runBacktest } from '../backtest/backtest.js';
import { formatBacktestTable } from '../backtest/format.js';
import { BacktestError, PrometheusRangeReader } from '../backtest/prometheus.js';
import { renderHtmlReport } from '../backtest/report.js';
import { BacktestArgumentError, parseStep, parseTime } from '../backtest/time.js';
import { formatProblem, loadPolicyFile } from '../policy/index.js';
import { checkQueryTemplate } from '../policy/query.js';
import { PrometheusConfigError, resolvePrometheusConfig } from '../signals/config.js';
import { isSafeName } from '../signals/promql.js';
import { PROMETHEUS_HELP, prometheusOptions } from './options.js';
import type { CommandIo } from './validate.js';

/** Flags of `backtest`, as commander hands them over. */
export interface BacktestFlags {
  policy: string;
  from: string;
  to: string;
  step?: string;
  output: 'table' | 'json' | 'html';
  out?: string;
  assumePercent?: string;
  prometheusUrl?: string;
  prometheusCaFile?: string;
  primaryService?: string;
  productionQuery?: string;
}

/** Exit status of a usage error (a flag with an unusable value), as in most Unix tools. */
export const EXIT_USAGE = 2;

/** Where `backtest` writes; stderr's isTTY turns the progress bar on. */
export interface BacktestIo extends CommandIo {
  readonly stderr: { write(text: string): unknown; isTTY?: boolean };
}

function percentFlag(text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0 || n > 100) {
    throw new BacktestArgumentError('--assume-percent', `must be a number from 0 to 100 (got "${text}")`);
  }
  return n;
}

function serviceFlag(text: string, defaultNamespace: string): { name: string; namespace: string } {
  const [name = '', namespace = defaultNamespace, ...rest] = text.split('.');
  if (rest.length > 0 || !isSafeName(name) || !isSafeName(namespace)) {
    throw new BacktestArgumentError(
      '--primary-service',
      `must be NAME or NAME.NAMESPACE of a Kubernetes service, such as checkout or checkout.shop (got "${text}")`,
    );
  }
  return { name, namespace };
}

function progressBar(io: BacktestIo): ((done: number, total: number) => void) | undefined {
  if (io.stderr.isTTY !== true) return undefined;
  return (done, total) => {
    const width = 30;
    const filled = total > 0 ? Math.round((done / total) * width) : 0;
    io.stderr.write(
      `\rreading history [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} requests`,
    );
  };
}

/**
 * Runs `backtest`: reads the policy, its history from Prometheus, fits, replays and prints.
 * @param nowSeconds the current time (epoch seconds) that `now` and relative times refer to
 * @returns 0 on success, 1 when the backtest could not run, 2 for an unusable flag
 */
export async function runBacktestCommand(
  flags: BacktestFlags,
  io: BacktestIo,
  env: NodeJS.ProcessEnv,
  nowSeconds: number,
): Promise<number> {
  const progress = progressBar(io);
  try {
    const from = parseTime('--from', flags.from, nowSeconds);
    const to = parseTime('--to', flags.to, nowSeconds);
    if (!(from < to)) {
      throw new BacktestArgumentError(
        '--from',
        `must be before --to (got --from ${flags.from}, --to ${flags.to})`,
      );
    }
    if (flags.output === 'html' && flags.out === undefined) {
      throw new BacktestArgumentError('--output', 'html needs --out FILE for the report');
    }
    const assumePercent = flags.assumePercent === undefined ? undefined : percentFlag(flags.assumePercent);
    if (flags.productionQuery !== undefined) {
      const problem = checkQueryTemplate(flags.productionQuery)[0];
      if (problem !== undefined) throw new BacktestArgumentError('--production-query', problem.message);
    }
    const prom = resolvePrometheusConfig({
      ...(flags.prometheusUrl !== undefined && { flagUrl: flags.prometheusUrl }),
      ...(flags.prometheusCaFile !== undefined && { flagCaFile: flags.prometheusCaFile }),
      env,
    });

    const { policy, problems } = await loadPolicyFile(flags.policy);
    if (policy === undefined) {
      const text =
        problems.length > 0 ? problems.map(formatProblem).join('\n') : `${flags.policy}: not a policy`;
      io.stderr.write(`${text}\n`);
      return 1;
    }
    const stepSeconds = flags.step === undefined ? policy.intervalSeconds : parseStep('--step', flags.step);
    const primaryService =
      flags.primaryService === undefined
        ? undefined
        : serviceFlag(flags.primaryService, policy.route.namespace);

    const reader = new PrometheusRangeReader({
      url: prom.url,
      timeoutMs: prom.timeoutMs,
      ...(prom.bearerToken !== undefined && { bearerToken: prom.bearerToken }),
      ...(prom.basicAuth !== undefined && { basicAuth: prom.basicAuth }),
      ...(prom.ca !== undefined && { ca: prom.ca }),
      ...(progress !== undefined && { onProgress: progress }),
    });
    let result: Awaited<ReturnType<typeof runBacktest>>;
    try {
      result = await runBacktest(reader, {
        policy,
        grid: { from, to, stepSeconds },
        ...(assumePercent !== undefined && { assumePercent }),
        ...(flags.productionQuery !== undefined && { productionQuery: flags.productionQuery }),
        ...(primaryService !== undefined && { primaryService }),
      });
    } finally {
      if (progress !== undefined) io.stderr.write('\r\x1b[K');
    }

    const text =
      flags.output === 'json'
        ? `${JSON.stringify(result)}\n`
        : flags.output === 'html'
          ? renderHtmlReport(result)
          : formatBacktestTable(result);
    if (flags.out !== undefined) {
      writeFileSync(flags.out, text);
      io.stderr.write(`backtest: wrote ${flags.out}\n`);
    } else {
      io.stdout.write(text);
    }
    return 0;
  } catch (err) {
    if (err instanceof BacktestArgumentError) {
      io.stderr.write(`backtest: ${err.message}\n`);
      return EXIT_USAGE;
    }
    const message =
      err instanceof BacktestError || err instanceof PrometheusConfigError || err instanceof Error
        ? err.message
        : String(err);
    io.stderr.write(`backtest: ${message}\n`);
    return 1;
  }
}

/** Registers the `backtest` command. */
export function register(program: Command): void {
  const cmd = program
    .command('backtest')
    .description(
      'Replay a policy over Prometheus history through a model of the mirror target fitted to that history: what would the controller have done?',
    )
    .requiredOption('--policy <file>', 'MirrorPolicy file to backtest')
    .option('--from <time>', 'start: now, -24h, -90m, RFC 3339 or epoch seconds', '-24h')
    .option('--to <time>', 'end, same forms as --from', 'now')
    .option('--step <duration>', "time between decisions, e.g. 30s (default: the policy's interval)")
    .addOption(
      new Option(
        '-o, --output <format>',
        'table for people, json for scripts, html for a report with a chart',
      )
        .choices(['table', 'json', 'html'])
        .default('table'),
    )
    .option('--out <file>', 'write the output to FILE instead of stdout (required for html)')
    .option(
      '--assume-percent <n>',
      'percentage in effect where mirror_autoscaler_mirror_percent has no sample (0-100)',
    );
  prometheusOptions(cmd)
    .option(
      '--primary-service <name[.namespace]>',
      "the route's primary service, whose traffic is mirrored (default: the VirtualService's name and namespace)",
    )
    .option(
      '--production-query <promql>',
      'PromQL of the production traffic in req/s, instead of the default; may use {{window}}',
    )
    .addHelpText(
      'after',
      `
What it reads (range queries, in chunks of at most 1,000 points):
  - the mirror target's CPU, error rate and p99 latency, and the requests/s it received, with the
    same PromQL as the live controller (or the policy's spec.queries overrides);
  - production traffic of the mirrored route. Default:
      sum(rate(istio_requests_total{reporter="destination",destination_service_namespace="NS",
        destination_service_name="NAME",destination_workload!="TARGET"}[WINDOW]))
    where NAME.NS is --primary-service (default: the VirtualService's name and namespace). Mirrored
    copies are reported only by the target's sidecar, so they are not counted;
  - the percentage in effect: max(mirror_autoscaler_mirror_percent{policy="POLICY"}), exported by the
    daemon; where it has no sample, --assume-percent; with neither, the backtest stops.

How it judges: for each guardrail, a robust line fit of the signal against the mirrored rate (its r2,
point count and the rate at which it reaches the limit are printed; fits with too few points, too
little variation or a poor r2 are flagged as not trusted). The real decision core then runs step
by step on the historical production traffic, with signals predicted by the fits.
${PROMETHEUS_HELP}

Exit status: 0 on success, 1 when the backtest could not run (no data, Prometheus error, invalid
policy), 2 for a flag with an unusable value.

Examples:
  mirror-autoscaler backtest --policy policies/checkout.yaml
  mirror-autoscaler backtest --policy policies/checkout.yaml --from -7d --step 1m --assume-percent 10
  mirror-autoscaler backtest --policy policies/checkout.yaml --from 2026-11-20T00:00:00Z --to 2026-11-21T00:00:00Z --output json | jq .summary
  mirror-autoscaler backtest --policy policies/checkout.yaml --output html --out backtest.html`,
    )
    .exitOverride((err: CommanderError) => {
      // Help and version exit 0; anything else commander rejects is a usage error.
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    })
    .action(async (flags: BacktestFlags) => {
      process.exitCode = await runBacktestCommand(flags, process, process.env, Math.floor(Date.now() / 1000));
    });
}
