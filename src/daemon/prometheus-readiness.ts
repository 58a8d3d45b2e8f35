/**
 * /readyz and Prometheus' data: the cycle-based readiness says whether queries reached Prometheus; this adds
 * that its answers were usable. A Prometheus that answers every query with NaN, duplicated or stale series is
 * reached, yet the daemon is as blind as if it were down, and an operator looking at readiness should see that.
 */
import type { PrometheusStatus } from '../signals/status.js';
import type { ReadinessState } from './http.js';

/**
 * The readiness `base` (from Readiness.state()) with one more reason when Prometheus' latest answers were
 * unusable and `base` does not already blame Prometheus.
 */
export function withPrometheusStatus(
  base: ReadinessState,
  status: PrometheusStatus | undefined,
): ReadinessState {
  if (status?.state !== 'unusable') return base;
  if (base.reasons.some((r) => r.includes('Prometheus'))) return base;
  return {
    ready: false,
    reasons: [
      ...base.reasons,
      `Prometheus answers, but its answers are unusable (${status.detail ?? 'no detail'})`,
    ],
  };
}
