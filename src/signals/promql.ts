import { renderQuery } from '../policy/query.js';
import { DEFAULT_SIGNAL_PRESET, type SignalPreset } from '../policy/types.js';
/**
 * Default PromQL, batched: one query per (signal family, window, chunk of workloads) instead of one per policy.
 *
 * Every query groups its result by namespace and workload, so a cycle for 1,000 policies that share the default
 * queries and a window costs a few queries, not thousands. Pure functions only: no I/O here.
 */

/** A mirror target: namespace and workload name. */
export interface WorkloadRef {
  readonly namespace: string;
  readonly workload: string;
}

/**
 * Workloads per batched query. With 500, a 1,000-policy fleet on one window costs 2 chunks x 3 queries = 6;
 * the selector then holds about 500 x 30 characters per alternation, well inside what Prometheus parses quickly,
 * and the queries are sent as POST bodies so no URL length limit applies.
 */
export const DEFAULT_MAX_WORKLOADS_PER_QUERY = 500;

/** Label added by label_replace to tell apart the parts of a combined (`or`) query. */
export const PART_LABEL = 'mirror_autoscaler_part';

/** Values of PART_LABEL. The non-5xx request rate carries no part label (label_replace leaves it unset). */
export const PART = {
  errors5xx: '5xx',
  timestamp: 'timestamp',
  usage: 'usage',
  requests: 'requests',
  /** One series per namespace that holds any request series of the preset (ambient only: waypoint presence). */
  namespace: 'namespace',
} as const;

/** Label names under which each query family reports namespace and workload. */
export const ISTIO_LABELS = {
  namespace: 'destination_workload_namespace',
  workload: 'destination_workload',
} as const;
export const CPU_LABELS = { namespace: 'namespace', workload: 'workload' } as const;

// DNS-1123 subdomain, the strictest rule that still admits every namespace and workload name Kubernetes allows.
// Its charset has no quote, backslash or brace, so a name can never break out of a PromQL string or matcher.
const SAFE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** True when `name` is a DNS-1123 subdomain (at most 253 characters) and therefore safe inside PromQL. */
export function isSafeName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && SAFE_NAME.test(name);
}

/**
 * A regular-expression alternation of literal names, written as the inside of a PromQL string.
 * Longest names come first: Go's regexp prefers the first alternative that leads to a full match, so
 * `(api-gateway|api)-…` maps pod `api-gateway-x-y` to api-gateway even where `api` could also match.
 * `.` is escaped (twice: once for the regexp, once for the PromQL string literal).
 */
export function alternation(names: Iterable<string>): string {
  const unique = [...new Set(names)];
  unique.sort((a, b) => b.length - a.length || (a < b ? -1 : a > b ? 1 : 0));
  return unique.map((n) => n.replaceAll('.', '\\\\.')).join('|');
}

/**
 * The pod-name pattern of a set of workloads: `<workload>-<segment>` or `<workload>-<segment>-<segment>`, which
 * covers Deployment (`name-<rs hash>-<pod hash>`), StatefulSet (`name-0`) and DaemonSet (`name-<hash>`) pods.
 * Assumption: the mirror target's pods are named after its workload like this. A stricter pattern than the
 * `W-.*` of the usual dashboards, so that workload `api` does not take the pods of a workload `api-gateway-v2`.
 */
export function podPattern(workloads: Iterable<string>): string {
  return `(${alternation(workloads)})(-[a-z0-9]+){1,2}`;
}

/** A window as a PromQL duration; milliseconds when the window is not a whole number of seconds. */
export function windowDuration(windowSeconds: number): string {
  return Number.isInteger(windowSeconds) ? `${windowSeconds}s` : `${Math.round(windowSeconds * 1000)}ms`;
}

/** Splits workloads into chunks of at most `max`, sorted by namespace then name so a chunk spans few namespaces. */
export function chunkWorkloads(refs: readonly WorkloadRef[], max: number): WorkloadRef[][] {
  const seen = new Map<string, WorkloadRef>();
  for (const r of refs) seen.set(workloadKey(r), r);
  const sorted = [...seen.values()].sort(
    (a, b) => compare(a.namespace, b.namespace) || compare(a.workload, b.workload),
  );
  const size = Math.max(1, Math.floor(max));
  const chunks: WorkloadRef[][] = [];
  for (let i = 0; i < sorted.length; i += size) chunks.push(sorted.slice(i, i + size));
  return chunks;
}

