/**
 * LeaseElector against the fake API server through the real @kubernetes/client-node. The election step is
 * driven with fake clocks (one per replica, so skew is expressible); only the last block runs the timer
 * loop, with sub-second timings and bounded waits.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/daemon/audit.js';
import {
  DEFAULT_LEASE_TIMING,
  LeaseElector,
  type LeaseElectorOptions,
  type LeaseLogger,
  LeaseOptionsError,
  microTime,
  parseMicroTime,
  validateLeaseOptions,
} from '../../src/daemon/lease.js';
import {
  type AccessRule,
  FakeApiServer,
  type FaultAction,
  type JsonObject,
  LEASES,
} from '../support/fake-apiserver.js';

const NS = 'ops';
const NAME = 'mirror-autoscaler';
/** 2026-11-26T07:00:00Z, the start of every fake clock. */
const T0 = Date.UTC(2026, 10, 26, 7, 0, 0);
const s = (seconds: number) => seconds * 1000;
/** A MicroTime as kube-apiserver writes it: RFC 3339, exactly six fractional digits, UTC. */
const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

const servers: FakeApiServer[] = [];
const electors: LeaseElector[] = [];
afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
  await Promise.all(servers.splice(0).map((srv) => srv.close()));
});

async function fakeServer(): Promise<FakeApiServer> {
  const server = await FakeApiServer.start();
  servers.push(server);
  return server;
}

interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly obj: Record<string, unknown>;
  readonly msg: string;
}

/** A candidate with its own fake clock, its callbacks recorded with the clock time they ran at. */
interface Candidate {
  readonly elector: LeaseElector;
  /** The candidate's clock (ms); tests move it. */
  clock: number;
  readonly started: number[];
  readonly stopped: number[];
  readonly logs: LogEntry[];
}

function candidate(
  server: FakeApiServer,
  identity: string,
  overrides: Partial<LeaseElectorOptions> = {},
  onStopped?: () => void,
): Candidate {
  const logs: LogEntry[] = [];
  const logger: LeaseLogger = {
    debug: (obj, msg) => logs.push({ level: 'debug', obj: obj as Record<string, unknown>, msg }),
    info: (obj, msg) => logs.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
    warn: (obj, msg) => logs.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
    error: (obj, msg) => logs.push({ level: 'error', obj: obj as Record<string, unknown>, msg }),
  };
  const c: Candidate = {
    clock: T0,
    started: [],
    stopped: [],
    logs,
    elector: undefined as unknown as LeaseElector,
  };
  const elector = new LeaseElector(server.kubeConfig(), {
    name: NAME,
    namespace: NS,
    identity,
    now: () => c.clock,
    onStartedLeading: () => c.started.push(c.clock),
    onStoppedLeading: () => {
      c.stopped.push(c.clock);
      onStopped?.();
    },
    logger,
    ...overrides,
  });
  (c as { elector: LeaseElector }).elector = elector;
  electors.push(elector);
  return c;
}

/** Runs one election step at the candidate's clock moved to `at`. */
function step(c: Candidate, at: number): Promise<boolean> {
  c.clock = at;
  return c.elector.tryAcquireOrRenew(at);
}

function storedSpec(server: FakeApiServer): JsonObject {
  const lease = server.getObject(LEASES, NS, NAME);
  if (lease === undefined) throw new Error(`lease ${NS}/${NAME} is not stored`);
  return lease.spec as JsonObject;
}

