/**
 * A plant's counters as a Prometheus scrape would find them: the Prometheus text exposition format (0.0.4)
 * of the series Istio's sidecars, cAdvisor and kube-state-metrics export, with the labels the daemon's
 * default queries select on. Pure functions plus one small accumulator; the HTTP server around them lives
 * with whoever runs the plant live.
 *
 * What is exported:
 * - the mirror target, as its own sidecar reports it (mirrored copies are reported by the receiving sidecar
 *   only): `istio_requests_total{reporter="destination",destination_workload=<target>,response_code="200"|"503"}`
 *   and `istio_request_duration_milliseconds_bucket` / `_count` per response code;
 * - production, as the primary workload's sidecar reports it (`reporter="destination"`,
 *   `destination_service_name=<primary service>`, `destination_workload=<primary workload>`), and the same
 *   requests as the caller's sidecar reports them (`reporter="source"`), which a query must not count twice;
 * - the target's CPU: `container_cpu_usage_seconds_total` per pod for the app container, the sidecar, the
 *   pause container and the pod cgroup (`container=""`, the sum of the others), and
 *   `kube_pod_container_resource_requests` for the app container and the sidecar.
 *
 * The latency histogram has no `_sum`: the plant does not model the mean, and no query uses it.
 */
import { ISTIO_DURATION_BUCKETS_MS, type TargetCounters } from './plant.js';

/** Who is who: namespace, workloads, services and pods. */
export interface ExpositionNames {
  readonly namespace: string;
  /** The mirror target's workload (its Istio destination_workload). */
  readonly targetWorkload: string;
  /** The mirror target's service (the mirror host's short name). */
  readonly targetService: string;
  /** The primary destination's service (the route's destination host's short name). */
  readonly primaryService: string;
  /** The primary's workload. */
  readonly primaryWorkload: string;
  /** The caller of the primary (source_workload). */
  readonly sourceWorkload: string;
  /** The target's pods, named `<targetWorkload>-<hash>-<id>`; CPU is spread evenly over them. */
  readonly pods: readonly string[];
}

/**
 * Cumulative counters split by response code. The plant keeps one latency histogram for all requests; the
 * sidecar labels every observation with its response code, so the split is kept here, span by span.
 */
export interface CodeCounters {
  /** istio_requests_total by code. */
  readonly requests: { readonly ok: number; readonly failed: number };
  /** Cumulative bucket counts by code, one per ISTIO_DURATION_BUCKETS_MS bound plus +Inf last. */
  readonly buckets: { readonly ok: readonly number[]; readonly failed: readonly number[] };
}

/** Everything one scrape shows. */
export interface ExpositionSnapshot {
  readonly target: CodeCounters;
  /** container_cpu_usage_seconds_total of the target's app containers, all pods together. */
  readonly cpuSeconds: number;
  /** Requested CPU cores of the target's app containers, all pods together. */
  readonly cpuRequestCores: number;
  /** Seconds the target's pods have run (the sidecar's and pause container's CPU grow with it). */
  readonly uptimeSeconds: number;
  /** Production requests the primary's sidecar has reported (all answered 200). */
  readonly productionRequests: number;
}

/** CPU cores of each pod's sidecar and pause container: small, steady, and excluded by the queries. */
export const SIDECAR_CORES = 0.02;
export const PAUSE_CORES = 0.001;
/** CPU request of each pod's sidecar, in cores. */
export const SIDECAR_REQUEST_CORES = 0.1;

/** Counters before any request. */
export function emptyCodeCounters(): CodeCounters {
  const n = ISTIO_DURATION_BUCKETS_MS.length + 1;
  return {
    requests: { ok: 0, failed: 0 },
    buckets: { ok: new Array<number>(n).fill(0), failed: new Array<number>(n).fill(0) },
  };
}

/**
 * Adds what the plant counted since `previous` (its counters then) to `split`: the failed share of the span's
 * requests takes the same share of the span's latency observations. Every series stays non-decreasing.
 */
export function accumulateByCode(
  split: CodeCounters,
  previous: Readonly<Pick<TargetCounters, 'requests' | 'errors' | 'latencyBuckets'>>,
  current: Readonly<Pick<TargetCounters, 'requests' | 'errors' | 'latencyBuckets'>>,
): CodeCounters {
  const dRequests = Math.max(0, current.requests - previous.requests);
  const dErrors = Math.min(dRequests, Math.max(0, current.errors - previous.errors));
  const failedShare = dRequests > 0 ? dErrors / dRequests : 0;
  const n = ISTIO_DURATION_BUCKETS_MS.length + 1;
  const ok: number[] = [];
  const failed: number[] = [];
  for (let i = 0; i < n; i++) {
    const d = Math.max(0, (current.latencyBuckets[i] ?? 0) - (previous.latencyBuckets[i] ?? 0));
    ok.push((split.buckets.ok[i] ?? 0) + d * (1 - failedShare));
    failed.push((split.buckets.failed[i] ?? 0) + d * failedShare);
  }
  return {
    requests: { ok: split.requests.ok + dRequests - dErrors, failed: split.requests.failed + dErrors },
    buckets: { ok, failed },
  };
}

