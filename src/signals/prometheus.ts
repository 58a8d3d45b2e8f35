/**
 * SignalSource backed by the Prometheus HTTP API (prometheus-query).
 *
 * Cost per cycle with default queries: for every distinct rate window and every chunk of at most
 * `maxWorkloadsPerQuery` distinct workloads, one traffic query (request rate, 5xx rate, freshness), one CPU query
 * (usage, requests, freshness) and, when a policy in the chunk watches latency, one p99 query. So N workloads
 * on one window cost 3 x ceil(N / 500) queries: 3 for 1 to 500, 6 for 1,000. The production rate adds one query
 * per production window and chunk of 500 primary services, and the scrape-interval learning one query per chunk
 * of 500 workloads, only in the cycles where it is due (at start, then every 10 minutes): 1,000 policies on one
 * window cost 8 queries a cycle, 10 when learning. Override queries add one query per (policy, overridden
 * signal) because their text differs per policy.
 */
import { performance } from 'node:perf_hooks';
import type { PrometheusDriver } from 'prometheus-query';
import { productionWindowSeconds } from '../core/defaults.js';
import type { Signal, SignalName, Signals } from '../core/types.js';
import {
  type ClassifyContext,
  type CpuObservation,
  classifyOverride,
  classifyProduction,
  classifyProductionOverride,
  classifyWorkload,
  collectCpu,
  collectLatency,
  collectNamespaces,
  collectProduction,
  collectScrapeIntervals,
  collectTraffic,
  duplicateSeries,
  type OverrideResult,
  type QueryOutcome,
  type TrafficObservation,
  type VectorSample,
  type WorkloadObservations,
  type WorkloadSignals,
} from './classify.js';
import { createPrometheusDriver, credentialForms, describePrometheusError, redactSecrets } from './client.js';
import { type BasicAuth, DEFAULT_TIMEOUT_MS, PrometheusConfigError, redactUrl } from './config.js';
import {
  CPU_LABELS,
  chunkWorkloads,
  cpuQuery,
  DEFAULT_MAX_WORKLOADS_PER_QUERY,
  isSafeName,
  latencyQuery,
  presetMetrics,
  productionBatchQuery,
  type RequestMetrics,
  renderOverride,
  type ServiceRef,
  scrapeIntervalQuery,
  signalOrigin,
  trafficQuery,
  type WorkloadRef,
  workloadKey,
} from './promql.js';
import {
  DEFAULT_SCRAPE_RELEARN_SECONDS,
  DEFAULT_SCRAPE_RETRY_SECONDS,
  type ResolvedScrapeInterval,
  resolveScrapeInterval,
  ScrapeIntervalMemory,
  workloadScrapeInterval,
} from './scrape.js';
import { type PrometheusStatus, PrometheusStatusTracker, type QueryResultSummary } from './status.js';
import type { SignalReading, SignalRequest, SignalSource } from './types.js';

/** Default age after which the newest sample behind a signal makes it Stale: one missed scrape at 60 s, or more at 15-30 s. */
export const DEFAULT_STALE_AFTER_SECONDS = 120;
/** Default number of queries in flight at once; bounds the load a cycle with many overrides puts on Prometheus. */
export const DEFAULT_MAX_CONCURRENT_QUERIES = 8;

/** The subset of a pino logger this adapter uses. */
export interface SignalLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Reported once per query sent, for metrics and for tests that assert batching. */
export interface QueryEvent {
  /** batch: a default query shared by many policies; override: one policy's own query. */
  readonly kind: 'batch' | 'override';
  readonly query: string;
  readonly durationMs: number;
  readonly ok: boolean;
  readonly detail?: string;
}