/** The MicroTime string the elector writes for clock time `ms`. */
function micro(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

/** A Lease written by another replica, as it would be stored. */
function seedLease(server: FakeApiServer, spec: JsonObject): void {
  server.setObject(LEASES, { metadata: { name: NAME, namespace: NS }, spec });
}

function leaseStatuses(server: FakeApiServer): number[] {
  return server
    .requestsMatching({ resource: 'leases' })
    .map((r) => r.status)
    .filter((code): code is number => code !== undefined);
}

describe('acquiring and holding', () => {
  it('creates an absent lease with MicroTime timestamps and leads', async () => {
    const server = await fakeServer();
    const a = candidate(server, 'pod-a');
    expect(a.elector.isLeader()).toBe(false);

    expect(await step(a, T0 + 123)).toBe(true);

    expect(a.elector.isLeader()).toBe(true);
    expect(a.started).toEqual([T0 + 123]);
    expect(storedSpec(server)).toEqual({
      holderIdentity: 'pod-a',
      leaseDurationSeconds: 15,
      acquireTime: '2026-11-26T07:00:00.123000Z',
      renewTime: '2026-11-26T07:00:00.123000Z',
      leaseTransitions: 0,
    });
    // The wire body, not just the stored object: kube-apiserver rejects MicroTimes without six digits.
    const [create] = server.requestsMatching({ verb: 'create', resource: 'leases' });
    const sent = JSON.parse(create?.body ?? '{}') as { spec: Record<string, unknown> };
    expect(sent.spec.renewTime).toMatch(MICRO_TIME);
    expect(sent.spec.acquireTime).toMatch(MICRO_TIME);
  });

  it('renews its own lease every step without a transition and keeps acquireTime', async () => {
    const server = await fakeServer();
    const a = candidate(server, 'pod-a');
    await step(a, T0);
    expect(await step(a, T0 + s(2))).toBe(true);
    expect(await step(a, T0 + s(4))).toBe(true);

    expect(storedSpec(server)).toMatchObject({
      holderIdentity: 'pod-a',
      acquireTime: micro(T0),
      renewTime: micro(T0 + s(4)),
      leaseTransitions: 0,
    });
    expect(a.started).toEqual([T0]);
    expect(server.countRequests({ verb: 'update', resource: 'leases' })).toBe(2);
    const update = server.requestsMatching({ verb: 'update', resource: 'leases' }).at(-1);
    expect((JSON.parse(update?.body ?? '{}') as { spec: { renewTime: unknown } }).spec.renewTime).toMatch(
      MICRO_TIME,
    );
  });

  it('keeps a second candidate out while the lease is held and lets it take over after expiry', async () => {
    const server = await fakeServer();
    const a = candidate(server, 'pod-a');
    const b = candidate(server, 'pod-b');
    await step(a, T0);
    await step(a, T0 + s(2));
    await step(a, T0 + s(4)); // last renewal: the lease is valid until T0+19 s
    expect(await step(b, T0 + s(5))).toBe(false);
    expect(await step(b, T0 + s(18))).toBe(false);
    expect(b.started).toEqual([]);
    // pod-a stops renewing (it crashed). Its own view lapses at the renew deadline.
    a.clock = T0 + s(14) - 1;
    expect(a.elector.isLeader()).toBe(true);
    a.clock = T0 + s(14);
    expect(a.elector.isLeader()).toBe(false);

    // Past renewTime + 15 s (T0+19 s) the lease is expired by the holder's clock, but pod-b last saw it
    // change at T0+5 s: it waits until a full lease duration has passed on its own clock too.
    expect(await step(b, T0 + s(19) + 1)).toBe(false);
    expect(await step(b, T0 + s(20))).toBe(false);
    const takeover = T0 + s(20) + 1;
    expect(await step(b, takeover)).toBe(true);
    expect(b.elector.isLeader()).toBe(true);
    expect(b.started).toEqual([takeover]);
    expect(storedSpec(server)).toEqual({
      holderIdentity: 'pod-b',
      leaseDurationSeconds: 15,
      acquireTime: micro(takeover),
      renewTime: micro(takeover),
      leaseTransitions: 1,
    });

    // pod-a comes back: the lease is pod-b's, so it does not lead and reports the end of its leadership.
    expect(await step(a, T0 + s(21))).toBe(false);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.stopped).toEqual([T0 + s(21)]);
    expect(storedSpec(server).holderIdentity).toBe('pod-b');
  });

  it('does not take a lease early when its clock runs ahead of the holder', async () => {
    const server = await fakeServer();
    const a = candidate(server, 'pod-a');
    const b = candidate(server, 'pod-b');
    await step(a, T0);
    // pod-b's clock is 60 s ahead: by renewTime alone the lease looks long expired.
    const skew = s(60);
    expect(await step(b, T0 + skew + s(1))).toBe(false);
    await step(a, T0 + s(2));
    expect(await step(b, T0 + skew + s(3))).toBe(false);
    // It waits a full lease duration on its own clock since it last saw the lease change (at +3 s).
    expect(await step(b, T0 + skew + s(18))).toBe(false);
    expect(await step(b, T0 + skew + s(18) + 1)).toBe(true);
    expect(storedSpec(server)).toMatchObject({ holderIdentity: 'pod-b', leaseTransitions: 1 });
  });

  it('takes a lease whose holder released it at once, however recent its renewTime', async () => {
    const server = await fakeServer();
    seedLease(server, {
      leaseDurationSeconds: 1,
      renewTime: micro(T0),
      acquireTime: micro(T0),
      leaseTransitions: 4,
    });
    const b = candidate(server, 'pod-b');
    expect(await step(b, T0)).toBe(true);
    expect(storedSpec(server)).toMatchObject({ holderIdentity: 'pod-b', leaseTransitions: 5 });
  });
});

