import { describe, expect, it } from 'vitest';
import { histogramQuantile, promRate } from '../../src/sim/promql.js';

describe('promRate', () => {
  const every15 = (n: number, start: number) => Array.from({ length: n }, (_, i) => start + 15 * i);
  const rows = [
    {
      name: 'steady counter, window fully covered',
      times: every15(9, 0),
      values: every15(9, 0).map((t) => 1000 + 10 * t),
      end: 120,
      range: 120,
      want: 10,
    },
    {
      name: 'samples offset from the window edges extrapolate to the edges',
      times: every15(8, 7),
      values: every15(8, 7).map((t) => 1000 + 4 * t),
      end: 120,
      range: 120,
      want: 4,
    },
    {
      name: 'counter reset is added back',
      times: [0, 15, 30, 45],
      values: [100, 250, 50, 200],
      end: 45,
      range: 45,
      // +150, then a reset (50 counted from zero), then +150: 350 in 45 s.
      want: 350 / 45,
    },
    {
      name: 'a young counter is not extrapolated below zero',
      times: [100, 115, 130],
      values: [10, 40, 70],
      end: 130,
      range: 120,
      // Zero point is 5 s before the first sample: increase 60 over 30 s, extended by 5 s only.
      want: (60 * (35 / 30)) / 120,
    },
    {
      // extrapolatedRate: beyond 1.1 average intervals from an edge, only half an interval is added.
      name: 'a gap to the window start larger than 1.1 intervals extrapolates half an interval',
      times: [30, 45, 60, 75, 90, 105, 120],
      values: [300, 450, 600, 750, 900, 1050, 1200],
      end: 120,
      range: 120,
      want: (900 * ((90 + 7.5) / 90)) / 120,
    },
    {
      name: 'a gap just under 1.1 intervals is extrapolated in full',
      times: [16, 31, 46],
      values: [160, 310, 460],
      end: 46,
      range: 46,
      // toStart 16 < 16.5: the whole 16 s is added.
      want: (300 * ((30 + 16) / 30)) / 46,
    },
    { name: 'one sample gives no result', times: [0], values: [5], end: 10, range: 120, want: undefined },
  ];
  it.each(rows)('$name', ({ times, values, end, range, want }) => {
    const got = promRate(times, values, 0, times.length - 1, end, range);
    if (want === undefined) expect(got).toBeUndefined();
    else expect(got).toBeCloseTo(want, 9);
  });
});

describe('histogramQuantile', () => {
  const bounds = [100, 250, 500];
  const rows = [
    { name: 'interpolates inside the bucket holding the rank', counts: [0, 50, 100, 100], q: 0.5, want: 250 },
    { name: 'linear inside a bucket', counts: [0, 0, 100, 100], q: 0.99, want: 250 + 250 * 0.99 },
    { name: 'first bucket starts at zero', counts: [100, 100, 100, 100], q: 0.5, want: 50 },
    { name: 'rank in +Inf gives the largest finite bound', counts: [0, 0, 0, 100], q: 0.99, want: 500 },
    { name: 'no observations give NaN', counts: [0, 0, 0, 0], q: 0.99, want: Number.NaN },
    // bucketQuantile's sort.Search takes the first bucket whose count is >= the rank.
    {
      name: 'a rank on a bucket boundary takes the lower bucket',
      counts: [50, 100, 100, 100],
      q: 0.5,
      want: 100,
    },
    {
      name: 'non-monotonic float noise is smoothed',
      counts: [10, 9.999999, 100, 100],
      q: 0.05,
      want: 50,
    },
  ];
  it.each(rows)('$name', ({ counts, q, want }) => {
    const got = histogramQuantile(q, bounds, counts);
    if (Number.isNaN(want)) expect(got).toBeNaN();
    else expect(got).toBeCloseTo(want, 6);
  });
});
