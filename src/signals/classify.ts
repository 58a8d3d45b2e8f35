/**
 * Turns parsed query results into Signal values: a finite number, or absent with a reason
 * (NoTraffic, NoSeries, QueryFailed, Stale) and a detail a person can act on. Pure: no I/O, no clock.
 */
import type { Signal, SignalName } from '../core/types.js';
import {
  CPU_LABELS,
  PART,
  PART_LABEL,
  PRESET_METRICS,
  type RequestMetrics,
  SCRAPE_PART,
  type SeriesLabels,
  type ServiceRef,
  type WorkloadRef,
  windowDuration,
  workloadKey,
} from './promql.js';

/** The result of one query: its value, or why it failed. */
export type QueryOutcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly detail: string };

/** One element of an instant vector, labels and value (NaN for NaN and ±Inf, as prometheus-query reports them). */
export interface VectorSample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** What the traffic query says about one workload. */
export interface TrafficObservation {
  /** Rate of requests answered with anything but 5xx. */
  nonErrorRate?: number;
  /** Rate of 5xx answers; absent when the workload has no 5xx series in the window. */
  errorRate5xx?: number;
  /** Epoch seconds of the newest istio_requests_total sample (within Prometheus' 5-minute lookback). */
  newestSampleSeconds?: number;
}

/** What the CPU query says about one workload. */
export interface CpuObservation {
  usageCores?: number;
  requestCores?: number;
  newestSampleSeconds?: number;
}

function partOf(s: VectorSample): string {
  return s.labels[PART_LABEL] ?? '';
}

function keyOf(s: VectorSample, labels: { namespace: string; workload: string }): string | undefined {
  const namespace = s.labels[labels.namespace];
  const workload = s.labels[labels.workload];
  if (namespace === undefined || workload === undefined || workload === '') return undefined;
  return workloadKey({ namespace, workload });
}

function getOrCreate<T>(map: Map<string, T>, key: string, make: () => T): T {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

export type { SeriesLabels } from './promql.js';

const ISTIO = PRESET_METRICS.istio;

/**
 * The first workload (and part) that has more than one series in a batched query's result, or undefined.
 * Each batched query sums by namespace, workload and part, so two series for one key mean the answer does not
 * come from these queries as written (two Prometheus servers merged by a proxy, say); keeping either value
 * would be a guess.
 */
export function duplicateSeries(samples: readonly VectorSample[], labels: SeriesLabels): string | undefined {
  const seen = new Set<string>();
  for (const s of samples) {
    const key = keyOf(s, labels);
    if (key === undefined) continue;
    const id = `${key} ${partOf(s)}`;
    if (seen.has(id)) return partOf(s) === '' ? key : `${key} (${PART_LABEL}="${partOf(s)}")`;
    seen.add(id);
  }
  return undefined;
}

/** Groups the traffic query's samples by "namespace/workload". */
export function collectTraffic(
  samples: readonly VectorSample[],
  labels: SeriesLabels = ISTIO.labels,
): Map<string, TrafficObservation> {
  const out = new Map<string, TrafficObservation>();
  for (const s of samples) {
    const key = keyOf(s, labels);
    if (key === undefined) continue;
    const obs = getOrCreate<TrafficObservation>(out, key, () => ({}));
    const part = partOf(s);
    if (part === '') obs.nonErrorRate = s.value;
    else if (part === PART.errors5xx) obs.errorRate5xx = s.value;
    else if (part === PART.timestamp) obs.newestSampleSeconds = s.value;
  }
  return out;
}

/** The namespaces the traffic query's "namespace" part names (namespaces with any series of the preset). */
export function collectNamespaces(samples: readonly VectorSample[], labels: SeriesLabels): Set<string> {
  const out = new Set<string>();
  for (const s of samples) {
    const namespace = s.labels[labels.namespace];
    if (partOf(s) === PART.namespace && namespace !== undefined) out.add(namespace);
  }
  return out;
}

/** Groups the CPU query's samples by "namespace/workload". */
export function collectCpu(samples: readonly VectorSample[]): Map<string, CpuObservation> {
  const out = new Map<string, CpuObservation>();
  for (const s of samples) {
    const key = keyOf(s, CPU_LABELS);
    if (key === undefined) continue;
    const obs = getOrCreate<CpuObservation>(out, key, () => ({}));
    const part = partOf(s);
    if (part === PART.usage) obs.usageCores = s.value;
    else if (part === PART.requests) obs.requestCores = s.value;
    else if (part === PART.timestamp) obs.newestSampleSeconds = s.value;
  }
  return out;
}

/** Groups the latency query's samples (p99 in ms, possibly NaN) by "namespace/workload". */
export function collectLatency(
  samples: readonly VectorSample[],
  labels: SeriesLabels = ISTIO.labels,
): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    const key = keyOf(s, labels);
    if (key !== undefined) out.set(key, s.value);
  }
  return out;
}

