/** Shared builders for the decision-core tests: policies, signals and short runs of consecutive cycles. */
import { type DecideInput, type Decision, decide } from '../../src/core/decide.js';
import { DEFAULT_CONTROL } from '../../src/core/defaults.js';
import type {
  AbsentReason,
  ControllerState,
  ControlPolicy,
  ControlSettings,
  Guardrails,
  ObservationTiming,
  Signal,
  Signals,
} from '../../src/core/types.js';

/** A fixed clock: 2026-01-01T00:00:00Z. */
export const T0 = Date.UTC(2026, 0, 1);

export const LIMITS = { cpuUtilization: 0.8, errorRate: 0.01, latencyP99Ms: 500 } as const;

export interface PolicyOptions {
  readonly min?: number;
  readonly max?: number;
  readonly guardrails?: Guardrails;
  readonly control?: Partial<ControlSettings>;
  readonly intervalSeconds?: number;
  readonly windowSeconds?: number;
}

export function policy(o: PolicyOptions = {}): ControlPolicy {
  return {
    bounds: { minPercent: o.min ?? 0, maxPercent: o.max ?? 50 },
    guardrails: o.guardrails ?? LIMITS,
    intervalSeconds: o.intervalSeconds ?? 30,
    windowSeconds: o.windowSeconds ?? 120,
    control: { ...DEFAULT_CONTROL, ...(o.control ?? {}) },
  };
}

export const value = (v: number): Signal => ({ kind: 'value', value: v });
export const absent = (reason: AbsentReason): Signal => ({ kind: 'absent', reason });

/** Signals at the given severities (observed / limit); each defaults to 0.3. */
export function sev(s: { cpu?: number; err?: number; lat?: number } = {}): Signals {
  return {
    cpuUtilization: value((s.cpu ?? 0.3) * LIMITS.cpuUtilization),
    errorRate: value((s.err ?? 0.3) * LIMITS.errorRate),
    latencyP99Ms: value((s.lat ?? 0.3) * LIMITS.latencyP99Ms),
  };
}

/** One cycle of a run. */
export interface Step {
  /** Seconds since the previous cycle (default: the policy's interval; the first cycle is at T0). */
  readonly after?: number;
  readonly signals?: Signals;
  readonly requestRate?: Signal;
  /** Production requests/s of the mirrored route (feed-forward); absent = feedback only. */
  readonly productionRate?: Signal;
  /** Overrides the percentage in effect (as if someone else changed it). */
  readonly current?: number | null;
}

/**
 * Runs consecutive cycles, carrying the state and applying every write to the percentage in effect.
 * @returns every decision and the input of the last one.
 */
export function run(
  pol: ControlPolicy,
  start: number | null,
  steps: readonly Step[],
  state?: ControllerState,
  observation?: Partial<ObservationTiming>,
): { decisions: Decision[]; last: Decision; lastInput: DecideInput } {
  let now = T0;
  let current = start;
  let carried = state;
  const decisions: Decision[] = [];
  let lastInput: DecideInput | undefined;
  steps.forEach((step, i) => {
    if (i > 0) now += (step.after ?? pol.intervalSeconds) * 1000;
    if (step.current !== undefined) current = step.current;
    const input: DecideInput = {
      now,
      policy: pol,
      currentPercent: current,
      signals: step.signals ?? sev(),
      requestRate: step.requestRate,
      productionRate: step.productionRate,
      observation,
      state: carried,
    };
    const d = decide(input);
    decisions.push(d);
    carried = d.state;
    lastInput = input;
    if (d.action !== 'hold') current = d.percent;
  });
  const last = decisions[decisions.length - 1];
  if (last === undefined || lastInput === undefined) throw new Error('run: at least one step is needed');
  return { decisions, last, lastInput };
}

/** A minimal well-formed state at `at`, the percentage steady for longer than any window. */
export function steadyState(
  percent: number,
  at: number,
  extra: Partial<ControllerState> = {},
): ControllerState {
  return { version: 1, at, percent, track: [[1000, percent]], recent: [], writesAgo: [], ...extra };
}
