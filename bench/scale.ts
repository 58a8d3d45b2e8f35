/**
 * Cost at scale: what one reconcile cycle costs for N policies, with real parts only — a real Prometheus
 * backfilled with N mirror targets, the fake Kubernetes API server (test/support) driven by the real
 * @kubernetes/client-node, the real PrometheusSignalSource, KubernetesRouteStore, policy loader and runCycle.
 *
 * Run: `npx tsx bench/scale.ts [--sizes 10,100,1000,5000] [--cycles 100] [--quick] [--namespaces 10] [--skip-cli]`
 * (`npm run bench:scale`). Prints one markdown table and writes it to bench/out/scale.md (raw figures to
 * bench/out/scale.json).
 *
 * Layout, and why: this process (the orchestrator) starts Prometheus and the fake API server and forks one
 * worker process per size. The worker holds only the controller (policies, adapters, cycle state), so its peak
 * RSS and heap are the controller's own and not the fake API server's, nor those of a previous, larger size.
 * The worker is forked with --expose-gc, so heap figures are taken after a full collection; no flag is needed
 * on the command line. API request counts come from the fake server here, over the IPC channel.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { KubeConfig } from '@kubernetes/client-node';
import { type ControllerState, type DecideInput, decide } from '../src/core/decide.js';
import type { Action } from '../src/core/types.js';
import { createLogger } from '../src/daemon/audit.js';
import {
  type CycleDeps,
  type PolicyOutcome,
  readState,
  runCycle,
  signalRequests,
} from '../src/daemon/cycle.js';
import { currentPercent, KubernetesRouteStore, locateTarget, type RouteStore } from '../src/mesh/index.js';
import { loadPolicyDir } from '../src/policy/index.js';
import type { MirrorPolicy } from '../src/policy/types.js';
import { PrometheusSignalSource, type SignalSource } from '../src/signals/index.js';
import { FakeApiServer, type JsonObject } from '../test/support/fake-apiserver.js';
import { PRIMARY_ROUTE, virtualService } from '../test/support/kube-fixtures.js';
import {
  type SampleRange,
  startPrometheus,
  type TestPrometheus,
  type WorkloadData,
} from '../test/support/prometheus.js';
import { isEntryPoint } from './entry.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const OUT_DIR = join(ROOT, 'bench', 'out');

/** The targets; `size` is the fleet size they are judged at. */
export const TARGETS = {
  size: 1000,
  decisionMs: 20,
  dryRunCycleMs: 2000,
  queriesPerCycle: 10,
  peakRssMb: 150,
  memoryGrowth: 0.1,
} as const;

/**
 * A few minutes of samples are enough for a 2 m window. The in-process cycles evaluate at the data's "now";
 * only the CLI runs query at the wall clock, and they run right after the backfill, well inside the future part.
 */
export const BENCH_RANGE: SampleRange = { historySeconds: 300, futureSeconds: 300 };
/** Policies' evaluation interval; the decision clock of the memory run advances by this much per cycle. */
const INTERVAL_MS = 30_000;

/** Options of one benchmark run. */
export interface ScaleOptions {
  readonly sizes: readonly number[];
  /** Cycles of the memory run (with writes). */
  readonly cycles: number;
  readonly namespaces: number;
  /** Dry-run cycles timed after the first (cold) one. */
  readonly dryRuns: number;
  /** Timed passes of decide() over all policies. */
  readonly decisionRuns: number;
  /** Run the built CLI (when dist/cli/main.js exists). */
  readonly cli: boolean;
  /** Progress lines; default stderr. */
  readonly log?: (line: string) => void;
}

/** Requests the fake API server received, by verb (discovery and anything without a verb is `other`). */
export interface ApiCounts {
  list: number;
  get: number;
  patch: number;
  other: number;
}

/** One timed cycle. */
export interface CycleFigures {
  readonly ms: number;
  /** Time inside SignalSource.fetch (runs alongside the LISTs). */
  readonly fetchMs: number;
  /** From the first LIST sent to the last answered. */
  readonly listMs: number;
  /** Time inside patchPercent, summed (writes are sent one after another). */
  readonly patchMs: number;
  readonly queries: number;
  readonly api: ApiCounts;
  readonly errors: number;
  /** Outcomes with write "written" (or "recorded" in a dry run). */
  readonly writes: number;
  readonly actions: Record<Action, number>;
}

/** What the worker measured for one size. */
export interface WorkerResult {
  readonly pid: number;
  readonly policies: number;
  readonly policyLoadMs: number;
  /** First dry-run cycle: includes API discovery and new connections. */
  readonly cold: CycleFigures;
  /** Later dry-run cycles. */
  readonly dry: readonly CycleFigures[];
  readonly decision: { readonly medianMs: number; readonly minMs: number; readonly runs: number };
  /** The memory run: cycles with writes, the decision clock advancing one interval per cycle. */
  readonly loop: readonly CycleFigures[];
  readonly memory: {
    readonly gc: boolean;
    /** Right after start-up (modules loaded, tsx's loader thread included), before any work. */
    readonly rssBaselineMb: number;
    readonly heapBaselineMb: number;
    readonly earlyCycle: number;
    readonly lateCycle: number;
    readonly heapEarlyMb: number;
    readonly heapLateMb: number;
    readonly rssEarlyMb: number;
    readonly rssLateMb: number;
  };
  readonly peakRssMb: number;
  /** Peak RSS (MB) reached by the end of each phase, to tell which phase set the peak. */
  readonly peakByPhase: Readonly<Record<string, number>>;
  /** Open file descriptors (sockets mostly) at the end of each phase; null where /proc is not available. */
  readonly fdsByPhase: Readonly<Record<string, number | null>>;
  /** Heap and RSS after gc every 10th cycle of the memory run (MB). */
  readonly memorySeries: readonly {
    readonly cycle: number;
    readonly heapMb: number;
    readonly rssMb: number;
  }[];
}

