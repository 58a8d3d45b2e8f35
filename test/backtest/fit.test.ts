import { linearRegression } from 'simple-statistics';
import { describe, expect, it } from 'vitest';
import { capacityOf, cleanPoints, fitSignal, predict, robustLine } from '../../src/backtest/fit.js';
import type { SignalFit } from '../../src/backtest/types.js';
import { createRandom } from '../../src/sim/random.js';

/** rps from 10 to 150 in n steps. */
function rates(n: number, from = 10, to = 150): number[] {
  return Array.from({ length: n }, (_, i) => from + ((to - from) * i) / Math.max(1, n - 1));
}

describe('robustLine', () => {
  it('recovers an exact line', () => {
    const xs = rates(50);
    const line = robustLine(
      xs,
      xs.map((x) => 0.1 + 0.007 * x),
    );
    expect(line.slope).toBeCloseTo(0.007, 9);
    expect(line.intercept).toBeCloseTo(0.1, 9);
  });

  it('ignores gross outliers that pull ordinary least squares away', () => {
    const random = createRandom(7);
    const xs = rates(400);
    const ys = xs.map((x, i) => 0.1 + 0.007 * x + 0.01 * random.normal() + (i % 10 === 3 ? 1.5 : 0));
    const robust = robustLine(xs, ys);
    const ols = linearRegression(xs.map((x, i) => [x, ys[i] ?? 0]));
    expect(Math.abs(robust.intercept - 0.1)).toBeLessThan(0.02);
    expect(Math.abs(robust.slope - 0.007) / 0.007).toBeLessThan(0.03);
    // The same data moves the least-squares intercept by about the outliers' mean share (0.15).
    expect(Math.abs(ols.b - 0.1)).toBeGreaterThan(0.1);
  });
});

describe('cleanPoints', () => {
  it('drops missing, non-finite, negative and idle steps and counts each kind', () => {
    const c = cleanPoints(
      [1, null, Number.NaN, -2, 0, 3, Number.POSITIVE_INFINITY, 4],
      [1, 1, 1, 1, 1, -1, 1, 2],
    );
    expect(c).toEqual({ xs: [1, 4], ys: [1, 2], missing: 3, negative: 2, idle: 1 });
  });
});

describe('fitSignal', () => {
  const random = createRandom(11);
  const xs = rates(200);
  const cpu = xs.map((x) => 0.1 + 0.007 * x + 0.005 * random.normal());
  const rows: ReadonlyArray<{
    name: string;
    rps: (number | null)[];
    values: (number | null)[];
    limit: number;
    trusted: boolean;
    why?: RegExp;
    capacity?: number | null;
  }> = [
    {
      name: 'a clean linear signal is trusted',
      rps: xs,
      values: cpu,
      limit: 0.8,
      trusted: true,
      capacity: 100,
    },
    {
      name: 'too few points',
      rps: xs.slice(0, 5),
      values: cpu.slice(0, 5),
      limit: 0.8,
      trusted: false,
      why: /only 5 time steps .* at least 20/,
    },
    {
      name: 'too little variation in the rate',
      rps: xs.map((_, i) => 100 + (i % 3)),
      values: cpu,
      limit: 0.8,
      trusted: false,
      why: /hardly varied \(5th to 95th percentile 100 to 102 req\/s\)/,
    },
    {
      name: 'a signal that does not rise with load',
      rps: xs,
      values: xs.map(() => 0),
      limit: 0.02,
      trusted: false,
      why: /does not rise with the mirrored rate/,
      capacity: null,
    },
    {
      name: 'noise that the line does not explain',
      rps: xs,
      values: xs.map((x, i) => 0.001 * x + (i % 2 === 0 ? 0.5 : 0)),
      limit: 0.8,
      trusted: false,
      why: /explains only \d+ % of the variation/,
    },
    {
      name: 'NaN, Inf, negative and no-traffic steps are left out',
      rps: [...xs, Number.NaN, -5, 0, null],
      values: [...cpu, 0.5, 0.5, 0.1, 0.5],
      limit: 0.8,
      trusted: true,
      capacity: 100,
    },
  ];
  it.each(rows)('$name', (row) => {
    const fit = fitSignal('cpuUtilization', row.limit, row.rps, row.values);
    expect(fit.trusted).toBe(row.trusted);
    if (row.why !== undefined) expect(fit.why).toMatch(row.why);
    else expect(fit.why).toBeUndefined();
    if (row.capacity === null) expect(fit.capacityRps).toBeNull();
    else if (row.capacity !== undefined) {
      expect(Math.abs((fit.capacityRps ?? 0) - row.capacity) / row.capacity).toBeLessThan(0.03);
    }
    expect(Number.isFinite(fit.intercept) && Number.isFinite(fit.slope) && Number.isFinite(fit.r2)).toBe(
      true,
    );
  });

  it('reports points, rate range and r2 of what it fitted', () => {
    const fit = fitSignal('cpuUtilization', 0.8, [...xs, 0, Number.NaN], [...cpu, 0.1, 0.2]);
    expect(fit.points).toBe(200);
    expect(fit.rpsRange).toEqual([10, 150]);
    expect(fit.r2).toBeGreaterThan(0.95);
    expect(fit.r2).toBeLessThanOrEqual(1);
  });

  it('says the capacity is 0 when the signal is over its limit even without load', () => {
    const fit = fitSignal(
      'latencyP99Ms',
      100,
      xs,
      xs.map((x) => 200 + x),
    );
    expect(fit.capacityRps).toBe(0);
  });

  it('survives no points at all', () => {
    const fit = fitSignal('errorRate', 0.02, [], []);
    expect(fit).toMatchObject({ points: 0, trusted: false, capacityRps: null, rpsRange: [0, 0] });
  });
});

describe('predict', () => {
  const rows = [
    { name: 'on the line', signal: 'cpuUtilization', rps: 50, expected: 0.45 },
    { name: 'never below 0', signal: 'cpuUtilization', rps: -100, expected: 0 },
    { name: 'an error rate is at most 1', signal: 'errorRate', rps: 1000, expected: 1 },
  ] as const;
  it.each(rows)('$name', ({ signal, rps, expected }) => {
    expect(predict({ signal, intercept: 0.1, slope: 0.007 }, rps)).toBeCloseTo(expected, 9);
  });
});

describe('capacityOf', () => {
  const makeFit = (o: Partial<SignalFit>): SignalFit => ({
    signal: 'cpuUtilization',
    limit: 1,
    intercept: 0,
    slope: 1,
    r2: 1,
    points: 100,
    rpsRange: [1, 2],
    capacityRps: 1,
    trusted: true,
    ...o,
  });
  const rows = [
    {
      name: 'the lowest trusted capacity',
      fits: [makeFit({ capacityRps: 120 }), makeFit({ capacityRps: 90 })],
      expected: 90,
    },
    {
      name: 'untrusted fits do not count',
      fits: [makeFit({ capacityRps: 120 }), makeFit({ capacityRps: 10, trusted: false })],
      expected: 120,
    },
    { name: 'none reaches its limit', fits: [makeFit({ capacityRps: null })], expected: null },
  ];
  it.each(rows)('$name', ({ fits, expected }) => {
    expect(capacityOf(fits)).toBe(expected);
  });
});
