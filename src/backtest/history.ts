/**
 * The history a backtest replays: aligned series on one time grid. Plain data, produced by the Prometheus
 * reader (src/backtest/prometheus.ts) or by tests.
 */
import type { SignalName } from '../core/types.js';

/** One value per time step of the grid; null where the history has no usable value. */
export type Series = readonly (number | null)[];

export interface History {
  /** Epoch seconds of each step, ascending, `stepSeconds` apart. */
  readonly times: readonly number[];
  readonly stepSeconds: number;
  /** Production requests/s of the mirrored route (the primary side). */
  readonly productionRps: Series;
  /** The mirror percentage in effect. */
  readonly actualPercent: Series;
  readonly percentSource: 'metric' | 'assumed';
  /** Requests/s the mirror target actually received. */
  readonly mirroredRps: Series;
  /** The target's observed signals, for every guardrail of the policy. */
  readonly signals: Partial<Record<SignalName, Series>>;
  /** What the reader noticed about the data (gaps, missing series), one sentence each. */
  readonly warnings: readonly string[];
}

/** Steps of the grid that have a value. */
export function present(series: Series): number {
  let n = 0;
  for (const v of series) if (v !== null) n++;
  return n;
}