describe('races', () => {
  const rows = [
    {
      name: 'both update the same expired lease: one 409 Conflict',
      verb: 'update' as const,
      seed: true,
      transitions: 1,
    },
    {
      name: 'both create an absent lease: one 409 AlreadyExists',
      verb: 'create' as const,
      seed: false,
      transitions: 0,
    },
  ];
  it.each(rows)('$name', async ({ verb, seed, transitions }) => {
    const server = await fakeServer();
    const a = candidate(server, 'pod-a');
    const b = candidate(server, 'pod-b');
    const at = T0 + s(16);
    if (seed) {
      seedLease(server, {
        holderIdentity: 'pod-old',
        leaseDurationSeconds: 15,
        renewTime: micro(T0 - s(1)),
        leaseTransitions: 0,
      });
      // Both must have watched it for a lease duration before either may take it.
      expect(await step(a, T0)).toBe(false);
      expect(await step(b, T0)).toBe(false);
    }
    // pod-b runs its whole step between pod-a's read and pod-a's write: both read the same version.
    let bWon: boolean | undefined;
    const hook = server.beforeRequest({ verb, resource: 'leases' }, async () => {
      bWon = await step(b, at);
    });
    const aWon = await step(a, at);

    expect(hook.hits).toBe(1);
    expect([aWon, bWon]).toEqual([false, true]);
    expect([a.elector.isLeader(), b.elector.isLeader()]).toEqual([false, true]);
    expect([a.started, b.started]).toEqual([[], [at]]);
    expect(leaseStatuses(server).filter((code) => code === 409)).toHaveLength(1);
    expect(storedSpec(server)).toMatchObject({ holderIdentity: 'pod-b', leaseTransitions: transitions });
    expect(a.logs).toContainEqual(
      expect.objectContaining({ level: 'info', msg: 'another replica took the lease first' }),
    );
  });

  it('lets exactly one of three concurrent candidates win', async () => {
    const server = await fakeServer();
    const cs = ['pod-a', 'pod-b', 'pod-c'].map((id) => candidate(server, id));
    const won = await Promise.all(cs.map((c) => step(c, T0)));
    expect(won.filter(Boolean)).toHaveLength(1);
    const winner = cs[won.indexOf(true)];
    expect(storedSpec(server).holderIdentity).toBe(winner?.elector.identity);
    expect(cs.filter((c) => c.elector.isLeader())).toEqual([winner]);
  });

  it('a leader whose renewal loses to another writer stops at its next read', async () => {
    const server = await fakeServer();
    const a = candidate(server, 'pod-a');
    await step(a, T0);
    server.concurrentEdit({ resource: LEASES, namespace: NS, name: NAME, verbs: ['update'] }, (lease) => {
      (lease.spec as JsonObject).holderIdentity = 'pod-intruder';
      (lease.spec as JsonObject).renewTime = micro(T0 + s(2));
    });
    // The 409 is a failed renewal: still within the deadline, so still leading.
    expect(await step(a, T0 + s(2))).toBe(true);
    expect(a.elector.status()).toMatchObject({ leader: true, consecutiveFailures: 1 });
    expect(a.stopped).toEqual([]);
    // The next read shows the lease held by someone else: stop at once, not at the deadline.
    expect(await step(a, T0 + s(4))).toBe(false);
    expect(a.stopped).toEqual([T0 + s(4)]);
    expect(a.elector.isLeader()).toBe(false);
    expect(storedSpec(server).holderIdentity).toBe('pod-intruder');
  });
});

