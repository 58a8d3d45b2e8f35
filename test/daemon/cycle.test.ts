/**
 * runCycle against the fake API server through the real @kubernetes/client-node, with real policies from
 * YAML, a signal source that returns chosen readings, a fixed clock and the audit log captured.
 */
import { Writable } from 'node:stream';
import { CustomObjectsApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ControllerState } from '../../src/core/decide.js';
import type { AbsentReason, SignalName } from '../../src/core/types.js';
import { createLogger } from '../../src/daemon/audit.js';
import {
  type CycleDeps,
  MAX_CONCURRENT_WRITES,
  MAX_WRITE_ATTEMPTS,
  type PolicyOutcome,
  readState,
  runCycle,
  signalRequests,
} from '../../src/daemon/cycle.js';
import { eventForOutcome } from '../../src/daemon/outcome.js';
import type { OverrideMemory } from '../../src/daemon/override.js';
import {
  KubernetesRouteStore,
  PAUSED_ANNOTATION,
  type RouteStore,
  STATE_ANNOTATION_PREFIX,
  type VirtualService,
} from '../../src/mesh/index.js';
import { formatProblem, parsePolicy } from '../../src/policy/index.js';
import type { MirrorPolicy } from '../../src/policy/types.js';
import type { SignalReading, SignalRequest, SignalSource } from '../../src/signals/index.js';
import {
  FakeApiServer,
  GRPC_ROUTES,
  HTTP_ROUTES,
  type JsonObject,
  VIRTUAL_SERVICES,
} from '../support/fake-apiserver.js';
import {
  gatewayRoute,
  gatewayRule,
  MIRROR_SHAPE_ROUTES,
  mirrorFilter,
  PRIMARY_ROUTE,
  virtualService,
} from '../support/kube-fixtures.js';

/** The fixed clock of every cycle: 2026-03-01T12:00:00Z. */
const T = Date.UTC(2026, 2, 1, 12, 0, 0);

const LIMITS = { cpuUtilization: 0.8, errorRate: 0.02, latencyP99Ms: 400 } as const;

// ------------------------------------------------------------------------------------------- policies

interface PolicyInit {
  readonly name?: string;
  readonly vsName?: string;
  readonly namespace?: string;
  /** null: no route field, every route mirroring to the target. */
  readonly route?: string | null;
  readonly host?: string;
  readonly subset?: string | null;
  readonly workload?: string;
  readonly minPercent?: number;
  readonly maxPercent?: number;
  /** Lines appended under spec (two-space indented), e.g. spec.production. */
  readonly extra?: readonly string[];
}

/** A MirrorPolicy as its YAML file says it, parsed and validated by the real loader. */
function policy(init: PolicyInit = {}): MirrorPolicy {
  const name = init.name ?? 'checkout';
  const route = init.route === undefined ? 'primary' : init.route;
  const subset = init.subset === undefined ? 'shadow' : init.subset;
  const yaml = [
    'apiVersion: mirror-autoscaler.io/v1alpha1',
    'kind: MirrorPolicy',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    '  virtualService:',
    `    name: ${init.vsName ?? 'checkout'}`,
    `    namespace: ${init.namespace ?? 'shop'}`,
    ...(route === null ? [] : [`    route: ${route}`]),
    '  target:',
    `    host: ${init.host ?? 'checkout-shadow'}`,
    ...(subset === null ? [] : [`    subset: ${subset}`]),
    `    workload: ${init.workload ?? 'checkout-shadow'}`,
    '  bounds:',
    `    minPercent: ${init.minPercent ?? 1}`,
    `    maxPercent: ${init.maxPercent ?? 100}`,
    '  guardrails:',
    `    cpuUtilization: ${LIMITS.cpuUtilization}`,
    `    errorRate: ${LIMITS.errorRate}`,
    `    latencyP99Ms: ${LIMITS.latencyP99Ms}`,
    '  interval: 30s',
    '  window: 2m',
    ...(init.extra ?? []),
    '',
  ].join('\n');
  const { policy: parsed, problems } = parsePolicy(yaml, `${name}.yaml`);
  if (parsed === undefined) throw new Error(problems.map(formatProblem).join('\n'));
  return parsed;
}

// -------------------------------------------------------------------------------------------- signals

type SignalSpec = number | AbsentReason;

/** A reading: numbers are values, strings are absent reasons; unspecified signals are comfortable values. */
function reading(spec: Partial<Record<SignalName, SignalSpec>> = {}, rps = 40): SignalReading {
  const one = (s: SignalSpec) =>
    typeof s === 'number' ? { kind: 'value' as const, value: s } : { kind: 'absent' as const, reason: s };
  return {
    signals: {
      cpuUtilization: one(spec.cpuUtilization ?? 0.2),
      errorRate: one(spec.errorRate ?? 0.002),
      latencyP99Ms: one(spec.latencyP99Ms ?? 80),
    },
    requestRate: { kind: 'value', value: rps },
  };
}

/** Well below every limit (severity 0.25 at most): room to raise. */
const HEADROOM = reading({ cpuUtilization: 0.2, errorRate: 0.002, latencyP99Ms: 100 });
/** CPU at 1.5 × its limit. */
const BREACH = reading({ cpuUtilization: 1.2 });
/** CPU at 0.9 of its limit, inside the hold band (0.8, 1]. */
const IN_BAND = reading({ cpuUtilization: 0.72 });

/** The SignalSource port, answering every request with a chosen reading; records what it was asked. */
class FixedSignals implements SignalSource {
  readonly calls: { requests: SignalRequest[]; at: Date }[] = [];

  constructor(
    private readonly answer: (key: string) => SignalReading | undefined,
    private readonly fail?: Error,
  ) {}

  async fetch(requests: readonly SignalRequest[], at: Date): Promise<Map<string, SignalReading>> {
    this.calls.push({ requests: [...requests], at });
    if (this.fail) throw this.fail;
    const out = new Map<string, SignalReading>();
    for (const r of requests) {
      const a = this.answer(r.key);
      if (a !== undefined) out.set(r.key, a);
    }
    return out;
  }
}

const fixed = (r: SignalReading): FixedSignals => new FixedSignals(() => r);

// --------------------------------------------------------------------------------------------- logger