/** Everything the batched queries said about one workload; `latency` is undefined when it was not queried. */
export interface WorkloadObservations {
  readonly traffic: QueryOutcome<TrafficObservation | undefined>;
  readonly cpu: QueryOutcome<CpuObservation | undefined>;
  readonly latency?: QueryOutcome<number | undefined>;
  /**
   * Whether the target's namespace has any request series of the preset at all; known only where the traffic
   * query asks (istio-ambient: waypoint series), undefined elsewhere.
   */
  readonly namespaceHasSeries?: boolean;
}

/** Context of a classification. */
export interface ClassifyContext {
  readonly ref: WorkloadRef;
  readonly windowSeconds: number;
  /** Evaluation time, epoch seconds. */
  readonly atSeconds: number;
  /** A series whose newest sample is older than this (relative to atSeconds) is Stale. */
  readonly staleAfterSeconds: number;
  /** The request metrics read (the signal preset); default istio. */
  readonly metrics?: RequestMetrics;
}

/** The signals derived from the default queries for one workload. */
export interface WorkloadSignals {
  requestRate: Signal;
  errorRate: Signal;
  cpuUtilization: Signal;
  /** Present only when the latency query ran. */
  latencyP99Ms?: Signal;
}

const value = (v: number): Signal => ({ kind: 'value', value: v });
const absent = (reason: 'NoSeries' | 'NoTraffic' | 'QueryFailed' | 'Stale', detail: string): Signal => ({
  kind: 'absent',
  reason,
  detail,
});

function staleDetail(metric: string, ctx: ClassifyContext, newest: number): string | undefined {
  // A NaN or infinite timestamp proves nothing about freshness: count it as stale, never as fresh.
  if (!Number.isFinite(newest)) {
    return `newest ${metric} sample for ${workloadKey(ctx.ref)} has no finite timestamp (got ${newest})`;
  }
  const age = ctx.atSeconds - newest;
  if (age <= ctx.staleAfterSeconds) return undefined;
  return `newest ${metric} sample for ${workloadKey(ctx.ref)} is ${Math.round(age)} s old (limit ${ctx.staleAfterSeconds} s)`;
}

/**
 * Classifies the default-query signals of one workload.
 *
 * Rules, in order, for the Istio signals (request rate, error rate, p99):
 * - traffic query failed: QueryFailed (p99 keeps its own value if its query worked, since only the
 *   NoTraffic judgement needs the request rate);
 * - newest istio_requests_total sample older than staleAfterSeconds: Stale;
 * - no rate series: NoSeries, except when the workload's pods are scraped by cAdvisor but have no Istio
 *   series at all, which is what a target that never got a request looks like: NoTraffic, so CPU still speaks
 *   and a target at 0 % can start;
 * - rate 0: NoTraffic (error rate and p99 are undefined without requests);
 * - rate > 0 without 5xx series: error rate 0;
 * - p99 NaN or ±Inf while requests flowed: NoSeries (the buckets did not move in the window).
 * CPU: QueryFailed, Stale (cAdvisor sample too old), NoSeries (no usage or no requests), else usage / requests.
 */
export function classifyWorkload(obs: WorkloadObservations, ctx: ClassifyContext): WorkloadSignals {
  const cpuUtilization = classifyCpu(obs.cpu, ctx);
  const istio = classifyIstio(obs, ctx);
  return obs.latency === undefined
    ? { cpuUtilization, requestRate: istio.requestRate, errorRate: istio.errorRate }
    : { cpuUtilization, ...istio };
}

function podsSeen(cpu: QueryOutcome<CpuObservation | undefined>): boolean | undefined {
  if (!cpu.ok) return undefined;
  return cpu.value?.newestSampleSeconds !== undefined || cpu.value?.usageCores !== undefined;
}

