/**
 * Invariants of the control law over arbitrary policies, readings, clocks and histories.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DecideInput, type Decision, decide, parseControllerState } from '../../src/core/decide.js';
import { DEFAULT_CONTROL } from '../../src/core/defaults.js';
import {
  ABSENT_REASONS,
  type ControllerState,
  type ControlPolicy,
  type Guardrails,
  SIGNAL_NAMES,
  type Signal,
  type SignalName,
  type Signals,
} from '../../src/core/types.js';
import { T0 } from './helpers.js';

const percentArb = fc.double({ min: 0, max: 100, noNaN: true });

const policyArb: fc.Arbitrary<ControlPolicy> = fc
  .record({
    a: percentArb,
    b: percentArb,
    same: fc.boolean(),
    guardrails: fc
      .record(
        {
          cpuUtilization: fc.double({ min: 0.05, max: 2, noNaN: true }),
          errorRate: fc.double({ min: 0.001, max: 0.5, noNaN: true }),
          latencyP99Ms: fc.double({ min: 10, max: 5000, noNaN: true }),
        },
        { requiredKeys: [] },
      )
      .filter((g) => Object.keys(g).length > 0),
    intervalSeconds: fc.integer({ min: 5, max: 300 }),
    windowSeconds: fc.integer({ min: 10, max: 900 }),
    hysteresis: fc.double({ min: 0, max: 0.5, noNaN: true }),
    maxIncreaseFactor: fc.double({ min: 1, max: 3, noNaN: true }),
    increaseStepPercent: fc.double({ min: 0, max: 10, noNaN: true }),
    cooldownSeconds: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1200 })),
    blindHoldSeconds: fc.integer({ min: 0, max: 900 }),
    minChangePercent: fc.double({ min: 0, max: 2, noNaN: true }),
    maxWritesPerHour: fc.integer({ min: 0, max: 120 }),
    breachMemorySeconds: fc.integer({ min: 0, max: 7200 }),
  })
  .map((r) => ({
    bounds: { minPercent: Math.min(r.a, r.b), maxPercent: r.same ? Math.min(r.a, r.b) : Math.max(r.a, r.b) },
    guardrails: r.guardrails as Guardrails,
    intervalSeconds: r.intervalSeconds,
    windowSeconds: r.windowSeconds,
    control: {
      ...DEFAULT_CONTROL,
      hysteresis: r.hysteresis,
      maxIncreaseFactor: r.maxIncreaseFactor,
      increaseStepPercent: r.increaseStepPercent,
      cooldownSeconds: r.cooldownSeconds,
      blindHoldSeconds: r.blindHoldSeconds,
      minChangePercent: r.minChangePercent,
      maxWritesPerHour: r.maxWritesPerHour,
      breachMemorySeconds: r.breachMemorySeconds,
    },
  }));

/** A reading as a severity multiple of the limit, so that breaches and headroom are both common. */
const signalArb = (limit: number): fc.Arbitrary<Signal> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .double({ min: 0, max: 3, noNaN: true })
        .map((s) => ({ kind: 'value', value: s * limit }) as const),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -1, 0, -1e-12)
        .map((v) => ({ kind: 'value', value: v }) as const),
    },
    {
      weight: 2,
      arbitrary: fc.constantFrom(...ABSENT_REASONS).map((reason) => ({ kind: 'absent', reason }) as const),
    },
  );

function signalsArb(pol: ControlPolicy): fc.Arbitrary<Signals> {
  const parts: Partial<Record<SignalName, fc.Arbitrary<Signal>>> = {};
  for (const name of SIGNAL_NAMES) parts[name] = signalArb(pol.guardrails[name] ?? 1);
  return fc.record(parts as Record<SignalName, fc.Arbitrary<Signal>>, { requiredKeys: [] });
}

const currentArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant(null) },
  { weight: 1, arbitrary: fc.constantFrom(0, 100, Number.NaN, -5, 150) },
  { weight: 8, arbitrary: percentArb },
);

interface StepSpec {
  readonly dt: number;
  readonly signals: Signals;
  readonly requestRate: Signal | undefined;
  /** Someone else sets the percentage before this cycle. */
  readonly external: number | null | undefined;
}

function stepsArb(pol: ControlPolicy): fc.Arbitrary<StepSpec[]> {
  const step = fc.record({
    dt: fc.oneof(fc.constant(pol.intervalSeconds), fc.integer({ min: 0, max: 4000 })),
    signals: signalsArb(pol),
    requestRate: fc.option(
      fc.oneof(
        fc.double({ min: 0, max: 500, noNaN: true }).map((v) => ({ kind: 'value', value: v }) as const),
        fc.constant({ kind: 'absent', reason: 'NoTraffic' } as const),
      ),
      { nil: undefined },
    ),
    external: fc.option(currentArb, { nil: undefined, freq: 8 }),
  });
  return fc.array(step, { minLength: 1, maxLength: 14 });
}

const scenarioArb = policyArb.chain((pol) =>
  fc.record({ policy: fc.constant(pol), start: currentArb, steps: stepsArb(pol) }),
);

/** Every decision of a run, with the input it was made from. */
function play(
  pol: ControlPolicy,
  start: number | null,
  steps: readonly StepSpec[],
): Array<[DecideInput, Decision]> {
  let now = T0;
  let current = start;
  let state: ControllerState | undefined;
  const out: Array<[DecideInput, Decision]> = [];
  for (const s of steps) {
    now += s.dt * 1000;
    if (s.external !== undefined) current = s.external;
    const input: DecideInput = {
      now,
      policy: pol,
      currentPercent: current,
      signals: s.signals,
      requestRate: s.requestRate,
      state,
    };
    const d = decide(input);
    out.push([input, d]);
    state = d.state;
    if (d.action !== 'hold') current = d.percent;
  }
  return out;
}

