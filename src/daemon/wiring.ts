import { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { KubernetesRouteStore } from '../mesh/index.js';
import { formatProblem, loadPolicyDir } from '../policy/index.js';
import type { MirrorPolicy } from '../policy/types.js';
import { PrometheusSignalSource, resolvePrometheusConfig } from '../signals/index.js';

/** Settings shared by `plan` and `run`, from flags with environment fallbacks. */
export interface ConnectionFlags {
  policies: string;
  prometheusUrl?: string;
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

/** The adapters of the live loop, built from flags and the environment. */
export function connect(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): { signals: PrometheusSignalSource; routes: KubernetesRouteStore } {
  const prom = resolvePrometheusConfig({
    ...(flags.prometheusUrl !== undefined && { flagUrl: flags.prometheusUrl }),
    env,
  });
  const signals = new PrometheusSignalSource({
    url: prom.url,
    timeoutMs: prom.timeoutMs,
    ...(prom.bearerToken !== undefined && { bearerToken: prom.bearerToken }),
    ...(prom.basicAuth !== undefined && { basicAuth: prom.basicAuth }),
    logger: logger.child({ component: 'prometheus' }),
  });
  const routes = new KubernetesRouteStore(loadKubeConfig(flags.kubeconfig));
  return { signals, routes };
}

/**
 * Loads the policies directory for the live loop. Invalid files are reported on stderr and left out, so one
 * broken policy never stops the others; no valid policy at all is an error.
 */
export async function loadPoliciesReporting(
  dir: string,
  io: Io,
): Promise<{ policies: MirrorPolicy[]; problems: number }> {
  const { policies, problems } = await loadPolicyDir(dir);
  for (const p of problems) io.stderr.write(`${formatProblem(p)}\n`);
  if (policies.length === 0) {
    throw new Error(`${dir}: no valid policy to evaluate`);
  }
  return { policies, problems: problems.length };
}

/** Reads an environment variable that holds a boolean flag. */
export function envFlag(env: NodeJS.ProcessEnv, name: string): boolean {
  const v = env[name]?.trim().toLowerCase();
  return v === '1' || v === 'true' || v === 'yes';
}