function classifyIstio(
  obs: WorkloadObservations,
  ctx: ClassifyContext,
): { requestRate: Signal; errorRate: Signal; latencyP99Ms: Signal } {
  const w = workloadKey(ctx.ref);
  const win = windowDuration(ctx.windowSeconds);
  const latencyOr = (fallback: Signal): Signal => {
    const lat = obs.latency;
    if (lat === undefined) return fallback;
    if (!lat.ok) return absent('QueryFailed', `p99 latency query: ${lat.detail}`);
    if (lat.value !== undefined && Number.isFinite(lat.value)) return value(lat.value);
    return fallback;
  };
  const all = (s: Signal) => ({ requestRate: s, errorRate: s, latencyP99Ms: latencyOr(s) });
  const m = ctx.metrics ?? ISTIO;

  if (!obs.traffic.ok) {
    const failed = absent('QueryFailed', `request rate query: ${obs.traffic.detail}`);
    return { requestRate: failed, errorRate: failed, latencyP99Ms: latencyOr(failed) };
  }
  const t = obs.traffic.value;
  if (t?.newestSampleSeconds !== undefined) {
    const stale = staleDetail(m.requests, ctx, t.newestSampleSeconds);
    // A stale p99 comes from the same scrape as the request counters, so it is stale too.
    if (stale !== undefined) {
      const s = absent('Stale', stale);
      return { requestRate: s, errorRate: s, latencyP99Ms: s };
    }
  }
  if (t?.nonErrorRate === undefined && t?.errorRate5xx === undefined) {
    if (t?.newestSampleSeconds !== undefined) {
      return all(
        absent('NoSeries', `${m.requests} for ${w} has fewer than two samples in the ${win} window`),
      );
    }
    const pods = podsSeen(obs.cpu);
    const missing = missingSeries(m, ctx.ref, obs.namespaceHasSeries);
    if (pods === true) {
      // Same reason as for a sidecar target that never got a request, so that CPU still speaks; the detail
      // says when the whole namespace is without series, which points at the mesh set-up instead.
      const s = absent(
        'NoTraffic',
        missing.namespaceWide
          ? `${missing.text}; its pods are scraped, so if it is enrolled it received no requests`
          : `${missing.text}; its pods are scraped, so it received no requests`,
      );
      return { requestRate: s, errorRate: s, latencyP99Ms: s };
    }
    const why = pods === undefined ? ' (pod presence unknown: the CPU query failed)' : '';
    return all(absent('NoSeries', `${missing.text}${why}`));
  }
  const ok = t.nonErrorRate ?? 0;
  const errors = t.errorRate5xx ?? 0;
  const total = ok + errors;
  if (!Number.isFinite(total) || total < 0) {
    return all(absent('QueryFailed', `request rate for ${w} is not a finite non-negative number`));
  }
  if (total === 0) {
    const s = absent('NoTraffic', `no requests to ${w} in the ${win} window`);
    return { requestRate: value(0), errorRate: s, latencyP99Ms: s };
  }
  // Requests flowed, so a missing or NaN p99 is a gap in the histogram, not an idle target.
  let latencyP99Ms: Signal;
  const lat = obs.latency;
  if (lat === undefined || !lat.ok || (lat.value !== undefined && Number.isFinite(lat.value))) {
    latencyP99Ms = latencyOr(absent('NoSeries', 'p99 latency was not queried'));
  } else if (lat.value === undefined) {
    latencyP99Ms = absent('NoSeries', `no ${m.buckets} series for ${w}`);
  } else {
    latencyP99Ms = absent(
      'NoSeries',
      `p99 for ${w} is NaN or ±Inf although it received ${round(total)} req/s (histogram buckets did not move in the ${win} window)`,
    );
  }
  // No 5xx series with requests flowing means no request failed, not that the error rate is unknown.
  return { requestRate: value(total), errorRate: value(errors / total), latencyP99Ms };
}

/** How the request series of a preset are selected, for messages. */
function selection(m: RequestMetrics): string {
  return m.reporter === undefined
    ? `${m.requests} series labelled ${m.labels.namespace}/${m.labels.workload}`
    : `${m.requests} series with reporter="${m.reporter}"`;
}

/**
 * What to say when a target has no request series: for istio-ambient, whether its namespace has any waypoint
 * series at all (then the waypoint or the enrolment is missing) or only other workloads have them.
 */
function missingSeries(
  m: RequestMetrics,
  ref: WorkloadRef,
  namespaceHasSeries: boolean | undefined,
): { text: string; namespaceWide: boolean } {
  const w = workloadKey(ref);
  if (m.reporter === 'waypoint' && namespaceHasSeries === false) {
    return {
      text: `no ${selection(m)} in namespace ${ref.namespace}: is a waypoint deployed and the namespace (or service) enrolled with istio.io/use-waypoint? (target ${w})`,
      namespaceWide: true,
    };
  }
  if (m.reporter === 'waypoint' && namespaceHasSeries === true) {
    return {
      text: `no ${selection(m)} for ${w}, though namespace ${ref.namespace} has some (is its service enrolled with istio.io/use-waypoint?)`,
      namespaceWide: false,
    };
  }
  return { text: `no ${selection(m)} for ${w}`, namespaceWide: false };
}

