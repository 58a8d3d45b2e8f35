/**
 * The simulator's observation (src/sim/prometheus.ts, src/sim/promql.ts) against the real thing: one
 * deterministic plant (no noise; 10 % mirrored, stepping to 19 % so that CPU, errors and p99 all move),
 * once served live as Prometheus text and scraped every second by the real Prometheus, and once run through
 * the simulator's observer fed at the very instants Prometheus scraped. At several instants (before the
 * step, while the rate window slides over it, after it) the daemon's own readings (PrometheusSignalSource:
 * CPU utilisation, error rate, p99, request rate) and the production-rate query (productionQuery) agree with
 * the simulator's.
 *
 * Tolerance: 0.5 % relative. Both sides run the same arithmetic (rate extrapolation, histogram
 * interpolation) on the same sample times, so what remains is the few milliseconds between the timestamp
 * Prometheus gives a scrape and the instant the plant's counters were read for it (a relative error of about
 * that time over the window) plus float rounding; a difference in how either side computes a reading (a
 * window edge, extrapolation, bucket interpolation, a series counted twice) is percent-sized or more.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LivePlant } from '../../bench/live/plant.js';
import { startScrapingPrometheus, stopChild } from '../../bench/live/processes.js';
import type { SignalName } from '../../src/core/types.js';
import { PrometheusSignalSource } from '../../src/signals/prometheus.js';
import { productionQuery } from '../../src/signals/promql.js';
import { EXPOSITION_CONTENT_TYPE, type ExpositionNames } from '../../src/sim/exposition.js';
import {
  CPU_BOUND_PROFILE,
  createPlant,
  NO_NOISE,
  type PlantConfig,
  productionRps,
  type TargetCounters,
} from '../../src/sim/plant.js';
import { createObserver, DEFAULT_OBSERVATION } from '../../src/sim/prometheus.js';
import { promRate } from '../../src/sim/promql.js';
import { pause } from '../support/wait.js';

const TOLERANCE = 0.005;
const WINDOW = 10;
const STEP_AT = 24;
const END_AT = STEP_AT + 16;
const BEFORE = 10;
const AFTER = 19;
const SEED = 3;

const NAMES: ExpositionNames = {
  namespace: 'shop',
  targetWorkload: 'checkout-shadow',
  targetService: 'checkout-shadow',
  primaryService: 'checkout',
  primaryWorkload: 'checkout',
  sourceWorkload: 'frontend',
  pods: ['checkout-shadow-7d9fcb6b4-x2k4q', 'checkout-shadow-7d9fcb6b4-m8zpt'],
};

const PLANT: PlantConfig = {
  profile: CPU_BOUND_PROFILE,
  capacityRps: [[0, 400]],
  traffic: { baseRps: 2000 },
  backgroundRps: 0,
  noise: NO_NOISE,
};

const GUARDRAILS: readonly SignalName[] = ['cpuUtilization', 'errorRate', 'latencyP99Ms'];

/** A fresh run of the same plant, advanced to any plant time: the simulator's side. */
function simulatedPlant() {
  const plant = createPlant(PLANT, SEED);
  let last = 0;
  let production = 0;
  const advanceTo = (t: number): void => {
    while (last < t) {
      const end = last < STEP_AT && t > STEP_AT ? STEP_AT : t;
      plant.advance(last, end - last, last < STEP_AT ? BEFORE : AFTER);
      production += productionRps(PLANT.traffic, last) * (end - last);
      last = end;
    }
  };
  const counters = (): TargetCounters => ({
    ...plant.counters,
    latencyBuckets: Float64Array.from(plant.counters.latencyBuckets),
  });
  return { advanceTo, counters, production: () => production };
}

const relative = (a: number, b: number): number =>
  Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-12);

let server: Server;
let prometheus: Awaited<ReturnType<typeof startScrapingPrometheus>>;
let dir: string;
let t0Ms: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mirror-autoscaler-agreement-'));
  t0Ms = Date.now();
  const live = new LivePlant({
    plant: PLANT,
    seed: SEED,
    t0Ms,
    startSeconds: 0,
    bounds: { minPercent: 0, maxPercent: 100 },
    guardrails: { cpuUtilization: 0.75, errorRate: 0.02, latencyP99Ms: 250 },
    propagationSeconds: 0,
    initialPercent: BEFORE,
    names: NAMES,
  });
  // The step, scheduled up front: the plant splits its advance exactly at STEP_AT.
  live.read(AFTER, STEP_AT);
  server = createServer((req, res) => {
    live.advanceTo(live.timeAt(Date.now()));
    const body = req.url === '/metrics' ? live.metrics() : 'not found\n';
    res.writeHead(req.url === '/metrics' ? 200 : 404, { 'content-type': EXPOSITION_CONTENT_TYPE });
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  prometheus = await startScrapingPrometheus(dir, 1, port);
  await pause(Math.max(0, t0Ms + END_AT * 1000 - Date.now()));
}, 120_000);

afterAll(async () => {
  if (prometheus !== undefined) await stopChild(prometheus.child, 10_000);
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  await rm(dir, { recursive: true, force: true });
});

