/**
 * What the reworked law adds: dead time from the observation timing, production feed-forward, the
 * proportional cut of a marginal breach, and trends judged against each signal's measured noise.
 */
import { describe, expect, it } from 'vitest';
import { type Decision, decide } from '../../src/core/decide.js';
import type { CoreState } from '../../src/core/state.js';
import type { ObservationTiming } from '../../src/core/types.js';
import { policy, run, type Step, sev, T0, value } from './helpers.js';

const P = policy();

/** Cycles of steady readings in the hold band (above the top-up threshold) at a steady production. */
const steadyAt = (cpu: number, production: number, n = 6): Step[] =>
  Array.from({ length: n }, () => ({ signals: sev({ cpu }), productionRate: value(production) }));

const raiseIndices = (ds: readonly Decision[]): number[] =>
  ds.flatMap((d, i) => (d.action === 'increase' ? [i] : []));

describe('dead time from the observation timing', () => {
  // Fast: 1 s scrapes, a 20 s window, 5 s cycles, 5 s propagation. Slow: every figure 15 times longer.
  const fast = {
    pol: policy({ max: 100, windowSeconds: 20, intervalSeconds: 5 }),
    obs: { scrapeIntervalSeconds: 1, propagationSeconds: 5 },
  };
  const slow = {
    pol: policy({ max: 100, windowSeconds: 300, intervalSeconds: 75 }),
    obs: { scrapeIntervalSeconds: 15, propagationSeconds: 75 },
  };
  const headroom: Step[] = Array.from({ length: 12 }, () => ({
    signals: sev({ cpu: 0.1, err: 0.1, lat: 0.1 }),
  }));

  it.each([
    ['1 s scrapes and a 20 s window', fast, 20],
    ['15 s scrapes, 75 s propagation and a 300 s window', slow, 300],
  ] as const)('raises settle for the lag plus half the window at %s', (_, scale, everyS) => {
    const { decisions } = run(scale.pol, 1, headroom, undefined, scale.obs);
    const raises = raiseIndices(decisions);
    // lag = propagation + scrape / 2, then half the window: 5.5 + 10 s (fast), 82.5 + 150 s (slow); the
    // next cycle after that is 4 intervals on, at both scales.
    expect(raises).toEqual([0, 4, 8]);
    expect(raises.map((i) => i * scale.pol.intervalSeconds)).toEqual([0, everyS, 2 * everyS]);
    for (const [i, d] of decisions.entries()) {
      if (!raises.includes(i)) expect(d.reason, d.message).toBe('Settling');
    }
  });

  it.each([
    ['fast', fast, 5 + 20 + 1],
    ['slow', slow, 75 + 300 + 15],
  ] as const)(
    'the derived cooldown at the %s scale is propagation + window + scrape',
    (_, scale, cooldownS) => {
      const cut: Step = { signals: sev({ cpu: 1.5 }) };
      const early = run(
        scale.pol,
        20,
        [cut, { signals: sev(), after: cooldownS - 1 }],
        undefined,
        scale.obs,
      ).last;
      expect(early.reason, early.message).toBe('Cooldown');
      const late = run(scale.pol, 20, [cut, { signals: sev(), after: cooldownS }], undefined, scale.obs).last;
      expect(late.reason, late.message).toBe('Headroom');
    },
  );

  it('an absent or nonsensical observation falls back to 15 s scrapes and 5 s propagation', () => {
    const steps: Step[] = [{ signals: sev({ cpu: 1.2 }) }, ...headroom.slice(0, 8)];
    const defaults = run(P, 20, steps, undefined, { scrapeIntervalSeconds: 15, propagationSeconds: 5 });
    const other = run(P, 20, steps, undefined, { scrapeIntervalSeconds: 1, propagationSeconds: 0 });
    const variants: Array<Partial<ObservationTiming> | undefined> = [
      undefined,
      {},
      { scrapeIntervalSeconds: Number.NaN, propagationSeconds: Number.POSITIVE_INFINITY },
    ];
    for (const obs of variants) {
      expect(run(P, 20, steps, undefined, obs).decisions).toEqual(defaults.decisions);
    }
    // The timing matters: a faster observation gives other decisions, so the comparison above is not empty.
    expect(other.decisions).not.toEqual(defaults.decisions);
  });
});

