/**
 * The scrape interval of each mirror target, learned from the sample timestamps Prometheus holds, and the
 * resolution of the observation timing a decision uses (policy, else learned, else default). Pure: the clock
 * comes in as arguments, the queries are sent by the adapter.
 */
import { DEFAULT_OBSERVATION_TIMING } from '../core/defaults.js';
import type { ObservationTiming, TimingSource } from '../core/types.js';
import type { ScrapeBound, ScrapeObservation } from './classify.js';
import { type WorkloadRef, workloadKey } from './promql.js';

/** How long a learned interval is trusted before it is learned again (scrape configs change rarely). */
export const DEFAULT_SCRAPE_RELEARN_SECONDS = 600;
/** How soon a failed or empty learning is tried again: soon, but not every cycle of a Prometheus outage. */
export const DEFAULT_SCRAPE_RETRY_SECONDS = 60;
/** A workload no request asked about for this long is forgotten (its policy was removed). */
const FORGET_AFTER_SECONDS = 3600;

/** A scrape interval and where it came from. */
export interface ResolvedScrapeInterval {
  readonly seconds: number;
  readonly source: TimingSource;
}

/**
 * The scrape interval a policy's decisions use: the policy's own (spec.observation.scrapeInterval), else the
 * learned one, else {@link DEFAULT_OBSERVATION_TIMING}.
 */
export function resolveScrapeInterval(
  policySeconds: number | undefined,
  learnedSeconds: number | undefined,
): ResolvedScrapeInterval {
  if (policySeconds !== undefined && Number.isFinite(policySeconds) && policySeconds > 0) {
    return { seconds: policySeconds, source: 'policy' };
  }
  if (learnedSeconds !== undefined && Number.isFinite(learnedSeconds) && learnedSeconds > 0) {
    return { seconds: learnedSeconds, source: 'learned' };
  }
  return { seconds: DEFAULT_OBSERVATION_TIMING.scrapeIntervalSeconds, source: 'default' };
}

/** The full observation timing of a decision, with the source of each figure. */
export interface ResolvedObservation {
  readonly timing: ObservationTiming;
  readonly scrapeIntervalSource: TimingSource;
  readonly propagationSource: TimingSource;
}

/**
 * Observation timing for `decide()`: the policy's scrape interval, else the one the signal source reports
 * (learned, or its default), else the default; propagation from the policy or the default.
 */
export function resolveObservation(
  policy: {
    readonly observation?: { readonly propagationSeconds?: number; readonly scrapeIntervalSeconds?: number };
  },
  scrape: ResolvedScrapeInterval | undefined,
): ResolvedObservation {
  const own = policy.observation?.scrapeIntervalSeconds;
  const s =
    own !== undefined || scrape === undefined
      ? resolveScrapeInterval(own, scrape?.source === 'learned' ? scrape.seconds : undefined)
      : scrape;
  const propagation = policy.observation?.propagationSeconds;
  const fromPolicy = propagation !== undefined && Number.isFinite(propagation) && propagation >= 0;
  return {
    timing: {
      scrapeIntervalSeconds: s.seconds,
      propagationSeconds: fromPolicy ? propagation : DEFAULT_OBSERVATION_TIMING.propagationSeconds,
    },
    scrapeIntervalSource: s.source,
    propagationSource: fromPolicy ? 'policy' : 'default',
  };
}

/**
 * The interval of one family from its bound U and sample count N: the interval lies in [U (N - 1) / N, U].
 * Scrape intervals are whole seconds in practice, so the largest whole second in that range is taken (the
 * true one for intervals up to about 30 s over the 15-minute window; a second too long at worst beyond);
 * when the range holds none (an interval such as 2.5 s), U itself to 0.1 s. Never below the range: a dead
 * time guessed short is the unsafe side.
 */
export function familyScrapeInterval(bound: ScrapeBound | undefined): number | undefined {
  const upper = bound?.upper;
  if (upper === undefined || !Number.isFinite(upper) || upper <= 0) return undefined;
  const n = bound?.samples;
  const lower = n !== undefined && Number.isFinite(n) && n >= 2 ? (upper * (n - 1)) / n : upper;
  // A hair of tolerance: timestamps carry milliseconds of scrape jitter.
  const whole = Math.floor(upper + 1e-3);
  if (whole >= 1 && whole >= lower - 1e-3) return whole;
  return Math.max(Math.round(upper * 10) / 10, Math.ceil(lower * 10 - 1e-9) / 10);
}

/**
 * The interval of one workload: the larger of its families', since the slower series sets the dead time of
 * every signal read from it.
 */
export function workloadScrapeInterval(obs: ScrapeObservation | undefined): number | undefined {
  const values = [familyScrapeInterval(obs?.istio), familyScrapeInterval(obs?.cpu)].filter(
    (v): v is number => v !== undefined,
  );
  return values.length === 0 ? undefined : Math.max(...values);
}

interface Entry {
  seconds?: number;
  /** Epoch ms of the next learning. */
  dueAt: number;
  /** Epoch ms of the last request that asked about this workload. */
  seenAt: number;
}

/**
 * Remembers the learned scrape interval per workload and says which ones are due for learning: never
 * learned, learned more than `relearnSeconds` ago, or failed more than `retrySeconds` ago. A failed
 * re-learning keeps the last learned value: a Prometheus hiccup does not send a policy back to the default.
 */
export class ScrapeIntervalMemory {
  readonly #entries = new Map<string, Entry>();
  readonly #relearnMs: number;
  readonly #retryMs: number;

  constructor(relearnSeconds = DEFAULT_SCRAPE_RELEARN_SECONDS, retrySeconds = DEFAULT_SCRAPE_RETRY_SECONDS) {
    this.#relearnMs = relearnSeconds * 1000;
    this.#retryMs = retrySeconds * 1000;
  }

  /** The workloads of `refs` to learn at `atMs` (each once). Also forgets workloads no one asked about. */
  due(refs: readonly WorkloadRef[], atMs: number): WorkloadRef[] {
    const out = new Map<string, WorkloadRef>();
    for (const ref of refs) {
      const key = workloadKey(ref);
      const e = this.#entries.get(key);
      if (e === undefined) {
        this.#entries.set(key, { dueAt: atMs, seenAt: atMs });
        out.set(key, ref);
        continue;
      }
      e.seenAt = atMs;
      // A clock that went backwards (a test, a restored VM) must not postpone learning for an hour.
      if (e.dueAt <= atMs || e.dueAt - atMs > this.#relearnMs) out.set(key, ref);
    }
    if (out.size > 0) {
      for (const [key, e] of this.#entries) {
        if (atMs - e.seenAt > FORGET_AFTER_SECONDS * 1000) this.#entries.delete(key);
      }
    }
    return [...out.values()];
  }

  /** Records what the learning at `atMs` found for `ref`: seconds, or undefined when it failed or found nothing. */
  record(ref: WorkloadRef, seconds: number | undefined, atMs: number): void {
    const key = workloadKey(ref);
    const e = this.#entries.get(key) ?? { dueAt: atMs, seenAt: atMs };
    if (seconds !== undefined) {
      e.seconds = seconds;
      e.dueAt = atMs + this.#relearnMs;
    } else {
      e.dueAt = atMs + this.#retryMs;
    }
    this.#entries.set(key, e);
  }

  /** The learned interval of a workload, if any. */
  get(ref: WorkloadRef): number | undefined {
    return this.#entries.get(workloadKey(ref))?.seconds;
  }

  /** Number of workloads remembered (for tests of the forgetting). */
  get size(): number {
    return this.#entries.size;
  }
}
