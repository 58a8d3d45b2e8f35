import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubernetesRouteStore } from '../mesh/index.js';
import { formatProblem, loadPolicyDir } from '../policy/index.js';
import { type MirrorPolicy, type Problem, ROUTE_FIELDS } from '../policy/types.js';
import { PrometheusSignalSource, type QueryEvent, resolvePrometheusConfig } from '../signals/index.js';

/** Settings shared by `plan` and `run`, from flags with environment fallbacks. */
export interface ConnectionFlags {
  policies: string;
  prometheusUrl?: string;
  /** --prometheus-ca-file: PEM CA bundle for an https Prometheus (else PROMETHEUS_CA_FILE). */
  prometheusCaFile?: string;
  kubeconfig?: string;
}

/** Where command output goes; `process` satisfies it, tests pass collectors. */
export interface Io {
  readonly stderr: { write(text: string): unknown };
}

/**
 * Loads the Kubernetes client configuration: the --kubeconfig file when given, else KUBECONFIG,
 * ~/.kube/config or the in-cluster service account, in that order (client-node's loadFromDefault).
 */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file !== undefined) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (kc.getCurrentCluster() === null) {
    throw new Error(
      file !== undefined
        ? `${file}: kubeconfig has no current cluster`
        : 'no Kubernetes configuration found (set --kubeconfig or KUBECONFIG, or run in a cluster)',
    );
  }
  return kc;
}

/**
 * The Prometheus adapter, configured from the flags and the environment (credentials never logged).
 * `caFile` is --prometheus-ca-file; PROMETHEUS_CA_FILE applies when it is undefined.
 */
export function createSignalSource(
  prometheusUrl: string | undefined,
  env: NodeJS.ProcessEnv,
  logger: Logger,
  onQuery?: (event: QueryEvent) => void,
  caFile?: string,
): PrometheusSignalSource {
  const prom = resolvePrometheusConfig({
    ...(prometheusUrl !== undefined && { flagUrl: prometheusUrl }),
    ...(caFile !== undefined && { flagCaFile: caFile }),
    env,
  });
  return new PrometheusSignalSource({
    url: prom.url,
    timeoutMs: prom.timeoutMs,
    ...(prom.bearerToken !== undefined && { bearerToken: prom.bearerToken }),
    ...(prom.basicAuth !== undefined && { basicAuth: prom.basicAuth }),
    ...(prom.ca !== undefined && { ca: prom.ca }),
    logger: logger.child({ component: 'prometheus' }),
    ...(onQuery !== undefined && { onQuery }),
  });
}

/** The adapters of the live loop, built from flags and the environment. */
export function connect(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): { signals: PrometheusSignalSource; routes: KubernetesRouteStore } {
  return {
    signals: createSignalSource(flags.prometheusUrl, env, logger, undefined, flags.prometheusCaFile),
    routes: new KubernetesRouteStore(loadKubeConfig(flags.kubeconfig)),
  };
}

/**
 * Loads the policies directory for the live loop. Invalid files are reported on stderr and left out, so one
 * broken policy never stops the others; no valid policy at all is an error.
 */
export async function loadPoliciesReporting(
  dir: string,
  io: Io,
  onlyNamespace?: string,
): Promise<{ policies: MirrorPolicy[]; problems: number }> {
  const { policies, problems } = restrictToNamespace(await loadPolicyDir(dir), onlyNamespace);
  for (const p of problems) io.stderr.write(`${formatProblem(p)}\n`);
  if (policies.length === 0) {
    throw new Error(`${dir}: no valid policy to evaluate`);
  }
  return { policies, problems: problems.length };
}

/**
 * Refuses the policies of other namespaces when the daemon is namespace-scoped: such an install has no
 * permission elsewhere, and saying so once beats failing every cycle.
 */
export function restrictToNamespace(
  loaded: { policies: readonly MirrorPolicy[]; problems: readonly Problem[] },
  onlyNamespace: string | undefined,
): { policies: MirrorPolicy[]; problems: Problem[] } {
  const problems = [...loaded.problems];
  const policies = loaded.policies.filter((p) => {
    if (onlyNamespace === undefined || p.route.namespace === onlyNamespace) return true;
    problems.push({
      file: p.file,
      line: 0,
      col: 0,
      path: `spec.${ROUTE_FIELDS[p.route.kind]}.namespace`,
      message: `must be "${onlyNamespace}": the daemon is restricted to that namespace (got "${p.route.namespace}")`,
    });
    return false;
  });
  return { policies, problems };
}

/** Reads an environment variable that holds a boolean flag. */
export function envFlag(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = env[name]?.trim().toLowerCase();
  return v === '1' || v === 'true' || v === 'yes';
}
