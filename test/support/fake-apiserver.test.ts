/**
 * The fake API server on the wire: the real @kubernetes/client-node (and raw HTTP where byte-exact
 * answers matter) against it. These pin the API-server behaviour the rest of the suite relies on.
 */
import {
  ApiException,
  ApisApi,
  CoordinationV1Api,
  CoreApi,
  CoreV1Api,
  CustomObjectsApi,
  type KubernetesObject,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FakeApiServer,
  type FakeApiServerOptions,
  type JsonObject,
  LEASES,
  VIRTUAL_SERVICES,
} from './fake-apiserver.js';
import { MIRROR_SHAPE_ROUTES, virtualService } from './kube-fixtures.js';

const VS = { group: 'networking.istio.io', version: 'v1', plural: 'virtualservices' } as const;

const servers: FakeApiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fakeServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const server = await FakeApiServer.start(options);
  servers.push(server);
  return server;
}

/** Raw HTTP, for byte-exact answers. */
async function raw(
  server: FakeApiServer,
  path: string,
  init: { method?: string; body?: string; contentType?: string; token?: string | null } = {},
): Promise<{ status: number; text: string }> {
  const token = init.token === undefined ? 'test-token' : init.token;
  const res = await fetch(`${server.url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(token === null ? {} : { Authorization: `Bearer ${token}` }),
      ...(init.contentType ? { 'Content-Type': init.contentType } : {}),
    },
    ...(init.body === undefined ? {} : { body: init.body }),
  });
  return { status: res.status, text: await res.text() };
}

async function apiError(promise: Promise<unknown>): Promise<{ code: number; body: JsonObject }> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ApiException)) throw new Error(`expected an ApiException, got ${String(err)}`);
  const body = typeof err.body === 'string' ? (JSON.parse(err.body) as JsonObject) : (err.body as JsonObject);
  return { code: err.code, body };
}

/** Collects watch events; `next(n)` resolves once n events arrived (bounded by a timeout). */
function collector() {
  const events: { type: string; object: JsonObject }[] = [];
  let waiter: { n: number; resolve: () => void } | undefined;
  let finished: (err: unknown) => void = () => {};
  const done = new Promise<unknown>((resolve) => {
    finished = resolve;
  });
  return {
    events,
    done,
    onEvent: (type: string, object: JsonObject) => {
      events.push({ type, object });
      if (waiter && events.length >= waiter.n) waiter.resolve();
    },
    onDone: (err: unknown) => finished(err ?? null),
    next(n: number, timeoutMs = 5000): Promise<void> {
      if (events.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${events.length} of ${n} events`)), timeoutMs);
        waiter = {
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        };
      });
    },
  };
}

function summary(events: { type: string; object: JsonObject }[]): string[] {
  return events.map(
    (e) => `${e.type} ${String((e.object.metadata as JsonObject | undefined)?.name ?? e.object.code)}`,
  );
}

describe('discovery', () => {
  it('serves /apis, the group, the versions and their resources', async () => {
    const server = await fakeServer({ istioVersions: ['v1beta1', 'v1alpha3'] });
    const kc = server.kubeConfig();
    const groups = await kc.makeApiClient(ApisApi).getAPIVersions();
    const istio = groups.groups.find((g) => g.name === 'networking.istio.io');
    expect(istio?.versions.map((v) => v.groupVersion)).toEqual([
      'networking.istio.io/v1beta1',
      'networking.istio.io/v1alpha3',
    ]);
    expect(istio?.preferredVersion?.version).toBe('v1beta1');
    expect(groups.groups.map((g) => g.name)).toContain('coordination.k8s.io');

    const resources = await kc
      .makeApiClient(CustomObjectsApi)
      .getAPIResources({ group: 'networking.istio.io', version: 'v1alpha3' });
    expect(resources.resources.map((r) => [r.name, r.kind, r.namespaced, r.shortNames])).toEqual([
      ['virtualservices', 'VirtualService', true, ['vs']],
    ]);
    expect((await kc.makeApiClient(CoreApi).getAPIVersions()).versions).toEqual(['v1']);
    expect((await kc.makeApiClient(CoreV1Api).getAPIResources()).resources.map((r) => r.name)).toEqual([
      'events',
    ]);
    expect((await raw(server, '/apis/networking.istio.io/v1')).status).toBe(404);
    expect((await raw(server, '/apis/networking.istio.io/v1/namespaces/shop/virtualservices')).text).toBe(
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","details":{},"code":404}',
    );
  });

  it('serves the same object in every version, apiVersion rewritten', async () => {
    const server = await fakeServer();
    const stored = server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.implicit] }));
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    for (const version of ['v1', 'v1beta1', 'v1alpha3']) {
      const obj = await api.getNamespacedCustomObject({
        ...VS,
        version,
        namespace: 'shop',
        name: 'checkout',
      });
      expect(obj).toEqual({ ...stored, apiVersion: `networking.istio.io/${version}` });
    }
  });
});

