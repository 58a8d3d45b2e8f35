/** The Gateway API mirror model: locating the RequestMirror filter in every shape, and the patch that sets it. */
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { MeshError, type MeshErrorCode } from '../../src/mesh/errors.js';
import {
  type FilterLocation,
  type FilterSelector,
  filterValue,
  fractionDenominator,
  locateMirrorFilter,
} from '../../src/mesh/gateway.js';
import { buildRoutePatch, locateTarget, locationLabel } from '../../src/mesh/route.js';
import {
  asRouteObject,
  type JsonPatchOp,
  pauseState,
  type RouteObject,
} from '../../src/mesh/virtualservice.js';
import type { JsonObject } from '../support/fake-apiserver.js';
import { gatewayRoute, gatewayRule, mirrorFilter } from '../support/kube-fixtures.js';

const SHADOW: FilterSelector = { backend: { name: 'checkout-shadow' } };

function route(rules: JsonObject[], kind: 'HTTPRoute' | 'GRPCRoute' = 'HTTPRoute'): RouteObject {
  const r = asRouteObject(gatewayRoute({ kind, rules, resourceVersion: '7' }));
  if (r instanceof MeshError) throw r;
  return r;
}

function located(obj: unknown, sel: FilterSelector = SHADOW): FilterLocation {
  const result = locateMirrorFilter(obj, sel);
  if (result instanceof MeshError) throw result;
  expect(result).toHaveLength(1);
  return result[0] as FilterLocation;
}

function refused(obj: unknown, sel: FilterSelector = SHADOW): MeshError {
  const result = locateMirrorFilter(obj, sel);
  expect(result).toBeInstanceOf(MeshError);
  return result as MeshError;
}

/** Applies our patch with an independent RFC 6902 implementation (fast-json-patch), validating every op. */
function applied(obj: RouteObject, ops: readonly JsonPatchOp[]): JsonObject {
  return jsonpatch.applyPatch(structuredClone(obj), ops as jsonpatch.Operation[], true, false)
    .newDocument as unknown as JsonObject;
}

/**
 * The rules the Gateway API CRD enforces on a RequestMirror filter (OpenAPI bounds and CEL): percent an
 * int32 in 0..100; fraction numerator >= 0, denominator >= 1, numerator <= denominator; not both.
 */
function apiAccepts(mirror: JsonObject): boolean {
  const { percent, fraction } = mirror;
  if (percent !== undefined && fraction !== undefined) return false;
  if (percent !== undefined)
    return Number.isInteger(percent) && (percent as number) >= 0 && (percent as number) <= 100;
  if (fraction !== undefined) {
    const f = fraction as JsonObject;
    const n = f.numerator;
    const d = f.denominator ?? 100;
    return (
      Number.isInteger(n) &&
      Number.isInteger(d) &&
      (n as number) >= 0 &&
      (d as number) >= 1 &&
      (n as number) <= (d as number)
    );
  }
  return true;
}

function mirrorAt(obj: JsonObject, path: string): JsonObject {
  const filter = jsonpatch.getValueByPointer(obj, path) as JsonObject;
  return filter.requestMirror as JsonObject;
}

