import { describe, expect, it } from 'vitest';
import type { Signal } from '../../src/core/types.js';
import { CPU_BOUND_PROFILE, createPlant, NO_NOISE, type Plant, trueSignals } from '../../src/sim/plant.js';
import {
  createObserver,
  DEFAULT_OBSERVATION,
  type ObservationConfig,
  staleAfterFor,
} from '../../src/sim/prometheus.js';

const WINDOW = 120;

/** A noiseless target behind 1,000 production requests/s, with room for everything up to 100 %. */
function setup(observation: Partial<ObservationConfig> = {}) {
  const plant = createPlant(
    {
      profile: CPU_BOUND_PROFILE,
      capacityRps: [[0, 10_000]],
      traffic: { baseRps: 1000 },
      backgroundRps: 0,
      noise: NO_NOISE,
    },
    1,
  );
  const observer = createObserver({ ...DEFAULT_OBSERVATION, scrapeOffsetSeconds: 0, ...observation }, 1, 0);
  return { plant, observer };
}

/** Runs the plant from `from` to `to` (exclusive) at `percent`, offering every second to the observer. */
function run(
  { plant, observer }: { plant: Plant; observer: ReturnType<typeof createObserver> },
  from: number,
  to: number,
  percent: number,
) {
  for (let t = from; t < to; t++) {
    observer.offer(t, plant.counters);
    plant.advance(t, 1, percent);
  }
  observer.offer(to, plant.counters);
}

const value = (s: Signal | undefined): number => {
  if (s?.kind !== 'value') throw new Error(`expected a value, got ${JSON.stringify(s)}`);
  return s.value;
};

describe('createObserver: rate windows', () => {
  it('a step change shows fully only once the window has passed since it', () => {
    const sim = setup();
    const step = 600;
    run(sim, 0, step, 10);
    const before = sim.observer.query(step, WINDOW);
    expect(value(before.requestRate)).toBeCloseTo(100, 6);
    const cpuBefore = value(before.signals.cpuUtilization);
    expect(cpuBefore).toBeCloseTo(trueSignals(CPU_BOUND_PROFILE, 0.01).cpuUtilization, 6);

    run(sim, step, step + WINDOW / 2, 20);
    const half = sim.observer.query(step + WINDOW / 2, WINDOW);
    expect(value(half.requestRate)).toBeGreaterThan(120);
    expect(value(half.requestRate)).toBeLessThan(180);

    run(sim, step + WINDOW / 2, step + WINDOW - 15, 20);
    const almost = sim.observer.query(step + WINDOW - 15, WINDOW);
    expect(value(almost.requestRate)).toBeLessThan(199);
    expect(value(almost.signals.cpuUtilization)).toBeLessThan(
      trueSignals(CPU_BOUND_PROFILE, 0.02).cpuUtilization - 1e-4,
    );

    run(sim, step + WINDOW - 15, step + WINDOW, 20);
    const after = sim.observer.query(step + WINDOW, WINDOW);
    expect(value(after.requestRate)).toBeCloseTo(200, 6);
    expect(value(after.signals.cpuUtilization)).toBeCloseTo(
      trueSignals(CPU_BOUND_PROFILE, 0.02).cpuUtilization,
      6,
    );
  });

  it('error rate and p99 come from the counters and histogram buckets', () => {
    const sim = setup();
    run(sim, 0, 300, 50);
    const seen = sim.observer.query(300, WINDOW);
    const truth = trueSignals(CPU_BOUND_PROFILE, 0.05);
    expect(value(seen.signals.errorRate)).toBeCloseTo(truth.errorRate, 9);
    expect(value(seen.signals.latencyP99Ms)).toBeCloseTo(truth.latencyP99Ms, 6);
  });

  it('returns only the signals asked for', () => {
    const sim = setup();
    run(sim, 0, 300, 10);
    expect(Object.keys(sim.observer.query(300, WINDOW, ['cpuUtilization']).signals)).toEqual([
      'cpuUtilization',
    ]);
  });
});

