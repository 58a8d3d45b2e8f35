import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Signal, SignalName } from '../../src/core/types.js';
import { PrometheusSignalSource, type QueryEvent, type SignalRequest } from '../../src/signals/index.js';
import {
  FUTURE_SECONDS,
  startPrometheus,
  type TestPrometheus,
  type WorkloadData,
} from '../support/prometheus.js';

const ALL: readonly SignalName[] = ['cpuUtilization', 'errorRate', 'latencyP99Ms'];
const BATCH_SIZE = 50;

const WORKLOADS: readonly WorkloadData[] = [
  {
    namespace: 'shop',
    workload: 'healthy',
    requestsPerSecond: 40,
    errorShare: 0.01,
    clientErrorShare: 0.05,
    latency: [
      { ms: 20, share: 0.9 },
      { ms: 200, share: 0.1 },
    ],
    cpuCores: 0.6,
    cpuRequestCores: 2,
  },
  { namespace: 'shop', workload: 'hot-cpu', requestsPerSecond: 40, cpuCores: 1.8, cpuRequestCores: 1 },
  { namespace: 'shop', workload: 'failing', requestsPerSecond: 20, errorShare: 0.2, cpuCores: 0.2 },
  {
    namespace: 'shop',
    workload: 'slow',
    requestsPerSecond: 10,
    latency: [{ ms: 2000, share: 1 }],
    cpuCores: 0.2,
  },
  { namespace: 'shop', workload: 'no-errors', requestsPerSecond: 10, cpuCores: 0.3 },
  {
    namespace: 'shop',
    workload: 'idle',
    requestsPerSecond: 10,
    noTraffic: [{ fromSeconds: -900, toSeconds: FUTURE_SECONDS }],
    cpuCores: 0.05,
    cpuRequestCores: 0.5,
  },
  { namespace: 'shop', workload: 'never-served', istio: false, cpuCores: 0.02, cpuRequestCores: 0.5 },
  {
    namespace: 'shop',
    workload: 'stale',
    requestsPerSecond: 10,
    gaps: [{ fromSeconds: -240, toSeconds: FUTURE_SECONDS }],
  },
  { namespace: 'shop', workload: 'no-requests-set', requestsPerSecond: 5, cpuRequests: false },
  // Prefix of each other: pods of api-gateway must not count for api.
  { namespace: 'shop', workload: 'api', requestsPerSecond: 5, cpuCores: 0.2, cpuRequestCores: 1 },
  { namespace: 'shop', workload: 'api-gateway', requestsPerSecond: 5, cpuCores: 0.8, cpuRequestCores: 1 },
  { namespace: 'shop', workload: 'web.v2', requestsPerSecond: 7, cpuCores: 0.3, cpuRequestCores: 1 },
  ...Array.from({ length: BATCH_SIZE }, (_, i) => ({
    namespace: 'batch',
    workload: `svc-${i}`,
    requestsPerSecond: 1 + i,
    cpuCores: 0.01 * (i + 1),
    cpuRequestCores: 1,
    pods: 1,
  })),
];

let prom: TestPrometheus;

beforeAll(async () => {
  prom = await startPrometheus(WORKLOADS);
});

afterAll(async () => {
  await prom?.stop();
});

function request(
  workload: string,
  overrides: Partial<SignalRequest> = {},
  namespace = 'shop',
): SignalRequest {
  return {
    key: workload,
    namespace,
    workload,
    windowSeconds: 120,
    guardrails: ALL,
    queries: {},
    ...overrides,
  };
}

function source(options: { maxWorkloadsPerQuery?: number } = {}) {
  const events: QueryEvent[] = [];
  const src = new PrometheusSignalSource({
    url: prom.url,
    timeoutMs: 5000,
    onQuery: (e) => events.push(e),
    ...options,
  });
  return { src, events };
}

async function readOne(req: SignalRequest) {
  const { src } = source();
  const readings = await src.fetch([req], prom.now);
  const reading = readings.get(req.key);
  if (reading === undefined) throw new Error(`no reading for ${req.key}`);
  return reading;
}

