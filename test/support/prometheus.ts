/**
 * Test harness around the real Prometheus binary: deterministic OpenMetrics data for Istio, cAdvisor and
 * kube-state-metrics series, backfilled with `promtool tsdb create-blocks-from openmetrics` and served by
 * `prometheus` on 127.0.0.1; plus a small misbehaving HTTP server for the failure paths.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const PROMETHEUS_BIN = process.env.PROMETHEUS_BIN ?? '/usr/bin/prometheus';
export const PROMTOOL_BIN = process.env.PROMTOOL_BIN ?? '/usr/bin/promtool';

/** Istio's default buckets of istio_request_duration_milliseconds (upper bounds in ms, +Inf added). */
export const ISTIO_DURATION_BUCKETS_MS = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
] as const;

/**
 * OpenTelemetry's advised bucket boundaries of http.server.request.duration, in seconds (+Inf added), as the
 * SDKs use them by default.
 */
export const OTEL_DURATION_BUCKETS_SECONDS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
] as const;

/**
 * How a workload's request metrics reach Prometheus:
 * - sidecar: its Istio sidecar reports istio_* with reporter="destination" (the caller's with "source");
 * - ambient: a waypoint reports istio_* with reporter="waypoint" (unless `waypoint` is false), and ztunnel
 *   reports only istio_tcp_* (reporter="destination"); no istio-proxy container in the pods;
 * - otel: the application's OpenTelemetry SDK exports http.server.request.duration per pod, as Prometheus'
 *   OTLP receiver stores it (http_server_request_duration_seconds_{bucket,count,sum}, job = service.name,
 *   instance = pod) with k8s.namespace.name, k8s.deployment.name and k8s.pod.name promoted to labels.
 */
export type MeshMode = 'sidecar' | 'ambient' | 'otel';

/** Sample spacing, as a common scrape interval. */
export const STEP_SECONDS = 15;
/** Data starts this long before "now" so every rate window is full. */
export const HISTORY_SECONDS = 30 * 60;
/** Data runs on past "now": queries at the real current time keep seeing full windows while a test runs. */
export const FUTURE_SECONDS = 20 * 60;

/** A time span relative to "now" in seconds (negative = past), both ends included. */
export interface Period {
  readonly fromSeconds: number;
  readonly toSeconds: number;
}

/** A share of requests taking `ms` milliseconds. Shares of a workload should add up to 1. */
export interface LatencyMass {
  readonly ms: number;
  readonly share: number;
}

/** Deterministic description of one workload's metrics. */
export interface WorkloadData {
  readonly namespace: string;
  readonly workload: string;
  /** Requests per second received (reporter="destination"). Default 0. */
  readonly requestsPerSecond?: number;
  /** Share of requests answered 503. No 503 series exists when 0 (the default). */
  readonly errorShare?: number;
  /** Share of requests answered 404 (not an error for the error-rate signal). Default 0. */
  readonly clientErrorShare?: number;
  /** Latency distribution as point masses. Default: every request takes 20 ms. */
  readonly latency?: readonly LatencyMass[];
  /** CPU cores used by the application containers of all pods together. Default 0.1. */
  readonly cpuCores?: number;
  /** CPU requests in cores of the application containers of all pods together. Default 1. */
  readonly cpuRequestCores?: number;
  /** Number of pods. Default 2. */
  readonly pods?: number;
  /** Emit Istio series. Default true. */
  readonly istio?: boolean;
  /** Emit cAdvisor series. Default true. */
  readonly cadvisor?: boolean;
  /** Emit kube-state-metrics request series. Default true. */
  readonly cpuRequests?: boolean;
  /** How request metrics are reported. Default sidecar. */
  readonly mesh?: MeshMode;
  /** ambient: whether a waypoint reports L7 metrics for it. Default true. */
  readonly waypoint?: boolean;
  /** Istio destination_service_name of its requests. Default: the workload name. */
  readonly service?: string;
  /** Periods without requests: counters stay flat (CPU is unchanged). */
  readonly noTraffic?: readonly Period[];
  /** Periods without samples for any of the workload's series (a broken scrape); counters keep counting. */
  readonly gaps?: readonly Period[];
}

