/**
 * The production rate of the mirrored route and the learned scrape interval, read by PrometheusSignalSource
 * from a real Prometheus holding backfilled series at 5 s, 15 s and 30 s spacing.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { productionWindowSeconds } from '../../src/core/defaults.js';
import type { Signal } from '../../src/core/types.js';
import { formatDuration } from '../../src/policy/duration.js';
import {
  PrometheusSignalSource,
  type QueryEvent,
  type SignalReading,
  type SignalRequest,
} from '../../src/signals/index.js';
import { productionQuery, scrapeIntervalQuery } from '../../src/signals/promql.js';
import {
  FUTURE_SECONDS,
  HISTORY_SECONDS,
  type MisbehavingPrometheus,
  startMisbehavingPrometheus,
  startPrometheus,
  type TestPrometheus,
} from '../support/prometheus.js';

interface Series {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly stepSeconds: number;
  /** Counter value at an offset (seconds from now). */
  readonly valueAt: (offset: number) => number;
}

const istio = (
  reporter: string,
  service: { namespace: string; name: string },
  workload: { namespace: string; name: string },
  rps: number,
  stepSeconds: number,
): Series => ({
  name: 'istio_requests_total',
  labels: {
    reporter,
    destination_service_namespace: service.namespace,
    destination_service_name: service.name,
    destination_workload_namespace: workload.namespace,
    destination_workload: workload.name,
    response_code: '200',
  },
  stepSeconds,
  valueAt: (o) => rps * (o + HISTORY_SECONDS),
});

const cpu = (namespace: string, pod: string, container: string, stepSeconds: number): Series => ({
  name: 'container_cpu_usage_seconds_total',
  labels: { namespace, pod, container, cpu: 'total' },
  stepSeconds,
  valueAt: (o) => 0.1 * (o + HISTORY_SECONDS),
});

const own = (namespace: string, name: string) => ({ namespace, name });

/** Targets with their own scrape spacing (Istio counter / cAdvisor counter). */
const SCRAPE_SERIES: Series[] = [
  istio('destination', own('lab', 'fast'), own('lab', 'fast'), 5, 5),
  cpu('lab', 'fast-7d9f8-abcde', 'app', 5),
  istio('destination', own('lab', 'slow'), own('lab', 'slow'), 5, 30),
  cpu('lab', 'slow-7d9f8-abcde', 'app', 30),
  // Requests scraped every 5 s, CPU every 30 s: the slower one sets the interval.
  istio('destination', own('lab', 'mixed'), own('lab', 'mixed'), 5, 5),
  cpu('lab', 'mixed-7d9f8-abcde', 'app', 30),
  // A second pod of fast that only appeared 2 minutes ago: fewer samples, a looser bound, ignored.
  { ...cpu('lab', 'fast-7d9f8-newer', 'app', 5), valueAt: (o) => 0.1 * (o + 120) },
];

const SHOP = 'shop';
/** Production series of the primary services; the mirror target shares checkout's service name (subset). */
const PRODUCTION_SERIES: Series[] = [
  istio('destination', own(SHOP, 'checkout'), own(SHOP, 'checkout'), 40, 15),
  istio('destination', own(SHOP, 'checkout'), own(SHOP, 'checkout-v2'), 2, 15),
  // The mirrored copies, reported by the target's sidecar under the primary's service name.
  istio('destination', own(SHOP, 'checkout'), own(SHOP, 'checkout-shadow'), 10, 15),
  // The caller's sidecar reports the same production requests: not counted again.
  istio('source', own(SHOP, 'checkout'), own(SHOP, 'checkout'), 40, 15),
  cpu(SHOP, 'checkout-shadow-7d9f8-abcde', 'app', 15),
  // A service whose counters stand still: no traffic.
  istio('destination', own(SHOP, 'quiet'), own(SHOP, 'quiet'), 0, 15),
];