describe('renewal failures', () => {
  it('stops leading at the renew deadline, before the lease can expire for anyone else', async () => {
    const server = await fakeServer();
    const a = candidate(server, 'pod-a');
    const b = candidate(server, 'pod-b');
    await step(a, T0);
    expect(await step(b, T0 + s(1))).toBe(false);
    const fault = server.injectFault({
      match: { resource: 'leases' },
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'status', code: 500 },
    });

    for (const at of [2, 4, 6, 8]) {
      expect(await step(a, T0 + s(at)), `step at +${at} s`).toBe(true);
    }
    expect(a.elector.leadershipValid(T0 + s(10) - 1)).toBe(true);
    expect(a.elector.leadershipValid(T0 + s(10))).toBe(false);
    expect(a.stopped).toEqual([]);
    expect(await step(a, T0 + s(10))).toBe(false);

    expect(a.elector.isLeader()).toBe(false);
    expect(a.stopped).toEqual([T0 + s(10)]);
    const leaseExpiry = (parseMicroTime(storedSpec(server).renewTime) ?? 0) + s(15);
    expect(leaseExpiry).toBe(T0 + s(15));
    expect(a.stopped[0]).toBeLessThan(leaseExpiry);
    // Four failed renewals, and the step at +10 s that stopped leading first and then failed as a follower.
    expect(a.elector.status()).toMatchObject({ consecutiveFailures: 5, failedAttempts: 5 });
    const warning = a.logs.find((l) => l.level === 'warn' && l.msg === 'lease request failed');
    expect(String((warning?.obj.err as Error | undefined)?.message)).toContain(
      'get leases.coordination.k8s.io ops/mirror-autoscaler: request failed (HTTP 500 InternalError',
    );

    // The API server recovers. pod-b may take the lease only after pod-a stopped leading.
    fault.remove();
    expect(await step(b, T0 + s(15))).toBe(false);
    expect(await step(b, T0 + s(16) + 1)).toBe(true);
    expect(b.started[0]).toBeGreaterThan(a.stopped[0] ?? Number.POSITIVE_INFINITY);
  });

  const faults: { name: string; action: FaultAction }[] = [
    { name: '500 Internal Server Error', action: { kind: 'status', code: 500 } },
    { name: '429 Too Many Requests', action: { kind: 'status', code: 429, retryAfterSeconds: 1 } },
    { name: 'connection reset', action: { kind: 'reset' } },
    { name: 'body that is not JSON', action: { kind: 'garbage', code: 200 } },
  ];
  it.each(faults)('counts $name as a failed step without throwing', async ({ action }) => {
    const server = await fakeServer();
    const a = candidate(server, 'pod-a');
    server.injectFault({ match: { resource: 'leases', verb: 'get' }, action });
    await expect(step(a, T0)).resolves.toBe(false);
    expect(a.elector.status()).toMatchObject({ leader: false, consecutiveFailures: 1, failedAttempts: 1 });
    expect(a.elector.status().lastError).toEqual(expect.any(String));
    // The next step succeeds and clears the failure count.
    expect(await step(a, T0 + s(2))).toBe(true);
    expect(a.elector.status()).toMatchObject({ consecutiveFailures: 0, lastError: undefined });
  });

  it('logs callback exceptions instead of propagating them', async () => {
    const server = await fakeServer();
    const a = candidate(server, 'pod-a', {
      onStartedLeading: () => {
        throw new Error('boom');
      },
    });
    await expect(step(a, T0)).resolves.toBe(true);
    expect(a.logs).toContainEqual(expect.objectContaining({ level: 'error', msg: 'onStartedLeading threw' }));
  });
});

