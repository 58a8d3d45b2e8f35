/**
 * The signal presets against a real Prometheus: Istio ambient waypoint series (with ztunnel's L4 series beside
 * them) and OpenTelemetry HTTP server histograms, backfilled with their real label sets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Signal, SignalName } from '../../src/core/types.js';
import {
  PrometheusSignalSource,
  type QueryEvent,
  type SignalReading,
  type SignalRequest,
} from '../../src/signals/index.js';
import { startPrometheus, type TestPrometheus, type WorkloadData } from '../support/prometheus.js';

const ALL: readonly SignalName[] = ['cpuUtilization', 'errorRate', 'latencyP99Ms'];

const WORKLOADS: readonly WorkloadData[] = [
  // Ambient namespace "mesh" with a waypoint: the primary and a mirror target that shares its service (subset).
  { namespace: 'mesh', workload: 'checkout', mesh: 'ambient', requestsPerSecond: 40, cpuCores: 0.3 },
  {
    namespace: 'mesh',
    workload: 'checkout-shadow',
    service: 'checkout',
    mesh: 'ambient',
    requestsPerSecond: 10,
    errorShare: 0.1,
    clientErrorShare: 0.05,
    latency: [
      { ms: 20, share: 0.9 },
      { ms: 800, share: 0.1 },
    ],
    cpuCores: 0.5,
    cpuRequestCores: 1,
  },
  // In the waypoint's namespace, but its service does not use the waypoint: ztunnel series only.
  { namespace: 'mesh', workload: 'bypass', mesh: 'ambient', waypoint: false, requestsPerSecond: 5 },
  // Ambient namespace without any waypoint: ztunnel series only.
  { namespace: 'legacy', workload: 'orders', mesh: 'ambient', waypoint: false, requestsPerSecond: 5 },
  // A sidecar namespace: its reporter="destination" series are not what the ambient preset reads.
  { namespace: 'side', workload: 'inventory', requestsPerSecond: 8 },
  // OpenTelemetry-instrumented namespace "store": target cart (3 pods) and primary web.
  {
    namespace: 'store',
    workload: 'cart',
    mesh: 'otel',
    pods: 3,
    requestsPerSecond: 20,
    errorShare: 0.05,
    clientErrorShare: 0.1,
    latency: [
      { ms: 30, share: 0.95 },
      { ms: 600, share: 0.05 },
    ],
    cpuCores: 0.4,
    cpuRequestCores: 2,
  },
  { namespace: 'store', workload: 'web', mesh: 'otel', requestsPerSecond: 60 },
  { namespace: 'store', workload: 'idle', mesh: 'otel', istio: false, cpuCores: 0.1, cpuRequestCores: 1 },
];

let prom: TestPrometheus;

beforeAll(async () => {
  prom = await startPrometheus(WORKLOADS);
});

afterAll(async () => {
  await prom?.stop();
});

function request(
  namespace: string,
  workload: string,
  preset: SignalRequest['preset'],
  overrides: Partial<SignalRequest> = {},
): SignalRequest {
  return {
    key: `${preset ?? 'default'}:${namespace}/${workload}`,
    namespace,
    workload,
    windowSeconds: 120,
    guardrails: ALL,
    queries: {},
    ...(preset !== undefined && { preset }),
    ...overrides,
  };
}

async function read(requests: readonly SignalRequest[]) {
  const events: QueryEvent[] = [];
  const src = new PrometheusSignalSource({ url: prom.url, timeoutMs: 5000, onQuery: (e) => events.push(e) });
  const readings = await src.fetch(requests, prom.now);
  const get = (r: SignalRequest): SignalReading => {
    const reading = readings.get(r.key);
    if (reading === undefined) throw new Error(`no reading for ${r.key}`);
    return reading;
  };
  return { get, events };
}

function numberOf(s: Signal | undefined): number {
  if (s?.kind !== 'value') throw new Error(`expected a value, got ${JSON.stringify(s)}`);
  return s.value;
}

function absence(s: Signal | undefined): { reason: string; detail: string | undefined } {
  if (s?.kind !== 'absent') throw new Error(`expected absent, got ${JSON.stringify(s)}`);
  return { reason: s.reason, detail: s.detail };
}

describe('istio-ambient preset', () => {
  const shadow = request('mesh', 'checkout-shadow', 'istio-ambient', {
    production: { service: { namespace: 'mesh', name: 'checkout' } },
  });

  it("reads the target's signals and the production rate from the waypoint", async () => {
    const { get, events } = await read([shadow]);
    const r = get(shadow);
    expect(r.origin).toEqual({ preset: 'istio-ambient', reporter: 'waypoint' });
    expect(numberOf(r.requestRate)).toBeCloseTo(10, 6);
    // 503s count, 404s do not.
    expect(numberOf(r.signals.errorRate)).toBeCloseTo(0.1, 6);
    // 10 % at 800 ms in the (500, 1000] bucket: 500 + (0.99 - 0.9) / 0.1 × 500.
    expect(numberOf(r.signals.latencyP99Ms)).toBeCloseTo(950, 3);
    // No istio-proxy container in ambient pods: the application alone.
    expect(numberOf(r.signals.cpuUtilization)).toBeCloseTo(0.5, 6);
    // The primary's 40 req/s; the mirror target's 10 under the same service name are left out.
    expect(numberOf(r.productionRate)).toBeCloseTo(40, 6);
    expect(r.scrapeInterval).toEqual({ seconds: 15, source: 'learned' });
    const text = events.map((e) => e.query).join('\n');
    expect(text).toContain('reporter="waypoint"');
    expect(text).not.toContain('reporter="destination"');
    expect(text).not.toContain('istio_tcp_');
  });

  it('says when the namespace has no waypoint series at all (pods scraped: NoTraffic)', async () => {
    const orders = request('legacy', 'orders', 'istio-ambient');
    const { get } = await read([orders]);
    const r = get(orders);
    const want = {
      reason: 'NoTraffic',
      detail:
        'no istio_requests_total series with reporter="waypoint" in namespace legacy: is a waypoint deployed and the namespace (or service) enrolled with istio.io/use-waypoint? (target legacy/orders); its pods are scraped, so if it is enrolled it received no requests',
    };
    expect(absence(r.requestRate)).toEqual(want);
    expect(absence(r.signals.errorRate)).toEqual(want);
    expect(absence(r.signals.latencyP99Ms)).toEqual(want);
    // ztunnel's TCP series are there, and CPU still reads.
    expect(numberOf(r.signals.cpuUtilization)).toBeCloseTo(0.1, 6);
  });

  it('says so too for a namespace with sidecars only, and for a target without pods (NoSeries)', async () => {
    const inventory = request('side', 'inventory', 'istio-ambient');
    const ghost = request('legacy', 'ghost', 'istio-ambient');
    const { get } = await read([inventory, ghost]);
    expect(absence(get(inventory).signals.errorRate).detail).toMatch(
      /^no istio_requests_total series with reporter="waypoint" in namespace side: is a waypoint deployed/,
    );
    expect(absence(get(ghost).signals.errorRate)).toEqual({
      reason: 'NoSeries',
      detail:
        'no istio_requests_total series with reporter="waypoint" in namespace legacy: is a waypoint deployed and the namespace (or service) enrolled with istio.io/use-waypoint? (target legacy/ghost)',
    });
  });

  it('tells a workload without waypoint series apart from a namespace without any', async () => {
    const bypass = request('mesh', 'bypass', 'istio-ambient');
    const { get } = await read([bypass, shadow]);
    expect(absence(get(bypass).signals.errorRate)).toEqual({
      reason: 'NoTraffic',
      detail:
        'no istio_requests_total series with reporter="waypoint" for mesh/bypass, though namespace mesh has some (is its service enrolled with istio.io/use-waypoint?); its pods are scraped, so it received no requests',
    });
    // Same batch: the neighbour still reads.
    expect(numberOf(get(shadow).signals.errorRate)).toBeCloseTo(0.1, 6);
  });

  it('the default istio preset finds nothing for an ambient target', async () => {
    const plain = request('mesh', 'checkout-shadow', undefined);
    const { get } = await read([plain]);
    const r = get(plain);
    expect(r.origin).toEqual({ preset: 'istio', reporter: 'destination' });
    expect(absence(r.signals.errorRate)).toEqual({
      reason: 'NoTraffic',
      detail:
        'no istio_requests_total series with reporter="destination" for mesh/checkout-shadow; its pods are scraped, so it received no requests',
    });
  });
});

describe('otel preset', () => {
  const cart = request('store', 'cart', 'otel', {
    production: { service: { namespace: 'store', name: 'web' } },
  });

  it('reads error rate, p99, request rate and CPU from the OTel histogram and cAdvisor', async () => {
    const { get, events } = await read([cart]);
    const r = get(cart);
    expect(r.origin).toEqual({ preset: 'otel' });
    // Summed over the three pods' series.
    expect(numberOf(r.requestRate)).toBeCloseTo(20, 6);
    expect(numberOf(r.signals.errorRate)).toBeCloseTo(0.05, 6);
    // 5 % at 0.6 s in the (0.5, 0.75] bucket: 0.5 + (0.99 - 0.95) / 0.05 × 0.25 = 0.7 s.
    expect(numberOf(r.signals.latencyP99Ms)).toBeCloseTo(700, 3);
    expect(numberOf(r.signals.cpuUtilization)).toBeCloseTo(0.2, 6);
    // The primary Deployment web's own count.
    expect(numberOf(r.productionRate)).toBeCloseTo(60, 6);
    expect(r.scrapeInterval).toEqual({ seconds: 15, source: 'learned' });
    const text = events.map((e) => e.query).join('\n');
    expect(text).toContain('http_server_request_duration_seconds_bucket');
    expect(text).not.toContain('istio_requests_total');
  });

  it('a target without OTel series but with pods is idle', async () => {
    const idle = request('store', 'idle', 'otel');
    const { get } = await read([idle]);
    expect(absence(get(idle).signals.errorRate)).toEqual({
      reason: 'NoTraffic',
      detail:
        'no http_server_request_duration_seconds_count series labelled k8s_namespace_name/k8s_deployment_name for store/idle; its pods are scraped, so it received no requests',
    });
  });

  it('a query override replaces the preset query for its signal only', async () => {
    const sel = 'k8s_namespace_name="{{namespace}}",k8s_deployment_name="{{workload}}"';
    const fourxx = request('store', 'cart', 'otel', {
      key: 'override',
      queries: {
        errorRate: `sum(rate(http_server_request_duration_seconds_count{${sel},http_response_status_code=~"4.."}[{{window}}])) / sum(rate(http_server_request_duration_seconds_count{${sel}}[{{window}}]))`,
      },
    });
    const { get } = await read([fourxx]);
    const r = get(fourxx);
    expect(numberOf(r.signals.errorRate)).toBeCloseTo(0.1, 6);
    expect(numberOf(r.signals.latencyP99Ms)).toBeCloseTo(700, 3);
  });
});

describe('presets side by side', () => {
  it('one fetch reads each policy with its own preset', async () => {
    const shadow = request('mesh', 'checkout-shadow', 'istio-ambient');
    const cart = request('store', 'cart', 'otel');
    const inventory = request('side', 'inventory', 'istio');
    const { get, events } = await read([shadow, cart, inventory]);
    expect(numberOf(get(shadow).requestRate)).toBeCloseTo(10, 6);
    expect(numberOf(get(cart).requestRate)).toBeCloseTo(20, 6);
    expect(numberOf(get(inventory).requestRate)).toBeCloseTo(8, 6);
    expect(get(inventory).origin).toEqual({ preset: 'istio', reporter: 'destination' });
    // Per preset: traffic, CPU and p99 (3 each), plus one scrape-interval query each.
    expect(events.filter((e) => e.kind === 'batch')).toHaveLength(12);
  });
});
