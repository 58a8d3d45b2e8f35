/**
 * The target as Prometheus sees it: counters sampled at scrape times (some scrapes missed, none while
 * Prometheus is down), and guardrail signals computed from those samples with PromQL's own rate and
 * histogram_quantile arithmetic over the policy's rate window. Signals therefore lag the plant by up to a
 * window plus a scrape, exactly the dead time a real controller has to live with.
 */
import { SIGNAL_NAMES, type Signal, type SignalName, type Signals } from '../core/types.js';
import { ISTIO_DURATION_BUCKETS_MS, type TargetCounters } from './plant.js';
import { histogramQuantile, promRate } from './promql.js';
import { createRandom, streamSeed } from './random.js';

/** A span of simulated time, seconds from the start, end exclusive. */
export interface Span {
  readonly startSeconds: number;
  readonly endSeconds: number;
}

/** How the monitoring stack behaves. */
export interface ObservationConfig {
  readonly scrapeIntervalSeconds: number;
  /** Time of the first scrape relative to the start (scrapes are not aligned with evaluations). */
  readonly scrapeOffsetSeconds: number;
  /** Probability that one scrape of the target fails (timeout, pod restarting): no sample is stored. */
  readonly missedScrapeProbability: number;
  /** Prometheus is down: every query fails and nothing is scraped. */
  readonly outages: readonly Span[];
  /** The target is not scraped (network partition, exporter hung) but Prometheus answers queries. */
  readonly scrapeGaps: readonly Span[];
  /** A signal whose newest sample is older than this is Stale (the adapter's default is 120 s). */
  readonly staleAfterSeconds: number;
}

export const DEFAULT_OBSERVATION: ObservationConfig = {
  scrapeIntervalSeconds: 15,
  scrapeOffsetSeconds: 7,
  missedScrapeProbability: 0,
  outages: [],
  scrapeGaps: [],
  staleAfterSeconds: 120,
};

/** Prometheus' lookback delta: an instant query sees no sample older than this. */
const LOOKBACK_SECONDS = 300;

/** What one evaluation's queries return. */
export interface Observation {
  readonly signals: Signals;
  /** Requests per second the target received over the window (the mirrored rate), as the adapter reports it. */
  readonly requestRate: Signal;
}

/** A Prometheus that scrapes one target and answers the guardrail queries about it. */
export interface Observer {
  /** Offers the target's counters at time `t`; stores a sample when a scrape is due and succeeds. */
  offer(t: number, counters: TargetCounters): void;
  /** Evaluates the guardrail queries at time `t` over a rate window of `windowSeconds`. */
  query(t: number, windowSeconds: number, names?: readonly SignalName[]): Observation;
  /** Number of samples stored so far (for tests and diagnostics). */
  readonly sampleCount: number;
}

const inSpan = (spans: readonly Span[], t: number): boolean =>
  spans.some((s) => t >= s.startSeconds && t < s.endSeconds);