/** Options of PrometheusSignalSource. */
export interface PrometheusSignalSourceOptions {
  /** Base URL of Prometheus, e.g. http://prometheus:9090 or https://host/prometheus (a path prefix is kept). */
  readonly url: string;
  /** Per-query timeout in milliseconds (client side, and passed to Prometheus). Default 10000. */
  readonly timeoutMs?: number;
  readonly bearerToken?: string;
  readonly basicAuth?: BasicAuth;
  /** PEM CA bundle that verifies an https Prometheus instead of Node's built-in roots. */
  readonly ca?: string;
  /** A signal whose newest sample is older than this is Stale. Default 120. */
  readonly staleAfterSeconds?: number;
  /** Distinct workloads per batched query. Default 500. */
  readonly maxWorkloadsPerQuery?: number;
  /** Queries in flight at once. Default 8. */
  readonly maxConcurrentQueries?: number;
  /**
   * Learn each target's scrape interval from its samples (one batched query per 500 workloads, every
   * `scrapeRelearnSeconds`, and `scrapeRetrySeconds` after a failure). Default true.
   */
  readonly learnScrapeIntervals?: boolean;
  /** Default 600. */
  readonly scrapeRelearnSeconds?: number;
  /** Default 60. */
  readonly scrapeRetrySeconds?: number;
  readonly logger?: SignalLogger;
  readonly onQuery?: (event: QueryEvent) => void;
}

type ResultShape = { kind: 'vector'; samples: VectorSample[] } | { kind: 'scalar'; value: number };

/** The default queries of one window and one chunk of workloads, and their outcomes once run. */
interface Batch {
  readonly windowSeconds: number;
  /** The request metrics of the batch's signal preset; every request of a batch shares it. */
  readonly metrics: RequestMetrics;
  readonly refs: readonly WorkloadRef[];
  /** Some policy in the chunk watches p99 with the default query. */
  readonly wantsLatency: boolean;
  traffic?: QueryOutcome<Map<string, TrafficObservation>>;
  cpu?: QueryOutcome<Map<string, CpuObservation>>;
  latency?: QueryOutcome<Map<string, number>>;
  /** istio-ambient: the namespaces with any waypoint series (from the traffic query). */
  namespaces?: Set<string>;
}

/** The default production query of one production window and one chunk of services. */
interface ProductionBatch {
  readonly windowSeconds: number;
  readonly metrics: RequestMetrics;
  readonly services: readonly ServiceRef[];
  outcome?: QueryOutcome<Map<string, Map<string, number>>>;
}

/** Reads mirror-target signals from Prometheus with batched default queries and per-policy overrides. */
export class PrometheusSignalSource implements SignalSource {
  readonly #driver: PrometheusDriver;
  readonly #timeoutMs: number;
  readonly #staleAfterSeconds: number;
  readonly #maxWorkloads: number;
  readonly #maxConcurrent: number;
  readonly #logger: SignalLogger | undefined;
  readonly #onQuery: ((event: QueryEvent) => void) | undefined;
  readonly #secrets: string[];
  readonly #tracker: PrometheusStatusTracker;
  readonly #scrape: ScrapeIntervalMemory | undefined;
  #queryCount = 0;

