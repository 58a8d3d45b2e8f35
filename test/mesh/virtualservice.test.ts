import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { MeshError, type MeshErrorCode } from '../../src/mesh/errors.js';
import {
  asVirtualService,
  buildPercentPatch,
  canonicalHost,
  currentPercent,
  isNoopChange,
  type JsonPatchOp,
  locateMirrors,
  type MirrorLocation,
  type MirrorSelector,
  PAUSED_ANNOTATION,
  pauseState,
  roundPercent,
  sameHost,
  type VirtualService,
} from '../../src/mesh/virtualservice.js';
import type { JsonObject } from '../support/fake-apiserver.js';
import { MIRROR_SHAPE_ROUTES, PRIMARY_ROUTE, virtualService } from '../support/kube-fixtures.js';

const SHADOW: MirrorSelector = { host: 'checkout-shadow' };

function vsWith(http: readonly JsonObject[], annotations?: Record<string, string>): VirtualService {
  const vs = asVirtualService(
    virtualService({ http, resourceVersion: '7', ...(annotations === undefined ? {} : { annotations }) }),
  );
  if (vs instanceof MeshError) throw vs;
  return vs;
}

function located(vs: unknown, sel: MirrorSelector): MirrorLocation[] {
  const result = locateMirrors(vs, sel);
  if (result instanceof MeshError) throw result;
  return result;
}

/** Applies our patch with an independent RFC 6902 implementation (fast-json-patch), validating every op. */
function applied(vs: VirtualService, ops: readonly JsonPatchOp[]): JsonObject {
  return jsonpatch.applyPatch(structuredClone(vs), ops as jsonpatch.Operation[], true, false)
    .newDocument as unknown as JsonObject;
}

