/**
 * Soak: the real daemon (`mirror-autoscaler run`, from the sources under tsx) against a real Prometheus
 * (backfilled as bench/scale.ts does) and the fake Kubernetes API server, for a long time, while faults are
 * injected at random (seeded) on both sides and another writer edits the VirtualServices concurrently.
 *
 * Run: `npx tsx bench/soak.ts [--duration 10m] [--policies 1000] [--interval 5s] [--seed 1] [--namespaces 10]`
 * (`npm run bench:soak`). Prints a table of checks and exits 1 when one fails:
 *
 * - memory: RSS and heap (after a full GC) of the daemon grow by at most 10 % from the end of warm-up to the end;
 * - no unhandled rejection or uncaught exception in the daemon (process hooks in a preload), which is alive
 *   until SIGTERM and then exits 0;
 * - every decision logged: one log line per policy per cycle, policies × cycles in all;
 * - no VirtualService outside its policy's bounds at any sampled instant;
 * - zero lost concurrent edits: every label another writer added while the daemon was writing is still there.
 *
 * Layout: this process starts Prometheus behind a fault-injecting proxy, the fake API server (faults, edits and
 * samples happen here, in-process) and the daemon as a child process, so the daemon's memory is its own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/policy/duration.js';
import {
  FakeApiServer,
  type FaultAction,
  type Handle,
  type JsonObject,
  VIRTUAL_SERVICES,
} from '../test/support/fake-apiserver.js';
import {
  freePort,
  startPrometheus,
  type TestPrometheus,
  type WorkloadData,
} from '../test/support/prometheus.js';
import { isEntryPoint } from './entry.js';
import { fleet, policyYaml, virtualServiceOf } from './scale.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const CLI_SOURCE = join(ROOT, 'src', 'cli', 'main.ts');

/** Largest growth of RSS and heap accepted from the end of warm-up to the end of the run. */
export const MAX_MEMORY_GROWTH = 0.1;
/** The daemon's per-query Prometheus timeout: short, so that a hanging Prometheus costs a cycle little. */
const PROMETHEUS_TIMEOUT = '2s';

/** Options of one soak run. */
export interface SoakOptions {
  readonly durationSeconds: number;
  readonly policies: number;
  readonly intervalSeconds: number;
  readonly namespaces: number;
  readonly seed: number;
  /** Time before memory counts, in seconds; default a quarter of the run, at least 30 s. */
  readonly warmupSeconds?: number;
  /** How often bounds and memory are sampled. */
  readonly sampleSeconds: number;
  /** Progress lines; default stderr. */
  readonly log?: (line: string) => void;
}

/** One memory sample of the daemon, after a full GC. */
export interface MemorySample {
  readonly atSeconds: number;
  readonly rssMb: number;
  readonly heapMb: number;
}

/** One check of the run. */
export interface SoakCheck {
  readonly name: string;
  readonly value: string;
  readonly limit: string;
  readonly ok: boolean;
}

/** What a soak run measured. */
export interface SoakResult {
  readonly options: SoakOptions;
  readonly runSeconds: number;
  readonly cycles: number;
  /** Σ policies over the daemon's "cycle complete" lines. */
  readonly evaluated: number;
  /** Per-policy decision lines in the log. */
  readonly decisionLines: number;
  /** Policies whose decision lines do not number exactly `cycles`. */
  readonly policiesMissingDecisions: number;
  readonly auditLines: number;
  readonly errorOutcomes: number;
  readonly unhandled: readonly string[];
  readonly exitCode: number | null;
  readonly aliveUntilStop: boolean;
  readonly boundsSamples: number;
  readonly boundsViolations: readonly string[];
  readonly edits: { readonly made: number; readonly lost: readonly string[] };
  readonly nudges: number;
  readonly patches: { readonly ok: number; readonly conflict: number; readonly failed: number };
  readonly promFaults: Readonly<Record<string, number>>;
  readonly apiFaults: Readonly<Record<string, number>>;
  readonly memory: readonly MemorySample[];
  readonly warmupSeconds: number;
  readonly stderrTail: string;
  readonly checks: readonly SoakCheck[];
}

// ---------------------------------------------------------------------------------------------- options

function positive(flag: string, value: string | undefined, fallback: number, integer = true): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`${flag}: expected a positive ${integer ? 'integer' : 'number'} (got "${value}")`);
  }
  return n;
}

