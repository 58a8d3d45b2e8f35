import { describe, expect, it } from 'vitest';
import { episodes, formatBacktestTable, formatSeconds } from '../../src/backtest/format.js';
import type { History } from '../../src/backtest/history.js';
import { replay } from '../../src/backtest/replay.js';
import type { BacktestResult, SignalFit } from '../../src/backtest/types.js';
import { DEFAULT_CONTROL } from '../../src/core/defaults.js';
import type { ControlPolicy } from '../../src/core/types.js';

const STEP = 30;
const T0 = 1_764_000_000;

const POLICY: ControlPolicy = {
  bounds: { minPercent: 1, maxPercent: 100 },
  guardrails: { cpuUtilization: 0.8, latencyP99Ms: 400 },
  intervalSeconds: 30,
  windowSeconds: 120,
  control: DEFAULT_CONTROL,
};

/** CPU 0.1 idle, 0.8 at 100 req/s mirrored. */
const CPU_FIT: SignalFit = {
  signal: 'cpuUtilization',
  limit: 0.8,
  intercept: 0.1,
  slope: 0.007,
  r2: 0.99,
  points: 1000,
  rpsRange: [10, 150],
  capacityRps: 100,
  trusted: true,
};
/** p99 30 ms idle, 400 ms at 200 req/s. */
const LATENCY_FIT: SignalFit = {
  signal: 'latencyP99Ms',
  limit: 400,
  intercept: 30,
  slope: 1.85,
  r2: 0.9,
  points: 1000,
  rpsRange: [10, 150],
  capacityRps: 200,
  trusted: true,
};

function history(
  steps: number,
  o: { production?: (i: number) => number | null; percent?: number; gaps?: [number, number] } = {},
): History {
  const times = Array.from({ length: steps }, (_, i) => T0 + i * STEP);
  const production = times.map((_, i) =>
    o.gaps !== undefined && i >= o.gaps[0] && i < o.gaps[1] ? null : (o.production?.(i) ?? 1000),
  );
  const percent = o.percent ?? 20;
  const mirrored = production.map((p) => (p === null ? null : (p * percent) / 100));
  return {
    times,
    stepSeconds: STEP,
    productionRps: production,
    actualPercent: times.map(() => percent),
    percentSource: 'metric',
    mirroredRps: mirrored,
    signals: {
      cpuUtilization: mirrored.map((m) => (m === null ? null : 0.1 + 0.007 * m)),
      latencyP99Ms: mirrored.map((m) => (m === null ? null : 30 + 1.85 * m)),
    },
    warnings: [],
  };
}

const last = <T>(xs: readonly T[]): T => {
  const x = xs[xs.length - 1];
  if (x === undefined) throw new Error('empty');
  return x;
};

