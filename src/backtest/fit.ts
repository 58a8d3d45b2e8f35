/**
 * How a mirror target's signals respond to the mirrored request rate, fitted on history. Pure: no I/O.
 *
 * The model is a line, value = intercept + slope * rps, fitted robustly (a Theil–Sen start, then iteratively
 * reweighted least squares with Huber weights), because history carries outliers that an ordinary least
 * squares line would chase: deploys, a noisy neighbour, a scrape that straddled a restart.
 */
import { median, medianAbsoluteDeviation, quantileSorted, rSquared } from 'simple-statistics';
import type { SignalName } from '../core/types.js';
import type { SignalFit } from './types.js';

/** When a fit is trusted. */
export interface FitOptions {
  /** Fewest usable points. */
  readonly minPoints: number;
  /** Smallest coefficient of determination. */
  readonly minR2: number;
  /**
   * Smallest spread of the mirrored rate, (p95 - p5) / p95: a history at one load shows the cost of that
   * load only, not how the cost grows with it.
   */
  readonly minRelativeSpread: number;
}

export const DEFAULT_FIT_OPTIONS: FitOptions = { minPoints: 20, minR2: 0.5, minRelativeSpread: 0.25 };

/** Huber's tuning constant: 95 % efficiency on normal noise, bounded influence of outliers. */
const HUBER_K = 1.345;
/** MAD of normal noise is 0.6745 sigma. */
const MAD_TO_SIGMA = 1 / 0.6745;
const MAX_ITERATIONS = 30;

/** Points a fit starts from: mirrored rate and signal value per time step, and what was dropped. */
export interface CleanPoints {
  readonly xs: number[];
  readonly ys: number[];
  /** Steps left out because the rate or the value was missing, NaN or ±Inf. */
  readonly missing: number;
  /** Steps left out because the rate or the value was negative (counter-reset artefacts). */
  readonly negative: number;
  /** Steps left out because the target received no requests. */
  readonly idle: number;
}

/**
 * Keeps the steps where both the mirrored rate and the value are usable: finite, not negative (a rate can
 * only come out negative from a counter-reset artefact), and with traffic (an idle target says nothing about
 * the cost of load).
 */
export function cleanPoints(
  rps: readonly (number | null)[],
  values: readonly (number | null)[],
): CleanPoints {
  const xs: number[] = [];
  const ys: number[] = [];
  let missing = 0;
  let negative = 0;
  let idle = 0;
  const n = Math.min(rps.length, values.length);
  for (let i = 0; i < n; i++) {
    const x = rps[i];
    const y = values[i];
    if (x === null || x === undefined || y === null || y === undefined) missing++;
    else if (!Number.isFinite(x) || !Number.isFinite(y)) missing++;
    else if (x < 0 || y < 0) negative++;
    else if (x === 0) idle++;
    else {
      xs.push(x);
      ys.push(y);
    }
  }
  return { xs, ys, missing, negative, idle };
}

/** A line, value = intercept + slope * x. */
export interface Line {
  readonly intercept: number;
  readonly slope: number;
}

/**
 * Theil–Sen on a deterministic subsample: each point paired with the one half the sorted range away, so the
 * cost is O(n log n) instead of O(n²), with the estimator's 29 % breakdown point kept in practice.
 */
export function theilSen(xs: readonly number[], ys: readonly number[]): Line {
  const order = xs.map((_, i) => i).sort((a, b) => (xs[a] ?? 0) - (xs[b] ?? 0));
  const half = Math.floor(order.length / 2);
  const slopes: number[] = [];
  for (let k = 0; k + half < order.length && half > 0; k++) {
    const i = order[k] ?? 0;
    const j = order[k + half] ?? 0;
    const dx = (xs[j] ?? 0) - (xs[i] ?? 0);
    if (dx > 0) slopes.push(((ys[j] ?? 0) - (ys[i] ?? 0)) / dx);
  }
  const slope = slopes.length > 0 ? median(slopes) : 0;
  const intercept = median(ys.map((y, i) => y - slope * (xs[i] ?? 0)));
  return { intercept, slope };
}

function weightedLeastSquares(
  xs: readonly number[],
  ys: readonly number[],
  ws: readonly number[],
): Line | undefined {
  let sw = 0;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < xs.length; i++) {
    const w = ws[i] ?? 0;
    sw += w;
    sx += w * (xs[i] ?? 0);
    sy += w * (ys[i] ?? 0);
  }
  if (!(sw > 0)) return undefined;
  const mx = sx / sw;
  const my = sy / sw;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < xs.length; i++) {
    const w = ws[i] ?? 0;
    const dx = (xs[i] ?? 0) - mx;
    sxx += w * dx * dx;
    sxy += w * dx * ((ys[i] ?? 0) - my);
  }
  if (!(sxx > 0)) return undefined;
  const slope = sxy / sxx;
  return { intercept: my - slope * mx, slope };
}