function seconds(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const s = parseDuration(value);
  if (s === undefined || s <= 0)
    throw new Error(`${flag}: expected a duration such as 30s or 10m (got "${value}")`);
  return s;
}

/** Parses the command line of `bench/soak.ts`. */
export function parseSoakOptions(argv: readonly string[]): SoakOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string' },
      policies: { type: 'string' },
      interval: { type: 'string' },
      namespaces: { type: 'string' },
      seed: { type: 'string' },
      warmup: { type: 'string' },
      sample: { type: 'string' },
    },
    strict: true,
  });
  const durationSeconds = seconds('--duration', values.duration, 600);
  return {
    durationSeconds,
    policies: positive('--policies', values.policies, 1000),
    intervalSeconds: seconds('--interval', values.interval, 5),
    namespaces: positive('--namespaces', values.namespaces, 10),
    seed: positive('--seed', values.seed, 1),
    ...(values.warmup === undefined ? {} : { warmupSeconds: seconds('--warmup', values.warmup, 0) }),
    sampleSeconds: seconds('--sample', values.sample, 5),
  };
}

// ---------------------------------------------------------------------------------------------- randomness

/** mulberry32: a small seeded generator, so a run's faults and edits can be replayed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(rng: () => number, items: readonly T[]): T {
  const item = items[Math.floor(rng() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

// ---------------------------------------------------------------------------------------------- the fleet

/** One policy with its VirtualService and workload data. */
export interface SoakMember {
  readonly namespace: string;
  readonly name: string;
  readonly workload: string;
  readonly minPercent: number;
  readonly maxPercent: number;
  readonly percent: number;
  readonly data: WorkloadData;
}

/**
 * The scale benchmark's fleet (60 % headroom, 10 % p99 breach, 10 % CPU breach, 10 % hold band, 10 % no
 * traffic) with bounds that vary per member and a starting percentage inside them; every seventh member also
 * has scrape gaps, so that it goes blind and comes back during the run.
 */
export function soakFleet(size: number, namespaces: number, durationSeconds: number): SoakMember[] {
  return fleet(size, namespaces).map((m, i) => {
    const minPercent = 1 + (i % 5);
    const maxPercent = 40 + (i % 4) * 20;
    const gaps =
      i % 7 === 0
        ? Array.from({ length: Math.max(1, Math.floor(durationSeconds / 120)) }, (_, k) => ({
            fromSeconds: 30 + k * 120 + (i % 60),
            toSeconds: 30 + k * 120 + (i % 60) + 45,
          }))
        : undefined;
    return {
      namespace: m.namespace,
      name: m.name,
      workload: m.workload,
      minPercent,
      maxPercent,
      percent: Math.min(maxPercent, Math.max(minPercent, m.percent)),
      data: gaps === undefined ? m.data : { ...m.data, gaps },
    };
  });
}

/** The percentage in effect on a stored VirtualService's first route (100 when none is written). */
function percentOf(obj: JsonObject | undefined): number | undefined {
  const http = (obj?.spec as { http?: unknown } | undefined)?.http;
  const route = Array.isArray(http) ? (http[0] as Record<string, unknown> | undefined) : undefined;
  if (route === undefined) return undefined;
  const p = route.mirrorPercentage as { value?: unknown } | undefined;
  if (p === undefined || p === null) return 100;
  return typeof p.value === 'number' ? p.value : 0;
}

// ---------------------------------------------------------------------------------------------- processes

/** Things to stop on every exit path (errors, SIGINT), newest first. */
const running = new Set<() => Promise<void>>();

function track(stop: () => Promise<void>): () => Promise<void> {
  const once = async () => {
    running.delete(once);
    await stop();
  };
  running.add(once);
  return once;
}

async function stopAll(): Promise<void> {
  for (let round = 0; running.size > 0 && round < 10; round++) {
    for (const stop of [...running].reverse()) await stop().catch(() => undefined);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed by a signal). */
async function stopChild(child: ChildProcess, graceMs: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
      process.kill(child.pid, 'SIGKILL');
  }, graceMs);
  const code = await exited;
  clearTimeout(timer);
  return code;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------- Prometheus faults

