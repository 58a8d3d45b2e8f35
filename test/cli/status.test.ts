/**
 * `mirror-autoscaler status` against the fake API server through the real @kubernetes/client-node: the
 * state it reads is written by a real cycle of the daemon, or built with stateAnnotation.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  formatAge,
  policyStatus,
  register,
  runStatus,
  type StatusFlags,
  stateCell,
} from '../../src/cli/status.js';
import type { CoreState } from '../../src/core/state.js';
import { createLogger } from '../../src/daemon/audit.js';
import { runCycle } from '../../src/daemon/cycle.js';
import {
  ARGO_ROLLOUTS_CANARY_LABEL,
  asRouteObject,
  BRAKE_ANNOTATION,
  KubernetesRouteStore,
  MeshError,
  PAUSED_ANNOTATION,
  type RouteObject,
  stateAnnotation,
} from '../../src/mesh/index.js';
import type { SignalReading, SignalRequest, SignalSource } from '../../src/signals/index.js';
import { mirroredVs, policy, policyYaml } from '../faults/harness.js';
import { FakeApiServer, HTTP_ROUTES, type JsonObject } from '../support/fake-apiserver.js';
import { gatewayRoute, gatewayRule, mirrorFilter } from '../support/kube-fixtures.js';

const NS = 'status-a';
const WEB = 'status-web';
const T0 = Date.UTC(2026, 2, 1, 12, 0, 0);
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** CPU at 1.5 times its 0.8 limit; the other signals comfortable. */
const BREACH: SignalReading = {
  signals: {
    cpuUtilization: { kind: 'value', value: 1.2 },
    errorRate: { kind: 'value', value: 0.002 },
    latencyP99Ms: { kind: 'value', value: 80 },
  },
  requestRate: { kind: 'value', value: 40 },
};

/** The SignalSource port answering every policy with one reading. */
class FixedSignals implements SignalSource {
  constructor(private readonly answer: SignalReading) {}
  async fetch(requests: readonly SignalRequest[]): Promise<Map<string, SignalReading>> {
    return new Map(requests.map((r) => [r.key, this.answer]));
  }
}

const STOREFRONT_YAML = [
  'apiVersion: mirror-autoscaler.io/v1alpha1',
  'kind: MirrorPolicy',
  'metadata: { name: storefront }',
  'spec:',
  `  httpRoute: { name: storefront, namespace: ${WEB}, rule: browse }`,
  '  target: { backendRef: { name: storefront-shadow, port: 8080 }, workload: storefront-shadow }',
  '  bounds: { minPercent: 0.5, maxPercent: 50 }',
  '  guardrails: { cpuUtilization: 0.75 }',
  '',
].join('\n');

/** A state as the daemon writes it with a cut to `percent` made `agoMs` before T0. */
function writtenState(percent: number, agoMs: number, extra: Partial<CoreState> = {}): CoreState {
  return {
    version: 1,
    at: T0 - agoMs,
    percent,
    track: [
      [0, percent],
      [140, percent * 2],
    ],
    recent: [],
    writesAgo: [0],
    ...extra,
  };
}

function withAnnotations(obj: JsonObject, annotations: Record<string, string>): JsonObject {
  const metadata = obj.metadata as JsonObject;
  return { ...obj, metadata: { ...metadata, annotations } };
}

let api: FakeApiServer;
let tmp: string;
let all: string;
let healthy: string;
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

async function status(flags: Partial<StatusFlags>, now = T0) {
  const { out, io: sink } = io();
  const code = await runStatus({ policies: all, kubeconfig, output: 'table', ...flags }, sink, {
    now: () => now,
  });
  return { code, ...out };
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'status-test-'));
  all = join(tmp, 'all');
  healthy = join(tmp, 'healthy');
  await mkdir(all);
  await mkdir(healthy);
  for (const name of ['checkout', 'held', 'overridden', 'ghost']) {
    await writeFile(join(all, `${name}.yaml`), policyYaml({ name, namespace: NS }));
  }
  await writeFile(join(all, 'storefront.yaml'), STOREFRONT_YAML);
  await writeFile(join(healthy, 'storefront.yaml'), STOREFRONT_YAML);
  await writeFile(join(healthy, 'held.yaml'), policyYaml({ name: 'held', namespace: NS }));
});

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

