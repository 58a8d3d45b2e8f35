/**
 * Backtests against a real Prometheus backfilled with a day of history from a known plant
 * (test/support/history.ts): capacity recovered, verdicts that match the plant, messy history, missing data,
 * and the CLI's table, JSON and errors.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runBacktest } from '../../src/backtest/backtest.js';
import { BacktestError, PrometheusRangeReader } from '../../src/backtest/prometheus.js';
import { REPORT_COLORS, renderHtmlReport } from '../../src/backtest/report.js';
import type { BacktestResult } from '../../src/backtest/types.js';
import { type BacktestFlags, type BacktestIo, runBacktestCommand } from '../../src/cli/backtest.js';
import { parsePolicy } from '../../src/policy/index.js';
import type { MirrorPolicy } from '../../src/policy/types.js';
import { chromiumLaunchOptions, chromiumMissing, countColor, decodePng, hexRgb } from '../support/browser.js';
import {
  CLEAN,
  CPU_LIMIT,
  ERROR_LIMIT,
  type HistoryPrometheus,
  LATENCY_LIMIT_MS,
  MESSY,
  PLANT,
  type Scenario,
  startHistoryPrometheus,
} from '../support/history.js';
import { makeTestCertificates, startReverseProxy } from '../support/tls.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CAPACITY = PLANT.capacityRps;

function policyText(name: string, namespace: string, vs: string, workload: string): string {
  return `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata: { name: ${name} }
spec:
  virtualService: { name: ${vs}, namespace: ${namespace} }
  target: { host: ${workload}.${namespace}.svc.cluster.local, workload: ${workload} }
  bounds: { minPercent: 0.5, maxPercent: 100 }
  guardrails: { cpuUtilization: ${CPU_LIMIT}, errorRate: ${ERROR_LIMIT}, latencyP99Ms: ${LATENCY_LIMIT_MS} }
  interval: 30s
  window: 2m
`;
}

function scenarioPolicy(sc: Scenario): string {
  return policyText(sc.policy, sc.namespace, sc.primary, sc.target);
}

function load(text: string, file: string): MirrorPolicy {
  const { policy, problems } = parsePolicy(text, file);
  if (policy === undefined) throw new Error(problems.map((p) => p.message).join('; '));
  return policy;
}

let prom: HistoryPrometheus;
let dir: string;
let clean: BacktestResult;

beforeAll(async () => {
  prom = await startHistoryPrometheus([CLEAN, MESSY]);
  dir = mkdtempSync(join(tmpdir(), 'mirror-autoscaler-backtest-'));
  writeFileSync(join(dir, 'checkout.yaml'), scenarioPolicy(CLEAN));
  writeFileSync(join(dir, 'recs.yaml'), scenarioPolicy(MESSY));
  writeFileSync(join(dir, 'ghost.yaml'), policyText('ghost', 'shop', 'checkout', 'ghost'));
  clean = await runBacktest(new PrometheusRangeReader({ url: prom.url, timeoutMs: 10_000 }), {
    policy: load(scenarioPolicy(CLEAN), 'checkout.yaml'),
    grid: { from: prom.start, to: prom.end, stepSeconds: 30 },
  });
});

afterAll(async () => {
  await prom?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('backtest of a known plant', () => {
  it('recovers the capacity within 15 %, from a trusted CPU fit', () => {
    const cpu = clean.fits.find((f) => f.signal === 'cpuUtilization');
    expect(cpu?.trusted).toBe(true);
    expect(cpu?.points).toBeGreaterThan(2500);
    expect(cpu?.r2).toBeGreaterThan(0.9);
    expect(clean.capacityRps).not.toBeNull();
    const error = Math.abs((clean.capacityRps ?? 0) - CAPACITY) / CAPACITY;
    expect(error, `capacity ${clean.capacityRps} req/s vs ${CAPACITY}`).toBeLessThan(0.15);
    expect(clean.percentSource).toBe('metric');
    // Clean history: nothing to warn about (the production query matches what the target received).
    expect(clean.warnings).toEqual([]);
    expect(clean.points).toHaveLength(2881);
  });

  it('would have been lower where the actual percentage exceeded capacity, higher where it was far below', () => {
    // After the first hour, once the controller has found its level.
    const settled = clean.points.filter((p) => p.t >= prom.start + 3600 && p.actualPercent !== null);
    const over = settled.filter((p) => (p.actualMirroredRps ?? 0) > 1.15 * CAPACITY);
    const under = settled.filter((p) => (p.actualMirroredRps ?? Number.POSITIVE_INFINITY) < 0.5 * CAPACITY);
    expect(over.length).toBeGreaterThan(500);
    expect(under.length).toBeGreaterThan(500);
    const lower = over.filter((p) => p.wouldBePercent < (p.actualPercent ?? 0)).length / over.length;
    const higher = under.filter((p) => p.wouldBePercent > (p.actualPercent ?? 0)).length / under.length;
    expect(lower).toBeGreaterThan(0.95);
    expect(higher).toBeGreaterThan(0.95);
    // It cut when it got there, and the model keeps the would-be load near capacity, not over it.
    expect(clean.summary.decreases).toBeGreaterThan(0);
    expect(clean.summary.increases).toBeGreaterThan(0);
    const overloaded = settled.filter((p) => (p.wouldBeMirroredRps ?? 0) > 1.1 * CAPACITY).length;
    expect(overloaded / settled.length).toBeLessThan(0.02);
    expect(clean.summary.estimatedBreachSeconds).toBeLessThan(clean.summary.actualBreachSeconds / 10);
    expect(clean.summary.actualBreachSeconds).toBeGreaterThan(6 * 3600);
  });

  it('reads in chunks: small chunks give the same result, with progress for every request', async () => {
    const progress: Array<[number, number]> = [];
    const reader = new PrometheusRangeReader({
      url: prom.url,
      timeoutMs: 10_000,
      maxPointsPerRequest: 700,
      onProgress: (done, total) => progress.push([done, total]),
    });
    const again = await runBacktest(reader, {
      policy: load(scenarioPolicy(CLEAN), 'checkout.yaml'),
      grid: { from: prom.start, to: prom.end, stepSeconds: 30 },
    });
    expect(again.points).toEqual(clean.points);
    // 5 queries (traffic, CPU, p99, production, percentage) x ceil(2881 / 700) = 5 chunks.
    expect(progress.at(-1)).toEqual([25, 25]);
  });
});

// The README's screenshot is this report: UPDATE_SCREENSHOT=1 rewrites docs/backtest-report.png.
describe.skipIf(chromiumMissing() !== undefined && !process.env.CI)('the report of the known plant', () => {
  it('opens in headless Chromium with the would-be and the actual percentage drawn, fetching nothing', async () => {
    const file = join(dir, 'clean.html');
    writeFileSync(file, renderHtmlReport(clean));
    const browser = await chromium.launch(chromiumLaunchOptions());
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
      const requests: string[] = [];
      const errors: string[] = [];
      page.on('request', (r) => requests.push(r.url()));
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(file).href, { waitUntil: 'load', timeout: 10_000 });
      await page.waitForFunction(
        () => (globalThis as unknown as { backtestCharts?: unknown[] }).backtestCharts?.length === 2,
        undefined,
        { timeout: 5_000 },
      );
      expect(errors).toEqual([]);
      expect(requests.filter((u) => !u.startsWith('file://'))).toEqual([]);
      const img = decodePng(await page.locator('#chart-percent canvas').screenshot());
      expect(countColor(img, hexRgb(REPORT_COLORS.actualPercent))).toBeGreaterThan(200);
      expect(countColor(img, hexRgb(REPORT_COLORS.wouldBePercent))).toBeGreaterThan(200);
      const shot =
        process.env.UPDATE_SCREENSHOT === '1'
          ? join(ROOT, 'docs', 'backtest-report.png')
          : join(dir, 'clean.png');
      await page.screenshot({ path: shot, fullPage: true });
    } finally {
      await browser.close();
    }
  });
});

describe('messy history', () => {
  const messy = () => load(scenarioPolicy(MESSY), 'recs.yaml');
  const grid = () => ({ from: prom.start, to: prom.end, stepSeconds: 30 });
  const reader = () => new PrometheusRangeReader({ url: prom.url, timeoutMs: 10_000 });

  it('gaps, counter resets and an hour without traffic: warnings, a fit that still holds', async () => {
    const result = await runBacktest(reader(), { policy: messy(), grid: grid(), assumePercent: 10 });
    const warnings = result.warnings.join('\n');
    expect(result.percentSource).toBe('assumed');
    expect(warnings).toMatch(/assumed to be 10 % throughout \(--assume-percent\)/);
    expect(warnings).toMatch(
      /request rate, errorRate, latencyP99Ms of recs\/recs-shadow have no value at \d+ of 2881 steps \(first: NoSeries: istio_requests_total/,
    );
    expect(warnings).toMatch(/cpuUtilization of recs\/recs-shadow has no value at \d+ of 2881 steps/);
    expect(warnings).toMatch(/Production traffic has no data for \d+ of 2881 steps/);
    // Resets leave no negative rates and no spikes that would bend the fit.
    const received = result.points.map((p) => p.actualMirroredRps ?? 0);
    expect(Math.min(...received)).toBeGreaterThanOrEqual(0);
    // 10 % of at most 1,000 req/s: a reset misread as a huge increase would show far above.
    expect(Math.max(...received)).toBeLessThan(105);
    const error = Math.abs((result.capacityRps ?? 0) - CAPACITY) / CAPACITY;
    expect(error, `capacity ${result.capacityRps}`).toBeLessThan(0.15);
    // In the scrape gap the controller saw nothing and never raised.
    const gap = result.points.filter(
      (p) => p.t > prom.start + 5 * 3600 + 300 && p.t < prom.start + 5 * 3600 + 2400,
    );
    expect(gap.length).toBeGreaterThan(50);
    expect(gap.every((p) => p.productionRps === null && p.action !== 'increase')).toBe(true);
    // Without traffic there is nothing to mirror, and no decision is blind.
    const idle = result.points.filter(
      (p) => p.t > prom.start + 2 * 3600 + 300 && p.t < prom.start + 3 * 3600,
    );
    expect(idle.every((p) => p.productionRps === 0 && p.wouldBeMirroredRps === 0)).toBe(true);
    // No traffic is not blindness: the controller holds (nothing to judge a raise by) and never decays.
    expect(idle.every((p) => p.reason !== 'BlindDecay' && p.action !== 'decrease')).toBe(true);
  });

  it('without the exported percentage and without --assume-percent: an error that says what to do', async () => {
    await expect(runBacktest(reader(), { policy: messy(), grid: grid() })).rejects.toThrow(
      /^mirror percentage: no max\(mirror_autoscaler_mirror_percent\{policy="recs"\}\) samples .* pass --assume-percent N/,
    );
  });

  it('a target with no data at all: an error naming the workload', async () => {
    const policy = load(policyText('ghost', 'shop', 'checkout', 'ghost'), 'ghost.yaml');
    const err = await runBacktest(reader(), { policy, grid: grid() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BacktestError);
    expect((err as Error).message).toMatch(
      /^mirror target shop\/ghost: no request history between .* \(NoSeries: no istio_requests_total series with reporter="destination" for shop\/ghost\); nothing to fit/,
    );
  });

  it('a primary service with no traffic: an error naming it and the flags', async () => {
    const err = await runBacktest(reader(), {
      policy: messy(),
      grid: grid(),
      assumePercent: 10,
      primaryService: { name: 'nobody', namespace: 'recs' },
    }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /^production traffic: no data for service nobody in recs .* set --primary-service NAME\.NAMESPACE or --production-query/,
    );
  });

  it('spec.production and spec.queries.productionRate are read when no flag says otherwise', async () => {
    const named = { ...messy(), production: { service: 'nobody', namespace: 'recs' } };
    const err = await runBacktest(reader(), { policy: named, grid: grid(), assumePercent: 10 }).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/^production traffic: no data for service nobody in recs /);
    const query =
      'sum(rate(istio_requests_total{reporter="destination",destination_service_name="{{service}}",destination_service_namespace="{{serviceNamespace}}"}[{{window}}]))';
    const overridden = { ...named, queries: { ...named.queries, productionRate: query } };
    const err2 = await runBacktest(reader(), { policy: overridden, grid: grid(), assumePercent: 10 }).catch(
      (e: unknown) => e,
    );
    expect((err2 as Error).message).toMatch(
      /^production traffic: no data for spec\.queries\.productionRate of \S+ between /,
    );
  });
});

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Newest modification time (ms) of the files under `path`. */
function newest(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(path).map((f) => newest(join(path, f))));
}