describe('locateMirrors: every mirror shape', () => {
  const rows: {
    name: string;
    http: JsonObject[];
    sel?: MirrorSelector;
    expected: Partial<MirrorLocation>[];
    unnamed?: boolean;
  }[] = [
    {
      name: 'mirror + mirrorPercentage.value',
      http: [MIRROR_SHAPE_ROUTES.mirrorPercentage],
      expected: [
        {
          routeIndex: 0,
          routeName: 'primary',
          shape: 'mirrorPercentage',
          percent: 37.5,
          path: '/spec/http/0/mirrorPercentage/value',
          host: 'checkout-shadow',
          subset: 'shadow',
        },
      ],
    },
    {
      name: 'mirror + empty mirrorPercentage is 0 % (protobuf default)',
      http: [{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: {} }],
      expected: [{ shape: 'mirrorPercentage', percent: 0 }],
    },
    {
      name: 'mirror + deprecated mirrorPercent',
      http: [MIRROR_SHAPE_ROUTES.mirrorPercent],
      expected: [{ shape: 'mirrorPercent', percent: 20, path: '/spec/http/0/mirrorPercentage/value' }],
    },
    {
      name: 'mirror + deprecated mirror_percent',
      http: [MIRROR_SHAPE_ROUTES.mirror_percent],
      expected: [{ shape: 'mirror_percent', percent: 30, path: '/spec/http/0/mirrorPercentage/value' }],
    },
    {
      name: 'mirrorPercentage wins over mirrorPercent when both are set',
      http: [{ ...MIRROR_SHAPE_ROUTES.mirrorPercentage, mirrorPercent: 90 }],
      expected: [{ shape: 'mirrorPercentage', percent: 37.5 }],
    },
    {
      name: 'mirror with no percentage is 100 %',
      http: [MIRROR_SHAPE_ROUTES.implicit],
      expected: [{ shape: 'implicit', percent: 100, path: '/spec/http/0/mirrorPercentage/value' }],
    },
    {
      name: 'mirrorPercentage: null is unset, so 100 %',
      http: [{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: null }],
      expected: [{ shape: 'implicit', percent: 100 }],
    },
    {
      name: 'mirrors list: only the entry to the target, with its percentage',
      http: [MIRROR_SHAPE_ROUTES.mirrors],
      expected: [
        {
          shape: 'mirrors',
          mirrorsIndex: 1,
          percent: 12,
          path: '/spec/http/0/mirrors/1/percentage/value',
          host: 'checkout-shadow',
          subset: 'shadow',
        },
      ],
    },
    {
      name: 'mirrors entry without percentage is 100 %',
      http: [MIRROR_SHAPE_ROUTES.mirrorsImplicit],
      expected: [
        { shape: 'mirrors', mirrorsIndex: 0, percent: 100, path: '/spec/http/0/mirrors/0/percentage/value' },
      ],
    },
    {
      name: 'every route mirroring to the target when no route is named',
      http: [
        MIRROR_SHAPE_ROUTES.mirrorPercent,
        { ...PRIMARY_ROUTE, mirror: { host: 'elsewhere' } },
        { ...MIRROR_SHAPE_ROUTES.mirrors, name: 'secondary' },
      ],
      expected: [
        { routeIndex: 0, routeName: 'primary', shape: 'mirrorPercent', percent: 20 },
        { routeIndex: 2, routeName: 'secondary', shape: 'mirrors', mirrorsIndex: 1, percent: 12 },
      ],
    },
    {
      name: 'only the named route when a route is named',
      http: [MIRROR_SHAPE_ROUTES.mirrorPercent, { ...MIRROR_SHAPE_ROUTES.mirrors, name: 'secondary' }],
      sel: { route: 'secondary', host: 'checkout-shadow' },
      expected: [{ routeIndex: 1, routeName: 'secondary', shape: 'mirrors', percent: 12 }],
    },
    {
      name: 'unnamed routes have no routeName',
      http: [(({ name: _, ...rest }) => rest)(MIRROR_SHAPE_ROUTES.implicit)],
      expected: [{ routeIndex: 0, shape: 'implicit' }],
      unnamed: true,
    },
    {
      name: 'subset must match when the selector has one',
      http: [
        {
          ...PRIMARY_ROUTE,
          mirrors: [
            { destination: { host: 'checkout-shadow', subset: 'v1' }, percentage: { value: 1 } },
            { destination: { host: 'checkout-shadow', subset: 'v2' }, percentage: { value: 2 } },
          ],
        },
      ],
      sel: { host: 'checkout-shadow', subset: 'v2' },
      expected: [{ mirrorsIndex: 1, percent: 2, subset: 'v2' }],
    },
    {
      name: 'any subset matches when the selector has none',
      http: [
        {
          ...PRIMARY_ROUTE,
          mirrors: [
            { destination: { host: 'checkout-shadow', subset: 'v1' }, percentage: { value: 1 } },
            { destination: { host: 'checkout-shadow', subset: 'v2' }, percentage: { value: 2 } },
          ],
        },
      ],
      expected: [{ mirrorsIndex: 0 }, { mirrorsIndex: 1 }],
    },
  ];

  for (const row of rows) {
    it(row.name, () => {
      const vs = vsWith(row.http);
      const result = located(vs, row.sel ?? SHADOW);
      expect(result).toHaveLength(row.expected.length);
      row.expected.forEach((expected, i) => {
        expect(result[i]).toMatchObject(expected);
        if (row.unnamed) expect(result[i]).not.toHaveProperty('routeName');
      });
    });
  }
});

describe('host matching', () => {
  const rows: { name: string; mirrorHost: string; selHost: string; match: boolean }[] = [
    {
      name: 'short name = FQDN',
      mirrorHost: 'checkout-shadow',
      selHost: 'checkout-shadow.shop.svc.cluster.local',
      match: true,
    },
    {
      name: 'name.ns = short name',
      mirrorHost: 'checkout-shadow.shop',
      selHost: 'checkout-shadow',
      match: true,
    },
    {
      name: 'name.ns.svc = name.ns',
      mirrorHost: 'checkout-shadow.shop.svc',
      selHost: 'checkout-shadow.shop',
      match: true,
    },
    {
      name: 'case and trailing dot ignored',
      mirrorHost: 'Checkout-Shadow.shop.svc.cluster.local.',
      selHost: 'checkout-shadow',
      match: true,
    },
    {
      name: 'other namespace differs',
      mirrorHost: 'checkout-shadow.test',
      selHost: 'checkout-shadow',
      match: false,
    },
    { name: 'other service differs', mirrorHost: 'checkout', selHost: 'checkout-shadow', match: false },
    {
      name: 'external hosts compare literally',
      mirrorHost: 'shadow.example.com',
      selHost: 'shadow.example.com',
      match: true,
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const vs = vsWith([{ ...PRIMARY_ROUTE, mirror: { host: row.mirrorHost } }]);
      const result = locateMirrors(vs, { host: row.selHost });
      if (row.match) expect(result).not.toBeInstanceOf(MeshError);
      else expect(result).toBeInstanceOf(MeshError);
      expect(sameHost(row.mirrorHost, row.selHost, 'shop')).toBe(row.match);
    });
  }

  it('expands short names against the given namespace and cluster domain', () => {
    expect(canonicalHost('a', 'ns')).toBe('a.ns.svc.cluster.local');
    expect(canonicalHost('a', 'ns', 'corp.internal')).toBe('a.ns.svc.corp.internal');
    expect(canonicalHost('a.b.c.d', 'ns')).toBe('a.b.c.d');
  });

  it('resolves short names against selector.namespace when given', () => {
    const vs = vsWith([{ ...PRIMARY_ROUTE, mirror: { host: 'checkout-shadow.test' } }]);
    expect(locateMirrors(vs, { host: 'checkout-shadow', namespace: 'test' })).not.toBeInstanceOf(MeshError);
  });
});

