import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SIGNAL_NAMES } from '../../src/core/types.js';
import {
  CPU_BOUND_PROFILE,
  createPlant,
  histogramP99,
  IO_BOUND_PROFILE,
  ISTIO_DURATION_BUCKETS_MS,
  inBreach,
  latencyBucketFractions,
  modelP99Ms,
  NO_NOISE,
  oraclePercent,
  type PlantConfig,
  productionRps,
  safeUtilisation,
  scheduleAt,
  trueSignals,
} from '../../src/sim/plant.js';
import { histogramQuantile } from '../../src/sim/promql.js';
import { createRandom, streamSeed } from '../../src/sim/random.js';

describe('scheduleAt', () => {
  const stepSchedule = [
    [100, 10],
    [100, 20],
  ] as const;
  const rows = [
    { name: 'single point before', schedule: [[50, 7]] as const, t: 0, want: 7 },
    { name: 'single point after', schedule: [[50, 7]] as const, t: 500, want: 7 },
    {
      name: 'linear between points',
      schedule: [
        [0, 0],
        [10, 100],
      ] as const,
      t: 2.5,
      want: 25,
    },
    { name: 'before a step', schedule: stepSchedule, t: 99.9, want: 10 },
    { name: 'at a step the later point wins', schedule: stepSchedule, t: 100, want: 20 },
    { name: 'after a step', schedule: stepSchedule, t: 1000, want: 20 },
  ];
  it.each(rows)('$name', ({ schedule, t, want }) => {
    expect(scheduleAt(schedule, t)).toBeCloseTo(want, 10);
  });

  it('refuses an empty schedule', () => {
    expect(() => scheduleAt([], 0)).toThrow('schedule: must have at least one point (got none)');
  });
});

describe('trueSignals', () => {
  const profiles = [
    { name: 'cpu-bound', profile: CPU_BOUND_PROFILE },
    { name: 'io-bound', profile: IO_BOUND_PROFILE },
  ];
  it.each(profiles)('every signal is non-decreasing in utilisation ($name)', ({ profile }) => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 3, noNaN: true }),
        fc.double({ min: 0, max: 3, noNaN: true }),
        (a, b) => {
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          const sLo = trueSignals(profile, lo);
          const sHi = trueSignals(profile, hi);
          for (const name of SIGNAL_NAMES) expect(sHi[name]).toBeGreaterThanOrEqual(sLo[name] - 1e-12);
        },
      ),
    );
  });

  it.each(profiles)('rises from idle to overload ($name)', ({ profile }) => {
    const idle = trueSignals(profile, 0.1);
    const overload = trueSignals(profile, 1.5);
    expect(overload.cpuUtilization).toBeGreaterThan(idle.cpuUtilization);
    expect(overload.latencyP99Ms).toBeGreaterThan(10 * idle.latencyP99Ms);
    // A third of the load above capacity is shed as errors.
    expect(overload.errorRate).toBeGreaterThan(1 / 3);
    expect(idle.errorRate).toBe(profile.errorBase);
  });

  it('errors stay at the base rate below the knee', () => {
    expect(trueSignals(CPU_BOUND_PROFILE, CPU_BOUND_PROFILE.errorKnee - 0.01).errorRate).toBe(
      CPU_BOUND_PROFILE.errorBase,
    );
  });

  it('the latency signal is what histogram_quantile reports from the steady bucket fractions', () => {
    for (const u of [0.1, 0.5, 0.8, 0.9, 0.95, 0.99]) {
      const p99 = modelP99Ms(CPU_BOUND_PROFILE, u);
      const fractions = latencyBucketFractions(
        p99,
        CPU_BOUND_PROFILE.latencySpread,
        ISTIO_DURATION_BUCKETS_MS,
      );
      const want = histogramQuantile(0.99, ISTIO_DURATION_BUCKETS_MS, [...fractions, 1]);
      expect(histogramP99(p99, CPU_BOUND_PROFILE.latencySpread)).toBeCloseTo(want, 6);
      expect(trueSignals(CPU_BOUND_PROFILE, u).latencyP99Ms).toBeCloseTo(want, 6);
    }
  });
});