/** A pino destination that keeps every JSON line. */
function captureLog(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      for (const line of String(chunk).split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { lines, stream };
}

// ------------------------------------------------------------------------------------- fake API server

let server: FakeApiServer;
let routes: KubernetesRouteStore;
let log: ReturnType<typeof captureLog>;

beforeEach(async () => {
  server = await FakeApiServer.start();
  routes = new KubernetesRouteStore(server.kubeConfig(), {
    requestTimeoutMs: 5000,
    // Retries keep their shape, without the real waits.
    retry: { sleep: async () => undefined },
  });
  log = captureLog();
});

afterEach(async () => {
  await server.close();
});

function deps(signals: SignalSource, states = new Map<string, ControllerState>(), now = T): CycleDeps {
  return {
    signals,
    routes,
    now: () => now,
    logger: createLogger({ level: 'debug', destination: log.stream }),
    states,
  };
}

function seed(init: Parameters<typeof virtualService>[0]): JsonObject {
  return server.setVirtualService(virtualService(init));
}

function stored(namespace = 'shop', name = 'checkout'): JsonObject {
  const obj = server.getVirtualService(namespace, name);
  if (obj === undefined) throw new Error(`${namespace}/${name} is not in the fake API server`);
  return obj;
}

function metaOf(obj: JsonObject): JsonObject {
  return obj.metadata as JsonObject;
}

function routeAt(obj: JsonObject, i = 0): JsonObject {
  const http = (obj.spec as { http: JsonObject[] }).http;
  const r = http[i];
  if (r === undefined) throw new Error(`no http[${i}]`);
  return r;
}

function annotationsOf(obj: JsonObject): Record<string, string> {
  return (metaOf(obj).annotations ?? {}) as Record<string, string>;
}

/** The object without the fields any write bumps (resourceVersion, generation). */
function withoutSystemFields(obj: JsonObject): JsonObject {
  const copy = structuredClone(obj);
  const meta = metaOf(copy);
  delete meta.resourceVersion;
  delete meta.generation;
  delete meta.managedFields;
  return copy;
}

const patches = () => server.requestsMatching({ verb: 'patch', resource: 'virtualservices' });
const vsGets = () => server.countRequests({ verb: 'get', resource: 'virtualservices' });
const vsLists = () => server.requestsMatching({ verb: 'list', resource: 'virtualservices' });

function only(outcomes: PolicyOutcome[]): PolicyOutcome {
  expect(outcomes).toHaveLength(1);
  const [o] = outcomes;
  if (o === undefined) throw new Error('no outcome');
  return o;
}

function stateOn(obj: JsonObject, policyName: string): ControllerState {
  const vs = obj as unknown as VirtualService;
  const state = readState(vs, policyName);
  if (state === undefined) throw new Error(`no valid state annotation for ${policyName}`);
  return state;
}

// ----------------------------------------------------------------------------------------------- tests

describe('signalRequests', () => {
  it('asks for the configured guardrails of each policy, keyed by policy name', () => {
    const a = policy({ name: 'a' });
    const b = policy({ name: 'b', namespace: 'pay', workload: 'pay-shadow' });
    expect(signalRequests([a, b])).toEqual([
      {
        key: 'a',
        namespace: 'shop',
        workload: 'checkout-shadow',
        windowSeconds: 120,
        guardrails: ['cpuUtilization', 'errorRate', 'latencyP99Ms'],
        queries: {},
        production: {},
      },
      {
        key: 'b',
        namespace: 'pay',
        workload: 'pay-shadow',
        windowSeconds: 120,
        guardrails: ['cpuUtilization', 'errorRate', 'latencyP99Ms'],
        queries: {},
        production: {},
      },
    ]);
  });

  it("passes the policy's signal preset on, and none when the policy names none", () => {
    const ambient: MirrorPolicy = { ...policy({ name: 'a' }), signalPreset: 'istio-ambient' };
    const [withPreset, without] = signalRequests([ambient, policy({ name: 'b' })]);
    expect(withPreset?.preset).toBe('istio-ambient');
    expect(without !== undefined && 'preset' in without).toBe(false);
  });
});

describe('runCycle writes a change', () => {
  const rows = [
    {
      name: 'headroom → increase',
      signals: HEADROOM,
      cpu: 0.2,
      action: 'increase',
      reason: 'Headroom',
      moves: (to: number) => to > 37.5,
    },
    {
      name: 'breach → decrease',
      signals: BREACH,
      cpu: 1.2,
      action: 'decrease',
      reason: 'GuardrailBreached',
      moves: (to: number) => to < 37.5,
    },
  ] as const;

  for (const row of rows) {
    it(`${row.name}: only the percentage and the state annotation change, and the change is audited`, async () => {
      const before = seed({
        http: [MIRROR_SHAPE_ROUTES.mirrorPercentage],
        labels: { app: 'checkout' },
        annotations: { owner: 'payments-team' },
      });
      const signals = fixed(row.signals);
      const d = deps(signals);
      const o = only(await runCycle([policy()], d, { dryRun: false }));

      expect(o).toMatchObject({
        policy: 'checkout',
        routeKind: 'VirtualService',
        routeId: 'shop/checkout',
        routes: ['primary'],
        currentPercent: 37.5,
        action: row.action,
        reason: row.reason,
        write: 'written',
      });
      expect(o.error).toBeUndefined();
      const to = o.proposedPercent;
      if (to === null) throw new Error('no proposed percent');
      expect(row.moves(to)).toBe(true);
      expect(to).toBeGreaterThanOrEqual(1);
      expect(to).toBeLessThanOrEqual(100);

      const after = stored();
      expect(routeAt(after).mirrorPercentage).toEqual({ value: to });
      // The rest of the object is what it was: rebuild the expectation from `before` and compare whole.
      const key = `${STATE_ANNOTATION_PREFIX}checkout`;
      const expected = withoutSystemFields(before);
      (routeAt(expected).mirrorPercentage as JsonObject).value = to;
      metaOf(expected).annotations = { owner: 'payments-team', [key]: annotationsOf(after)[key] ?? '?' };
      expect(withoutSystemFields(after)).toEqual(expected);

      const state = stateOn(after, 'checkout');
      expect(state).toEqual(d.states.get('checkout'));
      expect(state.percent).toBe(to);
      expect(state.at).toBe(T);

      expect(patches()).toHaveLength(1);
      expect(patches()[0]?.contentType).toBe('application/json-patch+json');
      expect(signals.calls.map((c) => c.at.getTime())).toEqual([T]);

      const audits = log.lines.filter((l) => l.audit === true);
      expect(audits).toHaveLength(1);
      expect(audits[0]).toMatchObject({
        level: 'info',
        policy: 'checkout',
        routeKind: 'VirtualService',
        route: 'shop/checkout',
        routes: ['primary'],
        from: 37.5,
        to,
        action: row.action,
        reason: row.reason,
        signals: {
          cpuUtilization: row.cpu,
          errorRate: 0.002,
        },
        guardrails: LIMITS,
      });
    });
  }

  it('two policies on routes of the same VirtualService both write, the second on the first one’s result', async () => {
    seed({
      http: [
        MIRROR_SHAPE_ROUTES.mirrorPercentage,
        { ...MIRROR_SHAPE_ROUTES.mirrorPercent, name: 'secondary' },
      ],
    });
    const policies = [policy({ name: 'first' }), policy({ name: 'second', route: 'secondary' })];
    const outcomes = await runCycle(policies, deps(fixed(HEADROOM)), { dryRun: false });

    expect(outcomes.map((o) => [o.policy, o.write, o.action])).toEqual([
      ['first', 'written', 'increase'],
      ['second', 'written', 'increase'],
    ]);
    expect(patches().map((p) => p.status)).toEqual([200, 200]);
    expect(vsGets()).toBe(0);
    const after = stored();
    expect(routeAt(after, 0).mirrorPercentage).toEqual({ value: outcomes[0]?.proposedPercent });
    expect(routeAt(after, 1).mirrorPercentage).toEqual({ value: outcomes[1]?.proposedPercent });
    expect(stateOn(after, 'first').percent).toBe(outcomes[0]?.proposedPercent);
    expect(stateOn(after, 'second').percent).toBe(outcomes[1]?.proposedPercent);
  });
});

describe('runCycle writes nothing', () => {
  it('hold inside the band: no PATCH request at all', async () => {
    const before = seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const d = deps(fixed(IN_BAND));
    const o = only(await runCycle([policy()], d, { dryRun: false }));

    expect(o).toMatchObject({
      currentPercent: 37.5,
      proposedPercent: 37.5,
      action: 'hold',
      reason: 'WithinTolerance',
      write: 'none',
    });
    expect(patches()).toHaveLength(0);
    expect(stored()).toEqual(before);
    // The decision's memory is kept in process for the next cycle even though nothing was written.
    expect(d.states.get('checkout')?.at).toBe(T);
    expect(log.lines.filter((l) => l.audit === true)).toHaveLength(0);
  });

  it('dry run: proposes the change, records it, sends no PATCH and keeps no state', async () => {
    const before = seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const d = deps(fixed(HEADROOM));
    const o = only(await runCycle([policy()], d, { dryRun: true }));

    expect(o).toMatchObject({
      currentPercent: 37.5,
      action: 'increase',
      reason: 'Headroom',
      write: 'recorded',
    });
    expect(o.proposedPercent).toBeGreaterThan(37.5);
    expect(patches()).toHaveLength(0);
    expect(stored()).toEqual(before);
    expect(d.states.has('checkout')).toBe(false);
    expect(log.lines.filter((l) => l.audit === true)).toHaveLength(0);

    // The same cycle for real writes exactly what the dry run proposed.
    const real = only(await runCycle([policy()], deps(fixed(HEADROOM)), { dryRun: false }));
    expect(real.proposedPercent).toBe(o.proposedPercent);
    expect(routeAt(stored()).mirrorPercentage).toEqual({ value: o.proposedPercent });
  });

  it('dry run of a hold: nothing to record', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const o = only(await runCycle([policy()], deps(fixed(IN_BAND)), { dryRun: true }));
    expect(o).toMatchObject({
      action: 'hold',
      reason: 'WithinTolerance',
      proposedPercent: 37.5,
      write: 'none',
    });
    expect(patches()).toHaveLength(0);
  });

  const pauseRows = [
    { name: 'paused: "true"', value: 'true', message: /paused/ },
    {
      name: 'invalid pause value "yes" counts as paused, with the problem',
      value: 'yes',
      message:
        /VirtualService shop\/checkout: annotation mirror-autoscaler\.io\/paused: must be "true" or "false" \(got "yes"\); treated as paused/,
    },
    { name: 'invalid pause value "1" counts as paused', value: '1', message: /got "1"\); treated as paused/ },
  ] as const;

  for (const row of pauseRows) {
    it(`${row.name}: Paused, no write even on a breach`, async () => {
      const before = seed({
        http: [MIRROR_SHAPE_ROUTES.mirrorPercentage],
        annotations: { [PAUSED_ANNOTATION]: row.value },
      });
      const d = deps(fixed(BREACH));
      const o = only(await runCycle([policy()], d, { dryRun: false }));

      expect(o).toMatchObject({
        currentPercent: 37.5,
        proposedPercent: 37.5,
        action: 'hold',
        reason: 'Paused',
        write: 'none',
      });
      expect(o.message).toMatch(row.message);
      expect(o.error).toBeUndefined();
      expect(patches()).toHaveLength(0);
      expect(stored()).toEqual(before);
    });
  }

  it('pause annotation "false" does not pause', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage], annotations: { [PAUSED_ANNOTATION]: 'false' } });
    const o = only(await runCycle([policy()], deps(fixed(BREACH)), { dryRun: false }));
    expect(o).toMatchObject({ action: 'decrease', write: 'written' });
  });
});