  /**
   * @throws PrometheusConfigError when an option is unusable (bad URL, non-positive timeout, token and basic auth together).
   */
  constructor(options: PrometheusSignalSourceOptions) {
    const { url } = options;
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
    } catch {
      throw new PrometheusConfigError('url', `must be an http(s) URL (got "${redactUrl(url)}")`);
    }
    this.#timeoutMs = positive('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    this.#staleAfterSeconds = positive(
      'staleAfterSeconds',
      options.staleAfterSeconds ?? DEFAULT_STALE_AFTER_SECONDS,
    );
    this.#maxWorkloads = positive(
      'maxWorkloadsPerQuery',
      options.maxWorkloadsPerQuery ?? DEFAULT_MAX_WORKLOADS_PER_QUERY,
    );
    this.#maxConcurrent = positive(
      'maxConcurrentQueries',
      options.maxConcurrentQueries ?? DEFAULT_MAX_CONCURRENT_QUERIES,
    );
    if (options.bearerToken !== undefined && options.basicAuth !== undefined) {
      throw new PrometheusConfigError('bearerToken', 'set either bearerToken or basicAuth, not both');
    }
    this.#logger = options.logger;
    this.#onQuery = options.onQuery;
    this.#scrape =
      options.learnScrapeIntervals === false
        ? undefined
        : new ScrapeIntervalMemory(
            positive('scrapeRelearnSeconds', options.scrapeRelearnSeconds ?? DEFAULT_SCRAPE_RELEARN_SECONDS),
            positive('scrapeRetrySeconds', options.scrapeRetrySeconds ?? DEFAULT_SCRAPE_RETRY_SECONDS),
          );

    const client = {
      url,
      timeoutMs: this.#timeoutMs,
      bearerToken: options.bearerToken,
      basicAuth: options.basicAuth,
      ca: options.ca,
    };
    // Every form a credential can take on the wire, so that none of them survives into a message.
    this.#secrets = credentialForms(client);

    this.#tracker = new PrometheusStatusTracker(this.#logger, redactUrl(url));

    this.#driver = createPrometheusDriver(client);
  }

  /**
   * Whether Prometheus answered usefully in the latest fetch that sent a query (undefined before the first).
   * Each change of its state is logged once, at warn (or info for recovery), by the adapter itself.
   */
  get status(): PrometheusStatus | undefined {
    return this.#tracker.status;
  }

  /** Forgets the Prometheus health of requests whose keys are not in `keys` (policies removed by a reload). */
  retain(keys: Iterable<string>): void {
    this.#tracker.retain(keys);
  }

  /** Number of queries sent since construction (successful or not). */
  get queryCount(): number {
    return this.#queryCount;
  }

  /**
   * Reads the signals of every request as of `at`. Never rejects: failures become QueryFailed signals.
   * @returns one reading per request key.
   */
  async fetch(requests: readonly SignalRequest[], at: Date): Promise<Map<string, SignalReading>> {
    try {
      return await this.#fetch(requests, at);
    } catch (err) {
      // A bug here must not stop the cycle; failed signals can only hold or lower the percentage.
      const detail = `internal error: ${this.#redact(err instanceof Error ? err.message : String(err))}`;
      this.#logger?.warn({ detail }, 'signal fetch failed');
      return new Map(requests.map((r) => [r.key, failedReading(r, detail)]));
    }
  }

  async #fetch(requests: readonly SignalRequest[], at: Date): Promise<Map<string, SignalReading>> {
    const queries: QueryResultSummary[] = [];
    const out = await this.#read(requests, at, queries);
    const signals = new Map(
      [...out].map(([key, r]) => [key, [r.requestRate, ...Object.values(r.signals)]] as const),
    );
    this.#tracker.observe(queries, signals, at.getTime());
    return out;
  }

  async #read(
    requests: readonly SignalRequest[],
    at: Date,
    queries: QueryResultSummary[],
  ): Promise<Map<string, SignalReading>> {
    const out = new Map<string, SignalReading>();
    const valid: SignalRequest[] = [];
    for (const r of requests) {
      const problem = requestProblem(r);
      if (problem === undefined) valid.push(r);
      else out.set(r.key, failedReading(r, problem));
    }

    // Learned first: the production window depends on the scrape interval. Due only now and then, so most
    // cycles go straight on.
    await this.#learnScrapeIntervals(valid, at, queries);
    const scrape = new Map<string, ResolvedScrapeInterval>();
    for (const r of valid) {
      const learned = this.#scrape?.get(r);
      scrape.set(r.key, resolveScrapeInterval(r.scrapeIntervalSeconds, learned));
    }
    const productionWindow = (r: SignalRequest): number =>
      productionWindowSeconds(r.windowSeconds, scrape.get(r.key)?.seconds ?? Number.NaN);

    const batches = this.#plan(valid);
    const overrides = new Map<string, QueryOutcome<OverrideResult>>();
    const tasks: (() => Promise<void>)[] = [];
    const productionBatches = this.#planProduction(valid, productionWindow);
    for (const pb of productionBatches) {
      tasks.push(async () => {
        const res = await this.#vector(
          queries,
          'batch',
          productionBatchQuery(pb.services, pb.windowSeconds, pb.metrics),
          at,
        );
        pb.outcome = res.ok ? { ok: true, value: collectProduction(res.value, pb.metrics.service) } : res;
      });
    }
    const productionOverrides = new Map<string, QueryOutcome<OverrideResult>>();
    for (const r of valid) {
      const template = r.production?.query;
      if (template === undefined) continue;
      const service = r.production?.service;
      const rendered = renderOverride(template, {
        namespace: r.namespace,
        workload: r.workload,
        windowSeconds: productionWindow(r),
        ...(service !== undefined && { service: service.name, serviceNamespace: service.namespace }),
      });
      if ('error' in rendered) {
        productionOverrides.set(r.key, { ok: false, detail: rendered.error });
        continue;
      }
      tasks.push(async () => {
        productionOverrides.set(r.key, await this.#override(queries, rendered.query, at));
      });
    }
    for (const batch of batches) {
      tasks.push(async () => {
        const { labels } = batch.metrics;
        const res = unique(
          await this.#vector(
            queries,
            'batch',
            trafficQuery(batch.refs, batch.windowSeconds, batch.metrics),
            at,
          ),
          labels,
        );
        batch.traffic = res.ok ? { ok: true, value: collectTraffic(res.value, labels) } : res;
        if (res.ok && batch.metrics.reporter === 'waypoint')
          batch.namespaces = collectNamespaces(res.value, labels);
      });
      tasks.push(async () => {
        const res = unique(
          await this.#vector(queries, 'batch', cpuQuery(batch.refs, batch.windowSeconds), at),
          CPU_LABELS,
        );
        batch.cpu = res.ok ? { ok: true, value: collectCpu(res.value) } : res;
      });
      if (batch.wantsLatency) {
        tasks.push(async () => {
          const { labels } = batch.metrics;
          const res = unique(
            await this.#vector(
              queries,
              'batch',
              latencyQuery(batch.refs, batch.windowSeconds, batch.metrics),
              at,
            ),
            labels,
          );
          batch.latency = res.ok ? { ok: true, value: collectLatency(res.value, labels) } : res;
        });
      }
    }
    for (const r of valid) {
      for (const signal of r.guardrails) {
        const template = r.queries[signal];
        if (template === undefined) continue;
        const id = overrideId(r.key, signal);
        const rendered = renderOverride(template, r);
        if ('error' in rendered) {
          overrides.set(id, { ok: false, detail: rendered.error });
          continue;
        }
        tasks.push(async () => {
          overrides.set(id, await this.#override(queries, rendered.query, at));
        });
      }
    }
    await runLimited(tasks, this.#maxConcurrent);

    const byWindowAndService = new Map<string, ProductionBatch>();
    for (const pb of productionBatches)
      for (const svc of pb.services)
        byWindowAndService.set(productionBatchId(pb.windowSeconds, pb.metrics, svc), pb);
    const atSeconds = at.getTime() / 1000;
    const byWindowAndWorkload = new Map<string, Batch>();
    for (const b of batches)
      for (const ref of b.refs) byWindowAndWorkload.set(batchId(b.windowSeconds, b.metrics, ref), b);
    for (const r of valid) {
      const metrics = presetMetrics(r.preset);
      const batch = byWindowAndWorkload.get(batchId(r.windowSeconds, metrics, r));
      if (batch === undefined) {
        out.set(r.key, failedReading(r, 'internal error: request was not batched'));
        continue;
      }
      const ctx: ClassifyContext = {
        ref: { namespace: r.namespace, workload: r.workload },
        windowSeconds: r.windowSeconds,
        atSeconds,
        staleAfterSeconds: this.#staleAfterSeconds,
        metrics,
      };
      const workload = classifyWorkload(observationsFor(batch, workloadKey(r)), ctx);
      const signals: Partial<Record<SignalName, Signal>> = {};
      for (const signal of r.guardrails) {
        const override = overrides.get(overrideId(r.key, signal));
        signals[signal] =
          r.queries[signal] !== undefined && override !== undefined
            ? classifyOverride(override, signal, workload.requestRate, ctx)
            : defaultSignal(workload, signal);
      }
      const reading: SignalReading = {
        signals: signals satisfies Signals,
        requestRate: workload.requestRate,
        origin: signalOrigin(r.preset),
        ...(r.production !== undefined && {
          productionRate: productionSignal(r, productionWindow(r), byWindowAndService, productionOverrides),
        }),
      };
      const interval = scrape.get(r.key);
      out.set(r.key, interval === undefined ? reading : { ...reading, scrapeInterval: interval });
    }
    return out;
  }

  /**
   * Learns the scrape interval of the workloads that are due (see ScrapeIntervalMemory): one query per chunk
   * of workloads, whatever their windows. Requests whose policy sets the interval need no learning.
   */
  async #learnScrapeIntervals(
    requests: readonly SignalRequest[],
    at: Date,
    queries: QueryResultSummary[],
  ): Promise<void> {
    const memory = this.#scrape;
    if (memory === undefined) return;
    const atMs = at.getTime();
    // Per preset: the request counter the interval is learned from differs.
    const byPreset = new Map<RequestMetrics, WorkloadRef[]>();
    for (const r of requests) {
      if (r.scrapeIntervalSeconds !== undefined) continue;
      const m = presetMetrics(r.preset);
      const list = byPreset.get(m) ?? [];
      list.push({ namespace: r.namespace, workload: r.workload });
      byPreset.set(m, list);
    }
    const tasks: (() => Promise<void>)[] = [];
    for (const [metrics, wanted] of byPreset) {
      const due = memory.due(wanted, atMs);
      for (const refs of chunkWorkloads(due, this.#maxWorkloads)) {
        tasks.push(async () => {
          const query = scrapeIntervalQuery(refs, undefined, metrics);
          const res = await this.#vector(queries, 'batch', query, at);
          const found = res.ok ? collectScrapeIntervals(res.value, metrics.labels) : undefined;
          for (const ref of refs) {
            memory.record(ref, workloadScrapeInterval(found?.get(workloadKey(ref))), atMs);
          }
        });
      }
    }
    if (tasks.length === 0) return;
    await runLimited(tasks, this.#maxConcurrent);
  }

  /** Groups the default production queries by production window, then chunks their distinct services. */
  #planProduction(
    requests: readonly SignalRequest[],
    windowOf: (r: SignalRequest) => number,
  ): ProductionBatch[] {
    const byWindow = new Map<
      string,
      { windowSeconds: number; metrics: RequestMetrics; services: Map<string, ServiceRef> }
    >();
    for (const r of requests) {
      const service = r.production?.service;
      if (service === undefined || r.production?.query !== undefined) continue;
      if (!isSafeName(service.namespace) || !isSafeName(service.name)) continue;
      const windowSeconds = windowOf(r);
      const metrics = presetMetrics(r.preset);
      const id = `${windowSeconds}\u0000${metrics.preset}`;
      const group = byWindow.get(id) ?? { windowSeconds, metrics, services: new Map<string, ServiceRef>() };
      group.services.set(`${service.namespace}/${service.name}`, service);
      byWindow.set(id, group);
    }
    const out: ProductionBatch[] = [];
    const groups = [...byWindow.values()].sort(
      (a, b) => a.windowSeconds - b.windowSeconds || (a.metrics.preset < b.metrics.preset ? -1 : 1),
    );
    for (const { windowSeconds, metrics, services } of groups) {
      // chunkWorkloads sorts and de-duplicates by namespace and name; services are keyed the same way.
      const refs = [...services.values()].map((s) => ({ namespace: s.namespace, workload: s.name }));
      for (const chunk of chunkWorkloads(refs, this.#maxWorkloads)) {
        out.push({
          windowSeconds,
          metrics,
          services: chunk.map((c) => ({ namespace: c.namespace, name: c.workload })),
        });
      }
    }
    return out;
  }

  /** Groups requests by window, then chunks their distinct workloads; marks batches that need the p99 query. */
  #plan(requests: readonly SignalRequest[]): Batch[] {
    const byWindow = new Map<
      string,
      { windowSeconds: number; metrics: RequestMetrics; list: SignalRequest[] }
    >();
    for (const r of requests) {
      const metrics = presetMetrics(r.preset);
      const id = `${r.windowSeconds}\u0000${metrics.preset}`;
      const group = byWindow.get(id) ?? { windowSeconds: r.windowSeconds, metrics, list: [] };
      group.list.push(r);
      byWindow.set(id, group);
    }
    const batches: Batch[] = [];
    const groups = [...byWindow.values()].sort(
      (a, b) => a.windowSeconds - b.windowSeconds || (a.metrics.preset < b.metrics.preset ? -1 : 1),
    );
    for (const { windowSeconds, metrics, list } of groups) {
      const wantsLatency = new Set(
        list
          .filter((r) => r.guardrails.includes('latencyP99Ms') && r.queries.latencyP99Ms === undefined)
          .map((r) => workloadKey(r)),
      );
      for (const refs of chunkWorkloads(list, this.#maxWorkloads)) {
        batches.push({
          windowSeconds,
          metrics,
          refs,
          wantsLatency: refs.some((ref) => wantsLatency.has(workloadKey(ref))),
        });
      }
    }
    return batches;
  }

  async #vector(
    log: QueryResultSummary[],
    kind: QueryEvent['kind'],
    query: string,
    at: Date,
  ): Promise<QueryOutcome<VectorSample[]>> {
    const res = await this.#query(log, kind, query, at, 'vector');
    if (!res.ok) return res;
    if (res.value.kind !== 'vector')
      return { ok: false, detail: `expected a vector result, got ${res.value.kind}` };
    return { ok: true, value: res.value.samples };
  }

  async #override(log: QueryResultSummary[], query: string, at: Date): Promise<QueryOutcome<OverrideResult>> {
    const res = await this.#query(log, 'override', query, at);
    if (!res.ok) return res;
    return {
      ok: true,
      value: res.value.kind === 'scalar' ? [res.value.value] : res.value.samples.map((s) => s.value),
    };
  }

  async #query(
    log: QueryResultSummary[],
    kind: QueryEvent['kind'],
    query: string,
    at: Date,
    expect?: 'vector',
  ): Promise<QueryOutcome<ResultShape>> {
    this.#queryCount++;
    const started = performance.now();
    let outcome: QueryOutcome<ResultShape>;
    try {
      const raw: unknown = await this.#driver.instantQuery(query, at, `${this.#timeoutMs}ms`);
      outcome = parseResult(raw);
      // A wrong-typed answer is a failed query (for metrics and readiness too), not only a failed signal.
      if (outcome.ok && expect !== undefined && outcome.value.kind !== expect) {
        outcome = { ok: false, detail: `expected a vector result, got ${outcome.value.kind}` };
      }
    } catch (err) {
      outcome = { ok: false, detail: this.#redact(describePrometheusError(err, this.#timeoutMs)) };
    }
    const durationMs = performance.now() - started;
    const detail = outcome.ok ? undefined : outcome.detail;
    log.push({ ok: outcome.ok, ...(detail !== undefined && { detail }) });
    // Debug only: a failure repeats every cycle while it lasts; the status tracker logs its start and end once.
    if (detail !== undefined) this.#logger?.debug({ kind, durationMs, detail }, 'Prometheus query failed');
    else this.#logger?.debug({ kind, durationMs, queryLength: query.length }, 'Prometheus query');
    this.#onQuery?.({ kind, query, durationMs, ok: outcome.ok, ...(detail !== undefined && { detail }) });
    return outcome;
  }

  #redact(text: string): string {
    return redactSecrets(text, this.#secrets);
  }
}