/** "namespace/workload", the key under which query results are collected. */
export function workloadKey(ref: WorkloadRef): string {
  return `${ref.namespace}/${ref.workload}`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The request metrics a signal preset reads: which counter and histogram, which labels name the workload,
 * the response code and the primary service. CPU is the same for every preset (cAdvisor, kube-state-metrics).
 */
export interface RequestMetrics {
  readonly preset: SignalPreset;
  /** Istio's reporter label value, for the Istio presets. */
  readonly reporter?: 'destination' | 'waypoint';
  /** Counter of requests (one increment per request). */
  readonly requests: string;
  /** Cumulative histogram buckets of the request duration. */
  readonly buckets: string;
  /** Factor from the histogram's unit to milliseconds. */
  readonly toMs: number;
  /** Label holding the HTTP response code. */
  readonly status: string;
  /** Labels naming the target's namespace and workload, in the answer of the traffic and latency queries. */
  readonly labels: SeriesLabels;
  /**
   * Labels naming the primary service (and the workload behind it) in the production query. Without a workload
   * label every series of the service belongs to one workload, which is never the mirror target.
   */
  readonly service: { readonly namespace: string; readonly name: string; readonly workload?: string };
}

/** Which labels name namespace and workload in a batched query's result. */
export type SeriesLabels = { readonly namespace: string; readonly workload: string };

/** Istio's standard request metrics as the mirror target's sidecar reports them. */
const ISTIO_METRICS: RequestMetrics = {
  preset: 'istio',
  reporter: 'destination',
  requests: 'istio_requests_total',
  buckets: 'istio_request_duration_milliseconds_bucket',
  toMs: 1,
  status: 'response_code',
  labels: { namespace: 'destination_workload_namespace', workload: 'destination_workload' },
  service: {
    namespace: 'destination_service_namespace',
    name: 'destination_service_name',
    workload: 'destination_workload',
  },
};

/**
 * The request metrics of each preset.
 *
 * - istio: sidecar metrics as the mirror target's own sidecar reports them (reporter="destination"); mirrored
 *   copies are reported only there.
 * - istio-ambient: ztunnel does L4 only (istio_tcp_*); HTTP metrics come from the waypoint proxy, which
 *   reports istio_requests_total and istio_request_duration_milliseconds with reporter="waypoint" and the same
 *   destination_workload, destination_workload_namespace, destination_service_name and
 *   destination_service_namespace labels as a sidecar (istio/istio tests/integration/ambient/baseline_test.go,
 *   buildQuery). Open question: waypoints mirror since Istio 1.24 (istio/istio#53463, the mirror policy points
 *   at the target's inbound-vip cluster), and the request the stats filter reports is the original one; whether
 *   the mirrored copy is reported under the target's destination_workload is not established from the sources.
 *   If it is not, the target's signals show only its other traffic: check on a cluster before relying on it.
 * - otel: the OpenTelemetry HTTP server histogram http.server.request.duration (unit s, attribute
 *   http.response.status_code), which Prometheus' OTLP receiver and the Collector's Prometheus exporters name
 *   http_server_request_duration_seconds_{bucket,count,sum} with label http_response_status_code. The workload
 *   is selected by the resource attributes k8s.namespace.name and k8s.deployment.name (set by the Collector's
 *   k8sattributes processor and the Operator's injection), promoted to the labels k8s_namespace_name and
 *   k8s_deployment_name. Why not `job`: it holds service.namespace/service.name, which need not match the
 *   Kubernetes namespace, and a shadow Deployment of the same service shares it with the primary. Promotion is
 *   one setting: `otlp.promote_resource_attributes` in Prometheus, `resource_to_telemetry_conversion` in the
 *   Collector's prometheus and prometheusremotewrite exporters. The primary's Deployment is taken to be named
 *   like its Service.
 */
export const PRESET_METRICS: Readonly<Record<SignalPreset, RequestMetrics>> = {
  istio: ISTIO_METRICS,
  // The same metrics and labels, reported by waypoint proxies.
  'istio-ambient': { ...ISTIO_METRICS, preset: 'istio-ambient', reporter: 'waypoint' },
  otel: {
    preset: 'otel',
    requests: 'http_server_request_duration_seconds_count',
    buckets: 'http_server_request_duration_seconds_bucket',
    toMs: 1000,
    status: 'http_response_status_code',
    labels: { namespace: 'k8s_namespace_name', workload: 'k8s_deployment_name' },
    service: { namespace: 'k8s_namespace_name', name: 'k8s_deployment_name' },
  },
};

/** The request metrics of a preset; absent means the default (istio). */
export function presetMetrics(preset: SignalPreset | undefined): RequestMetrics {
  return PRESET_METRICS[preset ?? DEFAULT_SIGNAL_PRESET];
}

/** Where a policy's request signals come from, for display (`plan`) and logs. */
export interface SignalOrigin {
  readonly preset: SignalPreset;
  /** Istio's reporter label value; absent for presets without one (otel). */
  readonly reporter?: 'destination' | 'waypoint';
}

/**
 * The origin of the request signals of a policy (or of a preset): `{preset: 'istio', reporter: 'destination'}`,
 * `{preset: 'istio-ambient', reporter: 'waypoint'}` or `{preset: 'otel'}`. Query overrides may read other
 * metrics for their signal; this names what the built-in queries read.
 */
export function signalOrigin(
  from: { readonly signalPreset?: SignalPreset } | SignalPreset | undefined,
): SignalOrigin {
  const preset = typeof from === 'string' ? from : from?.signalPreset;
  const m = presetMetrics(preset);
  return m.reporter === undefined ? { preset: m.preset } : { preset: m.preset, reporter: m.reporter };
}

/** The reporter matcher of a preset, with its trailing comma, or nothing. */
function reporterMatcher(m: RequestMetrics): string {
  return m.reporter === undefined ? '' : `reporter="${m.reporter}",`;
}

function requestSelector(refs: readonly WorkloadRef[], m: RequestMetrics): string {
  return (
    reporterMatcher(m) +
    `${m.labels.namespace}=~"${alternation(refs.map((r) => r.namespace))}",` +
    `${m.labels.workload}=~"${alternation(refs.map((r) => r.workload))}"`
  );
}

/**
 * Request rate by response class plus the newest sample's timestamp, for every workload of the chunk:
 * - no part label: rate of non-5xx requests; part "5xx": rate of 5xx requests (absent when there were none,
 *   which is why the two are read from one grouped sum instead of a division that would return nothing);
 * - part "timestamp": time of the newest istio_requests_total sample (for the staleness check).
 * The selector matches the cross product of namespaces and workloads; the caller keeps only requested pairs.
 */
export function trafficQuery(
  refs: readonly WorkloadRef[],
  windowSeconds: number,
  metrics: RequestMetrics = PRESET_METRICS.istio,
): string {
  const m = metrics;
  const sel = requestSelector(refs, m);
  const by = `${m.labels.namespace}, ${m.labels.workload}`;
  const query =
    `sum by (${by}, ${PART_LABEL}) (label_replace(rate(${m.requests}{${sel}}[${windowDuration(windowSeconds)}]), ` +
    `"${PART_LABEL}", "${PART.errors5xx}", "${m.status}", "5..")) or ` +
    `label_replace(max by (${by}) (timestamp(${m.requests}{${sel}})), "${PART_LABEL}", "${PART.timestamp}", "", "")`;
  if (m.reporter !== 'waypoint') return query;
  // Part "namespace": which namespaces have any waypoint series at all. A target without series in a namespace
  // without any points at a missing waypoint or enrolment, not at an idle target; one series per namespace.
  const nsSel = `${reporterMatcher(m)}${m.labels.namespace}=~"${alternation(refs.map((r) => r.namespace))}"`;
  return `${query} or label_replace(group by (${m.labels.namespace}) (${m.requests}{${nsSel}}), "${PART_LABEL}", "${PART.namespace}", "", "")`;
}

/** p99 latency in milliseconds per workload (NaN where the window saw no requests). */
export function latencyQuery(
  refs: readonly WorkloadRef[],
  windowSeconds: number,
  metrics: RequestMetrics = PRESET_METRICS.istio,
): string {
  const m = metrics;
  const by = `${m.labels.namespace}, ${m.labels.workload}, le`;
  const quantile =
    `histogram_quantile(0.99, sum by (${by}) ` +
    `(rate(${m.buckets}{${requestSelector(refs, m)}}[${windowDuration(windowSeconds)}])))`;
  return m.toMs === 1 ? quantile : `${quantile} * ${m.toMs}`;
}

/**
 * CPU of the workload's pods, three parts per workload:
 * - "usage": cores used (cAdvisor), without the pod cgroup (container=""), the pause container and the sidecar;
 * - "requests": CPU requests in cores (kube-state-metrics) of the same containers that report usage, so pending
 *   or finished pods do not dilute the utilisation;
 * - "timestamp": newest cAdvisor sample (for the staleness check, and to know the pods exist at all).
 * The pod-to-workload mapping is a label_replace with podPattern().
 */
export function cpuQuery(refs: readonly WorkloadRef[], windowSeconds: number): string {
  const pods = podPattern(refs.map((r) => r.workload));
  const ns = alternation(refs.map((r) => r.namespace));
  const usageSel = `namespace=~"${ns}",pod=~"${pods}",container!="",container!="POD",container!="istio-proxy"`;
  const requestsSel = `namespace=~"${ns}",pod=~"${pods}",resource="cpu",unit="core",container!="istio-proxy"`;
  const toWorkload = (expr: string): string => `label_replace(${expr}, "workload", "$1", "pod", "${pods}")`;
  const part = (expr: string, name: string): string =>
    `label_replace(${expr}, "${PART_LABEL}", "${name}", "", "")`;
  const by = `${CPU_LABELS.namespace}, ${CPU_LABELS.workload}`;
  const usage = `sum by (${by}) (${toWorkload(`rate(container_cpu_usage_seconds_total{${usageSel}}[${windowDuration(windowSeconds)}])`)})`;
  const requests = `sum by (${by}) (${toWorkload(
    `kube_pod_container_resource_requests{${requestsSel}} and on (namespace, pod, container) container_cpu_usage_seconds_total{${usageSel}}`,
  )})`;
  const newest = `max by (${by}) (${toWorkload(`timestamp(container_cpu_usage_seconds_total{${usageSel}})`)})`;
  return `${part(usage, PART.usage)} or ${part(requests, PART.requests)} or ${part(newest, PART.timestamp)}`;
}

/**
 * Substitutes {{namespace}}, {{workload}} and {{window}} in a policy's query override, with the same
 * renderer the policy validator checks templates against.
 * @returns the query, or an error message naming the first unknown placeholder.
 */
export function renderOverride(
  template: string,
  vars: { namespace: string; workload: string; windowSeconds: number },
): { query: string } | { error: string } {
  try {
    return { query: renderQuery(template, vars) };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** A Kubernetes service: the primary side of a mirrored route. */
export interface ServiceRef {
  readonly namespace: string;
  readonly name: string;
}

/** Label names under which the production query reports the primary service and the workload behind it. */
export const SERVICE_LABELS = {
  namespace: 'destination_service_namespace',
  name: 'destination_service_name',
  workload: 'destination_workload',
} as const;

/**
 * Production requests/s of one primary service, as its own sidecars report them (reporter="destination"),
 * without the mirror target's workload: a mirror to another subset of the same host shares the service name,
 * and mirrored copies are reported only by the target, so what is left is the production traffic alone.
 * The one builder of this query: the backtest reads the same shape over its history.
 */
export function productionQuery(
  service: ServiceRef,
  excludeWorkload: string,
  windowSeconds: number,
  metrics: RequestMetrics = PRESET_METRICS.istio,
): string {
  const m = metrics;
  const exclude = m.service.workload === undefined ? '' : `,${m.service.workload}!="${excludeWorkload}"`;
  return (
    `sum(rate(${m.requests}{${reporterMatcher(m)}${m.service.namespace}="${service.namespace}",` +
    `${m.service.name}="${service.name}"${exclude}}[${windowDuration(windowSeconds)}]))`
  );
}

/**
 * {@link productionQuery} for many services at once: the request rate per service and workload, so that each
 * policy's own mirror target can be left out of its sum on this side (the exclusion differs per policy, the
 * query does not). The selector matches the cross product of namespaces and names; the caller keeps only
 * requested pairs. The answer has one series per workload behind a requested service: a few per policy.
 */
export function productionBatchQuery(
  services: readonly ServiceRef[],
  windowSeconds: number,
  metrics: RequestMetrics = PRESET_METRICS.istio,
): string {
  const m = metrics;
  const sel =
    reporterMatcher(m) +
    `${m.service.namespace}=~"${alternation(services.map((s) => s.namespace))}",` +
    `${m.service.name}=~"${alternation(services.map((s) => s.name))}"`;
  const by = [
    m.service.namespace,
    m.service.name,
    ...(m.service.workload === undefined ? [] : [m.service.workload]),
  ];
  return `sum by (${by.join(', ')}) (rate(${m.requests}{${sel}}[${windowDuration(windowSeconds)}]))`;
}

/**
 * Span of samples the scrape interval is learned from: four samples even at the slowest accepted scrape (5 m),
 * and 60 at 15 s, which makes the estimate below exact to the second for intervals up to about 30 s.
 */
export const SCRAPE_LEARN_WINDOW_SECONDS = 900;

/** Values of PART_LABEL in the scrape-interval query: the bound and the sample count, per family. */
export const SCRAPE_PART = {
  istio: 'istio',
  cpu: 'cpu',
  istioSamples: 'istio_samples',
  cpuSamples: 'cpu_samples',
} as const;

/**
 * The scrape interval of every workload's series, learned from the sample timestamps Prometheus holds: per
 * workload and family (the Istio request counter, the cAdvisor CPU counter) an upper bound of the interval
 * and the sample count it rests on.
 *
 * Per series: with N samples in the last W seconds, the newest at t, the N - 1 gaps fit in t - (now - W), so
 * `(t - (now - W)) / (N - 1)` is an upper bound U of the interval, and the interval is at least U (N - 1) / N
 * (one more gap would not fit). Per workload and family: the smallest U over its series and the largest N. A
 * family is scraped by one job, so its series share the interval; a series that began, ended or missed
 * scrapes inside the window only gives a looser bound, and the minimum ignores it. See
 * `workloadScrapeInterval` for the figure taken from these.
 *
 * Why not the raw samples (`x[5m]`) and a median of gaps: that answer grows with series × samples (hundreds
 * of thousands of points for 1,000 targets); this one is four numbers per workload, computed by Prometheus.
 */
export function scrapeIntervalQuery(
  refs: readonly WorkloadRef[],
  windowSeconds = SCRAPE_LEARN_WINDOW_SECONDS,
  metrics: RequestMetrics = PRESET_METRICS.istio,
): string {
  const range = windowDuration(windowSeconds);
  const bound = (sel: string): string =>
    `(timestamp(${sel}) - (time() - ${windowSeconds})) / ((count_over_time(${sel}[${range}]) > 1) - 1)`;
  const count = (sel: string): string => `count_over_time(${sel}[${range}])`;
  const istio = `${metrics.requests}{${requestSelector(refs, metrics)}}`;
  const pods = podPattern(refs.map((r) => r.workload));
  const ns = alternation(refs.map((r) => r.namespace));
  const cpu = `container_cpu_usage_seconds_total{namespace=~"${ns}",pod=~"${pods}",container!="",container!="POD"}`;
  const part = (expr: string, name: string): string =>
    `label_replace(${expr}, "${PART_LABEL}", "${name}", "", "")`;
  const byIstio = `${metrics.labels.namespace}, ${metrics.labels.workload}`;
  const byCpu = `${CPU_LABELS.namespace}, ${CPU_LABELS.workload}`;
  const toWorkload = (expr: string): string => `label_replace(${expr}, "workload", "$1", "pod", "${pods}")`;
  return [
    part(`min by (${byIstio}) (${bound(istio)})`, SCRAPE_PART.istio),
    part(`max by (${byIstio}) (${count(istio)})`, SCRAPE_PART.istioSamples),
    part(`min by (${byCpu}) (${toWorkload(bound(cpu))})`, SCRAPE_PART.cpu),
    part(`max by (${byCpu}) (${toWorkload(count(cpu))})`, SCRAPE_PART.cpuSamples),
  ].join(' or ');
}