describe('locateMirrorFilter: every filter shape', () => {
  const rows: {
    name: string;
    rules: JsonObject[];
    kind?: 'HTTPRoute' | 'GRPCRoute';
    sel?: FilterSelector;
    expected: Partial<FilterLocation>;
    label: string;
  }[] = [
    {
      name: 'rule filter with percent',
      rules: [gatewayRule([mirrorFilter('checkout-shadow', { percent: 20 })], { name: 'primary' })],
      expected: {
        ruleIndex: 0,
        ruleName: 'primary',
        filterIndex: 0,
        form: 'percent',
        percent: 20,
        path: '/spec/rules/0/filters/0',
      },
      label: 'primary',
    },
    {
      name: 'rule filter with fraction (denominator given)',
      rules: [gatewayRule([mirrorFilter('checkout-shadow', { fraction: { numerator: 1, denominator: 8 } })])],
      expected: { form: 'fraction', percent: 12.5, denominator: 8 },
      label: 'rules[0]',
    },
    {
      name: 'rule filter with fraction (denominator defaulted to 100)',
      rules: [gatewayRule([mirrorFilter('checkout-shadow', { fraction: { numerator: 7 } })])],
      expected: { form: 'fraction', percent: 7, denominator: 100 },
      label: 'rules[0]',
    },
    {
      name: 'rule filter with neither (mirrors everything)',
      rules: [gatewayRule([mirrorFilter('checkout-shadow')])],
      expected: { form: 'implicit', percent: 100 },
      label: 'rules[0]',
    },
    {
      name: 'filter on a backendRef',
      rules: [
        gatewayRule([], {
          backendRefs: [
            { name: 'checkout', port: 8080, weight: 9 },
            {
              name: 'checkout-canary',
              port: 8080,
              weight: 1,
              filters: [mirrorFilter('checkout-shadow', { percent: 5 })],
            },
          ],
        }),
      ],
      expected: {
        ruleIndex: 0,
        backendRefIndex: 1,
        filterIndex: 0,
        percent: 5,
        path: '/spec/rules/0/backendRefs/1/filters/0',
      },
      label: 'rules[0]/backendRefs[1]',
    },
    {
      name: 'several mirrors on one rule: the one to the target',
      rules: [
        gatewayRule([
          {
            type: 'RequestHeaderModifier',
            requestHeaderModifier: { set: [{ name: 'x-env', value: 'prod' }] },
          },
          mirrorFilter('audit-sink', { percent: 100 }),
          mirrorFilter('checkout-shadow', { percent: 30 }),
        ]),
      ],
      expected: { filterIndex: 2, percent: 30 },
      label: 'rules[0]',
    },
    {
      name: 'the rule named in the policy, among rules mirroring to the same backend',
      rules: [
        gatewayRule([mirrorFilter('checkout-shadow', { percent: 10 })], { name: 'reads' }),
        gatewayRule([mirrorFilter('checkout-shadow', { percent: 40 })], { name: 'writes' }),
      ],
      sel: { rule: 'writes', backend: { name: 'checkout-shadow' } },
      expected: { ruleIndex: 1, ruleName: 'writes', percent: 40 },
      label: 'writes',
    },
    {
      name: 'the rule by index',
      rules: [
        gatewayRule([mirrorFilter('checkout-shadow', { percent: 10 })]),
        gatewayRule([mirrorFilter('checkout-shadow', { percent: 40 })]),
      ],
      sel: { rule: 1, backend: { name: 'checkout-shadow' } },
      expected: { ruleIndex: 1, percent: 40 },
      label: 'rules[1]',
    },
    {
      name: 'a backend in another namespace, named with its namespace',
      rules: [gatewayRule([mirrorFilter('checkout-shadow', { percent: 3, namespace: 'shadow' })])],
      sel: { backend: { name: 'checkout-shadow', namespace: 'shadow' } },
      expected: { percent: 3 },
      label: 'rules[0]',
    },
    {
      name: 'the port picks one of two mirrors to the same Service',
      rules: [
        gatewayRule([
          mirrorFilter('checkout-shadow', { percent: 3, port: 8080 }),
          mirrorFilter('checkout-shadow', { percent: 9, port: 9090 }),
        ]),
      ],
      sel: { backend: { name: 'checkout-shadow', port: 9090 } },
      expected: { filterIndex: 1, percent: 9 },
      label: 'rules[0]',
    },
    {
      name: 'GRPCRoute rule filter',
      kind: 'GRPCRoute',
      rules: [
        {
          matches: [{ method: { service: 'shop.Checkout' } }],
          backendRefs: [{ name: 'checkout', port: 9000 }],
          filters: [mirrorFilter('checkout-shadow', { fraction: { numerator: 25, denominator: 1000 } })],
        },
      ],
      expected: { form: 'fraction', percent: 2.5, denominator: 1000 },
      label: 'rules[0]',
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const obj = route(row.rules, row.kind);
      const l = located(obj, row.sel ?? SHADOW);
      expect(l).toMatchObject(row.expected);
      expect(locationLabel(l)).toBe(row.label);
    });
  }
});

