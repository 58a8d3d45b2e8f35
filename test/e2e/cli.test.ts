/**
 * End to end: the built CLI against a real Prometheus (backfilled) and the fake Kubernetes API server,
 * through the real @kubernetes/client-node. `plan --output json` first, then `run --once`, then the objects.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeApiServer, HTTP_ROUTES, type JsonObject, VIRTUAL_SERVICES } from '../support/fake-apiserver.js';
import {
  gatewayRoute,
  gatewayRule,
  mirrorFilter,
  PRIMARY_ROUTE,
  routeMirror,
  virtualService,
} from '../support/kube-fixtures.js';
import { startPrometheus, type TestPrometheus } from '../support/prometheus.js';

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      timeout: 30_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

function policy(o: {
  name: string;
  ns: string;
  vs: string;
  route?: string;
  host: string;
  workload: string;
  min: number;
  max: number;
  guardrails: string;
}): string {
  return `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: ${o.name}
spec:
  virtualService:
    name: ${o.vs}
    namespace: ${o.ns}
${o.route === undefined ? '' : `    route: ${o.route}\n`}  target:
    host: ${o.host}
    workload: ${o.workload}
  bounds:
    minPercent: ${o.min}
    maxPercent: ${o.max}
  guardrails:
${o.guardrails}
  interval: 30s
  window: 2m
`;
}

function mirroredRoute(host: string, percent: number): JsonObject {
  return { name: 'primary', ...PRIMARY_ROUTE, mirror: { host }, mirrorPercentage: { value: percent } };
}

function mirrorPercentOf(obj: JsonObject | undefined): unknown {
  const spec = obj?.spec as { http: { mirrorPercentage?: { value: number } }[] };
  return spec.http[0]?.mirrorPercentage?.value;
}

/** The object with the mirror percentage, our state annotations and the server-managed metadata taken out. */
function withoutOurChanges(obj: JsonObject | undefined): unknown {
  const copy = structuredClone(obj) as {
    metadata: Record<string, unknown> & { annotations?: Record<string, string> };
    spec: { http: Record<string, unknown>[] };
  };
  for (const k of ['resourceVersion', 'generation', 'managedFields']) delete copy.metadata[k];
  const annotations = Object.entries(copy.metadata.annotations ?? {}).filter(
    ([k]) => !k.startsWith('state.mirror-autoscaler.io/'),
  );
  if (annotations.length === 0) delete copy.metadata.annotations;
  else copy.metadata.annotations = Object.fromEntries(annotations);
  for (const r of copy.spec.http) delete r.mirrorPercentage;
  return copy;
}

const VS = VIRTUAL_SERVICES;