async function instantQuery(query: string, atMs: number): Promise<unknown[]> {
  const url = `${prometheus.url}/api/v1/query?query=${encodeURIComponent(query)}&time=${atMs / 1000}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; data: { result: unknown[] } };
  expect(body.status).toBe('success');
  return body.data.result;
}

describe('simulated observation and the real Prometheus', () => {
  it('read the same CPU, error rate, p99, request rate and production rate', async () => {
    // The sample times Prometheus stored for the target (all its series come from one scrape).
    const raw = (await instantQuery(
      'istio_requests_total{reporter="destination",destination_workload="checkout-shadow",response_code="200"}[5m]',
      Date.now(),
    )) as { values: [number, string][] }[];
    const stamps = (raw[0]?.values ?? []).map(([ts]) => Math.round(ts * 1000));
    expect(stamps.length).toBeGreaterThan(END_AT - 10);
    const firstMs = stamps[0] as number;

    // The simulator's observer on a time axis where every scrape Prometheus made is at a whole second
    // (Prometheus aligns timestamps to its interval within a few ms): sample k at k seconds, with the plant's
    // counters at the instant Prometheus stamped. A scrape Prometheus missed is simply not offered.
    const sim = simulatedPlant();
    const observer = createObserver(
      { ...DEFAULT_OBSERVATION, scrapeIntervalSeconds: 1, scrapeOffsetSeconds: 0 },
      SEED,
      0,
      PLANT.profile.cpuRequestCores,
    );
    const times: number[] = [];
    const production: number[] = [];
    let worstJitterMs = 0;
    for (const ms of stamps) {
      const k = Math.round((ms - firstMs) / 1000);
      worstJitterMs = Math.max(worstJitterMs, Math.abs(ms - firstMs - k * 1000));
      sim.advanceTo((ms - t0Ms) / 1000);
      observer.offer(k, sim.counters());
      times.push(k);
      production.push(sim.production());
    }
    expect(worstJitterMs, 'scrape timestamps off the 1 s grid').toBeLessThan(50);

    const source = new PrometheusSignalSource({ url: prometheus.url, learnScrapeIntervals: false });
    const step = t0Ms + STEP_AT * 1000;
    // Before the step; while the window slides over it (a quarter, a half, most of it); after it.
    const instants = [step - 1500, step + 2700, step + 5300, step + 8100, step + 12_400];
    const rows: string[] = [];
    const cpu: number[] = [];
    for (const atMs of instants) {
      const k = (atMs - firstMs) / 1000;
      const simulated = observer.query(k, WINDOW, GUARDRAILS);
      const reading = (
        await source.fetch(
          [
            {
              key: 'p',
              namespace: NAMES.namespace,
              workload: NAMES.targetWorkload,
              windowSeconds: WINDOW,
              guardrails: GUARDRAILS,
              queries: {},
            },
          ],
          new Date(atMs),
        )
      ).get('p');
      const prodReal = Number(
        (
          (await instantQuery(
            productionQuery({ namespace: 'shop', name: 'checkout' }, 'checkout-shadow', WINDOW),
            atMs,
          )) as {
            value: [number, string];
          }[]
        )[0]?.value[1],
      );
      const from = times.findIndex((x) => x >= k - WINDOW);
      let to = times.length - 1;
      while (to >= 0 && (times[to] ?? 0) > k) to--;
      const prodSim = promRate(times, production, from, to, k, WINDOW);

      const pairs: [string, number | undefined, number | undefined][] = [
        ...GUARDRAILS.map((name): [string, number | undefined, number | undefined] => {
          const a = reading?.signals[name];
          const b = simulated.signals[name];
          return [name, a?.kind === 'value' ? a.value : undefined, b?.kind === 'value' ? b.value : undefined];
        }),
        [
          'requestRate',
          reading?.requestRate.kind === 'value' ? reading.requestRate.value : undefined,
          simulated.requestRate.kind === 'value' ? simulated.requestRate.value : undefined,
        ],
        ['productionRate', prodReal, prodSim],
      ];
      cpu.push(pairs[0]?.[1] ?? Number.NaN);
      for (const [name, real, simulatedValue] of pairs) {
        expect(real, `${name} at step${atMs >= step ? '+' : ''}${atMs - step} ms: real`).toBeTypeOf('number');
        expect(simulatedValue, `${name}: simulated`).toBeTypeOf('number');
        const d = relative(real as number, simulatedValue as number);
        rows.push(
          `${String(atMs - step).padStart(6)} ms ${name.padEnd(15)} real ${(real as number).toPrecision(7)} sim ${(simulatedValue as number).toPrecision(7)} diff ${(d * 100).toFixed(4)} %`,
        );
        expect(
          d,
          `${name} at ${atMs - step} ms from the step: real ${real}, simulated ${simulatedValue}`,
        ).toBeLessThan(TOLERANCE);
      }
    }
    // The readings moved with the step (u 0.5 -> 0.95), or the comparison would prove little.
    expect((cpu[cpu.length - 1] ?? 0) / (cpu[0] ?? 1)).toBeGreaterThan(1.5);
    console.log(`scrape jitter ${worstJitterMs} ms\n${rows.join('\n')}`);
  }, 60_000);
});