beforeEach(async () => {
  api = await FakeApiServer.start();
  kubeconfig = await api.writeKubeconfig();
  // checkout: one real cycle at T0 with CPU breached cuts 40 % and writes the state beside it.
  api.setVirtualService(mirroredVs(NS, 'checkout', 40));
  const routes = new KubernetesRouteStore(api.kubeConfig(), { retry: { sleep: async () => undefined } });
  const [outcome] = await runCycle(
    [policy({ name: 'checkout', namespace: NS })],
    {
      signals: new FixedSignals(BREACH),
      routes,
      now: () => T0,
      logger: createLogger({ level: 'silent' }),
      states: new Map(),
    },
    { dryRun: false },
  );
  expect(outcome).toMatchObject({ action: 'decrease', reason: 'GuardrailBreached', write: 'written' });
  // held: paused by hand after the daemon set 15 % three hours ago.
  api.setVirtualService(
    withAnnotations(mirroredVs(NS, 'held', 15), {
      [PAUSED_ANNOTATION]: 'true',
      ...stateAnnotation('held', writtenState(15, 3 * HOUR)),
    }),
  );
  // overridden: the daemon left 20 %, someone set 25 %.
  api.setVirtualService(
    withAnnotations(
      mirroredVs(NS, 'overridden', 25),
      stateAnnotation('overridden', writtenState(20, 12 * MINUTE)),
    ),
  );
  // storefront: an HTTPRoute the daemon decayed to 12 % 45 s ago, blind for 7 minutes by then.
  api.setRoute(
    HTTP_ROUTES,
    withAnnotations(
      gatewayRoute({
        namespace: WEB,
        name: 'storefront',
        rules: [gatewayRule([mirrorFilter('storefront-shadow', { percent: 12 })], { name: 'browse' })],
      }),
      stateAnnotation('storefront', writtenState(12, 45_000, { blindSince: T0 - 45_000 - 7 * MINUTE })),
    ),
  );
});

afterEach(async () => {
  await api.close();
});

/** 90 s after the checkout cut: its cooldown (140 s: propagation, window and a scrape) still runs. */
const NOW = T0 + 90_000;