/** Fails a batched result that holds several series for one workload and part (see duplicateSeries). */
function unique(
  res: QueryOutcome<VectorSample[]>,
  labels: { readonly namespace: string; readonly workload: string },
): QueryOutcome<VectorSample[]> {
  if (!res.ok) return res;
  const dup = duplicateSeries(res.value, labels);
  return dup === undefined
    ? res
    : { ok: false, detail: `several series for ${dup} where the query sums to one: ambiguous answer` };
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0)
    throw new PrometheusConfigError(name, `must be a positive number (got ${v})`);
  return v;
}

function overrideId(key: string, signal: SignalName): string {
  return `${key}\u0000${signal}`;
}

function productionBatchId(windowSeconds: number, metrics: RequestMetrics, service: ServiceRef): string {
  return `${windowSeconds}\u0000${metrics.preset}\u0000${service.namespace}/${service.name}`;
}

function batchId(windowSeconds: number, metrics: RequestMetrics, ref: WorkloadRef): string {
  return `${windowSeconds}\u0000${metrics.preset}\u0000${workloadKey(ref)}`;
}

function requestProblem(r: SignalRequest): string | undefined {
  // Names end up inside PromQL strings; anything outside DNS-1123 is refused rather than escaped.
  if (!isSafeName(r.namespace)) return `namespace "${r.namespace}" is not a DNS-1123 name`;
  if (!isSafeName(r.workload)) return `workload "${r.workload}" is not a DNS-1123 name`;
  if (!Number.isFinite(r.windowSeconds) || r.windowSeconds <= 0) {
    return `windowSeconds must be a positive number (got ${r.windowSeconds})`;
  }
  return undefined;
}

