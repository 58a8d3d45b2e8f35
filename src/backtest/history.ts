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

/**
 * Median, over the steps that have all three, of the rate the target received divided by production *
 * percent / 100. About 1 when the production query and the percentage describe the route the target is
 * mirrored from; far from 1 when the production query counts another service, or the target also serves other
 * traffic. Undefined when no step has all three with traffic.
 */
export function mirrorRatio(history: History): number | undefined {
  const ratios: number[] = [];
  history.times.forEach((_, i) => {
    const production = history.productionRps[i] ?? null;
    const percent = history.actualPercent[i] ?? null;
    const mirrored = history.mirroredRps[i] ?? null;
    if (production === null || percent === null || mirrored === null) return;
    const expected = (production * percent) / 100;
    if (expected > 0 && Number.isFinite(mirrored) && mirrored >= 0) ratios.push(mirrored / expected);
  });
  if (ratios.length === 0) return undefined;
  ratios.sort((a, b) => a - b);
  const mid = Math.floor(ratios.length / 2);
  return ratios.length % 2 === 1 ? (ratios[mid] ?? 0) : ((ratios[mid - 1] ?? 0) + (ratios[mid] ?? 0)) / 2;
}