describe('runCycle: one broken policy never stops the others', () => {
  it('a missing VirtualService is an error outcome; the other policies are still evaluated and written', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const policies = [
      policy({ name: 'ghost', vsName: 'ghost' }),
      policy({ name: 'checkout' }),
      policy({ name: 'elsewhere', namespace: 'pay', vsName: 'gone' }),
    ];
    const outcomes = await runCycle(policies, deps(fixed(HEADROOM)), { dryRun: false });

    expect(outcomes.map((o) => o.policy)).toEqual(['ghost', 'checkout', 'elsewhere']);
    expect(outcomes[0]).toMatchObject({
      routeKind: 'VirtualService',
      routeId: 'shop/ghost',
      error: 'VirtualService shop/ghost not found',
      action: null,
      reason: null,
      currentPercent: null,
      proposedPercent: null,
      write: 'none',
    });
    expect(outcomes[2]?.error).toBe('VirtualService pay/gone not found');
    expect(outcomes[1]).toMatchObject({ action: 'increase', write: 'written' });
    expect(outcomes[1]?.error).toBeUndefined();
    // Signals of the broken policies are still reported.
    expect(outcomes[0]?.signals.cpuUtilization).toBe(0.2);
  });

  it('a route without a mirror to the target is a clear error naming the VirtualService', async () => {
    const before = seed({
      http: [
        { name: 'primary', ...PRIMARY_ROUTE, mirror: { host: 'audit-sink' }, mirrorPercentage: { value: 5 } },
      ],
    });
    const o = only(await runCycle([policy()], deps(fixed(HEADROOM)), { dryRun: false }));

    expect(o.error).toBe(
      'VirtualService shop/checkout: http[0] (name "primary"): no mirror to host "checkout-shadow" subset "shadow" (mirrors to: "audit-sink")',
    );
    expect(o).toMatchObject({ action: null, write: 'none', currentPercent: null });
    expect(patches()).toHaveLength(0);
    expect(stored()).toEqual(before);
  });

  it('a namespace whose LIST fails fails only the policies in it', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    server.injectFault({
      match: { verb: 'list', resource: 'virtualservices', namespace: 'locked' },
      action: { kind: 'status', code: 403 },
    });
    const policies = [policy({ name: 'locked', namespace: 'locked' }), policy({ name: 'checkout' })];
    const outcomes = await runCycle(policies, deps(fixed(HEADROOM)), { dryRun: false });

    expect(outcomes[0]?.error).toMatch(
      /^listing VirtualServices failed: list virtualservices\.networking\.istio\.io in namespace locked: forbidden/,
    );
    expect(outcomes[1]).toMatchObject({ policy: 'checkout', action: 'increase', write: 'written' });
    expect(outcomes[1]?.error).toBeUndefined();
  });
});

