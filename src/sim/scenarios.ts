/**
 * Named simulation scenarios and the simulator's embedded default policy. Each scenario is a function of a
 * seed and a duration: the seed varies the target's size, the traffic level and the timing of events a
 * little (so that a benchmark over many seeds does not tune to one run), and events sit at fixed fractions
 * of the duration (so that `--duration 30m` still shows them).
 */
import { DEFAULT_CONTROL, DEFAULT_INTERVAL_SECONDS, DEFAULT_WINDOW_SECONDS } from '../core/defaults.js';
import type { ControlPolicy } from '../core/types.js';
import {
  type Burst,
  CPU_BOUND_PROFILE,
  IO_BOUND_PROFILE,
  type NoiseConfig,
  type PlantConfig,
  type Schedule,
  scheduleAt,
} from './plant.js';
import { DEFAULT_OBSERVATION, type ObservationConfig } from './prometheus.js';
import { createRandom, type Random, streamSeed } from './random.js';

export const SCENARIO_NAMES = [
  'steady',
  'diurnal',
  'capacity-drop',
  'surge',
  'prometheus-outage',
  'noisy',
  'slow-ramp',
  'cold-start',
] as const;
export type ScenarioName = (typeof SCENARIO_NAMES)[number];

/** The scenario `simulate` runs when none is named: it shows a cut, a settle and a recovery in one chart. */
export const DEFAULT_SCENARIO: ScenarioName = 'capacity-drop';

/** Everything a closed-loop run needs besides the policy and the controller. */
export interface Scenario {
  readonly name: ScenarioName;
  readonly description: string;
  readonly plant: PlantConfig;
  readonly observation: ObservationConfig;
  /** The mirror percentage set when the run starts; null = no percentage set (Istio mirrors 100 %). */
  readonly initialPercent: number | null;
  /** Seconds from a write until the sidecars mirror at the new percentage (istiod push). */
  readonly propagationDelaySeconds: number;
  /** Changes this scenario makes to the embedded default policy's bounds (not to a policy file's). */
  readonly bounds?: { readonly minPercent?: number; readonly maxPercent?: number };
  /** When the target's capacity drops, for the recovery-time figure. */
  readonly capacityDropAtSeconds?: number;
  /** When the capacity comes back, for the time to reach the oracle again. */
  readonly capacityRestoredAtSeconds?: number;
}

/**
 * The simulator's default policy. The embedded plant mirrors from about 2,000 production requests/s into
 * a target that serves about 400/s, so the safe percentage sits near 16 %: well inside 1–50 %, leaving the
 * controller something to find in both directions.
 */
export const DEFAULT_SIM_POLICY: ControlPolicy = {
  bounds: { minPercent: 1, maxPercent: 50 },
  guardrails: { cpuUtilization: 0.8, errorRate: 0.01, latencyP99Ms: 500 },
  intervalSeconds: DEFAULT_INTERVAL_SECONDS,
  windowSeconds: DEFAULT_WINDOW_SECONDS,
  control: DEFAULT_CONTROL,
};

/** The embedded default policy with a scenario's bound changes applied. */
export function scenarioPolicy(scenario: Scenario, base: ControlPolicy = DEFAULT_SIM_POLICY): ControlPolicy {
  const b = scenario.bounds;
  if (b === undefined) return base;
  return {
    ...base,
    bounds: {
      minPercent: b.minPercent ?? base.bounds.minPercent,
      maxPercent: b.maxPercent ?? base.bounds.maxPercent,
    },
  };
}

const BASE_PRODUCTION_RPS = 2000;
const BASE_CAPACITY_RPS = 400;

/** Realistic but mild noise: Poisson arrivals, a little CPU and latency jitter. */
const MILD_NOISE: NoiseConfig = {
  poissonArrivals: true,
  cpuSigma: 0.01,
  latencySigma: 0.05,
  correlationSeconds: 30,
};

const uniform = (rng: Random, lo: number, hi: number): number => lo + (hi - lo) * rng.next();

/** Per-seed variation shared by every scenario. */
interface Variation {
  readonly rng: Random;
  readonly production: number;
  readonly capacity: number;
  readonly observation: ObservationConfig;
}

