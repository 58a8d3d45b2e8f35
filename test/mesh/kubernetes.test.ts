/**
 * KubernetesRouteStore against the fake API server, through the real @kubernetes/client-node.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  ApiError,
  ConflictError,
  DiscoveryError,
  ForbiddenError,
  MeshError,
  NotFoundError,
  TransportError,
  UnauthorizedError,
} from '../../src/mesh/errors.js';
import { KubernetesRouteStore, type KubernetesRouteStoreOptions } from '../../src/mesh/kubernetes.js';
import { DEFAULT_BACKOFF } from '../../src/mesh/retry.js';
import { stateAnnotation } from '../../src/mesh/state.js';
import {
  locateMirrors,
  type MirrorLocation,
  type MirrorSelector,
  PAUSED_ANNOTATION,
  pauseState,
  type VirtualService,
} from '../../src/mesh/virtualservice.js';
import {
  type AccessRule,
  FakeApiServer,
  type FakeApiServerOptions,
  type IstioVersion,
  type JsonObject,
} from '../support/fake-apiserver.js';
import {
  MIRROR_SHAPE_ROUTES,
  type MirrorShapeFixture,
  PRIMARY_ROUTE,
  virtualService,
} from '../support/kube-fixtures.js';
import { invalid } from '../support/kube-status.js';

const SHADOW: MirrorSelector = { route: 'primary', host: 'checkout-shadow' };
const VS_PATCH = { verb: 'patch', resource: 'virtualservices' } as const;
const ONE_ATTEMPT = { ...DEFAULT_BACKOFF, maxAttempts: 1 };

const servers: FakeApiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fakeServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const server = await FakeApiServer.start(options);
  servers.push(server);
  return server;
}

function storeFor(
  server: FakeApiServer,
  token?: string | null,
  options: KubernetesRouteStoreOptions = {},
): KubernetesRouteStore {
  // One attempt unless a test asks for retries: these tests pin how each answer is mapped.
  return new KubernetesRouteStore(server.kubeConfig(token === undefined ? {} : { token }), {
    backoff: ONE_ATTEMPT,
    ...options,
  });
}

function locate(vs: VirtualService, sel: MirrorSelector = SHADOW): MirrorLocation[] {
  const result = locateMirrors(vs, sel);
  if (result instanceof MeshError) throw result;
  return result;
}

/** The object without the fields a write is allowed to change. */
function withoutWrittenFields(obj: JsonObject): JsonObject {
  const copy = structuredClone(obj);
  const meta = copy.metadata as JsonObject;
  delete meta.resourceVersion;
  delete meta.generation;
  delete meta.managedFields;
  delete meta.annotations;
  const http = (copy.spec as { http: JsonObject[] }).http;
  for (const route of http) {
    delete route.mirrorPercentage;
    delete route.mirrorPercent;
    delete route.mirror_percent;
    for (const m of (route.mirrors as JsonObject[] | undefined) ?? []) delete m.percentage;
  }
  return copy;
}

describe('served version discovery', () => {
  const rows: { name: string; served: IstioVersion[]; expected: IstioVersion }[] = [
    { name: 'v1 when served', served: ['v1', 'v1beta1', 'v1alpha3'], expected: 'v1' },
    { name: 'v1beta1 when v1 is absent', served: ['v1beta1', 'v1alpha3'], expected: 'v1beta1' },
    { name: 'v1alpha3 when only it is served', served: ['v1alpha3'], expected: 'v1alpha3' },
    { name: 'v1 even when listed last by the server', served: ['v1alpha3', 'v1'], expected: 'v1' },
  ];
  for (const row of rows) {
    it(row.name, async () => {
      const server = await fakeServer({ istioVersions: row.served });
      server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.implicit] }));
      const store = storeFor(server);
      expect(await store.servedVersion()).toBe(row.expected);
      const vs = await store.get('shop', 'checkout');
      expect(vs.apiVersion).toBe(`networking.istio.io/${row.expected}`);
      await store.list(['shop']);
      // Discovered once, then every request uses that version.
      expect(server.countRequests((r) => r.path === '/apis')).toBe(1);
      expect(server.requests.filter((r) => r.verb !== undefined).map((r) => r.version)).toEqual([
        row.expected,
        row.expected,
      ]);
    });
  }

  it('fails clearly when Istio is not installed', async () => {
    const server = await fakeServer({ istioVersions: [] });
    const err = await storeFor(server)
      .servedVersion()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscoveryError);
    expect((err as Error).message).toBe(
      'the API server serves no networking.istio.io version this tool supports for VirtualService (v1, v1beta1, v1alpha3); served: none (is Istio installed?)',
    );
  });

  it('does not cache a failed discovery', async () => {
    const server = await fakeServer();
    server.injectFault({ match: (r) => r.path === '/apis', action: { kind: 'status', code: 503 } });
    const store = storeFor(server);
    const err = await store.servedVersion().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).retriable).toBe(true);
    expect((err as Error).message).toBe(
      'get API groups /apis: request failed (HTTP 503 ServiceUnavailable: the server is currently unable to handle the request)',
    );
    expect(await store.servedVersion()).toBe('v1');
  });
});