describe('runCycle: mirror shapes', () => {
  const rows = [
    {
      name: 'deprecated mirrorPercent',
      route: MIRROR_SHAPE_ROUTES.mirrorPercent,
      field: 'mirrorPercent',
      from: 20,
    },
    {
      name: 'deprecated mirror_percent',
      route: MIRROR_SHAPE_ROUTES.mirror_percent,
      field: 'mirror_percent',
      from: 30,
    },
  ] as const;

  for (const row of rows) {
    it(`${row.name} is written as mirrorPercentage, the old field removed`, async () => {
      const before = seed({ http: [row.route] });
      const o = only(await runCycle([policy()], deps(fixed(HEADROOM)), { dryRun: false }));

      expect(o).toMatchObject({ currentPercent: row.from, action: 'increase', write: 'written' });
      const after = stored();
      const route = routeAt(after);
      expect(route.mirrorPercentage).toEqual({ value: o.proposedPercent });
      expect(route).not.toHaveProperty(row.field);

      const expected = withoutSystemFields(before);
      const expectedRoute = routeAt(expected);
      delete expectedRoute[row.field];
      expectedRoute.mirrorPercentage = { value: o.proposedPercent };
      metaOf(expected).annotations = annotationsOf(after);
      expect(withoutSystemFields(after)).toEqual(expected);
    });
  }
});

describe('runCycle: concurrent edits', () => {
  it('a label added between list and patch: conflict, re-read, decide again, write; the label survives', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const edit = server.concurrentEdit({ namespace: 'shop', name: 'checkout' }, (obj) => {
      metaOf(obj).labels = { team: 'payments' };
    });
    const o = only(await runCycle([policy()], deps(fixed(HEADROOM)), { dryRun: false }));

    expect(edit.hits).toBe(1);
    expect(o).toMatchObject({ action: 'increase', write: 'written', currentPercent: 37.5 });
    expect(o.error).toBeUndefined();
    const statuses = patches().map((p) => p.status);
    expect(statuses).toHaveLength(2);
    expect([409, 422]).toContain(statuses[0]);
    expect(statuses[1]).toBe(200);
    expect(vsGets()).toBe(1);
    const after = stored();
    expect(metaOf(after).labels).toEqual({ team: 'payments' });
    expect(routeAt(after).mirrorPercentage).toEqual({ value: o.proposedPercent });
    expect(stateOn(after, 'checkout').percent).toBe(o.proposedPercent);
  });

  it('a person lowering the percentage between list and patch: the decision is made again from their value', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    server.concurrentEdit({ namespace: 'shop', name: 'checkout' }, (obj) => {
      routeAt(obj).mirrorPercentage = { value: 4 };
    });
    const o = only(await runCycle([policy()], deps(fixed(HEADROOM)), { dryRun: false }));

    expect(o).toMatchObject({ currentPercent: 4, action: 'increase', write: 'written' });
    const to = o.proposedPercent ?? Number.NaN;
    // A raise from 4 %, not the raise from 37.5 % computed before the conflict.
    expect(to).toBeGreaterThan(4);
    expect(to).toBeLessThan(37.5);
    expect(routeAt(stored()).mirrorPercentage).toEqual({ value: to });
  });

  it(`conflicts on every attempt: gives up after ${MAX_WRITE_ATTEMPTS} patches with write 'failed' and an error`, async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    let n = 0;
    server.concurrentEdit(
      { namespace: 'shop', name: 'checkout' },
      (obj) => {
        n++;
        metaOf(obj).labels = { edit: String(n) };
      },
      Number.POSITIVE_INFINITY,
    );
    const d = deps(fixed(HEADROOM));
    const o = only(await runCycle([policy()], d, { dryRun: false }));

    expect(o).toMatchObject({ action: 'increase', write: 'failed' });
    expect(o.error).toMatch(
      /^writing shop\/checkout failed: patch virtualservices\.networking\.istio\.io shop\/checkout: conflict/,
    );
    expect(patches()).toHaveLength(MAX_WRITE_ATTEMPTS);
    expect(patches().every((p) => p.status !== 200)).toBe(true);
    expect(vsGets()).toBe(MAX_WRITE_ATTEMPTS - 1);
    // Nothing was written, so the state of the change is not kept either.
    expect(d.states.has('checkout')).toBe(false);
    expect(routeAt(stored()).mirrorPercentage).toEqual({ value: 37.5 });
    expect(log.lines.filter((l) => l.audit === true)).toHaveLength(0);
    expect(
      log.lines.some((l) => l.level === 'warn' && String(l.msg).startsWith('writing shop/checkout failed')),
    ).toBe(true);
  });

  it('a failed re-read after a conflict is reported as what it was, not as a missing object', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    server.concurrentEdit({ namespace: 'shop', name: 'checkout' }, (obj) => {
      metaOf(obj).labels = { team: 'payments' };
    });
    server.injectFault({
      match: { verb: 'get', resource: 'virtualservices' },
      action: { kind: 'status', code: 500 },
      // The store retries a 500; it keeps failing here.
      times: Number.POSITIVE_INFINITY,
    });
    const o = only(await runCycle([policy()], deps(fixed(HEADROOM)), { dryRun: false }));

    expect(o.write).toBe('failed');
    expect(o.error).toMatch(
      /^re-reading shop\/checkout after a conflict failed: get virtualservices\.networking\.istio\.io shop\/checkout: request failed \(HTTP 500/,
    );
    expect(patches()).toHaveLength(1);
  });
});

