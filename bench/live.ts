/**
 * Live closed loop with real parts: the simulator's plant as its own process serving /metrics, the real
 * Prometheus scraping it, the fake Kubernetes API server holding the VirtualService, and the daemon
 * (`mirror-autoscaler run`, from the sources under tsx) as its own process, all on 127.0.0.1 and the wall clock.
 *
 * Run: `npx tsx bench/live.ts --scrape 1s --interval 5s --window 20s --scenario capacity-drop --minutes 6`
 * (`npm run bench:live -- ...`). Options: `--seed N` (1), `--out FILE` (the trace; default
 * bench/out/live-<scenario>-<scrape>-<interval>-<window>.jsonl), `--propagation 2s`, `--tick 250ms`,
 * `--noise 0.05` (± share of production), `--rev REV` (run the daemon from a git revision instead of the
 * working tree).
 *
 * Prints the figures (yield against the oracle, overall and by phase; time in breach; recovery after the
 * change; time to 85 % of the safe level from the start and after the change; writes) and writes the trace,
 * one JSON line per ground-truth sample (every tick) and one per daemon decision.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { Guardrails } from '../src/core/types.js';
import { formatDuration, parseDuration } from '../src/policy/duration.js';
import type { ExpositionNames } from '../src/sim/exposition.js';
import { buildScenario, isScenarioName, type ScenarioName } from '../src/sim/scenarios.js';
import { FakeApiServer, type JsonObject } from '../test/support/fake-apiserver.js';
import { PRIMARY_ROUTE, virtualService } from '../test/support/kube-fixtures.js';
import { freePort } from '../test/support/prometheus.js';
import { isEntryPoint } from './entry.js';
import { type LiveFigures, liveFigures } from './live/figures.js';
import type { TruthRow } from './live/plant.js';
import type { PlantProcessConfig } from './live/plant-process.js';
import { sleep, startScrapingPrometheus, stopChild, waitFor } from './live/processes.js';
import { adaptScenario, type ChangeSpan, changeOf } from './live/scenario.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const PLANT_SOURCE = join(ROOT, 'bench', 'live', 'plant-process.ts');

/** The scenarios a live run knows: the two with a change to answer. */
export const LIVE_SCENARIOS = ['capacity-drop', 'surge'] as const satisfies readonly ScenarioName[];

/** Options of one live run. */
export interface LiveOptions {
  readonly scrapeSeconds: number;
  readonly intervalSeconds: number;
  readonly windowSeconds: number;
  readonly scenario: ScenarioName;
  readonly minutes: number;
  readonly seed: number;
  /** Trace file; default under bench/out/. */
  readonly out?: string;
  readonly propagationSeconds: number;
  readonly tickMs: number;
  /** ± share of production noise. */
  readonly productionNoise: number;
  /** Run the daemon from this git revision (default: the working tree). */
  readonly rev?: string;
  /** Progress lines; default stderr. */
  readonly log?: (line: string) => void;
}

/** The policy the daemon runs. */
export const LIVE_BOUNDS = { minPercent: 0, maxPercent: 40 } as const;
export const LIVE_GUARDRAILS: Guardrails = { cpuUtilization: 0.75, errorRate: 0.02, latencyP99Ms: 250 };

const NAMESPACE = 'shop';
const VS_NAME = 'checkout';
const ROUTE = 'primary';
const TARGET = 'checkout-shadow';
export const LIVE_NAMES: ExpositionNames = {
  namespace: NAMESPACE,
  targetWorkload: TARGET,
  targetService: TARGET,
  primaryService: 'checkout',
  primaryWorkload: 'checkout',
  sourceWorkload: 'frontend',
  pods: [`${TARGET}-7d9fcb6b4-x2k4q`, `${TARGET}-7d9fcb6b4-m8zpt`],
};

/** One daemon decision, from its log. */
export interface DecisionRecord {
  readonly t: number;
  readonly currentPercent: number | null;
  readonly proposedPercent: number | null;
  readonly action: string;
  readonly reason: string;
  readonly signals?: unknown;
  /** The decision's sentence, as the daemon logged it. */
  readonly message?: string;
  /** The production rate the daemon read (req/s), null without one. */
  readonly productionRps?: number | null;
}

/** A process the run started, and whether it is gone at the end. */
export interface StoppedProcess {
  readonly name: string;
  readonly pid: number;
  readonly gone: boolean;
}