describe('list and get', () => {
  it('reuses connections across requests instead of opening one per request', async () => {
    const server = await fakeServer();
    server.setVirtualService(
      virtualService({ namespace: 'shop', name: 'a', http: [MIRROR_SHAPE_ROUTES.implicit] }),
    );
    const store = storeFor(server);
    for (let i = 0; i < 3; i++) await store.list(['shop']);
    const warm = server.connectionCount;
    for (let i = 0; i < 10; i++) await store.list(['shop']);
    expect(server.countRequests({ verb: 'list' })).toBe(13);
    // The first requests may open a connection or two; later ones ride on kept-alive connections.
    expect(warm).toBeLessThanOrEqual(3);
    expect(server.connectionCount).toBe(warm);
  });

  it('lists many VirtualServices with one LIST per namespace and no GET', async () => {
    const server = await fakeServer();
    for (let i = 0; i < 60; i++) {
      const ns = i % 2 === 0 ? 'shop' : 'search';
      server.setVirtualService(
        virtualService({ namespace: ns, name: `vs-${i}`, http: [MIRROR_SHAPE_ROUTES.implicit] }),
      );
    }
    server.setVirtualService(
      virtualService({ namespace: 'other', name: 'x', http: [MIRROR_SHAPE_ROUTES.implicit] }),
    );
    const store = storeFor(server);
    const all = await store.list(['shop', 'search', 'shop']);
    expect(all.size).toBe(60);
    expect([...all.keys()].slice(0, 2)).toEqual(['search/vs-1', 'search/vs-11']);
    expect(server.countRequests({ verb: 'list', resource: 'virtualservices' })).toBe(2);
    expect(server.countRequests({ verb: 'get' })).toBe(0);

    server.clearRequests();
    const everywhere = await store.list();
    expect(everywhere.size).toBe(61);
    expect(server.requestsMatching({ verb: 'list' }).map((r) => r.path)).toEqual([
      '/apis/networking.istio.io/v1/virtualservices',
    ]);
  });

  it('follows continue tokens when a namespace has more than a page', async () => {
    const server = await fakeServer();
    for (let i = 0; i < 45; i++) {
      server.setVirtualService(
        virtualService({ name: `vs-${String(i).padStart(2, '0')}`, http: [MIRROR_SHAPE_ROUTES.implicit] }),
      );
    }
    const all = await storeFor(server, undefined, { pageSize: 20 }).list(['shop']);
    expect(all.size).toBe(45);
    expect(
      server.requestsMatching({ verb: 'list' }).map((r) => [r.query.limit, r.query.continue !== undefined]),
    ).toEqual([
      ['20', false],
      ['20', true],
      ['20', true],
    ]);
  });

  it('gets one object exactly as stored', async () => {
    const server = await fakeServer();
    const stored = server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrors] }));
    const vs = await storeFor(server).get('shop', 'checkout');
    expect(vs).toEqual(stored);
    expect(vs.metadata.resourceVersion).toMatch(/^\d+$/);
  });

  it('reports a missing VirtualService as NotFoundError', async () => {
    const server = await fakeServer();
    const err = await storeFor(server)
      .get('shop', 'missing')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toBe(
      'get virtualservices.networking.istio.io shop/missing: not found (HTTP 404 NotFound: virtualservices.networking.istio.io "missing" not found)',
    );
  });

  it('reads the pause annotation', async () => {
    const server = await fakeServer();
    server.setVirtualService(
      virtualService({ http: [MIRROR_SHAPE_ROUTES.implicit], annotations: { [PAUSED_ANNOTATION]: 'true' } }),
    );
    const vs = await storeFor(server).get('shop', 'checkout');
    expect(pauseState(vs)).toEqual({ paused: true, source: 'annotation' });
  });
});