describe('runCycle: state persistence', () => {
  it('after a cut, a restarted process (empty states) reads the state from the annotation and does not raise', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const cut = only(await runCycle([policy()], deps(fixed(BREACH)), { dryRun: false }));
    expect(cut).toMatchObject({ action: 'decrease', reason: 'GuardrailBreached', write: 'written' });
    const cutTo = cut.proposedPercent ?? Number.NaN;
    const persisted = stateOn(stored(), 'checkout');
    expect(persisted.breach).toMatchObject({ at: T, signal: 'cpuUtilization' });
    expect(persisted.cooldownUntil).toBeGreaterThan(T + 30_000);

    // One interval later, a fresh process: headroom everywhere, but the cut's cooldown came back with the object.
    server.clearRequests();
    const states = new Map<string, ControllerState>();
    const next = only(
      await runCycle([policy()], deps(fixed(HEADROOM), states, T + 30_000), { dryRun: false }),
    );
    expect(next).toMatchObject({ currentPercent: cutTo, action: 'hold', write: 'none' });
    expect(['Cooldown', 'Settling']).toContain(next.reason);
    expect(patches()).toHaveLength(0);
    // The safety memory came back from the annotation: the breach level and the end of the cooldown.
    expect(states.get('checkout')?.breach).toEqual(persisted.breach);
    expect(states.get('checkout')?.cooldownUntil).toBe(persisted.cooldownUntil);

    // Control: the same cycle on the same object without the annotation raises at once.
    server.mutateObject(VIRTUAL_SERVICES, 'shop', 'checkout', (obj) => {
      delete metaOf(obj).annotations;
    });
    const amnesiac = only(
      await runCycle([policy()], deps(fixed(HEADROOM), new Map(), T + 30_000), { dryRun: true }),
    );
    expect(amnesiac).toMatchObject({ currentPercent: cutTo, action: 'increase' });
  });

  const readRows = [
    { name: 'absent', annotations: {}, policyName: 'checkout', found: false },
    {
      name: 'not JSON',
      annotations: { [`${STATE_ANNOTATION_PREFIX}checkout`]: '{nope' },
      policyName: 'checkout',
      found: false,
    },
    {
      name: 'JSON of another shape',
      annotations: { [`${STATE_ANNOTATION_PREFIX}checkout`]: '{"version":99}' },
      policyName: 'checkout',
      found: false,
    },
    {
      name: 'another policy’s state',
      annotations: { [`${STATE_ANNOTATION_PREFIX}other`]: '{"version":1}' },
      policyName: 'checkout',
      found: false,
    },
  ] as const;

  for (const row of readRows) {
    it(`readState ignores a state annotation that is ${row.name}`, () => {
      const vs = virtualService({
        http: [MIRROR_SHAPE_ROUTES.mirrorPercentage],
        annotations: row.annotations,
        resourceVersion: '1',
      }) as unknown as VirtualService;
      expect(readState(vs, row.policyName) !== undefined).toBe(row.found);
    });
  }

  it('a malformed state annotation is ignored: the cycle decides as if starting fresh', async () => {
    seed({
      http: [MIRROR_SHAPE_ROUTES.mirrorPercentage],
      annotations: { [`${STATE_ANNOTATION_PREFIX}checkout`]: '{"version":1,"at":"yesterday"}' },
    });
    const o = only(await runCycle([policy()], deps(fixed(HEADROOM)), { dryRun: false }));
    expect(o).toMatchObject({ action: 'increase', write: 'written' });
    expect(stateOn(stored(), 'checkout').at).toBe(T);
  });
});