function numberOf(s: Signal | undefined): number {
  if (s?.kind !== 'value') throw new Error(`expected a value, got ${JSON.stringify(s)}`);
  return s.value;
}

function absentReason(s: Signal | undefined): string {
  if (s?.kind !== 'absent') throw new Error(`expected absent, got ${JSON.stringify(s)}`);
  return s.reason;
}

/** Linear interpolation inside the bucket holding the 99th percentile, as histogram_quantile does. */
function p99Within(lowerMs: number, upperMs: number, shareBelow: number, shareInBucket: number): number {
  return lowerMs + (upperMs - lowerMs) * ((0.99 - shareBelow) / shareInBucket);
}

describe('PrometheusSignalSource against a real Prometheus', () => {
  it('reads a healthy workload: request rate, error rate (4xx not counted), p99 and CPU utilisation', async () => {
    const r = await readOne(request('healthy'));
    expect(numberOf(r.requestRate)).toBeCloseTo(40, 6);
    expect(numberOf(r.signals.errorRate)).toBeCloseTo(0.01, 6);
    // 90 % at 20 ms, 10 % at 200 ms: the 99th percentile lies in the (100, 250] bucket.
    expect(numberOf(r.signals.latencyP99Ms)).toBeCloseTo(p99Within(100, 250, 0.9, 0.1), 6);
    // 0.6 cores used against 2 cores requested; the sidecar, pause container and pod cgroup are left out.
    expect(numberOf(r.signals.cpuUtilization)).toBeCloseTo(0.6 / 2, 6);
  });

  it.each([
    {
      name: 'high CPU',
      workload: 'hot-cpu',
      signal: 'cpuUtilization' as const,
      expected: 1.8 / 1,
      limit: 0.8,
    },
    {
      name: 'high error rate',
      workload: 'failing',
      signal: 'errorRate' as const,
      expected: 0.2,
      limit: 0.05,
    },
    {
      name: 'high p99 latency',
      workload: 'slow',
      signal: 'latencyP99Ms' as const,
      expected: p99Within(1000, 2500, 0, 1),
      limit: 500,
    },
  ])('reports a breached guardrail: $name', async ({ workload, signal, expected, limit }) => {
    const r = await readOne(request(workload));
    const v = numberOf(r.signals[signal]);
    expect(v).toBeCloseTo(expected, 6);
    expect(v).toBeGreaterThan(limit);
  });

  it('reads error rate 0 for a workload with requests and no 5xx series at all', async () => {
    // The premise: Prometheus really has no 5xx series for this workload.
    const raw = await fetch(
      `${prom.url}/api/v1/query?${new URLSearchParams({
        query: 'count(istio_requests_total{destination_workload="no-errors",response_code=~"5.."})',
        time: String(prom.now.getTime() / 1000),
      })}`,
    );
    expect(((await raw.json()) as { data: { result: unknown[] } }).data.result).toEqual([]);
    const r = await readOne(request('no-errors'));
    expect(numberOf(r.requestRate)).toBeCloseTo(10, 6);
    expect(r.signals.errorRate).toEqual({ kind: 'value', value: 0 });
  });

  it('reads no traffic as NoTraffic for errors and latency while CPU still has a value', async () => {
    const r = await readOne(request('idle'));
    expect(r.requestRate).toEqual({ kind: 'value', value: 0 });
    expect(absentReason(r.signals.errorRate)).toBe('NoTraffic');
    expect(absentReason(r.signals.latencyP99Ms)).toBe('NoTraffic');
    expect(numberOf(r.signals.cpuUtilization)).toBeCloseTo(0.05 / 0.5, 6);
  });

  it('reads a workload whose pods run but that never got a request as NoTraffic, not NoSeries', async () => {
    const r = await readOne(request('never-served'));
    expect(absentReason(r.requestRate)).toBe('NoTraffic');
    expect(absentReason(r.signals.errorRate)).toBe('NoTraffic');
    expect(absentReason(r.signals.latencyP99Ms)).toBe('NoTraffic');
    expect(numberOf(r.signals.cpuUtilization)).toBeCloseTo(0.02 / 0.5, 6);
  });

  it('reads a workload with no series at all as NoSeries for every signal', async () => {
    const r = await readOne(request('ghost'));
    for (const s of [r.requestRate, r.signals.errorRate, r.signals.latencyP99Ms, r.signals.cpuUtilization]) {
      expect(absentReason(s)).toBe('NoSeries');
    }
  });

  it('reads CPU as NoSeries with a detail when the pods have no CPU requests', async () => {
    const r = await readOne(request('no-requests-set'));
    expect(r.signals.cpuUtilization).toMatchObject({ kind: 'absent', reason: 'NoSeries' });
    expect(r.signals.cpuUtilization).toHaveProperty(
      'detail',
      expect.stringContaining('kube_pod_container_resource_requests'),
    );
    expect(numberOf(r.signals.errorRate)).toBe(0);
  });

  it.each([
    { name: '2m window (rate already empty, newest sample still within the lookback)', windowSeconds: 120 },
    { name: '10m window (rate still computed from old samples)', windowSeconds: 600 },
  ])('marks signals whose newest sample is too old as Stale: $name', async ({ windowSeconds }) => {
    const r = await readOne(request('stale', { windowSeconds }));
    for (const s of [r.requestRate, r.signals.errorRate, r.signals.latencyP99Ms, r.signals.cpuUtilization]) {
      expect(s).toMatchObject({ kind: 'absent', reason: 'Stale' });
    }
    expect(r.signals.errorRate).toHaveProperty(
      'detail',
      expect.stringMatching(/istio_requests_total .* is 255 s old \(limit 120 s\)/),
    );
  });

  it('maps pods to the right workload when one name is a prefix of another, and handles dotted names', async () => {
    const { src } = source();
    const readings = await src.fetch([request('api'), request('api-gateway'), request('web.v2')], prom.now);
    expect(numberOf(readings.get('api')?.signals.cpuUtilization)).toBeCloseTo(0.2, 6);
    expect(numberOf(readings.get('api-gateway')?.signals.cpuUtilization)).toBeCloseTo(0.8, 6);
    expect(numberOf(readings.get('web.v2')?.signals.cpuUtilization)).toBeCloseTo(0.3, 6);
    expect(numberOf(readings.get('web.v2')?.requestRate)).toBeCloseTo(7, 6);
  });

  it('answers 50 workloads with as many queries as 1, and every value matches its own workload', async () => {
    const batch = Array.from({ length: BATCH_SIZE }, (_, i) =>
      request(`svc-${i}`, { key: `p${i}` }, 'batch'),
    );
    const one = source();
    await one.src.fetch(batch.slice(0, 1), prom.now);
    const many = source();
    const readings = await many.src.fetch(batch, prom.now);
    // Traffic, CPU, p99, and on a first fetch the scrape-interval learning: one each for 1 or 50 workloads.
    expect(one.src.queryCount).toBe(4);
    expect(many.src.queryCount).toBe(one.src.queryCount);
    expect(many.events.map((e) => e.kind)).toEqual(['batch', 'batch', 'batch', 'batch']);
    batch.forEach((req, i) => {
      const r = readings.get(req.key);
      expect(numberOf(r?.requestRate)).toBeCloseTo(1 + i, 6);
      expect(numberOf(r?.signals.cpuUtilization)).toBeCloseTo(0.01 * (i + 1), 6);
    });
  });

  it('splits a batch into chunks of maxWorkloadsPerQuery, with the same values', async () => {
    const batch = Array.from({ length: BATCH_SIZE }, (_, i) =>
      request(`svc-${i}`, { key: `p${i}` }, 'batch'),
    );
    const { src } = source({ maxWorkloadsPerQuery: 20 });
    const readings = await src.fetch(batch, prom.now);
    // ceil(50 / 20) = 3 chunks x (traffic, CPU, p99, scrape-interval learning).
    expect(src.queryCount).toBe(12);
    expect(numberOf(readings.get('p49')?.requestRate)).toBeCloseTo(50, 6);
  });

  it('batches per rate window: two windows cost two sets of queries', async () => {
    const { src } = source();
    const readings = await src.fetch(
      [request('healthy'), request('hot-cpu'), request('failing', { windowSeconds: 300 })],
      prom.now,
    );
    // The scrape-interval learning does not depend on the window: one for both.
    expect(src.queryCount).toBe(7);
    expect(numberOf(readings.get('failing')?.signals.errorRate)).toBeCloseTo(0.2, 6);
  });

  it('queries p99 only when a policy watches it with the default query', async () => {
    const { src } = source();
    const readings = await src.fetch(
      [request('healthy', { guardrails: ['cpuUtilization', 'errorRate'] })],
      prom.now,
    );
    // Traffic and CPU, and the first fetch's scrape-interval learning.
    expect(src.queryCount).toBe(3);
    expect(Object.keys(readings.get('healthy')?.signals ?? {}).sort()).toEqual([
      'cpuUtilization',
      'errorRate',
    ]);
  });

  it('runs a valid override query per policy, with placeholders substituted', async () => {
    const sel =
      'reporter="destination",destination_workload_namespace="{{namespace}}",destination_workload="{{workload}}"';
    const errorRate = `sum(rate(istio_requests_total{${sel},response_code=~"5.."}[{{window}}])) / sum(rate(istio_requests_total{${sel}}[{{window}}]))`;
    const latency = `scalar(histogram_quantile(0.5, sum by (le) (rate(istio_request_duration_milliseconds_bucket{${sel}}[{{window}}]))))`;
    const { src, events } = source();
    const readings = await src.fetch(
      [request('failing', { queries: { errorRate, latencyP99Ms: latency } }), request('no-errors')],
      prom.now,
    );
    const r = readings.get('failing');
    expect(numberOf(r?.signals.errorRate)).toBeCloseTo(0.2, 6);
    // Every request takes 20 ms: the median interpolates in the (10, 25] bucket.
    expect(numberOf(r?.signals.latencyP99Ms)).toBeCloseTo(10 + 15 * 0.5, 6);
    expect(events.filter((e) => e.kind === 'override').map((e) => e.query)).toContain(
      errorRate
        .replaceAll('{{namespace}}', 'shop')
        .replaceAll('{{workload}}', 'failing')
        .replaceAll('{{window}}', '2m'),
    );
    // One chunk: traffic, CPU and p99 (no-errors watches p99 with the default query) and the scrape-interval
    // learning, plus the two overrides.
    expect(events.filter((e) => e.kind === 'override')).toHaveLength(2);
    expect(events.filter((e) => e.kind === 'batch')).toHaveLength(4);
  });

  it('fails an override query that returns several series, naming the count', async () => {
    const query =
      'sum by (response_code) (rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{namespace}}",destination_workload="{{workload}}"}[{{window}}]))';
    const r = await readOne(request('healthy', { queries: { errorRate: query } }));
    expect(r.signals.errorRate).toEqual({
      kind: 'absent',
      reason: 'QueryFailed',
      detail: 'errorRate override query returned 3 series, expected 1',
    });
    // The other signals still come from the batched defaults.
    expect(numberOf(r.signals.cpuUtilization)).toBeCloseTo(0.3, 6);
  });

  it('fails an override query that Prometheus rejects, without affecting other policies', async () => {
    const { src } = source();
    const readings = await src.fetch(
      [request('healthy', { queries: { cpuUtilization: 'sum(rate(foo[{{window}}])' } }), request('hot-cpu')],
      prom.now,
    );
    expect(readings.get('healthy')?.signals.cpuUtilization).toMatchObject({
      kind: 'absent',
      reason: 'QueryFailed',
      detail: expect.stringMatching(/^cpuUtilization override query: HTTP 400: .*parse error/),
    });
    expect(numberOf(readings.get('hot-cpu')?.signals.cpuUtilization)).toBeCloseTo(1.8, 6);
  });
});
