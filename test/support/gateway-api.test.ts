/**
 * Gateway API routes in the fake API server, driven by the real @kubernetes/client-node: discovery, reads,
 * and admission of what a mirror-percentage writer sends (JSON Patch guarded by `test`).
 */
import {
  ApiException,
  ApisApi,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { afterEach, describe, expect, it } from 'vitest';
import {
  FakeApiServer,
  type FakeApiServerOptions,
  GRPC_ROUTES,
  HTTP_ROUTES,
  type JsonObject,
} from './fake-apiserver.js';
import { admitRoute, implementedRules, unimplementedRules } from './gateway-api.js';

const HTTP = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'httproutes' } as const;
const GRPC = { group: 'gateway.networking.k8s.io', version: 'v1', plural: 'grpcroutes' } as const;
const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);

const servers: FakeApiServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function fakeServer(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
  const server = await FakeApiServer.start(options);
  servers.push(server);
  return server;
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

const mirror = (extra: JsonObject = { percent: 10 }): JsonObject => ({
  type: 'RequestMirror',
  requestMirror: { backendRef: { name: 'checkout-shadow', port: 8080 }, ...extra },
});

/** An HTTPRoute with a rule-level mirror filter and a backendRef-level one. */
function httpRoute(name = 'checkout'): JsonObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace: 'shop' },
    spec: {
      parentRefs: [{ name: 'edge' }],
      rules: [
        {
          filters: [mirror()],
          backendRefs: [{ name: 'checkout', port: 8080, filters: [mirror({ percent: 5 })] }],
        },
      ],
    },
  };
}

function grpcRoute(name = 'payments'): JsonObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'GRPCRoute',
    metadata: { name, namespace: 'shop' },
    spec: {
      parentRefs: [{ name: 'edge' }],
      rules: [
        {
          filters: [mirror()],
          backendRefs: [{ name: 'payments', port: 9090, filters: [mirror({ percent: 5 })] }],
        },
      ],
    },
  };
}

const RULE_MIRROR = '/spec/rules/0/filters/0/requestMirror';
const BACKEND_MIRROR = '/spec/rules/0/backendRefs/0/filters/0/requestMirror';
const field = (pointer: string) =>
  pointer
    .slice(1)
    .replace(/\/(\d+)/g, '[$1]')
    .replaceAll('/', '.');
const BLOCKED = {
  reason: 'FieldValueInvalid',
  message:
    'Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
  field: '<nil>',
};

describe('Gateway API discovery', () => {
  it('lists the group, v1 preferred over v1beta1, and the route resources of each version', async () => {
    const server = await fakeServer();
    const kc = server.kubeConfig();
    const groups = await kc.makeApiClient(ApisApi).getAPIVersions();
    const gateway = groups.groups.find((g) => g.name === 'gateway.networking.k8s.io');
    expect(gateway?.versions.map((v) => v.groupVersion)).toEqual([
      'gateway.networking.k8s.io/v1',
      'gateway.networking.k8s.io/v1beta1',
    ]);
    expect(gateway?.preferredVersion?.version).toBe('v1');
    const api = kc.makeApiClient(CustomObjectsApi);
    const v1 = await api.getAPIResources({ group: 'gateway.networking.k8s.io', version: 'v1' });
    expect(v1.resources.map((r) => [r.name, r.singularName, r.kind, r.namespaced, r.categories])).toEqual([
      ['httproutes', 'httproute', 'HTTPRoute', true, ['gateway-api']],
      ['grpcroutes', 'grpcroute', 'GRPCRoute', true, ['gateway-api']],
    ]);
    const v1beta1 = await api.getAPIResources({ group: 'gateway.networking.k8s.io', version: 'v1beta1' });
    expect(v1beta1.resources.map((r) => r.name)).toEqual(['httproutes']);
    // The Istio group is still there.
    expect(groups.groups.map((g) => g.name)).toContain('networking.istio.io');
  });

  it('leaves the group out when Gateway API is not installed', async () => {
    const server = await fakeServer({ gatewayApi: false });
    const kc = server.kubeConfig();
    const groups = await kc.makeApiClient(ApisApi).getAPIVersions();
    expect(groups.groups.map((g) => g.name)).not.toContain('gateway.networking.k8s.io');
    const api = kc.makeApiClient(CustomObjectsApi);
    server.setRoute(HTTP_ROUTES, httpRoute());
    const err = await apiError(
      api.getNamespacedCustomObject({ ...HTTP, namespace: 'shop', name: 'checkout' }),
    );
    expect([err.code, err.body.message]).toEqual([404, 'the server could not find the requested resource']);
  });
});