describe('createObserver: absent signals', () => {
  const absent = (reason: string) => expect.objectContaining({ kind: 'absent', reason });

  it('NoTraffic for latency and errors when the target got no requests; CPU still has a value', () => {
    const sim = setup();
    run(sim, 0, 600, 0);
    const seen = sim.observer.query(600, WINDOW);
    expect(seen.signals.latencyP99Ms).toEqual(absent('NoTraffic'));
    expect(seen.signals.errorRate).toEqual(absent('NoTraffic'));
    expect(value(seen.signals.cpuUtilization)).toBeCloseTo(CPU_BOUND_PROFILE.cpuBase, 9);
    expect(value(seen.requestRate)).toBe(0);
  });

  it('NoSeries when every scrape was missed', () => {
    const sim = setup({ missedScrapeProbability: 1 });
    run(sim, 0, 600, 10);
    expect(sim.observer.sampleCount).toBe(0);
    const seen = sim.observer.query(600, WINDOW);
    for (const s of [seen.signals.cpuUtilization, seen.signals.errorRate, seen.signals.latencyP99Ms]) {
      expect(s).toEqual(absent('NoSeries'));
    }
    expect(seen.requestRate).toEqual(absent('NoSeries'));
  });

  it('missed scrapes drop about their share of samples', () => {
    const sim = setup({ missedScrapeProbability: 0.5 });
    run(sim, 0, 3000, 10);
    // 200 scrapes due; a fair coin keeps 100 ± 3 sigma.
    expect(sim.observer.sampleCount).toBeGreaterThan(79);
    expect(sim.observer.sampleCount).toBeLessThan(121);
  });

  it('a failed scrape writes a stale marker: rates go on over the samples left, then NoSeries, never Stale', () => {
    const sim = setup({ scrapeGaps: [{ startSeconds: 600, endSeconds: 1000 }] });
    run(sim, 0, 690, 10);
    // [570, 690] still holds the samples at 570 and 585; the marker at 600 hides the series from an instant
    // query, so the age of the newest sample is not judged.
    expect(value(sim.observer.query(690, WINDOW).signals.cpuUtilization)).toBeGreaterThan(0);
    run(sim, 690, 720, 10);
    expect(sim.observer.query(720, WINDOW).signals.cpuUtilization).toEqual(absent('NoSeries'));
    run(sim, 720, 900, 10);
    expect(sim.observer.query(900, WINDOW).signals.errorRate).toEqual(absent('NoSeries'));
    run(sim, 900, 1030, 10);
    expect(value(sim.observer.query(1030, WINDOW).signals.cpuUtilization)).toBeGreaterThan(0);
  });

  it('Stale after an outage (no markers while Prometheus is down) until the first new scrape', () => {
    const sim = setup({ scrapeOffsetSeconds: 0, outages: [{ startSeconds: 601, endSeconds: 781 }] });
    run(sim, 0, 781, 10);
    // The newest sample is from 600, 181 s old; the next scrape is due at 795.
    expect(sim.observer.query(781, WINDOW).signals.latencyP99Ms).toEqual(absent('Stale'));
    expect(sim.observer.query(781, WINDOW, undefined, 45).productionRate).toEqual(absent('Stale'));
    run(sim, 781, 795, 10);
    expect(sim.observer.query(795, WINDOW).signals.latencyP99Ms).toEqual(absent('NoSeries'));
  });

  it('the Stale limit is at least four scrape intervals', () => {
    expect(staleAfterFor(1)).toBe(120);
    expect(staleAfterFor(30)).toBe(120);
    expect(staleAfterFor(60)).toBe(240);
  });

  it('NoSeries when the window holds fewer than two samples', () => {
    const sim = setup({ scrapeGaps: [{ startSeconds: 400, endSeconds: 600 }] });
    run(sim, 0, 610, 10);
    expect(sim.observer.query(610, WINDOW).signals.latencyP99Ms).toEqual(absent('NoSeries'));
  });

  it('QueryFailed while Prometheus is down, and a gap in the data after it', () => {
    const sim = setup({ outages: [{ startSeconds: 600, endSeconds: 780 }] });
    run(sim, 0, 700, 10);
    const down = sim.observer.query(700, WINDOW);
    for (const s of [down.signals.cpuUtilization, down.signals.errorRate, down.signals.latencyP99Ms]) {
      expect(s).toEqual(absent('QueryFailed'));
    }
    expect(down.requestRate).toEqual(absent('QueryFailed'));
    // Nothing was scraped during the outage: right after it the window holds one sample.
    run(sim, 700, 790, 10);
    expect(sim.observer.query(790, WINDOW).signals.cpuUtilization).toEqual(absent('NoSeries'));
    // With two samples 15 s apart in a 2 m window, rate() extrapolates only half an interval past them, so
    // it reads low until the window refills: real Prometheus does the same.
    run(sim, 790, 800, 10);
    const partial = value(sim.observer.query(800, WINDOW).requestRate);
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(50);
    run(sim, 800, 900, 10);
    expect(value(sim.observer.query(900, WINDOW).requestRate)).toBeCloseTo(100, 6);
  });
});