/** Each series' samples from -HISTORY to +FUTURE at its own spacing, aligned on "now". */
function write(series: readonly Series[]) {
  return (file: string, nowSeconds: number): number => {
    const byName = new Map<string, Series[]>();
    for (const s of series) byName.set(s.name, [...(byName.get(s.name) ?? []), s]);
    const fd = openSync(file, 'w');
    let samples = 0;
    try {
      for (const [name, list] of byName) {
        writeSync(fd, `# TYPE ${name.replace(/_total$/, '')} counter\n`);
        for (const s of list) {
          const labels = Object.entries(s.labels)
            .map(([k, v]) => `${k}="${v}"`)
            .join(',');
          const lines: string[] = [];
          for (let o = -HISTORY_SECONDS; o <= FUTURE_SECONDS; o += s.stepSeconds) {
            const v = s.valueAt(o);
            if (v < 0) continue;
            lines.push(`${name}{${labels}} ${Number(v.toPrecision(12))} ${nowSeconds + o}\n`);
          }
          samples += lines.length;
          writeSync(fd, lines.join(''));
        }
      }
      writeSync(fd, '# EOF\n');
    } finally {
      closeSync(fd);
    }
    return samples;
  };
}

let prom: TestPrometheus;
let broken: MisbehavingPrometheus;

beforeAll(async () => {
  [prom, broken] = await Promise.all([
    startPrometheus([], { write: write([...SCRAPE_SERIES, ...PRODUCTION_SERIES]) }),
    startMisbehavingPrometheus(),
  ]);
});

afterAll(async () => {
  await Promise.all([prom?.stop(), broken?.stop()]);
});

function request(workload: string, overrides: Partial<SignalRequest> = {}, namespace = 'lab'): SignalRequest {
  return {
    key: workload,
    namespace,
    workload,
    windowSeconds: 120,
    guardrails: ['cpuUtilization'],
    queries: {},
    ...overrides,
  };
}

function source(
  url = prom.url,
  options: { scrapeRelearnSeconds?: number; scrapeRetrySeconds?: number } = {},
) {
  const events: QueryEvent[] = [];
  const src = new PrometheusSignalSource({
    url,
    timeoutMs: 5000,
    onQuery: (e) => events.push(e),
    ...options,
  });
  return { src, events };
}

function get(readings: Map<string, SignalReading>, key: string): SignalReading {
  const r = readings.get(key);
  if (r === undefined) throw new Error(`no reading for ${key}`);
  return r;
}

function numberOf(s: Signal | undefined): number {
  if (s?.kind !== 'value') throw new Error(`expected a value, got ${JSON.stringify(s)}`);
  return s.value;
}

/** The production window of a 2 m policy whose target is scraped every 15 s, as the core defines it. */
const PW = `${productionWindowSeconds(120, 15)}s`;

const learnQueries = (events: readonly QueryEvent[]) =>
  events.filter((e) => e.query.includes('count_over_time'));
const productionQueries = (events: readonly QueryEvent[]) =>
  events.filter((e) => e.query.includes('destination_service_name=~'));

