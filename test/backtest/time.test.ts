import { describe, expect, it } from 'vitest';
import { formatTime, parseStep, parseTime } from '../../src/backtest/time.js';

const NOW = 1_764_150_000;

describe('parseTime', () => {
  const rows = [
    { name: 'now', text: 'now', expected: NOW },
    { name: 'hours ago', text: '-24h', expected: NOW - 86_400 },
    { name: 'minutes ago', text: '-90m', expected: NOW - 5400 },
    { name: 'mixed units', text: '-1h30m', expected: NOW - 5400 },
    { name: 'RFC 3339 in UTC', text: '2025-11-26T08:00:00Z', expected: 1_764_144_000 },
    { name: 'RFC 3339 with an offset', text: '2025-11-26T09:00:00+01:00', expected: 1_764_144_000 },
    { name: 'RFC 3339 with a fraction', text: '2025-11-26T08:00:00.5Z', expected: 1_764_144_000.5 },
    { name: 'epoch seconds', text: '1764144000', expected: 1_764_144_000 },
  ];
  it.each(rows)('$name', ({ text, expected }) => {
    expect(parseTime('--from', text, NOW)).toBe(expected);
  });

  const bad = [
    { name: 'a bare minus', text: '-', message: /^--from: "-" is not a relative time/ },
    { name: 'an unknown unit', text: '-24x', message: /^--from: "-24x" is not a relative time/ },
    { name: 'a word', text: 'yesterday', message: /^--from: "yesterday" is not a time; use now/ },
    { name: 'RFC 3339 without an offset', text: '2025-11-26T08:00:00', message: /is not a time/ },
    { name: 'an impossible date', text: '2025-13-45T08:00:00Z', message: /is not a time/ },
  ];
  it.each(bad)('refuses $name, naming the flag and the value', ({ text, message }) => {
    expect(() => parseTime('--from', text, NOW)).toThrow(message);
  });
});

describe('parseStep', () => {
  const rows = [
    { name: 'seconds', text: '30s', expected: 30 },
    { name: 'minutes', text: '1m', expected: 60 },
  ];
  it.each(rows)('$name', ({ text, expected }) => {
    expect(parseStep('--step', text)).toBe(expected);
  });
  const bad = [
    { name: 'zero', text: '0s' },
    { name: 'below a second', text: '500ms' },
    { name: 'no unit', text: '30' },
  ];
  it.each(bad)('refuses $name', ({ text }) => {
    expect(() => parseStep('--step', text)).toThrow(
      `--step: must be a duration of at least 1s such as 30s or 1m (got "${text}")`,
    );
  });
});

describe('formatTime', () => {
  it('prints RFC 3339 UTC without milliseconds', () => {
    expect(formatTime(1_764_144_000)).toBe('2025-11-26T08:00:00Z');
  });
});