function failedReading(r: SignalRequest, detail: string): SignalReading {
  const failed: Signal = { kind: 'absent', reason: 'QueryFailed', detail };
  const signals: Partial<Record<SignalName, Signal>> = {};
  for (const s of r.guardrails) signals[s] = failed;
  return { signals, requestRate: failed, origin: signalOrigin(r.preset) };
}

/** The production rate of one request, from its override or from the batch that holds its service. */
function productionSignal(
  r: SignalRequest,
  windowSeconds: number,
  batches: ReadonlyMap<string, ProductionBatch>,
  overrides: ReadonlyMap<string, QueryOutcome<OverrideResult>>,
): Signal {
  if (r.production?.query !== undefined) {
    const outcome = overrides.get(r.key) ?? { ok: false, detail: 'query did not run' };
    return classifyProductionOverride(outcome);
  }
  const service = r.production?.service;
  if (service === undefined) {
    return {
      kind: 'absent',
      reason: 'NoSeries',
      detail: 'the primary service of the mirrored route is unknown',
    };
  }
  if (!isSafeName(service.namespace) || !isSafeName(service.name)) {
    return {
      kind: 'absent',
      reason: 'QueryFailed',
      detail: `primary service "${service.namespace}/${service.name}" is not a DNS-1123 name`,
    };
  }
  const metrics = presetMetrics(r.preset);
  const batch = batches.get(productionBatchId(windowSeconds, metrics, service));
  const outcome = batch?.outcome ?? { ok: false, detail: 'query did not run' };
  return classifyProduction(outcome, service, r.workload, windowSeconds, metrics);
}

