/** Signals port and its Prometheus adapter. */
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
export type { WorkloadRef } from './promql.js';
export {
  cpuQuery,
  DEFAULT_MAX_WORKLOADS_PER_QUERY,
  latencyQuery,
  renderOverride,
  trafficQuery,
} from './promql.js';
export type { SignalReading, SignalRequest, SignalSource } from './types.js';