describe('scrape interval learned from the samples', () => {
  it('learns 5 s and 30 s, the slower family wins, in one query for every workload', async () => {
    const { src, events } = source();
    const readings = await src.fetch(
      [request('fast'), request('slow'), request('mixed'), request('unknown')],
      prom.now,
    );
    expect(get(readings, 'fast').scrapeInterval).toEqual({ seconds: 5, source: 'learned' });
    expect(get(readings, 'slow').scrapeInterval).toEqual({ seconds: 30, source: 'learned' });
    expect(get(readings, 'mixed').scrapeInterval).toEqual({ seconds: 30, source: 'learned' });
    // No series at all: the default, and said so.
    expect(get(readings, 'unknown').scrapeInterval).toEqual({ seconds: 15, source: 'default' });
    expect(learnQueries(events)).toHaveLength(1);
    expect(learnQueries(events).every((e) => e.ok)).toBe(true);
  });

  it("the policy's own interval wins over the learned one and needs no learning", async () => {
    const { src, events } = source();
    const readings = await src.fetch([request('fast', { scrapeIntervalSeconds: 20 })], prom.now);
    expect(get(readings, 'fast').scrapeInterval).toEqual({ seconds: 20, source: 'policy' });
    expect(learnQueries(events)).toHaveLength(0);
  });

  it('learns again only every scrapeRelearnSeconds, not every cycle', async () => {
    const { src, events } = source(prom.url, { scrapeRelearnSeconds: 600 });
    const at = (s: number) => new Date(prom.now.getTime() - 900_000 + s * 1000);
    await src.fetch([request('slow')], at(0));
    await src.fetch([request('slow')], at(30));
    await src.fetch([request('slow')], at(599));
    expect(learnQueries(events)).toHaveLength(1);
    const later = await src.fetch([request('slow')], at(600));
    expect(learnQueries(events)).toHaveLength(2);
    expect(get(later, 'slow').scrapeInterval).toEqual({ seconds: 30, source: 'learned' });
    // A policy added later is learned on its own at its first cycle.
    await src.fetch([request('slow'), request('fast')], at(630));
    expect(learnQueries(events)).toHaveLength(3);
    expect(learnQueries(events)[2]?.query).toContain('destination_workload=~"fast"');
  });

  it('a failed learning falls back to the default and is retried after scrapeRetrySeconds', async () => {
    const { src, events } = source(broken.url('http500'), { scrapeRetrySeconds: 60 });
    const t0 = Date.parse('2026-12-04T12:00:00Z');
    const first = await src.fetch([request('fast')], new Date(t0));
    expect(get(first, 'fast').scrapeInterval).toEqual({ seconds: 15, source: 'default' });
    await src.fetch([request('fast')], new Date(t0 + 30_000));
    expect(learnQueries(events)).toHaveLength(1);
    await src.fetch([request('fast')], new Date(t0 + 60_000));
    expect(learnQueries(events)).toHaveLength(2);
    expect(learnQueries(events).every((e) => !e.ok)).toBe(true);
  });

  it('the query answers one number per workload and family', async () => {
    const res = await fetch(`${prom.url}/api/v1/query`, {
      method: 'POST',
      body: new URLSearchParams({
        query: scrapeIntervalQuery([
          { namespace: 'lab', workload: 'fast' },
          { namespace: 'lab', workload: 'mixed' },
        ]),
        time: String(prom.now.getTime() / 1000),
      }),
    });
    const body = (await res.json()) as {
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    const got = body.data.result
      .map(
        (r) =>
          `${r.metric.mirror_autoscaler_part} ${r.metric.destination_workload ?? r.metric.workload} ${r.value[1]}`,
      )
      .sort();
    // Aligned samples: the bound is exact; 15 minutes hold 181 samples at 5 s and 31 at 30 s.
    expect(got).toEqual([
      'cpu fast 5',
      'cpu mixed 30',
      'cpu_samples fast 181',
      'cpu_samples mixed 31',
      'istio fast 5',
      'istio mixed 5',
      'istio_samples fast 181',
      'istio_samples mixed 181',
    ]);
  });
});

describe('production rate of the mirrored route', () => {
  const checkout = { namespace: SHOP, name: 'checkout' };
  const shadow = (overrides: Partial<SignalRequest> = {}) =>
    request('checkout-shadow', { production: { service: checkout }, ...overrides }, SHOP);

  it('sums the primary service without the mirror target and without the caller side', async () => {
    const { src } = source();
    const r = get(await src.fetch([shadow()], prom.now), 'checkout-shadow');
    // checkout 40 + checkout-v2 2; the mirrored 10 and the source-side 40 are not production.
    expect(numberOf(r.productionRate)).toBeCloseTo(42, 6);
  });

  it('reads over productionWindowSeconds of the scrape interval in use (15 s, learned)', async () => {
    const { src, events } = source();
    const r = get(await src.fetch([shadow()], prom.now), 'checkout-shadow');
    expect(r.scrapeInterval).toEqual({ seconds: 15, source: 'learned' });
    expect(productionQueries(events).map((e) => e.query)).toEqual([
      `sum by (destination_service_namespace, destination_service_name, destination_workload) (rate(istio_requests_total{reporter="destination",destination_service_namespace=~"shop",destination_service_name=~"checkout"}[${PW}]))`,
    ]);
  });

  it('agrees with the single-service query the backtest reads', async () => {
    const res = await fetch(`${prom.url}/api/v1/query`, {
      method: 'POST',
      body: new URLSearchParams({
        query: productionQuery(checkout, 'checkout-shadow', 45),
        time: String(prom.now.getTime() / 1000),
      }),
    });
    const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
    expect(Number(body.data.result[0]?.value[1])).toBeCloseTo(42, 6);
  });

  it('no requests: NoTraffic; no series: NoSeries; unknown service: NoSeries; and none of it fails the rest', async () => {
    const { src, events } = source();
    const readings = await src.fetch(
      [
        request('quiet-shadow', { production: { service: { namespace: SHOP, name: 'quiet' } } }, SHOP),
        request('ghost-shadow', { production: { service: { namespace: SHOP, name: 'ghost' } } }, SHOP),
        request('fast', { production: {} }),
        request('slow'),
      ],
      prom.now,
    );
    const reason = (k: string) => {
      const s = get(readings, k).productionRate;
      return s?.kind === 'absent' ? `${s.reason}: ${s.detail}` : JSON.stringify(s);
    };
    expect(reason('quiet-shadow')).toBe(`NoTraffic: no requests to service shop/quiet in the ${PW} window`);
    expect(reason('ghost-shadow')).toBe(
      `NoSeries: no istio_requests_total series with reporter="destination" for service shop/ghost (besides the mirror target ghost-shadow) in the ${PW} window`,
    );
    expect(reason('fast')).toBe('NoSeries: the primary service of the mirrored route is unknown');
    // Not asked for: no productionRate at all.
    expect('productionRate' in get(readings, 'slow')).toBe(false);
    // Both known services in one query, whatever the number of policies.
    expect(productionQueries(events)).toHaveLength(1);
    expect(numberOf(get(readings, 'slow').requestRate)).toBeCloseTo(5, 6);
  });

  it("leaves out only the policy's own target workload", async () => {
    const { src } = source();
    const r = get(
      await src.fetch(
        [request('checkout', { production: { service: { namespace: SHOP, name: 'checkout' } } }, SHOP)],
        prom.now,
      ),
      'checkout',
    );
    // A policy whose target is workload checkout: checkout-v2 (2) and checkout-shadow (10) are left.
    expect(numberOf(r.productionRate)).toBeCloseTo(12, 6);
  });

  it('runs the productionRate override with the service and the production window filled in', async () => {
    const query =
      'sum(rate(istio_requests_total{reporter="destination",destination_service_namespace="{{serviceNamespace}}",destination_service_name="{{service}}",destination_workload!="{{workload}}"}[{{window}}]))';
    const { src, events } = source();
    const r = get(
      await src.fetch([shadow({ production: { service: checkout, query } })], prom.now),
      'checkout-shadow',
    );
    expect(numberOf(r.productionRate)).toBeCloseTo(42, 6);
    expect(events.filter((e) => e.kind === 'override').map((e) => e.query)).toEqual([
      `sum(rate(istio_requests_total{reporter="destination",destination_service_namespace="shop",destination_service_name="checkout",destination_workload!="checkout-shadow"}[${formatDuration(productionWindowSeconds(120, 15))}]))`,
    ]);
    expect(productionQueries(events)).toHaveLength(0);
  });

  it('a failing Prometheus: QueryFailed, and the reading is still there', async () => {
    const { src } = source(broken.url('http500'));
    const r = get(await src.fetch([shadow()], prom.now), 'checkout-shadow');
    expect(r.productionRate?.kind === 'absent' && r.productionRate.reason).toBe('QueryFailed');
    expect(r.signals.cpuUtilization?.kind === 'absent' && r.signals.cpuUtilization.reason).toBe(
      'QueryFailed',
    );
  });
});