const PROM_FAULTS = ['http500', 'http503', 'garbage', 'slow', 'down', 'matrix'] as const;
type PromFault = (typeof PROM_FAULTS)[number];

/** A proxy in front of the real Prometheus that misbehaves in the mode it is set to. */
interface FaultProxy {
  readonly url: string;
  mode: PromFault | 'ok';
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function startFaultProxy(target: string): Promise<FaultProxy> {
  const held = new Set<ServerResponse>();
  const handle = async (req: IncomingMessage, res: ServerResponse, proxy: FaultProxy) => {
    const body = await readBody(req);
    switch (proxy.mode) {
      case 'down':
        // As a refused or dropped connection looks to the client: no answer at all.
        req.socket.destroy();
        return;
      case 'slow':
        // Held past the client's timeout; released when the client gives up or the proxy closes.
        held.add(res);
        res.on('close', () => held.delete(res));
        return;
      case 'http500':
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ status: 'error', errorType: 'internal', error: 'query processing failed' }));
        return;
      case 'http503':
        res.writeHead(503, { 'content-type': 'text/plain' });
        res.end('upstream connect error or disconnect/reset before headers');
        return;
      case 'garbage':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"success","data":{"resultType":"vec');
        return;
      case 'matrix':
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            status: 'success',
            data: { resultType: 'matrix', result: [{ metric: {}, values: [[Date.now() / 1000, '1']] }] },
          }),
        );
        return;
      case 'ok': {
        const headers: Record<string, string> = {};
        const type = req.headers['content-type'];
        if (type !== undefined) headers['content-type'] = type;
        const upstream = await fetch(`${target}${req.url ?? '/'}`, {
          method: req.method ?? 'GET',
          headers,
          ...(body.length > 0 ? { body } : {}),
          signal: AbortSignal.timeout(30_000),
        });
        const text = await upstream.text();
        res.writeHead(upstream.status, {
          'content-type': upstream.headers.get('content-type') ?? 'application/json',
        });
        res.end(text);
      }
    }
  };
  const proxy: FaultProxy = { url: '', mode: 'ok', close: async () => undefined };
  const server: Server = createServer((req, res) => {
    handle(req, res, proxy).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return Object.assign(proxy, {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

// ---------------------------------------------------------------------------------------------- API faults

/** Kinds of API fault injected at random, with what they do. */
const API_FAULTS: readonly {
  readonly kind: string;
  readonly verb: 'patch' | 'list' | 'get';
  readonly action: FaultAction;
}[] = [
  { kind: 'patch 409', verb: 'patch', action: { kind: 'status', code: 409 } },
  { kind: 'patch 429', verb: 'patch', action: { kind: 'status', code: 429, retryAfterSeconds: 1 } },
  { kind: 'patch 500', verb: 'patch', action: { kind: 'status', code: 500 } },
  { kind: 'patch 503', verb: 'patch', action: { kind: 'status', code: 503 } },
  { kind: 'patch reset', verb: 'patch', action: { kind: 'reset' } },
  { kind: 'patch reset after apply', verb: 'patch', action: { kind: 'resetAfterApply' } },
  { kind: 'list 500', verb: 'list', action: { kind: 'status', code: 500 } },
  { kind: 'list 503', verb: 'list', action: { kind: 'status', code: 503 } },
  { kind: 'list reset', verb: 'list', action: { kind: 'reset' } },
  { kind: 'list garbage', verb: 'list', action: { kind: 'garbage', code: 200 } },
  { kind: 'list slow (3 s)', verb: 'list', action: { kind: 'delay', ms: 3000 } },
  { kind: 'get 500', verb: 'get', action: { kind: 'status', code: 500 } },
];

// ---------------------------------------------------------------------------------------------- the daemon

/** Loaded with --import into the daemon: memory samples after a full GC, and every unhandled rejection. */
const PROBE = `import { appendFileSync } from 'node:fs';
const file = process.env.SOAK_PROBE_FILE;
const write = (record) => appendFileSync(file, JSON.stringify({ t: Date.now(), ...record }) + '\\n');
const describe = (e) => (e instanceof Error ? (e.stack ?? e.message) : String(e));
process.on('unhandledRejection', (reason) => write({ type: 'unhandledRejection', reason: describe(reason) }));
process.on('uncaughtExceptionMonitor', (err) => write({ type: 'uncaughtException', reason: describe(err) }));
const sample = () => {
  globalThis.gc?.();
  const m = process.memoryUsage();
  write({ type: 'memory', rss: m.rss, heap: m.heapUsed });
};
setInterval(sample, Number(process.env.SOAK_SAMPLE_MS)).unref();
`;

/** What the daemon's log says, counted line by line as it is written. */
class LogCounter {
  cycles = 0;
  evaluated = 0;
  decisionLines = 0;
  auditLines = 0;
  errorOutcomes = 0;
  notJson = 0;
  readonly perPolicy = new Map<string, number>();

  line(text: string): void {
    let rec: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
      rec = parsed as Record<string, unknown>;
    } catch {
      this.notJson++;
      return;
    }
    if (rec.msg === 'cycle complete' && typeof rec.policies === 'number') {
      this.cycles++;
      this.evaluated += rec.policies;
    } else if (typeof rec.policy === 'string' && 'proposedPercent' in rec && 'currentPercent' in rec) {
      this.decisionLines++;
      this.perPolicy.set(rec.policy, (this.perPolicy.get(rec.policy) ?? 0) + 1);
      if ('error' in rec) this.errorOutcomes++;
    } else if (rec.audit === true) {
      this.auditLines++;
    }
  }
}

// ---------------------------------------------------------------------------------------------- the run

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0
    ? Number.NaN
    : s.length % 2 === 1
      ? (s[mid] ?? Number.NaN)
      : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Growth from the first three samples after warm-up to the last three (medians), or undefined with too few. */
export function memoryGrowth(
  samples: readonly MemorySample[],
  warmupSeconds: number,
  field: 'rssMb' | 'heapMb',
): { from: number; to: number; growth: number } | undefined {
  const after = samples.filter((s) => s.atSeconds >= warmupSeconds);
  if (after.length < 6) return undefined;
  const from = median(after.slice(0, 3).map((s) => s[field]));
  const to = median(after.slice(-3).map((s) => s[field]));
  return { from, to, growth: to / from - 1 };
}

/** The checks of a run, from what it measured. */
export function soakChecks(r: Omit<SoakResult, 'checks'>): SoakCheck[] {
  const expected = r.options.policies * r.cycles;
  const checks: SoakCheck[] = [
    {
      name: 'decisions logged',
      value: `${r.decisionLines} (${r.cycles} cycles, ${r.policiesMissingDecisions} policies off)`,
      limit: `= policies × cycles = ${expected}`,
      ok:
        r.cycles > 0 &&
        r.decisionLines === expected &&
        r.evaluated === expected &&
        r.policiesMissingDecisions === 0,
    },
    {
      name: 'unhandled rejections / exceptions',
      value: String(r.unhandled.length),
      limit: '0',
      ok: r.unhandled.length === 0,
    },
    {
      name: 'daemon alive until SIGTERM, then exit 0',
      value: `${r.aliveUntilStop ? 'alive' : 'died'}, exit ${r.exitCode}`,
      limit: 'alive, exit 0',
      ok: r.aliveUntilStop && r.exitCode === 0,
    },
    {
      name: 'VirtualServices outside bounds',
      value: `${r.boundsViolations.length} in ${r.boundsSamples} samples × ${r.options.policies}`,
      limit: '0',
      ok: r.boundsSamples > 0 && r.boundsViolations.length === 0,
    },
    {
      name: 'concurrent label edits lost',
      value: `${r.edits.lost.length} of ${r.edits.made}`,
      limit: '0',
      ok: r.edits.made > 0 && r.edits.lost.length === 0,
    },
  ];
  for (const [field, label] of [
    ['heapMb', 'heap growth after warm-up'],
    ['rssMb', 'RSS growth after warm-up'],
  ] as const) {
    const g = memoryGrowth(r.memory, r.warmupSeconds, field);
    checks.push({
      name: label,
      value:
        g === undefined
          ? 'too few samples'
          : `${(g.growth * 100).toFixed(1)} % (${g.from.toFixed(1)} -> ${g.to.toFixed(1)} MB)`,
      limit: `<= ${MAX_MEMORY_GROWTH * 100} %`,
      ok: g !== undefined && g.growth <= MAX_MEMORY_GROWTH,
    });
  }
  return checks;
}

/**
 * Runs one soak: starts everything, lets the daemon run for the duration while faults, edits and samples
 * happen, stops the daemon with SIGTERM and everything else by PID, and returns what it measured.
 */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const rng = seededRandom(options.seed);
  const namespaces = Math.max(1, Math.min(options.namespaces, options.policies));
  const members = soakFleet(options.policies, namespaces, options.durationSeconds);
  const warmupSeconds = options.warmupSeconds ?? Math.max(30, options.durationSeconds / 4);
  const stops: (() => Promise<void>)[] = [];
  try {
    log(`soak: backfilling Prometheus (${members.length} workloads)`);
    const prom: TestPrometheus = await startPrometheus(
      members.map((m) => m.data),
      {
        range: { historySeconds: 300, futureSeconds: options.durationSeconds + 300 },
        readyTimeoutMs: 120_000,
      },
    );
    stops.push(track(() => prom.stop()));
    const proxy = await startFaultProxy(prom.url);
    stops.push(track(() => proxy.close()));
    const api = await FakeApiServer.start();
    stops.push(track(() => api.close()));
    for (const m of members) api.setVirtualService(virtualServiceOf(m));
    const dir = await mkdtemp(join(tmpdir(), 'mirror-autoscaler-soak-'));
    stops.push(track(() => rm(dir, { recursive: true, force: true })));
    const kubeconfig = await api.writeKubeconfig();
    const policiesDir = join(dir, 'policies');
    await mkdir(policiesDir);
    await Promise.all(
      members.map((m) =>
        writeFile(
          join(policiesDir, `${m.name}.yaml`),
          policyYaml(m, {
            minPercent: m.minPercent,
            maxPercent: m.maxPercent,
            intervalSeconds: options.intervalSeconds,
            windowSeconds: Math.max(60, options.intervalSeconds),
          }),
        ),
      ),
    );
    const probe = join(dir, 'probe.mjs');
    const probeFile = join(dir, 'probe.jsonl');
    await writeFile(probe, PROBE);
    await writeFile(probeFile, '');

    const metricsPort = await freePort();
    log(
      `soak: starting the daemon (${members.length} policies, every ${options.intervalSeconds} s, ${options.durationSeconds} s)`,
    );
    const child = spawn(
      process.execPath,
      [
        '--expose-gc',
        '--import',
        'tsx',
        '--import',
        pathToFileURL(probe).href,
        CLI_SOURCE,
        'run',
        '--policies',
        policiesDir,
        '--prometheus-url',
        proxy.url,
        '--kubeconfig',
        kubeconfig,
        '--no-leader-elect',
        '--metrics-port',
        String(metricsPort),
        '--metrics-address',
        '127.0.0.1',
        '--log-level',
        'debug',
        '--reload-interval',
        '1h',
      ],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? tmpdir(),
          PROMETHEUS_TIMEOUT,
          SOAK_PROBE_FILE: probeFile,
          SOAK_SAMPLE_MS: String(options.sampleSeconds * 1000),
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let exitCode: number | null = null;
    const stopDaemon = track(async () => {
      exitCode = await stopChild(child, 30_000);
    });
    stops.push(stopDaemon);
    const counter = new LogCounter();
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (l) => counter.line(l));
    const logClosed = new Promise<void>((resolve) => lines.once('close', () => resolve()));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    let died = false;
    child.once('exit', () => {
      died = true;
    });

    // ------------------------------------------------------------------ the loop: faults, edits, samples
    const started = Date.now();
    const promFaults: Record<string, number> = {};
    const apiFaults: Record<string, number> = {};
    const apiHandles: { kind: string; handle: Handle }[] = [];
    const expectedLabels: { namespace: string; name: string; key: string; value: string }[] = [];
    const armed: Handle[] = [];
    const boundsViolations: string[] = [];
    let boundsSamples = 0;
    let nudges = 0;
    let editCount = 0;
    const patches = { ok: 0, conflict: 0, failed: 0 };
    let promFaultUntil = 0;
    let nextSample = 0;
    const countPatches = () => {
      for (const r of api.requests) {
        if (r.verb !== 'patch' || r.resource !== 'virtualservices') continue;
        if (r.status !== undefined && r.status < 300) patches.ok++;
        else if (r.status === 409 || r.status === 422) patches.conflict++;
        else patches.failed++;
      }
      // The request log would otherwise hold every request of the run.
      api.clearRequests();
    };
    const label = (m: SoakMember) => {
      const n = editCount++;
      const key = `soak.mirror-autoscaler.io/e${n}`;
      const value = `v${n}`;
      return {
        key,
        value,
        edit: (obj: JsonObject) => {
          const meta = obj.metadata as { labels?: Record<string, string> };
          meta.labels = { ...meta.labels, [key]: value };
          expectedLabels.push({ namespace: m.namespace, name: m.name, key, value });
        },
      };
    };
    for (let tick = 0; ; tick++) {
      const elapsed = (Date.now() - started) / 1000;
      if (elapsed >= options.durationSeconds || died) break;
      // Prometheus: one fault at a time, 5 to 20 s long, starting about every 40 s.
      if (proxy.mode !== 'ok' && Date.now() >= promFaultUntil) proxy.mode = 'ok';
      // A short run still sees Prometheus fail at least once: the first fault is forced by a third of the run.
      const promDue = Object.keys(promFaults).length === 0 && elapsed >= options.durationSeconds / 3;
      if (proxy.mode === 'ok' && (rng() < 1 / 40 || promDue)) {
        const fault = pick(rng, PROM_FAULTS);
        proxy.mode = fault;
        promFaultUntil = Date.now() + (5 + rng() * 15) * 1000;
        promFaults[fault] = (promFaults[fault] ?? 0) + 1;
      }
      // API: about one fault every 8 s, hitting the next 1 to 3 matching requests.
      if (rng() < 1 / 8 || (apiHandles.length === 0 && elapsed >= options.durationSeconds / 3)) {
        const f = pick(rng, API_FAULTS);
        const handle = api.injectFault({
          match: { verb: f.verb, resource: 'virtualservices' },
          times: 1 + Math.floor(rng() * 3),
          action: f.action,
        });
        apiHandles.push({ kind: f.kind, handle });
      }
      // Another writer: label edits now, and label edits slipped in right before the daemon's next write.
      for (let k = 0; k < 2; k++) {
        const m = pick(rng, members);
        const e = label(m);
        if (rng() < 0.5) api.mutateObject(VIRTUAL_SERVICES, m.namespace, m.name, e.edit);
        else armed.push(api.concurrentEdit({ namespace: m.namespace, name: m.name }, e.edit));
      }
      // An operator sets a percentage by hand (inside the bounds), so that the daemon keeps writing.
      if (rng() < 0.3) {
        const m = pick(rng, members);
        const value = Math.round((m.minPercent + rng() * (m.maxPercent - m.minPercent)) * 100) / 100;
        api.mutateObject(VIRTUAL_SERVICES, m.namespace, m.name, (obj) => {
          const route = ((obj.spec as { http: JsonObject[] }).http[0] ?? {}) as JsonObject;
          route.mirrorPercentage = { value };
        });
        nudges++;
      }
      if (elapsed >= nextSample) {
        nextSample = elapsed + options.sampleSeconds;
        boundsSamples++;
        for (const m of members) {
          const p = percentOf(api.getVirtualService(m.namespace, m.name));
          if (p === undefined || p < m.minPercent || p > m.maxPercent) {
            boundsViolations.push(
              `${elapsed.toFixed(0)} s: ${m.namespace}/${m.name} at ${p} (bounds ${m.minPercent}-${m.maxPercent})`,
            );
          }
        }
        countPatches();
      }
      if (tick % 60 === 0) {
        log(
          `soak: ${elapsed.toFixed(0)} s, ${counter.cycles} cycles, ${counter.decisionLines} decisions, ${expectedLabels.length} edits, Prometheus ${proxy.mode}`,
        );
      }
      await sleep(1000);
    }
    const aliveUntilStop = !died;
    proxy.mode = 'ok';
    for (const h of armed) h.remove();
    for (const { handle } of apiHandles) handle.remove();
    await stopDaemon();
    // The last lines of the log are read before counting (bounded: the daemon has exited).
    await Promise.race([logClosed, sleep(10_000)]);
    countPatches();
    for (const { kind, handle } of apiHandles)
      if (handle.hits > 0) apiFaults[kind] = (apiFaults[kind] ?? 0) + handle.hits;
    const lost = expectedLabels
      .filter((e) => {
        const labels = (
          api.getVirtualService(e.namespace, e.name)?.metadata as
            | { labels?: Record<string, string> }
            | undefined
        )?.labels;
        return labels?.[e.key] !== e.value;
      })
      .map((e) => `${e.namespace}/${e.name} ${e.key}`);

    const probeLines = (await readFile(probeFile, 'utf8')).split('\n').filter((l) => l !== '');
    const memory: MemorySample[] = [];
    const unhandled: string[] = [];
    for (const l of probeLines) {
      const rec = JSON.parse(l) as { t: number; type: string; rss?: number; heap?: number; reason?: string };
      if (rec.type === 'memory' && rec.rss !== undefined && rec.heap !== undefined) {
        memory.push({
          atSeconds: (rec.t - started) / 1000,
          rssMb: rec.rss / 2 ** 20,
          heapMb: rec.heap / 2 ** 20,
        });
      } else if (rec.type !== 'memory') unhandled.push(`${rec.type}: ${rec.reason ?? ''}`);
    }
    const cycles = counter.cycles;
    let policiesMissingDecisions = 0;
    for (const m of members) if ((counter.perPolicy.get(m.name) ?? 0) !== cycles) policiesMissingDecisions++;
    const partial: Omit<SoakResult, 'checks'> = {
      options,
      runSeconds: (Date.now() - started) / 1000,
      cycles,
      evaluated: counter.evaluated,
      decisionLines: counter.decisionLines,
      policiesMissingDecisions,
      auditLines: counter.auditLines,
      errorOutcomes: counter.errorOutcomes,
      unhandled,
      exitCode,
      aliveUntilStop,
      boundsSamples,
      boundsViolations,
      edits: { made: expectedLabels.length, lost },
      nudges,
      patches,
      promFaults,
      apiFaults,
      memory,
      warmupSeconds,
      stderrTail: stderr.trim(),
    };
    return { ...partial, checks: soakChecks(partial) };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

/** The result as a small markdown report: the checks, then what happened. */
export function formatSoakReport(r: SoakResult): string {
  const o = r.options;
  const rows = r.checks.map((c) => `| ${c.name} | ${c.value} | ${c.limit} | ${c.ok ? 'yes' : '**no**'} |`);
  const faults = (f: Readonly<Record<string, number>>) =>
    Object.entries(f)
      .sort()
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ') || 'none';
  return [
    `Soak: ${o.policies} policies, interval ${o.intervalSeconds} s, ${Math.round(r.runSeconds)} s (warm-up ${Math.round(r.warmupSeconds)} s), seed ${o.seed}`,
    '',
    '| check | value | limit | ok |',
    '|---|---|---|---|',
    ...rows,
    '',
    `cycles ${r.cycles}; writes: ${r.patches.ok} PATCH ok, ${r.patches.conflict} conflicts, ${r.patches.failed} failed; audit lines ${r.auditLines}; outcomes with an error ${r.errorOutcomes}`,
    `Prometheus faults: ${faults(r.promFaults)}`,
    `API faults (requests hit): ${faults(r.apiFaults)}`,
    `another writer: ${r.edits.made} label edits, ${r.nudges} percentages set by hand`,
    ...(r.boundsViolations.length > 0
      ? ['', 'out of bounds (first 5):', ...r.boundsViolations.slice(0, 5)]
      : []),
    ...(r.edits.lost.length > 0 ? ['', 'lost edits (first 5):', ...r.edits.lost.slice(0, 5)] : []),
    ...(r.unhandled.length > 0 ? ['', 'unhandled (first 3):', ...r.unhandled.slice(0, 3)] : []),
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const options = parseSoakOptions(process.argv.slice(2));
  let stopping = false;
  const interrupt = () => {
    if (stopping) return;
    stopping = true;
    void stopAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  const result = await runSoak(options);
  process.stdout.write(formatSoakReport(result));
  if (result.checks.some((c) => !c.ok)) {
    if (result.stderrTail !== '') process.stderr.write(`daemon stderr:\n${result.stderrTail}\n`);
    process.exitCode = 1;
  }
}

if (isEntryPoint(SELF)) {
  main().catch(async (err: unknown) => {
    await stopAll();
    process.stderr.write(`bench:soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