/** What a live run measured. */
export interface LiveResult {
  readonly options: LiveOptions;
  readonly change: ChangeSpan | undefined;
  readonly durationSeconds: number;
  readonly warmupSeconds: number;
  /** `git log -1 --format=%h -- src/core` of what the daemon ran, and whether the tree differed from it. */
  readonly core: { readonly commit: string; readonly dirty: boolean };
  readonly figures: LiveFigures;
  /** Successful PATCHes of the VirtualService. */
  readonly writes: number;
  readonly decisions: readonly DecisionRecord[];
  readonly reasons: Readonly<Record<string, number>>;
  /** Percentage reads the plant could not make. */
  readonly readErrors: number;
  readonly rows: number;
  readonly traceFile: string;
  readonly processes: readonly StoppedProcess[];
  readonly daemonExit: number | null;
  readonly stderrTail: string;
}

// ---------------------------------------------------------------------------------------------- options

function seconds(flag: string, text: string | undefined, fallback?: number): number {
  if (text === undefined) {
    if (fallback === undefined) throw new Error(`${flag}: required (a duration such as 5s or 1m)`);
    return fallback;
  }
  const s = parseDuration(text);
  if (s === undefined || s <= 0)
    throw new Error(`${flag}: expected a duration such as 5s or 1m (got "${text}")`);
  return s;
}

function number(flag: string, text: string | undefined, fallback: number, min = 0): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) throw new Error(`${flag}: expected a number >= ${min} (got "${text}")`);
  return n;
}

/** Parses the command line of bench/live.ts. */
export function parseLiveOptions(argv: readonly string[]): LiveOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      scrape: { type: 'string' },
      interval: { type: 'string' },
      window: { type: 'string' },
      scenario: { type: 'string' },
      minutes: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      propagation: { type: 'string' },
      tick: { type: 'string' },
      noise: { type: 'string' },
      rev: { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const scenario = values.scenario ?? 'capacity-drop';
  if (!isScenarioName(scenario) || !(LIVE_SCENARIOS as readonly string[]).includes(scenario)) {
    throw new Error(`--scenario: one of ${LIVE_SCENARIOS.join(', ')} (got "${scenario}")`);
  }
  const intervalSeconds = seconds('--interval', values.interval, 5);
  const windowSeconds = seconds('--window', values.window, 20);
  if (windowSeconds < intervalSeconds) throw new Error('--window: must be at least --interval');
  const tickMs = seconds('--tick', values.tick, 0.25) * 1000;
  if (tickMs > 250) throw new Error('--tick: at most 250ms');
  return {
    scrapeSeconds: seconds('--scrape', values.scrape, 1),
    intervalSeconds,
    windowSeconds,
    scenario,
    minutes: number('--minutes', values.minutes, 6, 0.5),
    seed: number('--seed', values.seed, 1),
    ...(values.out === undefined ? {} : { out: resolve(values.out) }),
    propagationSeconds: seconds('--propagation', values.propagation, 2),
    tickMs,
    productionNoise: number('--noise', values.noise, 0.05),
    ...(values.rev === undefined ? {} : { rev: values.rev }),
  };
}

const fmtDuration = formatDuration;

