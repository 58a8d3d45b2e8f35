import { describe, expect, it } from 'vitest';
import {
  familyScrapeInterval,
  resolveObservation,
  resolveScrapeInterval,
  ScrapeIntervalMemory,
  workloadScrapeInterval,
} from '../../src/signals/scrape.js';

describe('resolveScrapeInterval: policy, then learned, then default', () => {
  const rows = [
    { name: 'policy wins over learned', policy: 20, learned: 5, want: { seconds: 20, source: 'policy' } },
    {
      name: 'learned without a policy value',
      policy: undefined,
      learned: 5,
      want: { seconds: 5, source: 'learned' },
    },
    {
      name: 'default when neither',
      policy: undefined,
      learned: undefined,
      want: { seconds: 15, source: 'default' },
    },
    {
      name: 'a nonsense learned value is not used',
      policy: undefined,
      learned: Number.NaN,
      want: { seconds: 15, source: 'default' },
    },
    { name: 'zero is not an interval', policy: 0, learned: 30, want: { seconds: 30, source: 'learned' } },
  ] as const;
  it.each(rows)('$name', ({ policy, learned, want }) => {
    expect(resolveScrapeInterval(policy, learned)).toEqual(want);
  });
});

describe('resolveObservation', () => {
  it('propagation from the policy, else 5 s; the scrape interval as resolved', () => {
    expect(
      resolveObservation({ observation: { propagationSeconds: 0 } }, { seconds: 30, source: 'learned' }),
    ).toEqual({
      timing: { scrapeIntervalSeconds: 30, propagationSeconds: 0 },
      scrapeIntervalSource: 'learned',
      propagationSource: 'policy',
    });
    expect(resolveObservation({}, undefined)).toEqual({
      timing: { scrapeIntervalSeconds: 15, propagationSeconds: 5 },
      scrapeIntervalSource: 'default',
      propagationSource: 'default',
    });
    expect(resolveObservation({ observation: { scrapeIntervalSeconds: 10 } }, undefined).timing).toEqual({
      scrapeIntervalSeconds: 10,
      propagationSeconds: 5,
    });
    // The policy's interval wins over whatever the source learned.
    expect(
      resolveObservation({ observation: { scrapeIntervalSeconds: 10 } }, { seconds: 30, source: 'learned' }),
    ).toMatchObject({ timing: { scrapeIntervalSeconds: 10 }, scrapeIntervalSource: 'policy' });
  });
});

describe('familyScrapeInterval: the largest whole second the bound and the count allow', () => {
  const rows = [
    { name: '15 s, window start on a sample', bound: { upper: 15, samples: 61 }, want: 15 },
    { name: '15 s, window start between samples', bound: { upper: 15.2, samples: 60 }, want: 15 },
    { name: '30 s at the loosest bound', bound: { upper: 30.9, samples: 30 }, want: 30 },
    { name: '30 s, a bound a second long', bound: { upper: 31.02, samples: 30 }, want: 31 },
    { name: '2.5 s: no whole second fits', bound: { upper: 2.504, samples: 360 }, want: 2.5 },
    { name: 'no count: the bound itself', bound: { upper: 5 }, want: 5 },
    { name: 'no bound', bound: { samples: 60 }, want: undefined },
    { name: 'a nonsense bound', bound: { upper: Number.POSITIVE_INFINITY, samples: 2 }, want: undefined },
  ] as const;
  it.each(rows)('$name', ({ bound, want }) => {
    expect(familyScrapeInterval(bound)).toBe(want);
  });
});

describe('workloadScrapeInterval', () => {
  it('takes the slower family', () => {
    expect(
      workloadScrapeInterval({ istio: { upper: 5, samples: 181 }, cpu: { upper: 30, samples: 31 } }),
    ).toBe(30);
    expect(workloadScrapeInterval({ cpu: { upper: 5, samples: 181 } })).toBe(5);
    expect(workloadScrapeInterval({})).toBeUndefined();
    expect(workloadScrapeInterval(undefined)).toBeUndefined();
  });
});

describe('ScrapeIntervalMemory', () => {
  const a = { namespace: 'shop', workload: 'a' };
  const b = { namespace: 'shop', workload: 'b' };

  it('learns at start, every relearn period, and a failure again after the retry period', () => {
    const m = new ScrapeIntervalMemory(600, 60);
    expect(m.due([a, b, a], 0)).toEqual([a, b]);
    m.record(a, 15, 0);
    m.record(b, undefined, 0);
    expect(m.due([a, b], 59_000)).toEqual([]);
    expect(m.due([a, b], 60_000)).toEqual([b]);
    m.record(b, 30, 60_000);
    expect(m.due([a, b], 599_000)).toEqual([]);
    expect(m.due([a, b], 600_000)).toEqual([a]);
    // A failed re-learning keeps what was learned.
    m.record(a, undefined, 600_000);
    expect(m.get(a)).toBe(15);
    expect(m.get(b)).toBe(30);
  });

  it('a clock that jumps back does not postpone learning', () => {
    const m = new ScrapeIntervalMemory(600, 60);
    m.due([a], 10_000_000);
    m.record(a, 15, 10_000_000);
    expect(m.due([a], 0)).toEqual([a]);
  });

  it('forgets workloads no request asked about for an hour', () => {
    const m = new ScrapeIntervalMemory(600, 60);
    m.due([a, b], 0);
    m.record(a, 15, 0);
    m.record(b, 15, 0);
    expect(m.size).toBe(2);
    m.due([a], 3_601_000);
    expect(m.size).toBe(1);
    expect(m.get(b)).toBeUndefined();
  });
});
