/**
 * Signals: the SignalSource port and its Prometheus adapter.
 *
 * - Batching: default queries are shared by every policy with the same rate window; per window and per chunk of
 *   at most 500 distinct workloads there is one traffic query (request rate, 5xx rate, freshness), one CPU query
 *   (usage, requests, freshness) and, if any policy there watches latency by default, one p99 query. N workloads
 *   on one window cost 3 x ceil(N / 500) queries (3 up to 500, 6 for 1,000). Policy overrides cost one query each.
 * - Production rate (requests/s of the mirrored route's primary service, the mirror target's workload left out):
 *   one query per production window (productionWindowSeconds in src/core/defaults.ts) and chunk of 500 services, or the
 *   policy's productionRate override. NoTraffic (a sum of 0), NoSeries (no series, or no primary service known),
 *   QueryFailed; absent only makes the decision FeedbackOnly.
 * - Scrape interval: learned per workload from sample timestamps (scrape.ts), one query per chunk of 500
 *   workloads at start, every 10 minutes and a minute after a failure; the policy's own value wins.
 * - Units: cpuUtilization = cores used / cores requested (fraction, may exceed 1); errorRate = 5xx / all (fraction);
 *   latencyP99Ms in milliseconds; requestRate in requests per second.
 * - Pods belong to a workload when named `<workload>-<x>` or `<workload>-<x>-<y>` (Deployment, StatefulSet,
 *   DaemonSet naming); sidecar (istio-proxy), pause container (POD) and pod cgroup (container="") are excluded.
 * - Absent reasons: NoTraffic (no requests in the window, or pods scraped but never any Istio series), NoSeries
 *   (no data), QueryFailed (HTTP, timeout, network, malformed or wrong-typed response; overrides with several
 *   series), Stale (newest Istio or cAdvisor sample older than staleAfterSeconds, default 120 s, relative to the
 *   evaluation time). Override queries are not checked for staleness: their metrics are unknown. A batched answer
 *   with several series for one workload (and part) fails the query: keeping either value would be a guess.
 * - Prometheus' state (reachable, degraded, unusable, unreachable; see status.ts) is judged after every fetch and
 *   logged once per change, not per failed query: failed queries are logged at debug only.
 * - Signal presets (SignalRequest.preset, from spec.signals.preset): istio (sidecars, reporter="destination"),
 *   istio-ambient (waypoints, reporter="waypoint"; an absence says when the target's namespace has no waypoint
 *   series at all) and otel (http_server_request_duration_seconds_* selected by k8s_namespace_name and
 *   k8s_deployment_name). Batches are per window and preset; CPU is cAdvisor for all. `signalOrigin(policy)`
 *   and SignalReading.origin name the preset and reporter read. See PRESET_METRICS in promql.ts.
 * - TLS: `ca` (from --prometheus-ca-file / PROMETHEUS_CA_FILE) replaces Node's roots for every query.
 */
export type { ClassifyContext, QueryOutcome, VectorSample, WorkloadSignals } from './classify.js';
export { classifyOverride, classifyWorkload } from './classify.js';
export type { BasicAuth, PrometheusConfigFields, ResolveOptions } from './config.js';
export {
  DEFAULT_PROMETHEUS_URL,
  DEFAULT_TIMEOUT_MS,
  PrometheusConfig,
  PrometheusConfigError,
  redactUrl,
  resolvePrometheusConfig,
} from './config.js';
export type { PrometheusSignalSourceOptions, QueryEvent, SignalLogger } from './prometheus.js';
export {
  DEFAULT_MAX_CONCURRENT_QUERIES,
  DEFAULT_STALE_AFTER_SECONDS,
  PrometheusSignalSource,
} from './prometheus.js';
export type { RequestMetrics, ServiceRef, SignalOrigin, WorkloadRef } from './promql.js';
export {
  cpuQuery,
  DEFAULT_MAX_WORKLOADS_PER_QUERY,
  latencyQuery,
  PRESET_METRICS,
  presetMetrics,
  productionBatchQuery,
  productionQuery,
  renderOverride,
  scrapeIntervalQuery,
  signalOrigin,
  trafficQuery,
} from './promql.js';
export type { ResolvedObservation, ResolvedScrapeInterval } from './scrape.js';
export {
  DEFAULT_SCRAPE_RELEARN_SECONDS,
  DEFAULT_SCRAPE_RETRY_SECONDS,
  resolveObservation,
  resolveScrapeInterval,
} from './scrape.js';
export type { PrometheusState, PrometheusStatus, QueryResultSummary, RequestHealth } from './status.js';
export {
  assessPrometheus,
  PROMETHEUS_STATES,
  PrometheusStatusTracker,
  requestHealth,
} from './status.js';
export type { ProductionRequest, SignalReading, SignalRequest, SignalSource } from './types.js';