describe('locateMirrorFilter: refusals name the route, rule and field', () => {
  const rows: { name: string; rules: unknown; sel?: FilterSelector; code: MeshErrorCode; message: string }[] =
    [
      {
        name: 'no rules',
        rules: [],
        code: 'NoRules',
        message: 'HTTPRoute shop/checkout: spec.rules: missing or empty (got [])',
      },
      {
        name: 'no mirror to the target',
        rules: [gatewayRule([mirrorFilter('audit-sink', { percent: 5 })])],
        code: 'NoMirrorToTarget',
        message:
          'HTTPRoute shop/checkout: no rule has a RequestMirror filter to Service checkout-shadow (mirrors to: Service shop/audit-sink:8080)',
      },
      {
        name: 'no filters at all',
        rules: [gatewayRule([])],
        code: 'NoMirrorToTarget',
        message:
          'HTTPRoute shop/checkout: no rule has a RequestMirror filter to Service checkout-shadow (no RequestMirror filters)',
      },
      {
        name: 'a mirror to the right name in another namespace does not match',
        rules: [gatewayRule([mirrorFilter('checkout-shadow', { percent: 5, namespace: 'other' })])],
        code: 'NoMirrorToTarget',
        message:
          'HTTPRoute shop/checkout: no rule has a RequestMirror filter to Service checkout-shadow (mirrors to: Service other/checkout-shadow:8080)',
      },
      {
        name: 'two rules mirror to the target and the policy names none',
        rules: [
          gatewayRule([mirrorFilter('checkout-shadow', { percent: 10 })], { name: 'reads' }),
          gatewayRule([mirrorFilter('checkout-shadow', { percent: 40 })]),
        ],
        code: 'AmbiguousMirror',
        message:
          'HTTPRoute shop/checkout: 2 RequestMirror filters mirror to Service checkout-shadow (rules[0] (name "reads"): filters[0]; rules[1]: filters[0]); name the rule in the policy (spec.httpRoute.rule) or keep one filter',
      },
      {
        name: 'a rule and one of its backends both mirror to the target',
        rules: [
          gatewayRule([mirrorFilter('checkout-shadow', { percent: 10 })], {
            backendRefs: [
              { name: 'checkout', port: 8080, filters: [mirrorFilter('checkout-shadow', { percent: 5 })] },
            ],
          }),
        ],
        code: 'AmbiguousMirror',
        message:
          'HTTPRoute shop/checkout: 2 RequestMirror filters mirror to Service checkout-shadow (rules[0]: filters[0]; rules[0]: backendRefs[0]: filters[0]); name the rule in the policy (spec.httpRoute.rule) or keep one filter',
      },
      {
        name: 'no rule of that name',
        rules: [gatewayRule([mirrorFilter('checkout-shadow')], { name: 'reads' }), gatewayRule([])],
        sel: { rule: 'writes', backend: { name: 'checkout-shadow' } },
        code: 'RouteNotFound',
        message: 'HTTPRoute shop/checkout: no rule named "writes" (rules: "reads", rules[1] unnamed)',
      },
      {
        name: 'no rule at that index',
        rules: [gatewayRule([mirrorFilter('checkout-shadow')])],
        sel: { rule: 3, backend: { name: 'checkout-shadow' } },
        code: 'RouteNotFound',
        message: 'HTTPRoute shop/checkout: no rule at index 3 (rules: rules[0] unnamed)',
      },
      {
        name: 'percent and fraction both set',
        rules: [
          gatewayRule([
            mirrorFilter('checkout-shadow', { percent: 5, fraction: { numerator: 1, denominator: 20 } }),
          ]),
        ],
        code: 'InvalidPercentage',
        message:
          'HTTPRoute shop/checkout: rules[0]: filters[0]: requestMirror: both percent and fraction are set (got 5 and {"numerator":1,"denominator":20}); the API allows only one',
      },
      {
        name: 'percent above 100',
        rules: [gatewayRule([mirrorFilter('checkout-shadow', { percent: 120 })])],
        code: 'InvalidPercentage',
        message:
          'HTTPRoute shop/checkout: rules[0]: filters[0]: requestMirror.percent: must be an integer between 0 and 100 (got 120)',
      },
      {
        name: 'percent not an integer',
        rules: [gatewayRule([mirrorFilter('checkout-shadow', { percent: 12.5 })])],
        code: 'InvalidPercentage',
        message:
          'HTTPRoute shop/checkout: rules[0]: filters[0]: requestMirror.percent: must be an integer between 0 and 100 (got 12.5)',
      },
      {
        name: 'numerator above denominator',
        rules: [
          gatewayRule([mirrorFilter('checkout-shadow', { fraction: { numerator: 3, denominator: 2 } })]),
        ],
        code: 'InvalidPercentage',
        message:
          'HTTPRoute shop/checkout: rules[0]: filters[0]: requestMirror.fraction: numerator must be less than or equal to denominator (got 3/2)',
      },
      {
        name: 'denominator zero',
        rules: [
          gatewayRule([mirrorFilter('checkout-shadow', { fraction: { numerator: 0, denominator: 0 } })]),
        ],
        code: 'InvalidPercentage',
        message:
          'HTTPRoute shop/checkout: rules[0]: filters[0]: requestMirror.fraction.denominator: must be an integer >= 1 (got 0)',
      },
      {
        name: 'a RequestMirror filter without requestMirror',
        rules: [gatewayRule([{ type: 'RequestMirror' }])],
        code: 'InvalidMirror',
        message:
          'HTTPRoute shop/checkout: rules[0]: filters[0]: requestMirror: must be an object with a backendRef for type RequestMirror (got nothing)',
      },
    ];
  for (const row of rows) {
    it(row.name, () => {
      const err = refused(route(row.rules as JsonObject[]), row.sel ?? SHADOW);
      expect(err.code).toBe(row.code);
      expect(err.message).toBe(row.message);
    });
  }
});