/** One run of the built CLI, timed as a whole process. */
export interface CliFigures {
  readonly args: readonly string[];
  readonly wallMs: number;
  readonly exitCode: number | null;
  readonly peakRssMb: number | null;
  /** Instant queries Prometheus answered during the run (from its own /metrics). */
  readonly promQueries: number | null;
  readonly api: ApiCounts;
  readonly stderrTail: string;
}

/** Everything measured for one fleet size. */
export interface SizeResult {
  readonly size: number;
  readonly namespaces: number;
  readonly samples: number;
  readonly backfillMs: number;
  readonly promUrl: string;
  readonly worker: WorkerResult;
  readonly cli: { readonly dryRun: CliFigures; readonly run: CliFigures } | { readonly skipped: string };
}

// ---------------------------------------------------------------------------------------------- the fleet

/** One mirror target with its VirtualService and policy. */
interface Member {
  readonly namespace: string;
  readonly name: string;
  readonly workload: string;
  readonly percent: number;
  readonly data: WorkloadData;
}

/**
 * N members over `namespaces` namespaces with a deterministic mix of states, so a cycle decides every way:
 * 60 % headroom (raise), 10 % p99 breach, 10 % CPU breach (cut), 10 % inside the hysteresis band (hold),
 * 10 % without traffic (hold). Starting percentages vary from 5 to 35.
 */
export function fleet(size: number, namespaces: number): Member[] {
  const out: Member[] = [];
  for (let i = 0; i < size; i++) {
    const namespace = `bench-${i % namespaces}`;
    const name = `svc-${i}`;
    const workload = `${name}-shadow`;
    const base = { namespace, workload, pods: 1, requestsPerSecond: 20, cpuRequestCores: 1 };
    let data: WorkloadData;
    switch (i % 10) {
      case 0:
        data = {
          ...base,
          cpuCores: 0.3,
          latency: [
            { ms: 30, share: 0.9 },
            { ms: 2000, share: 0.1 },
          ],
        };
        break;
      case 1:
        data = { ...base, cpuCores: 0.95 };
        break;
      case 2:
        data = { ...base, cpuCores: 0.7 };
        break;
      case 3:
        data = { ...base, requestsPerSecond: 0, cpuCores: 0.05 };
        break;
      default:
        data = { ...base, cpuCores: 0.2 };
    }
    out.push({ namespace, name, workload, percent: 5 + (i % 7) * 5, data });
  }
  return out;
}

/** A fleet member's VirtualService: one http route, `primary`, mirroring to the member's workload. */
export function virtualServiceOf(m: Pick<Member, 'namespace' | 'name' | 'workload' | 'percent'>): JsonObject {
  return virtualService({
    namespace: m.namespace,
    name: m.name,
    hosts: [m.name],
    labels: { app: m.name },
    http: [
      {
        name: 'primary',
        ...PRIMARY_ROUTE,
        mirror: { host: m.workload },
        mirrorPercentage: { value: m.percent },
      },
    ],
  });
}

/** How a member's policy differs from the benchmark's default (bounds 1–100, every 30 s over 2 m). */
export interface PolicyShape {
  readonly minPercent: number;
  readonly maxPercent: number;
  readonly intervalSeconds: number;
  readonly windowSeconds: number;
}

const DEFAULT_SHAPE: PolicyShape = {
  minPercent: 1,
  maxPercent: 100,
  intervalSeconds: 30,
  windowSeconds: 120,
};

/** A fleet member's policy file: all three guardrails, default queries. */
export function policyYaml(
  m: Pick<Member, 'namespace' | 'name' | 'workload'>,
  shape: Partial<PolicyShape> = {},
): string {
  const { minPercent, maxPercent, intervalSeconds, windowSeconds } = { ...DEFAULT_SHAPE, ...shape };
  return `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: ${m.name}
spec:
  virtualService:
    name: ${m.name}
    namespace: ${m.namespace}
    route: primary
  target:
    host: ${m.workload}
    workload: ${m.workload}
  bounds:
    minPercent: ${minPercent}
    maxPercent: ${maxPercent}
  guardrails:
    cpuUtilization: 0.8
    errorRate: 0.02
    latencyP99Ms: 500
  interval: ${intervalSeconds}s
  window: ${windowSeconds}s
`;
}

// ---------------------------------------------------------------------------------------------- helpers

function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

const mb = (bytes: number): number => bytes / (1024 * 1024);

