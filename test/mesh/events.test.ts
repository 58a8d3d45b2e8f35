/**
 * EventRecorder through the real @kubernetes/client-node against the fake API server (core v1 Events),
 * and eventForOutcome over plain PolicyOutcome objects.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { PolicyOutcome } from '../../src/daemon/cycle.js';
import { classifyOutcome, eventForOutcome, type OutcomeKind } from '../../src/daemon/outcome.js';
import { ApiError, ForbiddenError, TransportError } from '../../src/mesh/errors.js';
import {
  EVENT_COMPONENT,
  type EventLogger,
  EventRecorder,
  type EventRecorderOptions,
  type EventSpec,
  eventName,
  truncateUtf8,
} from '../../src/mesh/events.js';
import { asRouteObject, asVirtualService, MeshError, type VirtualService } from '../../src/mesh/index.js';
import {
  EVENTS,
  FakeApiServer,
  HTTP_ROUTES,
  type JsonObject,
  type RequestRecord,
} from '../support/fake-apiserver.js';
import {
  gatewayRoute,
  gatewayRule,
  MIRROR_SHAPE_ROUTES,
  mirrorFilter,
  virtualService,
} from '../support/kube-fixtures.js';

const T = Date.UTC(2026, 2, 1, 12, 0, 0);
const MINUTE = 60_000;

const servers: FakeApiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

interface LogLine {
  readonly level: 'debug' | 'warn';
  readonly obj: object;
  readonly msg: string;
}

interface Setup {
  readonly server: FakeApiServer;
  readonly recorder: EventRecorder;
  readonly vs: VirtualService;
  readonly clock: { now: number };
  readonly logs: LogLine[];
  readonly apiErrors: Error[];
}

async function setup(options: Partial<EventRecorderOptions> = {}): Promise<Setup> {
  const server = await FakeApiServer.start();
  servers.push(server);
  const stored = server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
  const vs = asVirtualService(stored);
  if (vs instanceof MeshError) throw vs;
  const clock = { now: T };
  const logs: LogLine[] = [];
  const apiErrors: Error[] = [];
  const logger: EventLogger = {
    debug: (obj, msg) => logs.push({ level: 'debug', obj, msg }),
    warn: (obj, msg) => logs.push({ level: 'warn', obj, msg }),
  };
  const recorder = new EventRecorder(server.kubeConfig(), {
    instance: 'mirror-autoscaler-7d9f-abcde',
    now: () => clock.now,
    logger,
    onApiError: (err) => apiErrors.push(err),
    ...options,
  });
  return { server, recorder, vs, clock, logs, apiErrors };
}

function events(server: FakeApiServer): JsonObject[] {
  return server.listObjects(EVENTS, 'shop');
}

function eventRequests(server: FakeApiServer, verb: 'create' | 'patch'): RequestRecord[] {
  return server.requestsMatching({ resource: 'events', verb });
}

const PAUSED: EventSpec = {
  type: 'Warning',
  reason: 'Paused',
  message: 'policy checkout: not changing the mirror percentage: automation paused',
};

/**
 * The checks kube-apiserver makes on a core/v1 Event that carries eventTime (legacyValidateEvent in
 * pkg/apis/core/validation/events.go); the fake does not make them, so the wire body is checked here.
 */
function apiServerProblems(body: JsonObject): string[] {
  const problems: string[] = [];
  const str = (v: unknown) => (typeof v === 'string' ? v : '');
  const meta = body.metadata as JsonObject;
  const involved = body.involvedObject as JsonObject;
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/.test(str(body.eventTime)))
    problems.push(`eventTime: not RFC3339Micro (${JSON.stringify(body.eventTime)})`);
  if (!/^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/.test(str(body.reportingComponent)))
    problems.push('reportingComponent: not a qualified name');
  const instance = str(body.reportingInstance);
  if (instance === '' || instance.length > 128) problems.push('reportingInstance: required, at most 128');
  const action = str(body.action);
  if (action === '' || action.length > 128) problems.push('action: required, at most 128');
  const reason = str(body.reason);
  if (reason === '' || reason.length > 128) problems.push('reason: required, at most 128');
  if (Buffer.byteLength(str(body.message), 'utf8') > 1024) problems.push('message: longer than 1024 bytes');
  if (str(meta.namespace) !== '' && str(meta.namespace) !== str(involved.namespace))
    problems.push('involvedObject.namespace does not match the Event namespace');
  const name = str(meta.name);
  if (name.length > 253 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name))
    problems.push(`metadata.name: not a DNS subdomain (${name})`);
  return problems;
}