describe('patchPercent', () => {
  const shapes = Object.keys(MIRROR_SHAPE_ROUTES) as MirrorShapeFixture[];
  for (const shape of shapes) {
    it(`writes ${shape} with a JSON Patch and changes nothing else`, async () => {
      const server = await fakeServer();
      const before = server.setVirtualService(
        virtualService({
          http: [{ name: 'static', ...PRIMARY_ROUTE }, MIRROR_SHAPE_ROUTES[shape]],
          labels: { app: 'checkout' },
          annotations: { team: 'payments' },
        }),
      );
      const store = storeFor(server);
      const vs = await store.get('shop', 'checkout');
      const written = await store.patchPercent(
        vs,
        locate(vs),
        42.5,
        stateAnnotation('checkout', { level: 60 }),
      );

      const after = server.getVirtualService('shop', 'checkout') as JsonObject;
      expect(written).toEqual(after);
      expect(withoutWrittenFields(after)).toEqual(withoutWrittenFields(before));
      // A deprecated field is replaced, not left next to mirrorPercentage.
      const route = (after.spec as { http: JsonObject[] }).http[1] as JsonObject;
      expect(Object.keys(route).filter((k) => k === 'mirrorPercent' || k === 'mirror_percent')).toEqual([]);
      expect((after.metadata as JsonObject).annotations).toEqual({
        team: 'payments',
        'state.mirror-autoscaler.io/checkout': '{"level":60}',
      });
      expect(Number((after.metadata as JsonObject).resourceVersion)).toBeGreaterThan(
        Number((before.metadata as JsonObject).resourceVersion),
      );
      expect(locate(written).map((l) => [l.percent, l.shape])).toEqual([
        [42.5, shape.startsWith('mirrors') ? 'mirrors' : 'mirrorPercentage'],
      ]);
      const patches = server.requestsMatching(VS_PATCH);
      expect(patches).toHaveLength(1);
      expect(patches[0]?.contentType).toBe('application/json-patch+json');
      expect(JSON.parse(patches[0]?.body ?? '')[0]).toEqual({
        op: 'test',
        path: '/metadata/resourceVersion',
        value: vs.metadata.resourceVersion,
      });
    });
  }

  it('writes through the served version (v1alpha3 cluster)', async () => {
    const server = await fakeServer({ istioVersions: ['v1alpha3'] });
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
    const store = storeFor(server);
    const vs = await store.get('shop', 'checkout');
    const written = await store.patchPercent(vs, locate(vs), 5);
    expect(written.apiVersion).toBe('networking.istio.io/v1alpha3');
    expect(server.requestsMatching(VS_PATCH)[0]?.path).toBe(
      '/apis/networking.istio.io/v1alpha3/namespaces/shop/virtualservices/checkout',
    );
  });

  it('reports a VirtualService deleted after the read as NotFoundError', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.implicit] }));
    const store = storeFor(server);
    const vs = await store.get('shop', 'checkout');
    server.deleteObject('virtualservices.networking.istio.io', 'shop', 'checkout');
    await expect(store.patchPercent(vs, locate(vs), 10)).rejects.toBeInstanceOf(NotFoundError);
  });

  it('turns a concurrent edit between read and patch into ConflictError and writes nothing', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
    const store = storeFor(server);
    const vs = await store.get('shop', 'checkout');
    server.concurrentEdit({ namespace: 'shop', name: 'checkout' }, (obj) => {
      (obj.metadata as JsonObject).labels = { edited: 'by-hand' };
    });
    const err = await store.patchPercent(vs, locate(vs), 50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).code).toBe(422);
    expect((err as Error).message).toBe(
      'patch virtualservices.networking.istio.io shop/checkout: conflict: the object changed since it was read (HTTP 422 Invalid: the server rejected our request due to an error in our request)',
    );
    const after = server.getVirtualService('shop', 'checkout') as { spec: { http: JsonObject[] } };
    expect(after.spec.http[0]?.mirrorPercentage).toEqual({ value: 37.5 });
  });

  it('maps 409 to ConflictError and a validation 422 to ApiError', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
    const store = storeFor(server);
    const vs = await store.get('shop', 'checkout');
    server.injectFault({ match: VS_PATCH, action: { kind: 'status', code: 409 } });
    await expect(store.patchPercent(vs, locate(vs), 50)).rejects.toBeInstanceOf(ConflictError);
    server.injectFault({
      match: VS_PATCH,
      action: {
        kind: 'status',
        code: 422,
        body: invalid('networking.istio.io', 'VirtualService', 'checkout', [
          { field: 'spec.http[0].mirrorPercentage.value', message: 'Invalid value: 50: must be at most 10' },
        ]),
      },
    });
    const err = await store.patchPercent(vs, locate(vs), 50).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status?.details?.causes).toEqual([
      {
        reason: 'FieldValueInvalid',
        message: 'Invalid value: 50: must be at most 10',
        field: 'spec.http[0].mirrorPercentage.value',
      },
    ]);
  });

  it('a write whose answer was lost is not applied twice', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
    const store = storeFor(server);
    const vs = await store.get('shop', 'checkout');
    server.injectFault({ match: VS_PATCH, action: { kind: 'resetAfterApply' } });
    const lost = await store.patchPercent(vs, locate(vs), 20).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(TransportError);
    expect((lost as TransportError).retriable).toBe(true);
    // Re-sending the same guarded patch is refused: the resourceVersion it tests is gone.
    await expect(store.patchPercent(vs, locate(vs), 20)).rejects.toBeInstanceOf(ConflictError);
    const after = server.getVirtualService('shop', 'checkout') as {
      metadata: JsonObject;
      spec: { http: JsonObject[] };
    };
    expect(after.spec.http[0]?.mirrorPercentage).toEqual({ value: 20 });
    expect(Number(after.metadata.resourceVersion)).toBe(Number(vs.metadata.resourceVersion) + 1);
  });
});

