import { describe, expect, it } from 'vitest';
import type { Signal } from '../../src/core/types.js';
import {
  type ClassifyContext,
  classifyOverride,
  classifyWorkload,
  type WorkloadObservations,
} from '../../src/signals/classify.js';

const AT = 1_800_000_000;
const ctx: ClassifyContext = {
  ref: { namespace: 'shop', workload: 'checkout-shadow' },
  windowSeconds: 120,
  atSeconds: AT,
  staleAfterSeconds: 120,
};
const fresh = AT - 10;
const podsRunning = {
  ok: true,
  value: { usageCores: 0.5, requestCores: 1, newestSampleSeconds: fresh },
} as const;

describe('classifyWorkload', () => {
  it.each<{ name: string; obs: WorkloadObservations; expected: Record<string, Signal> }>([
    {
      name: 'p99 NaN although requests flowed: NoSeries, not NoTraffic',
      obs: {
        traffic: { ok: true, value: { nonErrorRate: 5, newestSampleSeconds: fresh } },
        cpu: podsRunning,
        latency: { ok: true, value: Number.NaN },
      },
      expected: {
        requestRate: { kind: 'value', value: 5 },
        errorRate: { kind: 'value', value: 0 },
        latencyP99Ms: {
          kind: 'absent',
          reason: 'NoSeries',
          detail:
            'p99 for shop/checkout-shadow is NaN or ±Inf although it received 5 req/s (histogram buckets did not move in the 120s window)',
        },
        cpuUtilization: { kind: 'value', value: 0.5 },
      },
    },
    {
      name: 'only 5xx answers',
      obs: {
        traffic: { ok: true, value: { errorRate5xx: 2, newestSampleSeconds: fresh } },
        cpu: podsRunning,
      },
      expected: {
        requestRate: { kind: 'value', value: 2 },
        errorRate: { kind: 'value', value: 1 },
        cpuUtilization: { kind: 'value', value: 0.5 },
      },
    },
    {
      name: 'traffic query failed: the latency value still counts, the request-based signals fail',
      obs: {
        traffic: { ok: false, detail: 'HTTP 500: boom' },
        cpu: podsRunning,
        latency: { ok: true, value: 80 },
      },
      expected: {
        requestRate: { kind: 'absent', reason: 'QueryFailed', detail: 'request rate query: HTTP 500: boom' },
        errorRate: { kind: 'absent', reason: 'QueryFailed', detail: 'request rate query: HTTP 500: boom' },
        latencyP99Ms: { kind: 'value', value: 80 },
        cpuUtilization: { kind: 'value', value: 0.5 },
      },
    },
    {
      name: 'traffic query failed and p99 NaN: cannot tell no traffic from missing data',
      obs: {
        traffic: { ok: false, detail: 'HTTP 500: boom' },
        cpu: podsRunning,
        latency: { ok: true, value: Number.NaN },
      },
      expected: {
        latencyP99Ms: { kind: 'absent', reason: 'QueryFailed', detail: 'request rate query: HTTP 500: boom' },
      },
    },
    {
      name: 'latency query failed alone',
      obs: {
        traffic: { ok: true, value: { nonErrorRate: 5, newestSampleSeconds: fresh } },
        cpu: podsRunning,
        latency: { ok: false, detail: 'timed out after 10000 ms' },
      },
      expected: {
        errorRate: { kind: 'value', value: 0 },
        latencyP99Ms: {
          kind: 'absent',
          reason: 'QueryFailed',
          detail: 'p99 latency query: timed out after 10000 ms',
        },
      },
    },
    {
      name: 'a counter with a single sample in the window',
      obs: { traffic: { ok: true, value: { newestSampleSeconds: fresh } }, cpu: podsRunning },
      expected: {
        errorRate: {
          kind: 'absent',
          reason: 'NoSeries',
          detail:
            'istio_requests_total for shop/checkout-shadow has fewer than two samples in the 120s window',
        },
      },
    },
    {
      name: 'no Istio series and the CPU query failed: NoSeries, not NoTraffic',
      obs: { traffic: { ok: true, value: undefined }, cpu: { ok: false, detail: 'HTTP 503: x' } },
      expected: {
        errorRate: {
          kind: 'absent',
          reason: 'NoSeries',
          detail:
            'no istio_requests_total series with reporter="destination" for shop/checkout-shadow (pod presence unknown: the CPU query failed)',
        },
        cpuUtilization: { kind: 'absent', reason: 'QueryFailed', detail: 'CPU query: HTTP 503: x' },
      },
    },
    {
      name: 'CPU requests of zero',
      obs: {
        traffic: { ok: true, value: { nonErrorRate: 1, newestSampleSeconds: fresh } },
        cpu: { ok: true, value: { usageCores: 0.5, requestCores: 0, newestSampleSeconds: fresh } },
      },
      expected: {
        cpuUtilization: {
          kind: 'absent',
          reason: 'NoSeries',
          detail:
            'no CPU requests (kube_pod_container_resource_requests{resource="cpu"}) for the pods of shop/checkout-shadow: utilisation against requests is undefined',
        },
      },
    },
    {
      name: 'stale cAdvisor with fresh Istio',
      obs: {
        traffic: { ok: true, value: { nonErrorRate: 1, newestSampleSeconds: fresh } },
        cpu: { ok: true, value: { usageCores: 0.5, requestCores: 1, newestSampleSeconds: AT - 121 } },
      },
      expected: {
        errorRate: { kind: 'value', value: 0 },
        cpuUtilization: {
          kind: 'absent',
          reason: 'Stale',
          detail:
            'newest container_cpu_usage_seconds_total sample for shop/checkout-shadow is 121 s old (limit 120 s)',
        },
      },
    },
  ])('$name', ({ obs, expected }) => {
    expect(classifyWorkload(obs, ctx)).toMatchObject(expected);
  });

  it('omits p99 when the latency query did not run', () => {
    const out = classifyWorkload(
      { traffic: { ok: true, value: { nonErrorRate: 1 } }, cpu: podsRunning },
      ctx,
    );
    expect(out).not.toHaveProperty('latencyP99Ms');
  });
});

