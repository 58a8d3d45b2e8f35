/**
 * Plain data shared by the decision core, the adapters and the simulator.
 * Everything here is JSON-serialisable; time is always epoch milliseconds passed in by the caller.
 */

/** The guardrail signals a policy can watch. */
export const SIGNAL_NAMES = ['cpuUtilization', 'errorRate', 'latencyP99Ms'] as const;
export type SignalName = (typeof SIGNAL_NAMES)[number];

/** Why a signal has no usable value this cycle. */
export const ABSENT_REASONS = ['NoSeries', 'NoTraffic', 'QueryFailed', 'Stale'] as const;
export type AbsentReason = (typeof ABSENT_REASONS)[number];

/** One observation of one signal: a finite number, or absent with a reason. */
export type Signal =
  | { readonly kind: 'value'; readonly value: number }
  | { readonly kind: 'absent'; readonly reason: AbsentReason; readonly detail?: string };

/** The signals of one cycle, keyed by name. A configured guardrail with no entry counts as absent (NoSeries). */
export type Signals = Partial<Record<SignalName, Signal>>;

/** Guardrail limits; a signal is watched only when its limit is set. */
export type Guardrails = Partial<Record<SignalName, number>>;

/** Tuning of the control law. Every field has a default (see DEFAULT_CONTROL in src/core/decide.ts). */
export interface ControlSettings {
  /** Hold band: with every severity (observed / limit) in (1 - hysteresis, 1], hold. */
  readonly hysteresis: number;
  /** Largest multiplicative raise per cycle (1.5 = at most +50 %). */
  readonly maxIncreaseFactor: number;
  /** Additive raise per cycle in percentage points, also the cold-start step from 0 %. */
  readonly increaseStepPercent: number;
  /** Seconds after a decrease during which no increase is made (rate windows must flush). 0 = derive from window and interval. */
  readonly cooldownSeconds: number;
  /** Seconds of blindness (missing or failed data) after which the percentage decays toward minPercent. */
  readonly blindHoldSeconds: number;
  /** Changes smaller than this many percentage points are not written. */
  readonly minChangePercent: number;
  /** Upper bound on writes per rolling hour; decreases for a breach are always allowed. */
  readonly maxWritesPerHour: number;
  /** Seconds without a breach after which the remembered breach level is forgotten. */
  readonly breachMemorySeconds: number;
}

/** What the core needs to know about a policy: bounds, guardrails, timing and tuning. */
export interface ControlPolicy {
  readonly bounds: { readonly minPercent: number; readonly maxPercent: number };
  readonly guardrails: Guardrails;
  /** Evaluation interval in seconds. */
  readonly intervalSeconds: number;
  /** PromQL rate window in seconds. */
  readonly windowSeconds: number;
  readonly control: ControlSettings;
}

export const ACTIONS = ['increase', 'decrease', 'hold'] as const;
export type Action = (typeof ACTIONS)[number];

/**
 * Stable reason codes, used in logs, metrics, events and the plan table alike.
 */
export const REASONS = [
  'GuardrailBreached',
  'Headroom',
  'ColdStart',
  'WithinTolerance',
  'Cooldown',
  'Settling',
  'NoData',
  'BlindDecay',
  'AtBound',
  'OutOfBounds',
  'ChangeTooSmall',
  'WriteBudget',
  'Paused',
] as const;
export type Reason = (typeof REASONS)[number];