describe('the value written keeps the form the user chose where it can', () => {
  const rows: {
    name: string;
    form: FilterLocation['form'];
    denominator?: number;
    percent: number;
    expected: unknown;
  }[] = [
    { name: 'percent, whole value', form: 'percent', percent: 12, expected: { percent: 12 } },
    {
      name: 'percent, finer value: a fraction over 1000',
      form: 'percent',
      percent: 12.5,
      expected: { fraction: { numerator: 125, denominator: 1000 } },
    },
    { name: 'neither, whole value', form: 'implicit', percent: 40, expected: { percent: 40 } },
    {
      name: 'neither, 0.05 %: over 10000',
      form: 'implicit',
      percent: 0.05,
      expected: { fraction: { numerator: 5, denominator: 10000 } },
    },
    {
      name: 'fraction keeps its own denominator when exact',
      form: 'fraction',
      denominator: 8,
      percent: 37.5,
      expected: { fraction: { numerator: 3, denominator: 8 } },
    },
    {
      name: 'fraction over 100 stays a fraction for a whole value',
      form: 'fraction',
      denominator: 100,
      percent: 20,
      expected: { fraction: { numerator: 20, denominator: 100 } },
    },
    {
      name: 'fraction with a denominator that cannot express it: the smallest power of ten that can',
      form: 'fraction',
      denominator: 8,
      percent: 12.3456,
      expected: { fraction: { numerator: 123456, denominator: 1000000 } },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(
        filterValue(
          { form: row.form, ...(row.denominator !== undefined && { denominator: row.denominator }) },
          row.percent,
        ),
      ).toEqual(row.expected);
    });
  }
  it('fractionDenominator is the smallest of 100 … 1 000 000 that is exact', () => {
    expect(fractionDenominator(7)).toBe(100);
    expect(fractionDenominator(0.1)).toBe(1000);
    expect(fractionDenominator(33.3333)).toBe(1000000);
  });
});