describe('replay', () => {
  const rows = [
    {
      name: 'actual percentage over capacity: cuts to about the capacity',
      percent: 20,
      check: (p: number) => p < 10.5 && p > 6,
    },
    {
      name: 'actual percentage far below capacity: raises toward it',
      percent: 2,
      check: (p: number) => p > 6 && p < 10.5,
    },
  ];
  it.each(rows)('$name', ({ percent, check }) => {
    const out = replay({ policy: POLICY, history: history(240, { percent }), fits: [CPU_FIT, LATENCY_FIT] });
    const end = last(out.points).wouldBePercent;
    expect(check(end), `ended at ${end} %`).toBe(true);
    // Once settled, the model says the would-be percentage stays inside the guardrails.
    expect(out.points.slice(-60).every((p) => p.breaches.length === 0)).toBe(true);
    expect(out.summary.actualBreachSeconds).toBe(percent === 20 ? 240 * STEP : 0);
  });

  it('carries the state: every point follows the previous decision, within bounds', () => {
    const out = replay({ policy: POLICY, history: history(120), fits: [CPU_FIT, LATENCY_FIT] });
    for (const p of out.points) {
      expect(p.wouldBePercent).toBeGreaterThanOrEqual(POLICY.bounds.minPercent);
      expect(p.wouldBePercent).toBeLessThanOrEqual(POLICY.bounds.maxPercent);
    }
    const changes = out.points.filter(
      (p, i) => i > 0 && p.wouldBePercent !== out.points[i - 1]?.wouldBePercent,
    );
    expect(changes.every((p) => p.action !== 'hold')).toBe(true);
  });

  it('is deterministic', () => {
    const input = {
      policy: POLICY,
      history: history(200, { production: (i) => 800 + 3 * i }),
      fits: [CPU_FIT, LATENCY_FIT],
    };
    expect(replay(input)).toEqual(replay(input));
  });

  it('fills the summary from the points', () => {
    const out = replay({ policy: POLICY, history: history(200), fits: [CPU_FIT, LATENCY_FIT] });
    const s = out.summary;
    expect(s.writes).toBe(out.points.filter((p) => p.action !== 'hold').length);
    expect(s.decreases + s.increases).toBe(s.writes);
    const wouldBe = out.points.reduce((sum, p) => sum + (p.wouldBeMirroredRps ?? 0) * STEP, 0);
    expect(s.wouldBeMirroredRequests).toBe(Math.round(wouldBe));
    expect(s.actualMirroredRequests).toBe(200 * 200 * STEP);
    expect(s.estimatedBreachSeconds).toBe(out.points.filter((p) => p.breaches.length > 0).length * STEP);
    for (const p of out.points) {
      expect(p.wouldBeMirroredRps).toBeCloseTo(((p.productionRps ?? 0) * p.wouldBePercent) / 100, 5);
    }
  });

  it('gives the core absent signals where production has no data: it holds, then decays', () => {
    const out = replay({
      policy: POLICY,
      history: history(200, { percent: 8, gaps: [60, 100] }),
      fits: [CPU_FIT, LATENCY_FIT],
    });
    const gap = out.points.slice(60, 100);
    expect(gap.every((p) => p.productionRps === null && p.wouldBeMirroredRps === null)).toBe(true);
    expect(gap.every((p) => Object.keys(p.predicted).length === 0 && p.action !== 'increase')).toBe(true);
    expect(gap.slice(0, 9).every((p) => p.reason === 'NoData')).toBe(true);
    // After blindHoldSeconds (300 s = 10 steps) without data, it decays toward minPercent.
    expect(gap.slice(10, 14).every((p) => p.reason === 'BlindDecay')).toBe(true);
    expect(last(gap).wouldBePercent).toBe(POLICY.bounds.minPercent);
    expect(out.warnings.join('\n')).toMatch(/no data for 40 of 200 steps \(20 %\)/);
  });

  it('feeds the historical production rate forward wherever it is known, and falls back to feedback elsewhere', () => {
    const full = replay({ policy: POLICY, history: history(60), fits: [CPU_FIT, LATENCY_FIT] });
    expect(full.feedForwardSteps).toBe(60);
    const gappy = replay({
      policy: POLICY,
      history: history(60, { gaps: [10, 25], production: (i) => (i >= 50 ? 0 : 1000) }),
      fits: [CPU_FIT, LATENCY_FIT],
    });
    // 15 steps without data and 10 without production traffic decide on feedback alone.
    expect(gappy.feedForwardSteps).toBe(35);
  });

  it("replays with the policy's observation timing, or the one it is given", () => {
    const input = { history: history(120, { percent: 2 }), fits: [CPU_FIT, LATENCY_FIT] };
    const slow = { scrapeIntervalSeconds: 60, propagationSeconds: 30 };
    const given = replay({ ...input, policy: POLICY, observation: slow });
    const fromPolicy = replay({
      ...input,
      policy: { ...POLICY, observation: { scrapeIntervalSeconds: 60, propagationSeconds: 30 } },
    });
    expect(fromPolicy.points).toEqual(given.points);
    // The same history under the default timing is a different replay: the timing reaches the core.
    const defaults = replay({ ...input, policy: POLICY });
    expect(defaults.points.map((p) => p.wouldBePercent)).not.toEqual(
      given.points.map((p) => p.wouldBePercent),
    );
  });

  it('without traffic, CPU still speaks and error rate and latency are NoTraffic', () => {
    const out = replay({
      policy: POLICY,
      history: history(60, { production: () => 0 }),
      fits: [CPU_FIT, LATENCY_FIT],
    });
    expect(out.points.every((p) => Object.keys(p.predicted).join() === 'cpuUtilization')).toBe(true);
    expect(out.points.every((p) => p.reason !== 'BlindDecay')).toBe(true);
  });

  const warningRows = [
    {
      name: 'an untrusted fit is used, with a warning',
      fits: [{ ...CPU_FIT, trusted: false, why: 'the mirrored rate hardly varied' }],
      warning:
        /cpuUtilization: the fit is not trusted: the mirrored rate hardly varied\. The replay uses it anyway/,
    },
    {
      name: 'a fit without points leaves the signal missing',
      fits: [CPU_FIT, { ...LATENCY_FIT, points: 0, trusted: false, why: 'only 0 time steps' }],
      warning: /latencyP99Ms: the history has no points to model it/,
    },
    {
      name: 'rates far beyond the history are flagged as extrapolated',
      fits: [{ ...CPU_FIT, slope: 0.0001, rpsRange: [10, 20] as const }],
      warning: /beyond the 20 req\/s seen in the history/,
    },
  ];
  it.each(warningRows)('$name', ({ fits, warning }) => {
    const out = replay({ policy: POLICY, history: history(200), fits });
    expect(out.warnings.join('\n')).toMatch(warning);
  });
});