describe('retries', () => {
  /** Retries without real waiting: every delay is recorded and skipped. */
  function retryingStore(server: FakeApiServer) {
    const delays: number[] = [];
    const store = storeFor(server, undefined, {
      backoff: { ...DEFAULT_BACKOFF, maxAttempts: 3 },
      retry: { sleep: async (ms) => void delays.push(ms), random: () => 0 },
    });
    return { store, delays };
  }

  it('a PATCH whose answer was lost is read back, found applied, and not sent again', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
    const { store, delays } = retryingStore(server);
    const vs = await store.get('shop', 'checkout');
    server.injectFault({ match: VS_PATCH, action: { kind: 'resetAfterApply' } });
    const written = await store.patchPercent(vs, locate(vs), 20, stateAnnotation('checkout', { at: 1 }));
    expect(server.countRequests(VS_PATCH)).toBe(1);
    expect(delays).toEqual([250]);
    expect(written.metadata.resourceVersion).toBe(String(Number(vs.metadata.resourceVersion) + 1));
    expect(written).toEqual(await store.get('shop', 'checkout'));
  });

  it('a PATCH reset before it was applied is sent again, once', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
    const { store } = retryingStore(server);
    const vs = await store.get('shop', 'checkout');
    server.injectFault({ match: VS_PATCH, action: { kind: 'reset' } });
    const written = await store.patchPercent(vs, locate(vs), 20);
    expect(server.countRequests(VS_PATCH)).toBe(2);
    expect(written.metadata.resourceVersion).toBe(String(Number(vs.metadata.resourceVersion) + 1));
  });

  it('a PATCH whose answer was lost while someone else changed the object is a conflict', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
    const { store } = retryingStore(server);
    const vs = await store.get('shop', 'checkout');
    server.injectFault({ match: VS_PATCH, action: { kind: 'reset' } });
    server.beforeRequest({ verb: 'get', resource: 'virtualservices' }, (_info, s) => {
      s.mutateObject('virtualservices.networking.istio.io', 'shop', 'checkout', (o) => {
        (o.metadata as JsonObject).labels = { team: 'payments' };
      });
    });
    await expect(store.patchPercent(vs, locate(vs), 20)).rejects.toBeInstanceOf(ConflictError);
    expect(server.countRequests(VS_PATCH)).toBe(1);
  });

  it('retries 503 on LIST with growing delays and gives up after the attempts, saying so', async () => {
    const server = await fakeServer();
    const { store, delays } = retryingStore(server);
    await store.servedVersion();
    server.injectFault({
      match: { verb: 'list' },
      action: { kind: 'status', code: 503 },
      times: Number.POSITIVE_INFINITY,
    });
    const err = await store.list(['shop']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as Error).message).toMatch(/\(HTTP 503 .*\); gave up after 3 attempts in \d+\.\d s$/);
    expect(server.countRequests({ verb: 'list' })).toBe(3);
    expect(delays).toEqual([250, 500]);
  });

  it('honours Retry-After on 429 and does not retry 403', async () => {
    const server = await fakeServer();
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
    const { store, delays } = retryingStore(server);
    server.injectFault({
      match: { verb: 'get' },
      action: { kind: 'status', code: 429, retryAfterSeconds: 2 },
    });
    await store.get('shop', 'checkout');
    expect(delays).toEqual([2000]);
    server.setRules([]);
    await expect(store.get('shop', 'checkout')).rejects.toBeInstanceOf(ForbiddenError);
    expect(delays).toEqual([2000]);
  });
});

