import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_WRITES_TRACKED, parseControllerState } from '../../src/core/decide.js';
import {
  type CoreState,
  MAX_EQUIVALENT_PERCENT,
  MAX_PRODUCTION_READINGS,
  MAX_RECENT_READINGS,
} from '../../src/core/state.js';

const valid: CoreState = {
  version: 1,
  at: 1_767_225_600_000,
  percent: 12.5,
  track: [
    [40, 12.5],
    [165, 10],
  ],
  recent: [
    [0, 11.2, 0.61, null, 0.4],
    [30, 10.6, 0.6, null, 0.41],
  ],
  writesAgo: [40, 900],
  cooldownUntil: 1_767_225_700_000,
  breach: { at: 1_767_225_000_000, percent: 14.2, rps: 31.5, signal: 'latencyP99Ms' },
  cutAt: 1_767_225_000_000,
  blindSince: 1_767_225_500_000,
  blindEndedAt: 1_767_225_400_000,
  curve: {
    cpuUtilization: [10.6, 0.6, 0.9, 1],
    latencyP99Ms: [10.6, 0.41, 2.4, 0],
    errorRate: [10.6, 0.2, 2],
  },
  anchor: [28.4, 0.91],
  prod: [
    [0, 1210],
    [30, 1195.5],
  ],
  basis: 1210,
  held: 1195.5,
  move: [40, 10, 1],
  noise: [0.012, null, 0.03],
  prodNoise: 0.021,
  calm: [0.88, 0.4, 1_767_225_000_000],
};

const with_ = (patch: Record<string, unknown>): unknown => ({ ...valid, ...patch });

interface Row {
  readonly name: string;
  readonly input: unknown;
}

const malformed: readonly Row[] = [
  { name: 'null', input: null },
  { name: 'an array', input: [] },
  { name: 'a number', input: 3 },
  { name: 'text that is not JSON', input: '{"version":1,' },
  { name: 'an empty object', input: {} },
  { name: 'another version', input: with_({ version: 2 }) },
  { name: 'an anchor that is not a pair', input: with_({ anchor: [28.4] }) },
  { name: 'an anchor with no load', input: with_({ anchor: [0, 0.9] }) },
  { name: 'an anchor with a negative severity', input: with_({ anchor: [28.4, -1] }) },
  { name: 'an anchor that is an object', input: with_({ anchor: { rps: 28.4, severity: 0.9 } }) },
  { name: 'a negative production noise', input: with_({ prodNoise: -0.01 }) },
  { name: 'a calm memory above the limit', input: with_({ calm: [1.2, 0.4, 1_767_225_000_000] }) },
  { name: 'a calm memory without its time', input: with_({ calm: [0.88, 0.4] }) },
  { name: 'a production noise given as text', input: with_({ prodNoise: '0.02' }) },
  { name: 'a non-finite time', input: with_({ at: Number.NaN }) },
  { name: 'a time given as text', input: with_({ at: '2026-01-01' }) },
  { name: 'a percentage above 100', input: with_({ percent: 150 }) },
  { name: 'a negative percentage', input: with_({ percent: -1 }) },
  { name: 'an unknown key', input: with_({ extra: true }) },
  { name: 'an empty timeline', input: with_({ track: [] }) },
  { name: 'a timeline entry of the wrong length', input: with_({ track: [[10, 5, 1]] }) },
  {
    name: 'a timeline out of order',
    input: with_({
      track: [
        [100, 5],
        [10, 6],
      ],
    }),
  },
  { name: 'a timeline percentage out of range', input: with_({ track: [[10, 101]] }) },
  {
    name: 'a timeline longer than kept',
    input: with_({ track: Array.from({ length: 9 }, (_, i) => [i, 5]) }),
  },
  {
    name: 'too many readings',
    input: with_({
      recent: Array.from({ length: MAX_RECENT_READINGS + 1 }, (_, i) => [i, 5, 0.1, null, null]),
    }),
  },
  {
    name: 'a reading at an equivalent percentage beyond the cap',
    input: with_({ recent: [[0, MAX_EQUIVALENT_PERCENT + 1, 0.1, null, null]] }),
  },
  {
    name: 'a curve point with a measured flag other than 0 or 1',
    input: with_({ curve: { cpuUtilization: [5, 0.5, 1, 2] } }),
  },
  { name: 'a curve point of five elements', input: with_({ curve: { cpuUtilization: [5, 0.5, 1, 1, 0] } }) },
  {
    name: 'more production readings than kept',
    input: with_({ prod: Array.from({ length: MAX_PRODUCTION_READINGS + 1 }, (_, i) => [i * 30, 1000]) }),
  },
  { name: 'a production reading of the wrong length', input: with_({ prod: [[0, 1000, 1]] }) },
  { name: 'a production reading of zero', input: with_({ prod: [[0, 0]] }) },
  { name: 'a negative production reading', input: with_({ prod: [[0, -3]] }) },
  { name: 'a non-finite production reading', input: with_({ prod: [[0, Number.POSITIVE_INFINITY]] }) },
  { name: 'a negative production age', input: with_({ prod: [[-1, 1000]] }) },
  {
    name: 'production readings out of order',
    input: with_({
      prod: [
        [30, 1000],
        [0, 1000],
      ],
    }),
  },
  { name: 'production readings that are not a list', input: with_({ prod: { 0: 1000 } }) },
  { name: 'a basis of zero', input: with_({ basis: 0 }) },
  { name: 'a negative basis', input: with_({ basis: -1 }) },
  { name: 'a non-finite basis', input: with_({ basis: Number.NaN }) },
  { name: 'a basis given as text', input: with_({ basis: '1210' }) },
  { name: 'a held production of zero', input: with_({ held: 0 }) },
  { name: 'an infinite held production', input: with_({ held: Number.POSITIVE_INFINITY }) },
  { name: 'a move of the wrong length', input: with_({ move: [40, 10] }) },
  { name: 'a move with a negative age', input: with_({ move: [-1, 10, 1] }) },
  { name: 'a move from a negative percentage', input: with_({ move: [40, -5, 1] }) },
  {
    name: 'a move from beyond the equivalent cap',
    input: with_({ move: [40, MAX_EQUIVALENT_PERCENT + 1, 1] }),
  },
  { name: 'a move with a direction other than -1, 0 or 1', input: with_({ move: [40, 10, 0.5] }) },
  { name: 'noise of the wrong length', input: with_({ noise: [0.01, null] }) },
  { name: 'a negative noise', input: with_({ noise: [-0.01, null, null] }) },
  { name: 'a non-finite noise', input: with_({ noise: [Number.NaN, null, null] }) },
  { name: 'noise that is an object', input: with_({ noise: { cpuUtilization: 0.01 } }) },
  { name: 'a reading with a negative severity', input: with_({ recent: [[0, 5, -0.1, null, null]] }) },
  { name: 'a reading with a severity given as text', input: with_({ recent: [[0, 5, '0.1', null, null]] }) },
  {
    name: 'more write times than kept',
    input: with_({ writesAgo: Array.from({ length: MAX_WRITES_TRACKED + 1 }, (_, i) => i) }),
  },
  { name: 'a negative write age', input: with_({ writesAgo: [-5] }) },
  { name: 'write ages out of order', input: with_({ writesAgo: [50, 10] }) },
  { name: 'a cooldown given as text', input: with_({ cooldownUntil: 'soon' }) },
  {
    name: 'a breach with an unknown signal',
    input: with_({ breach: { at: 1, percent: 5, signal: 'memory' } }),
  },
  { name: 'a breach with a zero request rate', input: with_({ breach: { at: 1, percent: 5, rps: 0 } }) },
  { name: 'a breach with an unknown key', input: with_({ breach: { at: 1, percent: 5, why: 'x' } }) },
  { name: 'a breach without a percentage', input: with_({ breach: { at: 1 } }) },
  { name: 'a curve for an unknown signal', input: with_({ curve: { memory: [5, 0.5, 1] } }) },
  { name: 'a curve with an absurd elasticity', input: with_({ curve: { cpuUtilization: [5, 0.5, 50] } }) },
  { name: 'a curve at 0 %', input: with_({ curve: { cpuUtilization: [0, 0.5, 1] } }) },
  { name: 'a cut time given as text', input: with_({ cutAt: 'x' }) },
  { name: 'a blind-end time given as null', input: with_({ blindEndedAt: null }) },
];

