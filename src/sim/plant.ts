/**
 * The plant: a mirror target (the shadow service) fed a share of production traffic. Everything here is a
 * pure function of time, configuration and a seeded random stream; the closed loop in simulate.ts drives it.
 */
import { type ControlPolicy, type Guardrails, SIGNAL_NAMES, type SignalName } from '../core/types.js';
import { createRandom, type Random, streamSeed } from './random.js';

/**
 * A value over time as points `[seconds, value]`, linearly interpolated between points and constant outside
 * them. Two points at the same time make a step.
 */
export type Schedule = ReadonlyArray<readonly [seconds: number, value: number]>;

/**
 * The value of a schedule at time `t` (seconds). At a step (two points at the same time) the later point wins.
 * @throws RangeError when the schedule is empty.
 */
export function scheduleAt(schedule: Schedule, t: number): number {
  const first = schedule[0];
  if (first === undefined) throw new RangeError('schedule: must have at least one point (got none)');
  if (t < first[0]) return first[1];
  // Largest index whose time is <= t, by bisection: a noisy traffic schedule has a point every second.
  let i = 0;
  let hi = schedule.length - 1;
  while (i < hi) {
    const mid = (i + hi + 1) >> 1;
    if ((schedule[mid]?.[0] ?? Number.POSITIVE_INFINITY) <= t) i = mid;
    else hi = mid - 1;
  }
  const a = schedule[i];
  const b = schedule[i + 1];
  if (a === undefined) return first[1];
  if (b === undefined || b[0] === a[0]) return a[1];
  return a[1] + ((b[1] - a[1]) * (t - a[0])) / (b[0] - a[0]);
}

/** How the target's CPU, latency and errors respond to utilisation (load / capacity). */
export interface PlantProfile {
  /** CPU utilisation (usage / requested cores) of an idle target: sidecar, GC, probes. */
  readonly cpuBase: number;
  /** CPU utilisation added per unit of utilisation; usage stops growing at utilisation 1 (the CPU limit). */
  readonly cpuPerUtilisation: number;
  /** Requested CPU cores (the denominator of CPU utilisation). */
  readonly cpuRequestCores: number;
  /** p99 latency of an idle target, ms. */
  readonly latencyBaseMs: number;
  /** Queueing term: p99 = base + queue * u / (1 - u), ms. */
  readonly latencyQueueMs: number;
  /** Requests time out here, so p99 never exceeds it. */
  readonly latencyTimeoutMs: number;
  /** Spread (log-normal sigma) of one second's latency distribution, used to fill histogram buckets. */
  readonly latencySpread: number;
  /** Error rate of a healthy target (bugs, bad mirrored requests). */
  readonly errorBase: number;
  /** Utilisation above which errors start to rise (thread pools, queues filling). */
  readonly errorKnee: number;
  /** Extra error rate at utilisation 1; above 1 the excess load is shed as errors too. */
  readonly errorAtCapacity: number;
}

/** A CPU-bound service: CPU reaches 0.8 of its request at 80 % of capacity, before latency or errors suffer. */
export const CPU_BOUND_PROFILE: PlantProfile = {
  cpuBase: 0.08,
  cpuPerUtilisation: 0.9,
  cpuRequestCores: 1,
  latencyBaseMs: 50,
  latencyQueueMs: 25,
  latencyTimeoutMs: 15_000,
  latencySpread: 0.5,
  errorBase: 0.0005,
  errorKnee: 0.9,
  errorAtCapacity: 0.02,
};

/** An I/O-bound service: CPU stays low, so p99 latency is the guardrail that binds first. */
export const IO_BOUND_PROFILE: PlantProfile = {
  ...CPU_BOUND_PROFILE,
  cpuBase: 0.1,
  cpuPerUtilisation: 0.5,
  latencyBaseMs: 80,
  latencyQueueMs: 40,
};

/** The target's true (noiseless) guardrail signals at one instant. */
export type TrueSignals = Record<SignalName, number>;

/**
 * The p99 latency (ms) of the service itself at utilisation `u`: flat, then rising steeply as `u` nears 1.
 */
export function modelP99Ms(profile: PlantProfile, u: number): number {
  const load = Math.max(0, u);
  // Queueing delay grows like u / (1 - u) (M/M/1); it is capped by the timeout because a saturated queue
  // does not grow without bound in practice: callers give up.
  const headroom = Math.max(1 - load, 1e-3);
  return Math.min(
    profile.latencyTimeoutMs,
    profile.latencyBaseMs + (profile.latencyQueueMs * Math.min(load, 1)) / headroom,
  );
}

