/**
 * A day of generated history from a known plant, for backtests against the real Prometheus: a mirror target
 * whose CPU is linear in the mirrored request rate (with noise), whose p99 rises toward its limit and which
 * fails above capacity; diurnal production traffic; a mirror percentage that changes every two hours and is
 * exported as mirror_autoscaler_mirror_percent. Written as OpenMetrics counters, histograms and gauges like
 * the live metrics, backfilled with promtool.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { createRandom } from '../../src/sim/random.js';
import { ISTIO_DURATION_BUCKETS_MS, podNames, startPrometheus, type TestPrometheus } from './prometheus.js';

/** Sample spacing of the generated history. */
export const HISTORY_STEP_SECONDS = 30;
/** Length of the history: a day, plus ten minutes so the first rate windows are full. */
export const HISTORY_DAY_SECONDS = 24 * 3600;
const LEAD_SECONDS = 600;

/** The plant's true behaviour. Guardrails used with it: CPU 0.8, errors 0.02, p99 400 ms. */
export interface Plant {
  /** Mirrored requests/s at which CPU utilisation reaches 0.8: the capacity the backtest must recover. */
  readonly capacityRps: number;
  /** Relative noise (standard deviation) of CPU. */
  readonly cpuNoise: number;
}

export const PLANT: Plant = { capacityRps: 100, cpuNoise: 0.03 };
export const CPU_LIMIT = 0.8;
export const ERROR_LIMIT = 0.02;
export const LATENCY_LIMIT_MS = 400;
/** CPU requests of the target, in cores, over all pods. */
const REQUEST_CORES = 2;

/** CPU utilisation at a mirrored rate: idle cost 0.1, reaching CPU_LIMIT at capacity. */
export function plantCpu(plant: Plant, rps: number): number {
  return 0.1 + ((CPU_LIMIT - 0.1) * rps) / plant.capacityRps;
}

/** p99 in ms: convex, at 230 ms at capacity and at the 400 ms limit at about 1.3 x capacity. */
export function plantLatencyMs(plant: Plant, rps: number): number {
  const x = rps / plant.capacityRps;
  return 30 + 200 * x * x;
}

/** Share of 5xx: none up to capacity, then 10 % per capacity beyond it. */
export function plantErrorShare(plant: Plant, rps: number): number {
  return Math.min(0.9, Math.max(0, 0.1 * (rps / plant.capacityRps - 1)));
}

/** Production requests/s of the route: 200 to 1,000, lowest at the start of the day and highest at noon. */
export function productionAt(secondsIntoDay: number): number {
  return 600 - 400 * Math.cos((2 * Math.PI * secondsIntoDay) / HISTORY_DAY_SECONDS);
}

/** Mirrored rate, as a share of capacity, aimed at in the middle of each two-hour block of the day. */
export const LOAD_SCHEDULE = [0.3, 0.6, 1.35, 0.2, 0.9, 1.4, 0.45, 0.25, 1.3, 0.7, 0.35, 1.2] as const;
const BLOCK_SECONDS = 2 * 3600;

/** The mirror percentage in effect `secondsIntoDay` after the start: constant per two-hour block. */
export function percentAt(plant: Plant, secondsIntoDay: number): number {
  const block = Math.min(LOAD_SCHEDULE.length - 1, Math.max(0, Math.floor(secondsIntoDay / BLOCK_SECONDS)));
  const mid = block * BLOCK_SECONDS + BLOCK_SECONDS / 2;
  const ratio = LOAD_SCHEDULE[block] ?? 0.5;
  return Math.round(((ratio * plant.capacityRps) / productionAt(mid)) * 100 * 2) / 2;
}

/** A span of the day, seconds from its start, both ends included. */
export interface Span {
  readonly from: number;
  readonly to: number;
}

/** One service's generated history. */
export interface Scenario {
  readonly namespace: string;
  /** Policy name (label of mirror_autoscaler_mirror_percent). */
  readonly policy: string;
  /** The primary workload and service of the route. */
  readonly primary: string;
  /** The mirror target's workload and service. */
  readonly target: string;
  readonly plant: Plant;
  /** Export mirror_autoscaler_mirror_percent. Default true. */
  readonly exportPercent?: boolean;
  /** A constant percentage instead of the two-hour schedule. */
  readonly constantPercent?: number;
  /** Spans with no samples at all (a broken scrape). */
  readonly gaps?: readonly Span[];
  /** Instants at which every counter restarts from 0 (pod restarts). */
  readonly resets?: readonly number[];
  /** Spans without production traffic (so nothing is mirrored either). */
  readonly noTraffic?: readonly Span[];
  /** Seed of the noise. */
  readonly seed: number;
}

const inSpans = (s: number, spans: readonly Span[] | undefined): boolean =>
  spans?.some((p) => s >= p.from && s <= p.to) ?? false;

