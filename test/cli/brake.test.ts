/**
 * `mirror-autoscaler brake` against the fake API server through the real @kubernetes/client-node, with the
 * daemon (in process, see test/faults/harness.ts) running cycles before, during and after the brake.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runBrake } from '../../src/cli/brake.js';
import {
  BRAKE_ANNOTATION,
  PAUSED_ANNOTATION,
  planBrake,
  planRelease,
  readBrakeMarker,
  type VirtualService,
} from '../../src/mesh/index.js';
import {
  annotationsOf,
  InProcessDaemon,
  labelsOf,
  mirroredVs,
  type PolicyInit,
  percentOf,
  policy,
  policyYaml,
} from '../faults/harness.js';
import {
  type AccessRule,
  FakeApiServer,
  HTTP_ROUTES,
  type JsonObject,
  VIRTUAL_SERVICES,
} from '../support/fake-apiserver.js';
import {
  annotationsOfObject,
  gatewayRoute,
  gatewayRule,
  mirrorFilter,
  routeMirror,
} from '../support/kube-fixtures.js';

const execFileAsync = promisify(execFile);
const ROOT = join(import.meta.dirname, '..', '..');
const NS = 'brake-a';
const OTHER = 'brake-b';
const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);

const POLICIES: readonly (PolicyInit & { percent: number; paused?: string })[] = [
  { name: 'alpha', namespace: NS, min: 2, percent: 40 },
  { name: 'beta', namespace: NS, min: 5, percent: 60 },
  { name: 'manual', namespace: NS, min: 1, percent: 50, paused: 'true' },
  { name: 'gamma', namespace: OTHER, min: 3, percent: 30 },
];

let api: FakeApiServer;
let tmp: string;
let dir: string;
let kubeconfig: string;

function io() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: {
      stdout: { write: (t: string) => (out.stdout += t) },
      stderr: { write: (t: string) => (out.stderr += t) },
    },
  };
}

function vsOf(name: string, namespace = NS): JsonObject | undefined {
  return api.getVirtualService(namespace, name);
}

function seed(): void {
  for (const p of POLICIES) {
    const vs = mirroredVs(p.namespace, p.name, p.percent);
    if (p.paused !== undefined) (vs.metadata as JsonObject).annotations = { [PAUSED_ANNOTATION]: p.paused };
    api.setVirtualService(vs);
  }
}

const PATCHES = { verb: 'patch', resource: 'virtualservices' } as const;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'brake-test-'));
  dir = join(tmp, 'policies');
  await execFileAsync('mkdir', ['-p', dir]);
  for (const p of POLICIES) await writeFile(join(dir, `${p.name}.yaml`), policyYaml(p));
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  api = await FakeApiServer.start();
  kubeconfig = await api.writeKubeconfig();
  seed();
});

afterEach(async () => {
  await api.close();
});

describe('brake with the daemon running', () => {
  it('sets every managed mirror to minPercent and pauses it; the daemon keeps it there; release resumes it', async () => {
    const d = new InProcessDaemon(api, POLICIES.map(policy));
    d.now = T0;
    await d.cycle();

    // The daemon is live: its first cycle raised every policy but the hand-paused one.
    const running = new Map(POLICIES.map((p) => [p.name, percentOf(vsOf(p.name, p.namespace))]));
    for (const p of POLICIES) {
      if (p.paused === undefined) expect(running.get(p.name), p.name).toBeGreaterThan(p.percent);
    }

    const braked = io();
    expect(await runBrake({ policies: dir, kubeconfig }, braked.io, { now: () => T0 + 1000 })).toBe(0);
    expect(braked.out.stdout.split('\n').filter(Boolean)).toEqual(
      POLICIES.map(
        (p) =>
          `${p.namespace}/${p.name}: braked: mirror ${running.get(p.name)}% -> ${p.min}% (${p.name}); automation paused until brake --release`,
      ),
    );
    for (const p of POLICIES) {
      const vs = vsOf(p.name, p.namespace);
      expect(percentOf(vs), p.name).toBe(p.min);
      expect(annotationsOf(vs)[PAUSED_ANNOTATION]).toBe('true');
      expect(JSON.parse(annotationsOf(vs)[BRAKE_ANNOTATION] ?? 'null')).toEqual({
        at: new Date(T0 + 1000).toISOString(),
        pausedBefore: p.paused ?? null,
        from: { [p.name]: running.get(p.name) },
      });
      expect(d.eventReasons(p.namespace, p.name)).toContain('Braked');
    }

    // The daemon now holds every policy, says why, and writes nothing, cycle after cycle.
    const before = api.countRequests(PATCHES);
    for (let i = 0; i < 4; i++) {
      const outcomes = await d.cycle();
      for (const p of POLICIES) {
        expect(outcomes.get(p.name)).toMatchObject({
          reason: 'Paused',
          write: 'none',
          currentPercent: p.min,
        });
        expect(outcomes.get(p.name)?.message).toContain('braked');
      }
    }
    expect(api.countRequests(PATCHES)).toBe(before);
    for (const p of POLICIES) expect(percentOf(vsOf(p.name, p.namespace))).toBe(p.min);

    // Again: nothing to do, nothing written, exit 0.
    const again = io();
    expect(await runBrake({ policies: dir, kubeconfig }, again.io)).toBe(0);
    expect(again.out.stdout).toContain('brake-a/alpha: already braked: already braked since ');
    expect(again.out.stderr).toBe('brake: 4 VirtualServices: 4 already braked\n');
    expect(api.countRequests(PATCHES)).toBe(before);

    // Release: the brake's pause goes; the pause a person made before the brake stays.
    const released = io();
    expect(await runBrake({ policies: dir, kubeconfig, release: true }, released.io)).toBe(0);
    expect(released.out.stdout).toContain(
      'brake-a/alpha: released: brake of 2026-03-01T12:00:01.000Z released; automation resumes at the next cycle',
    );
    expect(released.out.stdout).toContain(
      'brake-a/manual: released: brake of 2026-03-01T12:00:01.000Z released; still paused ("true") as it was before the brake',
    );
    for (const p of POLICIES) {
      const a = annotationsOf(vsOf(p.name, p.namespace));
      expect(a[BRAKE_ANNOTATION]).toBeUndefined();
      expect(a[PAUSED_ANNOTATION]).toBe(p.paused);
      expect(d.eventReasons(p.namespace, p.name)).toContain('BrakeReleased');
    }

    // The daemon resumes: it raises from minPercent again (at its usual pace); the hand-paused one stays.
    for (let i = 0; i < 12 && !(percentOf(vsOf('alpha')) !== 2 && percentOf(vsOf('beta')) !== 5); i++) {
      await d.cycle();
    }
    expect(percentOf(vsOf('alpha'))).toBeGreaterThan(2);
    expect(percentOf(vsOf('beta'))).toBeGreaterThan(5);
    expect(percentOf(vsOf('manual'))).toBe(1);
    expect(d.log.lines.some((l) => l.audit === true && l.policy === 'alpha' && l.from === 2)).toBe(true);

    // Releasing again changes nothing.
    const twice = io();
    expect(await runBrake({ policies: dir, kubeconfig, release: true }, twice.io)).toBe(0);
    expect(twice.out.stdout).toContain('brake-a/alpha: not braked: not braked; left as it is');
    expect(twice.out.stdout).toContain(
      'brake-a/manual: not braked: not braked (paused "true" by hand); left as it is',
    );
  });

  it('re-reads and retries when a concurrent edit (or the daemon) writes between its read and its patch', async () => {
    const d = new InProcessDaemon(api, POLICIES.map(policy));
    const edit = api.concurrentEdit({ namespace: NS, name: 'alpha' }, (o) => {
      (o.metadata as JsonObject).labels = { team: 'payments' };
    });
    // The daemon's cycle and the brake run at the same time.
    const out = io();
    const [code] = await Promise.all([runBrake({ policies: dir, kubeconfig }, out.io), d.cycle()]);
    expect(code).toBe(0);
    expect(edit.hits).toBe(1);
    const alpha = vsOf('alpha');
    expect(percentOf(alpha)).toBe(2);
    expect(annotationsOf(alpha)[PAUSED_ANNOTATION]).toBe('true');
    expect(labelsOf(alpha)).toEqual({ team: 'payments' });
    for (const p of POLICIES) expect(percentOf(vsOf(p.name, p.namespace))).toBe(p.min);
    // Whatever the daemon did in that cycle, its next one sees the brake.
    const next = await d.cycle();
    expect(next.get('alpha')?.reason).toBe('Paused');
  });

  it('exits 1 naming what failed when a VirtualService cannot be braked, and brakes the others', async () => {
    const readAll: AccessRule = {
      verbs: ['get', 'list'],
      apiGroups: ['networking.istio.io'],
      resources: ['virtualservices'],
    };
    const patchA: AccessRule = {
      verbs: ['patch'],
      apiGroups: ['networking.istio.io'],
      resources: ['virtualservices'],
      namespaces: [NS],
    };
    const events: AccessRule = { verbs: ['create', 'patch'], apiGroups: [''], resources: ['events'] };
    api.setRules([readAll, patchA, events]);
    api.deleteObject(VIRTUAL_SERVICES, NS, 'beta');
    const out = io();
    expect(await runBrake({ policies: dir, kubeconfig }, out.io)).toBe(1);
    const lines = out.out.stdout.split('\n').filter(Boolean);
    expect(lines[0]).toMatch(/^brake-a\/alpha: braked: /);
    expect(lines[1]).toBe(
      'brake-a/beta: FAILED: get virtualservices.networking.istio.io brake-a/beta: not found (HTTP 404 NotFound: virtualservices.networking.istio.io "beta" not found)',
    );
    expect(lines[3]).toMatch(
      /^brake-b\/gamma: FAILED: patch virtualservices\.networking\.istio\.io brake-b\/gamma: forbidden: missing RBAC permission "patch" on virtualservices\.networking\.istio\.io in namespace "brake-b" \(HTTP 403 Forbidden: /,
    );
    expect(out.out.stderr).toBe('brake: 4 VirtualServices: 2 braked, 2 FAILED\n');
    expect(percentOf(vsOf('gamma', OTHER))).toBe(30);
    expect(percentOf(vsOf('alpha'))).toBe(2);
  });

  it('--dry-run writes nothing; --namespace limits it to one namespace', async () => {
    const out = io();
    expect(await runBrake({ policies: dir, kubeconfig, dryRun: true, namespace: OTHER }, out.io)).toBe(0);
    expect(out.out.stdout).toBe(
      'brake-b/gamma: would be braked: mirror 30% -> 3% (gamma); automation paused until brake --release\n',
    );
    expect(out.out.stderr).toBe('brake (dry run, nothing written): 1 VirtualServices: 1 braked\n');
    expect(api.countRequests(PATCHES)).toBe(0);
    expect(api.countRequests({ verb: 'create', resource: 'events' })).toBe(0);
  });

  it('exits 1 when the API server rejects the credentials, naming that', async () => {
    api.setToken('another-token');
    const out = io();
    expect(await runBrake({ policies: dir, kubeconfig }, out.io)).toBe(1);
    expect(out.out.stdout).toContain(
      'brake-a/alpha: FAILED: get API groups /apis: unauthorized: the API server rejected the credentials (check the token or kubeconfig user)',
    );
    expect(out.out.stderr).toBe('brake: 4 VirtualServices: 4 FAILED\n');
  });

  it('runs as a command of the CLI, with its exit status', async () => {
    const run = (args: string[]) =>
      execFileAsync(
        process.execPath,
        [
          '--import',
          'tsx',
          join(ROOT, 'src/cli/main.ts'),
          'brake',
          '--policies',
          dir,
          '--kubeconfig',
          kubeconfig,
          ...args,
        ],
        { cwd: ROOT, env: { PATH: process.env.PATH ?? '' }, timeout: 30_000 },
      ).then(
        (r) => ({ code: 0, ...r }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({
          code: e.code,
          stdout: e.stdout ?? '',
          stderr: e.stderr ?? '',
        }),
      );
    const ok = await run(['--namespace', NS]);
    expect(ok.code).toBe(0);
    expect(ok.stdout.split('\n').filter(Boolean)).toHaveLength(3);
    expect(percentOf(vsOf('beta'))).toBe(5);
  }, 60_000);
});

describe('planBrake and planRelease', () => {
  const p = policy({ name: 'alpha', namespace: NS, min: 2 });
  const asVs = (o: JsonObject): VirtualService =>
    ({ ...o, metadata: { ...(o.metadata as object), resourceVersion: '7' } }) as unknown as VirtualService;

  it('skips a VirtualService owned by a Flagger Canary', () => {
    const vs = mirroredVs(NS, 'alpha', 40);
    (vs.metadata as JsonObject).ownerReferences = [
      { apiVersion: 'flagger.app/v1beta1', kind: 'Canary', name: 'alpha' },
    ];
    expect(planBrake(asVs(vs), [p], T0)).toMatchObject({ kind: 'skipped', ops: undefined });
  });

  it('fails, writing nothing, when the mirror cannot be located', () => {
    const vs = mirroredVs(NS, 'alpha', 40);
    (vs.spec as { http: JsonObject[] }).http[0] = { name: 'other', route: [] };
    const plan = planBrake(asVs(vs), [p], T0);
    expect(plan.kind).toBe('failed');
    expect(plan.ops).toBeUndefined();
    expect(plan.detail).toBe(
      'policy alpha: VirtualService brake-a/alpha: no http route named "primary" (routes: "other")',
    );
  });

  it('guards every write: the brake by the resourceVersion, the release also by the marker it read', () => {
    const vs = asVs(mirroredVs(NS, 'alpha', 40));
    const plan = planBrake(vs, [p], T0);
    expect(plan.ops?.[0]).toEqual({ op: 'test', path: '/metadata/resourceVersion', value: '7' });
    const marker = JSON.stringify({ at: 'x', pausedBefore: 'yes', from: {} });
    const braked = {
      ...vs,
      metadata: { ...vs.metadata, annotations: { [PAUSED_ANNOTATION]: 'true', [BRAKE_ANNOTATION]: marker } },
    } as VirtualService;
    expect(planRelease(braked).ops).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '7' },
      { op: 'test', path: '/metadata/annotations/mirror-autoscaler.io~1brake', value: marker },
      { op: 'remove', path: '/metadata/annotations/mirror-autoscaler.io~1brake' },
      { op: 'add', path: '/metadata/annotations/mirror-autoscaler.io~1paused', value: 'yes' },
    ]);
  });

  it('refuses an unreadable marker rather than guessing what the pause was', () => {
    const vs = asVs(mirroredVs(NS, 'alpha', 40));
    const bad = {
      ...vs,
      metadata: { ...vs.metadata, annotations: { [BRAKE_ANNOTATION]: 'yes' } },
    } as VirtualService;
    expect(readBrakeMarker(bad)).toBeInstanceOf(Error);
    expect(planRelease(bad)).toMatchObject({ kind: 'failed', ops: undefined });
    expect(planBrake(bad, [p], T0)).toMatchObject({ kind: 'failed', ops: undefined });
  });
});

describe('brake on Gateway API routes', () => {
  it('brakes an HTTPRoute filter to minPercent and pauses it, then releases it, as for VirtualServices', async () => {
    const gwDir = join(tmp, 'gateway');
    await execFileAsync('mkdir', ['-p', gwDir]);
    await writeFile(
      join(gwDir, 'storefront.yaml'),
      [
        'apiVersion: mirror-autoscaler.io/v1alpha1',
        'kind: MirrorPolicy',
        'metadata: { name: storefront }',
        'spec:',
        `  httpRoute: { name: storefront, namespace: ${NS}, rule: browse }`,
        '  target: { backendRef: { name: storefront-shadow }, workload: storefront-shadow }',
        '  bounds: { minPercent: 0.5, maxPercent: 50 }',
        '  guardrails: { cpuUtilization: 0.8 }',
        '',
      ].join('\n'),
    );
    api.setRoute(
      HTTP_ROUTES,
      gatewayRoute({
        namespace: NS,
        name: 'storefront',
        rules: [gatewayRule([mirrorFilter('storefront-shadow', { percent: 30 })], { name: 'browse' })],
      }),
    );
    const mirror = () => routeMirror(api.getRoute(HTTP_ROUTES, NS, 'storefront'));
    const braked = io();
    expect(await runBrake({ policies: gwDir, kubeconfig }, braked.io, { now: () => T0 })).toBe(0);
    expect(braked.out.stdout).toBe(
      `HTTPRoute ${NS}/storefront: braked: mirror 30% -> 0.5% (storefront); automation paused until brake --release\n`,
    );
    // 0.5 % is not a whole percentage: the filter switched to a fraction the CRD accepted.
    expect(mirror()).toEqual({
      backendRef: { group: '', kind: 'Service', name: 'storefront-shadow', port: 8080 },
      fraction: { numerator: 5, denominator: 1000 },
    });
    const annotations = annotationsOfObject(api.getRoute(HTTP_ROUTES, NS, 'storefront'));
    expect(annotations[PAUSED_ANNOTATION]).toBe('true');

    const released = io();
    expect(
      await runBrake({ policies: gwDir, kubeconfig, release: true }, released.io, { now: () => T0 }),
    ).toBe(0);
    expect(released.out.stdout).toMatch(new RegExp(`^HTTPRoute ${NS}/storefront: released: `));
    expect(annotationsOfObject(api.getRoute(HTTP_ROUTES, NS, 'storefront'))).toEqual({});
  });
});