/**
 * The true signals of a target at utilisation `u` (load / capacity, >= 0). Each is non-decreasing in `u`.
 * The latency is the p99 that histogram_quantile reports from Istio's buckets for a steady, noiseless
 * target, not the service's exact p99: a guardrail is written against the query result, and the bucket
 * interpolation (which overstates a p99 inside a wide bucket) is part of what the limit means.
 */
export function trueSignals(profile: PlantProfile, u: number): TrueSignals {
  const load = Math.max(0, u);
  const cpu = profile.cpuBase + profile.cpuPerUtilisation * Math.min(load, 1);
  const latency = histogramP99(modelP99Ms(profile, load), profile.latencySpread);
  let errors = profile.errorBase;
  if (load > profile.errorKnee) {
    const x = Math.min(load, 1) - profile.errorKnee;
    errors += profile.errorAtCapacity * (x / (1 - profile.errorKnee)) ** 2;
  }
  // Above capacity the excess cannot be served: that share of requests fails (shed, timed out).
  if (load > 1) errors += 1 - 1 / load;
  return { cpuUtilization: cpu, errorRate: Math.min(1, errors), latencyP99Ms: latency };
}

/**
 * What histogram_quantile(0.99) reports from Istio's buckets for a steady target whose latencies have p99
 * `p99Ms`: linear interpolation inside the first bucket holding 99 % of requests (the same arithmetic as
 * histogramQuantile, computed lazily because it runs every simulated second).
 */
export function histogramP99(p99Ms: number, spread: number): number {
  const bounds = ISTIO_DURATION_BUCKETS_MS;
  const logMedian = Math.log(p99Ms) - Z99 * spread;
  let below = 0;
  let lower = 0;
  for (let i = 0; i < bounds.length; i++) {
    const le = bounds[i] ?? 0;
    const f = normalCdf(((LOG_BOUNDS[i] ?? 0) - logMedian) / spread);
    if (f >= 0.99) return f > below ? lower + ((le - lower) * (0.99 - below)) / (f - below) : le;
    below = f;
    lower = le;
  }
  // Beyond the largest bound PromQL answers with that bound.
  return lower;
}

/** The largest severity (observed / limit) over the configured guardrails; 0 when none is configured. */
export function maxSeverity(guardrails: Guardrails, signals: TrueSignals): number {
  // Runs every simulated second: no allocation.
  let max = 0;
  for (const name of SIGNAL_NAMES) {
    const limit = guardrails[name];
    if (limit === undefined) continue;
    const s = limit > 0 ? signals[name] / limit : signals[name] > 0 ? Number.POSITIVE_INFINITY : 0;
    if (s > max) max = s;
  }
  return max;
}

/** Whether any configured guardrail is above its limit. */
export function inBreach(guardrails: Guardrails, signals: TrueSignals): boolean {
  return maxSeverity(guardrails, signals) > 1;
}

/** Load on the target as a share of its capacity. */
export function utilisationOf(mirroredRps: number, backgroundRps: number, capacityRps: number): number {
  const load = mirroredRps + backgroundRps;
  if (capacityRps <= 0) return load > 0 ? Number.POSITIVE_INFINITY : 0;
  return load / capacityRps;
}

/**
 * The highest utilisation at which every configured guardrail of the true target is at or below its limit
 * (Infinity when no load breaches them). The signals depend on utilisation only and rise with it, so this
 * is found once per policy and plant by bisection, and the oracle percentage follows from it in O(1).
 */
export function safeUtilisation(guardrails: Guardrails, profile: PlantProfile): number {
  const safe = (u: number): boolean => !inBreach(guardrails, trueSignals(profile, u));
  if (!safe(0)) return 0;
  let hi = 1;
  while (safe(hi)) {
    hi *= 2;
    if (hi > 1e6) return Number.POSITIVE_INFINITY;
  }
  let lo = hi === 1 ? 0 : hi / 2;
  // 60 halvings reach the resolution of a double.
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (safe(mid)) lo = mid;
    else hi = mid;
  }
  // A hair below the boundary, so that turning it into a percentage and back (rounding either way) still
  // lands on the safe side.
  return lo * (1 - 1e-9);
}

/**
 * The oracle: the largest mirror percentage within the policy bounds at which every configured guardrail of
 * the true (noiseless) target stays at or below its limit. When even minPercent breaches, minPercent (the
 * controller may not go lower).
 * @param uSafe safeUtilisation(policy.guardrails, profile), computed once by the caller.
 */
