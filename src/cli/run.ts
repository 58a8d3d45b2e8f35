import { type Command, Option } from 'commander';
import { createLogger } from '../daemon/audit.js';
import { Daemon } from '../daemon/daemon.js';
import { DEFAULT_METRICS_PORT } from '../daemon/http.js';
import { DEFAULT_LEASE_TIMING } from '../daemon/lease.js';
import { ownNamespace, startService } from '../daemon/service.js';
import { connect, envFlag, loadKubeConfig, loadPoliciesReporting } from '../daemon/wiring.js';
import { parseDuration } from '../policy/index.js';
import { CONNECTION_HELP, connectionOptions } from './options.js';
import type { CommandIo } from './validate.js';

/** Flags of `run` (commander fills environment fallbacks and defaults). */
export interface RunFlags {
  policies: string;
  prometheusUrl?: string;
  prometheusCaFile?: string;
  kubeconfig?: string;
  dryRun?: boolean;
  once?: boolean;
  logLevel: string;
  metricsPort: string;
  metricsAddress: string;
  leaderElect: boolean;
  leaseName: string;
  leaseNamespace?: string;
  leaseDuration: string;
  renewDeadline: string;
  retryPeriod: string;
  reloadInterval: string;
  namespace?: string;
}

/** A usage error naming the flag and the value. */
class FlagError extends Error {}

function seconds(flag: string, value: string): number {
  const s = parseDuration(value);
  if (s === undefined || s <= 0)
    throw new FlagError(`${flag}: must be a duration such as 10s or 2m (got "${value}")`);
  return s;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new FlagError(`--metrics-port: must be a port number 0-65535 (got "${value}")`);
  }
  return n;
}

/** A SIGTERM or SIGINT, listened for from the moment `run` starts. */
interface ShutdownSignal {
  /** Resolves at the first SIGTERM or SIGINT. */
  readonly requested: Promise<void>;
  /** Removes the listeners. */
  dispose(): void;
}

function listenForShutdown(logger: { info(obj: object, msg: string): void }): ShutdownSignal {
  let resolve: () => void = () => undefined;
  const requested = new Promise<void>((r) => {
    resolve = r;
  });
  const handler = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stopping: finishing the cycle in flight');
    resolve();
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
  return {
    requested,
    dispose() {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
    },
  };
}

/**
 * Runs the reconcile loop until SIGTERM or SIGINT (or one cycle with `once`).
 * Returns the exit status: with `once`, 1 when any policy is invalid or could not be evaluated.
 */