function classifyCpu(cpu: QueryOutcome<CpuObservation | undefined>, ctx: ClassifyContext): Signal {
  const w = workloadKey(ctx.ref);
  if (!cpu.ok) return absent('QueryFailed', `CPU query: ${cpu.detail}`);
  const c = cpu.value;
  if (c?.newestSampleSeconds !== undefined) {
    const stale = staleDetail('container_cpu_usage_seconds_total', ctx, c.newestSampleSeconds);
    if (stale !== undefined) return absent('Stale', stale);
  }
  if (c?.usageCores === undefined) {
    if (c?.newestSampleSeconds !== undefined) {
      return absent(
        'NoSeries',
        `container_cpu_usage_seconds_total for the pods of ${w} has fewer than two samples in the ${windowDuration(ctx.windowSeconds)} window`,
      );
    }
    return absent(
      'NoSeries',
      `no container_cpu_usage_seconds_total series for pods named ${ctx.ref.workload}-… in ${ctx.ref.namespace}`,
    );
  }
  if (c.requestCores === undefined || !(c.requestCores > 0)) {
    return absent(
      'NoSeries',
      `no CPU requests (kube_pod_container_resource_requests{resource="cpu"}) for the pods of ${w}: utilisation against requests is undefined`,
    );
  }
  const u = c.usageCores / c.requestCores;
  if (!Number.isFinite(u) || u < 0)
    return absent('QueryFailed', `CPU utilisation of ${w} is not a finite number`);
  return value(u);
}

/** A policy's override query result: the values of its series (a scalar counts as one). */
export type OverrideResult = readonly number[];

/**
 * Classifies the result of a policy's override query. One series (or a scalar) is expected; several are a
 * mistake in the query (QueryFailed). No series or NaN means NoTraffic for error rate and latency when the
 * batched request rate is 0, else NoSeries (no series) or QueryFailed (NaN, ±Inf).
 */
export function classifyOverride(
  outcome: QueryOutcome<OverrideResult>,
  signal: SignalName,
  requestRate: Signal,
  ctx: { ref: WorkloadRef; windowSeconds: number },
): Signal {
  if (!outcome.ok) return absent('QueryFailed', `${signal} override query: ${outcome.detail}`);
  const values = outcome.value;
  const idle = signal !== 'cpuUtilization' && requestRate.kind === 'value' && requestRate.value === 0;
  const idleSignal = absent(
    'NoTraffic',
    `no requests to ${workloadKey(ctx.ref)} in the ${windowDuration(ctx.windowSeconds)} window`,
  );
  if (values.length > 1) {
    return absent('QueryFailed', `${signal} override query returned ${values.length} series, expected 1`);
  }
  const v = values[0];
  if (v === undefined)
    return idle ? idleSignal : absent('NoSeries', `${signal} override query returned no series`);
  if (!Number.isFinite(v)) {
    return idle ? idleSignal : absent('QueryFailed', `${signal} override query returned NaN or ±Inf`);
  }
  return value(v);
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

/** "namespace/name" of a service, the key under which the production query's answers are collected. */
export function serviceKey(ref: ServiceRef): string {
  return `${ref.namespace}/${ref.name}`;
}

/** Groups the batched production query's samples: request rate per workload, per "namespace/service". */
export function collectProduction(
  samples: readonly VectorSample[],
  labels: RequestMetrics['service'] = ISTIO.service,
): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  for (const s of samples) {
    const namespace = s.labels[labels.namespace];
    const name = s.labels[labels.name];
    if (namespace === undefined || name === undefined || name === '') continue;
    const byWorkload = getOrCreate(out, serviceKey({ namespace, name }), () => new Map<string, number>());
    // Without a workload label (otel) the series are the primary Deployment's own, never the mirror target's.
    const workload = labels.workload === undefined ? '' : (s.labels[labels.workload] ?? '');
    // sum by (…, workload) gives one series per workload; a second one would be a merged answer: add it
    // anyway, since the query sums over workloads too and a NaN poisons the sum, which is then refused.
    byWorkload.set(workload, (byWorkload.get(workload) ?? 0) + s.value);
  }
  return out;
}