describe('parseControllerState', () => {
  it('accepts a complete state, as an object and as JSON text', () => {
    expect(parseControllerState(valid)).toEqual(valid);
    expect(parseControllerState(JSON.stringify(valid))).toEqual(valid);
  });

  it('accepts each new field on its own, and an unmeasured curve point of three elements', () => {
    const minimal = { version: 1, at: 0, percent: 0, track: [[165, 0]], recent: [], writesAgo: [] };
    for (const key of ['prod', 'basis', 'held', 'move', 'noise', 'curve'] as const) {
      const one = { ...minimal, [key]: valid[key] };
      expect(parseControllerState(one), key).toEqual(one);
    }
    const full = {
      ...minimal,
      recent: Array.from({ length: MAX_RECENT_READINGS }, (_, i) => [i, 5, 0.1, null, null]),
    };
    expect(parseControllerState(full)).toEqual(full);
  });

  it('accepts a minimal state', () => {
    const minimal = { version: 1, at: 0, percent: 0, track: [[165, 0]], recent: [], writesAgo: [] };
    expect(parseControllerState(minimal)).toEqual(minimal);
  });

  it.each(malformed)('rejects $name', ({ input }) => {
    expect(parseControllerState(input)).toBeUndefined();
  });

  it('never throws on arbitrary JSON values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (json) => {
        const parsed = parseControllerState(json);
        expect(parsed === undefined || parsed.version === 1).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on arbitrary text or values', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.anything()), (x) => {
        parseControllerState(x);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on near-valid states with one field replaced by anything', () => {
    const keys = Object.keys(valid);
    fc.assert(
      fc.property(fc.constantFrom(...keys), fc.anything(), (key, x) => {
        const parsed = parseControllerState({ ...valid, [key]: x });
        if (parsed !== undefined) expect(parsed.version).toBe(1);
      }),
      { numRuns: 2000 },
    );
  });
});