describe('status against the API server', () => {
  it('prints one row per policy with the state the daemon left, and exits 1 for the missing route', async () => {
    const r = await status({}, NOW);
    expect(r.stdout).toBe(
      [
        'POLICY      KIND            OBJECT                 ROUTE    TARGET                          CURRENT %  SAFE %  LAST CHANGE  STATE',
        'checkout    VirtualService  status-a/checkout      primary  checkout-shadow                 25.33%     <40%    90s          cooling down (50s left); breach remembered (cpuUtilization, 90s ago)',
        'ghost       VirtualService  status-a/ghost         -        checkout-shadow                 -          -       -            error',
        'held        VirtualService  status-a/held          primary  checkout-shadow                 15%        -       3h1m         paused (annotation)',
        'overridden  VirtualService  status-a/overridden    primary  checkout-shadow                 25%        -       13m          overridden (controller left 20%)',
        'storefront  HTTPRoute       status-web/storefront  browse   Service storefront-shadow:8080  12%        -       2m15s        blind at last write (since 9m15s ago)',
        '',
        'ghost: error: VirtualService status-a/ghost not found',
        'held: paused: annotation mirror-autoscaler.io/paused is "true": automation paused',
        '',
      ].join('\n'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
  });

  it('prints one JSON object per policy per line, every key present', async () => {
    const r = await status({ output: 'json' }, NOW);
    expect(r.code).toBe(1);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    const none = {
      paused: null,
      pausedBy: null,
      blindSince: null,
      cooldownUntil: null,
      breach: null,
      stateProblem: null,
      error: null,
    };
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      {
        policy: 'checkout',
        routeKind: 'VirtualService',
        route: 'status-a/checkout',
        routes: ['primary'],
        target: 'checkout-shadow',
        currentPercent: 25.33,
        controllerPercent: 25.33,
        safeBelowPercent: 40,
        lastChange: '2026-03-01T12:00:00.000Z',
        lastChangeAgeSeconds: 90,
        conditions: ['CoolingDown', 'BreachRemembered'],
        ...none,
        cooldownUntil: '2026-03-01T12:02:20.000Z',
        breach: { at: '2026-03-01T12:00:00.000Z', percent: 40, signal: 'cpuUtilization' },
      },
      {
        policy: 'ghost',
        routeKind: 'VirtualService',
        route: 'status-a/ghost',
        routes: [],
        target: 'checkout-shadow',
        currentPercent: null,
        controllerPercent: null,
        safeBelowPercent: null,
        lastChange: null,
        lastChangeAgeSeconds: null,
        conditions: ['Error'],
        ...none,
        error: 'VirtualService status-a/ghost not found',
      },
      {
        policy: 'held',
        routeKind: 'VirtualService',
        route: 'status-a/held',
        routes: ['primary'],
        target: 'checkout-shadow',
        currentPercent: 15,
        controllerPercent: 15,
        safeBelowPercent: null,
        lastChange: '2026-03-01T09:00:00.000Z',
        lastChangeAgeSeconds: 3 * 3600 + 90,
        conditions: ['Paused'],
        ...none,
        paused: 'annotation mirror-autoscaler.io/paused is "true": automation paused',
        pausedBy: 'Annotation',
      },
      {
        policy: 'overridden',
        routeKind: 'VirtualService',
        route: 'status-a/overridden',
        routes: ['primary'],
        target: 'checkout-shadow',
        currentPercent: 25,
        controllerPercent: 20,
        safeBelowPercent: null,
        lastChange: '2026-03-01T11:48:00.000Z',
        lastChangeAgeSeconds: 13 * 60 + 30,
        conditions: ['Overridden'],
        ...none,
      },
      {
        policy: 'storefront',
        routeKind: 'HTTPRoute',
        route: 'status-web/storefront',
        routes: ['browse'],
        target: 'Service storefront-shadow:8080',
        currentPercent: 12,
        controllerPercent: 12,
        safeBelowPercent: null,
        lastChange: '2026-03-01T11:59:15.000Z',
        lastChangeAgeSeconds: 135,
        conditions: ['Blind'],
        ...none,
        blindSince: '2026-03-01T11:52:15.000Z',
      },
    ]);
    // Keys in a stable order, whatever the row holds.
    for (const l of lines)
      expect(Object.keys(JSON.parse(l))).toEqual(Object.keys(JSON.parse(lines[0] ?? '')));
  });

  it('forgets the breach as the daemon does, after spec.control.breachMemory (30m by default)', async () => {
    const justBefore = await status({ namespace: NS, output: 'json' }, T0 + 30 * MINUTE - 1000);
    expect(JSON.parse(justBefore.stdout.split('\n')[0] ?? '')).toMatchObject({
      policy: 'checkout',
      safeBelowPercent: 40,
      conditions: ['BreachRemembered'],
    });
    const after = await status({ namespace: NS }, T0 + 30 * MINUTE);
    expect(after.stdout.split('\n')[1]).toBe(
      'checkout    VirtualService  status-a/checkout    primary  checkout-shadow  25.33%     -       30m          ok',
    );
  });

  it('exits 0 when every route was read, and --namespace keeps only the policies whose route is there', async () => {
    const ok = await status({ policies: healthy }, NOW);
    expect(ok.code).toBe(0);
    expect(
      ok.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/)[0]),
    ).toEqual(['POLICY', 'held', 'storefront', 'held:']);

    const web = await status({ namespace: WEB }, NOW);
    expect(web.code).toBe(0);
    expect(
      web.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(/\s+/)[0]),
    ).toEqual(['POLICY', 'storefront']);
    // One LIST per kind and namespace, no GETs.
    expect(api.countRequests({ verb: 'get', resource: 'httproutes' })).toBe(0);

    const none = await status({ namespace: 'elsewhere' }, NOW);
    expect(none).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `status: ${all}: no valid policy with a route in namespace elsewhere\n`,
    });
  });

  it('names the brake, a state it cannot read and a mirror it cannot find', async () => {
    api.setVirtualService(
      withAnnotations(mirroredVs(NS, 'held', 1), {
        [PAUSED_ANNOTATION]: 'true',
        [BRAKE_ANNOTATION]: '{"at":"2026-03-01T11:00:00.000Z","pausedBy":null}',
      }),
    );
    api.setVirtualService(
      withAnnotations(mirroredVs(NS, 'overridden', 25), {
        'state.mirror-autoscaler.io/overridden': '{"version":7}',
      }),
    );
    const noMirror = mirroredVs(NS, 'checkout', 25);
    ((noMirror.spec as JsonObject).http as JsonObject[])[0] = { name: 'primary', route: [] };
    api.setVirtualService(noMirror);
    const r = await status({ namespace: NS }, NOW);
    expect(r.code).toBe(1);
    const rows = r.stdout.split('\n');
    expect(rows.slice(1, 5).map((l) => l.replace(/^.* {2}/, ''))).toEqual([
      'error',
      'error',
      'paused (brake); no state yet',
      'state ignored',
    ]);
    expect(rows.slice(6)).toEqual([
      expect.stringMatching(/^checkout: error: VirtualService status-a\/checkout: .*checkout-shadow/),
      'ghost: error: VirtualService status-a/ghost not found',
      expect.stringMatching(
        /^held: paused: VirtualService status-a\/held: braked \(annotation mirror-autoscaler.io\/brake: /,
      ),
      'overridden: state ignored: annotation state.mirror-autoscaler.io/overridden: not a valid state of this version; the daemon ignores it and starts afresh',
      '',
    ]);
  });

  it('reports a namespace it may not list on each of its policies, and still shows the others', async () => {
    api.setRules([
      { verbs: ['*'], apiGroups: ['*'], resources: ['virtualservices'] },
      { verbs: ['get', 'list'], apiGroups: ['*'], resources: ['*'], namespaces: [NS] },
    ]);
    const r = await status({ policies: healthy }, NOW);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(
      'storefront  HTTPRoute       status-web/storefront  -        Service storefront-shadow:8080  -          -       -            error',
    );
    expect(r.stdout).toMatch(/\nstorefront: error: listing HTTPRoutes in status-web failed: .*forbidden/);
    expect(r.stdout).toMatch(/\nheld {8}VirtualService {2}status-a\/held .* paused \(annotation\)\n/);
  });

  it('reports an invalid policy file by file, line and field, and exits 1 with the others printed', async () => {
    const dir = join(tmp, 'invalid');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'storefront.yaml'), STOREFRONT_YAML);
    await writeFile(join(dir, 'bad.yaml'), policyYaml({ name: 'bad', namespace: NS, max: 150 }));
    const r = await status({ policies: dir }, NOW);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      `${join(dir, 'bad.yaml')}:16:17: spec.bounds.maxPercent: must be <= 100 (got 150)\n`,
    );
    expect(r.stdout.split('\n')[1]).toMatch(/^storefront {2}HTTPRoute /);
  });

  it('names the kubeconfig it cannot use', async () => {
    const missing = join(tmp, 'no-such-kubeconfig');
    const r = await status({ kubeconfig: missing }, NOW);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(new RegExp(`^status: .*${missing}`));
  });
});