describe('Status objects and auth', () => {
  it('answers NotFound exactly like kube-apiserver', async () => {
    const server = await fakeServer();
    const res = await raw(server, '/apis/networking.istio.io/v1/namespaces/shop/virtualservices/nope');
    expect(res.status).toBe(404);
    expect(res.text).toBe(
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"virtualservices.networking.istio.io \\"nope\\" not found","reason":"NotFound","details":{"name":"nope","group":"networking.istio.io","kind":"virtualservices"},"code":404}',
    );
  });

  it('answers 401 to a missing or wrong token, and accepts added tokens', async () => {
    const server = await fakeServer({ token: 'right' });
    const expected =
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}';
    for (const token of [null, 'wrong']) {
      const res = await raw(server, '/apis', { token });
      expect([res.status, res.text]).toEqual([401, expected]);
    }
    server.addToken('second', 'system:serviceaccount:ops:other');
    expect((await raw(server, '/apis', { token: 'second' })).status).toBe(200);
    expect(server.requests.at(-1)?.user).toBe('system:serviceaccount:ops:other');
  });

  it('answers 403 in the RBAC authorizer words', async () => {
    const server = await fakeServer({
      user: 'system:serviceaccount:ns:sa',
      rules: [
        {
          verbs: ['get'],
          apiGroups: ['networking.istio.io'],
          resources: ['virtualservices'],
          namespaces: ['ns'],
        },
      ],
    });
    server.setVirtualService(
      virtualService({ namespace: 'ns', name: 'x', http: [MIRROR_SHAPE_ROUTES.implicit] }),
    );
    const base = '/apis/networking.istio.io/v1';
    expect((await raw(server, `${base}/namespaces/ns/virtualservices/x`)).status).toBe(200);
    const hook = server.beforeRequest({ verb: 'patch' }, () => {});
    const patch = await raw(server, `${base}/namespaces/ns/virtualservices/x`, {
      method: 'PATCH',
      contentType: 'application/merge-patch+json',
      body: '{}',
    });
    expect(patch.status).toBe(403);
    expect(patch.text).toBe(
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"virtualservices.networking.istio.io \\"x\\" is forbidden: User \\"system:serviceaccount:ns:sa\\" cannot patch resource \\"virtualservices\\" in API group \\"networking.istio.io\\" in the namespace \\"ns\\"","reason":"Forbidden","details":{"name":"x","group":"networking.istio.io","kind":"virtualservices"},"code":403}',
    );
    const list = JSON.parse((await raw(server, `${base}/namespaces/ns/virtualservices`)).text) as JsonObject;
    expect(list.message).toBe(
      'virtualservices.networking.istio.io is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "virtualservices" in API group "networking.istio.io" in the namespace "ns"',
    );
    const events = JSON.parse((await raw(server, '/api/v1/events')).text) as JsonObject;
    expect(events.message).toBe(
      'events is forbidden: User "system:serviceaccount:ns:sa" cannot list resource "events" in API group "" at the cluster scope',
    );
    // Hooks run only for requests that passed authorisation.
    expect(hook.hits).toBe(0);
    server.setRules(undefined);
    expect((await raw(server, `${base}/namespaces/ns/virtualservices`)).status).toBe(200);
  });
});