describe('authentication, authorisation and transport errors', () => {
  it('maps a wrong token to UnauthorizedError', async () => {
    const server = await fakeServer({ token: 'right' });
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.implicit] }));
    for (const token of ['wrong', null]) {
      const err = await storeFor(server, token)
        .list(['shop'])
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnauthorizedError);
      expect((err as UnauthorizedError).code).toBe(401);
    }
    expect((await storeFor(server, 'right').list(['shop'])).size).toBe(1);
  });

  it('maps 403 to ForbiddenError naming the missing permission', async () => {
    const readOnly: AccessRule[] = [
      { verbs: ['get', 'list', 'watch'], apiGroups: ['networking.istio.io'], resources: ['virtualservices'] },
    ];
    const server = await fakeServer({ rules: readOnly, user: 'system:serviceaccount:ops:mirror-autoscaler' });
    server.setVirtualService(virtualService({ http: [MIRROR_SHAPE_ROUTES.implicit] }));
    const store = storeFor(server);
    const vs = await store.get('shop', 'checkout');
    const err = await store.patchPercent(vs, locate(vs), 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect((err as Error).message).toBe(
      'patch virtualservices.networking.istio.io shop/checkout: forbidden: missing RBAC permission "patch" on virtualservices.networking.istio.io in namespace "shop" (HTTP 403 Forbidden: virtualservices.networking.istio.io "checkout" is forbidden: User "system:serviceaccount:ops:mirror-autoscaler" cannot patch resource "virtualservices" in API group "networking.istio.io" in the namespace "shop")',
    );
  });

  it('names the cluster scope when a namespaced role lists across namespaces', async () => {
    const server = await fakeServer({
      rules: [
        {
          verbs: ['list'],
          apiGroups: ['networking.istio.io'],
          resources: ['virtualservices'],
          namespaces: ['shop'],
        },
      ],
    });
    const store = storeFor(server);
    expect((await store.list(['shop'])).size).toBe(0);
    const err = await store.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect((err as Error).message).toMatch(
      /^list virtualservices\.networking\.istio\.io in all namespaces: forbidden: missing RBAC permission "list" on virtualservices\.networking\.istio\.io at cluster scope \(HTTP 403 Forbidden: .* cannot list resource "virtualservices" in API group "networking\.istio\.io" at the cluster scope\)$/,
    );
  });

  const failures: { name: string; code: number; retriable: boolean; retryAfter?: number }[] = [
    { name: '500', code: 500, retriable: true },
    { name: '503', code: 503, retriable: true },
    { name: '429 with Retry-After', code: 429, retriable: true, retryAfter: 7 },
    { name: '400', code: 400, retriable: false },
  ];
  for (const row of failures) {
    it(`maps HTTP ${row.name} to ApiError`, async () => {
      const server = await fakeServer();
      const store = storeFor(server);
      await store.servedVersion();
      server.injectFault({
        match: { verb: 'list' },
        action: {
          kind: 'status',
          code: row.code,
          ...(row.retryAfter ? { retryAfterSeconds: row.retryAfter } : {}),
        },
      });
      const err = await store.list(['shop']).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).code).toBe(row.code);
      expect((err as ApiError).retriable).toBe(row.retriable);
      if (row.retryAfter) expect((err as ApiError).retryAfterSeconds).toBe(row.retryAfter);
    });
  }

  it('maps a reset connection and a hung server to TransportError', async () => {
    const server = await fakeServer();
    const store = storeFor(server, undefined, { requestTimeoutMs: 300 });
    await store.servedVersion();
    server.injectFault({ match: { verb: 'get' }, action: { kind: 'reset' } });
    const reset = await store.get('shop', 'x').catch((e: unknown) => e);
    expect(reset).toBeInstanceOf(TransportError);
    expect((reset as Error).message).toMatch(
      /^get virtualservices\.networking\.istio\.io shop\/x: no response from the API server: /,
    );
    server.injectFault({ match: { verb: 'get' }, action: { kind: 'hang' } });
    const hung = await store.get('shop', 'x').catch((e: unknown) => e);
    expect(hung).toBeInstanceOf(TransportError);
    expect((hung as Error).message).toMatch(/timed out or was aborted/);
  });

  it('never puts the token in an error message', async () => {
    const server = await fakeServer({ token: 'right' });
    const err = await storeFor(server, 's3cr3t-t0ken')
      .list(['shop'])
      .catch((e: unknown) => e);
    expect(String((err as Error).message)).not.toContain('s3cr3t');
    expect(JSON.stringify(err)).not.toContain('s3cr3t');
  });
});