export function oraclePercent(
  bounds: ControlPolicy['bounds'],
  uSafe: number,
  productionRps: number,
  capacityRps: number,
  backgroundRps = 0,
): number {
  const { minPercent, maxPercent } = bounds;
  if (productionRps <= 0) return backgroundRps <= uSafe * capacityRps ? maxPercent : minPercent;
  const p = ((uSafe * capacityRps - backgroundRps) / productionRps) * 100;
  if (Number.isNaN(p)) return minPercent;
  return Math.min(maxPercent, Math.max(minPercent, p));
}

/** A short burst of production traffic. */
export interface Burst {
  readonly startSeconds: number;
  readonly durationSeconds: number;
  /** Production traffic is multiplied by this during the burst. */
  readonly factor: number;
}

/** Production traffic of the service whose requests are mirrored. */
export interface TrafficConfig {
  /** Mean production requests per second. */
  readonly baseRps: number;
  /** Day-night swing: rate × (1 + amplitude · cos(2π (t − peakAt) / period)). */
  readonly diurnal?: {
    readonly amplitude: number;
    readonly periodSeconds: number;
    readonly peakAtSeconds: number;
  };
  /** Planned changes of production traffic (surges), as a multiplier. */
  readonly multiplier?: Schedule;
  readonly bursts?: readonly Burst[];
}

/** Measurement noise of the target. Noise is correlated over `correlationSeconds`, as real load is. */
export interface NoiseConfig {
  /** Request arrivals are Poisson (integer counts per second) instead of the exact rate. */
  readonly poissonArrivals: boolean;
  /** Standard deviation of CPU utilisation noise (absolute). */
  readonly cpuSigma: number;
  /** Standard deviation of the log of a multiplicative jitter on p99 latency. */
  readonly latencySigma: number;
  readonly correlationSeconds: number;
}

export const NO_NOISE: NoiseConfig = {
  poissonArrivals: false,
  cpuSigma: 0,
  latencySigma: 0,
  correlationSeconds: 30,
};

/** Everything that defines the mirror target and the traffic it sees. */
export interface PlantConfig {
  readonly profile: PlantProfile;
  /** Requests per second the target can serve; the schedule models pods lost, scaled out or ramped. */
  readonly capacityRps: Schedule;
  readonly traffic: TrafficConfig;
  /** Requests per second the target gets besides the mirror (probes, its own test traffic). */
  readonly backgroundRps: number;
  readonly noise: NoiseConfig;
}

/** Production requests per second at time `t` (noiseless). */
export function productionRps(traffic: TrafficConfig, t: number): number {
  let rate = traffic.baseRps;
  const d = traffic.diurnal;
  if (d !== undefined)
    rate *= 1 + d.amplitude * Math.cos((2 * Math.PI * (t - d.peakAtSeconds)) / d.periodSeconds);
  if (traffic.multiplier !== undefined) rate *= scheduleAt(traffic.multiplier, t);
  for (const b of traffic.bursts ?? []) {
    if (t >= b.startSeconds && t < b.startSeconds + b.durationSeconds) rate *= b.factor;
  }
  return Math.max(0, rate);
}

/** The upper bounds (ms) of Istio's default request-duration histogram buckets; +Inf is implicit. */
export const ISTIO_DURATION_BUCKETS_MS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];

/** Cumulative counters of the target, as its sidecar and cAdvisor export them. */
export interface TargetCounters {
  /** istio_requests_total (reporter=destination). */
  requests: number;
  /** istio_requests_total with a 5xx response code. */
  errors: number;
  /** container_cpu_usage_seconds_total. */
  cpuSeconds: number;
  /** istio_request_duration_milliseconds_bucket, cumulative, one per bucket bound plus +Inf last. */
  readonly latencyBuckets: Float64Array;
  /**
   * Production requests of the mirrored route (the primary's own istio_requests_total; mirrored copies are
   * not counted): Poisson counts when the noise says arrivals are, else the exact rate.
   */
  production: number;
}

/** What the target did in one step: what it received and its true state. */
export interface PlantStep {
  readonly productionRps: number;
  readonly capacityRps: number;
  readonly mirroredRps: number;
  readonly utilisation: number;
  readonly truth: TrueSignals;
}

/** A mirror target whose counters advance as the loop feeds it traffic. */
export interface Plant {
  readonly config: PlantConfig;
  readonly counters: TargetCounters;
  /**
   * Advances the target by `dt` seconds from `t` with `percent` of production mirrored to it, adding the
   * requests, errors, latency observations and CPU time of that span to the counters.
   */
  advance(t: number, dt: number, percent: number): PlantStep;
}