describe('policyStatus', () => {
  const p = policy({ name: 'checkout', namespace: NS });
  const route = (init: { percent?: number; metadata?: JsonObject; state?: CoreState }): RouteObject => {
    const vs = mirroredVs(NS, 'checkout', init.percent ?? 20);
    const annotations = init.state === undefined ? {} : stateAnnotation('checkout', init.state);
    const obj = asRouteObject({
      ...vs,
      metadata: { ...(vs.metadata as JsonObject), resourceVersion: '7', annotations, ...init.metadata },
    });
    if (obj instanceof MeshError) throw obj;
    return obj;
  };

  it.each([
    {
      name: 'the last change is the newest entry of the timeline, counted back from the write',
      obj: route({ state: { ...writtenState(20, 60_000), track: [[600, 20]] } }),
      lastChangeAt: T0 - 660_000,
      cell: 'ok',
    },
    {
      name: 'no state: the daemon has not changed this route',
      obj: route({}),
      lastChangeAt: null,
      cell: 'no state yet',
    },
    {
      name: 'a Flagger Canary owns it',
      obj: route({
        state: writtenState(20, 0),
        metadata: {
          ownerReferences: [
            { apiVersion: 'flagger.app/v1beta1', kind: 'Canary', name: 'checkout', uid: 'u' },
          ],
        },
      }),
      lastChangeAt: T0,
      cell: 'paused (Flagger Canary)',
    },
    {
      name: 'an Argo Rollouts canary shifts it',
      obj: route({ state: writtenState(20, 0), metadata: { labels: { [ARGO_ROLLOUTS_CANARY_LABEL]: 'x' } } }),
      lastChangeAt: T0,
      cell: 'paused (Argo Rollouts canary)',
    },
    {
      name: 'a pause annotation that is neither true nor false',
      obj: route({
        state: writtenState(25, 0),
        metadata: { annotations: { [PAUSED_ANNOTATION]: 'yes' } },
      }),
      lastChangeAt: null,
      cell: 'paused (annotation not true/false); no state yet',
    },
    {
      name: 'a cooldown that has run out is not shown',
      obj: route({ state: writtenState(20, 0, { cooldownUntil: T0 }) }),
      lastChangeAt: T0,
      cell: 'ok',
    },
  ])('$name', ({ obj, lastChangeAt, cell }) => {
    const s = policyStatus(p, obj, T0);
    expect(s.lastChangeAt).toBe(lastChangeAt);
    expect(stateCell(s, T0)).toBe(cell);
  });
});

