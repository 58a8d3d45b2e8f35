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
  /**
   * Time of the first scrape relative to the start, any real number in [0, scrape interval): scrapes are not
   * aligned with evaluations, nor with whole seconds.
   */
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

/** The adapter's default Stale limit (src/signals/prometheus.ts). */
export const DEFAULT_STALE_AFTER_SECONDS = 120;

/**
 * The Stale limit for a scrape interval: the adapter's 120 s, but never under four scrape intervals, so that
 * one or two missed scrapes never read as stale data at any scrape interval.
 */
export const staleAfterFor = (scrapeIntervalSeconds: number): number =>
  Math.max(DEFAULT_STALE_AFTER_SECONDS, 4 * scrapeIntervalSeconds);

/** Prometheus' lookback delta: an instant query sees no sample older than this. */
export const LOOKBACK_SECONDS = 300;

/** What one evaluation's queries return. */
export interface Observation {
  readonly signals: Signals;
  /** Requests per second the target received over the window (the mirrored rate), as the adapter reports it. */
  readonly requestRate: Signal;
  /**
   * Production requests per second of the mirrored route over the production window; NoSeries when the
   * query was not asked (no production window given).
   */
  readonly productionRate: Signal;
}

/** A Prometheus that scrapes one target and answers the guardrail queries about it. */
export interface Observer {
  /**
   * Offers the counters as they stand at time `t`. Every scrape due since the previous offer is taken
   * (when it succeeds) at its own time, with the counters interpolated linearly between the two offers:
   * the plant moves in whole steps, scrapes happen at any phase. Scrapes due before the first offer are
   * skipped. Offers must come in increasing time.
   */
  offer(t: number, counters: TargetCounters): void;
  /**
   * Evaluates the guardrail queries at time `t` over a rate window of `windowSeconds`, and the production
   * rate over `productionWindowSeconds` when given.
   */
  query(
    t: number,
    windowSeconds: number,
    names?: readonly SignalName[],
    productionWindowSeconds?: number,
  ): Observation;
  /** Number of samples of the target stored so far (for tests and diagnostics). */
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

/** One stored series family: sample times, and the times of the stale markers failed scrapes wrote. */
interface Store {
  readonly times: number[];
  readonly markers: number[];
}

/**
 * What an instant `timestamp()` query sees of a store at `t`: the newest sample's time, or undefined when
 * the series is not returned (no sample within the lookback, or a stale marker written after the newest
 * sample: a failed scrape marks every series of the target stale, and an instant query skips a stale series).
 */
function newestVisible(store: Store, t: number): number | undefined {
  const newest = store.times[upperBound(store.times, t) - 1];
  if (newest === undefined || t - newest > LOOKBACK_SECONDS) return undefined;
  const marker = store.markers[upperBound(store.markers, t) - 1];
  if (marker !== undefined && marker > newest) return undefined;
  return newest;
}

/** Slots of the counters in a scraped row. */
const REQUESTS = 0;
const ERRORS = 1;
const CPU = 2;
const PRODUCTION = 3;
const BUCKET0 = 4;

/**
 * Creates a Prometheus-like observer of one target. Missed scrapes draw from a stream derived from `seed`.
 * What it reproduces of Prometheus 2.x (the Debian package is 2.42):
 * - samples at the scrape times, which follow `firstScrapeAt` every scrape interval, at any phase;
 * - a failed scrape (missed, or the target unreachable) stores no sample and writes a stale marker: range
 *   selectors skip it, an instant query stops returning the series until the next sample;
 * - while Prometheus is down nothing is scraped and no marker is written, so the newest sample ages
 *   (the adapter's Stale rule), and an instant query sees nothing older than the 5-minute lookback;
 * - range selectors include both ends, [t - window, t]; rate() as in promql/functions.go
 *   (extrapolatedRate) and histogram_quantile as in promql/quantile.go (bucketQuantile): see promql.ts.
 * The production counter is scraped with the target (same phase, misses and outages); a gap in the
 * target's scrapes does not touch it.
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
  const width = BUCKET0 + bounds.length + 1;
  const target: Store = { times: [], markers: [] };
  const production: Store = { times: [], markers: [] };
  const requests: number[] = [];
  const errors: number[] = [];
  const cpu: number[] = [];
  const productionValues: number[] = [];
  const buckets: number[][] = Array.from({ length: bounds.length + 1 }, () => []);
  let nextScrape = firstScrapeAt;
  let previousAt: number | undefined;
  const previous = new Float64Array(width);
  const current = new Float64Array(width);

  const offer = (t: number, counters: TargetCounters): void => {
    current[REQUESTS] = counters.requests;
    current[ERRORS] = counters.errors;
    current[CPU] = counters.cpuSeconds;
    current[PRODUCTION] = counters.production;
    for (let i = 0; i <= bounds.length; i++) current[BUCKET0 + i] = counters.latencyBuckets[i] ?? 0;
    while (nextScrape <= t) {
      const at = nextScrape;
      nextScrape += config.scrapeIntervalSeconds;
      // Before the first offer there are no counters to read.
      if (previousAt === undefined ? at < t : at <= previousAt) continue;
      const down = inSpan(config.outages, at);
      // Draw even when the scrape is suppressed for another reason, so an outage does not shift later misses.
      const missed = misses.next() < config.missedScrapeProbability;
      if (down) continue;
      const f = previousAt === undefined || t === previousAt ? 1 : (at - previousAt) / (t - previousAt);
      const read = (slot: number): number => {
        const c = current[slot] ?? 0;
        return f === 1 ? c : (previous[slot] ?? 0) + (c - (previous[slot] ?? 0)) * f;
      };
      if (missed) {
        target.markers.push(at);
        production.markers.push(at);
        continue;
      }
      production.times.push(at);
      productionValues.push(read(PRODUCTION));
      if (inSpan(config.scrapeGaps, at)) {
        target.markers.push(at);
        continue;
      }
      target.times.push(at);
      requests.push(read(REQUESTS));
      errors.push(read(ERRORS));
      cpu.push(read(CPU));
      for (let i = 0; i <= bounds.length; i++) buckets[i]?.push(read(BUCKET0 + i));
    }
    previous.set(current);
    previousAt = t;
  };

  const queryProduction = (t: number, windowSeconds: number | undefined): Signal => {
    if (windowSeconds === undefined) {
      return { kind: 'absent', reason: 'NoSeries', detail: 'production rate not queried' };
    }
    const newest = newestVisible(production, t);
    if (newest !== undefined && t - newest > config.staleAfterSeconds) {
      return {
        kind: 'absent',
        reason: 'Stale',
        detail: `newest production sample is ${Math.round(t - newest)} s old`,
      };
    }
    const { times } = production;
    const to = upperBound(times, t) - 1;
    const from = lowerBound(times, t - windowSeconds);
    const rate = promRate(times, productionValues, from, to, t, windowSeconds);
    if (rate === undefined) {
      return {
        kind: 'absent',
        reason: 'NoSeries',
        detail: 'fewer than two production samples in the window',
      };
    }
    return { kind: 'value', value: rate };
  };

  const query = (
    t: number,
    windowSeconds: number,
    names: readonly SignalName[] = SIGNAL_NAMES,
    productionWindowSeconds?: number,
  ): Observation => {
    const result: Partial<Record<SignalName, Signal>> = {};
    if (inSpan(config.outages, t)) {
      const failed: Signal = { kind: 'absent', reason: 'QueryFailed', detail: 'Prometheus unavailable' };
      for (const name of names) result[name] = failed;
      return { signals: result, requestRate: failed, productionRate: failed };
    }
    const productionRate = queryProduction(t, productionWindowSeconds);
    const setAll = (signal: Signal): Observation => {
      for (const name of names) result[name] = signal;
      return { signals: result, requestRate: signal, productionRate };
    };
    // The adapter learns the newest sample's time with an instant query (timestamp()): it sees only the
    // last 5 minutes and nothing after a stale marker; when it sees nothing, the rates decide alone.
    const newest = newestVisible(target, t);
    if (newest !== undefined && t - newest > config.staleAfterSeconds) {
      const age = Math.round(t - newest);
      return setAll({ kind: 'absent', reason: 'Stale', detail: `newest sample is ${age} s old` });
    }
    // Prometheus 2.x range selectors include both ends: [t - window, t].
    const { times } = target;
    const to = upperBound(times, t) - 1;
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
          const counts = buckets.map((b) => rate(b));
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
    return { signals: result, requestRate: { kind: 'value', value: requestRate }, productionRate };
  };

  return {
    offer,
    query,
    get sampleCount() {
      return target.times.length;
    },
  };
}