/** A label set in exposition syntax; values escaped as the format requires. */
export function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"')}"`)
    .join(',');
}

/** A sample value: shortest round-trip decimal, +Inf/-Inf/NaN as the format spells them. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  if (v === Number.NEGATIVE_INFINITY) return '-Inf';
  return String(v);
}

/** A bucket bound as the `le` label: Go's shortest formatting, as client libraries write it. */
function formatBound(le: number): string {
  return le === Number.POSITIVE_INFINITY ? '+Inf' : String(le);
}

function istioLabels(names: ExpositionNames, service: string, workload: string): Record<string, string> {
  const ns = names.namespace;
  return {
    source_workload: names.sourceWorkload,
    source_workload_namespace: ns,
    destination_workload: workload,
    destination_workload_namespace: ns,
    destination_service: `${service}.${ns}.svc.cluster.local`,
    destination_service_name: service,
    destination_service_namespace: ns,
    destination_version: 'v1',
    request_protocol: 'http',
    response_flags: '-',
    connection_security_policy: 'mutual_tls',
  };
}

/**
 * The scrape body for one snapshot, in the text exposition format (families contiguous, a `# TYPE` line
 * each). The 503 series appear only once a request has failed, as Istio's do.
 */
export function renderExposition(names: ExpositionNames, s: ExpositionSnapshot): string {
  const lines: string[] = [];
  const sample = (name: string, labels: Readonly<Record<string, string>>, value: number) =>
    lines.push(`${name}{${labelText(labels)}} ${formatValue(value)}`);
  const target = istioLabels(names, names.targetService, names.targetWorkload);
  const primary = istioLabels(names, names.primaryService, names.primaryWorkload);
  const codes: { code: string; requests: number; buckets: readonly number[] }[] = [
    { code: '200', requests: s.target.requests.ok, buckets: s.target.buckets.ok },
  ];
  if (s.target.requests.failed > 0) {
    codes.push({ code: '503', requests: s.target.requests.failed, buckets: s.target.buckets.failed });
  }

  lines.push('# HELP istio_requests_total Total requests.', '# TYPE istio_requests_total counter');
  for (const c of codes) {
    sample('istio_requests_total', { reporter: 'destination', ...target, response_code: c.code }, c.requests);
  }
  sample(
    'istio_requests_total',
    { reporter: 'destination', ...primary, response_code: '200' },
    s.productionRequests,
  );
  sample(
    'istio_requests_total',
    { reporter: 'source', ...primary, response_code: '200' },
    s.productionRequests,
  );

  lines.push(
    '# HELP istio_request_duration_milliseconds Request duration in milliseconds.',
    '# TYPE istio_request_duration_milliseconds histogram',
  );
  const bounds = [...ISTIO_DURATION_BUCKETS_MS, Number.POSITIVE_INFINITY];
  for (const c of codes) {
    const labels = { reporter: 'destination', ...target, response_code: c.code };
    // Cumulative counts can lose monotonicity by a rounding hair; a histogram's buckets must not.
    let running = 0;
    for (let i = 0; i < bounds.length; i++) {
      running = Math.max(running, c.buckets[i] ?? 0);
      sample(
        'istio_request_duration_milliseconds_bucket',
        { ...labels, le: formatBound(bounds[i] ?? 0) },
        running,
      );
    }
    sample('istio_request_duration_milliseconds_count', labels, running);
  }

  const pods = names.pods.length > 0 ? names.pods : [`${names.targetWorkload}-0`];
  const ns = names.namespace;
  lines.push(
    '# HELP container_cpu_usage_seconds_total Cumulative cpu time consumed in seconds.',
    '# TYPE container_cpu_usage_seconds_total counter',
  );
  for (const pod of pods) {
    const app = s.cpuSeconds / pods.length;
    const proxy = SIDECAR_CORES * s.uptimeSeconds;
    const pause = PAUSE_CORES * s.uptimeSeconds;
    const cpu = (container: string, v: number) =>
      sample('container_cpu_usage_seconds_total', { namespace: ns, pod, container, cpu: 'total' }, v);
    cpu('app', app);
    cpu('istio-proxy', proxy);
    cpu('POD', pause);
    cpu('', app + proxy + pause);
  }
  lines.push(
    '# HELP kube_pod_container_resource_requests The number of requested request resource by a container.',
    '# TYPE kube_pod_container_resource_requests gauge',
  );
  for (const pod of pods) {
    const req = (container: string, resource: string, unit: string, v: number) =>
      sample(
        'kube_pod_container_resource_requests',
        { namespace: ns, pod, uid: `uid-${pod}`, container, node: 'node-1', resource, unit },
        v,
      );
    req('app', 'cpu', 'core', s.cpuRequestCores / pods.length);
    req('istio-proxy', 'cpu', 'core', SIDECAR_REQUEST_CORES);
    req('app', 'memory', 'byte', 268435456);
  }
  return `${lines.join('\n')}\n`;
}

/** Content-Type of the text exposition format. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
