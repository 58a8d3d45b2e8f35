/**
 * End to end: the production daemon (`mirror-autoscaler run` from dist/) as child processes against a real
 * Prometheus (backfilled) and the fake Kubernetes API server, through the real @kubernetes/client-node.
 * Endpoints and readiness, leader election between two replicas, hot reload of a ConfigMap-style policies
 * directory, and graceful shutdown with a write in flight.
 *
 * Policies run every second; a VirtualService held above a policy's maxPercent (the test puts it back after
 * every write) makes every cycle want a write, so who writes and what it writes is visible in the fake
 * server's request log.
 */
import { type ChildProcessByStdio, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createNetServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigMapMount } from '../support/configmap-mount.js';
import {
  EVENTS,
  FakeApiServer,
  type JsonObject,
  LEASES,
  type RequestInfo,
  type RequestRecord,
  VIRTUAL_SERVICES,
} from '../support/fake-apiserver.js';
import { PRIMARY_ROUTE, virtualService } from '../support/kube-fixtures.js';
import { freePort, startPrometheus, type TestPrometheus } from '../support/prometheus.js';
import { pause, waitFor } from '../support/wait.js';

const execFileAsync = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const LEASE_NAMESPACE = 'mirror-autoscaler';
const STATE_ANNOTATION = 'state.mirror-autoscaler.io/';

// ------------------------------------------------------------------------------------------ daemons

type LogLine = Record<string, unknown>;
type DaemonChild = ChildProcessByStdio<null, Readable, Readable>;

/** A `run` child process with its JSON log lines. */
class DaemonProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  /** Base URL of /metrics, /healthz and /readyz, from the daemon's own log line. */
  url = '';
  private partial = '';

  constructor(
    readonly name: string,
    readonly child: DaemonChild,
  ) {
    child.stdout.on('data', (chunk: Buffer) => {
      this.partial += chunk.toString();
      const lines = this.partial.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        if (line.trim() === '') continue;
        try {
          this.logs.push(JSON.parse(line) as LogLine);
        } catch {
          // Every stdout line must be JSON; keep the odd one so an assertion can show it.
          this.logs.push({ unparsed: line });
        }
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: Date.now() };
        resolve(this.exit);
      });
    });
  }

  get pid(): number {
    if (this.child.pid === undefined) throw new Error(`${this.name}: no pid`);
    return this.child.pid;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  signal(sig: NodeJS.Signals): void {
    process.kill(this.pid, sig);
  }

  /** The last log lines and stderr, for failure messages. */
  describe(): string {
    const tail = this.logs
      .slice(-25)
      .map((l) => JSON.stringify(l).slice(0, 400))
      .join('\n');
    return `--- ${this.name} (pid ${this.child.pid}) last log lines:\n${tail}\n--- stderr:\n${this.stderr}`;
  }

  /** Index of the first log line at or after `from` that satisfies `pred`, waiting up to `timeoutMs`. */
  waitForLog(what: string, pred: (l: LogLine) => boolean, timeoutMs: number, from = 0): Promise<number> {
    return waitFor(
      `${this.name}: ${what}`,
      () => {
        if (!this.running) throw new Error(`${this.name} exited (${JSON.stringify(this.exit)})`);
        const i = this.logs.findIndex((l, idx) => idx >= from && pred(l));
        return i >= 0 ? i : undefined;
      },
      timeoutMs,
      () => this.describe(),
    );
  }

  /** Waits until `n` more cycles completed after log index `from`; returns the index of the n-th. */
  async cyclesAfter(from: number, n: number, timeoutMs: number): Promise<number> {
    let at = from;
    for (let i = 0; i < n; i++) {
      at = (await this.waitForLog('a completed cycle', (l) => l.msg === 'cycle complete', timeoutMs, at)) + 1;
    }
    return at - 1;
  }

  /** Sends `sig` and waits for the exit; returns the exit and how long it took. */
  async stop(sig: NodeJS.Signals, timeoutMs: number): Promise<{ code: number | null; ms: number }> {
    const sent = Date.now();
    this.signal(sig);
    const res = await waitFor(
      `${this.name} to exit after ${sig}`,
      () => this.exit,
      timeoutMs,
      () => this.describe(),
    );
    return { code: res.code, ms: res.at - sent };
  }
}

const daemons: DaemonProcess[] = [];

interface RunOptions {
  readonly name: string;
  readonly policies: string;
  readonly kubeconfig: string;
  readonly prometheusUrl: string;
  /** Default 0: the daemon picks one and logs its URL. */
  readonly metricsPort?: number;
  readonly extraArgs?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
}

/** Starts `run` and waits until it serves its endpoints. */
async function startDaemon(o: RunOptions): Promise<DaemonProcess> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'run',
      '--policies',
      o.policies,
      '--kubeconfig',
      o.kubeconfig,
      '--prometheus-url',
      o.prometheusUrl,
      '--metrics-address',
      '127.0.0.1',
      '--metrics-port',
      String(o.metricsPort ?? 0),
      '--lease-namespace',
      LEASE_NAMESPACE,
      ...(o.extraArgs ?? []),
    ],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const d = new DaemonProcess(o.name, child);
  daemons.push(d);
  const i = await d.waitForLog(
    'the endpoints to be served',
    (l) => l.msg?.toString().startsWith('serving /metrics') === true,
    20_000,
  );
  d.url = String(d.logs[i]?.url);
  return d;
}