function effective(current: number | null): number {
  return current === null || !Number.isFinite(current) ? 100 : current;
}

function configured(pol: ControlPolicy): Array<[SignalName, number]> {
  return SIGNAL_NAMES.flatMap((n) => {
    const limit = pol.guardrails[n];
    return limit === undefined ? [] : [[n, limit] as [SignalName, number]];
  });
}

function fresh(s: Signal | undefined): boolean {
  return s?.kind === 'value' && Number.isFinite(s.value) && s.value >= -1e-9;
}

function allFinite(x: unknown): boolean {
  if (typeof x === 'number') return Number.isFinite(x);
  if (Array.isArray(x)) return x.every(allFinite);
  if (typeof x === 'object' && x !== null) return Object.values(x).every(allFinite);
  return true;
}

// FC_NUM_RUNS raises the effort for a deeper search than the default suite needs.
const RUNS = { numRuns: Number(process.env.FC_NUM_RUNS ?? 400) };

describe('decide invariants', () => {
  it('the result is always within the bounds, finite, and a written value is quantised or a bound', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, start, steps }) => {
        const { minPercent: lo, maxPercent: hi } = policy.bounds;
        for (const [, d] of play(policy, start, steps)) {
          expect(d.percent).toBeGreaterThanOrEqual(lo);
          expect(d.percent).toBeLessThanOrEqual(hi);
          expect(allFinite(d)).toBe(true);
          const onGrid = Math.abs(d.percent * 100 - Math.round(d.percent * 100)) < 1e-6;
          expect(onGrid || d.action === 'hold' || d.percent === lo || d.percent === hi).toBe(true);
        }
      }),
      RUNS,
    );
  });

  it('the action matches the change, and a hold keeps the percentage in effect', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, start, steps }) => {
        for (const [input, d] of play(policy, start, steps)) {
          const p = effective(input.currentPercent);
          if (d.action === 'increase') expect(d.percent).toBeGreaterThan(p);
          if (d.action === 'decrease') expect(d.percent).toBeLessThan(p);
          if (d.action === 'hold') expect(d.percent).toBe(p);
        }
      }),
      RUNS,
    );
  });

  it('never increases without a fresh value for every configured guardrail, except the documented cases', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, start, steps }) => {
        for (const [input, d] of play(policy, start, steps)) {
          if (d.action !== 'increase') continue;
          const p = effective(input.currentPercent);
          const rails = configured(policy);
          if (d.reason === 'OutOfBounds') {
            // Bounds are hard: a percentage below the floor goes to the floor whatever the data.
            expect(p).toBeLessThan(policy.bounds.minPercent);
            expect(d.percent).toBe(policy.bounds.minPercent);
          } else if (d.reason === 'ColdStart') {
            // No traffic excuses latency and errors, never CPU; and it is a single step.
            for (const [name] of rails) {
              const s = input.signals[name];
              const excused = name !== 'cpuUtilization' && s?.kind === 'absent' && s.reason === 'NoTraffic';
              expect(fresh(s) || excused, `${name}: ${JSON.stringify(s)}`).toBe(true);
            }
            // One step, rounded up onto the 0.01 grid.
            const c = policy.control;
            const step = Math.max(c.increaseStepPercent, c.minChangePercent, 0.01);
            expect(d.percent).toBeLessThanOrEqual(Math.ceil(step * 100 - 1e-6) / 100 + 1e-9);
          } else {
            expect(d.reason).toBe('Headroom');
            for (const [name] of rails) expect(fresh(input.signals[name]), name).toBe(true);
          }
        }
      }),
      RUNS,
    );
  });

  it('any breach gives a decrease unless already at minPercent', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, start, steps }) => {
        for (const [input, d] of play(policy, start, steps)) {
          const breached = configured(policy).some(([name, limit]) => {
            const s = input.signals[name];
            return s?.kind === 'value' && Number.isFinite(s.value) && s.value / limit > 1;
          });
          if (!breached) continue;
          const p = effective(input.currentPercent);
          if (p <= policy.bounds.minPercent) {
            expect(d.action).not.toBe('decrease');
          } else {
            expect(d.action, d.message).toBe('decrease');
          }
        }
      }),
      RUNS,
    );
  });

  it('is deterministic: the same input gives the same output', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, start, steps }) => {
        for (const [input, d] of play(policy, start, steps)) {
          expect(decide(structuredClone(input))).toEqual(d);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('the state round-trips through JSON and parseControllerState and stays under 1 KB', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, start, steps }) => {
        for (const [, d] of play(policy, start, steps)) {
          const text = JSON.stringify(d.state);
          expect(text.length).toBeLessThan(1024);
          expect(parseControllerState(JSON.parse(text))).toEqual(d.state);
        }
      }),
      RUNS,
    );
  });

  it('a state that went through JSON decides exactly like the original', () => {
    fc.assert(
      fc.property(scenarioArb, ({ policy, start, steps }) => {
        const played = play(policy, start, steps);
        const last = played[played.length - 1];
        if (last === undefined) return;
        const [input, d] = last;
        const next: DecideInput = { ...input, now: input.now + 30_000, state: d.state };
        const viaJson: DecideInput = { ...next, state: parseControllerState(JSON.stringify(d.state)) };
        expect(decide(viaJson)).toEqual(decide(next));
      }),
      { numRuns: 200 },
    );
  });
});