describe('formatAge', () => {
  it.each([
    { name: 'now', ms: 0, age: '0s' },
    { name: 'a second ahead (clock skew)', ms: -1500, age: '0s' },
    { name: 'ahead by more', ms: -2000, age: '<invalid>' },
    { name: 'seconds', ms: 45_000, age: '45s' },
    { name: 'under two minutes', ms: 119_999, age: '119s' },
    { name: 'two minutes', ms: 120_000, age: '2m' },
    { name: 'minutes and seconds', ms: 245_000, age: '4m5s' },
    { name: 'minutes', ms: 12 * MINUTE + 30_000, age: '12m' },
    { name: 'under three hours', ms: 179 * MINUTE, age: '179m' },
    { name: 'hours and minutes', ms: 3 * HOUR + 5 * MINUTE, age: '3h5m' },
    { name: 'hours', ms: 30 * HOUR + 59 * MINUTE, age: '30h' },
    { name: 'days and hours', ms: 51 * HOUR, age: '2d3h' },
    { name: 'days', ms: 12 * 24 * HOUR, age: '12d' },
    { name: 'years and days', ms: (3 * 365 + 30) * 24 * HOUR, age: '3y30d' },
    { name: 'years', ms: 9 * 365 * 24 * HOUR, age: '9y' },
  ])('$name: $age', ({ ms, age }) => {
    expect(formatAge(ms)).toBe(age);
  });
});

describe('status --help', () => {
  it('explains every column and shows examples', () => {
    const program = new Command().exitOverride();
    let help = '';
    program.configureOutput({ writeOut: (t) => (help += t), writeErr: (t) => (help += t) });
    register(program);
    expect(() => program.parse(['node', 'mirror-autoscaler', 'status', '--help'])).toThrow();
    for (const text of [
      '--policies <dir>',
      '--kubeconfig <file>',
      '--namespace <ns>',
      '-o, --output <format>',
      '(choices: "table", "json", default: "table")',
      'SAFE %       <N%: the daemon remembers a breach at N %',
      'LAST CHANGE',
      'Exit status: 0 when every policy',
      'mirror-autoscaler status -o json',
    ]) {
      expect(help).toContain(text);
    }
  });
});