describe('runCycle: requests to the API server', () => {
  it('one LIST per namespace for many policies and no GET per policy', async () => {
    const names = { shop: ['a', 'b', 'c'], pay: ['d', 'e'] } as const;
    for (const [namespace, vsNames] of Object.entries(names)) {
      for (const name of vsNames) seed({ namespace, name, http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    }
    const policies = Object.entries(names).flatMap(([namespace, vsNames]) =>
      vsNames.map((n) => policy({ name: `p-${n}`, namespace, vsName: n })),
    );
    const signals = fixed(HEADROOM);
    const outcomes = await runCycle(policies, deps(signals), { dryRun: false });

    expect(outcomes.map((o) => o.write)).toEqual(['written', 'written', 'written', 'written', 'written']);
    expect(
      vsLists()
        .map((r) => r.namespace)
        .sort(),
    ).toEqual(['pay', 'shop']);
    expect(vsGets()).toBe(0);
    expect(patches()).toHaveLength(5);
    // One batch of signal queries for all of them.
    expect(signals.calls).toHaveLength(1);
    expect(signals.calls[0]?.requests.map((r) => r.key)).toEqual(['p-a', 'p-b', 'p-c', 'p-d', 'p-e']);
  });
});

describe('runCycle: failed signals never increase', () => {
  const rows = [
    {
      name: 'every signal QueryFailed',
      signals: fixed(
        reading({ cpuUtilization: 'QueryFailed', errorRate: 'QueryFailed', latencyP99Ms: 'QueryFailed' }),
      ),
    },
    {
      name: 'one signal QueryFailed, the others with headroom',
      signals: fixed(reading({ latencyP99Ms: 'QueryFailed' })),
    },
    {
      name: 'CPU NoTraffic (CPU needs no traffic)',
      signals: fixed(reading({ cpuUtilization: 'NoTraffic' })),
    },
    { name: 'no reading returned for the policy', signals: new FixedSignals(() => undefined) },
    {
      name: 'the signal source throws',
      signals: new FixedSignals(() => HEADROOM, new Error('prometheus exploded')),
    },
  ];

  for (const row of rows) {
    it(`${row.name}: never an increase over ten minutes of cycles`, async () => {
      seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
      const states = new Map<string, ControllerState>();
      const seen: PolicyOutcome[] = [];
      for (let i = 0; i < 20; i++) {
        seen.push(
          only(await runCycle([policy()], deps(row.signals, states, T + i * 30_000), { dryRun: false })),
        );
      }
      for (const o of seen) {
        expect(o.action).not.toBe('increase');
        expect(o.proposedPercent ?? 0).toBeLessThanOrEqual(o.currentPercent ?? 0);
      }
      expect(seen[0]).toMatchObject({ action: 'hold', reason: 'NoData', write: 'none' });
      // Blind for longer than blindHold (5 min): it decays toward minPercent.
      expect(seen.some((o) => o.reason === 'BlindDecay' && o.action === 'decrease')).toBe(true);
      expect((routeAt(stored()).mirrorPercentage as { value: number }).value).toBeLessThan(37.5);
    });
  }

  it('absent signals are reported with their reasons', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const o = only(
      await runCycle(
        [policy()],
        deps(fixed(reading({ errorRate: 'NoTraffic', latencyP99Ms: 'QueryFailed' }))),
        {
          dryRun: true,
        },
      ),
    );
    expect(o.signals).toEqual({ cpuUtilization: 0.2, errorRate: null, latencyP99Ms: null });
    expect(o.absent).toEqual({ errorRate: 'NoTraffic', latencyP99Ms: 'QueryFailed' });
  });
});

describe('concurrent writes', () => {
  /** The real store, counting PATCHes in flight at once, overall and per VirtualService. */
  function counting(inner: RouteStore) {
    const seen = { max: 0, maxSameVs: 0 };
    let now = 0;
    const perVs = new Map<string, number>();
    const store: RouteStore = {
      list: (ns, kind) => inner.list(ns, kind),
      get: (ns, name, kind) => inner.get(ns, name, kind),
      async patchPercent(vs, locations, percent, annotations) {
        const key = `${vs.metadata.namespace}/${vs.metadata.name}`;
        now += 1;
        perVs.set(key, (perVs.get(key) ?? 0) + 1);
        seen.max = Math.max(seen.max, now);
        seen.maxSameVs = Math.max(seen.maxSameVs, perVs.get(key) ?? 0);
        try {
          return await inner.patchPercent(vs, locations, percent, annotations);
        } finally {
          now -= 1;
          perVs.set(key, (perVs.get(key) ?? 1) - 1);
        }
      },
    };
    return { store, seen };
  }

  it('writes different VirtualServices several at a time, and one VirtualService one write at a time', async () => {
    const policies: MirrorPolicy[] = [];
    for (let i = 0; i < 12; i++) {
      seed({ name: `vs-${i}`, http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
      policies.push(policy({ name: `p-${i}`, vsName: `vs-${i}` }));
    }
    // Two policies on one VirtualService, on two routes.
    seed({
      name: 'shared',
      http: [
        MIRROR_SHAPE_ROUTES.mirrorPercentage,
        { ...MIRROR_SHAPE_ROUTES.mirrorPercentage, name: 'secondary', mirror: { host: 'other-shadow' } },
      ],
    });
    policies.push(policy({ name: 'shared-a', vsName: 'shared' }));
    policies.push(
      policy({ name: 'shared-b', vsName: 'shared', route: 'secondary', host: 'other-shadow', subset: null }),
    );
    server.injectFault({ match: { verb: 'patch' }, times: 100, action: { kind: 'delay', ms: 30 } });
    const { store, seen } = counting(routes);
    const outcomes = await runCycle(policies, { ...deps(fixed(HEADROOM)), routes: store }, { dryRun: false });
    expect(outcomes.map((o) => o.policy)).toEqual(policies.map((p) => p.name));
    expect(outcomes.every((o) => o.write === 'written')).toBe(true);
    expect(seen.max).toBe(MAX_CONCURRENT_WRITES);
    expect(seen.maxSameVs).toBe(1);
  });
});

describe('runCycle feeds the production rate and the observation timing to the decision', () => {
  const weighted = (hosts: readonly (readonly [string, number])[]) => ({
    ...MIRROR_SHAPE_ROUTES.mirrorPercentage,
    route: hosts.map(([host, weight]) => ({ destination: { host }, weight })),
  });
  const withProduction = (rps: number | AbsentReason, scrape?: SignalReading['scrapeInterval']) => ({
    ...HEADROOM,
    productionRate:
      typeof rps === 'number'
        ? { kind: 'value' as const, value: rps }
        : { kind: 'absent' as const, reason: rps },
    ...(scrape !== undefined && { scrapeInterval: scrape }),
  });

  it("asks for the managed route's heaviest destination, listed before the signals are read", async () => {
    seed({
      http: [
        { ...MIRROR_SHAPE_ROUTES.mirrorPercent, name: 'other', route: [{ destination: { host: 'other' } }] },
        weighted([
          ['checkout-canary', 10],
          ['checkout.shop.svc.cluster.local', 90],
        ]),
      ],
    });
    let listsBeforeFetch = -1;
    const signals = new FixedSignals(() => {
      listsBeforeFetch = vsLists().length;
      return withProduction(400);
    });
    await runCycle([policy()], deps(signals), { dryRun: true });
    expect(listsBeforeFetch).toBe(1);
    expect(signals.calls[0]?.requests[0]?.production).toEqual({
      service: { namespace: 'shop', name: 'checkout' },
    });
  });

  it('a short host resolves in the VirtualService namespace; ties go to the first destination', async () => {
    seed({
      http: [
        weighted([
          ['checkout-blue', 50],
          ['checkout-green.web', 50],
        ]),
      ],
    });
    const signals = fixed(withProduction(400));
    await runCycle([policy()], deps(signals), { dryRun: true });
    expect(signals.calls[0]?.requests[0]?.production).toEqual({
      service: { namespace: 'shop', name: 'checkout-blue' },
    });
  });

  it('spec.production and the productionRate override win over the route', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const query =
      'sum(rate(istio_requests_total{destination_service_name="{{service}}",destination_service_namespace="{{serviceNamespace}}"}[{{window}}]))';
    const p = policy({
      extra: [
        '  production:',
        '    service: payments-api',
        '    namespace: billing',
        '  queries:',
        `    productionRate: '${query}'`,
        '  observation:',
        '    scrapeInterval: 20s',
      ],
    });
    const signals = fixed(withProduction(400, { seconds: 30, source: 'learned' }));
    const o = only(await runCycle([p], deps(signals), { dryRun: true }));
    expect(signals.calls[0]?.requests[0]).toMatchObject({
      scrapeIntervalSeconds: 20,
      production: { service: { namespace: 'billing', name: 'payments-api' }, query },
    });
    // The policy's interval wins over the learned one.
    expect(o.scrapeInterval).toEqual({ seconds: 20, source: 'policy' });
  });

  it('with a production rate the decision feeds forward, and the audit line says so', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const o = only(
      await runCycle([policy()], deps(fixed(withProduction(400, { seconds: 30, source: 'learned' }))), {
        dryRun: false,
      }),
    );
    expect(o).toMatchObject({
      write: 'written',
      mode: 'FeedForward',
      productionRps: 400,
      scrapeInterval: { seconds: 30, source: 'learned' },
    });
    const audits = log.lines.filter((l) => l.audit === true);
    expect(audits).toHaveLength(1);
    expect(audits[0]).toMatchObject({
      mode: 'FeedForward',
      productionRps: 400,
      scrapeIntervalSeconds: 30,
      scrapeIntervalSource: 'learned',
    });
  });

  it('a missing production rate falls back to feedback and fails nothing', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const o = only(await runCycle([policy()], deps(fixed(withProduction('QueryFailed'))), { dryRun: false }));
    expect(o.error).toBeUndefined();
    expect(o).toMatchObject({
      write: 'written',
      action: 'increase',
      mode: 'FeedbackOnly',
      productionRps: null,
      productionAbsent: 'QueryFailed',
      // A source that reports no interval: the default.
      scrapeInterval: { seconds: 15, source: 'default' },
    });
    expect(log.lines.find((l) => l.audit === true)).toMatchObject({
      mode: 'FeedbackOnly',
      productionRps: null,
      scrapeIntervalSeconds: 15,
      scrapeIntervalSource: 'default',
    });
  });

  it('a VirtualService that is missing leaves the production service unknown, not an error of its own', async () => {
    const signals = fixed(HEADROOM);
    const o = only(await runCycle([policy()], deps(signals), { dryRun: true }));
    expect(signals.calls[0]?.requests[0]?.production).toEqual({});
    expect(o.error).toBe('VirtualService shop/checkout not found');
    expect(o.mode).toBeNull();
  });
});