function vary(seed: number, name: ScenarioName): Variation {
  const rng = createRandom(streamSeed(seed, `scenario:${name}`));
  const production = BASE_PRODUCTION_RPS * uniform(rng, 0.9, 1.1);
  const capacity = BASE_CAPACITY_RPS * uniform(rng, 0.85, 1.15);
  const interval = DEFAULT_OBSERVATION.scrapeIntervalSeconds;
  const observation = { ...DEFAULT_OBSERVATION, scrapeOffsetSeconds: Math.floor(rng.next() * interval) };
  return { rng, production, capacity, observation };
}

/** Random short bursts of production traffic, `perHour` on average, over [0, duration). */
export function randomBursts(
  rng: Random,
  durationSeconds: number,
  perHour: number,
  factor: readonly [number, number],
  seconds: readonly [number, number],
): Burst[] {
  const bursts: Burst[] = [];
  if (perHour <= 0) return bursts;
  const meanGap = 3600 / perHour;
  let t = -Math.log(1 - rng.next()) * meanGap;
  while (t < durationSeconds) {
    bursts.push({
      startSeconds: Math.round(t),
      durationSeconds: Math.round(uniform(rng, seconds[0], seconds[1])),
      factor: uniform(rng, factor[0], factor[1]),
    });
    t += -Math.log(1 - rng.next()) * meanGap;
  }
  return bursts;
}

const constant = (value: number): Schedule => [[0, value]];

/** A step from `from` to `to` at time `at`, back to `from` at `until` (omit `until` for no return). */
const step = (from: number, to: number, at: number, until?: number): Schedule =>
  until === undefined
    ? [
        [at, from],
        [at, to],
      ]
    : [
        [at, from],
        [at, to],
        [until, to],
        [until, from],
      ];

function plant(v: Variation, overrides: Partial<PlantConfig> = {}): PlantConfig {
  return {
    profile: CPU_BOUND_PROFILE,
    capacityRps: constant(v.capacity),
    traffic: { baseRps: v.production },
    backgroundRps: 0,
    noise: MILD_NOISE,
    ...overrides,
  };
}

type Builder = (seed: number, durationSeconds: number) => Scenario;

const BUILDERS: Record<ScenarioName, { readonly description: string; readonly build: Builder }> = {
  steady: {
    description: 'constant production traffic and target capacity',
    build: (seed) => {
      const v = vary(seed, 'steady');
      return {
        name: 'steady',
        description: BUILDERS.steady.description,
        plant: plant(v),
        observation: v.observation,
        initialPercent: 5,
        propagationDelaySeconds: 5,
      };
    },
  },
  diurnal: {
    description: 'a day of traffic (±50 %) compressed into the run, short bursts; latency-bound',
    build: (seed, duration) => {
      const v = vary(seed, 'diurnal');
      return {
        name: 'diurnal',
        description: BUILDERS.diurnal.description,
        plant: plant(v, {
          profile: IO_BOUND_PROFILE,
          traffic: {
            baseRps: v.production,
            diurnal: { amplitude: 0.5, periodSeconds: duration, peakAtSeconds: duration / 2 },
            bursts: randomBursts(v.rng, duration, 2, [1.05, 1.1], [20, 60]),
          },
        }),
        observation: v.observation,
        initialPercent: 5,
        propagationDelaySeconds: 5,
      };
    },
  },
  'capacity-drop': {
    description: 'the target loses half its capacity (pods lost), then gets it back',
    build: (seed, duration) => {
      const v = vary(seed, 'capacity-drop');
      const dropAt = Math.round(duration * uniform(v.rng, 0.33, 0.37));
      const backAt = Math.round(duration * uniform(v.rng, 0.63, 0.67));
      return {
        name: 'capacity-drop',
        description: BUILDERS['capacity-drop'].description,
        plant: plant(v, { capacityRps: step(v.capacity, v.capacity / 2, dropAt, backAt) }),
        observation: v.observation,
        initialPercent: 10,
        propagationDelaySeconds: 5,
        capacityDropAtSeconds: dropAt,
        capacityRestoredAtSeconds: backAt,
      };
    },
  },
  surge: {
    description: 'production traffic triples for 10 minutes',
    build: (seed, duration) => {
      const v = vary(seed, 'surge');
      const at = Math.round(duration * uniform(v.rng, 0.38, 0.42));
      // A 30 s ramp: real surges arrive over seconds, not in one instant.
      const multiplier: Schedule = [
        [at, 1],
        [at + 30, 3],
        [at + 600, 3],
        [at + 630, 1],
      ];
      return {
        name: 'surge',
        description: BUILDERS.surge.description,
        plant: plant(v, { traffic: { baseRps: v.production, multiplier } }),
        observation: v.observation,
        initialPercent: 10,
        propagationDelaySeconds: 5,
      };
    },
  },
  'prometheus-outage': {
    description: 'Prometheus is down for 3 minutes: queries fail and nothing is scraped',
    build: (seed, duration) => {
      const v = vary(seed, 'prometheus-outage');
      const at = Math.round(duration * uniform(v.rng, 0.45, 0.55));
      return {
        name: 'prometheus-outage',
        description: BUILDERS['prometheus-outage'].description,
        plant: plant(v),
        observation: { ...v.observation, outages: [{ startSeconds: at, endSeconds: at + 180 }] },
        initialPercent: 10,
        propagationDelaySeconds: 5,
      };
    },
  },
  noisy: {
    description: 'strong CPU and latency noise and 2 % missed scrapes',
    build: (seed) => {
      const v = vary(seed, 'noisy');
      return {
        name: 'noisy',
        description: BUILDERS.noisy.description,
        plant: plant(v, {
          noise: { poissonArrivals: true, cpuSigma: 0.05, latencySigma: 0.25, correlationSeconds: 30 },
        }),
        observation: { ...v.observation, missedScrapeProbability: 0.02 },
        initialPercent: 5,
        propagationDelaySeconds: 5,
      };
    },
  },
  'slow-ramp': {
    description: 'target capacity falls slowly to half, then climbs slowly to 120 %',
    build: (seed, duration) => {
      const v = vary(seed, 'slow-ramp');
      const c = v.capacity;
      const capacityRps: Schedule = [
        [duration * 0.1, c],
        [duration * 0.45, c * 0.5],
        [duration * 0.55, c * 0.5],
        [duration * 0.9, c * 1.2],
      ];
      return {
        name: 'slow-ramp',
        description: BUILDERS['slow-ramp'].description,
        plant: plant(v, { capacityRps }),
        observation: v.observation,
        initialPercent: 10,
        propagationDelaySeconds: 5,
      };
    },
  },
  'cold-start': {
    description: 'mirroring starts at 0 % on an idle target (minPercent 0)',
    build: (seed) => {
      const v = vary(seed, 'cold-start');
      return {
        name: 'cold-start',
        description: BUILDERS['cold-start'].description,
        plant: plant(v),
        observation: v.observation,
        initialPercent: 0,
        propagationDelaySeconds: 5,
        bounds: { minPercent: 0 },
      };
    },
  },
};