describe('buildRoutePatch on Gateway API routes', () => {
  it('percent → percent: tests type, backendRef and the old value, replaces only the value', () => {
    const obj = route([gatewayRule([mirrorFilter('checkout-shadow', { percent: 20 })])]);
    const ops = buildRoutePatch(obj, [located(obj)], 30, { 'state.mirror-autoscaler.io/p': '{}' });
    expect(ops).toEqual([
      { op: 'test', path: '/metadata/resourceVersion', value: '7' },
      { op: 'test', path: '/spec/rules/0/filters/0/type', value: 'RequestMirror' },
      {
        op: 'test',
        path: '/spec/rules/0/filters/0/requestMirror/backendRef',
        value: { name: 'checkout-shadow', port: 8080 },
      },
      { op: 'test', path: '/spec/rules/0/filters/0/requestMirror/percent', value: 20 },
      { op: 'replace', path: '/spec/rules/0/filters/0/requestMirror/percent', value: 30 },
      { op: 'add', path: '/metadata/annotations', value: { 'state.mirror-autoscaler.io/p': '{}' } },
    ]);
  });

  it('percent → a finer value: percent removed and fraction added in the same patch', () => {
    const obj = route([gatewayRule([mirrorFilter('checkout-shadow', { percent: 20 })])]);
    const ops = buildRoutePatch(obj, [located(obj)], 2.25);
    expect(ops.slice(3)).toEqual([
      { op: 'test', path: '/spec/rules/0/filters/0/requestMirror/percent', value: 20 },
      { op: 'remove', path: '/spec/rules/0/filters/0/requestMirror/percent' },
      {
        op: 'add',
        path: '/spec/rules/0/filters/0/requestMirror/fraction',
        value: { numerator: 225, denominator: 10000 },
      },
    ]);
    const after = applied(obj, ops);
    expect(mirrorAt(after, '/spec/rules/0/filters/0')).toEqual({
      backendRef: { name: 'checkout-shadow', port: 8080 },
      fraction: { numerator: 225, denominator: 10000 },
    });
  });

  it('a filter on a backendRef of a GRPCRoute is written where it is', () => {
    const obj = route(
      [
        {
          backendRefs: [
            { name: 'checkout', port: 9000, filters: [mirrorFilter('checkout-shadow', { percent: 50 })] },
          ],
        },
      ],
      'GRPCRoute',
    );
    const after = applied(obj, buildRoutePatch(obj, [located(obj)], 10));
    expect(mirrorAt(after, '/spec/rules/0/backendRefs/0/filters/0').percent).toBe(10);
  });

  it('a location that no longer fits the object is refused', () => {
    const obj = route([gatewayRule([mirrorFilter('checkout-shadow', { percent: 20 })])]);
    const l = located(obj);
    const moved = route([gatewayRule([{ type: 'RequestHeaderModifier', requestHeaderModifier: {} }])]);
    expect(() => buildRoutePatch(moved, [l], 10)).toThrow(/the RequestMirror filter no longer matches/);
  });

  it('refuses a percentage outside 0-100', () => {
    const obj = route([gatewayRule([mirrorFilter('checkout-shadow', { percent: 20 })])]);
    expect(() => buildRoutePatch(obj, [located(obj)], 100.5)).toThrow(/between 0 and 100/);
  });

  it('any start form, any new percentage: the result reads back exactly, is valid for the API, and nothing else changes', () => {
    const start = fc.oneof(
      fc.integer({ min: 0, max: 100 }).map((p) => ({ percent: p })),
      fc
        .integer({ min: 1, max: 1_000_000 })
        .chain((d) =>
          fc.integer({ min: 0, max: d }).map((n) => ({ fraction: { numerator: n, denominator: d } })),
        ),
      fc.integer({ min: 0, max: 100 }).map((n) => ({ fraction: { numerator: n } })),
      fc.constant({}),
    );
    const target = fc.integer({ min: 0, max: 1_000_000 }).map((n) => n / 10_000);
    const place = fc.constantFrom('rule', 'backendRef');
    fc.assert(
      fc.property(start, target, place, (pct, percent, where) => {
        const filter = mirrorFilter('checkout-shadow', pct as { percent?: number; fraction?: JsonObject });
        const rules =
          where === 'rule'
            ? [gatewayRule([mirrorFilter('audit-sink', { percent: 1 }), filter])]
            : [gatewayRule([], { backendRefs: [{ name: 'checkout', port: 8080, filters: [filter] }] })];
        const obj = route(rules);
        const l = located(obj);
        const after = applied(obj, buildRoutePatch(obj, [l], percent));
        const mirror = mirrorAt(after, l.path);
        expect(apiAccepts(mirror)).toBe(true);
        expect(located(after).percent).toBeCloseTo(percent, 6);
        // A fraction stays a fraction; percent or neither become percent for whole values; a value already
        // in effect (neither = 100 %) is not rewritten.
        if ('fraction' in pct) expect(mirror.fraction).toBeDefined();
        else if (l.percent === percent)
          expect(mirror).toEqual(mirrorAt(obj as unknown as JsonObject, l.path));
        else if (Number.isInteger(percent)) expect(mirror.percent).toBe(percent);
        // Outside the filter, the object is untouched.
        const strip = (o: JsonObject) => {
          const copy = structuredClone(o);
          jsonpatch.applyOperation(copy, { op: 'replace', path: `${l.path}/requestMirror`, value: null });
          return copy;
        };
        expect(strip(after)).toEqual(strip(obj as unknown as JsonObject));
      }),
      { numRuns: 300, seed: 20261208 },
    );
  });
});