describe('production feed-forward', () => {
  it('production doubling under readings at the target is met by a decrease in the same cycle', () => {
    const { decisions } = run(P, 20, [
      ...steadyAt(0.96, 1000),
      { signals: sev({ cpu: 0.96 }), productionRate: value(2000) },
    ]);
    expect(decisions.slice(0, 6).every((d) => d.action === 'hold')).toBe(true);
    const d = decisions[6];
    expect(d?.reason, d?.message).toBe('FollowProduction');
    expect(d?.action).toBe('decrease');
    expect(d?.mode).toBe('FeedForward');
    // The readings reflect the mean production over their window (part of it already doubled): ×1.33,
    // projected to severity 1.28 at 20 %, brought back to the target 0.95.
    expect(d?.percent).toBe(14.84);
    expect(d?.message).toContain('production up');
  });

  it('production halving under readings in the band is followed up once three readings agree', () => {
    const low: Step[] = Array.from({ length: 3 }, () => ({
      signals: sev({ cpu: 0.9 }),
      productionRate: value(500),
    }));
    const { decisions } = run(P, 20, [...steadyAt(0.9, 1000), ...low]);
    // One or two low readings may be a missed scrape: no raise on them.
    expect(decisions.slice(6, 8).some((d) => d.action === 'increase')).toBe(false);
    const d = decisions[8];
    expect(d?.reason, d?.message).toBe('FollowProduction');
    expect(d?.action).toBe('increase');
    // The load of 20 % at 1000 req/s is 40 % at 500 req/s.
    expect(d?.percent).toBe(40);
    expect(d?.message).toContain('1000 -> 500 req/s');
  });

  it('following production up stops at maxPercent', () => {
    const low: Step[] = Array.from({ length: 3 }, () => ({
      signals: sev({ cpu: 0.9 }),
      productionRate: value(500),
    }));
    const d = run(policy({ max: 30 }), 20, [...steadyAt(0.9, 1000), ...low]).last;
    expect(d.reason, d.message).toBe('FollowProduction');
    expect(d.percent).toBe(30);
  });

  it('following production up spends the write budget and is withheld when it is spent', () => {
    const low: Step[] = Array.from({ length: 3 }, () => ({
      signals: sev({ cpu: 0.9 }),
      productionRate: value(500),
    }));
    // One raise an hour: the top-up in the band spends it, so the later follow-up must wait.
    const spent = run(policy({ control: { maxWritesPerHour: 1 } }), 20, [...steadyAt(0.9, 1000), ...low]);
    expect(spent.decisions.filter((d) => d.action === 'increase')).toHaveLength(1);
    expect(spent.last.reason, spent.last.message).toBe('WriteBudget');
    expect(spent.last.action).toBe('hold');
    const free = run(P, 20, [...steadyAt(0.9, 1000), ...low]).decisions;
    const up = free.find((d) => d.reason === 'FollowProduction' && d.action === 'increase');
    expect(up?.state.writesAgo[0]).toBe(0);
  });

  it('a single low production reading does not raise', () => {
    const { decisions } = run(P, 20, [
      ...steadyAt(0.96, 1000),
      { signals: sev({ cpu: 0.96 }), productionRate: value(300) },
      ...steadyAt(0.96, 1000, 3),
    ]);
    expect(
      decisions.every((d) => d.action === 'hold'),
      decisions.map((d) => d.message).join('\n'),
    ).toBe(true);
  });

  it('without a production rate the law runs on feedback alone, as it does with an unusable one', () => {
    const steps: Step[] = [
      { signals: sev({ cpu: 1.2 }) },
      { signals: sev(), after: 140 },
      { signals: sev({ cpu: 0.96 }) },
    ];
    const plain = run(P, 20, steps);
    expect(plain.decisions.every((d) => d.mode === 'FeedbackOnly')).toBe(true);
    expect(
      plain.decisions.every(
        (d) => (d.state as CoreState).basis === undefined && (d.state as CoreState).prod === undefined,
      ),
    ).toBe(true);
    for (const bad of [
      value(Number.NaN),
      value(0),
      value(-5),
      { kind: 'absent', reason: 'NoSeries' } as const,
    ]) {
      const withBad = run(
        P,
        20,
        steps.map((s) => ({ ...s, productionRate: bad })),
      );
      expect(withBad.decisions).toEqual(plain.decisions);
    }
    const fed = run(
      P,
      20,
      steps.map((s) => ({ ...s, productionRate: value(1000) })),
    );
    expect(fed.decisions.every((d) => d.mode === 'FeedForward')).toBe(true);
  });
});

