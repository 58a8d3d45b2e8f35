import { describe, expect, it } from 'vitest';
import type { ReadinessState } from '../../src/daemon/http.js';
import { withPrometheusStatus } from '../../src/daemon/prometheus-readiness.js';
import type { PrometheusStatus } from '../../src/signals/status.js';

describe('withPrometheusStatus', () => {
  const ready: ReadinessState = { ready: true, reasons: [] };
  const rows: {
    name: string;
    base: ReadinessState;
    status: PrometheusStatus | undefined;
    want: ReadinessState;
  }[] = [
    { name: 'no status yet', base: ready, status: undefined, want: ready },
    { name: 'reachable', base: ready, status: { state: 'reachable', since: 0 }, want: ready },
    {
      name: 'degraded stays ready: other policies still work',
      base: ready,
      status: { state: 'degraded', detail: 'x', since: 0 },
      want: ready,
    },
    {
      name: 'unusable answers make it not ready',
      base: ready,
      status: { state: 'unusable', detail: 'no usable signal: Stale: old', since: 0 },
      want: {
        ready: false,
        reasons: ['Prometheus answers, but its answers are unusable (no usable signal: Stale: old)'],
      },
    },
    {
      name: 'not repeated when the cycle already blames Prometheus',
      base: {
        ready: false,
        reasons: ['last cycle did not reach Prometheus (Prometheus: every query failed (HTTP 500: x))'],
      },
      status: { state: 'unusable', detail: 'every query failed: HTTP 500: x', since: 0 },
      want: {
        ready: false,
        reasons: ['last cycle did not reach Prometheus (Prometheus: every query failed (HTTP 500: x))'],
      },
    },
    {
      name: 'added to other reasons',
      base: { ready: false, reasons: ['no valid policy is loaded'] },
      status: { state: 'unusable', detail: 'd', since: 0 },
      want: {
        ready: false,
        reasons: ['no valid policy is loaded', 'Prometheus answers, but its answers are unusable (d)'],
      },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(withPrometheusStatus(row.base, row.status)).toEqual(row.want);
    });
  }
});
