/**
 * Reads a backtest's history from Prometheus with range queries, in chunks, using the same PromQL as the
 * live signals (src/signals/promql.ts and the policy's overrides) and the same classification of answers
 * into signals, so that a step of history reads exactly as a live cycle at that instant would have.
 */
import type { PrometheusDriver } from 'prometheus-query';
import type { Signal, SignalName } from '../core/types.js';
import { SIGNAL_NAMES } from '../core/types.js';
import { renderQuery } from '../policy/query.js';
import type { MirrorPolicy } from '../policy/types.js';
import {
  type ClassifyContext,
  classifyOverride,
  classifyWorkload,
  collectCpu,
  collectLatency,
  collectTraffic,
  type QueryOutcome,
  type VectorSample,
} from '../signals/classify.js';
import {
  createPrometheusDriver,
  credentialForms,
  describePrometheusError,
  redactSecrets,
} from '../signals/client.js';
import type { BasicAuth } from '../signals/config.js';
import { DEFAULT_STALE_AFTER_SECONDS } from '../signals/prometheus.js';
import {
  cpuQuery,
  latencyQuery,
  productionQuery,
  trafficQuery,
  type WorkloadRef,
} from '../signals/promql.js';

/** The default production query, shared with the live signals (see src/signals/promql.ts). */
export { productionQuery };

import type { History, Series } from './history.js';
import { formatTime } from './time.js';

/** A backtest that cannot run; the message says what is missing and where. */
export class BacktestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BacktestError';
  }
}

/** Prometheus refuses range queries of more than 11,000 points per series; chunks stay well below. */
export const DEFAULT_MAX_POINTS_PER_REQUEST = 1000;
/** Most steps a backtest reads: a week at 5 s, or 23 days at 10 s. */
export const MAX_STEPS = 120_000;
/** Range requests in flight at once. */
const CONCURRENCY = 3;

/** The time grid: from, from + step, …, up to `to`. */
export interface Grid {
  readonly from: number;
  readonly to: number;
  readonly stepSeconds: number;
}

/** Epoch seconds of every step of the grid. */
export function gridTimes(grid: Grid): number[] {
  const n = Math.floor((grid.to - grid.from) / grid.stepSeconds + 1e-9) + 1;
  return Array.from({ length: Math.max(0, n) }, (_, k) => grid.from + k * grid.stepSeconds);
}

/** The grid split into requests of at most `maxPoints` steps each, as [start, end] epoch seconds. */
export function chunkGrid(grid: Grid, maxPoints: number): Array<readonly [number, number]> {
  const times = gridTimes(grid);
  const size = Math.max(1, Math.floor(maxPoints));
  const out: Array<readonly [number, number]> = [];
  for (let k = 0; k < times.length; k += size) {
    const start = times[k] ?? grid.from;
    const end = times[Math.min(times.length, k + size) - 1] ?? start;
    out.push([start, end]);
  }
  return out;
}

/** One series of a range result, its values on the grid (null where Prometheus returned no sample). */
export interface GridSeries {
  readonly labels: Readonly<Record<string, string>>;
  readonly values: (number | null)[];
}

/** Options of PrometheusRangeReader. */
export interface RangeReaderOptions {
  readonly url: string;
  readonly timeoutMs: number;
  readonly bearerToken?: string;
  readonly basicAuth?: BasicAuth;
  /** PEM certificates trusted for an https Prometheus instead of Node's built-in roots. */
  readonly ca?: string;
  readonly maxPointsPerRequest?: number;
  /** Called after each range request, with the requests done and the total known so far. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Runs range queries over a grid, in chunks, against the Prometheus HTTP API. */
export class PrometheusRangeReader {
  readonly #driver: PrometheusDriver;
  readonly #timeoutMs: number;
  readonly #maxPoints: number;
  readonly #onProgress: ((done: number, total: number) => void) | undefined;
  readonly #secrets: string[];
  #done = 0;
  #total = 0;

  constructor(options: RangeReaderOptions) {
    this.#timeoutMs = options.timeoutMs;
    this.#maxPoints = options.maxPointsPerRequest ?? DEFAULT_MAX_POINTS_PER_REQUEST;
    this.#onProgress = options.onProgress;
    this.#secrets = credentialForms(options);
    this.#driver = createPrometheusDriver(options);
  }

  /** Announces `n` more requests, so the progress total is known before they run. */
  expect(n: number): void {
    this.#total += n;
    this.#onProgress?.(this.#done, this.#total);
  }