/** The scenario's percentage at a point of the day. */
export function scenarioPercent(sc: Scenario, secondsIntoDay: number): number {
  return sc.constantPercent ?? percentAt(sc.plant, secondsIntoDay);
}

/** What the plant does at one step: production and mirrored rate, and the target's response. */
export interface PlantStep {
  readonly production: number;
  readonly percent: number;
  readonly mirrored: number;
  readonly cpuCores: number;
  readonly errorShare: number;
  readonly p99Ms: number;
}

function steps(sc: Scenario): Array<{ offset: number; step: PlantStep }> {
  const random = createRandom(sc.seed);
  const out: Array<{ offset: number; step: PlantStep }> = [];
  for (let o = -LEAD_SECONDS; o <= HISTORY_DAY_SECONDS; o += HISTORY_STEP_SECONDS) {
    const idle = inSpans(o, sc.noTraffic);
    const production = idle ? 0 : productionAt(o);
    const percent = scenarioPercent(sc, Math.max(0, o));
    const mirrored = (production * percent) / 100;
    const noise = 1 + sc.plant.cpuNoise * random.normal();
    out.push({
      offset: o,
      step: {
        production,
        percent,
        mirrored,
        cpuCores: Math.max(0, REQUEST_CORES * plantCpu(sc.plant, mirrored) * noise),
        errorShare: plantErrorShare(sc.plant, mirrored),
        p99Ms: plantLatencyMs(sc.plant, mirrored),
      },
    });
  }
  return out;
}

/**
 * Cumulative share of requests at or below each bucket bound such that Prometheus' histogram_quantile(0.99)
 * interpolates exactly to `p99`: 1 % of requests inside the bucket that holds p99, 99 % minus the part of that
 * 1 % below p99 under it, and the rest above it.
 */
function bucketShares(p99: number): number[] {
  const bounds = BUCKETS_MS;
  let k = bounds.findIndex((b) => b >= p99);
  if (k <= 0) k = 1;
  const lo = bounds[k - 1] ?? 0;
  const hi = bounds[k] ?? lo;
  const below = 0.99 - (0.01 * (p99 - lo)) / (hi - lo);
  return [...bounds, Number.POSITIVE_INFINITY].map((_, i) =>
    i < k - 1 ? 0 : i === k - 1 ? below : i === k ? below + 0.01 : 1,
  );
}

/**
 * Istio's default buckets from 25 ms up: the plant's p99 never drops below 30 ms, and fewer series keep the
 * backfill of a whole day within a few seconds (histogram_quantile needs only the buckets that exist).
 */
const BUCKETS_MS = ISTIO_DURATION_BUCKETS_MS.filter((b) => b >= 25 && b <= 2500);

function formatLe(le: number): string {
  return le === Number.POSITIVE_INFINITY ? '+Inf' : String(le);
}

function labels(l: Record<string, string>): string {
  return Object.entries(l)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
}

interface SeriesOut {
  readonly family: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly name: string;
  readonly labels: string;
  /** Per step: increment (counters) or value (gauges); null = no sample. */
  readonly perStep: (s: PlantStep) => number | null;
  readonly counter: boolean;
}

function scenarioSeries(sc: Scenario): SeriesOut[] {
  const ns = sc.namespace;
  const dt = HISTORY_STEP_SECONDS;
  const istio = (workload: string) => ({
    reporter: 'destination',
    source_workload: 'frontend',
    source_workload_namespace: ns,
    destination_workload: workload,
    destination_workload_namespace: ns,
    destination_service: `${workload}.${ns}.svc.cluster.local`,
    destination_service_name: workload,
    destination_service_namespace: ns,
  });
  const out: SeriesOut[] = [
    {
      family: 'istio_requests',
      type: 'counter',
      name: 'istio_requests_total',
      labels: labels({ ...istio(sc.primary), response_code: '200' }),
      perStep: (s) => s.production * dt,
      counter: true,
    },
    {
      family: 'istio_requests',
      type: 'counter',
      name: 'istio_requests_total',
      labels: labels({ ...istio(sc.target), response_code: '200' }),
      perStep: (s) => s.mirrored * (1 - s.errorShare) * dt,
      counter: true,
    },
    {
      family: 'istio_requests',
      type: 'counter',
      name: 'istio_requests_total',
      labels: labels({ ...istio(sc.target), response_code: '503' }),
      perStep: (s) => s.mirrored * s.errorShare * dt,
      counter: true,
    },
  ];
  const les = [...BUCKETS_MS, Number.POSITIVE_INFINITY];
  les.forEach((le, i) => {
    out.push({
      family: 'istio_request_duration_milliseconds',
      type: 'histogram',
      name: 'istio_request_duration_milliseconds_bucket',
      labels: labels({
        reporter: 'destination',
        destination_workload: sc.target,
        destination_workload_namespace: ns,
        le: formatLe(le),
      }),
      perStep: (s) => s.mirrored * dt * (bucketShares(s.p99Ms)[i] ?? 1),
      counter: true,
    });
  });
  const pods = podNames({ namespace: ns, workload: sc.target });
  for (const pod of pods) {
    out.push({
      family: 'container_cpu_usage_seconds',
      type: 'counter',
      name: 'container_cpu_usage_seconds_total',
      labels: labels({ namespace: ns, pod, container: 'app', cpu: 'total' }),
      perStep: (s) => (s.cpuCores / pods.length) * dt,
      counter: true,
    });
    out.push({
      family: 'kube_pod_container_resource_requests',
      type: 'gauge',
      name: 'kube_pod_container_resource_requests',
      labels: labels({ namespace: ns, pod, container: 'app', node: 'node-1', resource: 'cpu', unit: 'core' }),
      perStep: () => REQUEST_CORES / pods.length,
      counter: false,
    });
  }
  if (sc.exportPercent ?? true) {
    out.push({
      family: 'mirror_autoscaler_mirror_percent',
      type: 'gauge',
      name: 'mirror_autoscaler_mirror_percent',
      labels: labels({ policy: sc.policy, virtual_service: `${ns}/${sc.primary}` }),
      perStep: (s) => s.percent,
      counter: false,
    });
  }
  return out;
}