/** Whether `name` is a scenario name. */
export function isScenarioName(name: string): name is ScenarioName {
  return (SCENARIO_NAMES as readonly string[]).includes(name);
}

/** One-line description of a scenario, for help texts. */
export function describeScenario(name: ScenarioName): string {
  return BUILDERS[name].description;
}

/**
 * Builds a scenario.
 * @param seed varies sizes and event times; the same seed gives the same scenario.
 * @param durationSeconds length of the run; events sit at fixed fractions of it.
 */
export function buildScenario(name: ScenarioName, seed: number, durationSeconds: number): Scenario {
  return BUILDERS[name].build(seed, durationSeconds);
}

/**
 * Production traffic with multiplicative noise of at most ±`amplitude`, correlated over `correlationSeconds`
 * (a clipped Ornstein-Uhlenbeck process, one point a second), folded into the traffic's multiplier schedule
 * so that the plant, the exported production counter and the oracle all see the same traffic.
 */
export function withProductionNoise(
  config: PlantConfig,
  seed: number,
  fromSeconds: number,
  toSeconds: number,
  amplitude: number,
  correlationSeconds = 10,
): PlantConfig {
  if (amplitude <= 0) return config;
  const rng = createRandom(streamSeed(seed, 'live-production-noise'));
  const base = config.traffic.multiplier;
  const a = Math.exp(-1 / correlationSeconds);
  const sigma = amplitude / 2;
  let x = 0;
  const points: [number, number][] = [];
  for (let t = Math.floor(fromSeconds); t <= Math.ceil(toSeconds) + 1; t++) {
    x = a * x + sigma * Math.sqrt(1 - a * a) * rng.normal();
    const noise = Math.max(-amplitude, Math.min(amplitude, x));
    points.push([t, (base === undefined ? 1 : scheduleAt(base, t)) * (1 + noise)]);
  }
  const multiplier: Schedule = points;
  return { ...config, traffic: { ...config.traffic, multiplier } };
}