describe('Gateway API reads and writes', () => {
  it('creates routes with the CRD defaults applied and status dropped, and reads them in every version', async () => {
    const server = await fakeServer();
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const body = httpRoute();
    (body.spec as JsonObject).rules = [{ filters: [mirror({ fraction: { numerator: 1 } })] }];
    body.status = { parents: [] };
    const created = await api.createNamespacedCustomObject({ ...HTTP, namespace: 'shop', body });
    expect(created.apiVersion).toBe('gateway.networking.k8s.io/v1');
    expect(created.kind).toBe('HTTPRoute');
    expect(created.metadata).toMatchObject({ name: 'checkout', namespace: 'shop', generation: 1 });
    expect(created.status).toBeUndefined();
    expect(created.spec).toEqual({
      parentRefs: [{ name: 'edge', group: 'gateway.networking.k8s.io', kind: 'Gateway' }],
      rules: [
        {
          filters: [
            {
              type: 'RequestMirror',
              requestMirror: {
                backendRef: { name: 'checkout-shadow', port: 8080, group: '', kind: 'Service' },
                fraction: { numerator: 1, denominator: 100 },
              },
            },
          ],
          matches: [{ path: { type: 'PathPrefix', value: '/' } }],
        },
      ],
    });
    const beta = await api.getNamespacedCustomObject({
      ...HTTP,
      version: 'v1beta1',
      namespace: 'shop',
      name: 'checkout',
    });
    expect(beta).toEqual({ ...created, apiVersion: 'gateway.networking.k8s.io/v1beta1' });
    expect(server.getRoute(HTTP_ROUTES, 'shop', 'checkout')).toEqual(created);

    const grpc = await api.createNamespacedCustomObject({ ...GRPC, namespace: 'shop', body: grpcRoute() });
    expect(grpc.kind).toBe('GRPCRoute');
    expect(grpc.spec.rules[0].backendRefs[0]).toMatchObject({ group: '', kind: 'Service', weight: 1 });
    const list = (await api.listNamespacedCustomObject({ ...GRPC, namespace: 'shop' })) as JsonObject;
    expect(list.apiVersion).toBe('gateway.networking.k8s.io/v1');
    expect(list.kind).toBe('GRPCRouteList');
    expect(list.items).toEqual([grpc]);
    const all = (await api.listClusterCustomObject({ ...HTTP, version: 'v1beta1' })) as JsonObject;
    expect((all.items as JsonObject[]).map((i) => [i.apiVersion, i.kind])).toEqual([
      ['gateway.networking.k8s.io/v1beta1', 'HTTPRoute'],
    ]);
  });

  it('keeps the stored status on patches and seeds routes through setRoute, refusing invalid ones', async () => {
    const server = await fakeServer();
    const seeded = server.setRoute(HTTP_ROUTES, { ...httpRoute(), status: { parents: [] } });
    expect(seeded.status).toEqual({ parents: [] });
    expect((seeded.spec as JsonObject).rules).toMatchObject([{ matches: [{ path: { value: '/' } }] }]);
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const patched = await api.patchNamespacedCustomObject(
      {
        ...HTTP,
        namespace: 'shop',
        name: 'checkout',
        body: [
          { op: 'replace', path: `${RULE_MIRROR}/percent`, value: 20 },
          { op: 'remove', path: '/status' },
        ],
      },
      JSON_PATCH,
    );
    expect(patched.status).toEqual({ parents: [] });
    expect(patched.metadata.generation).toBe(2);
    const bad = httpRoute('bad');
    ((bad.spec as JsonObject).rules as JsonObject[])[0] = { filters: [mirror({ percent: 101 })] };
    expect(() => server.setRoute(HTTP_ROUTES, bad)).toThrow(
      'HTTPRoute.gateway.networking.k8s.io "bad" is invalid: spec.rules[0].filters[0].requestMirror.percent: Invalid value: 101: spec.rules[0].filters[0].requestMirror.percent in body should be less than or equal to 100',
    );
    expect(server.getRoute(HTTP_ROUTES, 'shop', 'bad')).toBeUndefined();
  });
});

