/**
 * Is Prometheus usable? One verdict per fetch, from the queries it sent and the signals it produced, and one log
 * line each time the verdict changes: an outage that lasts an hour is two lines (down, back), not one per cycle.
 * Pure assessment plus a small stateful tracker; time comes in as an argument.
 */
import type { Signal } from '../core/types.js';

/**
 * - reachable: every query answered and at least one signal has a usable value (or none is blind for a
 *   Prometheus reason);
 * - degraded: Prometheus answers, but some queries failed or some signals are QueryFailed/Stale;
 * - unusable: Prometheus answers, but no query succeeded, or every signal is QueryFailed/Stale (HTTP 500,
 *   malformed or wrong-typed answers, NaN, duplicated series, samples too old);
 * - unreachable: network error, timeout, TLS failure or a gateway's 502/503/504 with no query succeeding.
 */
export const PROMETHEUS_STATES = ['reachable', 'degraded', 'unusable', 'unreachable'] as const;
export type PrometheusState = (typeof PROMETHEUS_STATES)[number];

/** The verdict of one fetch. */
export interface PrometheusStatus {
  readonly state: PrometheusState;
  /** The first problem seen; absent when reachable. */
  readonly detail?: string;
  /** Epoch milliseconds since which this state holds (the evaluation time of the fetch that entered it). */
  readonly since: number;
}

/** The outcome of one query, as far as the verdict is concerned. */
export interface QueryResultSummary {
  readonly ok: boolean;
  readonly detail?: string;
}

/**
 * What Prometheus' answers left of one request's signals: undefined when none is blind for a Prometheus
 * reason; else whether all of them are (`blind`) and the first problem.
 */
export type RequestHealth = { readonly blind: boolean; readonly detail: string } | undefined;

/** Failures that mean Prometheus was not reached (the prefixes describeError in prometheus.ts writes). */
const UNREACHABLE = /^(network error|timed out|TLS error)|^HTTP 50[234]\b/;
/** Absent reasons that blame Prometheus or its data, as opposed to the target (NoTraffic) or its metrics (NoSeries). */
const PROMETHEUS_FAULTS = new Set(['QueryFailed', 'Stale']);

/** The health of one request from its signals (request rate included). */
export function requestHealth(signals: readonly Signal[]): RequestHealth {
  const faulty = signals.filter(
    (s): s is Extract<Signal, { kind: 'absent' }> => s.kind === 'absent' && PROMETHEUS_FAULTS.has(s.reason),
  );
  const first = faulty[0];
  if (first === undefined) return undefined;
  return {
    blind: faulty.length === signals.length,
    detail: `${first.reason}: ${first.detail ?? 'no detail'}`,
  };
}

/**
 * The verdict from one fetch's queries and the latest health of every request (of this fetch and earlier
 * ones: policies due at different times are fetched separately, and the verdict must not flap between them).
 * Returns undefined when no query was sent: nothing was learnt about Prometheus.
 */
export function assessPrometheus(
  queries: readonly QueryResultSummary[],
  requests: ReadonlyMap<string, RequestHealth>,
): Omit<PrometheusStatus, 'since'> | undefined {
  if (queries.length === 0) return undefined;
  const failed = queries.filter((q) => !q.ok);
  if (failed.length === queries.length) {
    const unreachable = failed.find((q) => UNREACHABLE.test(q.detail ?? ''));
    return unreachable !== undefined
      ? { state: 'unreachable', detail: unreachable.detail ?? 'query failed' }
      : { state: 'unusable', detail: `every query failed: ${failed[0]?.detail ?? 'query failed'}` };
  }
  const bad = [...requests].filter((e): e is [string, NonNullable<RequestHealth>] => e[1] !== undefined);
  const first = bad[0];
  if (first === undefined) return { state: 'reachable' };
  if (bad.length === requests.size && bad.every(([, h]) => h.blind)) {
    return { state: 'unusable', detail: `no usable signal: ${first[1].detail}` };
  }
  return {
    state: 'degraded',
    detail: `${bad.length} of ${requests.size} policies miss signals: ${first[0]}: ${first[1].detail}`,
  };
}

/** The subset of a pino logger the tracker uses. */
export interface StatusLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

const CONSEQUENCE: Record<Exclude<PrometheusState, 'reachable'>, string> = {
  degraded: 'the affected signals count as missing: their policies never raise',
  unusable: 'every signal counts as missing: no mirror percentage is raised, and after blindHold they decay',
  unreachable:
    'every signal counts as missing: no mirror percentage is raised, and after blindHold they decay',
};

const HEADLINE: Record<PrometheusState, string> = {
  reachable: 'Prometheus reachable',
  degraded: 'Prometheus partly failing',
  unusable: 'Prometheus answers, but its answers are unusable',
  unreachable: 'Prometheus unreachable',
};

/**
 * Keeps the current verdict and logs each change once: the first verdict, then every change of state
 * (a new detail within the same state is not a change). Recovery is logged at info with the length of the
 * outage, every other state at warn with the consequence for the mirror percentages.
 */
export class PrometheusStatusTracker {
  #status: PrometheusStatus | undefined;
  readonly #requests = new Map<string, RequestHealth>();

  constructor(
    private readonly logger: StatusLogger | undefined,
    /** For the log lines: the Prometheus URL without credentials. */
    private readonly url: string,
  ) {}

  /** The latest verdict; undefined before the first fetch that sent a query. */
  get status(): PrometheusStatus | undefined {
    return this.#status;
  }

  /** Forgets the requests whose keys are not in `keys` (policies removed by a reload). */
  retain(keys: Iterable<string>): void {
    const keep = new Set(keys);
    for (const k of this.#requests.keys()) if (!keep.has(k)) this.#requests.delete(k);
  }

  /**
   * Records a fetch evaluated at `atMs` (epoch ms): its queries and the signals it produced per request key.
   * @returns true when the state changed (and a line was logged).
   */
  observe(
    queries: readonly QueryResultSummary[],
    signals: ReadonlyMap<string, readonly Signal[]>,
    atMs: number,
  ): boolean {
    // No query sent (every request refused before querying): nothing was learnt about Prometheus.
    if (queries.length === 0) return false;
    for (const [key, list] of signals) this.#requests.set(key, requestHealth(list));
    return this.#record(assessPrometheus(queries, this.#requests), atMs);
  }

  #record(verdict: Omit<PrometheusStatus, 'since'> | undefined, atMs: number): boolean {
    if (verdict === undefined) return false;
    const previous = this.#status;
    if (previous !== undefined && previous.state === verdict.state) {
      // Same state: keep `since`, refresh the detail so /readyz shows the latest cause.
      this.#status = { ...verdict, since: previous.since };
      return false;
    }
    this.#status = { ...verdict, since: atMs };
    const fields = {
      prometheus: verdict.state,
      url: this.url,
      ...(previous !== undefined && {
        previous: previous.state,
        previousForSeconds: Math.max(0, Math.round((atMs - previous.since) / 1000)),
      }),
      ...(verdict.detail !== undefined && { detail: verdict.detail }),
    };
    if (verdict.state === 'reachable') {
      const msg =
        previous === undefined
          ? HEADLINE.reachable
          : `${HEADLINE.reachable} again after ${fields.previousForSeconds ?? 0} s ${previous.state}`;
      this.logger?.info(fields, msg);
    } else {
      this.logger?.warn(
        fields,
        `${HEADLINE[verdict.state]}: ${verdict.detail ?? ''}; ${CONSEQUENCE[verdict.state]}`,
      );
    }
    return true;
  }
}