describe('writes to custom resources', () => {
  it('bumps one global resourceVersion, generation only on spec changes, nothing on a no-op', async () => {
    const server = await fakeServer();
    const a = server.setVirtualService(virtualService({ name: 'a', http: [MIRROR_SHAPE_ROUTES.implicit] }));
    const lease = server.setObject(LEASES, { metadata: { name: 'leader', namespace: 'ops' }, spec: {} });
    const rvA = Number((a.metadata as JsonObject).resourceVersion);
    expect(Number((lease.metadata as JsonObject).resourceVersion)).toBe(rvA + 1);
    expect(lease.apiVersion).toBe('coordination.k8s.io/v1');

    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const target = { ...VS, namespace: 'shop', name: 'a' };
    const labelled = await api.patchNamespacedCustomObject(
      { ...target, body: { metadata: { labels: { x: 'y' } } } },
      merge,
    );
    expect(labelled.metadata.generation).toBe(1);
    const specChanged = await api.patchNamespacedCustomObject(
      { ...target, body: { spec: { hosts: ['b'] } } },
      merge,
    );
    expect(specChanged.metadata.generation).toBe(2);
    const noop = await api.patchNamespacedCustomObject(
      { ...target, body: { spec: { hosts: ['b'] } } },
      merge,
    );
    expect(noop.metadata.resourceVersion).toBe(specChanged.metadata.resourceVersion);
    expect(server.resourceVersion).toBe(specChanged.metadata.resourceVersion);
  });

  it('merge patch: a stale resourceVersion is 409 Conflict', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.implicit] }));
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
    const err = await apiError(
      api.patchNamespacedCustomObject(
        {
          ...VS,
          namespace: 'shop',
          name: 'checkout',
          body: { metadata: { resourceVersion: '1' }, spec: { hosts: [] } },
        },
        merge,
      ),
    );
    expect(err).toEqual({
      code: 409,
      body: {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message:
          'Operation cannot be fulfilled on virtualservices.networking.istio.io "checkout": the object has been modified; please apply your changes to the latest version and try again',
        reason: 'Conflict',
        details: { name: 'checkout', group: 'networking.istio.io', kind: 'virtualservices' },
        code: 409,
      },
    });
  });

  it('JSON patch: failed test and unknown op are 422 Invalid, a non-list body is 400', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
    const path = '/apis/networking.istio.io/v1/namespaces/shop/virtualservices/checkout';
    const generic =
      '{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"the server rejected our request due to an error in our request","reason":"Invalid","details":{},"code":422}';
    const send = (body: unknown) =>
      raw(server, path, {
        method: 'PATCH',
        contentType: 'application/json-patch+json',
        body: JSON.stringify(body),
      });
    expect(await send([{ op: 'test', path: '/spec/http/0/mirrorPercentage/value', value: 1 }])).toEqual({
      status: 422,
      text: generic,
    });
    expect(await send([{ op: 'explode', path: '/spec' }])).toEqual({ status: 422, text: generic });
    expect((await send({ op: 'add' })).status).toBe(400);
    const ok = await send([
      { op: 'test', path: '/spec/http/0/mirrorPercentage/value', value: 37.5 },
      { op: 'replace', path: '/spec/http/0/mirrorPercentage/value', value: 1 },
    ]);
    expect(ok.status).toBe(200);
    expect(server.getVirtualService('shop', 'checkout')?.spec).toMatchObject({
      http: [{ mirrorPercentage: { value: 1 } }],
    });
    expect(server.requestsMatching({ verb: 'patch' }).map((r) => r.status)).toEqual([422, 422, 400, 200]);
  });

  it('PUT: stale resourceVersion 409, missing resourceVersion 422, current one 200', async () => {
    const server = await fakeServer();
    const stored = server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.implicit] }));
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const target = { ...VS, namespace: 'shop', name: 'checkout' };
    const withRv = (rv: string | undefined) => {
      const body = structuredClone(stored);
      const meta = body.metadata as JsonObject;
      if (rv === undefined) delete meta.resourceVersion;
      else meta.resourceVersion = rv;
      return body;
    };
    expect((await apiError(api.replaceNamespacedCustomObject({ ...target, body: withRv('5') }))).code).toBe(
      409,
    );
    const missing = await apiError(api.replaceNamespacedCustomObject({ ...target, body: withRv(undefined) }));
    expect(missing.code).toBe(422);
    expect(missing.body.message).toBe(
      'VirtualService.networking.istio.io "checkout" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update',
    );
    const current = (stored.metadata as JsonObject).resourceVersion as string;
    const replaced = await api.replaceNamespacedCustomObject({
      ...target,
      body: { ...withRv(current), spec: { hosts: ['x'], http: [] } },
    });
    expect(Number(replaced.metadata.resourceVersion)).toBeGreaterThan(Number(current));
    expect(replaced.metadata.uid).toBe((stored.metadata as JsonObject).uid);
  });

  it('POST creates (201), refuses duplicates and set resourceVersions; DELETE answers Success', async () => {
    const server = await fakeServer();
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const body = virtualService({ http: [MIRROR_SHAPE_ROUTES.implicit] });
    const created = await api.createNamespacedCustomObject({ ...VS, namespace: 'shop', body });
    expect(created.metadata).toMatchObject({ name: 'checkout', namespace: 'shop', generation: 1 });
    expect(created.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    const dup = await apiError(api.createNamespacedCustomObject({ ...VS, namespace: 'shop', body }));
    expect([dup.code, dup.body.reason, dup.body.message]).toEqual([
      409,
      'AlreadyExists',
      'virtualservices.networking.istio.io "checkout" already exists',
    ]);
    const withRv = virtualService({ name: 'other', http: [], resourceVersion: '3' });
    expect(
      (await apiError(api.createNamespacedCustomObject({ ...VS, namespace: 'shop', body: withRv }))).code,
    ).toBe(500);
    const deleted = await api.deleteNamespacedCustomObject({ ...VS, namespace: 'shop', name: 'checkout' });
    expect(deleted).toMatchObject({
      kind: 'Status',
      status: 'Success',
      details: { name: 'checkout', kind: 'virtualservices' },
    });
    expect(
      (await apiError(api.getNamespacedCustomObject({ ...VS, namespace: 'shop', name: 'checkout' }))).code,
    ).toBe(404);
  });

  it('rejects what Istio validation rejects, and annotations that are not strings', async () => {
    const server = await fakeServer();
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const both = virtualService({
      http: [{ ...MIRROR_SHAPE_ROUTES.implicit, mirrors: [{ destination: { host: 'x' } }] }],
    });
    const denied = await apiError(api.createNamespacedCustomObject({ ...VS, namespace: 'shop', body: both }));
    expect([denied.code, denied.body.message]).toEqual([
      400,
      'admission webhook "validation.istio.io" denied the request: configuration is invalid: http[0]: only one of mirror or mirrors can be specified',
    ]);
    const tooMuch = virtualService({
      http: [{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: { value: 150 } }],
    });
    expect(
      (await apiError(api.createNamespacedCustomObject({ ...VS, namespace: 'shop', body: tooMuch }))).code,
    ).toBe(400);
    const numeric = { ...virtualService({ http: [] }), metadata: { name: 'n', annotations: { a: 1 } } };
    expect(
      (await apiError(api.createNamespacedCustomObject({ ...VS, namespace: 'shop', body: numeric }))).code,
    ).toBe(400);
    expect(server.listObjects(VIRTUAL_SERVICES)).toEqual([]);
  });

  it('filters lists by label and field selectors', async () => {
    const server = await fakeServer();
    for (const [name, tier] of [
      ['a', 'web'],
      ['b', 'db'],
      ['c', 'web'],
    ] as const) {
      server.setVirtualService(virtualService({ name, http: [], labels: { tier } }));
    }
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const names = async (selectors: { labelSelector?: string; fieldSelector?: string }) =>
      (
        (await api.listNamespacedCustomObject({ ...VS, namespace: 'shop', ...selectors })) as {
          items: JsonObject[];
        }
      ).items.map((i) => (i.metadata as JsonObject).name);
    expect(await names({ labelSelector: 'tier=web' })).toEqual(['a', 'c']);
    expect(await names({ labelSelector: 'tier in (db,cache)' })).toEqual(['b']);
    expect(await names({ labelSelector: 'tier!=web,tier' })).toEqual(['b']);
    expect(await names({ fieldSelector: 'metadata.name=c' })).toEqual(['c']);
    expect(
      (
        await apiError(
          api.listNamespacedCustomObject({ ...VS, namespace: 'shop', fieldSelector: 'spec.x=1' }),
        )
      ).code,
    ).toBe(400);
  });
});