async function httpGet(url: string): Promise<{ status: number; body: string; contentType: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.text(), contentType: res.headers.get('content-type') ?? '' };
}

// ------------------------------------------------------------------------- Prometheus text format

interface MetricSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface MetricFamily {
  readonly name: string;
  type: string;
  help: string;
  readonly samples: MetricSample[];
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)/y;

function parseLabels(text: string, line: string): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const start = LABEL.lastIndex;
    const m = LABEL.exec(text);
    if (m === null || LABEL.lastIndex === start) throw new Error(`bad labels in exposition line: ${line}`);
    const [, key = '', raw = ''] = m;
    labels[key] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/** A sample value as Prometheus reads it (Go's ParseFloat: special values in any case; prom-client writes `Nan`). */
function parseValue(text: string, line: string): number {
  const special = text.toLowerCase();
  if (special === '+inf' || special === 'inf') return Number.POSITIVE_INFINITY;
  if (special === '-inf') return Number.NEGATIVE_INFINITY;
  if (special === 'nan') return Number.NaN;
  const v = Number(text);
  if (Number.isNaN(v)) throw new Error(`bad value in exposition line: ${line}`);
  return v;
}

/**
 * Parses the Prometheus text exposition format (version 0.0.4). Every sample must belong to a family
 * declared by `# TYPE` (histogram and summary samples by their suffixes); anything malformed throws.
 */
function parseExposition(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const family = (name: string): MetricFamily => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, type: 'untyped', help: '', samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta !== null) {
      const [, kind, name = '', rest = ''] = meta;
      if (kind === 'TYPE') family(name).type = rest;
      else family(name).help = rest;
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE_LINE.exec(line);
    if (m === null) throw new Error(`not an exposition line: ${line}`);
    const [, name = '', labelText, value = ''] = m;
    const owner = [name, name.replace(/_(bucket|sum|count)$/, '')].find((n) => families.has(n));
    if (owner === undefined) throw new Error(`sample without a # TYPE line: ${line}`);
    family(owner).samples.push({
      name,
      labels: labelText === undefined ? {} : parseLabels(labelText, line),
      value: parseValue(value, line),
    });
  }
  return families;
}

/** Scrapes /metrics and parses it. */
async function scrape(d: DaemonProcess): Promise<Map<string, MetricFamily>> {
  const res = await httpGet(`${d.url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${res.body}`);
  return parseExposition(res.body);
}

const M = (n: string) => `mirror_autoscaler_${n}`;