describe('stop()', () => {
  it('stops leading before releasing, and a follower acquires at once', async () => {
    const server = await fakeServer();
    let updatesWhenStopped: number | undefined;
    const a = candidate(server, 'pod-a', {}, () => {
      updatesWhenStopped = server.countRequests({ verb: 'update', resource: 'leases' });
    });
    const b = candidate(server, 'pod-b');
    await step(a, T0);
    await step(a, T0 + s(2));
    expect(await step(b, T0 + s(3))).toBe(false);

    a.clock = T0 + s(3);
    await a.elector.stop();

    expect(a.stopped).toEqual([T0 + s(3)]);
    expect(a.elector.isLeader()).toBe(false);
    // onStoppedLeading ran before the releasing update: writes stop before anyone else can lead.
    expect(updatesWhenStopped).toBe(1);
    expect(server.countRequests({ verb: 'update', resource: 'leases' })).toBe(2);
    expect(storedSpec(server)).toEqual({
      leaseDurationSeconds: 1,
      acquireTime: micro(T0 + s(3)),
      renewTime: micro(T0 + s(3)),
      leaseTransitions: 0,
    });

    expect(await step(b, T0 + s(3) + 500)).toBe(true);
    expect(storedSpec(server)).toMatchObject({ holderIdentity: 'pod-b', leaseTransitions: 1 });

    // A stopped elector stays out: no requests, no leadership, no restart.
    const before = server.requests.length;
    expect(await step(a, T0 + s(60))).toBe(false);
    expect(server.requests.length).toBe(before);
    expect(() => a.elector.start()).toThrow(
      'lease ops/mirror-autoscaler: start() after stop(); create a new LeaseElector',
    );
    await a.elector.stop(); // idempotent
    expect(a.stopped).toHaveLength(1);
  });

  it('leaves a lease it does not hold untouched', async () => {
    const server = await fakeServer();
    const a = candidate(server, 'pod-a');
    const b = candidate(server, 'pod-b');
    await step(a, T0);
    await step(b, T0 + s(1));
    await b.elector.stop();
    expect(b.stopped).toEqual([]);
    expect(server.countRequests({ verb: 'update', resource: 'leases' })).toBe(0);
    expect(storedSpec(server).holderIdentity).toBe('pod-a');
  });
});

describe('permissions', () => {
  const lease = (verbs: string[]): AccessRule => ({
    verbs,
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    namespaces: [NS],
  });
  const rows = [
    { name: 'no lease permission at all', rules: [] as AccessRule[], verb: 'get', seed: false },
    { name: 'get but not create', rules: [lease(['get'])], verb: 'create', seed: false },
    { name: 'get and create but not update', rules: [lease(['get', 'create'])], verb: 'update', seed: true },
  ];
  it.each(rows)('$name: logs the missing permission and keeps running', async ({ rules, verb, seed }) => {
    const server = await fakeServer();
    server.setRules([
      { verbs: ['get', 'list', 'watch', 'patch'], apiGroups: ['networking.istio.io'], resources: ['*'] },
      ...rules,
    ]);
    if (seed) seedLease(server, { leaseDurationSeconds: 1, renewTime: micro(T0), leaseTransitions: 0 });
    // The real root logger, so the assertion is on the JSON line an operator would read.
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const elector = new LeaseElector(server.kubeConfig(), {
      name: NAME,
      namespace: NS,
      identity: 'pod-a',
      now: () => T0,
      onStartedLeading: () => undefined,
      onStoppedLeading: () => undefined,
      logger: createLogger({ destination }),
    });
    electors.push(elector);

    await expect(elector.tryAcquireOrRenew(T0)).resolves.toBe(false);
    await expect(elector.tryAcquireOrRenew(T0 + s(2))).resolves.toBe(false);

    const errors = lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.level === 'error');
    expect(errors).toHaveLength(2);
    expect(errors[0]?.msg).toBe(
      `lease request forbidden: missing RBAC permission "${verb}" on leases.coordination.k8s.io in namespace "ops"; the ServiceAccount needs get, create and update on leases.coordination.k8s.io there`,
    );
    expect(String((errors[0]?.err as { message?: unknown } | undefined)?.message)).toContain(
      `cannot ${verb} resource "leases" in API group "coordination.k8s.io" in the namespace "ops"`,
    );
    expect(elector.status()).toMatchObject({ leader: false, consecutiveFailures: 2 });
  });
});

