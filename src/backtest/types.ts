/**
 * The result of a backtest: what the controller would have done over a stretch of history, through a model
 * of the mirror target fitted to that history. Plain JSON data: `--output json` prints it, the table and the
 * HTML report are drawn from it.
 */
import type { Action, Reason, SignalName } from '../core/types.js';

/** How one signal responds to the mirrored request rate, fitted on the history. */
export interface SignalFit {
  readonly signal: SignalName;
  /** The policy's guardrail for this signal. */
  readonly limit: number;
  /** The model: value = intercept + slope * mirroredRps (a robust line fit). */
  readonly intercept: number;
  readonly slope: number;
  /** Coefficient of determination of the fit on the points it was fitted on (0..1). */
  readonly r2: number;
  /** Points the fit used (time steps with both a mirrored rate and a value). */
  readonly points: number;
  /** Smallest and largest mirrored rate seen in those points, requests per second. */
  readonly rpsRange: readonly [number, number];
  /** Mirrored rate at which the model reaches the limit; null when it never does (slope <= 0). */
  readonly capacityRps: number | null;
  /** False when the fit is too poor to trust; `why` says what is wrong, for people. */
  readonly trusted: boolean;
  readonly why?: string;
}

/** One time step of the replay. Rates are requests per second; null where the history has no data. */
export interface BacktestPoint {
  /** Epoch seconds. */
  readonly t: number;
  /** Production traffic of the mirrored route. */
  readonly productionRps: number | null;
  /** The percentage that was in effect. */
  readonly actualPercent: number | null;
  /** The percentage the controller would have set. */
  readonly wouldBePercent: number;
  /** Mirrored traffic the target actually received. */
  readonly actualMirroredRps: number | null;
  /** Mirrored traffic at the would-be percentage (productionRps * wouldBePercent / 100). */
  readonly wouldBeMirroredRps: number | null;
  /** Signals the model predicts at the would-be percentage. */
  readonly predicted: Partial<Record<SignalName, number>>;
  /** Guardrails the model says the would-be percentage breaches at this step. */
  readonly breaches: readonly SignalName[];
  /** The controller's decision at this step. */
  readonly action: Action;
  readonly reason: Reason;
}

/** Totals over the replay. */
export interface BacktestSummary {
  /** Writes the controller would have made. */
  readonly writes: number;
  /** Seconds during which the model says the would-be percentage breaches a guardrail. */
  readonly estimatedBreachSeconds: number;
  /** Seconds during which the observed signals breached a guardrail under the actual percentages. */
  readonly actualBreachSeconds: number;
  /** Mirrored requests that actually happened, and that would have happened. */
  readonly actualMirroredRequests: number;
  readonly wouldBeMirroredRequests: number;
  /** Time steps at which the controller would have cut, and raised. */
  readonly decreases: number;
  readonly increases: number;
}

export interface BacktestResult {
  readonly policy: string;
  /** "NS/NAME" */
  /** The managed route object: `VirtualService shop/checkout`. */
  readonly route: string;
  /** Epoch seconds, both ends included, and the step. */
  readonly from: number;
  readonly to: number;
  readonly stepSeconds: number;
  /** Where the actual percentage came from: the daemon's exported metric, or `--assume-percent`. */
  readonly percentSource: 'metric' | 'assumed';
  readonly fits: readonly SignalFit[];
  /**
   * Mirrored rate the target can take before its first guardrail, from the trusted fits; null when no
   * trusted fit reaches a limit.
   */
  readonly capacityRps: number | null;
  readonly points: readonly BacktestPoint[];
  readonly summary: BacktestSummary;
  /** Things a person should know before trusting the result (poor fits, gaps, no data), one sentence each. */
  readonly warnings: readonly string[];
}