/** The oracle found by bisection on the percentage, written here independently of the plant's shortcut. */
function oracleByBisection(
  guardrails: Parameters<typeof inBreach>[0],
  bounds: { minPercent: number; maxPercent: number },
  profile: typeof CPU_BOUND_PROFILE,
  prod: number,
  capacity: number,
): number {
  const safe = (p: number) => !inBreach(guardrails, trueSignals(profile, (prod * p) / 100 / capacity));
  if (safe(bounds.maxPercent)) return bounds.maxPercent;
  if (!safe(bounds.minPercent)) return bounds.minPercent;
  let lo = bounds.minPercent;
  let hi = bounds.maxPercent;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (safe(mid)) lo = mid;
    else hi = mid;
  }
  return lo;
}

describe('oraclePercent', () => {
  const all = { cpuUtilization: 0.8, errorRate: 0.01, latencyP99Ms: 500 };
  const bounds = { minPercent: 1, maxPercent: 50 };
  const rows = [
    { name: 'cpu binds (cpu-bound)', profile: CPU_BOUND_PROFILE, guardrails: all, prod: 2000, capacity: 400 },
    {
      name: 'latency binds (io-bound)',
      profile: IO_BOUND_PROFILE,
      guardrails: all,
      prod: 2000,
      capacity: 400,
    },
    {
      name: 'only errors watched',
      profile: CPU_BOUND_PROFILE,
      guardrails: { errorRate: 0.01 },
      prod: 3000,
      capacity: 500,
    },
    {
      name: 'only latency watched, tight limit',
      profile: CPU_BOUND_PROFILE,
      guardrails: { latencyP99Ms: 150 },
      prod: 1000,
      capacity: 300,
    },
  ];

  it.each(rows)('all guardrails hold at the oracle, one breaks just above ($name)', (row) => {
    const u = safeUtilisation(row.guardrails, row.profile);
    const p = oraclePercent(bounds, u, row.prod, row.capacity);
    expect(p).toBeGreaterThan(bounds.minPercent);
    expect(p).toBeLessThan(bounds.maxPercent);
    const at = (pct: number) => trueSignals(row.profile, (row.prod * pct) / 100 / row.capacity);
    expect(inBreach(row.guardrails, at(p))).toBe(false);
    expect(inBreach(row.guardrails, at(p + 0.01))).toBe(true);
    expect(p).toBeCloseTo(oracleByBisection(row.guardrails, bounds, row.profile, row.prod, row.capacity), 6);
  });

  it('cpu is the binding guardrail of the cpu-bound profile, latency of the io-bound one', () => {
    const cpuOnly = safeUtilisation({ cpuUtilization: 0.8 }, CPU_BOUND_PROFILE);
    expect(safeUtilisation(all, CPU_BOUND_PROFILE)).toBeCloseTo(cpuOnly, 9);
    const latencyOnly = safeUtilisation({ latencyP99Ms: 500 }, IO_BOUND_PROFILE);
    expect(safeUtilisation(all, IO_BOUND_PROFILE)).toBeCloseTo(latencyOnly, 9);
  });

  const capped = [
    { name: 'huge capacity gives maxPercent', prod: 2000, capacity: 1e6, want: 50 },
    { name: 'tiny capacity gives minPercent', prod: 2000, capacity: 1, want: 1 },
    { name: 'no production traffic gives maxPercent', prod: 0, capacity: 400, want: 50 },
  ];
  it.each(capped)('$name', ({ prod, capacity, want }) => {
    const u = safeUtilisation(all, CPU_BOUND_PROFILE);
    expect(oraclePercent(bounds, u, prod, capacity)).toBe(want);
    expect(oracleByBisection(all, bounds, CPU_BOUND_PROFILE, prod, capacity)).toBeCloseTo(want, 6);
  });

  it('is unlimited when no load can breach the guardrails', () => {
    expect(safeUtilisation({ cpuUtilization: 5 }, CPU_BOUND_PROFILE)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('productionRps', () => {
  const rows = [
    { name: 'flat', traffic: { baseRps: 100 }, t: 42, want: 100 },
    {
      name: 'diurnal peak',
      traffic: { baseRps: 100, diurnal: { amplitude: 0.5, periodSeconds: 1000, peakAtSeconds: 250 } },
      t: 250,
      want: 150,
    },
    {
      name: 'diurnal trough',
      traffic: { baseRps: 100, diurnal: { amplitude: 0.5, periodSeconds: 1000, peakAtSeconds: 250 } },
      t: 750,
      want: 50,
    },
    {
      name: 'surge multiplier',
      traffic: {
        baseRps: 100,
        multiplier: [
          [10, 1],
          [10, 3],
        ] as const,
      },
      t: 11,
      want: 300,
    },
    {
      name: 'inside a burst',
      traffic: { baseRps: 100, bursts: [{ startSeconds: 5, durationSeconds: 10, factor: 1.2 }] },
      t: 14,
      want: 120,
    },
    {
      name: 'after a burst',
      traffic: { baseRps: 100, bursts: [{ startSeconds: 5, durationSeconds: 10, factor: 1.2 }] },
      t: 15,
      want: 100,
    },
  ];
  it.each(rows)('$name', ({ traffic, t, want }) => {
    expect(productionRps(traffic, t)).toBeCloseTo(want, 9);
  });
});

describe('createPlant', () => {
  const config: PlantConfig = {
    profile: CPU_BOUND_PROFILE,
    capacityRps: [[0, 400]],
    traffic: { baseRps: 2000 },
    backgroundRps: 0,
    noise: NO_NOISE,
  };

  it('without noise, counters grow by exactly the mirrored load', () => {
    const plant = createPlant(config, 1);
    let step = plant.advance(0, 1, 10);
    for (let t = 1; t < 60; t++) step = plant.advance(t, 1, 10);
    expect(step.mirroredRps).toBe(200);
    expect(step.utilisation).toBe(0.5);
    expect(plant.counters.requests).toBeCloseTo(60 * 200, 6);
    expect(plant.counters.errors).toBeCloseTo(60 * 200 * CPU_BOUND_PROFILE.errorBase, 6);
    expect(plant.counters.cpuSeconds).toBeCloseTo(60 * trueSignals(CPU_BOUND_PROFILE, 0.5).cpuUtilization, 6);
    const inf = plant.counters.latencyBuckets[ISTIO_DURATION_BUCKETS_MS.length];
    expect(inf).toBeCloseTo(60 * 200, 6);
  });

  it('at 0 % the target gets no requests but still burns its base CPU', () => {
    const plant = createPlant(config, 1);
    for (let t = 0; t < 10; t++) plant.advance(t, 1, 0);
    expect(plant.counters.requests).toBe(0);
    expect(plant.counters.cpuSeconds).toBeCloseTo(10 * CPU_BOUND_PROFILE.cpuBase, 9);
  });

  it('with Poisson arrivals, counts are whole numbers around the mean', () => {
    const plant = createPlant({ ...config, noise: { ...NO_NOISE, poissonArrivals: true } }, 7);
    for (let t = 0; t < 600; t++) plant.advance(t, 1, 1);
    expect(Number.isInteger(plant.counters.requests)).toBe(true);
    expect(plant.counters.requests / 600).toBeGreaterThan(18);
    expect(plant.counters.requests / 600).toBeLessThan(22);
  });

  it('counts production requests, mirrored or not, whatever the percentage', () => {
    const plant = createPlant(config, 1);
    for (let t = 0; t < 30; t++) plant.advance(t, 1, t < 15 ? 0 : 50);
    expect(plant.counters.production).toBeCloseTo(30 * 2000, 9);
    const surge = createPlant(
      {
        ...config,
        traffic: {
          baseRps: 2000,
          multiplier: [
            [10, 1],
            [20, 3],
          ],
        },
      },
      1,
    );
    for (let t = 0; t < 30; t++) surge.advance(t, 1, 10);
    let want = 0;
    for (let t = 0; t < 30; t++) want += productionRps(surge.config.traffic, t);
    expect(surge.counters.production).toBeCloseTo(want, 9);
  });

  it('Poisson production counts draw from their own stream: the target sees the same arrivals', () => {
    const plant = createPlant({ ...config, noise: { ...NO_NOISE, poissonArrivals: true } }, 7);
    // The target's arrivals and errors replayed from their stream alone, at 5 % of 2,000/s (utilisation
    // 0.25: the base error rate).
    const rng = createRandom(streamSeed(7, 'arrivals'));
    let requests = 0;
    for (let t = 0; t < 100; t++) {
      plant.advance(t, 1, 5);
      const received = rng.poisson(100);
      rng.poisson(received * CPU_BOUND_PROFILE.errorBase);
      requests += received;
    }
    expect(plant.counters.requests).toBe(requests);
    expect(Number.isInteger(plant.counters.production)).toBe(true);
    expect(plant.counters.production).not.toBe(200_000);
    expect(Math.abs(plant.counters.production / 200_000 - 1)).toBeLessThan(0.01);
  });
});
