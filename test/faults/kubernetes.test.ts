/**
 * Kubernetes API faults, each against the fake API server through the real @kubernetes/client-node with the
 * daemon running cycles (in process, test/faults/harness.ts): what the daemon does when the API server
 * refuses, forgets, races, sheds load, drops connections or hangs. In every case: no crash, a message that
 * says what failed, the other policies go on, and the daemon recovers by itself when the fault ends.
 *
 * Each VirtualService starts above its policy's maxPercent (90 against 50), so every cycle that can write
 * does (OutOfBounds, 90 -> 50); `pushBack` puts it at 90 again to make the next cycle write.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeApiServer, type JsonObject, VIRTUAL_SERVICES } from '../support/fake-apiserver.js';
import { annotationsOf, InProcessDaemon, labelsOf, mirroredVs, percentOf, policy } from './harness.js';

const NS = 'faults';
const OTHER = 'faults-other';

let api: FakeApiServer;

beforeEach(async () => {
  api = await FakeApiServer.start();
  api.setVirtualService(mirroredVs(NS, 'checkout', 90));
  api.setVirtualService(mirroredVs(NS, 'search', 90));
  api.setVirtualService(mirroredVs(OTHER, 'recs', 90));
});

afterEach(async () => {
  await api.close();
});

function daemon(options: { requestTimeoutMs?: number; token?: string } = {}): InProcessDaemon {
  return new InProcessDaemon(
    api,
    [
      policy({ name: 'checkout', namespace: NS, max: 50 }),
      policy({ name: 'search', namespace: NS, max: 50 }),
      policy({ name: 'recs', namespace: OTHER, max: 50 }),
    ],
    options,
  );
}

function percent(namespace: string, name: string): number | undefined {
  return percentOf(api.getVirtualService(namespace, name));
}

function pushBack(namespace: string, name: string): void {
  api.mutateObject(VIRTUAL_SERVICES, namespace, name, (o) => {
    const route = (o.spec as { http: JsonObject[] }).http[0];
    if (route !== undefined) route.mirrorPercentage = { value: 90 };
  });
}

const patchesTo = (namespace: string, name: string) =>
  api.countRequests({ verb: 'patch', resource: 'virtualservices', namespace, name });

/** A metric sample's value from the exposition text, or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('Kubernetes API faults with the daemon running', () => {
  it('403 on PATCH in one namespace: names the missing permission, is not retried, the others go on', async () => {
    api.setRules([
      { verbs: ['get', 'list'], apiGroups: ['networking.istio.io'], resources: ['virtualservices'] },
      {
        verbs: ['patch'],
        apiGroups: ['networking.istio.io'],
        resources: ['virtualservices'],
        namespaces: [NS],
      },
      { verbs: ['create', 'patch'], apiGroups: [''], resources: ['events'] },
    ]);
    const d = daemon();
    for (let i = 1; i <= 3; i++) {
      const o = await d.cycle();
      expect(o.get('recs')).toMatchObject({ write: 'failed', proposedPercent: 50 });
      expect(o.get('recs')?.error).toMatch(
        /^writing faults-other\/recs failed: patch virtualservices\.networking\.istio\.io faults-other\/recs: forbidden: missing RBAC permission "patch" on virtualservices\.networking\.istio\.io in namespace "faults-other" \(HTTP 403 Forbidden: .*cannot patch resource "virtualservices" in API group "networking\.istio\.io" in the namespace "faults-other"\)$/,
      );
      // One PATCH per cycle: a refusal is not retried, and the next cycle tries again (no crash loop).
      expect(patchesTo(OTHER, 'recs')).toBe(i);
      pushBack(NS, 'checkout');
    }
    expect(percent(NS, 'search')).toBe(50);
    expect(patchesTo(NS, 'checkout')).toBe(3);
    expect(percent(OTHER, 'recs')).toBe(90);
    expect(d.eventReasons(OTHER, 'recs')).toContain('WriteFailed');
    const text = await d.exposition();
    expect(
      sample(text, 'mirror_autoscaler_kubernetes_requests_errors_total', { verb: 'patch', code: '403' }),
    ).toBe(3);
    expect(sample(text, 'mirror_autoscaler_writes_total', { policy: 'recs', result: 'error' })).toBe(3);

    // Granted: the next cycle writes.
    api.setRules(undefined);
    expect((await d.cycle()).get('recs')?.write).toBe('written');
    expect(percent(OTHER, 'recs')).toBe(50);
  });

  it('401: every policy fails with a clear message, the daemon keeps cycling and recovers when the token is good again', async () => {
    const d = daemon({ token: 'rotated-away' });
    for (let i = 0; i < 2; i++) {
      const o = await d.cycle();
      for (const name of ['checkout', 'search', 'recs']) {
        expect(o.get(name)?.error).toBe(
          'listing VirtualServices failed: get API groups /apis: unauthorized: the API server rejected the credentials (check the token or kubeconfig user) (HTTP 401 Unauthorized)',
        );
      }
    }
    api.addToken('rotated-away', 'system:serviceaccount:mirror-autoscaler:mirror-autoscaler');
    const o = await d.cycle();
    expect([...o.values()].map((x) => x.write)).toEqual(['written', 'written', 'written']);
  });

  it('404: a VirtualService deleted mid-run is reported, the others go on, and it is managed again when it comes back', async () => {
    const d = daemon();
    const saved = api.getVirtualService(NS, 'checkout') as JsonObject;
    // Deleted between the cycle's LIST and its PATCH.
    api.beforeRequest({ verb: 'patch', namespace: NS, name: 'checkout' }, () => {
      api.deleteObject(VIRTUAL_SERVICES, NS, 'checkout');
    });
    let o = await d.cycle();
    expect(o.get('checkout')?.error).toBe(
      'writing faults/checkout failed: patch virtualservices.networking.istio.io faults/checkout: not found (HTTP 404 NotFound: virtualservices.networking.istio.io "checkout" not found)',
    );
    expect(o.get('search')?.write).toBe('written');
    // Gone at the next LIST.
    o = await d.cycle();
    expect(o.get('checkout')).toMatchObject({
      error: 'VirtualService faults/checkout not found',
      write: 'none',
    });
    // Back: managed again.
    api.setVirtualService({ ...saved, metadata: { ...(saved.metadata as JsonObject), uid: 'new' } });
    o = await d.cycle();
    expect(o.get('checkout')?.write).toBe('written');
    expect(percent(NS, 'checkout')).toBe(50);
  });

  it('409 on every attempt: bounded retries, then a ConflictGaveUp Event and the next cycle; every concurrent edit survives', async () => {
    const d = daemon();
    let n = 0;
    const edits = api.concurrentEdit(
      { namespace: NS, name: 'checkout' },
      (o) => {
        n++;
        const m = o.metadata as JsonObject;
        m.labels = { ...(m.labels as Record<string, string> | undefined), [`edit-${n}`]: 'kept' };
      },
      Number.POSITIVE_INFINITY,
    );
    const o = await d.cycle();
    expect(o.get('checkout')?.write).toBe('failed');
    expect(o.get('checkout')?.error).toContain('conflict: the object changed since it was read');
    expect(patchesTo(NS, 'checkout')).toBe(3);
    expect(o.get('search')?.write).toBe('written');
    expect(d.eventReasons(NS, 'checkout')).toContain('ConflictGaveUp');
    expect(
      sample(await d.exposition(), 'mirror_autoscaler_writes_total', {
        policy: 'checkout',
        result: 'conflict',
      }),
    ).toBe(1);

    edits.remove();
    expect((await d.cycle()).get('checkout')?.write).toBe('written');
    const vs = api.getVirtualService(NS, 'checkout');
    expect(percentOf(vs)).toBe(50);
    expect(labelsOf(vs)).toEqual({ 'edit-1': 'kept', 'edit-2': 'kept', 'edit-3': 'kept' });
  });

  it('503 on LIST, then an answer: retried within the cycle with growing, jittered delays', async () => {
    const d = daemon();
    await d.routes.servedVersion();
    api.injectFault({
      match: { verb: 'list', namespace: NS },
      action: { kind: 'status', code: 503 },
      times: 2,
    });
    // A matcher that never matches, to note when each LIST arrived (faults are looked at first).
    const times: number[] = [];
    api.injectFault({
      match: (info) => {
        if (info.verb === 'list' && info.namespace === NS) times.push(Date.now());
        return false;
      },
      action: { kind: 'reset' },
    });
    const o = await d.cycle();
    expect([...o.values()].map((x) => x.write)).toEqual(['written', 'written', 'written']);
    expect(api.countRequests({ verb: 'list', namespace: NS })).toBe(3);
    // FAST_BACKOFF: 40 ms then 80 ms, each less up to half at random.
    expect(api.requestsMatching({ verb: 'list', namespace: NS }).map((r) => r.status)).toEqual([
      503, 503, 200,
    ]);
    expect(
      sample(await d.exposition(), 'mirror_autoscaler_kubernetes_requests_errors_total', {
        verb: 'list',
        code: '503',
      }),
    ).toBe(2);
    expect(times).toHaveLength(3);
    const [t0 = 0, t1 = 0, t2 = 0] = times;
    expect(t1 - t0).toBeGreaterThanOrEqual(19);
    expect(t2 - t1).toBeGreaterThanOrEqual(39);
  });

  it('429 with Retry-After on PATCH: waits as asked, then writes once', async () => {
    const d = daemon();
    api.injectFault({
      match: { verb: 'patch', namespace: NS, name: 'checkout' },
      action: { kind: 'status', code: 429, retryAfterSeconds: 1 },
    });
    const at: number[] = [];
    api.beforeRequest({ verb: 'patch', namespace: NS, name: 'checkout' }, () => void at.push(Date.now()));
    const before = Date.now();
    const o = await d.cycle();
    expect(o.get('checkout')?.write).toBe('written');
    expect(
      api.requestsMatching({ verb: 'patch', namespace: NS, name: 'checkout' }).map((r) => r.status),
    ).toEqual([429, 200]);
    // The 429 answered at once; the PATCH that went through came at least a second later.
    expect((at[0] ?? 0) - before).toBeGreaterThanOrEqual(950);
  });

  it('500 on every LIST: bounded attempts and time, a clear error, and recovery at the next cycle', async () => {
    const d = daemon();
    await d.routes.servedVersion();
    const fault = api.injectFault({
      match: { verb: 'list', namespace: NS },
      action: { kind: 'status', code: 500 },
      times: Number.POSITIVE_INFINITY,
    });
    const started = Date.now();
    const o = await d.cycle();
    expect(Date.now() - started).toBeLessThan(3000);
    expect(api.countRequests({ verb: 'list', namespace: NS })).toBe(4);
    expect(o.get('checkout')?.error).toMatch(
      /^listing VirtualServices failed: list virtualservices\.networking\.istio\.io in namespace faults: request failed \(HTTP 500 InternalError: .*\); gave up after 4 attempts in \d+\.\d s$/,
    );
    expect(o.get('recs')?.write).toBe('written');
    fault.remove();
    expect((await d.cycle()).get('checkout')?.write).toBe('written');
  });

  it('connection reset after the PATCH was applied: read back, counted once, never applied twice', async () => {
    const d = daemon();
    const before = api.getVirtualService(NS, 'checkout') as { metadata: { resourceVersion: string } };
    const bodies: string[] = [];
    api.beforeRequest(
      { verb: 'patch', namespace: NS, name: 'checkout' },
      (info) => void bodies.push(info.body),
    );
    api.injectFault({
      match: { verb: 'patch', namespace: NS, name: 'checkout' },
      action: { kind: 'resetAfterApply' },
    });
    const o = await d.cycle();
    expect(o.get('checkout')?.write).toBe('written');
    // One PATCH sent, then a GET that found it applied: exactly one change.
    expect(patchesTo(NS, 'checkout')).toBe(1);
    expect(api.countRequests({ verb: 'get', namespace: NS, name: 'checkout' })).toBe(1);
    const after = api.getVirtualService(NS, 'checkout') as { metadata: { resourceVersion: string } };
    expect(percentOf(after as JsonObject)).toBe(50);
    expect(d.log.lines.filter((l) => l.audit === true && l.policy === 'checkout')).toHaveLength(1);
    const states = Object.keys(annotationsOf(after as JsonObject)).filter((k) => k.startsWith('state.'));
    expect(states).toEqual(['state.mirror-autoscaler.io/checkout']);

    // Replaying the very same request is refused by its resourceVersion test, and changes nothing.
    const replay = await fetch(
      `${api.url}/apis/networking.istio.io/v1/namespaces/${NS}/virtualservices/checkout`,
      {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json-patch+json', Authorization: 'Bearer test-token' },
        body: bodies[0] ?? '',
      },
    );
    expect(replay.status).toBe(422);
    expect(api.getVirtualService(NS, 'checkout')).toEqual(after);
    expect(Number(after.metadata.resourceVersion)).toBeGreaterThan(Number(before.metadata.resourceVersion));
    expect(JSON.parse(bodies[0] ?? '[]')[0]).toEqual({
      op: 'test',
      path: '/metadata/resourceVersion',
      value: before.metadata.resourceVersion,
    });
  });

  it('connection dropped during a LIST, or a LIST that hangs: survived within the cycle; nothing watches', async () => {
    const d = daemon({ requestTimeoutMs: 300 });
    await d.routes.servedVersion();
    api.injectFault({ match: { verb: 'list', namespace: NS }, action: { kind: 'reset' } });
    api.injectFault({ match: { verb: 'list', namespace: OTHER }, action: { kind: 'hang' } });
    const o = await d.cycle();
    expect([...o.values()].map((x) => x.write)).toEqual(['written', 'written', 'written']);
    expect(api.countRequests({ verb: 'list', namespace: NS })).toBe(2);
    expect(api.countRequests({ verb: 'list', namespace: OTHER })).toBe(2);
    expect(
      sample(await d.exposition(), 'mirror_autoscaler_kubernetes_requests_errors_total', {
        verb: 'list',
        code: 'none',
      }),
    ).toBe(2);
    // The daemon LISTs every cycle and opens no watch, so there is no stream to drop and no informer to restart.
    expect(api.countRequests({ verb: 'watch' })).toBe(0);
    expect(api.watchCount()).toBe(0);
  });
});