/**
 * A robust line through the points: Theil–Sen start, then Huber-weighted least squares until the line stops
 * moving. Needs at least two points with different x; with fewer it returns the median as a flat line.
 */
export function robustLine(xs: readonly number[], ys: readonly number[]): Line {
  if (ys.length === 0) return { intercept: 0, slope: 0 };
  if (new Set(xs).size < 2) return { intercept: median([...ys]), slope: 0 };
  let line = theilSen(xs, ys);
  for (let iter = 0; iter < MAX_ITERATIONS; iter++) {
    const residuals = ys.map((y, i) => y - (line.intercept + line.slope * (xs[i] ?? 0)));
    const scale = medianAbsoluteDeviation(residuals) * MAD_TO_SIGMA;
    // A perfect fit for more than half the points: the outliers must not pull it away.
    if (!(scale > 0)) break;
    const c = HUBER_K * scale;
    const ws = residuals.map((r) => (Math.abs(r) <= c ? 1 : c / Math.abs(r)));
    const next = weightedLeastSquares(xs, ys, ws);
    if (next === undefined) break;
    const moved =
      Math.abs(next.slope - line.slope) <= 1e-9 * Math.max(1, Math.abs(line.slope)) &&
      Math.abs(next.intercept - line.intercept) <= 1e-9 * Math.max(1, Math.abs(line.intercept));
    line = next;
    if (moved) break;
  }
  return line;
}

/** 1 - SSres / SStot; 0 when the values do not vary (nothing to explain), never below 0. */
function coefficientOfDetermination(xs: readonly number[], ys: readonly number[], line: Line): number {
  if (ys.length < 2) return 0;
  const first = ys[0];
  if (ys.every((y) => y === first)) return 0;
  const pairs = xs.map((x, i) => [x, ys[i] ?? 0]);
  const r2 = rSquared(pairs, (x: number) => line.intercept + line.slope * x);
  return Number.isFinite(r2) ? Math.max(0, Math.min(1, r2)) : 0;
}

function fmt(n: number): string {
  return Number(n.toPrecision(3)).toString();
}

/**
 * Fits one signal against the mirrored request rate and judges whether the fit can be trusted.
 * @param rps mirrored requests/s the target received, per time step (null where unknown)
 * @param values the signal per time step, aligned with `rps`
 * @param limit the policy's guardrail for the signal
 */
export function fitSignal(
  signal: SignalName,
  limit: number,
  rps: readonly (number | null)[],
  values: readonly (number | null)[],
  options: FitOptions = DEFAULT_FIT_OPTIONS,
): SignalFit {
  const { xs, ys } = cleanPoints(rps, values);
  const points = xs.length;
  const sorted = [...xs].sort((a, b) => a - b);
  const rpsRange: [number, number] = points > 0 ? [sorted[0] ?? 0, sorted[points - 1] ?? 0] : [0, 0];
  const line = robustLine(xs, ys);
  const r2 = coefficientOfDetermination(xs, ys, line);
  const capacityRps = line.slope > 0 ? Math.max(0, (limit - line.intercept) / line.slope) : null;

  let why: string | undefined;
  if (points < options.minPoints) {
    why = `only ${points} time steps have both a mirrored rate and a ${signal} value (need at least ${options.minPoints})`;
  } else {
    const p5 = quantileSorted(sorted, 0.05);
    const p95 = quantileSorted(sorted, 0.95);
    if (!(p95 > 0) || (p95 - p5) / p95 < options.minRelativeSpread) {
      why = `the mirrored rate hardly varied (5th to 95th percentile ${fmt(p5)} to ${fmt(p95)} req/s): the history does not show how ${signal} grows with load`;
    } else if (!(line.slope > 0)) {
      why = `${signal} does not rise with the mirrored rate (slope ${fmt(line.slope)} per req/s)`;
    } else if (r2 < options.minR2) {
      why = `the line explains only ${Math.round(r2 * 100)} % of the variation of ${signal} (r2 ${fmt(r2)}, need ${options.minR2})`;
    }
  }
  return {
    signal,
    limit,
    intercept: line.intercept,
    slope: line.slope,
    r2,
    points,
    rpsRange,
    capacityRps,
    trusted: why === undefined,
    ...(why !== undefined && { why }),
  };
}

/** The value the fit predicts at `rps`, kept inside what the signal can take (not negative; errors at most 1). */
export function predict(fit: Pick<SignalFit, 'signal' | 'intercept' | 'slope'>, rps: number): number {
  const v = fit.intercept + fit.slope * rps;
  const floored = Math.max(0, v);
  return fit.signal === 'errorRate' ? Math.min(1, floored) : floored;
}

/**
 * The mirrored rate the target can take before its first guardrail, from the trusted fits that reach their
 * limit; null when none does.
 */
export function capacityOf(fits: readonly SignalFit[]): number | null {
  let best: number | null = null;
  for (const f of fits) {
    if (!f.trusted || f.capacityRps === null) continue;
    if (best === null || f.capacityRps < best) best = f.capacityRps;
  }
  return best;
}