/**
 * Writes the scenarios' history as OpenMetrics for promtool: families contiguous, samples in time order,
 * timestamps in seconds, `# EOF` at the end. The day ends at `endSeconds`.
 * @returns the number of samples written.
 */
export function writeHistory(file: string, scenarios: readonly Scenario[], endSeconds: number): number {
  const start = endSeconds - HISTORY_DAY_SECONDS;
  const byFamily = new Map<
    string,
    Array<{ sc: Scenario; series: SeriesOut; plant: ReturnType<typeof steps> }>
  >();
  for (const sc of scenarios) {
    const plant = steps(sc);
    for (const series of scenarioSeries(sc)) {
      const list = byFamily.get(series.family) ?? [];
      list.push({ sc, series, plant });
      byFamily.set(series.family, list);
    }
  }
  const fd = openSync(file, 'w');
  let samples = 0;
  try {
    for (const [family, list] of byFamily) {
      writeSync(fd, `# TYPE ${family} ${list[0]?.series.type ?? 'gauge'}\n`);
      for (const { sc, series, plant } of list) {
        const lines: string[] = [];
        let total = 0;
        const resets = [...(sc.resets ?? [])];
        for (const { offset, step } of plant) {
          if (series.counter) {
            if (resets.length > 0 && offset >= (resets[0] ?? Number.POSITIVE_INFINITY)) {
              resets.shift();
              total = 0;
            }
            total += series.perStep(step) ?? 0;
          }
          if (inSpans(offset, sc.gaps)) continue;
          const v = series.counter ? total : series.perStep(step);
          if (v === null) continue;
          lines.push(`${series.name}{${series.labels}} ${Number(v.toPrecision(12))} ${start + offset}\n`);
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
}

/** The clean scenario: the plant as it is, with the percentage exported. */
export const CLEAN: Scenario = {
  namespace: 'shop',
  policy: 'checkout',
  primary: 'checkout',
  target: 'checkout-shadow',
  plant: PLANT,
  seed: 1,
};

/**
 * The messy scenario: a 40-minute scrape gap, counter resets, an hour without production traffic, and no
 * exported percentage (10 % was in effect throughout).
 */
export const MESSY: Scenario = {
  namespace: 'recs',
  policy: 'recs',
  primary: 'recs',
  target: 'recs-shadow',
  plant: PLANT,
  constantPercent: 10,
  exportPercent: false,
  gaps: [{ from: 5 * 3600, to: 5 * 3600 + 2400 }],
  resets: [9 * 3600 + 15, 15 * 3600 + 15],
  noTraffic: [{ from: 2 * 3600, to: 3 * 3600 }],
  seed: 2,
};

/** A running Prometheus with a day of history ending at `end` (epoch seconds, a multiple of the step). */
export interface HistoryPrometheus extends TestPrometheus {
  /** Epoch seconds: the day runs from end - 24h to end. */
  readonly start: number;
  readonly end: number;
}

/** Backfills the scenarios' day of history and starts Prometheus on 127.0.0.1. */
export async function startHistoryPrometheus(
  scenarios: readonly Scenario[] = [CLEAN, MESSY],
): Promise<HistoryPrometheus> {
  const end = Math.floor(Date.now() / 1000 / HISTORY_STEP_SECONDS) * HISTORY_STEP_SECONDS;
  const prom = await startPrometheus([], {
    nowSeconds: end,
    write: (file) => writeHistory(file, scenarios, end),
  });
  return Object.assign(prom, { start: end - HISTORY_DAY_SECONDS, end });
}