describe('failed requests', () => {
  it('reports every failed Lease request with its verb and code, but not the 404 of a Lease not yet created', async () => {
    const server = await fakeServer();
    const failed: string[] = [];
    const c = candidate(server, 'pod-a', {
      onApiError: (e) => failed.push(`${e.verb} ${e.code ?? 'none'}`),
    });
    // Absent Lease: the GET's 404 is how election starts, and the create succeeds.
    await expect(step(c, T0)).resolves.toBe(true);
    expect(failed).toEqual([]);
    server.injectFault({
      match: { resource: 'leases', verb: 'update' },
      action: { kind: 'status', code: 500 },
    });
    await expect(step(c, T0 + s(2))).resolves.toBe(true);
    expect(failed).toEqual(['update 500']);
  });
});

describe('options', () => {
  const base = { name: NAME, namespace: NS, identity: 'pod-a' };
  const invalid: { name: string; options: Record<string, unknown>; message: string }[] = [
    {
      name: 'zero lease duration',
      options: { leaseDurationSeconds: 0 },
      message: 'lease option leaseDurationSeconds: must be a positive number of seconds (got 0)',
    },
    {
      name: 'fractional lease duration',
      options: { leaseDurationSeconds: 7.5 },
      message:
        'lease option leaseDurationSeconds: must be a whole number of seconds (Lease int32 field) (got 7.5)',
    },
    {
      name: 'lease duration as a string',
      options: { leaseDurationSeconds: '15' },
      message: 'lease option leaseDurationSeconds: must be a positive number of seconds (got "15")',
    },
    {
      name: 'NaN renew deadline',
      options: { renewDeadlineSeconds: Number.NaN },
      message: 'lease option renewDeadlineSeconds: must be a positive number of seconds (got NaN)',
    },
    {
      name: 'negative retry period',
      options: { retryPeriodSeconds: -2 },
      message: 'lease option retryPeriodSeconds: must be a positive number of seconds (got -2)',
    },
    {
      name: 'renew deadline equal to the lease duration',
      options: { renewDeadlineSeconds: 15 },
      message:
        'lease option renewDeadlineSeconds: must be less than leaseDurationSeconds (15) so a leader stops before its Lease can be taken (got 15)',
    },
    {
      name: 'renew deadline longer than a shortened lease',
      options: { leaseDurationSeconds: 8 },
      message:
        'lease option renewDeadlineSeconds: must be less than leaseDurationSeconds (8) so a leader stops before its Lease can be taken (got 10)',
    },
    {
      name: 'retry period leaving no second attempt',
      options: { retryPeriodSeconds: 9 },
      message:
        'lease option retryPeriodSeconds: must be less than renewDeadlineSeconds / 1.2 (renewDeadlineSeconds is 10) so a leader can retry a failed renewal before its deadline (got 9)',
    },
    {
      name: 'name with capitals and an underscore',
      options: { name: 'Mirror_Autoscaler' },
      message:
        "lease option name: must be a DNS subdomain name (lowercase letters, digits, '-' and '.', at most 253 characters) (got \"Mirror_Autoscaler\")",
    },
    {
      name: 'empty namespace',
      options: { namespace: '' },
      message:
        'lease option namespace: must be a DNS label (lowercase letters, digits and \'-\', at most 63 characters) (got "")',
    },
    {
      name: 'blank identity',
      options: { identity: '  ' },
      message: 'lease option identity: must be a non-empty string (got "  ")',
    },
  ];
  it.each(invalid)('rejects $name', ({ options, message }) => {
    const call = () =>
      validateLeaseOptions({ ...base, ...options } as Parameters<typeof validateLeaseOptions>[0]);
    expect(call).toThrow(LeaseOptionsError);
    expect(call).toThrow(message);
  });

  it('rejects a missing callback in the constructor, naming it', async () => {
    const server = await fakeServer();
    const options = { ...base, onStoppedLeading: () => undefined } as unknown as LeaseElectorOptions;
    let caught: unknown;
    try {
      new LeaseElector(server.kubeConfig(), options);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(LeaseOptionsError);
    expect(caught).toMatchObject({
      option: 'onStartedLeading',
      value: undefined,
      message: 'lease option onStartedLeading: must be a function (got undefined)',
    });
  });

  it('fills client-go defaults and a hostname-based identity', () => {
    const resolved = validateLeaseOptions({ name: NAME, namespace: NS });
    expect(resolved).toMatchObject({ ...DEFAULT_LEASE_TIMING, name: NAME, namespace: NS });
    expect(resolved.identity).toMatch(/^.+-[0-9a-f]{8}$/);
    expect(validateLeaseOptions({ name: NAME, namespace: NS }).identity).not.toBe(resolved.identity);
  });
});

describe('MicroTime', () => {
  const rows = [
    { name: 'six digits, UTC', value: '2026-11-26T07:00:00.123456Z', ms: T0 + 123 },
    { name: 'no fraction', value: '2026-11-26T07:00:00Z', ms: T0 },
    { name: 'offset', value: '2026-11-26T09:00:00.500000+02:00', ms: T0 + 500 },
    { name: 'a Date', value: new Date(T0 + 7), ms: T0 + 7 },
    { name: 'not a time', value: 'yesterday', ms: undefined },
    { name: 'a date without time', value: '2026-11-26', ms: undefined },
    { name: 'absent', value: undefined, ms: undefined },
  ];
  it.each(rows)('parses $name', ({ value, ms }) => {
    expect(parseMicroTime(value)).toBe(ms);
  });

  it('serialises with six fractional digits through the client', () => {
    expect(JSON.stringify({ t: microTime(T0 + 42) })).toBe('{"t":"2026-11-26T07:00:00.042000Z"}');
  });
});

describe('timer loop', () => {
  // Sub-second timings with the real clock; every wait is bounded by vi.waitFor's timeout.
  const fast = { leaseDurationSeconds: 3, renewDeadlineSeconds: 1, retryPeriodSeconds: 0.1 } as const;

  function live(server: FakeApiServer, identity: string) {
    const events: { what: 'started' | 'stopped'; at: number }[] = [];
    const elector = new LeaseElector(server.kubeConfig(), {
      name: NAME,
      namespace: NS,
      identity,
      ...fast,
      onStartedLeading: () => events.push({ what: 'started', at: Date.now() }),
      onStoppedLeading: () => events.push({ what: 'stopped', at: Date.now() }),
      logger: {
        debug: () => undefined,
        info: () => undefined,
        warn: () => undefined,
        error: () => undefined,
      },
    });
    electors.push(elector);
    return { elector, events };
  }

  it('renews while running, and a follower takes over well within the lease duration after stop()', async () => {
    const server = await fakeServer();
    const a = live(server, 'pod-a');
    a.elector.start();
    await vi.waitFor(() => expect(a.elector.isLeader()).toBe(true), { timeout: 5000, interval: 20 });
    const b = live(server, 'pod-b');
    b.elector.start();
    await vi.waitFor(
      () => expect(server.countRequests({ verb: 'update', resource: 'leases' })).toBeGreaterThan(2),
      {
        timeout: 5000,
        interval: 20,
      },
    );
    expect(b.elector.isLeader()).toBe(false);

    const stoppedAt = Date.now();
    await a.elector.stop();
    await vi.waitFor(() => expect(b.elector.isLeader()).toBe(true), { timeout: 5000, interval: 10 });
    // Without the release pod-b would wait for the 3 s lease to expire.
    expect(Date.now() - stoppedAt).toBeLessThan(s(fast.leaseDurationSeconds));
    expect(a.events.map((e) => e.what)).toEqual(['started', 'stopped']);
    expect(b.events.map((e) => e.what)).toEqual(['started']);
  });

  it('stops leading at the renew deadline while a renewal hangs', async () => {
    const server = await fakeServer();
    const a = live(server, 'pod-a');
    a.elector.start();
    await vi.waitFor(() => expect(a.elector.isLeader()).toBe(true), { timeout: 5000, interval: 20 });
    server.injectFault({
      match: { resource: 'leases' },
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'hang' },
    });
    await vi.waitFor(() => expect(a.events.map((e) => e.what)).toEqual(['started', 'stopped']), {
      timeout: 5000,
      interval: 20,
    });
    const lastRenewAt = a.elector.status().lastRenewAt ?? 0;
    const stopped = a.events[1]?.at ?? 0;
    expect(stopped - lastRenewAt).toBeGreaterThanOrEqual(s(fast.renewDeadlineSeconds) - 5);
    const renewTime = parseMicroTime(storedSpec(server).renewTime) ?? 0;
    expect(stopped).toBeLessThan(renewTime + s(fast.leaseDurationSeconds));
  });
});
