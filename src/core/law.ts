/** Constants of the control law that are not policy settings, and the traits of each kind of signal. */
import type { SignalName } from './types.js';

/** How one kind of signal behaves; see LAW.signals. */
export interface SignalTraits {
  /** Assumed elasticity (d ln severity / d ln percent) until measured. */
  readonly initial: number;
  /** Floor of the elasticity estimate. */
  readonly min: number;
  /** It can turn sharply upward near capacity: raises shrink as it nears the target. */
  readonly knee: boolean;
  /** It rises steadily with load, so a low reading below a remembered breach level means the level is stale. */
  readonly graded: boolean;
  /** A quantile over the window, dominated by its worst part: it shows a cut only once the window has passed. */
  readonly quantile: boolean;
  /** A plain sum over the window (CPU seconds): a reading is the time-weighted mean of what it covers. */
  readonly additive: boolean;
}

/** Constants of the law that are not policy settings; exported so tests and benchmarks can refer to them. */
export const LAW = {
  /** A cut keeps at least this share: one reading should not take away more than half at once. */
  cutFactorMin: 0.5,
  /**
   * A cut keeps at most this share, i.e. every breach cuts at least 30 %: an overloaded target recovers only
   * when load falls clearly below its capacity, and the reading that showed the breach is already stale.
   */
  cutFactorMax: 0.7,
  /** Weight of the newest difference in the moving average of a signal's noise. */
  noiseWeight: 0.2,
  /** A trend counts when its rise exceeds this many times the noise over the readings' span. */
  trendNoise: 3,
  /** Production counts as rising when two readings in a row climbed by more than this share in all. */
  productionRise: 0.02,
  /** A jump in a reading counts as a step (not noise) when it exceeds this many times the readings' spread. */
  jumpNoise: 2,
  /** A breach whose evidence is at most this severity is cut in proportion, not by 30 % or more. */
  marginalBreach: 1.05,
  /** Increases aim at this point of the hold band, as a share of its width below 1 (0.5 = the middle). */
  targetInBand: 0.25,
  /** Raise again only when at least this share of the rate window reflects the previous change. */
  settleVisibility: 0.5,
  /** Readings are not extrapolated to more than this multiple of the percentage they reflect. */
  maxProjection: 2,
  /** Percentages are multiples of this (pp). Envoy supports 1e-4 pp; 0.01 pp is plenty and reads well. */
  quantumPercent: 0.01,
  /** Severity reported for an infinite ratio (a non-zero reading against a limit of 0). */
  severityCap: 1e6,
  /**
   * CPU grows about linearly with load (sub-linearly when idle usage is a large part); latency and errors
   * grow faster near capacity (queueing). Latency warns before it breaches; errors often do not.
   */
  signals: {
    cpuUtilization: { initial: 1, min: 0.75, knee: false, graded: true, quantile: false, additive: true },
    errorRate: { initial: 2, min: 2, knee: true, graded: false, quantile: false, additive: false },
    latencyP99Ms: { initial: 2, min: 1.5, knee: true, graded: true, quantile: true, additive: false },
  } satisfies Record<SignalName, SignalTraits>,
  /**
   * After a breach, a raise goes at once to this share of the hold band's width below the level it broke
   * at (0.5: 90 % of it with the default band), then creeps.
   */
  breachApproach: 0.5,
  /** Largest factor of one raise on a signal without a knee (see stepCap in rules.ts). */
  modelStep: 4,
  /** How sharply raises shrink toward the target on a signal with a knee. */
  kneeExponent: 3,
  /** A quantile reading counts as evidence about a cut once this share of the window reflects it. */
  quantileVisibility: 0.9,
  /** A rising quantile reading counts as evidence once this share of the window follows the cut. */
  quantileRisingVisibility: 0.25,
  /** Raises smaller than this share of the percentage are not worth a write. */
  minRaiseShare: 0.03,
  /** How much larger the smallest raise becomes as the write budget of the hour is spent (see raise). */
  paceShare: 0.12,
  /** Share of the write budget spent before raises are paced. */
  paceFrom: 0.5,
  /** A rate reading is rising (the load itself grew) when it exceeds the previous one by more than this. */
  risingMargin: 0.05,
  /** Two readings give an elasticity estimate only when their percentages differ by at least this factor. */
  curveSpread: 1.1,
  /** The percentage follows production up (the load anchor) only when that moves it by at least this share. */
  followShare: 0.05,
  /** ...and down when that moves it by at least this share: a smaller step, since it is for safety. */
  followDownShare: 0.03,
  /**
   * With a production rate, readings count as taken at the percentage in effect when the load they stand
   * for is within this share of it: production noise between a window and now moves them that much.
   */
  settledLoadShare: 0.1,
  /** Production follows a move only beyond this many times production's noise (see holdLoad). */
  followNoise: 4,
  /** A production difference counts in its noise at most this many times the estimate... */
  productionNoiseClip: 3,
  /** ...or this |ln| ratio, whichever is larger; also the most the first difference counts. */
  productionNoiseFloor: 0.02,
  /**
   * A cut that left the percentage at or below this share of the level it broke at answered an overload
   * (every fresh cut takes 30 % at least; a marginal breach is cut in proportion, by a few per cent).
   */
  deepCutShare: 0.75,
  /** A knee signal counts as calm at most at this severity (see nextCalm in rules.ts)... */
  calmKnee: 0.6,
  /** ...and the memory is contradicted by a knee signal reading more than this many times it. */
  calmSlack: 1.25,
  /** A cut keeps the load anchor when the breach came at a load at least this many times the anchor's. */
  anchorAbove: 1.25,
  /** Readings older than this many intervals are not part of the median. */
  recentIntervals: 3.5,
  /**
   * Inside the hold band a raise is made only when every recent reading, all taken at the current
   * percentage with the window fully reflecting it, stays this far (in severity) below the target: the band
   * absorbs noise and one-off readings, but a percentage that settled low in it after a cautious raise is
   * worth closing up (a CPU-bound target at severity 0.8 mirrors under 80 % of what it could).
   */
  topUpGap: 0.02,
  /**
   * A raise aims this many times the spread of the recent readings (highest minus lowest, each carried to
   * the percentage now) below the target: where readings scatter, the truth between them does too, and a
   * raise sized on a low one lands above the limit. Quiet signals keep the full target.
   */
  noiseMargin: 2,
  /**
   * A steady rise is met with a decrease once it projects above this severity by the next cycle, not only
   * above the limit: the projection is linear while the readings lag the truth by half a window, and a drift
   * often accelerates (severity goes with 1 / capacity), so waiting for the projection to cross 1 was late.
   */
  easeAbove: 0.98,
} as const;