// ------------------------------------------------------------------------------------ Gateway API routes

/** A policy on an HTTPRoute or GRPCRoute, parsed by the real loader. */
function gatewayPolicy(
  kind: 'httpRoute' | 'grpcRoute',
  rule?: string | number,
  name = 'storefront',
): MirrorPolicy {
  const yaml = [
    'apiVersion: mirror-autoscaler.io/v1alpha1',
    'kind: MirrorPolicy',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    `  ${kind}:`,
    '    name: checkout',
    '    namespace: shop',
    ...(rule === undefined ? [] : [`    rule: ${rule}`]),
    '  target:',
    '    backendRef:',
    '      name: checkout-shadow',
    '    workload: checkout-shadow',
    '  bounds: { minPercent: 1, maxPercent: 60 }',
    `  guardrails: { cpuUtilization: ${LIMITS.cpuUtilization}, latencyP99Ms: ${LIMITS.latencyP99Ms} }`,
    '',
  ].join('\n');
  const { policy: parsed, problems } = parsePolicy(yaml, `${name}.yaml`);
  if (parsed === undefined) throw new Error(problems.map(formatProblem).join('\n'));
  return parsed;
}

describe('runCycle on Gateway API routes', () => {
  const rules = (percent: number): JsonObject[] => [
    gatewayRule([], { name: 'health', matches: [{ path: { type: 'Exact', value: '/healthz' } }] }),
    gatewayRule([mirrorFilter('checkout-shadow', { percent })], {
      name: 'browse',
      backendRefs: [
        { name: 'checkout', port: 8080, weight: 9 },
        { name: 'checkout-canary', port: 8080, weight: 1 },
      ],
    }),
  ];

  it('an HTTPRoute: raises the filter, audits the route kind, and reads production from the heaviest backend', async () => {
    server.setRoute(HTTP_ROUTES, gatewayRoute({ rules: rules(20) }));
    const signals = fixed(HEADROOM);
    const o = only(await runCycle([gatewayPolicy('httpRoute', 'browse')], deps(signals), { dryRun: false }));
    expect(o).toMatchObject({
      policy: 'storefront',
      routeKind: 'HTTPRoute',
      routeId: 'shop/checkout',
      routes: ['browse'],
      currentPercent: 20,
      action: 'increase',
      write: 'written',
    });
    const stored = server.getRoute(HTTP_ROUTES, 'shop', 'checkout') as JsonObject;
    const spec = stored.spec as { rules: { filters?: { requestMirror: JsonObject }[] }[] };
    const mirror = spec.rules[1]?.filters?.[0]?.requestMirror as JsonObject;
    const written = o.proposedPercent as number;
    expect(written).toBeGreaterThan(20);
    // Whole percentages stay in `percent`; finer ones go to `fraction`: either way the API accepted it.
    const value =
      mirror.percent !== undefined
        ? (mirror.percent as number)
        : (((mirror.fraction as JsonObject).numerator as number) /
            ((mirror.fraction as JsonObject).denominator as number)) *
          100;
    expect(value).toBeCloseTo(written, 6);
    expect(Object.keys((stored.metadata as JsonObject).annotations as JsonObject)).toEqual([
      'state.mirror-autoscaler.io/storefront',
    ]);
    // The default production service is the rule's heaviest backend.
    expect(signals.calls[0]?.requests[0]?.production).toEqual({
      service: { namespace: 'shop', name: 'checkout' },
    });
    const audit = log.lines.find((l) => l.audit === true);
    expect(audit).toMatchObject({
      policy: 'storefront',
      routeKind: 'HTTPRoute',
      route: 'shop/checkout',
      routes: ['browse'],
    });
  });

  it('a GRPCRoute by rule index: a breach cuts the filter', async () => {
    server.setRoute(
      GRPC_ROUTES,
      gatewayRoute({
        kind: 'GRPCRoute',
        rules: [
          {
            matches: [{ method: { service: 'shop.Checkout' } }],
            backendRefs: [{ name: 'checkout', port: 9000 }],
            filters: [mirrorFilter('checkout-shadow', { fraction: { numerator: 30 } })],
          },
        ],
      }),
    );
    const o = only(await runCycle([gatewayPolicy('grpcRoute', 0)], deps(fixed(BREACH)), { dryRun: false }));
    expect(o).toMatchObject({
      routeKind: 'GRPCRoute',
      routes: ['rules[0]'],
      currentPercent: 30,
      action: 'decrease',
    });
    const stored = server.getRoute(GRPC_ROUTES, 'shop', 'checkout') as JsonObject;
    const spec = stored.spec as { rules: { filters: { requestMirror: JsonObject }[] }[] };
    const fraction = spec.rules[0]?.filters[0]?.requestMirror.fraction as {
      numerator: number;
      denominator: number;
    };
    expect((fraction.numerator / fraction.denominator) * 100).toBeCloseTo(o.proposedPercent as number, 6);
    expect(fraction.numerator / fraction.denominator).toBeLessThan(0.3);
  });

  it('two rules mirror to the target and the policy names none: an error, nothing written', async () => {
    server.setRoute(
      HTTP_ROUTES,
      gatewayRoute({
        rules: [
          gatewayRule([mirrorFilter('checkout-shadow', { percent: 10 })]),
          gatewayRule([mirrorFilter('checkout-shadow', { percent: 10 })], {
            matches: [{ path: { type: 'PathPrefix', value: '/api' } }],
          }),
        ],
      }),
    );
    const before = server.getRoute(HTTP_ROUTES, 'shop', 'checkout');
    const o = only(await runCycle([gatewayPolicy('httpRoute')], deps(fixed(BREACH)), { dryRun: false }));
    expect(o.error).toMatch(
      /^HTTPRoute shop\/checkout: 2 RequestMirror filters mirror to Service checkout-shadow/,
    );
    expect(o.write).toBe('none');
    expect(server.getRoute(HTTP_ROUTES, 'shop', 'checkout')).toEqual(before);
  });

  it('a missing HTTPRoute, and a cluster without the Gateway API, fail only their policy', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const outcomes = await runCycle(
      [gatewayPolicy('httpRoute', 'browse', 'ghost'), policy()],
      deps(fixed(HEADROOM)),
      {
        dryRun: false,
      },
    );
    expect(outcomes[0]?.error).toBe('HTTPRoute shop/checkout not found');
    expect(outcomes[1]).toMatchObject({ routeKind: 'VirtualService', write: 'written' });
  });

  it('without the Gateway API installed the listing error names the kind', async () => {
    await server.close();
    server = await FakeApiServer.start({ gatewayApi: false });
    routes = new KubernetesRouteStore(server.kubeConfig(), { requestTimeoutMs: 5000 });
    const o = only(await runCycle([gatewayPolicy('httpRoute')], deps(fixed(HEADROOM)), { dryRun: false }));
    expect(o.error).toBe(
      'listing HTTPRoutes failed: the API server serves no gateway.networking.k8s.io version this tool supports for HTTPRoute (v1, v1beta1); served: none (are the Gateway API CRDs installed?)',
    );
  });
});