describe('Gateway API mirror filter validation', () => {
  /** Seeds both kinds, sends `ops` as a JSON Patch to each, and returns the error per kind. */
  async function rejected(ops: (base: string) => JsonObject[]) {
    const server = await fakeServer();
    server.setRoute(HTTP_ROUTES, httpRoute());
    server.setRoute(GRPC_ROUTES, grpcRoute());
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    const results: { kind: string; base: string; code: number; body: JsonObject }[] = [];
    for (const [kind, target] of [
      ['HTTPRoute', { ...HTTP, name: 'checkout' }],
      ['GRPCRoute', { ...GRPC, name: 'payments' }],
    ] as const) {
      for (const base of [RULE_MIRROR, BACKEND_MIRROR]) {
        const err = await apiError(
          api.patchNamespacedCustomObject({ ...target, namespace: 'shop', body: ops(base) }, JSON_PATCH),
        );
        results.push({ kind, base, ...err });
      }
    }
    // Nothing was written.
    expect(server.getRoute(HTTP_ROUTES, 'shop', 'checkout')?.metadata).toMatchObject({ generation: 1 });
    expect(server.getRoute(GRPC_ROUTES, 'shop', 'payments')?.metadata).toMatchObject({ generation: 1 });
    return results;
  }

  it('answers percent 101 with 422 Invalid in the API server words', async () => {
    const results = await rejected((base) => [
      { op: 'test', path: `${base}/percent`, value: base === RULE_MIRROR ? 10 : 5 },
      { op: 'replace', path: `${base}/percent`, value: 101 },
    ]);
    for (const { kind, base, code, body } of results) {
      const f = `${field(base)}.percent`;
      const name = kind === 'HTTPRoute' ? 'checkout' : 'payments';
      const message = `Invalid value: 101: ${f} in body should be less than or equal to 100`;
      expect(code).toBe(422);
      expect(body).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: `${kind}.gateway.networking.k8s.io "${name}" is invalid: ${f}: ${message}`,
        reason: 'Invalid',
        details: {
          name,
          group: 'gateway.networking.k8s.io',
          kind,
          causes: [{ reason: 'FieldValueInvalid', message, field: f }],
        },
        code: 422,
      });
    }
  });

  it('rejects a negative percent and a percent of 12.5 (a type error, which skips the CEL rules)', async () => {
    for (const { base, code, body } of await rejected((base) => [
      { op: 'replace', path: `${base}/percent`, value: -1 },
    ])) {
      expect([code, (body.details as JsonObject).causes]).toEqual([
        422,
        [
          {
            reason: 'FieldValueInvalid',
            message: `Invalid value: -1: ${field(base)}.percent in body should be greater than or equal to 0`,
            field: `${field(base)}.percent`,
          },
        ],
      ]);
    }
    for (const { base, code, body } of await rejected((base) => [
      { op: 'replace', path: `${base}/percent`, value: 12.5 },
    ])) {
      const f = `${field(base)}.percent`;
      expect([code, (body.details as JsonObject).causes]).toEqual([
        422,
        [
          {
            reason: 'FieldValueTypeInvalid',
            message: `Invalid value: "number": ${f} in body must be of type integer: "number"`,
            field: f,
          },
          BLOCKED,
        ],
      ]);
      expect(body.message).toContain(`[${f}: Invalid value: "number"`);
      expect(body.message).toContain(
        ', <nil>: Invalid value: "null": some validation rules were not checked',
      );
    }
  });

  it('rejects percent and fraction together with the CRD rule message', async () => {
    for (const { kind, base, code, body } of await rejected((base) => [
      { op: 'add', path: `${base}/fraction`, value: { numerator: 1, denominator: 1000 } },
    ])) {
      expect([kind, code, (body.details as JsonObject).causes]).toEqual([
        kind,
        422,
        [
          {
            reason: 'FieldValueInvalid',
            // GRPCRoute's CRD says HTTPRequestMirrorFilter too.
            message:
              'Invalid value: "object": Only one of percent or fraction may be specified in HTTPRequestMirrorFilter',
            field: field(base),
          },
        ],
      ]);
    }
  });

  it('rejects numerator > denominator, denominator 0 and a negative numerator', async () => {
    const fraction = (value: JsonObject) => (base: string) => [
      { op: 'remove', path: `${base}/percent` },
      { op: 'add', path: `${base}/fraction`, value },
    ];
    for (const { base, body } of await rejected(fraction({ numerator: 101 }))) {
      expect((body.details as JsonObject).causes).toEqual([
        {
          reason: 'FieldValueInvalid',
          message: 'Invalid value: "object": numerator must be less than or equal to denominator',
          field: `${field(base)}.fraction`,
        },
      ]);
    }
    for (const { base, body } of await rejected(fraction({ numerator: 0, denominator: 0 }))) {
      expect((body.details as JsonObject).causes).toEqual([
        {
          reason: 'FieldValueInvalid',
          message: `Invalid value: 0: ${field(base)}.fraction.denominator in body should be greater than or equal to 1`,
          field: `${field(base)}.fraction.denominator`,
        },
      ]);
    }
    for (const { base, body } of await rejected(fraction({ numerator: -1, denominator: 10 }))) {
      expect((body.details as JsonObject).causes).toEqual([
        {
          reason: 'FieldValueInvalid',
          message: `Invalid value: -1: ${field(base)}.fraction.numerator in body should be greater than or equal to 0`,
          field: `${field(base)}.fraction.numerator`,
        },
      ]);
    }
    for (const { base, body } of await rejected(fraction({ denominator: 10 }))) {
      expect((body.details as JsonObject).causes).toEqual([
        {
          reason: 'FieldValueRequired',
          message: 'Required value',
          field: `${field(base)}.fraction.numerator`,
        },
        BLOCKED,
      ]);
    }
  });

  it('ties the filter type to its field, and requires the mirror backendRef and its name', async () => {
    for (const { base, body } of await rejected((base) => [
      { op: 'replace', path: base.replace(/requestMirror$/, 'type'), value: 'RequestHeaderModifier' },
    ])) {
      expect((body.details as JsonObject).causes).toEqual([
        // In the order of the CRD's rules.
        {
          reason: 'FieldValueInvalid',
          message:
            'Invalid value: "object": filter.requestHeaderModifier must be specified for RequestHeaderModifier filter.type',
          field: field(base.replace(/\/requestMirror$/, '')),
        },
        {
          reason: 'FieldValueInvalid',
          message:
            'Invalid value: "object": filter.requestMirror must be nil if the filter.type is not RequestMirror',
          field: field(base.replace(/\/requestMirror$/, '')),
        },
      ]);
    }
    for (const { base, body } of await rejected((base) => [{ op: 'remove', path: base }])) {
      expect((body.details as JsonObject).causes).toEqual([
        {
          reason: 'FieldValueInvalid',
          message:
            'Invalid value: "object": filter.requestMirror must be specified for RequestMirror filter.type',
          field: field(base.replace(/\/requestMirror$/, '')),
        },
      ]);
    }
    for (const { base, body } of await rejected((base) => [{ op: 'remove', path: `${base}/backendRef` }])) {
      expect((body.details as JsonObject).causes).toEqual([
        { reason: 'FieldValueRequired', message: 'Required value', field: `${field(base)}.backendRef` },
        BLOCKED,
      ]);
    }
    for (const { base, body } of await rejected((base) => [
      { op: 'remove', path: `${base}/backendRef/name` },
    ])) {
      expect((body.details as JsonObject).causes).toEqual([
        { reason: 'FieldValueRequired', message: 'Required value', field: `${field(base)}.backendRef.name` },
        BLOCKED,
      ]);
    }
    for (const { base, body } of await rejected((base) => [
      { op: 'remove', path: `${base}/backendRef/port` },
    ])) {
      expect((body.details as JsonObject).causes).toEqual([
        {
          reason: 'FieldValueInvalid',
          message: 'Invalid value: "object": Must have port for Service reference',
          field: `${field(base)}.backendRef`,
        },
      ]);
    }
  });

  it('rejects an unknown filter type and more than 16 filters', async () => {
    for (const { kind, base, body } of await rejected((base) => [
      { op: 'replace', path: base.replace(/requestMirror$/, 'type'), value: 'Mirror' },
    ])) {
      const supported =
        kind === 'HTTPRoute'
          ? '"RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect", "URLRewrite", "ExtensionRef", "CORS"'
          : '"ResponseHeaderModifier", "RequestHeaderModifier", "RequestMirror", "ExtensionRef"';
      expect((body.details as JsonObject).causes).toEqual([
        {
          reason: 'FieldValueNotSupported',
          message: `Unsupported value: "Mirror": supported values: ${supported}`,
          field: field(base.replace(/requestMirror$/, 'type')),
        },
        BLOCKED,
      ]);
    }
    for (const { base, body } of await rejected((base) =>
      Array.from({ length: 16 }, () => ({
        op: 'add',
        path: base.replace(/0\/requestMirror$/, '-'),
        value: mirror(),
      })),
    )) {
      expect((body.details as JsonObject).causes).toEqual([
        {
          reason: 'FieldValueTooMany',
          message: 'Too many: 17: must have at most 16 items',
          field: field(base.replace(/\/0\/requestMirror$/, '')),
        },
        BLOCKED,
      ]);
    }
  });

  it('accepts a switch from percent to fraction in one patch, defaulting the denominator', async () => {
    const server = await fakeServer();
    server.setRoute(HTTP_ROUTES, httpRoute());
    server.setRoute(GRPC_ROUTES, grpcRoute());
    const api = server.kubeConfig().makeApiClient(CustomObjectsApi);
    for (const target of [
      { ...HTTP, name: 'checkout' },
      { ...GRPC, name: 'payments' },
    ]) {
      for (const [base, before] of [
        [RULE_MIRROR, 10],
        [BACKEND_MIRROR, 5],
      ] as const) {
        const patched = await api.patchNamespacedCustomObject(
          {
            ...target,
            namespace: 'shop',
            body: [
              { op: 'test', path: `${base}/percent`, value: before },
              { op: 'remove', path: `${base}/percent` },
              { op: 'add', path: `${base}/fraction`, value: { numerator: 37 } },
            ],
          },
          JSON_PATCH,
        );
        const at = base
          .slice(1)
          .split('/')
          .reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], patched);
        expect(at).toEqual({
          backendRef: { name: 'checkout-shadow', port: 8080, group: '', kind: 'Service' },
          fraction: { numerator: 37, denominator: 100 },
        });
      }
    }
    expect(server.getRoute(GRPC_ROUTES, 'shop', 'payments')?.metadata).toMatchObject({ generation: 3 });
    // And back: numerator 250 over denominator 1000 is fine, 250 over the default 100 is not.
    const back = (fraction: JsonObject) =>
      api.patchNamespacedCustomObject(
        {
          ...HTTP,
          name: 'checkout',
          namespace: 'shop',
          body: [{ op: 'replace', path: `${RULE_MIRROR}/fraction`, value: fraction }],
        },
        JSON_PATCH,
      );
    expect((await apiError(back({ numerator: 250 }))).code).toBe(422);
    const ok = await back({ numerator: 250, denominator: 1000 });
    expect(ok.spec.rules[0].filters[0].requestMirror.fraction).toEqual({ numerator: 250, denominator: 1000 });
  });
});

