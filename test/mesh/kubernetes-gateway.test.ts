/**
 * KubernetesRouteStore on Gateway API routes, through the real @kubernetes/client-node, against the fake API
 * server that admits HTTPRoutes and GRPCRoutes as their CRDs do (OpenAPI schema and CEL rules): every
 * filter shape is read and written, and any write the API would reject fails the test with its 422.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ApiError, DiscoveryError, NotFoundError } from '../../src/mesh/errors.js';
import { type FilterLocation, locateMirrorFilter } from '../../src/mesh/gateway.js';
import { KubernetesRouteStore } from '../../src/mesh/kubernetes.js';
import { kindOf, type RouteKind } from '../../src/mesh/route.js';
import { stateAnnotation } from '../../src/mesh/state.js';
import type { RouteObject } from '../../src/mesh/virtualservice.js';
import {
  FakeApiServer,
  type FakeApiServerOptions,
  GRPC_ROUTES,
  HTTP_ROUTES,
  type JsonObject,
} from '../support/fake-apiserver.js';
import { annotationsOfObject, gatewayRoute, gatewayRule, mirrorFilter } from '../support/kube-fixtures.js';

let server: FakeApiServer | undefined;

afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(
  options: FakeApiServerOptions = {},
): Promise<{ s: FakeApiServer; store: KubernetesRouteStore }> {
  const s = await FakeApiServer.start(options);
  server = s;
  const store = new KubernetesRouteStore(s.kubeConfig(), {
    requestTimeoutMs: 5000,
    retry: { sleep: async () => undefined },
  });
  return { s, store };
}

const RESOURCE: Record<'HTTPRoute' | 'GRPCRoute', typeof HTTP_ROUTES | typeof GRPC_ROUTES> = {
  HTTPRoute: HTTP_ROUTES,
  GRPCRoute: GRPC_ROUTES,
};

function locate(obj: RouteObject): FilterLocation[] {
  const l = locateMirrorFilter(obj, { backend: { name: 'checkout-shadow' } });
  if (!Array.isArray(l)) throw l;
  return l;
}

function mirrorOf(obj: JsonObject | undefined, l: FilterLocation): JsonObject {
  let node: unknown = obj;
  for (const key of l.path.split('/').slice(1)) {
    node = Array.isArray(node) ? node[Number(key)] : (node as JsonObject)[key];
  }
  return (node as JsonObject).requestMirror as JsonObject;
}

describe('discovery of Gateway API routes', () => {
  it('prefers v1 for HTTPRoute and GRPCRoute, and keeps VirtualServices on their own group', async () => {
    const { store } = await start();
    expect(await store.servedVersion('HTTPRoute')).toBe('v1');
    expect(await store.servedVersion('GRPCRoute')).toBe('v1');
    expect(await store.servedVersion('VirtualService')).toBe('v1');
  });

  it('fails clearly when the Gateway API is not installed, and only for its kinds', async () => {
    const { store } = await start({ gatewayApi: false });
    const err = await store.servedVersion('HTTPRoute').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DiscoveryError);
    expect((err as Error).message).toBe(
      'the API server serves no gateway.networking.k8s.io version this tool supports for HTTPRoute (v1, v1beta1); served: none (are the Gateway API CRDs installed?)',
    );
    expect(await store.servedVersion('VirtualService')).toBe('v1');
  });
});

describe('reading and writing RequestMirror filters through the API', () => {
  const kinds: ('HTTPRoute' | 'GRPCRoute')[] = ['HTTPRoute', 'GRPCRoute'];
  const shapes: {
    name: string;
    rules: JsonObject[];
    to: number;
    expected: JsonObject;
  }[] = [
    {
      name: 'percent → whole percent',
      rules: [gatewayRule([mirrorFilter('checkout-shadow', { percent: 20 })])],
      to: 35,
      expected: { percent: 35 },
    },
    {
      name: 'percent → finer value switches to fraction in one patch',
      rules: [gatewayRule([mirrorFilter('checkout-shadow', { percent: 20 })])],
      to: 12.5,
      expected: { fraction: { numerator: 125, denominator: 1000 } },
    },
    {
      name: 'fraction (denominator defaulted to 100 by the server) keeps its denominator',
      rules: [gatewayRule([mirrorFilter('checkout-shadow', { fraction: { numerator: 5 } })])],
      to: 7,
      expected: { fraction: { numerator: 7, denominator: 100 } },
    },
    {
      name: 'neither (100 %) → a cut to 40 %',
      rules: [gatewayRule([mirrorFilter('checkout-shadow')])],
      to: 40,
      expected: { percent: 40 },
    },
    {
      name: 'a filter on a backendRef, to 0.05 %',
      rules: [
        gatewayRule([], {
          backendRefs: [
            { name: 'checkout', port: 8080, filters: [mirrorFilter('checkout-shadow', { percent: 1 })] },
          ],
        }),
      ],
      to: 0.05,
      expected: { fraction: { numerator: 5, denominator: 10000 } },
    },
  ];
  for (const kind of kinds) {
    for (const shape of shapes) {
      it(`${kind}: ${shape.name}`, async () => {
        const { s, store } = await start();
        // GRPCRoute rules match methods, not paths.
        const rules =
          kind === 'GRPCRoute'
            ? shape.rules.map((r) => ({ ...r, matches: [{ method: { service: 'shop.Checkout' } }] }))
            : shape.rules;
        s.setRoute(RESOURCE[kind], gatewayRoute({ kind, rules }));
        const listed = await store.list(['shop'], kind);
        const obj = listed.get('shop/checkout') as RouteObject;
        expect(kindOf(obj)).toBe(kind);
        const got = await store.get('shop', 'checkout', kind);
        expect(got.metadata.resourceVersion).toBe(obj.metadata.resourceVersion);
        const [l] = locate(obj) as [FilterLocation];
        const written = await store.patchPercent(obj, [l], shape.to, stateAnnotation('checkout', { v: 1 }));
        // The API accepted it (no 422), and what it stores reads back as the value written.
        expect(locate(written)[0]?.percent).toBeCloseTo(shape.to, 6);
        const stored = s.getRoute(RESOURCE[kind], 'shop', 'checkout');
        const mirror = mirrorOf(stored, l);
        for (const [key, value] of Object.entries(shape.expected)) expect(mirror[key]).toEqual(value);
        expect('percent' in mirror && 'fraction' in mirror).toBe(false);
        expect(annotationsOfObject(stored)).toEqual({
          'state.mirror-autoscaler.io/checkout': '{"v":1}',
        });
        expect(s.countRequests({ verb: 'patch' })).toBe(1);
      });
    }
  }

  it('a patch the CRD rules reject is a 422 naming the field, and nothing is stored', async () => {
    const { s, store } = await start();
    s.setRoute(
      HTTP_ROUTES,
      gatewayRoute({ rules: [gatewayRule([mirrorFilter('checkout-shadow', { percent: 20 })])] }),
    );
    const obj = await store.get('shop', 'checkout', 'HTTPRoute');
    const err = await store
      .patchObject(obj, [
        { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion },
        {
          op: 'add',
          path: '/spec/rules/0/filters/0/requestMirror/fraction',
          value: { numerator: 1, denominator: 8 },
        },
      ])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(422);
    expect((err as ApiError).message).toContain(
      'Only one of percent or fraction may be specified in HTTPRequestMirrorFilter',
    );
    expect(mirrorOf(s.getRoute(HTTP_ROUTES, 'shop', 'checkout'), locate(obj)[0] as FilterLocation)).toEqual({
      backendRef: { group: '', kind: 'Service', name: 'checkout-shadow', port: 8080 },
      percent: 20,
    });
  });

  it('a missing route is NotFoundError naming the resource', async () => {
    const { store } = await start();
    const err = await store.get('shop', 'nope', 'GRPCRoute').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toMatch(
      /^get grpcroutes\.gateway\.networking\.k8s\.io shop\/nope: not found/,
    );
  });

  it('lists one kind at a time: a VirtualService and an HTTPRoute of the same name do not mix', async () => {
    const { s, store } = await start();
    s.setRoute(HTTP_ROUTES, gatewayRoute({ rules: [gatewayRule([mirrorFilter('checkout-shadow')])] }));
    const kinds = async (kind: RouteKind) =>
      [...(await store.list(['shop'], kind)).values()].map((o) => o.kind);
    expect(await kinds('HTTPRoute')).toEqual(['HTTPRoute']);
    expect(await kinds('GRPCRoute')).toEqual([]);
    expect(await kinds('VirtualService')).toEqual([]);
  });
});