describe('locateMirrors: strange shapes are typed errors', () => {
  const rows: { name: string; vs: unknown; sel?: MirrorSelector; code: MeshErrorCode; message: string }[] = [
    {
      name: 'both mirror and mirrors on a named route',
      vs: virtualService({
        resourceVersion: '7',
        http: [
          { name: 'a', ...PRIMARY_ROUTE },
          { name: 'b', ...PRIMARY_ROUTE },
          { ...MIRROR_SHAPE_ROUTES.mirrors, mirror: { host: 'other' } },
        ],
      }),
      sel: { route: 'primary', host: 'checkout-shadow' },
      code: 'BothMirrorAndMirrors',
      message:
        'VirtualService shop/checkout: http[2] (name "primary"): route has both mirror and mirrors; Istio rejects this',
    },
    {
      name: 'both mirror and mirrors, found by host',
      vs: virtualService({
        resourceVersion: '7',
        http: [
          {
            ...PRIMARY_ROUTE,
            mirror: { host: 'checkout-shadow' },
            mirrors: [{ destination: { host: 'x' } }],
          },
        ],
      }),
      code: 'BothMirrorAndMirrors',
      message: 'VirtualService shop/checkout: http[0]: route has both mirror and mirrors; Istio rejects this',
    },
    {
      name: 'percentage above 100',
      vs: virtualService({
        resourceVersion: '7',
        http: [{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: { value: 150 } }],
      }),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): mirrorPercentage.value: must be a number between 0 and 100 (got 150)',
    },
    {
      name: 'negative percentage',
      vs: virtualService({
        resourceVersion: '7',
        http: [{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: { value: -3 } }],
      }),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): mirrorPercentage.value: must be a number between 0 and 100 (got -3)',
    },
    {
      name: 'percentage is a string',
      vs: virtualService({
        resourceVersion: '7',
        http: [{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: { value: '50' } }],
      }),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): mirrorPercentage.value: must be a number between 0 and 100 (got "50")',
    },
    {
      name: 'percentage is not finite',
      vs: virtualService({
        resourceVersion: '7',
        http: [{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: { value: Number.POSITIVE_INFINITY } }],
      }),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): mirrorPercentage.value: must be a number between 0 and 100 (got Infinity)',
    },
    {
      name: 'mirrorPercentage is a bare number',
      vs: virtualService({
        resourceVersion: '7',
        http: [{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: 50 }],
      }),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): mirrorPercentage: must be an object like {value: 50} (got 50)',
    },
    {
      name: 'deprecated mirrorPercent is not an integer',
      vs: virtualService({
        resourceVersion: '7',
        http: [{ ...MIRROR_SHAPE_ROUTES.mirrorPercent, mirrorPercent: 12.5 }],
      }),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): mirrorPercent: must be an integer between 0 and 100 (got 12.5)',
    },
    {
      name: 'both deprecated fields',
      vs: virtualService({
        resourceVersion: '7',
        http: [{ ...MIRROR_SHAPE_ROUTES.mirrorPercent, mirror_percent: 30 }],
      }),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): both mirrorPercent and mirror_percent are set (got 20 and 30); keep one',
    },
    {
      name: 'mirrors entry percentage out of range',
      vs: virtualService({
        resourceVersion: '7',
        http: [
          {
            ...PRIMARY_ROUTE,
            mirrors: [{ destination: { host: 'checkout-shadow' }, percentage: { value: 101 } }],
          },
        ],
      }),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0]: mirrors[0].percentage.value: must be a number between 0 and 100 (got 101)',
    },
    {
      name: 'named route not found',
      vs: virtualService({
        resourceVersion: '7',
        http: [MIRROR_SHAPE_ROUTES.implicit, { ...PRIMARY_ROUTE }],
      }),
      sel: { route: 'canary', host: 'checkout-shadow' },
      code: 'RouteNotFound',
      message:
        'VirtualService shop/checkout: no http route named "canary" (routes: "primary", http[1] unnamed)',
    },
    {
      name: 'named route without a mirror to the target',
      vs: virtualService({
        resourceVersion: '7',
        http: [{ ...MIRROR_SHAPE_ROUTES.implicit, mirror: { host: 'audit-sink' } }],
      }),
      sel: { route: 'primary', host: 'checkout-shadow', subset: 'shadow' },
      code: 'NoMirrorToTarget',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): no mirror to host "checkout-shadow" subset "shadow" (mirrors to: "audit-sink")',
    },
    {
      name: 'no route mirrors to the target',
      vs: virtualService({ resourceVersion: '7', http: [{ ...PRIMARY_ROUTE }] }),
      code: 'NoMirrorToTarget',
      message: 'VirtualService shop/checkout: no http route mirrors to host "checkout-shadow" (no mirrors)',
    },
    {
      name: 'subset differs',
      vs: virtualService({ resourceVersion: '7', http: [MIRROR_SHAPE_ROUTES.implicit] }),
      sel: { host: 'checkout-shadow', subset: 'canary' },
      code: 'NoMirrorToTarget',
      message:
        'VirtualService shop/checkout: no http route mirrors to host "checkout-shadow" subset "canary" (mirrors to: "checkout-shadow")',
    },
    {
      name: 'spec.http missing',
      vs: { ...virtualService({ resourceVersion: '7', http: [] }), spec: { hosts: ['checkout'], tcp: [] } },
      code: 'NoHttpRoutes',
      message:
        'VirtualService shop/checkout: spec.http: missing or empty (got nothing); only HTTP routes can mirror',
    },
    {
      name: 'spec.http empty',
      vs: virtualService({ resourceVersion: '7', http: [] }),
      code: 'NoHttpRoutes',
      message:
        'VirtualService shop/checkout: spec.http: missing or empty (got []); only HTTP routes can mirror',
    },
    {
      name: 'mirror without host',
      vs: virtualService({ resourceVersion: '7', http: [{ ...PRIMARY_ROUTE, mirror: { subset: 'x' } }] }),
      code: 'InvalidMirror',
      message: 'VirtualService shop/checkout: http[0]: mirror.host: must be a non-empty string (got nothing)',
    },
    {
      name: 'route is not an object',
      vs: virtualService({ resourceVersion: '7', http: ['oops' as unknown as JsonObject] }),
      code: 'InvalidObject',
      message: 'VirtualService shop/checkout: http[0]: must be an object (got "oops")',
    },
    {
      name: 'object without resourceVersion',
      vs: virtualService({ http: [MIRROR_SHAPE_ROUTES.implicit] }),
      code: 'InvalidObject',
      message:
        'VirtualService shop/checkout: metadata.resourceVersion: must be a non-empty string (got nothing)',
    },
  ];

  for (const row of rows) {
    it(row.name, () => {
      const result = locateMirrors(row.vs, row.sel ?? SHADOW);
      expect(result).toBeInstanceOf(MeshError);
      const err = result as MeshError;
      expect(err.code).toBe(row.code);
      expect(err.message).toBe(row.message);
      expect(err.virtualService).toBe('shop/checkout');
    });
  }

  it('ignores strange shapes in routes that do not mirror to the target', () => {
    const vs = vsWith([
      { ...PRIMARY_ROUTE, mirror: { host: 'other' }, mirrors: [{ destination: { host: 'other2' } }] },
      MIRROR_SHAPE_ROUTES.mirrorPercentage,
    ]);
    expect(located(vs, SHADOW)).toHaveLength(1);
  });
});