/** Samples of a family whose labels include `labels`. */
function samples(
  families: Map<string, MetricFamily>,
  family: string,
  labels: Record<string, string> = {},
  sampleName = family,
): MetricSample[] {
  return (families.get(family)?.samples ?? []).filter(
    (s) => s.name === sampleName && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
}

/** The single sample of a family with those labels, or undefined. */
function value(
  families: Map<string, MetricFamily>,
  family: string,
  labels: Record<string, string> = {},
): number | undefined {
  const found = samples(families, family, labels);
  if (found.length > 1) throw new Error(`${family}${JSON.stringify(labels)} matches ${found.length} series`);
  return found[0]?.value;
}

function sum(list: readonly MetricSample[]): number {
  return list.reduce((a, s) => a + s.value, 0);
}

// ------------------------------------------------------------------------------------------ proxy

/** A TCP proxy on 127.0.0.1 that can stop listening (connections refused) and listen again on its port. */
class TcpProxy {
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(private readonly target: { host: string; port: number }) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async listen(): Promise<void> {
    const server = createNetServer((client) => {
      const upstream = netConnect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.once('close', () => this.sockets.delete(s));
        s.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy: no port');
    this.port = address.port;
    this.server = server;
  }

  /** Stops listening and drops open connections, so that keep-alive sockets cannot hide the outage. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }
}

// ------------------------------------------------------------------------------------ fixtures

function policyYaml(o: { name: string; namespace: string; vs: string; max: number }): string {
  return `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: ${o.name}
spec:
  virtualService:
    name: ${o.vs}
    namespace: ${o.namespace}
  target:
    host: checkout-shadow
    workload: checkout-shadow
    namespace: shop
  bounds:
    minPercent: 1
    maxPercent: ${o.max}
  guardrails:
    cpuUtilization: 0.8
    errorRate: 0.05
    latencyP99Ms: 500
  interval: 1s
  window: 2m
`;
}

/** `file:line:col` of the maxPercent value in a policyYaml text, as the loader reports it. */
function maxPercentPosition(text: string): string {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.trimStart().startsWith('maxPercent:'));
  const line = lines[i] ?? '';
  return `${i + 1}:${line.indexOf(':') + 3}`;
}

function mirroredVs(namespace: string, name: string, percent: number): JsonObject {
  return virtualService({
    namespace,
    name,
    hosts: [name],
    http: [
      {
        name: 'primary',
        ...PRIMARY_ROUTE,
        mirror: { host: 'checkout-shadow' },
        mirrorPercentage: { value: percent },
      },
    ],
  });
}

function mirrorPercentOf(obj: JsonObject | undefined): number | undefined {
  const spec = obj?.spec as { http?: { mirrorPercentage?: { value?: number } }[] } | undefined;
  return spec?.http?.[0]?.mirrorPercentage?.value;
}

function annotationsOf(obj: JsonObject | undefined): Record<string, string> {
  return (obj?.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {};
}

// --------------------------------------------------------------------------------- write logs

interface PatchRecord {
  readonly t: number;
  readonly user: string | undefined;
  readonly namespace: string | undefined;
  readonly name: string | undefined;
  readonly body: string;
}

interface LeaseWrite {
  readonly t: number;
  readonly user: string | undefined;
  /** The server's log entry; its status is set once answered. */
  readonly record: RequestRecord | undefined;
  readonly name: string | undefined;
  /** The Lease as stored just before this write was applied. */
  readonly before: JsonObject | undefined;
}

/**
 * The server's log entry of the request being handled: a hook runs in the same turn of the event loop as the
 * request was logged in, so it is the last one.
 */
function recordOf(api: FakeApiServer, info: RequestInfo): RequestRecord | undefined {
  const rec = api.requests.at(-1);
  return rec !== undefined && rec.path === info.path && rec.body === info.body ? rec : undefined;
}

/** What the JSON Patch of a VirtualService sets the mirror percentage to. */
function patchedPercent(body: string): number | undefined {
  const ops = JSON.parse(body) as { op: string; path: string; value?: unknown }[];
  const op = ops.find((o) => o.op !== 'test' && /mirrorPercentage(\/value)?$/.test(o.path));
  const v = op?.value;
  if (typeof v === 'number') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { value?: unknown }).value === 'number')
    return (v as { value: number }).value;
  return undefined;
}

function microTimeMs(value: unknown): number {
  const ms = typeof value === 'string' ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw new Error(`not a MicroTime: ${String(value)}`);
  return ms;
}

// ------------------------------------------------------------------------------------------ tests

describe('the production daemon (run) against Prometheus and the API server', () => {
  let prom: TestPrometheus;
  let api: FakeApiServer;
  let kubeconfig: string;
  let tmp: string;
  const patches: PatchRecord[] = [];
  const leaseWrites: LeaseWrite[] = [];
  const mutators: NodeJS.Timeout[] = [];

  /** Keeps a VirtualService's mirror percentage at `percent`, putting it back within 100 ms of any write. */
  function holdAt(namespace: string, name: string, percent: number): () => void {
    const timer = setInterval(() => {
      if (mirrorPercentOf(api.getVirtualService(namespace, name)) === percent) return;
      api.mutateObject(VIRTUAL_SERVICES, namespace, name, (o) => {
        const spec = o.spec as { http: { mirrorPercentage?: { value: number } }[] };
        const route = spec.http[0];
        if (route !== undefined) route.mirrorPercentage = { value: percent };
      });
    }, 100);
    mutators.push(timer);
    return () => clearInterval(timer);
  }

  function patchesOf(namespace: string, name?: string): PatchRecord[] {
    return patches.filter((p) => p.namespace === namespace && (name === undefined || p.name === name));
  }

  async function policyDir(files: Record<string, string>): Promise<string> {
    const dir = await mkdtemp(join(tmp, 'policies-'));
    for (const [k, v] of Object.entries(files)) await writeFile(join(dir, k), v);
    return dir;
  }

  beforeAll(async () => {
    // dist/ is what users run; `npm test` builds it first, a bare vitest run builds it when missing.
    if (!existsSync(CLI)) {
      await execFileAsync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 120_000 });
    }
    tmp = await mkdtemp(join(tmpdir(), 'mirror-autoscaler-daemon-e2e-'));
    [prom, api] = await Promise.all([
      // A healthy shadow: 20 req/s, 20 % CPU, 20 ms, no 5xx. Every policy below watches it.
      startPrometheus([
        {
          namespace: 'shop',
          workload: 'checkout-shadow',
          requestsPerSecond: 20,
          cpuCores: 0.2,
          cpuRequestCores: 1,
        },
      ]),
      FakeApiServer.start(),
    ]);
    kubeconfig = await api.writeKubeconfig();
    api.beforeRequest(
      (i) => i.verb === 'patch' && i.resource === 'virtualservices',
      (info, server) => {
        patches.push({
          t: Date.now(),
          user: recordOf(server, info)?.user ?? '<unmatched>',
          namespace: info.namespace,
          name: info.name,
          body: info.body,
        });
      },
      Number.POSITIVE_INFINITY,
    );
    api.beforeRequest(
      (i) => (i.verb === 'update' || i.verb === 'create') && i.resource === 'leases',
      (info, server) => {
        const name = info.name ?? (JSON.parse(info.body) as { metadata?: { name?: string } }).metadata?.name;
        const record = recordOf(server, info);
        leaseWrites.push({
          t: Date.now(),
          user: record?.user ?? '<unmatched>',
          record,
          name,
          before: name === undefined ? undefined : server.getObject(LEASES, info.namespace, name),
        });
      },
      Number.POSITIVE_INFINITY,
    );
  }, 120_000);

  afterAll(async () => {
    for (const t of mutators) clearInterval(t);
    // Every process this file started is ended by its PID, whatever state a failed test left it in.
    for (const d of daemons) {
      if (d.running && d.child.pid !== undefined) {
        process.kill(d.child.pid, 'SIGKILL');
        await d.exited;
      }
    }
    await prom?.stop();
    await api?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('serves /metrics, /healthz and /readyz, and readiness follows Prometheus going away and back', async () => {
    const ns = 'e2e-endpoints';
    api.setVirtualService(mirroredVs(ns, 'steady', 30));
    api.setVirtualService(mirroredVs(ns, 'over', 80));
    const dir = await policyDir({
      // At its bound: holds every cycle.
      'steady.yaml': policyYaml({ name: 'steady', namespace: ns, vs: 'steady', max: 30 }),
      // Above its bound: one OutOfBounds write to 40 once leading, then holds.
      'over.yaml': policyYaml({ name: 'over', namespace: ns, vs: 'over', max: 40 }),
    });
    const promPort = Number(new URL(prom.url).port);
    const proxy = new TcpProxy({ host: '127.0.0.1', port: promPort });
    await proxy.listen();
    try {
      const metricsPort = await freePort();
      const d = await startDaemon({
        name: 'endpoints',
        policies: dir,
        kubeconfig,
        prometheusUrl: proxy.url,
        metricsPort,
        extraArgs: ['--lease-name', 'e2e-endpoints'],
      });
      expect(d.url).toBe(`http://127.0.0.1:${metricsPort}`);

      const health = await httpGet(`${d.url}/healthz`);
      expect(health).toMatchObject({ status: 200, body: 'ok\n' });
      await waitFor(
        '/readyz 200 after the first cycle',
        async () => (await httpGet(`${d.url}/readyz`)).status === 200,
        15_000,
        () => d.describe(),
      );

      // Wait for the leader's write to show in the gauge (it reports the percentage read at the cycle's start).
      const m = await waitFor(
        'mirror_percent of "over" at 40 and leader 1',
        async () => {
          const f = await scrape(d);
          const over = value(f, M('mirror_percent'), {
            policy: 'over',
            route_kind: 'VirtualService',
            route: `${ns}/over`,
          });
          return over === 40 && value(f, M('leader')) === 1 ? f : undefined;
        },
        15_000,
        () => d.describe(),
      );
      const res = await httpGet(`${d.url}/metrics`);
      expect(res.contentType).toMatch(/^text\/plain; version=0\.0\.4/);

      const types = Object.fromEntries([...m.values()].map((f) => [f.name, f.type]));
      expect(types).toMatchObject({
        [M('mirror_percent')]: 'gauge',
        [M('proposed_percent')]: 'gauge',
        [M('signal_value')]: 'gauge',
        [M('guardrail_limit')]: 'gauge',
        [M('decisions_total')]: 'counter',
        [M('writes_total')]: 'counter',
        [M('cycle_duration_seconds')]: 'histogram',
        [M('prometheus_queries_total')]: 'counter',
        [M('policies')]: 'gauge',
        [M('leader')]: 'gauge',
        [M('last_cycle_timestamp_seconds')]: 'gauge',
      });
      for (const f of m.values()) expect(f.help, `HELP of ${f.name}`).not.toBe('');

      expect(
        value(m, M('mirror_percent'), {
          policy: 'steady',
          route_kind: 'VirtualService',
          route: `${ns}/steady`,
        }),
      ).toBe(30);
      expect(value(m, M('proposed_percent'), { policy: 'steady' })).toBe(30);
      expect(value(m, M('proposed_percent'), { policy: 'over' })).toBe(40);
      expect(value(m, M('signal_value'), { policy: 'steady', signal: 'cpuUtilization' })).toBeCloseTo(0.2, 2);
      expect(value(m, M('signal_value'), { policy: 'steady', signal: 'errorRate' })).toBe(0);
      expect(value(m, M('signal_value'), { policy: 'steady', signal: 'latencyP99Ms' })).toBeLessThan(25);
      expect(value(m, M('guardrail_limit'), { policy: 'steady', signal: 'latencyP99Ms' })).toBe(500);

      // One write for "over" (once leading), none for "steady", which only ever holds.
      expect(value(m, M('writes_total'), { policy: 'over', result: 'ok' })).toBe(1);
      expect(samples(m, M('writes_total'), { policy: 'steady' })).toEqual([]);
      expect(patchesOf(ns, 'over')).toHaveLength(1);
      expect(patchesOf(ns, 'steady')).toHaveLength(0);
      expect(
        value(m, M('decisions_total'), { policy: 'over', action: 'decrease', reason: 'OutOfBounds' }),
      ).toBeGreaterThanOrEqual(1);
      const steadyDecisions = samples(m, M('decisions_total'), { policy: 'steady' });
      expect(steadyDecisions.length).toBeGreaterThan(0);
      expect(steadyDecisions.every((s) => s.labels.action === 'hold')).toBe(true);

      // Both policies share an interval, so every cycle is one batch with one decision for each.
      const cycles = samples(m, M('cycle_duration_seconds'), {}, M('cycle_duration_seconds_count'))[0]?.value;
      expect(cycles).toBeGreaterThanOrEqual(2);
      expect(sum(steadyDecisions)).toBe(cycles);
      expect(sum(samples(m, M('decisions_total'), { policy: 'over' }))).toBe(cycles);
      const buckets = samples(m, M('cycle_duration_seconds'), {}, M('cycle_duration_seconds_bucket'));
      const bounds = buckets.map((b) => parseValue(b.labels.le ?? 'missing', 'le'));
      expect(bounds.at(-1)).toBe(Number.POSITIVE_INFINITY);
      expect([...bounds].sort((a, b) => a - b)).toEqual(bounds);
      for (let i = 1; i < buckets.length; i++)
        expect(buckets[i]?.value).toBeGreaterThanOrEqual(buckets[i - 1]?.value ?? 0);
      expect(buckets.at(-1)?.value).toBe(cycles);
      expect(
        samples(m, M('cycle_duration_seconds'), {}, M('cycle_duration_seconds_sum'))[0]?.value,
      ).toBeGreaterThan(0);

      expect(value(m, M('policies'), { state: 'loaded' })).toBe(2);
      expect(value(m, M('policies'), { state: 'invalid' })).toBe(0);
      expect(value(m, M('leader'))).toBe(1);
      expect(value(m, M('prometheus_queries_total'), { kind: 'batch', result: 'ok' })).toBeGreaterThanOrEqual(
        cycles ?? 1,
      );
      expect(Math.abs((value(m, M('last_cycle_timestamp_seconds')) ?? 0) - Date.now() / 1000)).toBeLessThan(
        10,
      );

      // Prometheus goes away: connections are refused from now on.
      await proxy.close();
      const down = await waitFor(
        '/readyz 503 with Prometheus unreachable',
        async () => {
          const r = await httpGet(`${d.url}/readyz`);
          return r.status === 503 ? r : undefined;
        },
        10_000,
        () => d.describe(),
      );
      expect(down.body).toMatch(
        /^not ready:\n- last cycle did not reach Prometheus \(Prometheus: network error/,
      );
      expect(down.body).not.toContain('API server');
      expect((await httpGet(`${d.url}/healthz`)).status).toBe(200);
      const outage = await scrape(d);
      expect(
        value(outage, M('prometheus_queries_total'), { kind: 'batch', result: 'error' }),
      ).toBeGreaterThanOrEqual(1);

      // And comes back on the same address.
      await proxy.listen();
      await waitFor(
        '/readyz 200 with Prometheus back',
        async () => (await httpGet(`${d.url}/readyz`)).status === 200,
        10_000,
        () => d.describe(),
      );

      const stopped = await d.stop('SIGTERM', 5000);
      expect(stopped.code).toBe(0);
      expect(d.logs.at(-1)?.msg).toBe('stopped');
    } finally {
      await proxy.close();
    }
  });

  it('elects one writer among two replicas; the other takes over only after the lease expires', async () => {
    const ns = 'e2e-lease';
    const leaseName = 'e2e-leader';
    api.setVirtualService(mirroredVs(ns, 'checkout', 90));
    const release = holdAt(ns, 'checkout', 90);
    api.addToken('token-a', 'replica-a');
    api.addToken('token-b', 'replica-b');
    const dir = await policyDir({
      'checkout.yaml': policyYaml({ name: 'checkout', namespace: ns, vs: 'checkout', max: 50 }),
    });
    const timing = [
      '--lease-name',
      leaseName,
      '--lease-duration',
      '3s',
      '--renew-deadline',
      '2s',
      '--retry-period',
      '500ms',
    ];
    const [kcA, kcB] = await Promise.all(
      ['token-a', 'token-b'].map(async (token) => {
        const file = join(tmp, `kubeconfig-${token}`);
        await writeFile(file, api.kubeconfigYaml({ token }), { mode: 0o600 });
        return file;
      }),
    );
    const replicas = await Promise.all(
      (['a', 'b'] as const).map((r, i) =>
        startDaemon({
          name: `replica-${r}`,
          policies: dir,
          kubeconfig: [kcA, kcB][i] ?? '',
          prometheusUrl: prom.url,
          extraArgs: timing,
          env: { POD_NAME: `replica-${r}` },
        }),
      ),
    );
    const describeAll = () => replicas.map((r) => r.describe()).join('\n');
    const lease = () =>
      api.getObject(LEASES, LEASE_NAMESPACE, leaseName)?.spec as Record<string, unknown> | undefined;

    try {
      // Both run; the leader writes every cycle (the test keeps pushing the percentage out of bounds).
      await waitFor(
        '4 PATCHes while both replicas run',
        () => patchesOf(ns).length >= 4,
        15_000,
        describeAll,
      );
      expect(replicas.every((r) => r.running)).toBe(true);
      const holder = String(lease()?.holderIdentity);
      expect(['replica-a', 'replica-b']).toContain(holder);
      const leader = replicas.find((r) => r.name === holder);
      const follower = replicas.find((r) => r.name !== holder);
      if (leader === undefined || follower === undefined) throw new Error(`no replica is ${holder}`);

      // A conflict on the leader's renewal (someone else wrote the Lease) is retried, not a lost leadership.
      const conflictFrom = leader.logs.length;
      const edit = api.concurrentEdit(
        { resource: LEASES, namespace: LEASE_NAMESPACE, name: leaseName, verbs: ['update'] },
        (o) => {
          const m = o.metadata as { annotations?: Record<string, string> };
          m.annotations = { ...m.annotations, 'e2e/touched': 'true' };
        },
      );
      await leader.waitForLog(
        'a renewal that lost a race',
        (l) => String(l.msg).includes('409 Conflict'),
        5000,
        conflictFrom,
      );
      expect(edit.hits).toBe(1);
      const patchesBefore = patchesOf(ns).length;
      await waitFor(
        '2 more PATCHes after the conflict',
        () => patchesOf(ns).length >= patchesBefore + 2,
        10_000,
        describeAll,
      );
      expect(lease()?.holderIdentity).toBe(holder);
      expect(leader.logs.slice(conflictFrom).some((l) => l.msg === 'stopped leading')).toBe(false);

      const phase1 = patchesOf(ns);
      expect(new Set(phase1.map((p) => p.user))).toEqual(new Set([holder]));
      expect(phase1.every((p) => patchedPercent(p.body) === 50)).toBe(true);
      const [leaderMetrics, followerMetrics] = await Promise.all([scrape(leader), scrape(follower)]);
      expect(value(leaderMetrics, M('leader'))).toBe(1);
      expect(value(followerMetrics, M('leader'))).toBe(0);
      // The follower evaluates too: it decides (and records) every cycle without writing.
      expect(
        value(followerMetrics, M('decisions_total'), {
          policy: 'checkout',
          action: 'decrease',
          reason: 'OutOfBounds',
        }),
      ).toBeGreaterThanOrEqual(2);
      expect(samples(followerMetrics, M('writes_total'), { result: 'ok' })).toEqual([]);

      // The leader dies without a word.
      leader.signal('SIGKILL');
      const death = await leader.exited;
      expect(death.signal).toBe('SIGKILL');
      const deadPatches = patchesOf(ns).filter((p) => p.user === holder).length;

      await waitFor(
        `${follower.name} to write after the takeover`,
        () => patchesOf(ns).some((p) => p.user === follower.name),
        15_000,
        describeAll,
      );
      // The first successful Lease write of the follower that replaced the dead leader (a create that lost
      // the race at start-up also saw the leader's Lease, but was refused).
      const takeover = leaseWrites.find(
        (w) =>
          w.record?.status === 200 &&
          w.name === leaseName &&
          w.user === follower.name &&
          (w.before?.spec as { holderIdentity?: string } | undefined)?.holderIdentity === holder,
      );
      if (takeover === undefined)
        throw new Error(`no Lease write by ${follower.name} replaced ${holder}\n${describeAll()}`);
      const last = takeover.before?.spec as { renewTime?: string; leaseDurationSeconds?: number };
      expect(last.leaseDurationSeconds).toBe(3);
      const expiry = microTimeMs(last.renewTime) + (last.leaseDurationSeconds ?? 0) * 1000;
      const firstNew = patchesOf(ns).find((p) => p.user === follower.name);
      // Taken only once the dead leader's last renewal had expired, and no write before the Lease was taken.
      expect(takeover.t).toBeGreaterThan(expiry);
      expect(firstNew?.t).toBeGreaterThan(expiry);
      expect(firstNew?.t).toBeGreaterThanOrEqual(takeover.t);
      expect(takeover.t - death.at).toBeLessThan(8000);
      const lastOld = patchesOf(ns)
        .filter((p) => p.user === holder)
        .at(-1);
      expect(lastOld?.t).toBeLessThanOrEqual(death.at);

      await waitFor(
        '2 PATCHes from the new leader',
        () => patchesOf(ns).filter((p) => p.user === follower.name).length >= 2,
        10_000,
        describeAll,
      );
      // Never both: the users of all PATCHes form two runs, the old leader's then the new one's.
      const users = patchesOf(ns).map((p) => p.user);
      const switchAt = users.indexOf(follower.name);
      expect(users.slice(0, switchAt).every((u) => u === holder)).toBe(true);
      expect(users.slice(switchAt).every((u) => u === follower.name)).toBe(true);
      expect(patchesOf(ns).filter((p) => p.user === holder)).toHaveLength(deadPatches);
      expect(lease()?.holderIdentity).toBe(follower.name);
      expect(value(await scrape(follower), M('leader'))).toBe(1);

      // SIGTERM: the new leader finishes, releases the Lease and exits 0.
      const stopped = await follower.stop('SIGTERM', 5000);
      expect(stopped.code).toBe(0);
      expect(stopped.ms).toBeLessThan(3000);
      expect(follower.logs.at(-1)?.msg).toBe('stopped');
      expect(follower.logs.some((l) => l.msg === 'released lease')).toBe(true);
      const released = lease();
      expect(released?.holderIdentity).toBeUndefined();
      expect(released?.leaseDurationSeconds).toBe(1);
    } finally {
      release();
    }
  });

  it('reloads a ConfigMap-style policies directory: valid changes apply, invalid ones keep the last good set, removal stops management', async () => {
    const ns = 'e2e-reload';
    api.setVirtualService(mirroredVs(ns, 'alpha', 90));
    api.setVirtualService(mirroredVs(ns, 'beta', 90));
    const releaseAlpha = holdAt(ns, 'alpha', 90);
    const releaseBeta = holdAt(ns, 'beta', 90);
    const dir = await mkdtemp(join(tmp, 'configmap-'));
    const mount = new ConfigMapMount(dir);
    const files: Record<string, string> = {
      'alpha.yaml': policyYaml({ name: 'alpha', namespace: ns, vs: 'alpha', max: 50 }),
      'beta.yaml': policyYaml({ name: 'beta', namespace: ns, vs: 'beta', max: 50 }),
    };
    await mount.publish(files);
    const d = await startDaemon({
      name: 'reload',
      policies: dir,
      kubeconfig,
      prometheusUrl: prom.url,
      extraArgs: ['--reload-interval', '1s', '--no-leader-elect'],
    });
    const audits = (policy: string, from: number) =>
      d.logs.slice(from).filter((l) => l.audit === true && l.policy === policy);

    try {
      await d.waitForLog('a write for alpha', (l) => l.audit === true && l.policy === 'alpha', 10_000);
      await d.waitForLog('a write for beta', (l) => l.audit === true && l.policy === 'beta', 10_000);
      expect([...audits('alpha', 0), ...audits('beta', 0)].every((a) => a.to === 50)).toBe(true);

      // 1. A valid change: alpha's bound drops to 40.
      files['alpha.yaml'] = policyYaml({ name: 'alpha', namespace: ns, vs: 'alpha', max: 40 });
      await mount.publish(files);
      const reloaded = await d.waitForLog(
        'the reload of alpha',
        (l) => l.msg === 'policies reloaded',
        10_000,
      );
      expect(d.logs[reloaded]).toMatchObject({ added: [], removed: [], changed: ['alpha'] });
      await waitFor(
        '3 writes of alpha after the reload',
        () => audits('alpha', reloaded).length >= 3,
        10_000,
        () => d.describe(),
      );
      // A cycle already in flight at the reload may still write the old bound; every later one writes 40.
      expect(
        audits('alpha', reloaded)
          .slice(1)
          .every((a) => a.to === 40),
      ).toBe(true);

      // 2. An invalid file is reported; its last good version and the other policies keep running.
      const badBeta = policyYaml({ name: 'beta', namespace: ns, vs: 'beta', max: 150 });
      await mount.publish({ ...files, 'beta.yaml': badBeta });
      const position = `${join(dir, 'beta.yaml')}:${maxPercentPosition(badBeta)}`;
      const problem = await d.waitForLog(
        'the invalid file reported',
        (l) => l.level === 'error' && String(l.msg).startsWith(position),
        10_000,
      );
      expect(d.logs[problem]?.msg).toBe(`${position}: spec.bounds.maxPercent: must be <= 100 (got 150)`);
      const rejected = await d.waitForLog(
        'the rejection',
        (l) => String(l.msg).startsWith('invalid policy files'),
        5000,
        problem,
      );
      await waitFor(
        'policies{state="invalid"} 1',
        async () => value(await scrape(d), M('policies'), { state: 'invalid' }) === 1,
        5000,
        () => d.describe(),
      );
      expect(value(await scrape(d), M('policies'), { state: 'loaded' })).toBe(2);
      await waitFor(
        '2 writes of beta and alpha after the rejection',
        () => audits('beta', rejected).length >= 2 && audits('alpha', rejected).length >= 2,
        10_000,
        () => d.describe(),
      );
      expect(audits('beta', rejected).every((a) => a.to === 50)).toBe(true);
      expect(audits('alpha', rejected).every((a) => a.to === 40)).toBe(true);
      // The operator also sees it on the VirtualService (kubectl describe), next to the changes made.
      const reasons = (name: string): unknown[] =>
        api
          .listObjects(EVENTS, ns)
          .filter((e) => (e.involvedObject as { name?: string } | undefined)?.name === name)
          .map((e) => e.reason);
      await waitFor('an InvalidPolicy Event on beta', () => reasons('beta').includes('InvalidPolicy'), 5000);
      expect(reasons('beta')).toContain('MirrorPercentChanged');
      expect(reasons('alpha')).not.toContain('InvalidPolicy');

      // Reverting to the running policies clears the invalid count.
      await mount.publish(files);
      await waitFor(
        'policies{state="invalid"} back to 0',
        async () => value(await scrape(d), M('policies'), { state: 'invalid' }) === 0,
        5000,
        () => d.describe(),
      );

      // 3. Removing beta stops its management and leaves its VirtualService as it is.
      await mount.remove('beta.yaml', files);
      delete files['beta.yaml'];
      const removed = await d.waitForLog(
        'the removal of beta',
        (l) => l.msg === 'policies reloaded',
        10_000,
        rejected,
      );
      expect(d.logs[removed]).toMatchObject({ added: [], removed: ['beta'], changed: [] });
      // A cycle in flight at the removal may still finish beta; the next ones must not touch it.
      const settled = await d.cyclesAfter(removed, 1, 5000);
      releaseBeta();
      api.mutateObject(VIRTUAL_SERVICES, ns, 'beta', (o) => {
        const route = (o.spec as { http: { mirrorPercentage?: { value: number } }[] }).http[0];
        if (route !== undefined) route.mirrorPercentage = { value: 90 };
      });
      const betaBefore = api.getVirtualService(ns, 'beta');
      const betaPatches = patchesOf(ns, 'beta').length;
      const alphaPatches = patchesOf(ns, 'alpha').length;
      await d.cyclesAfter(settled + 1, 3, 5000);
      expect(d.logs.slice(settled + 1).filter((l) => l.policy === 'beta')).toEqual([]);
      expect(patchesOf(ns, 'beta')).toHaveLength(betaPatches);
      expect(patchesOf(ns, 'alpha').length).toBeGreaterThan(alphaPatches);
      expect(api.getVirtualService(ns, 'beta')).toEqual(betaBefore);
      expect(mirrorPercentOf(betaBefore)).toBe(90);
      expect(Object.keys(annotationsOf(betaBefore))).toContain(`${STATE_ANNOTATION}beta`);
      const after = await scrape(d);
      expect(value(after, M('policies'), { state: 'loaded' })).toBe(1);
      const betaSeries = [...after.values()]
        .flatMap((f) => f.samples)
        .filter((s) => s.labels.policy === 'beta');
      expect(betaSeries).toEqual([]);

      const stopped = await d.stop('SIGTERM', 5000);
      expect(stopped.code).toBe(0);
    } finally {
      releaseAlpha();
      releaseBeta();
    }
  });

  it('on SIGTERM during a write, finishes the cycle, releases the Lease and exits 0 within seconds', async () => {
    const ns = 'e2e-shutdown';
    const leaseName = 'e2e-shutdown';
    api.setVirtualService(mirroredVs(ns, 'checkout', 90));
    const dir = await policyDir({
      'checkout.yaml': policyYaml({ name: 'checkout', namespace: ns, vs: 'checkout', max: 50 }),
    });
    let d: DaemonProcess | undefined;
    let signalledAt = 0;
    // The first PATCH is held for a second, and the SIGTERM lands while it is in the API server's hands.
    const hook = api.beforeRequest(
      (i) => i.verb === 'patch' && i.namespace === ns,
      async () => {
        const target = await waitFor('the daemon handle', () => d, 5000);
        signalledAt = Date.now();
        target.signal('SIGTERM');
        await pause(1000);
      },
    );
    d = await startDaemon({
      name: 'shutdown',
      policies: dir,
      kubeconfig,
      prometheusUrl: prom.url,
      extraArgs: [
        '--lease-name',
        leaseName,
        '--lease-duration',
        '3s',
        '--renew-deadline',
        '2s',
        '--retry-period',
        '500ms',
      ],
    });
    const daemon = d;
    const exit = await waitFor(
      'the daemon to exit after SIGTERM during its write',
      () => daemon.exit,
      15_000,
      () => daemon.describe(),
    );
    expect(hook.hits).toBe(1);
    expect(exit.code).toBe(0);
    expect(exit.at - signalledAt).toBeLessThan(3000);

    // The write in flight completed as one patch: the percentage and the state annotation together.
    const vs = api.getVirtualService(ns, 'checkout');
    expect(mirrorPercentOf(vs)).toBe(50);
    expect(JSON.parse(annotationsOf(vs)[`${STATE_ANNOTATION}checkout`] ?? 'null')).toHaveProperty(
      'version',
      1,
    );
    expect(patchesOf(ns)).toHaveLength(1);
    expect(api.requestsMatching({ verb: 'patch', namespace: ns }).map((r) => r.status)).toEqual([200]);

    const msgs = daemon.logs.map((l) => String(l.msg));
    const order = [
      'stopping: finishing the cycle in flight',
      'mirror percentage 90 -> 50',
      'stopped leading',
      'released lease',
      'stopped',
    ].map((m) => msgs.findIndex((x) => x === m || x.startsWith(`${m}:`)));
    expect(
      order.every((i) => i >= 0),
      daemon.describe(),
    ).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    expect(msgs.at(-1)).toBe('stopped');
    const lease = api.getObject(LEASES, LEASE_NAMESPACE, leaseName)?.spec as
      | Record<string, unknown>
      | undefined;
    expect(lease?.holderIdentity).toBeUndefined();
    expect(lease?.leaseDurationSeconds).toBe(1);
  });

  it('on SIGTERM while starting, still starts, stops and exits 0', async () => {
    const dir = await policyDir({
      'checkout.yaml': policyYaml({ name: 'checkout', namespace: 'e2e-early', vs: 'checkout', max: 50 }),
    });
    const child = spawn(
      process.execPath,
      [
        CLI,
        'run',
        '--policies',
        dir,
        '--kubeconfig',
        kubeconfig,
        '--prometheus-url',
        prom.url,
        '--metrics-address',
        '127.0.0.1',
        '--metrics-port',
        '0',
        '--lease-namespace',
        LEASE_NAMESPACE,
        '--lease-name',
        'e2e-early',
      ],
      { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const d = new DaemonProcess('early', child);
    daemons.push(d);
    // "starting" is logged once the policies are read, before the endpoints, the Lease and the loop exist.
    await d.waitForLog('the starting line', (l) => l.msg === 'starting', 10_000);
    const stopped = await d.stop('SIGTERM', 10_000);
    expect(stopped.code, d.describe()).toBe(0);
    expect(d.logs.at(-1)?.msg).toBe('stopped');
  });

  it('exits 1 at once when the metrics port is taken', async () => {
    const dir = await policyDir({
      'checkout.yaml': policyYaml({ name: 'checkout', namespace: 'e2e-port', vs: 'checkout', max: 50 }),
    });
    const blocker = createNetServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const address = blocker.address();
    const port = address !== null && typeof address !== 'string' ? address.port : 0;
    try {
      const started = Date.now();
      const res = await execFileAsync(
        process.execPath,
        [
          CLI,
          'run',
          '--policies',
          dir,
          '--kubeconfig',
          kubeconfig,
          '--prometheus-url',
          prom.url,
          '--metrics-address',
          '127.0.0.1',
          '--metrics-port',
          String(port),
          '--lease-namespace',
          LEASE_NAMESPACE,
        ],
        { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, timeout: 10_000 },
      ).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code?: number | string; stderr?: string; killed?: boolean }) => ({
          code: err.killed === true ? 'timed out' : err.code,
          stderr: err.stderr ?? '',
        }),
      );
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(
        `run: cannot listen on 127.0.0.1:${port} for /metrics, /healthz and /readyz`,
      );
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });
});