describe('leases and events', () => {
  it('creates, reads, replaces (409 when stale) and patches a Lease', async () => {
    const server = await fakeServer();
    const api = server.kubeConfig().makeApiClient(CoordinationV1Api);
    const created = await api.createNamespacedLease({
      namespace: 'ops',
      body: {
        metadata: { name: 'mirror-autoscaler' },
        spec: {
          holderIdentity: 'pod-a',
          leaseDurationSeconds: 15,
          renewTime: new Date('2026-11-26T07:00:00.000Z'),
        },
      },
    });
    expect(created.spec?.holderIdentity).toBe('pod-a');
    const read = await api.readNamespacedLease({ namespace: 'ops', name: 'mirror-autoscaler' });
    expect(read.metadata?.resourceVersion).toBe(created.metadata?.resourceVersion);
    const takeOver = { ...read, spec: { ...read.spec, holderIdentity: 'pod-b' } };
    const replaced = await api.replaceNamespacedLease({
      namespace: 'ops',
      name: 'mirror-autoscaler',
      body: takeOver,
    });
    expect(replaced.spec?.holderIdentity).toBe('pod-b');
    // A second replica still holding the old resourceVersion loses the race.
    const stale = await apiError(
      api.replaceNamespacedLease({ namespace: 'ops', name: 'mirror-autoscaler', body: takeOver }),
    );
    expect([stale.code, stale.body.message]).toEqual([
      409,
      'Operation cannot be fulfilled on leases.coordination.k8s.io "mirror-autoscaler": the object has been modified; please apply your changes to the latest version and try again',
    ]);
    const patched = await api.patchNamespacedLease({
      namespace: 'ops',
      name: 'mirror-autoscaler',
      body: [{ op: 'replace', path: '/spec/holderIdentity', value: 'pod-c' }],
    });
    expect(patched.spec?.holderIdentity).toBe('pod-c');
    expect(server.getObject(LEASES, 'ops', 'mirror-autoscaler')?.spec).toMatchObject({
      holderIdentity: 'pod-c',
    });
  });

  it('creates core v1 Events with generateName and lists them', async () => {
    const server = await fakeServer();
    const api = server.kubeConfig().makeApiClient(CoreV1Api);
    const event = await api.createNamespacedEvent({
      namespace: 'shop',
      body: {
        metadata: { generateName: 'checkout.' },
        involvedObject: {
          apiVersion: 'networking.istio.io/v1',
          kind: 'VirtualService',
          namespace: 'shop',
          name: 'checkout',
        },
        reason: 'MirrorPercentChanged',
        message: 'mirror percentage 10 -> 15',
        type: 'Normal',
      },
    });
    expect(event.metadata.name).toMatch(/^checkout\.[a-z0-9]{5}$/);
    const list = await api.listNamespacedEvent({ namespace: 'shop' });
    expect(list.items.map((e) => [e.reason, e.involvedObject.name])).toEqual([
      ['MirrorPercentChanged', 'checkout'],
    ]);
  });
});

