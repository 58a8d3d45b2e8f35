import type { Signal, SignalName, Signals } from '../core/types.js';
import type { SignalPreset } from '../policy/types.js';
import type { ServiceRef, SignalOrigin } from './promql.js';
import type { ResolvedScrapeInterval } from './scrape.js';

/** Which production rate a request reads: the primary service's (default query) and/or an override. */
export interface ProductionRequest {
  /** The primary service of the mirrored route; fills {{service}} and {{serviceNamespace}} in an override. */
  readonly service?: ServiceRef;
  /** PromQL override (spec.queries.productionRate); replaces the default query when set. */
  readonly query?: string;
}

/**
 * What one policy needs from the signal source in one cycle.
 * Requests that share a window and use the default queries are answered by the same batched queries.
 */
export interface SignalRequest {
  /** Identifies the request in the answer; the policy name. */
  readonly key: string;
  /** Namespace of the mirror target (a DNS-1123 label). */
  readonly namespace: string;
  /** Workload (Deployment) name of the mirror target (a DNS-1123 subdomain); its pods are named `<workload>-…`. */
  readonly workload: string;
  /** Rate window in seconds. */
  readonly windowSeconds: number;
  /** The signals the policy watches; only these appear in the reading's `signals`. */
  readonly guardrails: readonly SignalName[];
  /** PromQL overrides with {{namespace}}, {{workload}} and {{window}} placeholders, run once per policy. */
  readonly queries: Partial<Record<SignalName, string>>;
  /** The policy's scrape interval (spec.observation.scrapeInterval); when absent it is learned. */
  readonly scrapeIntervalSeconds?: number;
  /** The production rate to read; absent: none is read (the reading has no productionRate). */
  readonly production?: ProductionRequest;
  /** The metrics the built-in queries read (spec.signals.preset); absent: istio. */
  readonly preset?: SignalPreset;
}

/** The answer for one request. */
export interface SignalReading {
  /**
   * One entry per guardrail of the request. Units: cpuUtilization and errorRate are fractions
   * (0.75 = 75 % of the CPU requests; 0.02 = 2 % of requests answered 5xx), latencyP99Ms in milliseconds.
   */
  readonly signals: Signals;
  /** Requests per second the mirror target received over the window (mirrored and any other). */
  readonly requestRate: Signal;
  /**
   * Production requests/s of the mirrored route over productionWindowSeconds(window, scrape interval);
   * present when the request asked for it.
   */
  readonly productionRate?: Signal;
  /** The scrape interval in use for this request (policy, learned or default), when the source resolves it. */
  readonly scrapeInterval?: ResolvedScrapeInterval;
  /**
   * Which preset (and Istio reporter) the built-in queries read for this request; set by the Prometheus source.
   * Overridden signals read whatever their query names.
   */
  readonly origin?: SignalOrigin;
}

/** Port: reads the signals of many policies at one instant. Implementations never throw from `fetch`. */
export interface SignalSource {
  /**
   * Reads every request's signals as of `at`. The map holds one reading per request key; a failed query
   * marks the affected signals `QueryFailed` instead of rejecting.
   */
  fetch(requests: readonly SignalRequest[], at: Date): Promise<Map<string, SignalReading>>;
}