describe('createObserver: scrape phase and production', () => {
  /** A plant whose counters grow by exactly `rps` per second (no noise), observed from `offset`. */
  function linear(scrape: number, offset: number) {
    const plant = createPlant(
      {
        profile: CPU_BOUND_PROFILE,
        capacityRps: [[0, 10_000]],
        traffic: { baseRps: 1000 },
        backgroundRps: 0,
        noise: NO_NOISE,
      },
      1,
    );
    const config = { ...DEFAULT_OBSERVATION, scrapeIntervalSeconds: scrape, scrapeOffsetSeconds: offset };
    return { plant, observer: createObserver(config, 1, offset) };
  }

  it('scrapes at fractional phases read the counters interpolated between whole seconds', () => {
    const sim = linear(5, 2.5);
    run(sim, 0, 300, 10);
    // Scrapes at 2.5, 7.5, ...: 60 of them by t = 300 (the last at 297.5).
    expect(sim.observer.sampleCount).toBe(60);
    // [280, 300] holds the samples at 282.5 ... 297.5: 15 s sampled, 2.5 s to each edge, both within 1.1
    // intervals, so rate() extrapolates to the full 20 s: exactly 100/s.
    expect(value(sim.observer.query(300, 20).requestRate)).toBeCloseTo(100, 9);
  });

  it('rate() extrapolates only half an interval past samples far from the window end', () => {
    const sim = linear(30, 0);
    run(sim, 0, 300, 10);
    // Window [200, 300] at 30 s scrapes holds the samples at 210, 240, 270 and 300: 90 s sampled.
    const w = 100;
    const seen = value(sim.observer.query(300, w).requestRate);
    // 10 s to the start (< 33 s threshold): extrapolated in full; 0 s to the end: the full 100 s.
    expect(seen).toBeCloseTo(100, 9);
    // At 329 the newest sample (300) is 29 s old: within 1.1 intervals, so extrapolated to the end too.
    run(sim, 300, 329, 10);
    expect(value(sim.observer.query(329, w).requestRate)).toBeCloseTo(100, 9);
  });

  it('1 s scrapes: the production rate is production over the production window', () => {
    const sim = linear(1, 0);
    run(sim, 0, 60, 10);
    expect(value(sim.observer.query(60, 20, undefined, 3).productionRate)).toBeCloseTo(1000, 9);
  });

  it('the production rate is not asked for unless a production window is given', () => {
    const sim = linear(15, 0);
    run(sim, 0, 300, 10);
    expect(sim.observer.query(300, WINDOW).productionRate).toEqual(
      expect.objectContaining({ kind: 'absent', reason: 'NoSeries' }),
    );
  });

  it('the production rate fails with the rest during an outage, and is scraped through a target gap', () => {
    const plant = createPlant(
      {
        profile: CPU_BOUND_PROFILE,
        capacityRps: [[0, 10_000]],
        traffic: { baseRps: 1000 },
        backgroundRps: 0,
        noise: NO_NOISE,
      },
      1,
    );
    const observer = createObserver(
      {
        ...DEFAULT_OBSERVATION,
        scrapeOffsetSeconds: 0,
        outages: [{ startSeconds: 300, endSeconds: 400 }],
        scrapeGaps: [{ startSeconds: 500, endSeconds: 700 }],
      },
      1,
      0,
    );
    const sim = { plant, observer };
    run(sim, 0, 350, 10);
    expect(observer.query(350, WINDOW, undefined, 45).productionRate).toEqual(
      expect.objectContaining({ kind: 'absent', reason: 'QueryFailed' }),
    );
    run(sim, 350, 650, 10);
    const gap = observer.query(650, WINDOW, undefined, 45);
    expect(gap.signals.cpuUtilization).toEqual(
      expect.objectContaining({ kind: 'absent', reason: 'NoSeries' }),
    );
    expect(value(gap.productionRate)).toBeCloseTo(1000, 9);
  });

  it('Poisson production counts average to the production rate', () => {
    const plant = createPlant(
      {
        profile: CPU_BOUND_PROFILE,
        capacityRps: [[0, 10_000]],
        traffic: { baseRps: 2000 },
        backgroundRps: 0,
        noise: { poissonArrivals: true, cpuSigma: 0, latencySigma: 0, correlationSeconds: 30 },
      },
      3,
    );
    for (let t = 0; t < 1000; t++) plant.advance(t, 1, 10);
    // 2,000,000 expected; the sum of Poisson counts has sigma ~1,414.
    expect(Math.abs(plant.counters.production - 2_000_000)).toBeLessThan(7000);
    expect(plant.counters.production).not.toBe(2_000_000);
  });
});