describe('Gateway API admission details', () => {
  it('prunes unknown fields with a Warning header, and refuses them under strict field validation', async () => {
    const server = await fakeServer();
    server.setRoute(HTTP_ROUTES, httpRoute());
    const path = '/apis/gateway.networking.k8s.io/v1/namespaces/shop/httproutes/checkout';
    const send = (query: string) =>
      fetch(`${server.url}${path}${query}`, {
        method: 'PATCH',
        headers: { Authorization: 'Bearer test-token', 'Content-Type': 'application/json-patch+json' },
        body: JSON.stringify([{ op: 'add', path: `${RULE_MIRROR}/percentage`, value: 50 }]),
      });
    const strict = await send('?fieldValidation=Strict');
    expect(strict.status).toBe(400);
    expect(((await strict.json()) as JsonObject).message).toBe(
      'strict decoding error: unknown field "spec.rules[0].filters[0].requestMirror.percentage"',
    );
    const warned = await send('');
    expect(warned.status).toBe(200);
    expect(warned.headers.get('warning')).toBe(
      '299 - "unknown field \\"spec.rules[0].filters[0].requestMirror.percentage\\""',
    );
    const body = (await warned.json()) as JsonObject;
    expect(body.metadata).toMatchObject({ generation: 1 });
    expect(server.getRoute(HTTP_ROUTES, 'shop', 'checkout')).toEqual(body);
  });

  it('evaluates every CEL rule about filters, and nulls become defaults or disappear', () => {
    expect(unimplementedRules().filter((r) => r.path.includes('.filters'))).toEqual([]);
    expect(implementedRules().map((r) => r.message)).toContain(
      'Only one of percent or fraction may be specified in HTTPRequestMirrorFilter',
    );
    const route = httpRoute();
    ((route.spec as JsonObject).rules as JsonObject[])[0] = {
      filters: [mirror({ percent: null, fraction: { numerator: 3, denominator: null } })],
    };
    const admitted = admitRoute('HTTPRoute', route);
    expect(admitted.causes).toEqual([]);
    expect((admitted.object.spec as JsonObject).rules).toMatchObject([
      { filters: [{ requestMirror: { fraction: { numerator: 3, denominator: 100 } } }] },
    ]);
    const rules = (admitted.object.spec as JsonObject).rules as {
      filters: { requestMirror: JsonObject }[];
    }[];
    expect(rules[0]?.filters[0]?.requestMirror).not.toHaveProperty('percent');
  });
});