describe('buildPercentPatch', () => {
  const annotations = { 'mirror-autoscaler.io/last-change': '2026-11-26T07:00:00Z' };

  /** Expected route after writing 42.5, per shape. */
  const rows: { name: string; route: JsonObject; expectedRoute: JsonObject }[] = [
    {
      name: 'mirrorPercentage: value replaced',
      route: MIRROR_SHAPE_ROUTES.mirrorPercentage,
      expectedRoute: { ...MIRROR_SHAPE_ROUTES.mirrorPercentage, mirrorPercentage: { value: 42.5 } },
    },
    {
      name: 'deprecated mirrorPercent replaced by mirrorPercentage',
      route: MIRROR_SHAPE_ROUTES.mirrorPercent,
      expectedRoute: (() => {
        const { mirrorPercent: _, ...rest } = MIRROR_SHAPE_ROUTES.mirrorPercent;
        return { ...rest, mirrorPercentage: { value: 42.5 } };
      })(),
    },
    {
      name: 'deprecated mirror_percent replaced by mirrorPercentage',
      route: MIRROR_SHAPE_ROUTES.mirror_percent,
      expectedRoute: (() => {
        const { mirror_percent: _, ...rest } = MIRROR_SHAPE_ROUTES.mirror_percent;
        return { ...rest, mirrorPercentage: { value: 42.5 } };
      })(),
    },
    {
      name: 'implicit 100 %: mirrorPercentage added',
      route: MIRROR_SHAPE_ROUTES.implicit,
      expectedRoute: { ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: { value: 42.5 } },
    },
    {
      name: 'empty mirrorPercentage: value added',
      route: { ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: {} },
      expectedRoute: { ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: { value: 42.5 } },
    },
    {
      name: 'mirrorPercentage: null replaced',
      route: { ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: null },
      expectedRoute: { ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: { value: 42.5 } },
    },
    {
      name: 'mirrors entry: its percentage replaced, the other entry untouched',
      route: MIRROR_SHAPE_ROUTES.mirrors,
      expectedRoute: {
        ...MIRROR_SHAPE_ROUTES.mirrors,
        mirrors: [
          MIRROR_SHAPE_ROUTES.mirrors.mirrors[0] as JsonObject,
          { ...(MIRROR_SHAPE_ROUTES.mirrors.mirrors[1] as JsonObject), percentage: { value: 42.5 } },
        ],
      },
    },
    {
      name: 'mirrors entry without percentage: percentage added',
      route: MIRROR_SHAPE_ROUTES.mirrorsImplicit,
      expectedRoute: {
        ...MIRROR_SHAPE_ROUTES.mirrorsImplicit,
        mirrors: [
          { destination: { host: 'checkout-shadow', subset: 'shadow' }, percentage: { value: 42.5 } },
        ],
      },
    },
  ];

  for (const row of rows) {
    it(`${row.name}; nothing else changes`, () => {
      const other = { name: 'static', ...PRIMARY_ROUTE };
      const vs = vsWith([other, row.route], { team: 'payments' });
      const ops = buildPercentPatch(vs, located(vs, SHADOW), 42.5, annotations);
      expect(ops[0]).toEqual({ op: 'test', path: '/metadata/resourceVersion', value: '7' });
      const expected = structuredClone(vs) as unknown as JsonObject;
      (expected.spec as { http: JsonObject[] }).http[1] = row.expectedRoute;
      (expected.metadata as { annotations: Record<string, string> }).annotations = {
        team: 'payments',
        ...annotations,
      };
      expect(applied(vs, ops)).toEqual(expected);
      // Written values are JSON numbers (Istio's double), never strings.
      expect(ops.filter((o) => o.op !== 'test' && o.op !== 'remove' && typeof o.value === 'string')).toEqual([
        {
          op: 'add',
          path: '/metadata/annotations/mirror-autoscaler.io~1last-change',
          value: '2026-11-26T07:00:00Z',
        },
      ]);
    });

    it(`${row.name}: refused once the object changed`, () => {
      const vs = vsWith([row.route]);
      const ops = buildPercentPatch(vs, located(vs, SHADOW), 42.5);
      const newerVersion = { ...structuredClone(vs), metadata: { ...vs.metadata, resourceVersion: '8' } };
      expect(() => applied(newerVersion as VirtualService, ops)).toThrow(/Test operation failed/);
      // Even with the same resourceVersion, the per-location tests catch a different mirror.
      const moved = structuredClone(vs) as unknown as { spec: { http: JsonObject[] } };
      const route = moved.spec.http[0] as JsonObject;
      if (route.mirror) route.mirror = { host: 'checkout-shadow', subset: 'other' };
      else
        for (const entry of route.mirrors as { destination: JsonObject }[])
          entry.destination.subset = 'other';
      expect(() => applied(moved as unknown as VirtualService, ops)).toThrow(/Test operation failed/);
    });
  }

  it('tests the value read before replacing it', () => {
    const vs = vsWith([MIRROR_SHAPE_ROUTES.mirrorPercentage]);
    expect(buildPercentPatch(vs, located(vs, SHADOW), 10)).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '7' },
      { op: 'test', path: '/spec/http/0/mirror', value: { host: 'checkout-shadow', subset: 'shadow' } },
      { op: 'test', path: '/spec/http/0/mirrorPercentage/value', value: 37.5 },
      { op: 'replace', path: '/spec/http/0/mirrorPercentage/value', value: 10 },
    ]);
  });

  it('tests and removes a deprecated field, then adds mirrorPercentage', () => {
    const vs = vsWith([MIRROR_SHAPE_ROUTES.mirrorPercent]);
    expect(buildPercentPatch(vs, located(vs, SHADOW), 10).slice(2)).toEqual([
      { op: 'test', path: '/spec/http/0/mirrorPercent', value: 20 },
      { op: 'remove', path: '/spec/http/0/mirrorPercent' },
      { op: 'add', path: '/spec/http/0/mirrorPercentage', value: { value: 10 } },
    ]);
  });

  it('adds the annotations object when the VirtualService has none', () => {
    const vs = vsWith([MIRROR_SHAPE_ROUTES.mirrorPercentage]);
    const ops = buildPercentPatch(vs, located(vs, SHADOW), 37.5, { 'a/b~c': 'x' });
    expect(ops).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '7' },
      { op: 'add', path: '/metadata/annotations', value: { 'a/b~c': 'x' } },
    ]);
    expect(applied(vs, ops).metadata).toMatchObject({ annotations: { 'a/b~c': 'x' } });
  });

  it('escapes / and ~ in annotation keys', () => {
    const vs = vsWith([MIRROR_SHAPE_ROUTES.mirrorPercentage], { x: 'y' });
    const ops = buildPercentPatch(vs, located(vs, SHADOW), 37.5, { 'a/b~c': 'x', x: 'y' });
    expect(ops.slice(1)).toEqual([{ op: 'add', path: '/metadata/annotations/a~1b~0c', value: 'x' }]);
  });

  it('leaves locations already at the new value untouched (annotation-only change)', () => {
    const vs = vsWith([MIRROR_SHAPE_ROUTES.mirrorPercent, { ...MIRROR_SHAPE_ROUTES.implicit, name: 'b' }]);
    const ops = buildPercentPatch(vs, located(vs, SHADOW), 20);
    expect(ops.map((o) => o.path)).toEqual([
      '/metadata/resourceVersion',
      '/spec/http/1/mirror',
      '/spec/http/1/mirrorPercentage',
    ]);
  });

  it('rounds to Envoy resolution (0.0001 %)', () => {
    const vs = vsWith([MIRROR_SHAPE_ROUTES.mirrorPercentage]);
    const ops = buildPercentPatch(vs, located(vs, SHADOW), 100 / 3);
    expect(ops.at(-1)).toEqual({
      op: 'replace',
      path: '/spec/http/0/mirrorPercentage/value',
      value: 33.3333,
    });
    expect(roundPercent(0.00004)).toBe(0);
  });

  const badPercents: { name: string; value: number }[] = [
    { name: 'above 100', value: 100.5 },
    { name: 'negative', value: -1 },
    { name: 'NaN', value: Number.NaN },
  ];
  for (const row of badPercents) {
    it(`refuses a new percentage ${row.name}`, () => {
      const vs = vsWith([MIRROR_SHAPE_ROUTES.mirrorPercentage]);
      expect(() => buildPercentPatch(vs, located(vs, SHADOW), row.value)).toThrow(
        /VirtualService shop\/checkout: new mirror percentage must be a number between 0 and 100/,
      );
    });
  }

  it('refuses locations that do not fit the object', () => {
    const vs = vsWith([MIRROR_SHAPE_ROUTES.mirrorPercentage]);
    const other = vsWith([{ ...PRIMARY_ROUTE }]);
    expect(() => buildPercentPatch(other, located(vs, SHADOW), 5)).toThrow(MeshError);
  });

  it('property: any percentage on any shape changes only that mirror and reads back', () => {
    const shapes = Object.values(MIRROR_SHAPE_ROUTES);
    fc.assert(
      fc.property(
        fc.constantFrom(...shapes),
        fc.double({ min: 0, max: 100, noNaN: true }),
        (route, percent) => {
          const vs = vsWith([{ name: 'static', ...PRIMARY_ROUTE }, route]);
          const ops = buildPercentPatch(vs, located(vs, SHADOW), percent);
          const after = applied(vs, ops);
          const spec = after.spec as { http: JsonObject[] };
          expect(spec.http[0]).toEqual({ name: 'static', ...PRIMARY_ROUTE });
          expect({ ...after, spec: { ...spec, http: [] } }).toEqual({
            ...structuredClone(vs),
            spec: { ...(vs.spec as JsonObject), http: [] },
          });
          const reread = located(after, SHADOW);
          expect(reread.map((l) => l.percent)).toEqual([roundPercent(percent)]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('helpers', () => {
  it('currentPercent is the largest in force', () => {
    const vs = vsWith([
      MIRROR_SHAPE_ROUTES.mirrorPercent,
      { ...MIRROR_SHAPE_ROUTES.mirrorsImplicit, name: 'b' },
    ]);
    expect(currentPercent(located(vs, SHADOW))).toBe(100);
  });

  const noop: { name: string; percent: number; annotations?: Record<string, string>; expected: boolean }[] = [
    { name: 'same percent, no annotations', percent: 37.5, expected: true },
    { name: 'same after rounding', percent: 37.500001, expected: true },
    { name: 'different percent', percent: 40, expected: false },
    {
      name: 'same percent, same annotation',
      percent: 37.5,
      annotations: { team: 'payments' },
      expected: true,
    },
    { name: 'same percent, new annotation', percent: 37.5, annotations: { team: 'search' }, expected: false },
  ];
  for (const row of noop) {
    it(`isNoopChange: ${row.name}`, () => {
      const vs = vsWith([MIRROR_SHAPE_ROUTES.mirrorPercentage], { team: 'payments' });
      expect(isNoopChange(vs, located(vs, SHADOW), row.percent, row.annotations)).toBe(row.expected);
    });
  }

  const pauses: { name: string; value?: string; paused: boolean; problem: boolean }[] = [
    { name: 'absent', paused: false, problem: false },
    { name: '"true"', value: 'true', paused: true, problem: false },
    { name: '"True " (case and spaces)', value: 'True ', paused: true, problem: false },
    { name: '"false"', value: 'false', paused: false, problem: false },
    { name: '"yes" pauses and is reported', value: 'yes', paused: true, problem: true },
  ];
  for (const row of pauses) {
    it(`pause annotation ${row.name}`, () => {
      const vs = vsWith(
        [MIRROR_SHAPE_ROUTES.implicit],
        row.value === undefined ? undefined : { [PAUSED_ANNOTATION]: row.value },
      );
      const state = pauseState(vs);
      expect(state.paused).toBe(row.paused);
      expect(state.problem !== undefined).toBe(row.problem);
      if (row.problem) {
        expect(state.problem).toBe(
          'VirtualService shop/checkout: annotation mirror-autoscaler.io/paused: must be "true" or "false" (got "yes"); treated as paused',
        );
      }
    });
  }

  const owners: { name: string; refs: unknown; paused: boolean }[] = [
    {
      name: 'owned by a Flagger Canary',
      refs: [{ apiVersion: 'flagger.app/v1beta1', kind: 'Canary', name: 'checkout', uid: 'u1' }],
      paused: true,
    },
    {
      name: 'owned by something else',
      refs: [{ apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', name: 'checkout', uid: 'u2' }],
      paused: false,
    },
    { name: 'malformed ownerReferences', refs: 'nonsense', paused: false },
  ];
  for (const row of owners) {
    it(`ownership: ${row.name}`, () => {
      const base = vsWith([MIRROR_SHAPE_ROUTES.implicit]);
      const vs = { ...base, metadata: { ...base.metadata, ownerReferences: row.refs } };
      const state = pauseState(vs);
      expect(state.paused).toBe(row.paused);
      if (row.paused) {
        expect(state.problem).toBe(
          'VirtualService shop/checkout: owned by Flagger Canary checkout; left to Flagger',
        );
      }
    });
  }
});
