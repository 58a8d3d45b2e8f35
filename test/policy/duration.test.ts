import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DURATION_PATTERN, formatDuration, parseDuration } from '../../src/policy/duration.js';

describe('parseDuration', () => {
  const rows = [
    { name: 'seconds', text: '30s', want: 30 },
    { name: 'minutes', text: '2m', want: 120 },
    { name: 'hours and minutes', text: '1h30m', want: 5400 },
    { name: 'milliseconds', text: '500ms', want: 0.5 },
    { name: 'minutes then milliseconds', text: '1m500ms', want: 60.5 },
    { name: 'days and weeks', text: '1w2d', want: 9 * 86400 },
    { name: 'year', text: '1y', want: 365 * 86400 },
    { name: 'zero with a unit', text: '0s', want: 0 },
    { name: 'no unit', text: '30', want: undefined },
    { name: 'empty', text: '', want: undefined },
    { name: 'units out of order', text: '30s1m', want: undefined },
    { name: 'repeated unit', text: '1m1m', want: undefined },
    { name: 'decimal', text: '1.5m', want: undefined },
    { name: 'negative', text: '-1m', want: undefined },
    { name: 'space', text: '1m 30s', want: undefined },
    { name: 'upper case unit', text: '1M', want: undefined },
    { name: 'unit only', text: 'm', want: undefined },
    { name: 'too many digits', text: '1234567890s', want: undefined },
  ];
  it.each(rows)('$name', ({ text, want }) => {
    expect(parseDuration(text)).toBe(want);
  });
});

describe('formatDuration', () => {
  const rows = [
    { name: 'zero', seconds: 0, want: '0s' },
    { name: 'seconds', seconds: 30, want: '30s' },
    { name: 'minutes', seconds: 120, want: '2m' },
    { name: 'mixed', seconds: 5430.25, want: '1h30m30s250ms' },
    { name: 'days, not weeks', seconds: 14 * 86400, want: '14d' },
    { name: 'negative clamps to zero', seconds: -5, want: '0s' },
  ];
  it.each(rows)('$name', ({ seconds, want }) => {
    expect(formatDuration(seconds)).toBe(want);
  });

  it('round-trips through parseDuration for every whole number of milliseconds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 400 * 86400 * 1000 }), (ms) => {
        const text = formatDuration(ms / 1000);
        expect(new RegExp(DURATION_PATTERN).test(text)).toBe(true);
        expect(parseDuration(text)).toBeCloseTo(ms / 1000, 6);
      }),
    );
  });
});