describe('plan and run --once against Prometheus and the API server', () => {
  let prom: TestPrometheus;
  let api: FakeApiServer;
  let dir: string;
  let kubeconfig: string;
  let env: Record<string, string>;
  const before = new Map<string, JsonObject | undefined>();
  let routeBefore: JsonObject | undefined;

  beforeAll(async () => {
    if (!existsSync(CLI)) {
      await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 120_000 });
    }
    prom = await startPrometheus([
      // The production side of checkout's route (its primary destination, service checkout): 100 req/s.
      { namespace: 'shop', workload: 'checkout', requestsPerSecond: 100 },
      // Plenty of headroom: 20 req/s, 20 % CPU, 20 ms, no 5xx series at all.
      {
        namespace: 'shop',
        workload: 'checkout-shadow',
        requestsPerSecond: 20,
        cpuCores: 0.2,
        cpuRequestCores: 1,
      },
      // The storefront HTTPRoute: production 60 req/s on its heaviest backend, the shadow at 25 % CPU.
      { namespace: 'web', workload: 'storefront', requestsPerSecond: 60 },
      {
        namespace: 'web',
        workload: 'storefront-shadow',
        requestsPerSecond: 7.2,
        cpuCores: 0.25,
        cpuRequestCores: 1,
      },
      // p99 far above 500 ms: a breach.
      {
        namespace: 'search',
        workload: 'search-shadow',
        requestsPerSecond: 50,
        cpuCores: 0.3,
        latency: [
          { ms: 30, share: 0.9 },
          { ms: 2000, share: 0.1 },
        ],
      },
    ]);
    api = await FakeApiServer.start();
    kubeconfig = await api.writeKubeconfig();
    api.setVirtualService(
      virtualService({ namespace: 'shop', name: 'checkout', http: [mirroredRoute('checkout-shadow', 10)] }),
    );
    api.setVirtualService(
      virtualService({
        namespace: 'search',
        name: 'search',
        hosts: ['search'],
        http: [mirroredRoute('search-shadow', 40)],
      }),
    );
    api.setVirtualService(
      virtualService({
        namespace: 'recs',
        name: 'recs',
        hosts: ['recs'],
        http: [mirroredRoute('recs-shadow', 5)],
      }),
    );
    api.setRoute(
      HTTP_ROUTES,
      gatewayRoute({
        namespace: 'web',
        name: 'storefront',
        rules: [
          gatewayRule([mirrorFilter('storefront-shadow', { percent: 12 })], {
            name: 'browse',
            backendRefs: [
              { name: 'storefront', port: 8080, weight: 9 },
              { name: 'storefront-canary', port: 8080, weight: 1 },
            ],
          }),
        ],
      }),
    );
    routeBefore = api.getRoute(HTTP_ROUTES, 'web', 'storefront');
    for (const [ns, name] of [
      ['shop', 'checkout'],
      ['search', 'search'],
      ['recs', 'recs'],
    ] as const) {
      before.set(`${ns}/${name}`, api.getObject(VS, ns, name));
    }

    dir = await mkdtemp(join(tmpdir(), 'mirror-autoscaler-e2e-'));
    const all = `    cpuUtilization: 0.8\n    errorRate: 0.01\n    latencyP99Ms: 500`;
    await writeFile(
      join(dir, 'checkout.yaml'),
      policy({
        name: 'checkout',
        ns: 'shop',
        vs: 'checkout',
        route: 'primary',
        host: 'checkout-shadow',
        workload: 'checkout-shadow',
        min: 1,
        max: 50,
        guardrails: all,
      }),
    );
    await writeFile(
      join(dir, 'search.yaml'),
      policy({
        name: 'search',
        ns: 'search',
        vs: 'search',
        host: 'search-shadow',
        workload: 'search-shadow',
        min: 1,
        max: 60,
        guardrails: all,
      }),
    );
    // No series at all for this workload: blind, so it must hold.
    await writeFile(
      join(dir, 'recs.yaml'),
      policy({
        name: 'recs',
        ns: 'recs',
        vs: 'recs',
        host: 'recs-shadow',
        workload: 'recs-shadow',
        min: 0,
        max: 50,
        guardrails: all,
      }),
    );
    await writeFile(
      join(dir, 'storefront.yaml'),
      [
        'apiVersion: mirror-autoscaler.io/v1alpha1',
        'kind: MirrorPolicy',
        'metadata:',
        '  name: storefront',
        'spec:',
        '  httpRoute: { name: storefront, namespace: web, rule: browse }',
        '  target:',
        '    backendRef: { name: storefront-shadow, port: 8080 }',
        '    workload: storefront-shadow',
        '  bounds: { minPercent: 1, maxPercent: 50 }',
        '  guardrails:',
        all,
        '  interval: 30s',
        '  window: 2m',
        '',
      ].join('\n'),
    );
    // Its VirtualService does not exist: an error for this policy only.
    await writeFile(
      join(dir, 'ghost.yaml'),
      policy({
        name: 'ghost',
        ns: 'shop',
        vs: 'ghost',
        host: 'ghost-shadow',
        workload: 'ghost-shadow',
        min: 0,
        max: 10,
        guardrails: '    errorRate: 0.05',
      }),
    );
    env = { KUBECONFIG: kubeconfig, PROMETHEUS_URL: prom.url };
  }, 120_000);

  afterAll(async () => {
    await prom?.stop();
    await api?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  let plan: Record<string, Record<string, unknown>> = {};

  it('plan --output json prints one object per policy and writes nothing', async () => {
    const res = await cli(['plan', '--policies', dir, '--output', 'json'], env);
    // ghost cannot be evaluated, so the exit status says so; the other policies are still printed.
    expect(res.code, res.stderr).toBe(1);
    const lines = res.stdout.trim().split('\n');
    expect(lines).toHaveLength(5);
    plan = Object.fromEntries(
      lines.map((l) => {
        const o = JSON.parse(l) as Record<string, unknown>;
        return [String(o.policy), o];
      }),
    );

    const checkout = plan.checkout ?? {};
    expect(checkout).toMatchObject({
      routeKind: 'VirtualService',
      route: 'shop/checkout',
      currentPercent: 10,
      action: 'increase',
    });
    expect(checkout.proposedPercent as number).toBeGreaterThan(10);
    expect(checkout.proposedPercent as number).toBeLessThanOrEqual(50);
    const cs = checkout.signals as Record<string, number | null>;
    expect(cs.cpuUtilization).toBeCloseTo(0.2, 2);
    expect(cs.errorRate).toBe(0);
    expect(cs.latencyP99Ms as number).toBeLessThan(100);
    // Production read from the route's primary destination; the scrape interval learned from the samples.
    expect(checkout.productionRps as number).toBeCloseTo(100, 6);
    expect(checkout).toMatchObject({
      mode: 'FeedForward',
      scrapeIntervalSeconds: 15,
      scrapeIntervalSource: 'learned',
    });

    const search = plan.search ?? {};
    expect(search).toMatchObject({
      routeKind: 'VirtualService',
      route: 'search/search',
      currentPercent: 40,
      action: 'decrease',
    });

    // The HTTPRoute: its rule's RequestMirror filter, production from the rule's heaviest backend.
    const storefront = plan.storefront ?? {};
    expect(storefront).toMatchObject({
      routeKind: 'HTTPRoute',
      route: 'web/storefront',
      routes: ['browse'],
      currentPercent: 12,
      action: 'increase',
      mode: 'FeedForward',
    });
    expect(storefront.productionRps as number).toBeCloseTo(60, 6);
    expect(storefront).toMatchObject({ signalPreset: 'istio', reporter: 'destination' });
    expect((storefront.signals as Record<string, number>).cpuUtilization).toBeCloseTo(0.25, 2);
    expect(search.reason).toBe('GuardrailBreached');
    expect(search.proposedPercent as number).toBeLessThanOrEqual(28);
    expect((search.signals as Record<string, number>).latencyP99Ms).toBeGreaterThan(500);

    const recs = plan.recs ?? {};
    expect(recs).toMatchObject({ currentPercent: 5, proposedPercent: 5, action: 'hold', reason: 'NoData' });
    expect(recs.signals).toEqual({ cpuUtilization: null, errorRate: null, latencyP99Ms: null });
    // No series for its target or its primary service: feedback only, the default scrape interval.
    expect(recs).toMatchObject({
      mode: 'FeedbackOnly',
      productionRps: null,
      productionAbsent: 'NoSeries',
      scrapeIntervalSeconds: 15,
      scrapeIntervalSource: 'default',
    });

    expect(plan.ghost?.error).toBe('VirtualService shop/ghost not found');
    expect(plan.ghost?.signals).toEqual({ cpuUtilization: null, errorRate: null, latencyP99Ms: null });

    expect(api.countRequests({ method: 'PATCH' })).toBe(0);
    expect(api.getRoute(HTTP_ROUTES, 'web', 'storefront')).toEqual(routeBefore);
    for (const [key, obj] of before) {
      const [ns, name] = key.split('/') as [string, string];
      expect(api.getObject(VS, ns, name)).toEqual(obj);
    }
  });

  it('plan prints a table for people', async () => {
    const res = await cli(['plan', '--policies', dir], env);
    const [header, ...rows] = res.stdout.split('\n');
    expect(header).toMatch(
      /^POLICY\s+KIND\s+OBJECT\s+ROUTE\s+CURRENT\s+PROPOSED\s+ACTION\s+REASON\s+CPU\s+ERRORS\s+P99\s+PRODUCTION\s+SCRAPE\s+SIGNALS\s+MODE$/,
    );
    expect(rows.find((r) => r.startsWith('checkout '))).toMatch(
      /\s100\/s\s+15s \(learned\)\s+istio \(destination\)\s+FeedForward$/,
    );
    expect(rows.find((r) => r.startsWith('recs '))).toMatch(
      /\sNoSeries\s+15s \(default\)\s+istio \(destination\)\s+FeedbackOnly$/,
    );
    expect(rows.find((r) => r.startsWith('storefront '))).toMatch(
      /^storefront\s+HTTPRoute\s+web\/storefront\s+browse\s+12%/,
    );
    expect(rows.find((r) => r.startsWith('search '))).toMatch(/40%\s+\S+%\s+decrease\s+GuardrailBreached/);
    expect(res.stdout).toContain('ghost: error: VirtualService shop/ghost not found');
  });

  it('run --dry-run --once logs the proposals and writes nothing', async () => {
    const res = await cli(['run', '--policies', dir, '--once', '--dry-run'], env);
    expect(res.code).toBe(1);
    const logs = res.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const proposal = logs.find((l) => l.policy === 'checkout' && l.dryRun === true);
    expect(proposal).toMatchObject({
      currentPercent: 10,
      action: 'increase',
      mode: 'FeedForward',
      scrapeIntervalSeconds: 15,
      scrapeIntervalSource: 'learned',
    });
    expect(proposal?.productionRps as number).toBeCloseTo(100, 6);
    expect(api.countRequests({ method: 'PATCH' })).toBe(0);
  });

  it('run --once writes the changes, audits them, and changes nothing else', async () => {
    const res = await cli(['run', '--policies', dir, '--once'], env);
    expect(res.code).toBe(1);
    const logs = res.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const audits = logs.filter((l) => l.audit === true);
    expect(audits.map((a) => a.policy).sort()).toEqual(['checkout', 'search', 'storefront']);
    for (const a of audits) {
      expect(a).toHaveProperty('routeKind');
      expect(a).toHaveProperty('route');
      expect(a).toHaveProperty('routes');
      expect(a).toHaveProperty('from');
      expect(a).toHaveProperty('to');
      expect(a).toHaveProperty('reason');
      expect(a).toHaveProperty('signals');
      expect(a).toHaveProperty('productionRps');
      expect(a).toMatchObject({ scrapeIntervalSeconds: 15, scrapeIntervalSource: 'learned' });
    }
    expect(audits.find((a) => a.policy === 'checkout')).toMatchObject({ mode: 'FeedForward' });
    // search's primary destination (search/checkout) has no series: feedback only.
    expect(audits.find((a) => a.policy === 'search')).toMatchObject({
      mode: 'FeedbackOnly',
      productionRps: null,
    });

    const checkout = api.getObject(VS, 'shop', 'checkout');
    const search = api.getObject(VS, 'search', 'search');
    const recs = api.getObject(VS, 'recs', 'recs');
    // Same data and no state yet: the write is what plan proposed.
    expect(mirrorPercentOf(checkout)).toBe(plan.checkout?.proposedPercent);
    expect(mirrorPercentOf(search)).toBe(plan.search?.proposedPercent);
    expect(recs).toEqual(before.get('recs/recs'));
    expect(withoutOurChanges(checkout)).toEqual(withoutOurChanges(before.get('shop/checkout')));
    expect(withoutOurChanges(search)).toEqual(withoutOurChanges(before.get('search/search')));
    const annotations =
      (checkout?.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {};
    expect(JSON.parse(annotations['state.mirror-autoscaler.io/checkout'] ?? 'null')).toHaveProperty(
      'version',
      1,
    );
    // The HTTPRoute's filter holds what plan proposed, in a form the CRD accepted; nothing else changed.
    const mirror = routeMirror(api.getRoute(HTTP_ROUTES, 'web', 'storefront')) as {
      percent?: number;
      fraction?: { numerator: number; denominator: number };
    };
    const percent =
      mirror.percent ??
      ((mirror.fraction?.numerator ?? Number.NaN) / (mirror.fraction?.denominator ?? 1)) * 100;
    expect(percent).toBeCloseTo(plan.storefront?.proposedPercent as number, 6);
    expect(audits.find((a) => a.policy === 'storefront')).toMatchObject({
      routeKind: 'HTTPRoute',
      route: 'web/storefront',
      from: 12,
      mode: 'FeedForward',
    });
    expect(api.countRequests({ method: 'PATCH' })).toBe(3);
    expect(api.countRequests({ method: 'GET', name: 'checkout' })).toBe(0);
  });

  it('run as a daemon evaluates on schedule and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'run', '--policies', dir, '--dry-run', '--metrics-address', '127.0.0.1', '--metrics-port', '0'],
      {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', ...env },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no cycle within 20 s:\n${out}`)), 20_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('"msg":"cycle complete"')) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const logs = out
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(logs.at(-1)?.msg).toBe('stopped');
      expect(logs.filter((l) => l.msg === 'cycle complete')[0]).toMatchObject({ policies: 5, dryRun: true });
      expect(api.countRequests({ method: 'PATCH' })).toBe(3); // only the three from run --once above
    } finally {
      if (child.exitCode === null && child.pid !== undefined) child.kill('SIGKILL');
    }
  });

  it('validate reports an invalid policy with file, line and column', async () => {
    const bad = await mkdtemp(join(tmpdir(), 'mirror-autoscaler-bad-'));
    try {
      await writeFile(
        join(bad, 'x.yaml'),
        policy({
          name: 'x',
          ns: 'a',
          vs: 'b',
          host: 'c',
          workload: 'd',
          min: 0,
          max: 150,
          guardrails: '    errorRate: 0.05',
        }),
      );
      const res = await cli(['validate', '--policies', bad]);
      expect(res.code).toBe(1);
      expect(res.stderr).toBe(
        `${join(bad, 'x.yaml')}:14:17: spec.bounds.maxPercent: must be <= 100 (got 150)\n`,
      );
    } finally {
      await rm(bad, { recursive: true, force: true });
    }
  });
});