/**
 * The production rate of one primary service from the batched production answer, without the mirror
 * target's workload. No series for the service: NoSeries; a sum of 0: NoTraffic; NaN or ±Inf: QueryFailed.
 * Never Stale: a rate over a window of three scrapes needs two samples in it, so it cannot come from old data.
 */
export function classifyProduction(
  outcome: QueryOutcome<Map<string, Map<string, number>>>,
  service: ServiceRef,
  excludeWorkload: string,
  windowSeconds: number,
  metrics: RequestMetrics = ISTIO,
): Signal {
  const svc = serviceKey(service);
  if (!outcome.ok) return absent('QueryFailed', `production rate query: ${outcome.detail}`);
  const byWorkload = outcome.value.get(svc);
  let total = 0;
  let series = 0;
  for (const [workload, rate] of byWorkload ?? []) {
    if (workload === excludeWorkload) continue;
    total += rate;
    series++;
  }
  if (series === 0) {
    return absent(
      'NoSeries',
      metrics.service.workload === undefined
        ? `no ${metrics.requests} series with ${metrics.service.namespace}="${service.namespace}",${metrics.service.name}="${service.name}" for service ${svc} in the ${windowDuration(windowSeconds)} window (under otel the primary's Deployment is taken to be named like its Service)`
        : `no ${selection(metrics)} for service ${svc} (besides the mirror target ${excludeWorkload}) in the ${windowDuration(windowSeconds)} window`,
    );
  }
  if (!Number.isFinite(total) || total < 0) {
    return absent('QueryFailed', `production rate of service ${svc} is not a finite non-negative number`);
  }
  if (total === 0) {
    return absent(
      'NoTraffic',
      `no requests to service ${svc} in the ${windowDuration(windowSeconds)} window`,
    );
  }
  return value(total);
}

/** The production-rate override's result: one series (or a scalar) expected, as for the signal overrides. */
export function classifyProductionOverride(outcome: QueryOutcome<OverrideResult>): Signal {
  if (!outcome.ok) return absent('QueryFailed', `productionRate override query: ${outcome.detail}`);
  const values = outcome.value;
  if (values.length > 1) {
    return absent(
      'QueryFailed',
      `productionRate override query returned ${values.length} series, expected 1`,
    );
  }
  const v = values[0];
  if (v === undefined) return absent('NoSeries', 'productionRate override query returned no series');
  if (!Number.isFinite(v) || v < 0) {
    return absent('QueryFailed', 'productionRate override query returned NaN, ±Inf or a negative rate');
  }
  if (v === 0) return absent('NoTraffic', 'productionRate override query returned 0 requests/s');
  return value(v);
}

/** What the scrape-interval query says about one family of a workload's series. */
export interface ScrapeBound {
  /** Upper bound of the interval, seconds. */
  upper?: number;
  /** Largest sample count of a series over the learning window. */
  samples?: number;
}

/** The scrape-interval query's answer for one workload, per family of series. */
export interface ScrapeObservation {
  istio?: ScrapeBound;
  cpu?: ScrapeBound;
}

/**
 * Groups the scrape-interval query's samples by "namespace/workload". Values that are not positive finite
 * numbers (a series with duplicate timestamps, say) are dropped: they prove nothing.
 */
export function collectScrapeIntervals(
  samples: readonly VectorSample[],
  requestLabels: SeriesLabels = ISTIO.labels,
): Map<string, ScrapeObservation> {
  const parts: Record<string, { family: 'istio' | 'cpu'; field: keyof ScrapeBound }> = {
    [SCRAPE_PART.istio]: { family: 'istio', field: 'upper' },
    [SCRAPE_PART.istioSamples]: { family: 'istio', field: 'samples' },
    [SCRAPE_PART.cpu]: { family: 'cpu', field: 'upper' },
    [SCRAPE_PART.cpuSamples]: { family: 'cpu', field: 'samples' },
  };
  const out = new Map<string, ScrapeObservation>();
  for (const s of samples) {
    const part = Object.hasOwn(parts, partOf(s)) ? parts[partOf(s)] : undefined;
    if (part === undefined) continue;
    const key = keyOf(s, part.family === 'istio' ? requestLabels : CPU_LABELS);
    if (key === undefined || !Number.isFinite(s.value) || s.value <= 0) continue;
    const obs = getOrCreate<ScrapeObservation>(out, key, () => ({}));
    const bound = obs[part.family] ?? {};
    bound[part.field] = s.value;
    obs[part.family] = bound;
  }
  return out;
}
