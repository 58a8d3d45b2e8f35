/**
 * Options and help text shared by the commands that read policies, Prometheus or the Kubernetes API. Only
 * commander here: a command that imports this loads nothing else.
 */
import { type Command, Option } from 'commander';

/** `-p, --policies DIR` (env MIRROR_AUTOSCALER_POLICIES, default `policies`). */
export function policiesOption(cmd: Command): Command {
  return cmd.addOption(
    new Option('-p, --policies <dir>', 'directory of MirrorPolicy files')
      .env('MIRROR_AUTOSCALER_POLICIES')
      .default('policies'),
  );
}

/** `--prometheus-url` and `--prometheus-ca-file`; resolvePrometheusConfig reads their environment fallbacks. */
export function prometheusOptions(cmd: Command): Command {
  return cmd
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
    );
}

/** `--kubeconfig FILE`. */
export function kubeconfigOption(cmd: Command): Command {
  return cmd.addOption(
    new Option(
      '--kubeconfig <file>',
      'kubeconfig file (default: KUBECONFIG, ~/.kube/config, then in-cluster)',
    ),
  );
}

/** The options of a command that reads policies, Prometheus and the Kubernetes API (plan, run). */
export function connectionOptions(cmd: Command): Command {
  return kubeconfigOption(prometheusOptions(policiesOption(cmd)));
}

export const PROMETHEUS_HELP = `
Prometheus: --prometheus-url, else PROMETHEUS_URL, else http://localhost:9090.
  Credentials (never logged): PROMETHEUS_BEARER_TOKEN or PROMETHEUS_BEARER_TOKEN_FILE,
  or PROMETHEUS_USERNAME with PROMETHEUS_PASSWORD or PROMETHEUS_PASSWORD_FILE.
  Per-query timeout: PROMETHEUS_TIMEOUT (default 10s).
  TLS with a private CA: --prometheus-ca-file, else PROMETHEUS_CA_FILE (PEM; default: system roots).`;

export const CONNECTION_HELP = `${PROMETHEUS_HELP}
Kubernetes: --kubeconfig, else KUBECONFIG, ~/.kube/config, or the in-cluster service account.`;