/** Standard normal cumulative distribution (Abramowitz-Stegun 7.1.26 on erf; error below 1.5e-7). */
function normalCdf(z: number): number {
  // Beyond 8.3 standard deviations the answer is 0 or 1 to double precision; skip the arithmetic.
  if (z > 8.3) return 1;
  if (z < -8.3) return 0;
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly =
    t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erf = 1 - poly * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

const Z99 = 2.3263478740408408;
const LOG_BOUNDS = ISTIO_DURATION_BUCKETS_MS.map(Math.log);

/**
 * The share of requests at or below each bucket bound when the p99 is `p99Ms`. One second's latencies are
 * modelled as log-normal with the profile's spread, a common fit for service latency.
 */
export function latencyBucketFractions(p99Ms: number, spread: number, bounds: readonly number[]): number[] {
  const logMedian = Math.log(p99Ms) - Z99 * spread;
  return bounds.map((le) => normalCdf((Math.log(le) - logMedian) / spread));
}

/**
 * Creates a plant whose noise draws from streams derived from `seed`.
 */
export function createPlant(config: PlantConfig, seed: number): Plant {
  const arrivals = createRandom(streamSeed(seed, 'arrivals'));
  const cpuNoise = createRandom(streamSeed(seed, 'cpu-noise'));
  const latencyNoise = createRandom(streamSeed(seed, 'latency-noise'));
  // Its own stream, so that counting production does not shift the target's arrivals.
  const productionArrivals = createRandom(streamSeed(seed, 'production-arrivals'));
  const bounds = ISTIO_DURATION_BUCKETS_MS;
  const counters: TargetCounters = {
    requests: 0,
    errors: 0,
    cpuSeconds: 0,
    latencyBuckets: new Float64Array(bounds.length + 1),
    production: 0,
  };
  const { noise, profile } = config;
  // Ornstein-Uhlenbeck state of each noise term, so noise persists over a correlation time and is not
  // simply averaged away by a two-minute rate window.
  let cpuJitter = 0;
  let latencyJitter = 0;
  const ou = (x: number, sigma: number, dt: number, rng: Random): number => {
    if (sigma === 0) return 0;
    const a = Math.exp(-dt / Math.max(noise.correlationSeconds, 1e-9));
    return a * x + sigma * Math.sqrt(1 - a * a) * rng.normal();
  };

  const advance = (t: number, dt: number, percent: number): PlantStep => {
    const prod = productionRps(config.traffic, t);
    const capacity = Math.max(0, scheduleAt(config.capacityRps, t));
    const mirrored = (prod * Math.min(100, Math.max(0, percent))) / 100;
    const u = utilisationOf(mirrored, config.backgroundRps, capacity);
    const truth = trueSignals(profile, u);

    cpuJitter = ou(cpuJitter, noise.cpuSigma, dt, cpuNoise);
    latencyJitter = ou(latencyJitter, noise.latencySigma, dt, latencyNoise);

    const expected = (mirrored + config.backgroundRps) * dt;
    const received = noise.poissonArrivals ? arrivals.poisson(expected) : expected;
    const failed = noise.poissonArrivals
      ? Math.min(received, arrivals.poisson(received * truth.errorRate))
      : received * truth.errorRate;
    counters.requests += received;
    counters.errors += failed;
    counters.production += noise.poissonArrivals ? productionArrivals.poisson(prod * dt) : prod * dt;
    if (received > 0) {
      // The service's own p99 (not the bucket estimate in `truth`) shapes the observations.
      const p99 = modelP99Ms(profile, u) * Math.exp(latencyJitter);
      const logMedian = Math.log(p99) - Z99 * profile.latencySpread;
      for (let i = 0; i < bounds.length; i++) {
        const f = normalCdf(((LOG_BOUNDS[i] ?? 0) - logMedian) / profile.latencySpread);
        counters.latencyBuckets[i] = (counters.latencyBuckets[i] ?? 0) + received * f;
      }
      counters.latencyBuckets[bounds.length] = (counters.latencyBuckets[bounds.length] ?? 0) + received;
    }
    const cpu = Math.max(0, truth.cpuUtilization + cpuJitter);
    counters.cpuSeconds += cpu * profile.cpuRequestCores * dt;
    return { productionRps: prod, capacityRps: capacity, mirroredRps: mirrored, utilisation: u, truth };
  };

  return { config, counters, advance };
}