function countApi(api: FakeApiServer): ApiCounts {
  const counts: ApiCounts = { list: 0, get: 0, patch: 0, other: 0 };
  for (const r of api.requests) {
    if (r.verb === 'list' || r.verb === 'get' || r.verb === 'patch') counts[r.verb]++;
    else counts.other++;
  }
  return counts;
}

/** Instant-query requests Prometheus has answered so far, read from its own metrics. */
async function promQueryCount(url: string): Promise<number | null> {
  try {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    let total = 0;
    for (const line of text.split('\n')) {
      if (line.startsWith('prometheus_http_requests_total{') && line.includes('handler="/api/v1/query"')) {
        total += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
    return total;
  } catch {
    return null;
  }
}

/** Kills a child by PID if it still runs; SIGKILL after `graceMs`. */
async function stopProcess(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid, 'SIGKILL');
    }
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

/** Resolves when the child has exited or `ms` have passed, whichever comes first. */
async function waitExit(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    new Promise<void>((resolve) => child.once('exit', () => resolve())),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

/** Children and servers still running, stopped on exit paths (errors, SIGINT). */
const running = new Set<() => Promise<void>>();
/** Set on SIGINT/SIGTERM: anything started from then on is stopped at once. */
let interrupted = false;

async function stopAll(): Promise<void> {
  // A step still in flight may start something while we stop the rest: go round until nothing is left.
  for (let round = 0; running.size > 0 && round < 10; round++) {
    for (const stop of [...running].reverse()) await stop().catch(() => undefined);
  }
}

function track(stop: () => Promise<void>): () => Promise<void> {
  const once = async () => {
    running.delete(once);
    await stop();
  };
  running.add(once);
  // Sends the signal synchronously, so nothing survives even if the process exits right after.
  if (interrupted) void once().catch(() => undefined);
  return once;
}

// ---------------------------------------------------------------------------------------------- the CLI

const RSS_PRELOAD = `import { writeFileSync } from 'node:fs';
process.on('exit', () => {
  const file = process.env.BENCH_RSS_FILE;
  if (file) writeFileSync(file, String(process.resourceUsage().maxRSS));
});
`;

/** Runs `node dist/cli/main.js ARGS` to the end, timing the whole process; its peak RSS comes from a preload. */
async function runCli(
  args: readonly string[],
  dir: string,
  api: FakeApiServer,
  promUrl: string,
  timeoutMs: number,
): Promise<CliFigures> {
  const preload = join(dir, 'rss-preload.mjs');
  const rssFile = join(dir, 'cli-rss');
  await writeFile(preload, RSS_PRELOAD);
  await rm(rssFile, { force: true });
  api.clearRequests();
  const q0 = await promQueryCount(promUrl);
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', pathToFileURL(preload).href, CLI, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), BENCH_RSS_FILE: rssFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = track(() => stopProcess(child));
  let stderr = '';
  // stdout carries a JSON log line per policy: read and drop it, as a log shipper would.
  child.stdout?.resume();
  child.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-2000);
  });
  const timer = setTimeout(() => void stop(), timeoutMs);
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const wallMs = performance.now() - started;
  clearTimeout(timer);
  await stop();
  const q1 = await promQueryCount(promUrl);
  const rss = existsSync(rssFile) ? Number(await readFile(rssFile, 'utf8')) : Number.NaN;
  return {
    args,
    wallMs,
    exitCode,
    // maxRSS is in kilobytes.
    peakRssMb: Number.isFinite(rss) ? rss / 1024 : null,
    promQueries: q0 === null || q1 === null ? null : q1 - q0,
    api: countApi(api),
    stderrTail: stderr.trim(),
  };
}

// ---------------------------------------------------------------------------------------------- IPC

/** Setup the orchestrator hands to a worker. */
interface WorkerConfig {
  readonly promUrl: string;
  /** The data's "now" (epoch ms): in-process cycles query Prometheus at this instant. */
  readonly promNowMs: number;
  readonly kubeconfig: string;
  readonly policiesDir: string;
  readonly cycles: number;
  readonly dryRuns: number;
  readonly decisionRuns: number;
}

type ToWorker =
  | { readonly type: 'start'; readonly config: WorkerConfig }
  | { readonly type: 'api'; readonly id: number; readonly counts: ApiCounts };
type FromWorker =
  | { readonly type: 'api'; readonly id: number; readonly op: 'clear' | 'count' }
  | { readonly type: 'result'; readonly result: WorkerResult }
  | { readonly type: 'error'; readonly message: string };

function isMessage<T extends { type: string }>(m: unknown): m is T {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string';
}

/** Forks the worker for one size, answers its API-count requests, and returns what it measured. */
async function runWorker(config: WorkerConfig, api: FakeApiServer, timeoutMs: number): Promise<WorkerResult> {
  const child = fork(SELF, ['--worker'], {
    cwd: ROOT,
    execArgv: [
      '--import',
      'tsx',
      '--expose-gc',
      ...(process.env.BENCH_CPU_PROF === undefined
        ? []
        : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]),
    ],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const stop = track(() => stopProcess(child));
  try {
    return await new Promise<WorkerResult>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker did not finish within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const done = () => clearTimeout(timer);
      child.on('message', (m: unknown) => {
        if (!isMessage<FromWorker>(m)) return;
        if (m.type === 'api') {
          if (m.op === 'clear') api.clearRequests();
          const reply: ToWorker = { type: 'api', id: m.id, counts: countApi(api) };
          child.send(reply);
        } else if (m.type === 'result') {
          done();
          resolve(m.result);
        } else {
          done();
          reject(new Error(`worker failed: ${m.message}`));
        }
      });
      child.once('exit', (code, signal) => {
        done();
        reject(new Error(`worker exited (${code ?? signal}) before reporting`));
      });
      child.once('error', (err) => {
        done();
        reject(err);
      });
      const start: ToWorker = { type: 'start', config };
      child.send(start);
    });
  } finally {
    // The worker exits by itself once it has reported (writing a CPU profile if asked); kill it if it does not.
    await waitExit(child, 10_000);
    await stop();
  }
}