describe('watch', () => {
  const path = '/apis/networking.istio.io/v1beta1/namespaces/shop/virtualservices';

  it('streams current objects, then changes, in the watched version', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ name: 'a', http: [] }));
    const c = collector();
    const controller = await new Watch(server.kubeConfig()).watch(path, {}, c.onEvent, c.onDone);
    await c.next(1);
    server.mutateObject(VIRTUAL_SERVICES, 'shop', 'a', (obj) => {
      (obj.metadata as JsonObject).labels = { v: '2' };
    });
    server.setVirtualService(virtualService({ name: 'b', http: [] }));
    server.setVirtualService(virtualService({ namespace: 'elsewhere', name: 'c', http: [] }));
    server.deleteObject(VIRTUAL_SERVICES, 'shop', 'a');
    await c.next(4);
    expect(summary(c.events)).toEqual(['ADDED a', 'MODIFIED a', 'ADDED b', 'DELETED a']);
    expect(c.events.every((e) => e.object.apiVersion === 'networking.istio.io/v1beta1')).toBe(true);
    const rvs = c.events.map((e) => Number((e.object.metadata as JsonObject).resourceVersion));
    expect([...rvs].sort((x, y) => x - y)).toEqual(rvs);
    controller.abort();
    await c.done;
  });

  it('resumes from a resourceVersion, and answers 410 Expired once the history is compacted', async () => {
    const server = await fakeServer();
    const first = server.setVirtualService(virtualService({ name: 'a', http: [] }));
    const from = (first.metadata as JsonObject).resourceVersion as string;
    server.setVirtualService(virtualService({ name: 'b', http: [] }));
    server.deleteObject(VIRTUAL_SERVICES, 'shop', 'a');
    const resumed = collector();
    const controller = await new Watch(server.kubeConfig()).watch(
      path,
      { resourceVersion: from },
      resumed.onEvent,
      resumed.onDone,
    );
    await resumed.next(2);
    expect(summary(resumed.events)).toEqual(['ADDED b', 'DELETED a']);
    controller.abort();

    server.compactHistory();
    const expired = collector();
    await new Watch(server.kubeConfig()).watch(
      path,
      { resourceVersion: from },
      expired.onEvent,
      expired.onDone,
    );
    await expired.next(1);
    expect(expired.events[0]?.type).toBe('ERROR');
    expect(expired.events[0]?.object).toMatchObject({ reason: 'Expired', code: 410 });
    expect(await expired.done).toBeNull();
  });

  it('ends a watch at timeoutSeconds, on drop, and on close', async () => {
    const server = await fakeServer();
    const kc = server.kubeConfig();
    const timed = collector();
    await new Watch(kc).watch(path, { timeoutSeconds: 1 }, timed.onEvent, timed.onDone);
    expect(await timed.done).toBeNull();

    const dropped = collector();
    await new Watch(kc).watch(path, {}, dropped.onEvent, dropped.onDone);
    await server.waitForWatches(1);
    expect(server.dropWatches({ mode: 'reset' })).toBe(1);
    await dropped.done;
    expect(server.watchCount()).toBe(0);

    const closing = collector();
    await new Watch(kc).watch(path, {}, closing.onEvent, closing.onDone);
    await server.waitForWatches(1);
    await server.close();
    await closing.done;
    expect(server.watchCount()).toBe(0);
  });

  it('sends bookmarks to watches that ask for them', async () => {
    const server = await fakeServer();
    const c = collector();
    const controller = await new Watch(server.kubeConfig()).watch(
      path,
      { allowWatchBookmarks: true },
      c.onEvent,
      c.onDone,
    );
    await server.waitForWatches(1);
    server.sendBookmarks();
    await c.next(1);
    expect(c.events[0]).toEqual({
      type: 'BOOKMARK',
      object: {
        apiVersion: 'networking.istio.io/v1beta1',
        kind: 'VirtualService',
        metadata: { resourceVersion: server.resourceVersion },
      },
    });
    controller.abort();
  });

  it('lets an informer recover after its watch stream is dropped', async () => {
    const server = await fakeServer();
    const kc = server.kubeConfig();
    const api = kc.makeApiClient(CustomObjectsApi);
    const informer = makeInformer<KubernetesObject>(
      kc,
      '/apis/networking.istio.io/v1/namespaces/shop/virtualservices',
      () => api.listNamespacedCustomObject({ ...VS, namespace: 'shop' }),
    );
    const seen: string[] = [];
    let notify: () => void = () => {};
    const seenB = new Promise<void>((resolve) => {
      notify = resolve;
    });
    informer.on('add', (obj) => {
      seen.push(obj.metadata?.name ?? '?');
      if (obj.metadata?.name === 'b') notify();
    });
    server.setVirtualService(virtualService({ name: 'a', http: [] }));
    await informer.start();
    await server.waitForWatches(1);
    server.dropWatches({ mode: 'end' });
    await server.waitForWatches(1);
    server.setVirtualService(virtualService({ name: 'b', http: [] }));
    await seenB;
    await informer.stop();
    expect(seen).toEqual(['a', 'b']);
    expect(server.countRequests({ verb: 'watch' })).toBe(2);
  });
});