describe('breaches near the limit', () => {
  it('a marginal breach after a reading within the limit is cut in proportion, not by 30 %', () => {
    const d = run(
      P,
      20,
      [0.94, 0.97, 0.94, 0.97, 0.94, 0.97, 1.01].map((cpu) => ({ signals: sev({ cpu }) })),
    ).last;
    expect(d.reason, d.message).toBe('GuardrailBreached');
    // 20 * 0.95 / 1.01 = 18.81; the old law cut to 14.
    expect(d.percent).toBe(18.81);
  });

  it('the same reading after quiet readings is a jump beyond the noise: extrapolated and cut in full', () => {
    const d = run(
      P,
      20,
      [0.96, 0.96, 0.96, 0.96, 0.96, 0.96, 1.01].map((cpu) => ({ signals: sev({ cpu }) })),
    ).last;
    expect(d.reason, d.message).toBe('GuardrailBreached');
    expect(d.message).toContain('estimated 1.16');
    expect(d.percent).toBe(14);
  });

  it('a marginal breach with no reading before it still cuts by 30 %', () => {
    const d = run(P, 20, [{ signals: sev({ cpu: 1.04 }) }]).last;
    expect(d.percent).toBe(14);
  });
});

describe('trends against the measured noise', () => {
  it('readings alternating by ±2.5 % around a slow rise are noise: no ease', () => {
    const cpus = [0.9, 0.95, 0.91, 0.96, 0.92, 0.97, 0.93, 0.975];
    const { decisions } = run(
      P,
      20,
      cpus.map((cpu) => ({ signals: sev({ cpu }) })),
    );
    expect(
      decisions.every((d) => d.action === 'hold'),
      decisions.map((d) => d.message).join('\n'),
    ).toBe(true);
    expect((decisions.at(-1)?.state as CoreState | undefined)?.noise?.[0]).toBeGreaterThan(0.02);
  });

  it('the same rise without the alternation is a drift: eased before the limit', () => {
    const cpus = [0.93, 0.935, 0.94, 0.945, 0.95, 0.955, 0.96, 0.965];
    const d = run(
      P,
      20,
      cpus.map((cpu) => ({ signals: sev({ cpu }) })),
    ).last;
    expect(d.action, d.message).toBe('decrease');
    expect(d.message).toContain('rising at a steady');
  });
});

describe('decide with extreme inputs', () => {
  it('never throws or returns NaN for nonsense timings and production rates', () => {
    const timings = [0, -1, Number.NaN, 1e9, Number.POSITIVE_INFINITY, 1e-9];
    for (const scrape of timings) {
      for (const prop of timings) {
        for (const rate of [Number.NaN, 0, -1, 1e-300, 1e300, 500]) {
          const d = decide({
            now: T0,
            policy: P,
            currentPercent: 20,
            signals: sev({ cpu: 0.5 }),
            productionRate: value(rate),
            observation: { scrapeIntervalSeconds: scrape, propagationSeconds: prop },
            state: undefined,
          });
          expect(Number.isFinite(d.percent)).toBe(true);
        }
      }
    }
  });
});