/** Index of the first element of sorted `times` that is >= `t`. */
function lowerBound(times: readonly number[], t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((times[mid] ?? 0) < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first element of sorted `times` that is > `t`. */
function upperBound(times: readonly number[], t: number): number {
  let lo = 0;
  let hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((times[mid] ?? 0) <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Creates a Prometheus-like observer of one target. Missed scrapes draw from a stream derived from `seed`.
 * @param firstScrapeAt time of the first scrape; later ones follow every scrape interval.
 */
export function createObserver(
  config: ObservationConfig,
  seed: number,
  firstScrapeAt: number,
  cpuRequestCores = 1,
): Observer {
  const misses = createRandom(streamSeed(seed, 'missed-scrapes'));
  const bounds = ISTIO_DURATION_BUCKETS_MS;
  const times: number[] = [];
  const requests: number[] = [];
  const errors: number[] = [];
  const cpu: number[] = [];
  const buckets: number[][] = bounds.map(() => []);
  const infBucket: number[] = [];
  let nextScrape = firstScrapeAt;

  const offer = (t: number, counters: TargetCounters): void => {
    while (nextScrape <= t) {
      const at = nextScrape;
      nextScrape += config.scrapeIntervalSeconds;
      // Only a scrape due at this very instant can read these counters; older due scrapes are skipped
      // (the loop never jumps past a scrape time with a 1 s step and 15 s interval).
      if (at < t) continue;
      // Draw even when the scrape is suppressed for another reason, so an outage does not shift later misses.
      const missed = misses.next() < config.missedScrapeProbability;
      if (missed || inSpan(config.outages, t) || inSpan(config.scrapeGaps, t)) continue;
      times.push(t);
      requests.push(counters.requests);
      errors.push(counters.errors);
      cpu.push(counters.cpuSeconds);
      for (let i = 0; i < bounds.length; i++) buckets[i]?.push(counters.latencyBuckets[i] ?? 0);
      infBucket.push(counters.latencyBuckets[bounds.length] ?? 0);
    }
  };

  const query = (
    t: number,
    windowSeconds: number,
    names: readonly SignalName[] = SIGNAL_NAMES,
  ): Observation => {
    const result: Partial<Record<SignalName, Signal>> = {};
    const setAll = (signal: Signal): Observation => {
      for (const name of names) result[name] = signal;
      return { signals: result, requestRate: signal };
    };
    if (inSpan(config.outages, t)) {
      return setAll({ kind: 'absent', reason: 'QueryFailed', detail: 'Prometheus unavailable' });
    }
    // The adapter learns the newest sample's time with an instant query, which sees only the last
    // 5 minutes (Prometheus' lookback delta): anything older is as good as no series.
    const to = upperBound(times, t) - 1;
    const newest = times[to];
    if (newest === undefined || t - newest > LOOKBACK_SECONDS) {
      return setAll({ kind: 'absent', reason: 'NoSeries', detail: 'no recent samples of the target' });
    }
    const age = t - newest;
    if (age > config.staleAfterSeconds) {
      return setAll({ kind: 'absent', reason: 'Stale', detail: `newest sample is ${Math.round(age)} s old` });
    }
    // Prometheus 2.x range selectors include both ends: [t - window, t].
    const from = lowerBound(times, t - windowSeconds);
    if (to - from < 1) {
      return setAll({ kind: 'absent', reason: 'NoSeries', detail: 'fewer than two samples in the window' });
    }
    const rate = (values: readonly number[]): number =>
      promRate(times, values, from, to, t, windowSeconds) ?? 0;
    const requestRate = rate(requests);
    const noTraffic: Signal = { kind: 'absent', reason: 'NoTraffic', detail: 'no requests in the window' };
    for (const name of names) {
      switch (name) {
        case 'cpuUtilization':
          result[name] = { kind: 'value', value: rate(cpu) / cpuRequestCores };
          break;
        case 'errorRate':
          // With traffic but no 5xx the error series does not exist; the adapter reads that as 0.
          result[name] = requestRate > 0 ? { kind: 'value', value: rate(errors) / requestRate } : noTraffic;
          break;
        case 'latencyP99Ms': {
          const counts = [...buckets.map((b) => rate(b)), rate(infBucket)];
          const p99 = histogramQuantile(0.99, bounds, counts);
          // Requests flowed but the buckets did not move: a gap in the histogram, not an idle target.
          result[name] = Number.isFinite(p99)
            ? { kind: 'value', value: p99 }
            : requestRate > 0
              ? { kind: 'absent', reason: 'NoSeries', detail: 'p99 is NaN although requests flowed' }
              : noTraffic;
          break;
        }
      }
    }
    return { signals: result, requestRate: { kind: 'value', value: requestRate } };
  };

  return {
    offer,
    query,
    get sampleCount() {
      return times.length;
    },
  };
}
