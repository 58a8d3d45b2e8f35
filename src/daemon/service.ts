import { readFileSync } from 'node:fs';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { EventRecorder } from '../mesh/events.js';
import { KubernetesRouteStore, type VirtualService } from '../mesh/index.js';
import { formatProblem, loadPolicyDir } from '../policy/index.js';
import type { MirrorPolicy } from '../policy/types.js';
import { Daemon } from './daemon.js';
import { type HttpServerHandle, Readiness, startHttpServer } from './http.js';
import { LeaseElector } from './lease.js';
import { DaemonMetrics } from './metrics.js';
import { eventForOutcome } from './outcome.js';
import { withPrometheusStatus } from './prometheus-readiness.js';
import { PolicyReloader } from './reload.js';
import { createSignalSource, restrictToNamespace } from './wiring.js';

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

/** Everything `run` needs, resolved from flags and the environment. */
export interface ServiceSettings {
  policiesDir: string;
  policies: readonly MirrorPolicy[];
  invalidPolicies: number;
  prometheusUrl?: string;
  /** --prometheus-ca-file; PROMETHEUS_CA_FILE applies when undefined. */
  prometheusCaFile?: string;
  dryRun: boolean;
  /** null: no HTTP endpoints. */
  http: { host: string; port: number } | null;
  /** null: no leader election (single replica, dry run, one-shot). */
  lease: {
    name: string;
    namespace: string;
    identity?: string;
    leaseDurationSeconds: number;
    renewDeadlineSeconds: number;
    retryPeriodSeconds: number;
  } | null;
  /** Namespace-scoped install: policies of other namespaces are refused. */
  onlyNamespace?: string;
  /** Milliseconds between checks of the policies directory; 0 disables reloading. */
  reloadIntervalMs: number;
}

/** The namespace this pod runs in, for its Lease: POD_NAMESPACE, the service account's, the kubeconfig's. */
export function ownNamespace(env: NodeJS.ProcessEnv, kc: KubeConfig): string {
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  try {
    const ns = readFileSync(SERVICE_ACCOUNT_NAMESPACE, 'utf8').trim();
    if (ns !== '') return ns;
  } catch {
    // Not in a cluster.
  }
  const ctx = kc.getContextObject(kc.getCurrentContext());
  return ctx?.namespace ?? 'default';
}

/** A running daemon with its endpoints, lease and reloader. */
export interface RunningService {
  readonly daemon: Daemon;
  readonly http: HttpServerHandle | undefined;
  readonly metrics: DaemonMetrics;
  /** Finishes the cycle in flight, releases the lease, closes the endpoints. Never rejects. */
  stop(): Promise<void>;
}

/**
 * Wires the production daemon: signals, routes, events, metrics, readiness, leader election and policy
 * reloading around the reconcile loop, and starts it.
 */