describe('pause and ownership on Gateway API routes', () => {
  it('the pause annotation pauses an HTTPRoute, and the message names its kind', () => {
    const obj = asRouteObject(
      gatewayRoute({
        rules: [gatewayRule([mirrorFilter('checkout-shadow')])],
        annotations: { 'mirror-autoscaler.io/paused': 'yes' },
        resourceVersion: '1',
      }),
    ) as RouteObject;
    expect(pauseState(obj)).toEqual({
      paused: true,
      source: 'annotation',
      problem:
        'HTTPRoute shop/checkout: annotation mirror-autoscaler.io/paused: must be "true" or "false" (got "yes"); treated as paused',
    });
  });

  it('locateTarget dispatches on the policy route kind', () => {
    const obj = route([gatewayRule([mirrorFilter('checkout-shadow', { percent: 4 })], { name: 'all' })]);
    const result = locateTarget(
      obj,
      { kind: 'HTTPRoute', name: 'checkout', namespace: 'shop', rule: 'all' },
      {
        backend: { name: 'checkout-shadow' },
      },
    );
    expect(Array.isArray(result) && result[0]?.percent).toBe(4);
    const noBackend = locateTarget(
      obj,
      { kind: 'HTTPRoute', name: 'checkout', namespace: 'shop' },
      { host: 'x' },
    );
    expect(noBackend).toBeInstanceOf(MeshError);
  });
});

describe('routes other controllers manage are left alone', () => {
  it('an Argo Rollouts canary in progress pauses the route, naming the label', () => {
    const obj = asRouteObject({
      ...gatewayRoute({ rules: [gatewayRule([mirrorFilter('checkout-shadow')])], resourceVersion: '1' }),
    }) as RouteObject;
    const labelled = {
      ...obj,
      metadata: { ...obj.metadata, labels: { 'rollouts.argoproj.io/gatewayapi-canary': 'in-progress' } },
    } as RouteObject;
    expect(pauseState(obj)).toEqual({ paused: false });
    expect(pauseState(labelled)).toEqual({
      paused: true,
      source: 'argo-rollouts',
      problem:
        'HTTPRoute shop/checkout: label rollouts.argoproj.io/gatewayapi-canary=in-progress: an Argo Rollouts canary is shifting this route; left to Argo Rollouts until it ends',
    });
  });

  it('a route owned by a Flagger Canary is left to Flagger', () => {
    const obj = asRouteObject(
      gatewayRoute({
        rules: [gatewayRule([mirrorFilter('checkout-shadow')])],
        resourceVersion: '1',
        ownerReferences: [
          { apiVersion: 'flagger.app/v1beta1', kind: 'Canary', name: 'podinfo', uid: 'u', controller: true },
        ],
      }),
    ) as RouteObject;
    expect(pauseState(obj)).toEqual({
      paused: true,
      source: 'flagger',
      problem: 'HTTPRoute shop/checkout: owned by Flagger Canary podinfo; left to Flagger',
    });
  });
});