function observationsFor(batch: Batch, key: string): WorkloadObservations {
  const missing = { ok: false, detail: 'query did not run' } as const;
  const pick = <T>(o: QueryOutcome<Map<string, T>> | undefined): QueryOutcome<T | undefined> =>
    o === undefined ? missing : o.ok ? { ok: true, value: o.value.get(key) } : o;
  const namespace = key.slice(0, key.indexOf('/'));
  return {
    traffic: pick(batch.traffic),
    cpu: pick(batch.cpu),
    ...(batch.wantsLatency && { latency: pick(batch.latency) }),
    ...(batch.namespaces !== undefined && { namespaceHasSeries: batch.namespaces.has(namespace) }),
  };
}

function defaultSignal(w: WorkloadSignals, signal: SignalName): Signal {
  switch (signal) {
    case 'cpuUtilization':
      return w.cpuUtilization;
    case 'errorRate':
      return w.errorRate;
    case 'latencyP99Ms':
      return (
        w.latencyP99Ms ?? {
          kind: 'absent',
          reason: 'QueryFailed',
          detail: 'internal error: p99 was not queried',
        }
      );
  }
}

/** Narrows prometheus-query's QueryResult (typed `any` inside) to the shapes used here. */
function parseResult(raw: unknown): QueryOutcome<ResultShape> {
  if (typeof raw !== 'object' || raw === null) return { ok: false, detail: 'malformed response: no result' };
  const { resultType, result } = raw as { resultType?: unknown; result?: unknown };
  if (resultType === 'scalar') {
    if (!Array.isArray(result) || result.length !== 2)
      return { ok: false, detail: 'malformed response: bad scalar' };
    return { ok: true, value: { kind: 'scalar', value: Number.parseFloat(String(result[1])) } };
  }
  if (resultType !== 'vector')
    return { ok: false, detail: `expected a vector or scalar result, got ${String(resultType)}` };
  if (!Array.isArray(result)) return { ok: false, detail: 'malformed response: vector result is not a list' };
  const samples: VectorSample[] = [];
  for (const item of result as unknown[]) {
    const labels = (item as { metric?: { labels?: unknown } } | null)?.metric?.labels ?? {};
    const v = (item as { value?: { value?: unknown } } | null)?.value?.value;
    if (typeof labels !== 'object' || labels === null || typeof v !== 'number') {
      return { ok: false, detail: 'malformed response: vector element without labels or value' };
    }
    const clean: Record<string, string> = {};
    for (const [k, lv] of Object.entries(labels)) if (typeof lv === 'string') clean[k] = lv;
    samples.push({ labels: clean, value: v });
  }
  return { ok: true, value: { kind: 'vector', samples } };
}

/** Runs tasks with at most `limit` in flight. Tasks handle their own errors. */
async function runLimited(tasks: readonly (() => Promise<void>)[], limit: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const task = tasks[next++];
      if (task !== undefined) await task();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
}