describe('production noise', () => {
  // Production with ±4 % noise around 1000 req/s, one reading a cycle (deterministic pattern).
  const jitter = [0, 0.03, -0.01, 0.04, 0.01, -0.03, 0.02, -0.04, 0.0, 0.035, -0.02, 0.04, -0.035, 0.01];
  const noisy = (cpu: number, from = 0): Step[] =>
    jitter.slice(from).map((j) => ({ signals: sev({ cpu }), productionRate: value(1000 * (1 + j)) }));

  it('is measured from successive production readings and kept in the state', () => {
    const { last } = run(P, 20, noisy(0.9));
    const n = (last.state as CoreState).prodNoise;
    expect(n).toBeGreaterThan(0.01);
    expect(n).toBeLessThan(0.06);
  });

  it('is not followed: production noise of ±8 % moves nothing once it is measured', () => {
    // Twice the pattern's amplitude: three readings in a row then often sit several per cent off the
    // production the percentage was set at, which a fixed threshold of 3 % / 5 % would follow.
    const loud = (cpu: number): Step[] =>
      jitter.map((j) => ({ signals: sev({ cpu }), productionRate: value(1000 * (1 + 2 * j)) }));
    const { decisions } = run(P, 20, [...loud(0.9), ...loud(0.9), ...loud(0.9)]);
    const follows = decisions.slice(jitter.length).filter((d) => d.reason === 'FollowProduction');
    expect(follows, follows.map((d) => d.message).join('\n')).toHaveLength(0);
  });

  it('a surge well beyond the noise is still met by the second reading that shows it', () => {
    // Each production reading is a rate over 60 s here (30 s cycles, 120 s window): the first one of the
    // surge is half old traffic, within four times the noise; the second is not.
    const surge: Step[] = [1300, 1800, 2500].map((rps) => ({
      signals: sev({ cpu: 0.9 }),
      productionRate: value(rps),
    }));
    const { decisions } = run(P, 20, [...noisy(0.9), ...surge]);
    const second = decisions[jitter.length + 1];
    expect(second?.action, second?.message).toBe('decrease');
    expect(second?.reason).toBe('FollowProduction');
    // Production about doubled against the readings' window: the percentage about halves.
    expect(second?.percent).toBeLessThan(12);
  });

  it('a two-reading rise within the noise is not carried forward as a surge', () => {
    // Noise of ±4 % measured first; then +3 %, +3 %: a rise of that noise, taken as read. Carried forward
    // over the lead (a rate over 60 s trails by half of it, and the next write lands a cycle later) it
    // would put CPU 0.93 past the limit and ease for nothing.
    const rise: Step[] = [1000, 1030, 1060].map((rps) => ({
      signals: sev({ cpu: 0.93 }),
      productionRate: value(rps),
    }));
    const { decisions } = run(P, 20, [...noisy(0.93), ...noisy(0.93), ...rise]);
    const tail = decisions.slice(-3);
    expect(
      tail.every((d) => d.action !== 'decrease'),
      tail.map((d) => d.message).join('\n'),
    ).toBe(true);
  });

  it('readings in the band under production noise still count as settled: the top-up is made', () => {
    // CPU 0.82 (low in the band) while production wanders by ±4 %: without production noise three
    // readings at one percentage would top up; with it they must too.
    const { decisions } = run(P, 20, noisy(0.82));
    const up = decisions.find((d) => d.action === 'increase');
    expect(up?.reason, decisions.map((d) => d.message).join('\n')).toBe('Headroom');
    expect(up?.percent).toBeGreaterThan(20);
  });
});

describe('after a deep cut', () => {
  it('does not ease on the climb of readings whose window still holds the overload', () => {
    // 1 s scrapes, 5 s cycles, a 20 s window. p99 breaks at 15.42 %: cut to 7.71 %. CPU read saturated
    // during the overload (0.99), and, carried down to 7.71 %, the readings climb back as the window
    // clears (0.8, 0.84, ...): no drift, and no reason to ease below a level that is safe.
    const pol = policy({ windowSeconds: 20, intervalSeconds: 5, max: 40 });
    const obs: Partial<ObservationTiming> = { scrapeIntervalSeconds: 1, propagationSeconds: 5 };
    const steady: Step[] = Array.from({ length: 10 }, () => ({ signals: sev({ cpu: 0.9, lat: 0.5 }) }));
    const after: Step[] = [
      { signals: sev({ cpu: 0.94, lat: 40 }) },
      ...[0.99, 0.99, 0.95, 0.8, 0.84, 0.86, 0.87].map((cpu) => ({ signals: sev({ cpu, lat: 0.4 }) })),
    ];
    const { decisions } = run(pol, 13.92, [...steady, ...after], undefined, obs);
    const cutAt = decisions.findIndex((d) => d.reason === 'GuardrailBreached');
    expect(decisions[cutAt]?.percent).toBe(7.71);
    const later = decisions.slice(cutAt + 1);
    expect(
      later.every((d) => d.action !== 'decrease'),
      later.map((d) => d.message).join('\n'),
    ).toBe(true);
  });
});