describe('EventRecorder.record', () => {
  it('creates a core v1 Event on the VirtualService that kubectl describe finds', async () => {
    const { server, recorder, vs } = await setup();
    const spec: EventSpec = {
      type: 'Normal',
      reason: 'MirrorPercentChanged',
      message:
        'policy checkout: mirror percentage 10% -> 15% (increase, Headroom): every guardrail has headroom',
    };
    expect(await recorder.record(vs, spec)).toBe('created');
    const [event, ...more] = events(server);
    expect(more).toEqual([]);
    expect(event).toMatchObject({
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { namespace: 'shop', name: `checkout.${(BigInt(T) * 1_000_000n).toString(16)}` },
      involvedObject: {
        apiVersion: 'networking.istio.io/v1',
        kind: 'VirtualService',
        namespace: 'shop',
        name: 'checkout',
        uid: vs.metadata.uid as string,
        resourceVersion: vs.metadata.resourceVersion,
      },
      type: 'Normal',
      reason: 'MirrorPercentChanged',
      message: spec.message,
      action: 'SetMirrorPercent',
      source: { component: EVENT_COMPONENT, host: 'mirror-autoscaler-7d9f-abcde' },
      reportingComponent: 'mirror-autoscaler',
      reportingInstance: 'mirror-autoscaler-7d9f-abcde',
      firstTimestamp: '2026-03-01T12:00:00.000Z',
      lastTimestamp: '2026-03-01T12:00:00.000Z',
      eventTime: '2026-03-01T12:00:00.000000Z',
      count: 1,
    });
    expect(typeof vs.metadata.uid).toBe('string');
    const [create] = eventRequests(server, 'create');
    expect(create?.path).toBe('/api/v1/namespaces/shop/events');
    expect(apiServerProblems(JSON.parse(create?.body ?? '{}') as JsonObject)).toEqual([]);
  });

  it('the wire check catches what the API server would refuse, so the test above can fail', () => {
    expect(
      apiServerProblems({
        metadata: { name: 'checkout.1', namespace: 'other' },
        involvedObject: { namespace: 'shop' },
        eventTime: '2026-03-01T12:00:00.000Z',
        reason: 'Paused',
        message: 'x'.repeat(1025),
      }),
    ).toEqual([
      'eventTime: not RFC3339Micro ("2026-03-01T12:00:00.000Z")',
      'reportingComponent: not a qualified name',
      'reportingInstance: required, at most 128',
      'action: required, at most 128',
      'message: longer than 1024 bytes',
      'involvedObject.namespace does not match the Event namespace',
    ]);
  });

  it('counts a repeat within 10 minutes on the existing Event with a merge patch', async () => {
    const { server, recorder, vs, clock } = await setup();
    expect(await recorder.record(vs, PAUSED)).toBe('created');
    clock.now = T + 30_000;
    expect(await recorder.record(vs, PAUSED)).toBe('updated');
    clock.now = T + 9 * MINUTE;
    expect(await recorder.record(vs, PAUSED)).toBe('updated');
    const all = events(server);
    expect(all).toHaveLength(1);
    expect(all[0]).toMatchObject({
      count: 3,
      firstTimestamp: '2026-03-01T12:00:00.000Z',
      lastTimestamp: '2026-03-01T12:09:00.000Z',
      message: PAUSED.message,
    });
    const patches = eventRequests(server, 'patch');
    expect(patches.map((p) => [p.contentType, JSON.parse(p.body)])).toEqual([
      ['application/merge-patch+json', { count: 2, lastTimestamp: '2026-03-01T12:00:30.000Z' }],
      ['application/merge-patch+json', { count: 3, lastTimestamp: '2026-03-01T12:09:00.000Z' }],
    ]);
  });

  it('measures the window from the last occurrence and starts a new Event after it', async () => {
    const { server, recorder, vs, clock } = await setup();
    await recorder.record(vs, PAUSED);
    clock.now = T + 8 * MINUTE;
    expect(await recorder.record(vs, PAUSED)).toBe('updated');
    clock.now = T + 17 * MINUTE; // 9 minutes after the last one: still the same Event
    expect(await recorder.record(vs, PAUSED)).toBe('updated');
    clock.now = T + 27 * MINUTE + 1; // more than 10 minutes of quiet
    expect(await recorder.record(vs, PAUSED)).toBe('created');
    expect(events(server).map((e) => e.count)).toEqual([3, 1]);
  });

  const distinct: { name: string; second: (vs: VirtualService) => [VirtualService, EventSpec] }[] = [
    { name: 'another message', second: (vs) => [vs, { ...PAUSED, message: `${PAUSED.message}!` }] },
    { name: 'another reason', second: (vs) => [vs, { ...PAUSED, reason: 'NoMirror' }] },
    { name: 'another type', second: (vs) => [vs, { ...PAUSED, type: 'Normal' }] },
    {
      name: 'another object',
      second: (vs) => [{ ...vs, metadata: { ...vs.metadata, name: 'cart', uid: 'other-uid' } }, PAUSED],
    },
  ];
  it.each(distinct)('does not merge $name into the same Event', async ({ second }) => {
    const { server, recorder, vs } = await setup();
    expect(await recorder.record(vs, PAUSED)).toBe('created');
    const [subject, spec] = second(vs);
    expect(await recorder.record(subject, spec)).toBe('created');
    expect(events(server).map((e) => e.count)).toEqual([1, 1]);
  });

  it('creates a new Event when the counted one was deleted (expired by the API server)', async () => {
    const { server, recorder, vs, clock } = await setup();
    await recorder.record(vs, PAUSED);
    const name = (events(server)[0]?.metadata as JsonObject | undefined)?.name as string;
    expect(server.deleteObject(EVENTS, 'shop', name)).toBe(true);
    clock.now = T + MINUTE;
    expect(await recorder.record(vs, PAUSED)).toBe('created');
    expect(events(server).map((e) => [e.count, e.firstTimestamp])).toEqual([[1, '2026-03-01T12:01:00.000Z']]);
  });

  it('serialises concurrent records of the same Event: one create, then counts', async () => {
    const { server, recorder, vs } = await setup();
    const results = await Promise.all([1, 2, 3, 4].map(() => recorder.record(vs, PAUSED)));
    expect(results).toEqual(['created', 'updated', 'updated', 'updated']);
    expect(events(server).map((e) => e.count)).toEqual([4]);
  });

  it('gives Events recorded in the same millisecond distinct names', async () => {
    const { server, recorder, vs } = await setup();
    await Promise.all([
      recorder.record(vs, PAUSED),
      recorder.record(vs, { ...PAUSED, reason: 'NoMirror' }),
      recorder.record(vs, { ...PAUSED, reason: 'WriteFailed' }),
    ]);
    const names = events(server).map((e) => (e.metadata as JsonObject).name);
    expect(new Set(names).size).toBe(3);
  });

  it('truncates a long message to 1 KiB of UTF-8', async () => {
    const { server, recorder, vs } = await setup();
    await recorder.record(vs, { ...PAUSED, message: `policy checkout: ${'é'.repeat(2000)}` });
    const message = events(server)[0]?.message as string;
    expect(Buffer.byteLength(message, 'utf8')).toBeLessThanOrEqual(1024);
    expect(Buffer.byteLength(message, 'utf8')).toBeGreaterThan(1000);
    expect(message.startsWith('policy checkout: éé')).toBe(true);
    expect(message.endsWith('é...')).toBe(true);
  });

  const faults: { name: string; code: number; type: new (...args: never[]) => Error; text: string }[] = [
    {
      name: '500',
      code: 500,
      type: ApiError,
      text: 'create events shop/checkout.',
    },
    {
      name: '403',
      code: 403,
      type: ForbiddenError,
      text: 'forbidden: missing RBAC permission "create" on events in namespace "shop"',
    },
  ];
  it.each(faults)('a $name on create is logged and reported, never thrown', async ({ code, type, text }) => {
    const { server, recorder, vs, logs, apiErrors } = await setup();
    server.injectFault({ match: { resource: 'events', verb: 'create' }, action: { kind: 'status', code } });
    expect(await recorder.record(vs, PAUSED)).toBe('failed');
    expect(events(server)).toEqual([]);
    expect(apiErrors).toHaveLength(1);
    expect(apiErrors[0]).toBeInstanceOf(type);
    expect((apiErrors[0] as ApiError).code).toBe(code);
    const warn = logs.filter((l) => l.level === 'warn');
    expect(warn).toHaveLength(1);
    expect(warn[0]?.msg).toContain('recording event Paused failed: ');
    expect(warn[0]?.msg).toContain(text);
    expect(warn[0]?.obj).toMatchObject({ virtualService: 'shop/checkout', reason: 'Paused' });
    // Nothing was cached from the failure: the next record creates the Event.
    expect(await recorder.record(vs, PAUSED)).toBe('created');
    expect(events(server).map((e) => e.count)).toEqual([1]);
  });

  it('a failed count is logged, and the next repeat counts on the same Event', async () => {
    const { server, recorder, vs, clock, apiErrors } = await setup();
    await recorder.record(vs, PAUSED);
    server.injectFault({
      match: { resource: 'events', verb: 'patch' },
      action: { kind: 'status', code: 500 },
    });
    clock.now = T + MINUTE;
    expect(await recorder.record(vs, PAUSED)).toBe('failed');
    expect(apiErrors.map((e) => e.name)).toEqual(['ApiError']);
    clock.now = T + 2 * MINUTE;
    expect(await recorder.record(vs, PAUSED)).toBe('updated');
    expect(events(server).map((e) => [e.count, e.lastTimestamp])).toEqual([[2, '2026-03-01T12:02:00.000Z']]);
  });

  it('an API server that does not answer costs at most the request timeout', async () => {
    const { server, recorder, vs, apiErrors } = await setup({ requestTimeoutMs: 200 });
    server.injectFault({ match: { resource: 'events' }, action: { kind: 'hang' } });
    expect(await recorder.record(vs, PAUSED)).toBe('failed');
    expect(apiErrors[0]).toBeInstanceOf(TransportError);
  });

  it('an unreachable API server is logged, never thrown', async () => {
    const { server, recorder, vs, logs } = await setup();
    await server.close();
    expect(await recorder.record(vs, PAUSED)).toBe('failed');
    expect(logs.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual([
      expect.stringContaining('no response from the API server'),
    ]);
  });

  it('a throwing onApiError observer does not make record reject', async () => {
    const { server, recorder, vs } = await setup({
      onApiError: () => {
        throw new Error('observer bug');
      },
    });
    server.injectFault({ match: { resource: 'events' }, action: { kind: 'status', code: 500 } });
    expect(await recorder.record(vs, PAUSED)).toBe('failed');
  });
});

describe('truncateUtf8 and eventName', () => {
  const rows = [
    { name: 'short text unchanged', text: 'abc', max: 10, want: 'abc' },
    { name: 'exactly at the limit', text: 'abcdefghij', max: 10, want: 'abcdefghij' },
    { name: 'cut with an ellipsis', text: 'abcdefghijk', max: 10, want: 'abcdefg...' },
    { name: 'never splits a character', text: 'aéééé', max: 8, want: 'aéé...' },
  ];
  it.each(rows)('$name', ({ text, max, want }) => {
    const out = truncateUtf8(text, max);
    expect(out).toBe(want);
    expect(Buffer.byteLength(out)).toBeLessThanOrEqual(max);
  });

  it('names Events like client-go and keeps them within 253 characters', () => {
    expect(eventName('checkout', 0x1234abcn)).toBe('checkout.1234abc');
    const long = eventName('a'.repeat(253), BigInt(T) * 1_000_000n);
    expect(long).toHaveLength(253);
    expect(long.endsWith(`.${(BigInt(T) * 1_000_000n).toString(16)}`)).toBe(true);
  });
});

// ------------------------------------------------------------------------------------------- outcomes

function outcome(over: Partial<PolicyOutcome> = {}): PolicyOutcome {
  return {
    policy: 'checkout',
    routeKind: 'VirtualService',
    routeId: 'shop/checkout',
    routes: ['primary'],
    currentPercent: 10,
    proposedPercent: 15,
    action: 'increase',
    reason: 'Headroom',
    message: 'every guardrail has headroom',
    signals: { cpuUtilization: 0.42, errorRate: null, latencyP99Ms: null },
    absent: {},
    guardrails: { cpuUtilization: 0.8 },
    write: 'written',
    ...over,
  };
}

const CONFLICT =
  'writing shop/checkout failed: patch virtualservices.networking.istio.io shop/checkout: conflict: the object changed since it was read (HTTP 409 Conflict)';
const NO_MIRROR =
  'VirtualService shop/checkout: no http route mirrors to host "checkout-shadow" subset "shadow" (no mirrors)';
const NOT_EVALUATED = {
  action: null,
  reason: null,
  currentPercent: null,
  proposedPercent: null,
  write: 'none',
} as const;

describe('eventForOutcome', () => {
  const rows: {
    name: string;
    over: Partial<PolicyOutcome>;
    kind: OutcomeKind;
    want: EventSpec | undefined;
  }[] = [
    {
      name: 'a written increase',
      over: {},
      kind: 'changed',
      want: {
        type: 'Normal',
        reason: 'MirrorPercentChanged',
        message:
          'policy checkout: mirror percentage 10% -> 15% (increase, Headroom): every guardrail has headroom',
        action: 'SetMirrorPercent',
      },
    },
    {
      name: 'a written cut for a breach',
      over: {
        currentPercent: 40,
        proposedPercent: 12.5,
        action: 'decrease',
        reason: 'GuardrailBreached',
        message: 'cpuUtilization 0.95 over 0.8',
      },
      kind: 'changed',
      want: {
        type: 'Normal',
        reason: 'MirrorPercentChanged',
        message:
          'policy checkout: mirror percentage 40% -> 12.5% (decrease, GuardrailBreached): cpuUtilization 0.95 over 0.8',
        action: 'SetMirrorPercent',
      },
    },
    {
      name: 'paused',
      over: {
        action: 'hold',
        reason: 'Paused',
        proposedPercent: 10,
        write: 'none',
        message: 'annotation mirror-autoscaler.io/paused is "true": automation paused',
      },
      kind: 'paused',
      want: {
        type: 'Warning',
        reason: 'Paused',
        message:
          'policy checkout: not changing the mirror percentage: annotation mirror-autoscaler.io/paused is "true": automation paused',
        action: 'SetMirrorPercent',
      },
    },
    {
      name: 'no mirror to the target',
      over: { ...NOT_EVALUATED, message: NO_MIRROR, error: NO_MIRROR },
      kind: 'noMirror',
      want: {
        type: 'Warning',
        reason: 'NoMirror',
        message: `policy checkout: ${NO_MIRROR}`,
        action: 'SetMirrorPercent',
      },
    },
    {
      name: 'route not found',
      over: {
        ...NOT_EVALUATED,
        error: 'VirtualService shop/checkout: no http route named "primary" (routes: http[0])',
      },
      kind: 'noMirror',
      want: {
        type: 'Warning',
        reason: 'NoMirror',
        message:
          'policy checkout: VirtualService shop/checkout: no http route named "primary" (routes: http[0])',
        action: 'SetMirrorPercent',
      },
    },
    {
      name: 'a mirror shape we refuse to edit',
      over: {
        ...NOT_EVALUATED,
        error:
          'VirtualService shop/checkout: http[0] (name "primary"): route has both mirror and mirrors; Istio rejects this',
      },
      kind: 'invalidMirror',
      want: {
        type: 'Warning',
        reason: 'InvalidMirror',
        message:
          'policy checkout: refusing to edit: VirtualService shop/checkout: http[0] (name "primary"): route has both mirror and mirrors; Istio rejects this',
        action: 'SetMirrorPercent',
      },
    },
    {
      name: 'gave up after conflicts',
      over: { write: 'failed', error: CONFLICT },
      kind: 'conflict',
      want: {
        type: 'Warning',
        reason: 'ConflictGaveUp',
        message: `policy checkout: gave up setting the mirror percentage 10% -> 15% after repeated concurrent edits: ${CONFLICT}`,
        action: 'SetMirrorPercent',
      },
    },
    {
      name: 'write failed',
      over: { write: 'failed', error: 'writing shop/checkout failed: request failed (HTTP 500)' },
      kind: 'writeFailed',
      want: {
        type: 'Warning',
        reason: 'WriteFailed',
        message:
          'policy checkout: setting the mirror percentage 10% -> 15% failed: writing shop/checkout failed: request failed (HTTP 500)',
        action: 'SetMirrorPercent',
      },
    },
    {
      name: 'a failed re-read after a conflict is a failed write, not a conflict',
      over: {
        write: 'failed',
        error:
          're-reading shop/checkout after a conflict failed: get virtualservices.networking.istio.io shop/checkout: conflict: the object changed since it was read',
      },
      kind: 'writeFailed',
      want: {
        type: 'Warning',
        reason: 'WriteFailed',
        message:
          'policy checkout: setting the mirror percentage 10% -> 15% failed: re-reading shop/checkout after a conflict failed: get virtualservices.networking.istio.io shop/checkout: conflict: the object changed since it was read',
        action: 'SetMirrorPercent',
      },
    },
    {
      name: 'a hold',
      over: { action: 'hold', reason: 'WithinTolerance', proposedPercent: 10, write: 'none' },
      kind: 'held',
      want: undefined,
    },
    {
      name: 'a dry-run change writes no Event',
      over: { write: 'recorded' },
      kind: 'recorded',
      want: undefined,
    },
    {
      name: 'a missing VirtualService has no object to attach to',
      over: { ...NOT_EVALUATED, error: 'VirtualService shop/checkout not found' },
      kind: 'notFound',
      want: undefined,
    },
    {
      name: 'a failed list has no object to attach to',
      over: { ...NOT_EVALUATED, error: 'listing VirtualServices failed: list ... forbidden' },
      kind: 'unreadable',
      want: undefined,
    },
  ];
  it.each(rows)('$name', ({ over, kind, want }) => {
    const o = outcome(over);
    expect(classifyOutcome(o)).toBe(kind);
    expect(eventForOutcome(o)).toEqual(want);
  });

  it('records the Event of an outcome on the VirtualService end to end', async () => {
    const { server, recorder, vs } = await setup();
    const spec = eventForOutcome(outcome({ write: 'failed', error: CONFLICT }));
    if (spec === undefined) throw new Error('a conflict must give an Event');
    expect(await recorder.record(vs, spec)).toBe('created');
    expect(events(server).map((e) => [e.type, e.reason, (e.involvedObject as JsonObject).name])).toEqual([
      ['Warning', 'ConflictGaveUp', 'checkout'],
    ]);
  });

  it('classifies outcomes of Gateway API routes by their messages, as for VirtualServices', () => {
    const gw = (error: string) =>
      classifyOutcome(outcome({ routeKind: 'HTTPRoute', ...NOT_EVALUATED, error, message: error }));
    expect(gw('HTTPRoute shop/checkout not found')).toBe('notFound');
    expect(
      gw(
        'HTTPRoute shop/checkout: no rule has a RequestMirror filter to Service checkout-shadow (no RequestMirror filters)',
      ),
    ).toBe('noMirror');
    expect(gw('HTTPRoute shop/checkout: no rule named "writes" (rules: "reads")')).toBe('noMirror');
    expect(
      gw(
        'HTTPRoute shop/checkout: 2 RequestMirror filters mirror to Service checkout-shadow (rules[0]: filters[0]; rules[1]: filters[0]); name the rule in the policy (spec.httpRoute.rule) or keep one filter',
      ),
    ).toBe('invalidMirror');
    expect(gw('listing HTTPRoutes failed: forbidden')).toBe('unreadable');
  });

  it('records the Event of an outcome on an HTTPRoute, which kubectl describe httproute finds', async () => {
    const { server, recorder } = await setup();
    const stored = server.setRoute(
      HTTP_ROUTES,
      gatewayRoute({ rules: [gatewayRule([mirrorFilter('checkout-shadow', { percent: 5 })])] }),
    );
    const route = asRouteObject(stored);
    if (route instanceof MeshError) throw route;
    const spec = eventForOutcome(outcome({ routeKind: 'HTTPRoute', routes: ['rules[0]'] }));
    if (spec === undefined) throw new Error('a change must give an Event');
    expect(await recorder.record(route, spec)).toBe('created');
    const [event] = events(server);
    expect(event?.involvedObject).toMatchObject({
      apiVersion: 'gateway.networking.k8s.io/v1',
      kind: 'HTTPRoute',
      name: 'checkout',
      namespace: 'shop',
    });
    expect(event?.reason).toBe('MirrorPercentChanged');
  });
});
