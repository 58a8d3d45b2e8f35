import { describe, expect, it } from 'vitest';
import { backtestHistory } from '../../src/backtest/backtest.js';
import { type History, mirrorRatio, present } from '../../src/backtest/history.js';
import { parsePolicy } from '../../src/policy/index.js';

const STEP = 30;
const T0 = 1_764_000_000;

function history(
  n: number,
  o: { received?: number; percent?: number | null; production?: number | null } = {},
): History {
  const times = Array.from({ length: n }, (_, i) => T0 + i * STEP);
  const production = o.production === undefined ? 1000 : o.production;
  const percent = o.percent === undefined ? 10 : o.percent;
  const share = o.received ?? 1;
  const mirrored = times.map((_, i) =>
    production === null || percent === null
      ? null
      : ((production * percent) / 100) * share * (1 + 0.5 * Math.sin(i / 7)),
  );
  const rates = times.map((_, i) => (production === null ? null : production * (1 + 0.5 * Math.sin(i / 7))));
  return {
    times,
    stepSeconds: STEP,
    productionRps: rates,
    actualPercent: times.map(() => percent),
    percentSource: 'metric',
    mirroredRps: mirrored,
    signals: { cpuUtilization: mirrored.map((m) => (m === null ? null : 0.1 + 0.007 * m)) },
    warnings: ['from the reader'],
  };
}

describe('mirrorRatio', () => {
  const rows = [
    { name: 'the target gets what the route mirrors', h: history(50), expected: 1 },
    { name: 'the target gets twice as much', h: history(50, { received: 2 }), expected: 2 },
    { name: 'no percentage known', h: history(50, { percent: null }), expected: undefined },
    { name: 'no production traffic', h: history(50, { production: 0 }), expected: undefined },
  ];
  it.each(rows)('$name', ({ h, expected }) => {
    const r = mirrorRatio(h);
    if (expected === undefined) expect(r).toBeUndefined();
    else expect(r).toBeCloseTo(expected, 9);
  });
});

describe('present', () => {
  it('counts the steps with a value', () => {
    expect(present([1, null, 0, null])).toBe(2);
  });
});

describe('backtestHistory', () => {
  const { policy } = parsePolicy(
    `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata: { name: checkout }
spec:
  virtualService: { name: checkout, namespace: shop }
  target: { host: checkout-shadow.shop.svc.cluster.local, workload: checkout-shadow }
  bounds: { minPercent: 1, maxPercent: 100 }
  guardrails: { cpuUtilization: 0.8 }
  interval: 30s
  window: 2m
`,
    'checkout.yaml',
  );
  if (policy === undefined) throw new Error('test policy does not load');
  const range = { from: T0, to: T0 + 199 * STEP };

  const rows = [
    {
      name: 'a consistent history gives no consistency warning',
      h: history(200),
      warning: undefined,
    },
    {
      name: 'a target that gets far more than production * percent is flagged',
      h: history(200, { received: 3 }),
      warning: /The target received 300 % of production traffic times the percentage in effect/,
    },
    {
      name: 'a step other than the interval is flagged',
      h: { ...history(200), stepSeconds: 60 },
      warning: /decides every 60 s \(--step\) while the policy's interval is 30 s/,
    },
  ];
  it.each(rows)('$name', ({ h, warning }) => {
    const result = backtestHistory(policy, h, range);
    const text = result.warnings.join('\n');
    expect(result.warnings[0]).toBe('from the reader');
    if (warning === undefined) expect(text).not.toMatch(/The target received|--step/);
    else expect(text).toMatch(warning);
  });

  it('puts the fits, the capacity and the replay into one result', () => {
    const result = backtestHistory(policy, history(200), range);
    expect(result).toMatchObject({
      policy: 'checkout',
      route: 'VirtualService shop/checkout',
      from: range.from,
      to: range.to,
      stepSeconds: STEP,
      percentSource: 'metric',
    });
    expect(result.fits.map((f) => f.signal)).toEqual(['cpuUtilization']);
    expect(result.capacityRps).toBeCloseTo(100, 6);
    expect(result.points).toHaveLength(200);
  });
});