export async function startService(
  settings: ServiceSettings,
  kc: KubeConfig,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<RunningService> {
  const metrics = new DaemonMetrics();
  const readiness = new Readiness();
  const signals = createSignalSource(
    settings.prometheusUrl,
    env,
    logger,
    (e) => {
      metrics.onQuery(e);
      readiness.onQuery(e);
    },
    settings.prometheusCaFile,
  );
  const routes = new KubernetesRouteStore(kc, { onApiError: (e) => metrics.recordKubernetesFailure(e) });
  const events = settings.dryRun
    ? undefined
    : new EventRecorder(kc, {
        logger: logger.child({ component: 'events' }),
        onApiError: (e) => metrics.recordKubernetesFailure(e),
      });

  let elector: LeaseElector | undefined;
  // The VirtualService each policy last saw, to attach Events that do not come from a cycle.
  const lastSeen = new Map<string, VirtualService>();
  const daemon = new Daemon(
    settings.policies,
    {
      signals,
      routes,
      now: Date.now,
      logger,
      canWrite: () => elector === undefined || elector.isLeader(),
      onCycle: (outcomes, durationMs) => {
        metrics.recordCycle(outcomes, durationMs / 1000, Date.now());
        readiness.observeCycle(outcomes);
        for (const o of outcomes) if (o.object !== undefined) lastSeen.set(o.policy, o.object);
        if (events === undefined) return;
        for (const o of outcomes) {
          const spec = eventForOutcome(o);
          if (spec !== undefined && o.object !== undefined) void events.record(o.object, spec);
        }
      },
    },
    { dryRun: settings.dryRun },
  );
  metrics.setPolicies(settings.policies.length, settings.invalidPolicies);
  readiness.markPolicies(settings.policies.length);

  // Without leader election this replica is the writer (unless it is a dry run): say so, as a leader would.
  if (settings.lease === null) metrics.setLeader(!settings.dryRun);
  if (settings.lease !== null) {
    metrics.setLeader(false);
    elector = new LeaseElector(kc, {
      ...settings.lease,
      logger: logger.child({ component: 'lease' }),
      onApiError: (e) => metrics.recordKubernetesFailure(e),
      onStartedLeading: () => {
        // Another replica may have led in between: its state, in the annotations, is newer than ours.
        daemon.states.clear();
        daemon.overrides.clear();
        metrics.setLeader(true);
        logger.info(
          { lease: `${settings.lease?.namespace}/${settings.lease?.name}` },
          'leading: writes enabled',
        );
      },
      onStoppedLeading: () => {
        metrics.setLeader(false);
        logger.info('not leading: evaluating without writing');
      },
    });
  }

  // The invalid count of the last load the reloader ran: a change that is reverted to the running policies
  // reports "unchanged", yet its earlier rejection must no longer show as invalid policies.
  let invalidPolicies = settings.invalidPolicies;
  const reloader = new PolicyReloader(settings.policiesDir, settings.policies, async (dir) => {
    const loaded = restrictToNamespace(await loadPolicyDir(dir), settings.onlyNamespace);
    invalidPolicies = loaded.problems.length;
    return loaded;
  });
  await reloader.prime();

  // Bound before any timer starts: when the port is taken, startService rejects and nothing is left running
  // to keep the process alive.
  const http =
    settings.http === null
      ? undefined
      : await startHttpServer({
          ...settings.http,
          metrics,
          readiness: () => withPrometheusStatus(readiness.state(), signals.status),
        });
  if (http !== undefined) logger.info({ url: http.url }, 'serving /metrics, /healthz, /readyz');

  let reloading = false;
  const reloadTimer =
    settings.reloadIntervalMs > 0
      ? setInterval(() => {
          if (reloading) return;
          reloading = true;
          void reloader
            .check()
            .then((r) => {
              metrics.setPolicies(reloader.policies.length, invalidPolicies);
              if (r.kind === 'reloaded') {
                daemon.setPolicies(r.policies);
                signals.retain(r.policies.map((p) => p.name));
                metrics.retainPolicies(r.policies.map((p) => p.name));
                readiness.markPolicies(r.policies.length);
                logger.info({ added: r.added, removed: r.removed, changed: r.changed }, 'policies reloaded');
              }
              if (r.kind !== 'unchanged' && r.problems.length > 0) {
                for (const p of r.problems) logger.error({ problem: formatProblem(p) }, formatProblem(p));
                // An operator looking at the VirtualService should learn that its policy edit did not apply.
                for (const policy of reloader.policies) {
                  const vs = lastSeen.get(policy.name);
                  const mine = r.problems.filter((p) => p.file === policy.file);
                  if (events === undefined || vs === undefined || mine.length === 0) continue;
                  void events.record(vs, {
                    type: 'Warning',
                    reason: 'InvalidPolicy',
                    message: `policy ${policy.name}: the new version of ${policy.file} is invalid, the last valid one keeps running: ${mine.map(formatProblem).join('; ')}`,
                    action: 'LoadPolicy',
                  });
                }
                logger.error(
                  { problems: r.problems.length },
                  'invalid policy files: their last valid versions keep running',
                );
              }
            })
            .catch((err: unknown) => logger.error({ err }, 'policy reload failed'))
            .finally(() => {
              reloading = false;
            });
        }, settings.reloadIntervalMs)
      : undefined;

  elector?.start();
  daemon.start();

  return {
    daemon,
    http,
    metrics,
    async stop() {
      if (reloadTimer !== undefined) clearInterval(reloadTimer);
      // The cycle in flight finishes (each write is one atomic patch, so none is half-applied), then the
      // lease is released so another replica can take over at once.
      await daemon.stop();
      await elector?.stop();
      await http?.close();
    },
  };
}