// --------------------------------------------------------------------------- someone else changes it back

describe('runCycle when someone else changes back the percentage it wrote', () => {
  /** Sets the mirror percentage as another controller would: a merge patch under its own field manager. */
  async function otherWrites(percent: number, fieldManager: string): Promise<void> {
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const vs = server.getVirtualService('shop', 'checkout') as { spec: { http: JsonObject[] } };
    const http = structuredClone(vs.spec.http);
    (http[0] as JsonObject).mirrorPercentage = { value: percent };
    await api.patchNamespacedCustomObject(
      {
        group: 'networking.istio.io',
        version: 'v1',
        namespace: 'shop',
        plural: 'virtualservices',
        name: 'checkout',
        body: { spec: { http } },
        fieldManager,
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  const percentNow = () =>
    (
      (
        server.getVirtualService('shop', 'checkout') as {
          spec: { http: { mirrorPercentage: { value: number } }[] };
        }
      ).spec.http[0] as { mirrorPercentage: { value: number } }
    ).mirrorPercentage.value;

  it('backs off, doubling while the fight goes on, names the manager, and still cuts for a breach', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const states = new Map<string, ControllerState>();
    const overrides = new Map<string, OverrideMemory>();
    const at = (t: number, r: SignalReading) => ({ ...deps(fixed(r), states, t), overrides });
    const first = only(await runCycle([policy()], at(T, HEADROOM), { dryRun: false }));
    expect(first).toMatchObject({ action: 'increase', write: 'written' });
    const ours = first.proposedPercent as number;

    // A GitOps sync puts the manifest's value back.
    await otherWrites(37.5, 'argocd-controller');
    const patches = () => server.countRequests({ verb: 'patch', resource: 'virtualservices' });
    const before = patches();
    const noticed = only(await runCycle([policy()], at(T + 30_000, HEADROOM), { dryRun: false }));
    expect(noticed).toMatchObject({
      action: 'hold',
      reason: 'Overridden',
      write: 'none',
      override: {
        manager: 'argocd-controller',
        found: 37.5,
        ours,
        count: 1,
        fresh: true,
        until: T + 30_000 + 300_000,
      },
    });
    expect(noticed.message).toBe(
      `the percentage this controller left (${ours}) was changed to 37.5 by argocd-controller (1 in a row): not writing this route until ${new Date(T + 330_000).toISOString()} (back-off 300s); a cut for a breach still goes through`,
    );
    expect(eventForOutcome(noticed)).toMatchObject({ type: 'Warning', reason: 'Overridden' });
    // Still backing off: the same override is not counted again, and nothing is written.
    const again = only(await runCycle([policy()], at(T + 60_000, HEADROOM), { dryRun: false }));
    expect(again).toMatchObject({ reason: 'Overridden', override: { count: 1, fresh: false } });
    expect(eventForOutcome(again)).toBeUndefined();
    expect(patches()).toBe(before);
    expect(percentNow()).toBe(37.5);

    // After the back-off it manages the route again (once the value it found has settled in the window);
    // the sync puts its value back once more: a back-off twice as long.
    let t = T + 331_000;
    let resumed = only(await runCycle([policy()], at(t, HEADROOM), { dryRun: false }));
    expect(resumed.reason).not.toBe('Overridden');
    for (let i = 0; i < 10 && resumed.write !== 'written'; i++) {
      t += 30_000;
      resumed = only(await runCycle([policy()], at(t, HEADROOM), { dryRun: false }));
    }
    expect(resumed).toMatchObject({ action: 'increase', write: 'written' });
    await otherWrites(37.5, 'argocd-controller');
    const second = only(await runCycle([policy()], at(t + 30_000, HEADROOM), { dryRun: false }));
    expect(second).toMatchObject({
      reason: 'Overridden',
      override: { count: 2, fresh: true, until: t + 30_000 + 600_000 },
    });

    // A breach while backing off: the cut goes through.
    const cut = only(await runCycle([policy()], at(t + 60_000, BREACH), { dryRun: false }));
    expect(cut).toMatchObject({ action: 'decrease', reason: 'GuardrailBreached', write: 'written' });
    expect(percentNow()).toBeLessThan(37.5);
  });

  it("a change by this controller's own field manager (the brake, another replica) is no fight", async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const states = new Map<string, ControllerState>();
    const overrides = new Map<string, OverrideMemory>();
    await runCycle([policy()], { ...deps(fixed(HEADROOM), states, T), overrides }, { dryRun: false });
    await otherWrites(5, 'mirror-autoscaler');
    const o = only(
      await runCycle(
        [policy()],
        { ...deps(fixed(HEADROOM), states, T + 30_000), overrides },
        { dryRun: false },
      ),
    );
    expect(o.reason).not.toBe('Overridden');
    expect(o.override).toBeUndefined();
    expect(overrides.size).toBe(0);
  });

  it('a change whose manager managedFields do not name is reported as unknown', async () => {
    seed({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] });
    const states = new Map<string, ControllerState>();
    const overrides = new Map<string, OverrideMemory>();
    await runCycle([policy()], { ...deps(fixed(HEADROOM), states, T), overrides }, { dryRun: false });
    // Written straight into the store, as by a tool that leaves managedFields as they were: stripped here.
    const vs = server.getVirtualService('shop', 'checkout') as JsonObject & { spec: { http: JsonObject[] } };
    (vs.spec.http[0] as JsonObject).mirrorPercentage = { value: 20 };
    delete (vs.metadata as JsonObject).managedFields;
    server.setVirtualService(vs);
    const o = only(
      await runCycle(
        [policy()],
        { ...deps(fixed(HEADROOM), states, T + 30_000), overrides },
        { dryRun: false },
      ),
    );
    expect(o.override).toMatchObject({ manager: 'unknown', found: 20 });
  });
});
