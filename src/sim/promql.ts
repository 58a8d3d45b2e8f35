/**
 * The two pieces of PromQL arithmetic the guardrail queries rest on, reimplemented after Prometheus 2.x
 * (promql/functions.go and promql/quantile.go) so that simulated signals carry the same extrapolation and
 * bucket-interpolation effects as real ones.
 */

/**
 * PromQL's rate() over samples `(times[i], values[i])` for i in [from, to], evaluated at `end` over `range`
 * seconds: the increase between first and last sample, extrapolated towards the window edges the way
 * Prometheus 2.x does it (at most half a sample interval beyond the samples, never below zero).
 * @returns the per-second rate, or undefined when fewer than two samples (PromQL returns no series then).
 */
export function promRate(
  times: readonly number[],
  values: readonly number[],
  from: number,
  to: number,
  end: number,
  range: number,
): number | undefined {
  if (to - from < 1) return undefined;
  const t0 = times[from];
  const t1 = times[to];
  const v0 = values[from];
  const v1 = values[to];
  if (t0 === undefined || t1 === undefined || v0 === undefined || v1 === undefined) return undefined;
  let increase = v1 - v0;
  // Counter resets: a drop means the counter restarted from zero.
  let last = 0;
  for (let i = from; i <= to; i++) {
    const v = values[i] ?? 0;
    if (v < last) increase += last;
    last = v;
  }
  let toStart = t0 - (end - range);
  const toEnd = end - t1;
  const sampled = t1 - t0;
  if (sampled <= 0) return undefined;
  const average = sampled / (to - from);
  if (increase > 0 && v0 >= 0) {
    // A counter cannot have been below zero: do not extrapolate past the point where it was zero.
    const toZero = sampled * (v0 / increase);
    if (toZero < toStart) toStart = toZero;
  }
  const threshold = average * 1.1;
  let interval = sampled;
  interval += toStart < threshold ? toStart : average / 2;
  interval += toEnd < threshold ? toEnd : average / 2;
  return (increase * (interval / sampled)) / range;
}

/**
 * PromQL's histogram_quantile over cumulative bucket rates (`counts[i]` for `bounds[i]`, the last being +Inf):
 * linear interpolation inside the bucket that holds the rank.
 * @returns the quantile, or NaN when there were no observations (what PromQL returns).
 */
export function histogramQuantile(q: number, bounds: readonly number[], counts: readonly number[]): number {
  const n = counts.length;
  if (n < 2 || bounds.length !== n - 1) return Number.NaN;
  // Rates of cumulative buckets can be very slightly non-monotonic after float arithmetic: Prometheus
  // forces monotonicity too.
  const c: number[] = [];
  let max = 0;
  for (const v of counts) {
    max = Math.max(max, v);
    c.push(max);
  }
  const total = c[n - 1] ?? 0;
  if (!(total > 0)) return Number.NaN;
  let rank = q * total;
  let b = 0;
  while (b < n - 1 && (c[b] ?? 0) < rank) b++;
  if (b === n - 1) return bounds[n - 2] ?? Number.NaN;
  const upper = bounds[b] ?? 0;
  if (b === 0 && upper <= 0) return upper;
  let start = 0;
  let count = c[b] ?? 0;
  if (b > 0) {
    start = bounds[b - 1] ?? 0;
    const below = c[b - 1] ?? 0;
    count -= below;
    rank -= below;
  }
  return start + (upper - start) * (rank / count);
}