export async function runDaemon(flags: RunFlags, io: CommandIo, env: NodeJS.ProcessEnv): Promise<number> {
  const logger = createLogger({ level: flags.logLevel });
  const dryRun = flags.dryRun === true || envFlag(env, 'MIRROR_AUTOSCALER_DRY_RUN');
  // Listening from the start, not once the service is up: a pod deleted while it starts gets SIGTERM then,
  // and must still stop gracefully (release the Lease, exit 0) instead of dying of the signal.
  const shutdown = flags.once === true ? undefined : listenForShutdown(logger);
  try {
    const loaded = await loadPoliciesReporting(flags.policies, io, flags.namespace);
    logger.info(
      {
        policies: loaded.policies.map((p) => p.name),
        invalidFiles: loaded.problems,
        dryRun,
        once: flags.once === true,
        ...(flags.namespace !== undefined && { namespace: flags.namespace }),
      },
      'starting',
    );
    if (flags.once === true) {
      // One cycle, no endpoints and no lease: for scripts and CI, not to run beside a live daemon.
      const { signals, routes } = connect(flags, env, logger);
      const daemon = new Daemon(loaded.policies, { signals, routes, now: Date.now, logger }, { dryRun });
      const outcomes = await daemon.runBatch();
      return loaded.problems > 0 || outcomes.some((o) => o.error !== undefined) ? 1 : 0;
    }
    const kc = loadKubeConfig(flags.kubeconfig);
    const service = await startService(
      {
        policiesDir: flags.policies,
        policies: loaded.policies,
        invalidPolicies: loaded.problems,
        ...(flags.prometheusUrl !== undefined && { prometheusUrl: flags.prometheusUrl }),
        ...(flags.prometheusCaFile !== undefined && { prometheusCaFile: flags.prometheusCaFile }),
        dryRun,
        http: { host: flags.metricsAddress, port: port(flags.metricsPort) },
        // A dry run never writes, so it needs no lease and can run beside the live daemon.
        lease:
          flags.leaderElect && !dryRun
            ? {
                name: flags.leaseName,
                namespace: flags.leaseNamespace ?? ownNamespace(env, kc),
                ...(env.POD_NAME !== undefined && { identity: env.POD_NAME }),
                leaseDurationSeconds: seconds('--lease-duration', flags.leaseDuration),
                renewDeadlineSeconds: seconds('--renew-deadline', flags.renewDeadline),
                retryPeriodSeconds: seconds('--retry-period', flags.retryPeriod),
              }
            : null,
        ...(flags.namespace !== undefined && { onlyNamespace: flags.namespace }),
        reloadIntervalMs: seconds('--reload-interval', flags.reloadInterval) * 1000,
      },
      kc,
      env,
      logger,
    );
    await shutdown?.requested;
    await service.stop();
    logger.info('stopped');
    return 0;
  } catch (err) {
    io.stderr.write(`run: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    shutdown?.dispose();
  }
}

/** Registers the `run` command. */
export function register(program: Command): void {
  const d = DEFAULT_LEASE_TIMING;
  connectionOptions(
    program
      .command('run')
      .description(
        'Run the control loop: evaluate each policy at its interval and patch the mirror percentage of its route.',
      ),
  )
    .option(
      '--dry-run',
      'log the percentages it would set every cycle; never write (env MIRROR_AUTOSCALER_DRY_RUN=true)',
    )
    .option('--once', 'run one cycle of every policy and exit (no endpoints, no leader election)')
    .addOption(
      new Option(
        '--namespace <ns>',
        'manage VirtualServices in this namespace only; other policies are refused',
      ).env('MIRROR_AUTOSCALER_NAMESPACE'),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .choices(['trace', 'debug', 'info', 'warn', 'error'])
        .env('LOG_LEVEL')
        .default('info'),
    )
    .addOption(
      new Option('--metrics-port <port>', 'port of /metrics, /healthz, /readyz')
        .env('METRICS_PORT')
        .default(String(DEFAULT_METRICS_PORT)),
    )
    .addOption(
      new Option('--metrics-address <addr>', 'address the endpoints listen on')
        .env('METRICS_ADDRESS')
        .default('0.0.0.0'),
    )
    .addOption(new Option('--no-leader-elect', 'write without a Lease (a single replica only)'))
    .addOption(
      new Option('--lease-name <name>', 'Lease for leader election')
        .env('LEASE_NAME')
        .default('mirror-autoscaler'),
    )
    .addOption(
      new Option(
        '--lease-namespace <ns>',
        "Lease namespace (default: POD_NAMESPACE, the service account's, the kubeconfig's)",
      ).env('LEASE_NAMESPACE'),
    )
    .addOption(
      new Option('--lease-duration <d>', 'how long a Lease holds without renewal')
        .env('LEASE_DURATION')
        .default(`${d.leaseDurationSeconds}s`),
    )
    .addOption(
      new Option('--renew-deadline <d>', 'a leader that cannot renew within this stops writing')
        .env('LEASE_RENEW_DEADLINE')
        .default(`${d.renewDeadlineSeconds}s`),
    )
    .addOption(
      new Option('--retry-period <d>', 'how often to renew or try to acquire')
        .env('LEASE_RETRY_PERIOD')
        .default(`${d.retryPeriodSeconds}s`),
    )
    .addOption(
      new Option('--reload-interval <d>', 'how often to check the policies directory for changes')
        .env('POLICY_RELOAD_INTERVAL')
        .default('10s'),
    )
    .addHelpText(
      'after',
      `${CONNECTION_HELP}

Logs are JSON lines on stdout. Every change of a mirror percentage is an audit line with
"audit":true, the policy, VirtualService, routes, from, to, reason and the signals, and a
Kubernetes Event on the VirtualService (kubectl describe virtualservice NAME).
State that matters for safety (last breach level, last decrease) is kept in the annotation
state.mirror-autoscaler.io/<policy> on the VirtualService, written in the same patch as the percentage.
A VirtualService annotated mirror-autoscaler.io/paused: "true" is never written.

Several replicas elect a leader on a coordination.k8s.io Lease; only the leader writes, the others
evaluate and serve /metrics. The policies directory is re-read when it changes (ConfigMap updates
included); an invalid change is reported and the last valid policies keep running. SIGTERM finishes
the cycle in flight, releases the Lease and exits 0.

Examples:
  mirror-autoscaler run --dry-run
  mirror-autoscaler run --once --policies deploy/policies`,
    )
    .action(async (flags: RunFlags) => {
      process.exitCode = await runDaemon(flags, process, process.env);
    });
}