  /** Number of range requests this grid costs per query. */
  chunksPerQuery(grid: Grid): number {
    return chunkGrid(grid, this.#maxPoints).length;
  }

  /**
   * Runs one query over the grid, chunk by chunk, and stitches the chunks back per series.
   * @throws BacktestError naming the query's purpose when Prometheus fails or answers something unexpected.
   */
  async range(purpose: string, query: string, grid: Grid): Promise<GridSeries[]> {
    const times = gridTimes(grid);
    const bySeries = new Map<string, GridSeries>();
    for (const [start, end] of chunkGrid(grid, this.#maxPoints)) {
      let raw: unknown;
      try {
        raw = await this.#driver.rangeQuery(
          query,
          start * 1000,
          end * 1000,
          grid.stepSeconds,
          `${this.#timeoutMs}ms`,
        );
      } catch (err) {
        throw new BacktestError(
          `${purpose}: range query ${formatTime(start)} to ${formatTime(end)} failed: ${this.#redact(describePrometheusError(err, this.#timeoutMs))}`,
        );
      } finally {
        this.#done++;
        this.#onProgress?.(this.#done, this.#total);
      }
      for (const s of parseMatrix(purpose, raw)) {
        const key = JSON.stringify(Object.entries(s.labels).sort());
        let series = bySeries.get(key);
        if (series === undefined) {
          series = { labels: s.labels, values: times.map(() => null) };
          bySeries.set(key, series);
        }
        for (const [t, v] of s.points) {
          const k = Math.round((t - grid.from) / grid.stepSeconds);
          if (k >= 0 && k < times.length) series.values[k] = v;
        }
      }
    }
    return [...bySeries.values()];
  }

  #redact(text: string): string {
    return redactSecrets(text, this.#secrets);
  }
}

/** Narrows prometheus-query's matrix result (typed `any` inside). */
function parseMatrix(
  purpose: string,
  raw: unknown,
): Array<{ labels: Record<string, string>; points: Array<[number, number]> }> {
  const bad = (what: string) => new BacktestError(`${purpose}: malformed Prometheus answer: ${what}`);
  if (typeof raw !== 'object' || raw === null) throw bad('no result');
  const { resultType, result } = raw as { resultType?: unknown; result?: unknown };
  if (resultType !== 'matrix') throw bad(`expected a matrix, got ${String(resultType)}`);
  if (!Array.isArray(result)) throw bad('matrix result is not a list');
  return (result as unknown[]).map((item) => {
    const labels = (item as { metric?: { labels?: unknown } } | null)?.metric?.labels ?? {};
    const values = (item as { values?: unknown } | null)?.values;
    if (typeof labels !== 'object' || labels === null || !Array.isArray(values)) {
      throw bad('series without labels or values');
    }
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(labels)) if (typeof v === 'string') clean[k] = v;
    const points: Array<[number, number]> = [];
    for (const sv of values as unknown[]) {
      const time = (sv as { time?: unknown } | null)?.time;
      const value = (sv as { value?: unknown } | null)?.value;
      if (!(time instanceof Date) || typeof value !== 'number') throw bad('sample without time or value');
      points.push([time.getTime() / 1000, value]);
    }
    return { labels: clean, points };
  });
}

/** What to read besides the policy itself. */
export interface HistoryRequest {
  readonly policy: MirrorPolicy;
  readonly grid: Grid;
  /** Percentage assumed where the daemon's exported percentage has no sample. */
  readonly assumePercent?: number;
  /** PromQL of the production traffic (req/s of the mirrored route), with the policy's placeholders. */
  readonly productionQuery?: string;
  /** The primary service of the mirrored route; default the VirtualService's name and namespace. */
  readonly primaryService?: { readonly name: string; readonly namespace: string };
}

/** The daemon's exported percentage for a policy (max over replicas, which all read the same route). */
export function percentQuery(policyName: string): string {
  return `max(mirror_autoscaler_mirror_percent{policy="${policyName}"})`;
}

function samplesAt(series: readonly GridSeries[], i: number): VectorSample[] {
  const out: VectorSample[] = [];
  for (const s of series) {
    const v = s.values[i];
    if (v !== null && v !== undefined) out.push({ labels: s.labels, value: v });
  }
  return out;
}

function single(series: readonly GridSeries[], i: number): number | null {
  let sum: number | null = null;
  for (const s of series) {
    const v = s.values[i];
    if (v !== null && v !== undefined && Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

const numberOf = (s: Signal | undefined): number | null => (s?.kind === 'value' ? s.value : null);

/**
 * Reads the history of one policy: the target's signals and received rate (default queries or the
 * policy's overrides), the production traffic and the percentage in effect.
 * @throws BacktestError when the target has no request history at all, when production traffic has no data,
 *   or when no percentage is known (no exported metric and no assumed percentage).
 */
export async function readHistory(reader: PrometheusRangeReader, request: HistoryRequest): Promise<History> {
  const { policy, grid } = request;
  const times = gridTimes(grid);
  if (times.length > MAX_STEPS) {
    throw new BacktestError(
      `--step: ${grid.stepSeconds}s over ${formatTime(grid.from)} to ${formatTime(grid.to)} makes ${times.length} steps (at most ${MAX_STEPS}); use a larger step or a shorter range`,
    );
  }
  const ref: WorkloadRef = { namespace: policy.target.namespace, workload: policy.target.workload };
  const target = `${ref.namespace}/${ref.workload}`;
  const window = policy.windowSeconds;
  const guardrails = SIGNAL_NAMES.filter((s) => policy.guardrails[s] !== undefined);
  const wantsLatency = guardrails.includes('latencyP99Ms') && policy.queries.latencyP99Ms === undefined;
  const overrides = guardrails.filter((s) => policy.queries[s] !== undefined);
  // The flags win, then the policy's own spec.production and spec.queries.productionRate, as live.
  const fromPolicy = policy.production;
  const primary =
    request.primaryService ??
    (fromPolicy !== undefined
      ? { name: fromPolicy.service, namespace: fromPolicy.namespace }
      : { name: policy.route.name, namespace: policy.route.namespace });
  const productionTemplate = request.productionQuery ?? policy.queries.productionRate;
  const production =
    productionTemplate !== undefined
      ? renderQuery(productionTemplate, {
          ...ref,
          windowSeconds: window,
          service: primary.name,
          serviceNamespace: primary.namespace,
        })
      : productionQuery(primary, ref.workload, window);

  const queries = 4 + (wantsLatency ? 1 : 0) + overrides.length;
  reader.expect(queries * reader.chunksPerQuery(grid));

  const [traffic, cpu, latency, prod, percent, ...overrideSeries] = await Promise.all(
    limited(
      [
        () => reader.range(`request rate of ${target}`, trafficQuery([ref], window), grid),
        () => reader.range(`CPU of ${target}`, cpuQuery([ref], window), grid),
        () =>
          wantsLatency
            ? reader.range(`p99 latency of ${target}`, latencyQuery([ref], window), grid)
            : Promise.resolve(undefined),
        () => reader.range('production traffic', production, grid),
        () => reader.range(`mirror percentage of policy ${policy.name}`, percentQuery(policy.name), grid),
        ...overrides.map(
          (s) => () =>
            reader.range(
              `${s} override of policy ${policy.name}`,
              renderQuery(policy.queries[s] ?? '', { ...ref, windowSeconds: window }),
              grid,
            ),
        ),
      ],
      CONCURRENCY,
    ),
  );

  const mirroredRps: (number | null)[] = [];
  const signals: Partial<Record<SignalName, (number | null)[]>> = {};
  for (const s of guardrails) signals[s] = [];
  const firstAbsent = new Map<string, string>();
  const absentCount = new Map<string, number>();
  const noteAbsent = (name: string, sig: Signal | undefined) => {
    if (sig?.kind !== 'absent') return;
    absentCount.set(name, (absentCount.get(name) ?? 0) + 1);
    if (!firstAbsent.has(name)) firstAbsent.set(name, `${sig.reason}: ${sig.detail ?? 'no detail'}`);
  };

  times.forEach((t, i) => {
    const ctx: ClassifyContext = {
      ref,
      windowSeconds: window,
      atSeconds: t,
      staleAfterSeconds: DEFAULT_STALE_AFTER_SECONDS,
    };
    const ok = <T>(value: T): QueryOutcome<T> => ({ ok: true, value });
    const w = classifyWorkload(
      {
        traffic: ok(collectTraffic(samplesAt(traffic ?? [], i)).get(target)),
        cpu: ok(collectCpu(samplesAt(cpu ?? [], i)).get(target)),
        ...(latency !== undefined && { latency: ok(collectLatency(samplesAt(latency, i)).get(target)) }),
      },
      ctx,
    );
    mirroredRps.push(numberOf(w.requestRate));
    noteAbsent('request rate', w.requestRate);
    for (const s of guardrails) {
      const k = overrides.indexOf(s);
      const sig =
        k >= 0
          ? classifyOverride(
              ok(samplesAt(overrideSeries[k] ?? [], i).map((x) => x.value)),
              s,
              w.requestRate,
              ctx,
            )
          : s === 'cpuUtilization'
            ? w.cpuUtilization
            : s === 'errorRate'
              ? w.errorRate
              : w.latencyP99Ms;
      signals[s]?.push(numberOf(sig));
      // No traffic is not missing data: the fit drops those steps on purpose.
      if (sig?.kind === 'absent' && sig.reason !== 'NoTraffic') noteAbsent(s, sig);
    }
  });

  const from = formatTime(grid.from);
  const to = formatTime(grid.to);
  if (mirroredRps.every((v) => v === null)) {
    throw new BacktestError(
      `mirror target ${target}: no request history between ${from} and ${to} (${firstAbsent.get('request rate') ?? 'no data'}); nothing to fit. Check spec.target.workload and spec.target.namespace in ${policy.file}`,
    );
  }

  const productionRps: Series = times.map((_, i) => single(prod ?? [], i));
  if (productionRps.every((v) => v === null)) {
    const where =
      request.productionQuery !== undefined
        ? 'the --production-query'
        : productionTemplate !== undefined
          ? `spec.queries.productionRate of ${policy.file}`
          : `service ${primary.name} in ${primary.namespace} (istio_requests_total, reporter="destination")`;
    throw new BacktestError(
      `production traffic: no data for ${where} between ${from} and ${to}; set --primary-service NAME.NAMESPACE or --production-query`,
    );
  }

  const warnings: string[] = [];
  const metricPercent = times.map((_, i) => single(percent ?? [], i));
  const metricSteps = metricPercent.filter((v) => v !== null).length;
  let percentSource: History['percentSource'] = 'metric';
  let actualPercent: Series;
  if (metricSteps === 0) {
    if (request.assumePercent === undefined) {
      throw new BacktestError(
        `mirror percentage: no ${percentQuery(policy.name)} samples between ${from} and ${to} (the daemon did not export it for policy ${policy.name}); pass --assume-percent N with the percentage that was in effect`,
      );
    }
    percentSource = 'assumed';
    const assumed = request.assumePercent;
    actualPercent = times.map(() => assumed);
    warnings.push(
      `The percentage in effect is assumed to be ${assumed} % throughout (--assume-percent): the daemon exported none for policy ${policy.name}.`,
    );
  } else {
    const assumed = request.assumePercent ?? null;
    actualPercent = metricPercent.map((v) => v ?? assumed);
    if (metricSteps < times.length) {
      warnings.push(
        `The exported mirror percentage covers ${metricSteps} of ${times.length} steps; ${assumed === null ? 'the others have no actual percentage' : `the others assume ${assumed} % (--assume-percent)`}.`,
      );
    }
  }

  // Series missing for the same cause (a scrape gap hides every Istio signal at once) make one sentence.
  const grouped = new Map<string, string[]>();
  for (const [name, count] of absentCount) {
    const key = `${count}\u0000${firstAbsent.get(name) ?? 'unknown'}`;
    grouped.set(key, [...(grouped.get(key) ?? []), name]);
  }
  for (const [key, names] of grouped) {
    const [count, first] = key.split('\u0000');
    const verb = names.length === 1 ? 'has' : 'have';
    warnings.push(
      `${names.join(', ')} of ${target} ${verb} no value at ${count} of ${times.length} steps (first: ${first}).`,
    );
  }

  return {
    times,
    stepSeconds: grid.stepSeconds,
    productionRps,
    actualPercent,
    percentSource,
    mirroredRps,
    signals,
    warnings,
  };
}

/** Runs thunks with at most `limit` in flight; the results keep the thunks' order. */
function limited<T>(tasks: readonly (() => Promise<T>)[], limit: number): Promise<T>[] {
  let running = 0;
  const waiting: (() => void)[] = [];
  return tasks.map(async (task) => {
    if (running >= limit) await new Promise<void>((resolve) => waiting.push(resolve));
    running++;
    try {
      return await task();
    } finally {
      running--;
      waiting.shift()?.();
    }
  });
}
