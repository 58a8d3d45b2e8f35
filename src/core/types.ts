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

/**
 * How the signals are observed: the dead time between a write and the readings that show it. The law
 * derives every wait from these and the rate window; nothing in it is a constant in seconds.
 */
export interface ObservationTiming {
  /** Seconds between two samples of the target's series (the largest over the signals read). */
  readonly scrapeIntervalSeconds: number;
  /** Seconds from a route write until the proxies mirror at the new percentage. */
  readonly propagationSeconds: number;
}

/** Where a timing figure came from, for plan and the audit log. */
export const TIMING_SOURCES = ['policy', 'learned', 'default'] as const;
export type TimingSource = (typeof TIMING_SOURCES)[number];

/**
 * How the percentage relates to the load: 'FeedForward' when the production rate of the mirrored route is
 * known (the percentage is set to deliver a mirrored load in requests/s, and follows production in the same
 * cycle); 'FeedbackOnly' when it is not (the percentage moves on the target's signals alone).
 */
export const MODES = ['FeedForward', 'FeedbackOnly'] as const;
export type Mode = (typeof MODES)[number];

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
  'FollowProduction',
  'Overridden',
] as const;
export type Reason = (typeof REASONS)[number];

/**
 * One signal's local response curve: `[percent, severity, elasticity]`. The point is the reading the next
 * estimate is measured against; elasticity is d ln(severity) / d ln(percent) near it (1 = linear);
 * `measured` is 1 once two settled readings at different loads gave it, 0 (or absent) while assumed.
 */
export type CurvePoint = readonly [percent: number, severity: number, elasticity: number, measured?: 0 | 1];

/** One past reading: `[secondsAgo, effectivePercent, ...severity per SIGNAL_NAMES, null when absent]`. */
export type Reading = readonly [
  secondsAgo: number,
  effectivePercent: number,
  cpuUtilization: number | null,
  errorRate: number | null,
  latencyP99Ms: number | null,
];

/**
 * The decision core's memory between cycles. A plain JSON object persisted in a Kubernetes annotation, so
 * it is small (a few hundred bytes) and untrusted on the way back in: read it with `parseControllerState`.
 * Arrays hold ages in seconds counted back from `at`, which keeps them short; scalar times are epoch ms.
 */
export interface ControllerState {
  /** Format version; a state of another version is ignored. */
  readonly version: 1;
  /** `now` (epoch ms) of the decision that produced this state. */
  readonly at: number;
  /** The percentage that decision left in effect; a different current value means someone else changed it. */
  readonly percent: number;
  /**
   * Percentage timeline, newest first: `[secondsAgo, percent in effect from then on]`. The oldest entry's age
   * is capped: it means "at least this long". Used to tell which percentage a rate window reflects.
   */
  readonly track: ReadonlyArray<readonly [secondsAgo: number, percent: number]>;
  /** The last few readings, newest first, for the median that increases are judged on. */
  readonly recent: readonly Reading[];
  /** Ages (seconds) of the raises made in the last hour, newest first, for the write budget (decreases are never withheld, so they do not spend it). */
  readonly writesAgo: readonly number[];
  /** No increase before this instant (epoch ms): set by a cut so that the rate windows flush first. */
  readonly cooldownUntil?: number;
  /**
   * The last breach: when, the guardrail, the percentage its reading reflected and, if known, the mirrored
   * request rate at that percentage (so the level follows changes in production traffic).
   */
  readonly breach?: {
    readonly at: number;
    readonly percent: number;
    readonly rps?: number;
    readonly signal?: SignalName;
  };
  /** When (epoch ms) the last full cut was made; a quantile reading shows it only once the window has passed. */
  readonly cutAt?: number;
  /** Start (epoch ms) of the current stretch of blindness (missing, failed or stale data). */
  readonly blindSince?: number;
  /** When (epoch ms) the last stretch of blindness ended; rate windows still span the gap for a while. */
  readonly blindEndedAt?: number;
  /** Per-signal response curve estimates, used to size increases on convex signals (latency, errors). */
  readonly curve?: Partial<Record<SignalName, CurvePoint>>;
}