describe('classifyOverride', () => {
  const idle: Signal = { kind: 'value', value: 0 };
  const busy: Signal = { kind: 'value', value: 3 };
  it.each<{
    name: string;
    values: number[];
    signal: 'errorRate' | 'cpuUtilization';
    rate: Signal;
    expected: Signal;
  }>([
    {
      name: 'one value',
      values: [0.02],
      signal: 'errorRate',
      rate: busy,
      expected: { kind: 'value', value: 0.02 },
    },
    {
      name: 'no series while idle',
      values: [],
      signal: 'errorRate',
      rate: idle,
      expected: {
        kind: 'absent',
        reason: 'NoTraffic',
        detail: 'no requests to shop/checkout-shadow in the 120s window',
      },
    },
    {
      name: 'no series with traffic',
      values: [],
      signal: 'errorRate',
      rate: busy,
      expected: { kind: 'absent', reason: 'NoSeries', detail: 'errorRate override query returned no series' },
    },
    {
      name: 'NaN while idle',
      values: [Number.NaN],
      signal: 'errorRate',
      rate: idle,
      expected: {
        kind: 'absent',
        reason: 'NoTraffic',
        detail: 'no requests to shop/checkout-shadow in the 120s window',
      },
    },
    {
      name: 'NaN with traffic',
      values: [Number.NaN],
      signal: 'errorRate',
      rate: busy,
      expected: {
        kind: 'absent',
        reason: 'QueryFailed',
        detail: 'errorRate override query returned NaN or ±Inf',
      },
    },
    {
      name: 'CPU never reads as NoTraffic',
      values: [],
      signal: 'cpuUtilization',
      rate: idle,
      expected: {
        kind: 'absent',
        reason: 'NoSeries',
        detail: 'cpuUtilization override query returned no series',
      },
    },
    {
      name: 'several series',
      values: [1, 2, 3],
      signal: 'cpuUtilization',
      rate: busy,
      expected: {
        kind: 'absent',
        reason: 'QueryFailed',
        detail: 'cpuUtilization override query returned 3 series, expected 1',
      },
    },
  ])('$name', ({ values, signal, rate, expected }) => {
    expect(classifyOverride({ ok: true, value: values }, signal, rate, ctx)).toEqual(expected);
  });
});