/** The trace file a run writes when --out is not given. */
export function defaultTraceFile(
  o: Pick<LiveOptions, 'scenario' | 'scrapeSeconds' | 'intervalSeconds' | 'windowSeconds'>,
): string {
  return join(
    ROOT,
    'bench',
    'out',
    `live-${o.scenario}-${fmtDuration(o.scrapeSeconds)}-${fmtDuration(o.intervalSeconds)}-${fmtDuration(o.windowSeconds)}.jsonl`,
  );
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

/** Stops everything still running (for SIGINT and failures). */
export async function stopAll(): Promise<void> {
  for (let round = 0; running.size > 0 && round < 10; round++) {
    for (const stop of [...running].reverse()) await stop().catch(() => undefined);
  }
}

function pidGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function git(args: readonly string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8', timeout: 10_000 }).trim();
}

/** The src/core commit the daemon runs, and whether the working tree differs from it. */
function coreCommit(rev: string | undefined): { commit: string; dirty: boolean } {
  try {
    const commit = git(['log', '-1', '--format=%h', ...(rev === undefined ? [] : [rev]), '--', 'src/core']);
    const dirty = rev === undefined && git(['status', '--porcelain', '--', 'src/core']) !== '';
    return { commit, dirty };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
}

/** A copy of `rev`'s sources to run the daemon from, sharing this checkout's node_modules. */
async function checkoutRev(rev: string, dir: string): Promise<string> {
  const tree = join(dir, 'rev');
  await mkdir(tree);
  const archive = execFileSync(
    'git',
    ['archive', '--format=tar', rev, 'src', 'package.json', 'tsconfig.json'],
    {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 30_000,
    },
  );
  execFileSync('tar', ['-x', '-C', tree], { input: archive, timeout: 30_000 });
  await symlink(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
  return tree;
}

function policyYaml(o: LiveOptions): string {
  const g = LIVE_GUARDRAILS;
  return `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: ${VS_NAME}
spec:
  virtualService:
    name: ${VS_NAME}
    namespace: ${NAMESPACE}
    route: ${ROUTE}
  target:
    host: ${TARGET}
    workload: ${TARGET}
  bounds:
    minPercent: ${LIVE_BOUNDS.minPercent}
    maxPercent: ${LIVE_BOUNDS.maxPercent}
  guardrails:
    cpuUtilization: ${g.cpuUtilization}
    errorRate: ${g.errorRate}
    latencyP99Ms: ${g.latencyP99Ms}
  interval: ${fmtDuration(o.intervalSeconds)}
  window: ${fmtDuration(o.windowSeconds)}
`;
}

function liveVirtualService(percent: number): JsonObject {
  return virtualService({
    namespace: NAMESPACE,
    name: VS_NAME,
    hosts: ['checkout'],
    http: [{ name: ROUTE, ...PRIMARY_ROUTE, mirror: { host: TARGET }, mirrorPercentage: { value: percent } }],
  });
}

// ---------------------------------------------------------------------------------------------- the run

/** Runs one live closed loop; everything it starts is stopped before it returns or throws. */
export async function runLive(options: LiveOptions): Promise<LiveResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const durationSeconds = Math.round(options.minutes * 60);
  const scenario = adaptScenario(
    buildScenario(options.scenario, options.seed, durationSeconds),
    durationSeconds,
  );
  const change = changeOf(scenario);
  const initialPercent = scenario.initialPercent ?? 100;
  // Full rate windows at the daemon's first cycle: a window, three scrapes and Prometheus' start.
  const warmupSeconds = Math.ceil(options.windowSeconds + 3 * options.scrapeSeconds + 3);
  const traceFile = options.out ?? defaultTraceFile(options);
  const stops: (() => Promise<void>)[] = [];
  const processes: { name: string; pid: number }[] = [];
  try {
    const dir = await mkdtemp(join(tmpdir(), 'mirror-autoscaler-live-'));
    stops.push(track(() => rm(dir, { recursive: true, force: true })));
    const source = options.rev === undefined ? ROOT : await checkoutRev(options.rev, dir);
    const core = coreCommit(options.rev);

    const api = await FakeApiServer.start({ token: 'live-token' });
    stops.push(track(() => api.close()));
    api.setVirtualService(liveVirtualService(initialPercent));
    const kubeconfig = await api.writeKubeconfig();

    // ------------------------------------------------------------------ the plant
    const t0Ms = Date.now() + warmupSeconds * 1000;
    const plantConfig: PlantProcessConfig = {
      scenario: options.scenario,
      seed: options.seed,
      durationSeconds,
      t0Ms,
      warmupSeconds,
      propagationSeconds: options.propagationSeconds,
      tickMs: options.tickMs,
      pollMs: Math.min(250, options.tickMs),
      productionNoise: options.productionNoise,
      bounds: LIVE_BOUNDS,
      guardrails: LIVE_GUARDRAILS,
      initialPercent,
      names: LIVE_NAMES,
      api: {
        url: api.url,
        token: 'live-token',
        namespace: NAMESPACE,
        name: VS_NAME,
        route: ROUTE,
        mirrorHost: TARGET,
      },
      deadlineMs: t0Ms + (durationSeconds + 300) * 1000,
    };
    const plant = spawn(process.execPath, ['--import', 'tsx', PLANT_SOURCE], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? tmpdir(),
        LIVE_PLANT: JSON.stringify(plantConfig),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    if (plant.pid !== undefined) processes.push({ name: 'plant', pid: plant.pid });
    const stopPlant = track(async () => {
      await stopChild(plant, 5000);
    });
    stops.push(stopPlant);
    const rows: TruthRow[] = [];
    let plantPort: number | undefined;
    let readErrors = 0;
    let plantStderr = '';
    plant.stderr.on('data', (d: Buffer) => {
      plantStderr = (plantStderr + d.toString()).slice(-4000);
    });
    const plantLines = createInterface({ input: plant.stdout });
    const plantClosed = new Promise<void>((done) => plantLines.once('close', () => done()));
    plantLines.on('line', (line) => {
      let rec: { event?: string; port?: number; count?: number } & Partial<TruthRow>;
      try {
        rec = JSON.parse(line);
      } catch {
        return;
      }
      if (rec.event === 'listening') plantPort = rec.port;
      else if (rec.event === 'read-error') readErrors = Math.max(readErrors, rec.count ?? 0);
      else if (rec.event === 'tick') {
        const { event: _event, ...row } = rec;
        rows.push(row as TruthRow);
      }
    });
    const port = await waitFor(
      'the plant to listen',
      () => {
        if (plant.exitCode !== null) throw new Error(`plant exited (${plant.exitCode}):\n${plantStderr}`);
        return plantPort;
      },
      30_000,
    );

    // ------------------------------------------------------------------ Prometheus
    const prom = await startScrapingPrometheus(dir, options.scrapeSeconds, port);
    if (prom.child.pid !== undefined) processes.push({ name: 'prometheus', pid: prom.child.pid });
    stops.push(track(async () => void (await stopChild(prom.child, 10_000))));
    log(`live: plant on :${port}, Prometheus ${prom.url}; warming up ${warmupSeconds} s`);

    // ------------------------------------------------------------------ the daemon, at t = 0
    const policiesDir = join(dir, 'policies');
    await mkdir(policiesDir);
    await writeFile(join(policiesDir, `${VS_NAME}.yaml`), policyYaml(options));
    await sleep(Math.max(0, t0Ms - Date.now()));
    const metricsPort = await freePort();
    const daemon = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(source, 'src', 'cli', 'main.ts'),
        'run',
        '--policies',
        policiesDir,
        '--prometheus-url',
        prom.url,
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
        cwd: source,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmpdir(), PROMETHEUS_TIMEOUT: '5s' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    if (daemon.pid !== undefined) processes.push({ name: 'daemon', pid: daemon.pid });
    let daemonExit: number | null = null;
    stops.push(
      track(async () => {
        daemonExit = await stopChild(daemon, 15_000);
      }),
    );
    let stderrTail = '';
    daemon.stderr.on('data', (d: Buffer) => {
      stderrTail = (stderrTail + d.toString()).slice(-4000);
    });
    const decisions: DecisionRecord[] = [];
    const reasons: Record<string, number> = {};
    const daemonLines = createInterface({ input: daemon.stdout });
    daemonLines.on('line', (line) => {
      let rec: Record<string, unknown>;
      try {
        rec = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (rec.policy !== VS_NAME || !('proposedPercent' in rec) || rec.audit === true) return;
      const time = typeof rec.time === 'number' ? rec.time : Date.now();
      const reason = typeof rec.reason === 'string' ? rec.reason : '';
      reasons[reason] = (reasons[reason] ?? 0) + 1;
      decisions.push({
        t: (time - t0Ms) / 1000,
        currentPercent: (rec.currentPercent as number | null) ?? null,
        proposedPercent: (rec.proposedPercent as number | null) ?? null,
        action: String(rec.action ?? ''),
        reason,
        signals: rec.signals,
        ...(typeof rec.msg === 'string' && { message: rec.msg.replace(/^[^:]*: /, '') }),
        ...(typeof rec.productionRps === 'number' && { productionRps: rec.productionRps }),
      });
    });
    log(
      `live: daemon started (src/core ${core.commit}${core.dirty ? ', working tree differs' : ''}); ${options.scenario} for ${durationSeconds} s`,
    );

    // ------------------------------------------------------------------ the run
    const endMs = t0Ms + durationSeconds * 1000;
    let nextProgress = Date.now() + 60_000;
    while (Date.now() < endMs) {
      if (daemon.exitCode !== null || daemon.signalCode !== null) {
        throw new Error(`the daemon exited early (${daemon.exitCode ?? daemon.signalCode}):\n${stderrTail}`);
      }
      if (plant.exitCode !== null)
        throw new Error(`the plant exited early (${plant.exitCode}):\n${plantStderr}`);
      if (Date.now() >= nextProgress) {
        const r = rows[rows.length - 1];
        if (r !== undefined) {
          log(
            `live: t=${Math.round(r.t)} s written ${r.written.toFixed(2)} % effective ${r.effective.toFixed(2)} % safe ${r.safe.toFixed(2)} %${r.breach ? ' BREACH' : ''}`,
          );
        }
        nextProgress += 60_000;
      }
      await sleep(Math.min(1000, Math.max(10, endMs - Date.now())));
    }

    // ------------------------------------------------------------------ stop, in order
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
    await Promise.race([plantClosed, sleep(2000)]);
    const writes = api.requests.filter(
      (r) =>
        r.verb === 'patch' && r.resource === 'virtualservices' && r.status !== undefined && r.status < 300,
    ).length;
    const figures = liveFigures(rows, durationSeconds, change);

    await mkdir(dirname(traceFile), { recursive: true });
    const trace = [
      JSON.stringify({
        kind: 'run',
        options: { ...options, log: undefined },
        durationSeconds,
        warmupSeconds,
        change,
        core,
        bounds: LIVE_BOUNDS,
        guardrails: LIVE_GUARDRAILS,
      }),
      ...rows.map((r) => JSON.stringify({ kind: 'truth', ...r })),
      ...decisions.map((d) => JSON.stringify({ kind: 'decision', ...d })),
      JSON.stringify({ kind: 'figures', ...figures, writes }),
    ];
    await writeFile(traceFile, `${trace.join('\n')}\n`);
    return {
      options,
      change,
      durationSeconds,
      warmupSeconds,
      core,
      figures,
      writes,
      decisions,
      reasons,
      readErrors,
      rows: rows.length,
      traceFile,
      processes: processes.map((p) => ({ ...p, gone: pidGone(p.pid) })),
      daemonExit,
      stderrTail,
    };
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------- report

const pct = (x: number | null): string => (x === null ? '–' : `${(x * 100).toFixed(1)} %`);
const secs = (x: number | null): string => (x === null ? 'never' : `${Math.round(x)} s`);

/** The figures as a small text report. */
export function formatLiveReport(r: LiveResult): string {
  const o = r.options;
  const f = r.figures;
  const c = r.change;
  const reasons = Object.entries(r.reasons)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ×${v}`)
    .join(', ');
  return [
    `Live ${o.scenario}: scrape ${fmtDuration(o.scrapeSeconds)}, interval ${fmtDuration(o.intervalSeconds)}, window ${fmtDuration(o.windowSeconds)}, ${r.durationSeconds} s, seed ${o.seed}; src/core ${r.core.commit}${r.core.dirty ? ' (working tree differs)' : ''}`,
    c === undefined
      ? ''
      : `change: ${c.label}, ${Math.round(c.startSeconds)} s → ${Math.round(c.endSeconds)} s`,
    '',
    '| figure | value |',
    '|---|---|',
    `| yield (mirrored / oracle's) | ${pct(f.yield.share)} |`,
    `| yield before / during / after the change | ${pct(f.phases.before.share)} / ${pct(f.phases.during.share)} / ${pct(f.phases.after.share)} |`,
    `| time in breach | ${f.breachSeconds.toFixed(1)} s (${pct(f.breachShare)}) |`,
    `| recovery after the change | ${secs(f.recoverySeconds)} |`,
    `| to 85 % of safe, from the start | ${secs(f.reach85FromStartSeconds)} |`,
    `| to 85 % of safe, after the change ends | ${secs(f.reach85AfterChangeSeconds)} |`,
    `| writes | ${r.writes} (${f.cutsAfterChange} cuts after the change) |`,
    `| mean % received / safe | ${f.meanEffective.toFixed(2)} / ${f.meanSafe.toFixed(2)} |`,
    `| largest true severity | ${f.maxSeverity.toFixed(2)} |`,
    '',
    `decisions ${r.decisions.length}: ${reasons || 'none'}`,
    `trace: ${r.traceFile} (${r.rows} truth samples)${r.readErrors > 0 ? `; ${r.readErrors} failed percentage reads` : ''}`,
    `processes stopped: ${r.processes.map((p) => `${p.name} ${p.gone ? 'yes' : 'NO'}`).join(', ')}; daemon exit ${r.daemonExit}`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const options = parseLiveOptions(process.argv.slice(2));
  let stopping = false;
  const interrupt = () => {
    if (stopping) return;
    stopping = true;
    void stopAll().finally(() => process.exit(130));
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);
  const result = await runLive(options);
  process.stdout.write(formatLiveReport(result));
  if (result.processes.some((p) => !p.gone)) process.exitCode = 1;
}

if (isEntryPoint(SELF)) {
  main().catch(async (err: unknown) => {
    await stopAll();
    process.stderr.write(`bench:live: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  });
}