describe('test hooks', () => {
  it('logs method, path, content type and body', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [] }));
    await server
      .kubeConfig()
      .makeApiClient(CustomObjectsApi)
      .patchNamespacedCustomObject({
        ...VS,
        namespace: 'shop',
        name: 'checkout',
        body: [{ op: 'add', path: '/metadata/labels', value: { a: 'b' } }],
      });
    const [record] = server.requestsMatching({ verb: 'patch' });
    expect(record).toMatchObject({
      method: 'PATCH',
      path: '/apis/networking.istio.io/v1/namespaces/shop/virtualservices/checkout',
      contentType: 'application/json-patch+json',
      group: 'networking.istio.io',
      version: 'v1',
      resource: 'virtualservices',
      namespace: 'shop',
      name: 'checkout',
      status: 200,
    });
    expect(JSON.parse(record?.body ?? '')).toEqual([
      { op: 'add', path: '/metadata/labels', value: { a: 'b' } },
    ]);
  });

  it('injects faults a bounded number of times', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [] }));
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const get = () => api.getNamespacedCustomObject({ ...VS, namespace: 'shop', name: 'checkout' });
    const fault = server.injectFault({
      match: { verb: 'get' },
      times: 2,
      action: { kind: 'status', code: 503 },
    });
    expect((await apiError(get())).code).toBe(503);
    expect((await apiError(get())).body.reason).toBe('ServiceUnavailable');
    expect((await get()).metadata.name).toBe('checkout');
    expect([fault.hits, fault.active]).toEqual([2, false]);

    server.injectFault({ match: { verb: 'get' }, action: { kind: 'garbage' } });
    await expect(get()).rejects.toThrow();
    server.injectFault({ match: { verb: 'get' }, action: { kind: 'delay', ms: 30 } });
    const started = performance.now();
    await get();
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
    const removed = server.injectFault({ match: { verb: 'get' }, action: { kind: 'reset' } });
    removed.remove();
    expect((await get()).metadata.name).toBe('checkout');
  });

  it('edits an object between a read and a write', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [] }));
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const target = { ...VS, namespace: 'shop', name: 'checkout' };
    const read = await api.getNamespacedCustomObject(target);
    const edit = server.concurrentEdit({ namespace: 'shop', name: 'checkout' }, (obj) => {
      (obj.metadata as JsonObject).labels = { by: 'someone-else' };
    });
    const err = await apiError(
      api.patchNamespacedCustomObject({
        ...target,
        body: [{ op: 'test', path: '/metadata/resourceVersion', value: read.metadata.resourceVersion }],
      }),
    );
    expect(err.code).toBe(422);
    expect(edit.hits).toBe(1);
    expect(server.getVirtualService('shop', 'checkout')?.metadata).toMatchObject({
      labels: { by: 'someone-else' },
    });
  });

  it('writes a kubeconfig file usable through KUBECONFIG', async () => {
    const server = await fakeServer();
    const file = await server.writeKubeconfig({ namespace: 'shop' });
    const { KubeConfig } = await import('@kubernetes/client-node');
    const kc = new KubeConfig();
    kc.loadFromFile(file);
    expect(kc.getCurrentCluster()).toMatchObject({ server: server.url, skipTLSVerify: true });
    expect((await kc.makeApiClient(ApisApi).getAPIVersions()).groups.length).toBeGreaterThan(0);
  });
});