// Kubernetes' SafeEncodeString alphabet, which ReplicaSet and pod name suffixes are drawn from.
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function hashString(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 16777619) >>> 0;
  }
  return h;
}

function suffix(seed: string, length: number): string {
  let h = hashString(seed);
  let out = '';
  for (let i = 0; i < length; i++) {
    out += SAFE_ALPHABET[h % SAFE_ALPHABET.length];
    h = Math.imul(h ^ (h >>> 13), 2654435761) >>> 0;
  }
  return out;
}

/** Pod names of a workload, Deployment style: `<workload>-<rs hash>-<pod hash>`. */
export function podNames(w: WorkloadData): string[] {
  const rs = suffix(`${w.namespace}/${w.workload}`, 9);
  return Array.from(
    { length: w.pods ?? 2 },
    (_, i) => `${w.workload}-${rs}-${suffix(`${w.workload}#${i}`, 5)}`,
  );
}

function inPeriods(offset: number, periods: readonly Period[] | undefined): boolean {
  return periods?.some((p) => offset >= p.fromSeconds && offset <= p.toSeconds) ?? false;
}

function labelText(labels: Readonly<Record<string, string>>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`)
    .join(',');
}

function formatNumber(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return '+Inf';
  // Twelve significant digits: exact enough for the tests' tolerances, and a third shorter than String(v).
  return Number.isInteger(v) ? v.toFixed(0) : String(Number(v.toPrecision(12)));
}

interface Series {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Value at a sample offset (seconds relative to now). */
  readonly valueAt: (offset: number) => number;
  readonly gaps: readonly Period[] | undefined;
}

/** The sampled span around "now"; benchmarks with many workloads may shorten it to keep the backfill small. */
export interface SampleRange {
  readonly historySeconds: number;
  readonly futureSeconds: number;
}

export const DEFAULT_RANGE: SampleRange = { historySeconds: HISTORY_SECONDS, futureSeconds: FUTURE_SECONDS };

/** Offsets of the samples relative to now: -historySeconds … +futureSeconds every STEP_SECONDS. */
export function sampleOffsets(range: SampleRange = DEFAULT_RANGE): number[] {
  const out: number[] = [];
  for (let o = -range.historySeconds; o <= range.futureSeconds; o += STEP_SECONDS) out.push(o);
  return out;
}

/**
 * Requests counted up to `offset`: the rate integrated over the sampled steps that are not in a no-traffic period.
 * Counting per step (as a scrape would see it) keeps the value a pure function of the offset.
 */
function requestCounter(w: WorkloadData, range: SampleRange): (offset: number) => number {
  const rate = w.requestsPerSecond ?? 0;
  const cumulative = new Map<number, number>();
  let total = 0;
  for (const o of sampleOffsets(range)) {
    if (o > -range.historySeconds && !inPeriods(o, w.noTraffic)) total += rate * STEP_SECONDS;
    cumulative.set(o, total);
  }
  return (offset) => cumulative.get(offset) ?? 0;
}

function workloadSeries(w: WorkloadData, range: SampleRange): Map<string, Series[]> {
  const families = new Map<string, Series[]>();
  const add = (s: Series) => {
    const list = families.get(s.name) ?? [];
    list.push(s);
    families.set(s.name, list);
  };
  const gaps = w.gaps;
  const requests = requestCounter(w, range);

  const mesh = w.mesh ?? 'sidecar';
  const errorShare = w.errorShare ?? 0;
  const clientShare = w.clientErrorShare ?? 0;
  const codes: [string, number][] = [['200', 1 - errorShare - clientShare]];
  if (clientShare > 0) codes.push(['404', clientShare]);
  if (errorShare > 0) codes.push(['503', errorShare]);
  const latency = w.latency ?? [{ ms: 20, share: 1 }];
  const service = w.service ?? w.workload;

  if ((w.istio ?? true) && mesh === 'sidecar') {
    const base = {
      source_workload: 'frontend',
      source_workload_namespace: 'shop',
      destination_workload: w.workload,
      destination_workload_namespace: w.namespace,
      destination_service: `${service}.${w.namespace}.svc.cluster.local`,
      destination_service_name: service,
      destination_service_namespace: w.namespace,
      destination_version: 'v1',
      request_protocol: 'http',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
    };
    for (const [code, share] of codes) {
      const count = (o: number) => requests(o) * share;
      add({
        name: 'istio_requests_total',
        labels: { reporter: 'destination', ...base, response_code: code },
        valueAt: count,
        gaps,
      });
      // Buckets carry only the labels the queries use: 20 series per code, and the backfill file stays small.
      const bucketLabels = {
        reporter: 'destination',
        destination_workload: w.workload,
        destination_workload_namespace: w.namespace,
        response_code: code,
      };
      for (const le of [...ISTIO_DURATION_BUCKETS_MS, Number.POSITIVE_INFINITY]) {
        const below = latency.filter((m) => m.ms <= le).reduce((sum, m) => sum + m.share, 0);
        add({
          name: 'istio_request_duration_milliseconds_bucket',
          labels: { ...bucketLabels, le: formatNumber(le) },
          valueAt: (o) => count(o) * (le === Number.POSITIVE_INFINITY ? 1 : below),
          gaps,
        });
      }
    }
    // The caller's sidecar reports the same (non-mirrored) requests; the queries must not count them twice.
    add({
      name: 'istio_requests_total',
      labels: { reporter: 'source', ...base, response_code: '200' },
      valueAt: (o) => requests(o),
      gaps,
    });
  }

  if ((w.istio ?? true) && mesh === 'ambient') {
    // The label set of a waypoint's report (istio/istio tests/integration/ambient/baseline_test.go, buildQuery).
    const principal = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;
    const base = {
      request_protocol: 'http',
      response_flags: '-',
      connection_security_policy: 'mutual_tls',
      destination_canonical_service: service,
      destination_canonical_revision: 'v1',
      destination_service: `${service}.${w.namespace}.svc.cluster.local`,
      destination_principal: principal(w.namespace, w.workload),
      destination_service_name: service,
      destination_workload: w.workload,
      destination_workload_namespace: w.namespace,
      destination_service_namespace: w.namespace,
      source_canonical_service: 'frontend',
      source_canonical_revision: 'v1',
      source_principal: principal('shop', 'frontend'),
      source_workload: 'frontend',
      source_workload_namespace: 'shop',
    };
    if (w.waypoint ?? true) {
      for (const [code, share] of codes) {
        const count = (o: number) => requests(o) * share;
        add({
          name: 'istio_requests_total',
          labels: { reporter: 'waypoint', ...base, response_code: code },
          valueAt: count,
          gaps,
        });
        for (const le of [...ISTIO_DURATION_BUCKETS_MS, Number.POSITIVE_INFINITY]) {
          const below = latency.filter((m) => m.ms <= le).reduce((sum, m) => sum + m.share, 0);
          add({
            name: 'istio_request_duration_milliseconds_bucket',
            labels: {
              reporter: 'waypoint',
              destination_workload: w.workload,
              destination_workload_namespace: w.namespace,
              response_code: code,
              le: formatNumber(le),
            },
            valueAt: (o) => count(o) * (le === Number.POSITIVE_INFINITY ? 1 : below),
            gaps,
          });
        }
      }
    }
    // ztunnel: L4 only, as the destination of the connections (baseline_test.go, buildL4Query). Ten
    // connections and 1 kB per request, so that a query reading these by mistake would be far off.
    const l4 = {
      reporter: 'destination',
      connection_security_policy: 'mutual_tls',
      destination_canonical_service: service,
      destination_service: base.destination_service,
      destination_service_name: service,
      destination_service_namespace: w.namespace,
      destination_workload: w.workload,
      destination_workload_namespace: w.namespace,
      source_workload: 'frontend',
      source_workload_namespace: 'shop',
    };
    add({
      name: 'istio_tcp_connections_opened_total',
      labels: l4,
      valueAt: (o) => 10 * requests(o),
      gaps,
    });
    add({
      name: 'istio_tcp_sent_bytes_total',
      labels: l4,
      valueAt: (o) => 1000 * requests(o),
      gaps,
    });
  }

  const pods = podNames(w);
  const appCores = (w.cpuCores ?? 0.1) / pods.length;
  const appRequest = (w.cpuRequestCores ?? 1) / pods.length;
  const sidecar = mesh === 'sidecar';
  for (const pod of pods) {
    if ((w.istio ?? true) && mesh === 'otel') {
      // Each pod's SDK exports its own share of the requests; resource attributes promoted to labels.
      const resource = {
        job: w.workload,
        instance: pod,
        k8s_namespace_name: w.namespace,
        k8s_deployment_name: w.workload,
        k8s_pod_name: pod,
      };
      for (const [code, share] of codes) {
        const count = (o: number) => (requests(o) * share) / pods.length;
        const labels = {
          ...resource,
          http_request_method: 'GET',
          http_response_status_code: code,
          http_route: '/api/items',
          network_protocol_version: '1.1',
          url_scheme: 'http',
        };
        for (const le of [...OTEL_DURATION_BUCKETS_SECONDS, Number.POSITIVE_INFINITY]) {
          const below = latency.filter((m) => m.ms / 1000 <= le).reduce((sum, m) => sum + m.share, 0);
          add({
            name: 'http_server_request_duration_seconds_bucket',
            labels: { ...labels, le: formatNumber(le) },
            valueAt: (o) => count(o) * (le === Number.POSITIVE_INFINITY ? 1 : below),
            gaps,
          });
        }
        add({ name: 'http_server_request_duration_seconds_count', labels, valueAt: count, gaps });
        const meanSeconds = latency.reduce((sum, m) => sum + (m.ms / 1000) * m.share, 0);
        add({
          name: 'http_server_request_duration_seconds_sum',
          labels,
          valueAt: (o) => count(o) * meanSeconds,
          gaps,
        });
      }
    }
    if (w.cadvisor ?? true) {
      const cpu = (container: string, cores: number) =>
        add({
          name: 'container_cpu_usage_seconds_total',
          labels: { namespace: w.namespace, pod, container, cpu: 'total' },
          valueAt: (o) => cores * (o + range.historySeconds),
          gaps,
        });
      const proxy = 0.05;
      const pause = 0.001;
      cpu('app', appCores);
      if (sidecar) cpu('istio-proxy', proxy);
      cpu('POD', pause);
      // The pod cgroup: the sum of its containers, which a query must not add again.
      cpu('', appCores + (sidecar ? proxy : 0) + pause);
    }
    if (w.cpuRequests ?? true) {
      const req = (container: string, resource: string, unit: string, v: number) =>
        add({
          name: 'kube_pod_container_resource_requests',
          labels: { namespace: w.namespace, pod, container, node: 'node-1', resource, unit },
          valueAt: () => v,
          gaps,
        });
      req('app', 'cpu', 'core', appRequest);
      if (sidecar) req('istio-proxy', 'cpu', 'core', 0.1);
      req('app', 'memory', 'byte', 268435456);
    }
  }
  return families;
}

/**
 * Writes OpenMetrics text for the workloads to `file`: families contiguous, each series' samples in time order,
 * timestamps in seconds, `# EOF` at the end (what promtool's backfill requires).
 * @returns the number of samples written.
 */
export function writeOpenMetrics(
  file: string,
  workloads: readonly WorkloadData[],
  nowSeconds: number,
  range: SampleRange = DEFAULT_RANGE,
): number {
  const families = new Map<string, Series[]>();
  for (const w of workloads) {
    for (const [name, list] of workloadSeries(w, range)) {
      const all = families.get(name) ?? [];
      all.push(...list);
      families.set(name, all);
    }
  }
  // A histogram's _bucket, _count and _sum series belong to one family, written together under one TYPE line.
  const histograms = new Set(
    [...families.keys()].filter((n) => n.endsWith('_bucket')).map((n) => n.slice(0, -'_bucket'.length)),
  );
  const grouped = new Map<string, { type: string; names: string[] }>();
  for (const name of families.keys()) {
    const base = name.replace(/_(bucket|count|sum)$/, '');
    const family = histograms.has(base) ? base : name.replace(/_total$/, '');
    const type = histograms.has(base) ? 'histogram' : name.endsWith('_total') ? 'counter' : 'gauge';
    const g = grouped.get(family) ?? { type, names: [] };
    g.names.push(name);
    grouped.set(family, g);
  }
  const offsets = sampleOffsets(range);
  const fd = openSync(file, 'w');
  let samples = 0;
  try {
    for (const [family, { type, names }] of grouped) {
      writeSync(fd, `# TYPE ${family} ${type}\n`);
      for (const s of names.flatMap((n) => families.get(n) ?? [])) {
        const prefix = `${s.name}{${labelText(s.labels)}} `;
        const lines: string[] = [];
        for (const o of offsets) {
          if (inPeriods(o, s.gaps)) continue;
          lines.push(`${prefix}${formatNumber(s.valueAt(o))} ${nowSeconds + o}\n`);
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

/** A free TCP port on 127.0.0.1 (the OS picks; there is a small race until the caller binds it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A running Prometheus backed by backfilled data. */
export interface TestPrometheus {
  /** Base URL, http://127.0.0.1:PORT */
  readonly url: string;
  /** The instant the data was generated around; query at this time for exact windows. */
  readonly now: Date;
  /** Number of samples backfilled. */
  readonly samples: number;
  /** Kills the process (by PID) and removes the data directory. */
  stop(): Promise<void>;
}

async function waitUntilReady(
  url: string,
  child: ChildProcess,
  log: () => string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `prometheus exited (${child.exitCode ?? child.signalCode}) before becoming ready:\n${log()}`,
      );
    }
    try {
      const res = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`prometheus at ${url} not ready within ${timeoutMs} ms:\n${log()}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }, 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * Backfills the workloads' data into a temporary TSDB and starts Prometheus on 127.0.0.1 and a free port.
 * Takes a second or two; share one per test file (beforeAll / afterAll).
 */
export async function startPrometheus(
  workloads: readonly WorkloadData[],
  options: {
    nowSeconds?: number;
    readyTimeoutMs?: number;
    range?: SampleRange;
    /** Writes the OpenMetrics file instead of writeOpenMetrics (for other data); returns the sample count. */
    write?: (file: string, nowSeconds: number) => number;
  } = {},
): Promise<TestPrometheus> {
  const nowSeconds = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  const dir = mkdtempSync(join(tmpdir(), 'mirror-autoscaler-prom-'));
  const dataFile = join(dir, 'data.om');
  const tsdb = join(dir, 'tsdb');
  const config = join(dir, 'prometheus.yml');
  try {
    const samples =
      options.write !== undefined
        ? options.write(dataFile, nowSeconds)
        : writeOpenMetrics(dataFile, workloads, nowSeconds, options.range);
    // The default 2h maximum block duration is fine: promtool splits data that crosses a 2h boundary into
    // two aligned blocks, and Prometheus serves both.
    await execFileAsync(PROMTOOL_BIN, ['tsdb', 'create-blocks-from', 'openmetrics', dataFile, tsdb], {
      timeout: 60_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    rmSync(dataFile);
    writeFileSync(config, 'global:\n  scrape_interval: 15s\nscrape_configs: []\n');

    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const child = spawn(
        PROMETHEUS_BIN,
        [
          `--storage.tsdb.path=${tsdb}`,
          `--web.listen-address=127.0.0.1:${port}`,
          `--config.file=${config}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      try {
        await waitUntilReady(url, child, () => stderr, options.readyTimeoutMs ?? 20_000);
      } catch (err) {
        await stopChild(child);
        // Another process may have taken the port between freePort() and the bind: try a new one.
        if (attempt < 3 && /address already in use/.test(stderr)) continue;
        throw err;
      }
      return {
        url,
        now: new Date(nowSeconds * 1000),
        samples,
        stop: async () => {
          await stopChild(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** How the misbehaving server answers; chosen by the first path segment of the URL. */
export const MISBEHAVIOURS = [
  'ok',
  'slow',
  'http500',
  'http503',
  'garbage',
  'wrong-shape',
  'matrix',
  'echo-auth',
] as const;
export type Misbehaviour = (typeof MISBEHAVIOURS)[number];

/** A request the misbehaving server received. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

/** A fake Prometheus API that fails in chosen ways. */
export interface MisbehavingPrometheus {
  /** Base URL whose queries get the given behaviour, e.g. http://127.0.0.1:PORT/http500 */
  url(mode: Misbehaviour): string;
  /** Every request received, in order. */
  readonly requests: RecordedRequest[];
  stop(): Promise<void>;
}

const nowValue = () => Date.now() / 1000;

function answer(
  mode: Misbehaviour,
  headers: IncomingHttpHeaders,
): { status: number; type: string; body: string } | undefined {
  switch (mode) {
    case 'echo-auth':
      // Like a careless proxy that repeats the credentials it refused: the client must not pass them on.
      return {
        status: 401,
        type: 'application/json',
        body: JSON.stringify({
          status: 'error',
          errorType: 'auth',
          error: `rejected ${headers.authorization ?? 'nothing'}`,
        }),
      };
    case 'ok':
      return {
        status: 200,
        type: 'application/json',
        body: JSON.stringify({ status: 'success', data: { resultType: 'vector', result: [] } }),
      };
    case 'slow':
      return undefined;
    case 'http500':
      return {
        status: 500,
        type: 'application/json',
        body: JSON.stringify({ status: 'error', errorType: 'internal', error: 'query processing failed' }),
      };
    case 'http503':
      return {
        status: 503,
        type: 'text/plain',
        body: 'upstream connect error or disconnect/reset before headers',
      };
    case 'garbage':
      return { status: 200, type: 'application/json', body: '{"status":"success","data":{"resultType":"vec' };
    case 'wrong-shape':
      return {
        status: 200,
        type: 'application/json',
        body: JSON.stringify({ status: 'success', data: { resultType: 'vector', result: 'not-a-list' } }),
      };
    case 'matrix':
      return {
        status: 200,
        type: 'application/json',
        body: JSON.stringify({
          status: 'success',
          data: {
            resultType: 'matrix',
            result: [{ metric: { destination_workload: 'w' }, values: [[nowValue(), '1']] }],
          },
        }),
      };
  }
}

/** Starts the misbehaving server on 127.0.0.1 and a free port. `slow` never answers until stop(). */
export async function startMisbehavingPrometheus(): Promise<MisbehavingPrometheus> {
  const requests: RecordedRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      requests.push({
        method: req.method ?? '',
        path,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      });
      const mode = path.split('/')[1] as Misbehaviour;
      const a = (MISBEHAVIOURS as readonly string[]).includes(mode)
        ? answer(mode, req.headers)
        : { status: 404, type: 'text/plain', body: 'no such mode' };
      if (a === undefined) return; // slow: hold the connection open
      res.writeHead(a.status, { 'content-type': a.type });
      res.end(a.body);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: (mode) => `http://127.0.0.1:${port}/${mode}`,
    requests,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