describe('table output', () => {
  const out = replay({
    policy: POLICY,
    history: history(240, { percent: 20 }),
    fits: [CPU_FIT, LATENCY_FIT],
  });
  const result: BacktestResult = {
    policy: 'checkout',
    route: 'VirtualService shop/checkout',
    from: T0,
    to: T0 + 239 * STEP,
    stepSeconds: STEP,
    percentSource: 'metric',
    fits: [CPU_FIT, { ...LATENCY_FIT, trusted: false, why: 'r2 too low' }],
    capacityRps: 100,
    points: out.points,
    summary: out.summary,
    warnings: ['a warning'],
  };

  it('summarises, lists the fits and where it would have cut', () => {
    const text = formatBacktestTable(result);
    expect(text).toContain('Backtest of policy checkout (VirtualService shop/checkout)');
    expect(text).toContain('Capacity of the mirror target: 100 req/s mirrored (cpuUtilization reaches 0.8)');
    expect(text).toMatch(/cpuUtilization\s+0\.8\s+0\.1\s+0\.007\s+0\.99\s+1000\s+10-150\s+100 req\/s\s+yes/);
    expect(text).toMatch(/latencyP99Ms .* no: r2 too low/);
    expect(text).toMatch(/cut\s+20% -> \d+(\.\d+)?%/);
    expect(text).toContain('time over a guardrail  2h (observed)');
    expect(text).toContain('  - a warning');
  });

  it('groups consecutive changes into episodes', () => {
    const eps = episodes(result.points);
    expect(eps.length).toBeGreaterThan(0);
    expect(eps[0]).toMatchObject({ action: 'decrease', fromPercent: 20 });
    expect(eps.reduce((n, e) => n + e.writes, 0)).toBe(result.summary.writes);
  });

  const seconds = [
    { name: 'seconds', s: 45, text: '45s' },
    { name: 'minutes', s: 330, text: '5m 30s' },
    { name: 'hours', s: 7500, text: '2h 5m' },
  ];
  it.each(seconds)('formats durations: $name', ({ s, text }) => {
    expect(formatSeconds(s)).toBe(text);
  });
});