/**
 * How to start the CLI: the built one when `npm run build` ran after the last source change (as in
 * `npm test`), else the sources through tsx, which is slower to start but needs no build.
 */
function cliCommand(): string[] {
  const built = join(ROOT, 'dist', 'cli', 'backtest.js');
  if (existsSync(built) && statSync(built).mtimeMs >= newest(join(ROOT, 'src'))) {
    return [join(ROOT, 'dist', 'cli', 'main.js')];
  }
  return ['--import', 'tsx', join(ROOT, 'src', 'cli', 'main.ts')];
}

function cli(args: readonly string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...cliCommand(), 'backtest', ...args],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
        timeout: 30_000,
      },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function collector(): { io: BacktestIo; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (t: string) => (out += t) }, stderr: { write: (t: string) => (err += t) } },
    out: () => out,
    err: () => err,
  };
}

describe.concurrent('mirror-autoscaler backtest (a process)', () => {
  const range = () => ['--from', String(prom.start), '--to', String(prom.end), '--prometheus-url', prom.url];

  it('prints the table', async () => {
    const r = await cli(['--policy', join(dir, 'checkout.yaml'), ...range()]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Backtest of policy checkout \(VirtualService shop\/checkout\)/);
    expect(r.stdout).toMatch(
      /Capacity of the mirror target: \d+(\.\d+)? req\/s mirrored \(cpuUtilization reaches 0\.8\)/,
    );
    expect(r.stdout).toMatch(/\ncpuUtilization\s+0\.8\s/);
    expect(r.stdout).toMatch(/\n {2}\S+Z .* cut /);
  });

  it('prints the result as one JSON document', async () => {
    const r = await cli([
      '--policy',
      join(dir, 'recs.yaml'),
      '--assume-percent',
      '10',
      '-o',
      'json',
      ...range(),
    ]);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as BacktestResult;
    expect(result).toMatchObject({
      policy: 'recs',
      route: 'VirtualService recs/recs',
      percentSource: 'assumed',
      stepSeconds: 30,
    });
    expect(result.points).toHaveLength(2881);
    expect(result.summary.writes).toBe(result.points.filter((p) => p.action !== 'hold').length);
  });

  it('exits 2 on a flag value commander refuses', async () => {
    const r = await cli(['--policy', join(dir, 'checkout.yaml'), '--output', 'xml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("option '-o, --output <format>' argument 'xml' is invalid");
  });
});

describe('runBacktestCommand', () => {
  const flags = (o: Partial<BacktestFlags>): BacktestFlags => ({
    policy: join(dir, 'checkout.yaml'),
    from: String(prom.start),
    to: String(prom.end),
    output: 'table',
    prometheusUrl: prom.url,
    ...o,
  });
  const run = async (o: Partial<BacktestFlags>) => {
    const c = collector();
    const code = await runBacktestCommand(flags(o), c.io, {}, prom.end);
    return { code, stdout: c.out(), stderr: c.err() };
  };

  it('exits 1 with the workload named when the target has no data', async () => {
    const r = await run({ policy: join(dir, 'ghost.yaml'), assumePercent: '5' });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^backtest: mirror target shop\/ghost: no request history/);
  });

  const usage = [
    {
      name: 'a bad --from',
      o: { from: 'yesterday' },
      message: 'backtest: --from: "yesterday" is not a time',
    },
    {
      name: '--from after --to',
      o: { from: 'now', to: '-1h' },
      message: 'backtest: --from: must be before --to',
    },
    {
      name: 'a bad --step',
      o: { step: '0s' },
      message: 'backtest: --step: must be a duration of at least 1s',
    },
    {
      name: 'a bad --assume-percent',
      o: { assumePercent: '150' },
      message: 'backtest: --assume-percent: must be a number from 0 to 100 (got "150")',
    },
    {
      name: 'html without --out',
      o: { output: 'html' as const },
      message: 'backtest: --output: html needs --out FILE',
    },
    {
      name: 'a bad --primary-service',
      o: { primaryService: 'Not_A_Service' },
      message: 'backtest: --primary-service: must be NAME or NAME.NAMESPACE',
    },
    {
      name: 'a --production-query that is not PromQL',
      o: { productionQuery: 'sum(rate(' },
      message: 'backtest: --production-query: is not valid PromQL',
    },
  ];
  it.each(usage)('exits 2 on $name, naming the flag', async ({ o, message }) => {
    const r = await run(o);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
  });

  it('exits 1 on an invalid policy file, with its problems', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, scenarioPolicy(CLEAN).replace('minPercent: 0.5', 'minPercent: -1'));
    const r = await run({ policy: file });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.yaml:\d+:\d+: spec\.bounds\.minPercent: /);
  });

  it('takes a --production-query instead of the default', async () => {
    const r = await run({
      productionQuery:
        'sum(rate(istio_requests_total{reporter="destination",destination_workload="checkout"}[{{window}}]))',
      output: 'json',
    });
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout) as BacktestResult;
    expect(result.points.map((p) => p.productionRps)).toEqual(clean.points.map((p) => p.productionRps));
  });

  it('draws a progress bar on stderr only when it is a terminal', async () => {
    let err = '';
    const tty: BacktestIo = {
      stdout: { write: () => true },
      stderr: { write: (t: string) => (err += t), isTTY: true },
    };
    expect(await runBacktestCommand(flags({}), tty, {}, prom.end)).toBe(0);
    // 5 queries x 3 chunks of at most 1,000 points for 2,881 steps.
    expect(err).toMatch(/^\rreading history \[\.{30}\] 0\/15 requests\r/);
    expect(err).toContain('\rreading history [##############################] 15/15 requests');
    expect(err.endsWith('\r\x1b[K')).toBe(true);
    const plain = await run({});
    expect(plain.stderr).toBe('');
  });

  it('reads through an https Prometheus with a private CA and a bearer token, which it never prints', async () => {
    const certs = await makeTestCertificates();
    const proxy = await startReverseProxy({
      upstream: prom.url,
      tls: { cert: certs.serverCert, key: certs.serverKey },
      handle: (req) =>
        req.body.includes('mirror_autoscaler_mirror_percent')
          ? {
              kind: 'respond',
              status: 500,
              body: `{"status":"error","error":"denied ${req.headers.authorization}"}`,
            }
          : { kind: 'forward' },
    });
    try {
      const c = collector();
      const env = { PROMETHEUS_CA_FILE: certs.caFile, PROMETHEUS_BEARER_TOKEN: 's3cret-token' };
      const code = await runBacktestCommand(flags({ prometheusUrl: proxy.url }), c.io, env, prom.end);
      expect(code).toBe(1);
      expect(c.err()).toMatch(
        /^backtest: mirror percentage of policy checkout: range query .* failed: HTTP 500: denied Bearer \[REDACTED\]/,
      );
      expect(c.err()).not.toContain('s3cret-token');
      expect(proxy.requests.length).toBeGreaterThan(0);
      expect(proxy.requests.every((r) => r.path === '/api/v1/query_range')).toBe(true);
      expect(proxy.requests.every((r) => r.headers.authorization === 'Bearer s3cret-token')).toBe(true);
    } finally {
      await proxy.close();
      await certs.remove();
    }
  });

  it('writes the HTML report with --out', async () => {
    const out = join(dir, 'report.html');
    const r = await run({ output: 'html', out });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`backtest: wrote ${out}\n`);
    expect(readFileSync(out, 'utf8')).toMatch(/^<!doctype html>/i);
  });
});