// ---------------------------------------------------------------------------------------------- one size

/**
 * Measures one fleet size: backfills Prometheus, seeds the fake API server, writes the policy files, runs the
 * built CLI (dry run, then a real run) and then the in-process worker. Stops everything it started, by PID,
 * whether it succeeds or fails.
 */
export async function benchSize(size: number, options: ScaleOptions): Promise<SizeResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const namespaces = Math.max(1, Math.min(options.namespaces, size));
  const members = fleet(size, namespaces);
  const stops: (() => Promise<void>)[] = [];
  try {
    log(`[${size}] backfilling Prometheus (${members.length} workloads)`);
    const t0 = performance.now();
    const prom: TestPrometheus = await startPrometheus(
      members.map((m) => m.data),
      { range: BENCH_RANGE, readyTimeoutMs: 120_000 },
    );
    stops.push(track(() => prom.stop()));
    const backfillMs = performance.now() - t0;

    const api = await FakeApiServer.start();
    stops.push(track(() => api.close()));
    const seed = () => {
      for (const m of members) api.setVirtualService(virtualServiceOf(m));
    };
    seed();
    const kubeconfig = await api.writeKubeconfig();

    const dir = await mkdtemp(join(tmpdir(), 'mirror-autoscaler-scale-'));
    stops.push(track(() => rm(dir, { recursive: true, force: true })));
    const policiesDir = join(dir, 'policies');
    await mkdir(policiesDir);
    for (const m of members) await writeFile(join(policiesDir, `${m.name}.yaml`), policyYaml(m));

    let cli: SizeResult['cli'];
    if (!options.cli) cli = { skipped: 'not requested (--skip-cli)' };
    else if (!existsSync(CLI)) cli = { skipped: `${CLI} not found (run npm run build)` };
    else {
      const common = [
        'run',
        '--once',
        '--policies',
        policiesDir,
        '--prometheus-url',
        prom.url,
        '--kubeconfig',
        kubeconfig,
      ];
      const cliTimeout = 120_000 + size * 50;
      log(`[${size}] CLI run --once --dry-run`);
      const dryRun = await runCli([...common, '--dry-run'], dir, api, prom.url, cliTimeout);
      log(`[${size}] CLI run --once`);
      const run = await runCli(common, dir, api, prom.url, cliTimeout);
      cli = { dryRun, run };
      // The worker starts from the same objects the CLI saw, without the CLI's writes.
      seed();
    }

    log(`[${size}] in-process: decisions, dry-run cycles, ${options.cycles} cycles with writes`);
    const worker = await runWorker(
      {
        promUrl: prom.url,
        promNowMs: prom.now.getTime(),
        kubeconfig,
        policiesDir,
        cycles: options.cycles,
        dryRuns: options.dryRuns,
        decisionRuns: options.decisionRuns,
      },
      api,
      600_000 + options.cycles * size * 20,
    );
    return { size, namespaces, samples: prom.samples, backfillMs, promUrl: prom.url, worker, cli };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------- worker side

function isToWorker(m: unknown): m is ToWorker {
  return isMessage<ToWorker>(m);
}

async function workerMain(): Promise<void> {
  const send = (m: FromWorker): Promise<void> =>
    new Promise((resolve) => {
      if (process.send === undefined) resolve();
      else process.send(m, undefined, {}, () => resolve());
    });
  const pending = new Map<number, (c: ApiCounts) => void>();
  let nextId = 0;
  const apiOp = (op: 'clear' | 'count'): Promise<ApiCounts> =>
    new Promise((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      void send({ type: 'api', id, op });
    });
  const config = await new Promise<WorkerConfig>((resolve) => {
    process.on('message', (m: unknown) => {
      if (!isToWorker(m)) return;
      if (m.type === 'start') resolve(m.config);
      else {
        pending.get(m.id)?.(m.counts);
        pending.delete(m.id);
      }
    });
  });
  try {
    const result = await measure(config, apiOp);
    await send({ type: 'result', result });
  } catch (err) {
    await send({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  }
  // Keep-alive sockets would hold the process open; the result is out, so leave now (this also writes a
  // --cpu-prof profile).
  process.exit(0);
}

function openFds(): number | null {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}

function gc(): boolean {
  const collect = (globalThis as { gc?: () => void }).gc;
  if (collect === undefined) return false;
  // Twice: the first pass can leave objects that only become unreachable once finalisers ran.
  collect();
  collect();
  return true;
}

async function measure(
  config: WorkerConfig,
  apiOp: (op: 'clear' | 'count') => Promise<ApiCounts>,
): Promise<WorkerResult> {
  gc();
  const baseline = process.memoryUsage();
  const t0 = performance.now();
  const loaded = await loadPolicyDir(config.policiesDir);
  const policyLoadMs = performance.now() - t0;
  if (loaded.problems.length > 0) {
    throw new Error(
      `${config.policiesDir}: ${loaded.problems.length} problems, first: ${JSON.stringify(loaded.problems[0])}`,
    );
  }
  const policies: readonly MirrorPolicy[] = loaded.policies;

  // The daemon logs at info to stdout; here the same lines go to /dev/null so their cost is counted, not shown.
  const logger = createLogger({ level: 'info', destination: createWriteStream('/dev/null') });
  const source = new PrometheusSignalSource({
    url: config.promUrl,
    logger: logger.child({ component: 'prometheus' }),
  });
  const kc = new KubeConfig();
  kc.loadFromFile(config.kubeconfig);
  const store = new KubernetesRouteStore(kc);
  // Prometheus is read at the data's instant; only the decision clock moves (see the memory run).
  const at = new Date(config.promNowMs);
  // Thin wrappers that time the I/O of a cycle, so a slow cycle can be told apart into reading and the rest.
  const span = { fetchMs: 0, listFrom: Number.POSITIVE_INFINITY, listTo: 0, patchMs: 0 };
  const signals: SignalSource = {
    fetch: async (requests) => {
      const t = performance.now();
      const out = await source.fetch(requests, at);
      span.fetchMs += performance.now() - t;
      return out;
    },
  };
  const routes: RouteStore = {
    list: async (namespaces, kind) => {
      span.listFrom = Math.min(span.listFrom, performance.now());
      const out = await store.list(namespaces, kind);
      span.listTo = Math.max(span.listTo, performance.now());
      return out;
    },
    get: (namespace, name, kind) => store.get(namespace, name, kind),
    patchPercent: async (vs, locations, percent, annotations) => {
      const t = performance.now();
      const out = await store.patchPercent(vs, locations, percent, annotations);
      span.patchMs += performance.now() - t;
      return out;
    },
  };
  let clock = config.promNowMs;
  const deps: CycleDeps = {
    signals,
    routes,
    now: () => clock,
    logger,
    states: new Map<string, ControllerState>(),
  };

  const cycle = async (dryRun: boolean): Promise<CycleFigures> => {
    await apiOp('clear');
    const q0 = source.queryCount;
    Object.assign(span, { fetchMs: 0, listFrom: Number.POSITIVE_INFINITY, listTo: 0, patchMs: 0 });
    const started = performance.now();
    const outcomes: PolicyOutcome[] = await runCycle(policies, deps, { dryRun });
    const ms = performance.now() - started;
    const listMs = Math.max(0, span.listTo - span.listFrom);
    const queries = source.queryCount - q0;
    const api = await apiOp('count');
    const actions: Record<Action, number> = { increase: 0, decrease: 0, hold: 0 };
    for (const o of outcomes) if (o.action !== null) actions[o.action]++;
    return {
      ms,
      fetchMs: span.fetchMs,
      listMs,
      patchMs: span.patchMs,
      queries,
      api,
      errors: outcomes.filter((o) => o.error !== undefined).length,
      writes: outcomes.filter((o) => o.write === 'written' || o.write === 'recorded').length,
      actions,
    };
  };

  const peakByPhase: Record<string, number> = {};
  const fdsByPhase: Record<string, number | null> = {};
  const mark = (phase: string) => {
    peakByPhase[phase] = process.resourceUsage().maxRSS / 1024;
    fdsByPhase[phase] = openFds();
  };
  mark('loaded');
  const cold = await cycle(true);
  mark('cold');
  if (cold.errors > 0)
    throw new Error(`the first cycle failed for ${cold.errors} of ${policies.length} policies`);
  const dry: CycleFigures[] = [];
  for (let i = 0; i < config.dryRuns; i++) dry.push(await cycle(true));
  mark('dry');

  // decide() alone, over inputs prepared from one real read of signals and VirtualServices.
  const readings = await source.fetch(signalRequests(policies), at);
  const vsMap = await store.list([...new Set(policies.map((p) => p.route.namespace))]);
  const inputs: DecideInput[] = [];
  for (const policy of policies) {
    const vs = vsMap.get(`${policy.route.namespace}/${policy.route.name}`);
    const reading = readings.get(policy.name);
    if (vs === undefined || reading === undefined)
      throw new Error(`no VirtualService or reading for ${policy.name}`);
    const located = locateTarget(vs, policy.route, policy.target);
    if (!Array.isArray(located)) throw located;
    inputs.push({
      now: clock,
      policy,
      currentPercent: currentPercent(located),
      signals: reading.signals,
      requestRate: reading.requestRate,
      state: deps.states.get(policy.name) ?? readState(vs, policy.name),
    });
  }
  const pass = (): [number, number] => {
    const started = performance.now();
    let sink = 0;
    for (const input of inputs) sink += decide(input).percent;
    return [performance.now() - started, sink];
  };
  // Warm-up by calls, not passes: a small fleet needs many passes before the JIT has optimised decide().
  const warmPasses = Math.max(3, Math.ceil(5000 / Math.max(1, inputs.length)));
  for (let i = 0; i < warmPasses; i++) pass();
  const decisionMs: number[] = [];
  let sinks = 0;
  for (let i = 0; i < config.decisionRuns; i++) {
    const [ms, sink] = pass();
    decisionMs.push(ms);
    sinks += sink;
  }
  if (!Number.isFinite(sinks)) throw new Error('decide() returned a non-finite percentage');
  mark('decisions');

  // The memory run: writes on, the decision clock one interval further each cycle, as the daemon would run.
  const loop: CycleFigures[] = [];
  const earlyCycle = config.cycles >= 20 ? 10 : Math.max(1, Math.floor(config.cycles / 2));
  let heapEarly = Number.NaN;
  let rssEarly = Number.NaN;
  let collected = false;
  const memorySeries: { cycle: number; heapMb: number; rssMb: number }[] = [];
  for (let c = 1; c <= config.cycles; c++) {
    clock = config.promNowMs + c * INTERVAL_MS;
    loop.push(await cycle(false));
    if (c === 1) mark('firstWrite');
    if (c === earlyCycle || c % 10 === 0) {
      collected = gc();
      const m = process.memoryUsage();
      memorySeries.push({ cycle: c, heapMb: mb(m.heapUsed), rssMb: mb(m.rss) });
      if (c === earlyCycle) {
        heapEarly = m.heapUsed;
        rssEarly = m.rss;
      }
    }
  }
  mark('end');
  gc();
  const late = process.memoryUsage();
  return {
    pid: process.pid,
    policies: policies.length,
    policyLoadMs,
    cold,
    dry,
    decision: { medianMs: median(decisionMs), minMs: Math.min(...decisionMs), runs: decisionMs.length },
    loop,
    memory: {
      gc: collected,
      rssBaselineMb: mb(baseline.rss),
      heapBaselineMb: mb(baseline.heapUsed),
      earlyCycle,
      lateCycle: config.cycles,
      heapEarlyMb: mb(heapEarly),
      heapLateMb: mb(late.heapUsed),
      rssEarlyMb: mb(rssEarly),
      rssLateMb: mb(late.rss),
    },
    // maxRSS is in kilobytes.
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    peakByPhase,
    fdsByPhase,
    memorySeries,
  };
}

// ---------------------------------------------------------------------------------------------- the table

const n0 = (x: number): string => Math.round(x).toLocaleString('en-US');
const n1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '-');
const ms = (x: number): string => (x < 100 ? x.toFixed(1) : n0(x));
const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
const apiText = (a: ApiCounts): string =>
  `${a.list} / ${a.get} / ${a.patch}${a.other > 0 ? ` (+${a.other} other)` : ''}`;

function maxApi(cycles: readonly CycleFigures[]): ApiCounts {
  const out: ApiCounts = { list: 0, get: 0, patch: 0, other: 0 };
  for (const c of cycles) {
    out.list = Math.max(out.list, c.api.list);
    out.get = Math.max(out.get, c.api.get);
    out.patch = Math.max(out.patch, c.api.patch);
    out.other = Math.max(out.other, c.api.other);
  }
  return out;
}

/** Figures derived from a SizeResult, as the table shows and judges them. */
export function summarise(r: SizeResult) {
  const w = r.worker;
  const steady = w.dry.length > 0 ? w.dry : [w.cold];
  const allCycles = [w.cold, ...w.dry, ...w.loop];
  const first = w.loop[0];
  const heapGrowth = (w.memory.heapLateMb - w.memory.heapEarlyMb) / w.memory.heapEarlyMb;
  const rssGrowth = (w.memory.rssLateMb - w.memory.rssEarlyMb) / w.memory.rssEarlyMb;
  const cli = 'skipped' in r.cli ? undefined : r.cli;
  return {
    decisionMs: w.decision.medianMs,
    dryMedianMs: median(steady.map((c) => c.ms)),
    dryColdMs: w.cold.ms,
    dryFetchMs: median(steady.map((c) => c.fetchMs)),
    dryListMs: median(steady.map((c) => c.listMs)),
    queriesPerCycle: Math.max(...allCycles.map((c) => c.queries)),
    dryApi: maxApi(steady),
    firstWrite: first,
    loopMedianMs: median(w.loop.map((c) => c.ms)),
    loopMaxMs: Math.max(...w.loop.map((c) => c.ms)),
    loopWrites: w.loop.reduce((s, c) => s + c.writes, 0),
    loopApi: maxApi(w.loop),
    heapGrowth,
    rssGrowth,
    cliPeakRssMb:
      cli === undefined || cli.dryRun.peakRssMb === null || cli.run.peakRssMb === null
        ? undefined
        : Math.max(cli.dryRun.peakRssMb, cli.run.peakRssMb),
    cli,
  };
}

/** The markdown table (sizes as columns) with targets judged at TARGETS.size, plus notes on the setup. */
export function formatReport(results: readonly SizeResult[], options: Pick<ScaleOptions, 'cycles'>): string {
  const sums = results.map(summarise);
  const at = results.findIndex((r) => r.size === TARGETS.size);
  const judge = (ok: (s: ReturnType<typeof summarise>) => boolean | undefined): string => {
    const s = sums[at];
    if (s === undefined) return `n/a (${n0(TARGETS.size)} not run)`;
    const v = ok(s);
    return v === undefined ? 'n/a' : v ? 'yes' : '**no**';
  };
  const rows: [string, (s: ReturnType<typeof summarise>, r: SizeResult) => string, string, string][] = [
    [
      'decision time, decide() for all policies: median ms (fastest)',
      (s, r) => `${ms(s.decisionMs)} (${ms(r.worker.decision.minMs)})`,
      `< ${TARGETS.decisionMs} ms`,
      judge((s) => s.decisionMs < TARGETS.decisionMs),
    ],
    [
      'dry-run cycle, in process: median ms (first, cold)',
      (s) => `${ms(s.dryMedianMs)} (${ms(s.dryColdMs)})`,
      `< ${n0(TARGETS.dryRunCycleMs)} ms`,
      judge((s) => Math.max(s.dryMedianMs, s.dryColdMs) < TARGETS.dryRunCycleMs),
    ],
    [
      'dry-run cycle, in process: Prometheus fetch / VS LISTs (concurrent) ms',
      (s) => `${ms(s.dryFetchMs)} / ${ms(s.dryListMs)}`,
      '',
      '',
    ],
    [
      'first cycle with writes: ms (writes; ms inside PATCHes)',
      (s) =>
        s.firstWrite === undefined
          ? '-'
          : `${ms(s.firstWrite.ms)} (${n0(s.firstWrite.writes)}; ${ms(s.firstWrite.patchMs)})`,
      '',
      '',
    ],
    [
      'Prometheus queries per cycle (max over all cycles)',
      (s) => String(s.queriesPerCycle),
      `≤ ${TARGETS.queriesPerCycle}`,
      judge((s) => s.queriesPerCycle <= TARGETS.queriesPerCycle),
    ],
    [
      'API requests per dry-run cycle: LIST / GET / PATCH',
      (s) => apiText(s.dryApi),
      '1 LIST per namespace',
      '',
    ],
    ['API requests per cycle with writes (max): LIST / GET / PATCH', (s) => apiText(s.loopApi), '', ''],
    [
      `memory run, ${options.cycles} cycles: median / max ms; writes in all`,
      (s) => `${ms(s.loopMedianMs)} / ${ms(s.loopMaxMs)}; ${n0(s.loopWrites)}`,
      '',
      '',
    ],
    [
      'heap after early → last cycle (MB, after gc)',
      (s, r) =>
        `${n1(r.worker.memory.heapEarlyMb)} → ${n1(r.worker.memory.heapLateMb)} (${pct(s.heapGrowth)})`,
      `< ${pct(TARGETS.memoryGrowth)}`,
      judge((s) => s.heapGrowth < TARGETS.memoryGrowth),
    ],
    [
      'RSS after early → last cycle (MB)',
      (s, r) => `${n1(r.worker.memory.rssEarlyMb)} → ${n1(r.worker.memory.rssLateMb)} (${pct(s.rssGrowth)})`,
      `< ${pct(TARGETS.memoryGrowth)}`,
      judge((s) => s.rssGrowth < TARGETS.memoryGrowth),
    ],
    [
      'peak RSS of the built CLI: dry run / run (MB)',
      (s) =>
        s.cli === undefined
          ? '-'
          : `${s.cli.dryRun.peakRssMb === null ? '?' : n1(s.cli.dryRun.peakRssMb)} / ${s.cli.run.peakRssMb === null ? '?' : n1(s.cli.run.peakRssMb)}`,
      `< ${TARGETS.peakRssMb} MB`,
      judge((s) => (s.cliPeakRssMb === undefined ? undefined : s.cliPeakRssMb < TARGETS.peakRssMb)),
    ],
    [
      'in-process worker RSS: at start → peak (MB; tsx included)',
      (_s, r) => `${n1(r.worker.memory.rssBaselineMb)} → ${n1(r.worker.peakRssMb)}`,
      '',
      '',
    ],
    [
      'worker peak RSS by end of: load / cold / dry / decide / 1st write / all (MB)',
      (_s, r) =>
        ['loaded', 'cold', 'dry', 'decisions', 'firstWrite']
          .map((k) => n0(r.worker.peakByPhase[k] ?? Number.NaN))
          .concat(n0(r.worker.peakRssMb))
          .join(' / '),
      '',
      '',
    ],
    [
      'worker open fds by end of: cold / dry / 1st write / all',
      (_s, r) => ['cold', 'dry', 'firstWrite', 'end'].map((k) => r.worker.fdsByPhase[k] ?? '?').join(' / '),
      '',
      '',
    ],
    [
      'heap after gc every 10th cycle of the memory run (MB)',
      (_s, r) =>
        r.worker.memorySeries
          .filter((m) => m.cycle % 10 === 0)
          .map((m) => n0(m.heapMb))
          .join(' '),
      '',
      '',
    ],
    [
      'CLI `run --once --dry-run`, whole process: ms (exit code)',
      (s) => (s.cli === undefined ? '-' : `${ms(s.cli.dryRun.wallMs)} (${s.cli.dryRun.exitCode})`),
      `< ${n0(TARGETS.dryRunCycleMs)} ms`,
      judge((s) => (s.cli === undefined ? undefined : s.cli.dryRun.wallMs < TARGETS.dryRunCycleMs)),
    ],
    [
      'CLI `run --once`, whole process: ms (exit code)',
      (s) => (s.cli === undefined ? '-' : `${ms(s.cli.run.wallMs)} (${s.cli.run.exitCode})`),
      '',
      '',
    ],
    [
      'CLI dry run / run: Prometheus queries; API LIST / GET / PATCH',
      (s) =>
        s.cli === undefined
          ? '-'
          : `${s.cli.dryRun.promQueries ?? '?'}; ${apiText(s.cli.dryRun.api)} / ${s.cli.run.promQueries ?? '?'}; ${apiText(s.cli.run.api)}`,
      '',
      '',
    ],
    ['policy files loaded (ms)', (_s, r) => ms(r.worker.policyLoadMs), '', ''],
    [
      'setup: namespaces; samples backfilled; backfill s',
      (_s, r) => `${r.namespaces}; ${n0(r.samples)}; ${(r.backfillMs / 1000).toFixed(1)}`,
      '',
      '',
    ],
  ];
  const head = `| figure | ${results.map((r) => n0(r.size)).join(' | ')} | target | met at ${n0(TARGETS.size)} |`;
  const rule = `|---|${results.map(() => '---:').join('|')}|---|---|`;
  const body = rows.map(
    ([name, cell, target, met]) =>
      `| ${name} | ${results.map((r, i) => cell(sums[i] as ReturnType<typeof summarise>, r)).join(' | ')} | ${target} | ${met} |`,
  );
  const skipped = results.find((r) => 'skipped' in r.cli);
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  return [
    `## Cost at scale (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} × ${cpu})`,
    '',
    head,
    rule,
    ...body,
    '',
    'Notes:',
    '- N policies over up to 10 namespaces, one VirtualService each; 60 % with headroom, 10 % p99 breach, 10 % CPU breach, 10 % in the hold band, 10 % without traffic. All three guardrails, default queries, 2 m window.',
    "- In process: real PrometheusSignalSource, KubernetesRouteStore (client-node against the fake API server) and runCycle in a worker process of its own (forked with --expose-gc). Prometheus is read at the backfilled data's instant; in the memory run the decision clock advances 30 s per cycle. Logs at info go to /dev/null.",
    `- "early" is cycle ${results[0]?.worker.memory.earlyCycle ?? '-'} of the memory run, "last" cycle ${options.cycles}.`,
    "- CLI rows: `node dist/cli/main.js run --once [--dry-run]` against the same Prometheus and API server, timed as a whole process (Node start-up, policy loading, one cycle); stdout (a JSON line per policy) is read and dropped. Prometheus queries counted from Prometheus' own /metrics.",
    `- Prometheus, the fake API server and the controller share the machine's cores, so cycle times include their work (load average at the end: ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}).`,
    ...(skipped !== undefined && 'skipped' in skipped.cli ? [`- CLI not run: ${skipped.cli.skipped}.`] : []),
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------- main

/** Parses the command line; throws on a malformed value, naming the flag. */
export function parseOptions(argv: readonly string[]): ScaleOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      sizes: { type: 'string' },
      cycles: { type: 'string' },
      namespaces: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'skip-cli': { type: 'boolean', default: false },
      worker: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const positiveInt = (flag: string, text: string): number => {
    const v = Number(text);
    if (!Number.isInteger(v) || v <= 0)
      throw new Error(`--${flag}: expected a positive integer (got "${text}")`);
    return v;
  };
  const sizes =
    values.sizes?.split(',').map((s) => positiveInt('sizes', s.trim())) ??
    (values.quick ? [10, 100] : [10, 100, 1000, 5000]);
  return {
    sizes,
    cycles: values.cycles === undefined ? (values.quick ? 10 : 100) : positiveInt('cycles', values.cycles),
    namespaces: values.namespaces === undefined ? 10 : positiveInt('namespaces', values.namespaces),
    dryRuns: values.quick ? 3 : 5,
    decisionRuns: values.quick ? 5 : 15,
    cli: !values['skip-cli'],
  };
}

async function main(): Promise<void> {
  if (process.argv.includes('--worker')) return workerMain();
  const options = parseOptions(process.argv.slice(2));
  // Ctrl-C reaches this process twice (from the terminal and relayed by tsx's wrapper), and tsx exits at
  // once on a signal nobody else listens to: keep listening, clean up once, then exit.
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`bench:scale: ${signal}, stopping everything started\n`);
    void stopAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const results: SizeResult[] = [];
  try {
    for (const size of options.sizes) results.push(await benchSize(size, options));
  } finally {
    await stopAll();
  }
  const report = formatReport(results, options);
  await mkdir(OUT_DIR, { recursive: true });
  await writeFile(join(OUT_DIR, 'scale.md'), report);
  await writeFile(join(OUT_DIR, 'scale.json'), `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(report);
  process.stderr.write(`written to ${join(OUT_DIR, 'scale.md')} and scale.json\n`);
}

if (isEntryPoint(SELF)) {
  main().catch(async (err: unknown) => {
    await stopAll();
    process.stderr.write(`bench:scale: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
