/**
 * VirtualServices in strange shapes, through locateMirrors and buildPercentPatch together: whatever the
 * object holds, either the pair refuses with a MeshError that names the VirtualService, route and field, or
 * the patch it builds, applied by an independent RFC 6902 implementation, yields an object whose mirror
 * fields Istio's validation accepts (checked here by a validator written from facts.md, not by the code under
 * test). virtualservice.test.ts pins every accepted shape; this file is about everything else.
 */
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { MESH_ERROR_CODES, MeshError, type MeshErrorCode } from '../../src/mesh/errors.js';
import {
  buildPercentPatch,
  checkMirrorFields,
  type JsonPatchOp,
  locateMirrors,
  type MirrorSelector,
  roundPercent,
  type VirtualService,
} from '../../src/mesh/virtualservice.js';
import type { JsonObject } from '../support/fake-apiserver.js';
import { MIRROR_SHAPE_ROUTES, PRIMARY_ROUTE, virtualService } from '../support/kube-fixtures.js';

const SHADOW: MirrorSelector = { host: 'checkout-shadow' };
const ANNOTATIONS = { 'state.mirror-autoscaler.io/checkout': '{"v":1}' };

function vs(http: readonly unknown[]): JsonObject {
  return virtualService({ resourceVersion: '7', http: http as JsonObject[] });
}

/**
 * Istio's rules for the mirror fields of a VirtualService (facts.md), written independently of the code under
 * test: returns the first violation, or undefined.
 */
function istioViolation(obj: unknown): string | undefined {
  const spec = (obj as { spec?: unknown }).spec;
  if (spec === undefined || spec === null) return undefined;
  if (typeof spec !== 'object' || Array.isArray(spec)) return 'spec is not an object';
  const http = (spec as { http?: unknown }).http;
  if (http === undefined || http === null) return undefined;
  if (!Array.isArray(http)) return 'http is not a list';
  const percentOk = (p: unknown): boolean => {
    if (p === undefined || p === null) return true;
    if (typeof p !== 'object' || Array.isArray(p)) return false;
    const v = (p as { value?: unknown }).value;
    return v === undefined || v === null || (typeof v === 'number' && v >= 0 && v <= 100);
  };
  const intOk = (v: unknown): boolean =>
    v === undefined || v === null || (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 100);
  const destOk = (d: unknown): boolean =>
    typeof d === 'object' &&
    d !== null &&
    !Array.isArray(d) &&
    typeof (d as { host?: unknown }).host === 'string' &&
    (d as { host: string }).host.trim() !== '';
  for (const [i, r] of http.entries()) {
    if (typeof r !== 'object' || r === null || Array.isArray(r)) return `http[${i}] is not an object`;
    const route = r as Record<string, unknown>;
    const hasMirror = route.mirror !== undefined && route.mirror !== null;
    const hasMirrors = route.mirrors !== undefined && route.mirrors !== null;
    if (hasMirror && hasMirrors) return `http[${i}] has mirror and mirrors`;
    if (hasMirror && !destOk(route.mirror)) return `http[${i}].mirror has no host`;
    if (!percentOk(route.mirrorPercentage)) return `http[${i}].mirrorPercentage out of range`;
    if (!intOk(route.mirrorPercent) || !intOk(route.mirror_percent)) return `http[${i}] deprecated percent`;
    if (hasMirrors) {
      if (!Array.isArray(route.mirrors)) return `http[${i}].mirrors is not a list`;
      for (const [j, m] of route.mirrors.entries()) {
        if (typeof m !== 'object' || m === null || Array.isArray(m)) return `http[${i}].mirrors[${j}]`;
        const entry = m as Record<string, unknown>;
        if (!destOk(entry.destination)) return `http[${i}].mirrors[${j}].destination`;
        if (!percentOk(entry.percentage)) return `http[${i}].mirrors[${j}].percentage`;
      }
    }
  }
  return undefined;
}

function applied(obj: VirtualService, ops: readonly JsonPatchOp[]): JsonObject {
  return jsonpatch.applyPatch(structuredClone(obj), ops as jsonpatch.Operation[], true, false)
    .newDocument as unknown as JsonObject;
}

/**
 * Locates and patches like the reconcile cycle does. Returns the refusal, or the patched object (after
 * checking it against Istio's rules and reading the new percentage back).
 */
function locateAndPatch(
  obj: unknown,
  sel: MirrorSelector,
  percent: number,
): { refused: MeshError } | { after: JsonObject; ops: JsonPatchOp[] } {
  const located = locateMirrors(obj, sel);
  if (located instanceof MeshError) return { refused: located };
  let ops: JsonPatchOp[];
  try {
    ops = buildPercentPatch(obj as VirtualService, located, percent, ANNOTATIONS);
  } catch (err) {
    if (err instanceof MeshError) return { refused: err };
    throw err;
  }
  const after = applied(obj as VirtualService, ops);
  expect(istioViolation(after)).toBeUndefined();
  const again = locateMirrors(after, sel);
  if (again instanceof MeshError) throw again;
  for (const l of again) expect(l.percent).toBe(roundPercent(percent));
  return { after, ops };
}

describe('strange shapes: refused with a clear message, nothing written', () => {
  const rows: { name: string; obj: unknown; sel?: MirrorSelector; code: MeshErrorCode; message: string }[] = [
    {
      name: 'mirror and mirrors on the managed route',
      obj: vs([{ ...MIRROR_SHAPE_ROUTES.implicit, mirrors: [{ destination: { host: 'checkout-shadow' } }] }]),
      code: 'BothMirrorAndMirrors',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): route has both mirror and mirrors; Istio rejects this',
    },
    {
      name: 'mirror and mirrors on another route (Istio would reject the whole object)',
      obj: vs([
        MIRROR_SHAPE_ROUTES.mirrorPercentage,
        { name: 'audit', ...PRIMARY_ROUTE, mirror: { host: 'a' }, mirrors: [{ destination: { host: 'b' } }] },
      ]),
      sel: { route: 'primary', host: 'checkout-shadow' },
      code: 'BothMirrorAndMirrors',
      message:
        'VirtualService shop/checkout: http[1] (name "audit"): route has both mirror and mirrors; Istio rejects this',
    },
    {
      name: 'another mirrors entry of the managed route above 100',
      obj: vs([
        {
          ...PRIMARY_ROUTE,
          mirrors: [
            { destination: { host: 'audit-sink' }, percentage: { value: 150 } },
            { destination: { host: 'checkout-shadow' }, percentage: { value: 10 } },
          ],
        },
      ]),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0]: mirrors[0].percentage.value: must be a number between 0 and 100 (got 150)',
    },
    {
      name: 'a negative percentage on an unmanaged route',
      obj: vs([
        MIRROR_SHAPE_ROUTES.mirrorPercentage,
        { ...PRIMARY_ROUTE, mirror: { host: 'audit-sink' }, mirrorPercentage: { value: -1 } },
      ]),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[1]: mirrorPercentage.value: must be a number between 0 and 100 (got -1)',
    },
    {
      name: 'a leftover deprecated mirrorPercent above 100 beside mirrorPercentage',
      obj: vs([{ ...MIRROR_SHAPE_ROUTES.mirrorPercentage, mirrorPercent: 150 }]),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): mirrorPercent: must be an integer between 0 and 100 (got 150)',
    },
    {
      name: 'the string "50" where a number belongs',
      obj: vs([{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: { value: '50' } }]),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): mirrorPercentage.value: must be a number between 0 and 100 (got "50")',
    },
    {
      name: 'the string "abc" in a deprecated field',
      obj: vs([{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercent: 'abc' }]),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0] (name "primary"): mirrorPercent: must be an integer between 0 and 100 (got "abc")',
    },
    {
      name: 'a string percentage in a mirrors entry',
      obj: vs([
        {
          ...PRIMARY_ROUTE,
          mirrors: [{ destination: { host: 'checkout-shadow' }, percentage: { value: 'abc' } }],
        },
      ]),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0]: mirrors[0].percentage.value: must be a number between 0 and 100 (got "abc")',
    },
    {
      name: 'a mirror to a different host only',
      obj: vs([
        { ...MIRROR_SHAPE_ROUTES.implicit, mirror: { host: 'payments-shadow.payments.svc.cluster.local' } },
      ]),
      code: 'NoMirrorToTarget',
      message:
        'VirtualService shop/checkout: no http route mirrors to host "checkout-shadow" (mirrors to: "payments-shadow.payments.svc.cluster.local")',
    },
    {
      name: 'the same short name in another namespace is another host',
      obj: vs([{ ...MIRROR_SHAPE_ROUTES.implicit, mirror: { host: 'checkout-shadow.other' } }]),
      code: 'NoMirrorToTarget',
      message:
        'VirtualService shop/checkout: no http route mirrors to host "checkout-shadow" (mirrors to: "checkout-shadow.other")',
    },
    {
      name: 'a named route among unnamed ones',
      obj: vs([MIRROR_SHAPE_ROUTES.implicit, { ...PRIMARY_ROUTE }, { ...PRIMARY_ROUTE, name: 7 }]),
      sel: { route: 'canary', host: 'checkout-shadow' },
      code: 'RouteNotFound',
      message:
        'VirtualService shop/checkout: no http route named "canary" (routes: "primary", http[1] unnamed, http[2] unnamed)',
    },
    {
      name: 'spec is a list',
      obj: { ...vs([]), spec: [] },
      code: 'InvalidObject',
      message: 'VirtualService shop/checkout: spec: must be an object (got [])',
    },
    {
      name: 'spec is a string',
      obj: { ...vs([]), spec: 'http' },
      code: 'InvalidObject',
      message: 'VirtualService shop/checkout: spec: must be an object (got "http")',
    },
    {
      name: 'http is a mapping',
      obj: { ...vs([]), spec: { http: { 0: MIRROR_SHAPE_ROUTES.implicit } } },
      code: 'NoHttpRoutes',
      message: expect.stringMatching(
        /^VirtualService shop\/checkout: spec\.http: missing or empty \(got \{"0":/,
      ) as unknown as string,
    },
    {
      name: 'a route is null',
      obj: vs([null, MIRROR_SHAPE_ROUTES.implicit]),
      code: 'InvalidObject',
      message: 'VirtualService shop/checkout: http[0]: must be an object (got null)',
    },
    {
      name: 'a route is a list',
      obj: vs([[MIRROR_SHAPE_ROUTES.implicit]]),
      code: 'InvalidObject',
      message: expect.stringMatching(
        /^VirtualService shop\/checkout: http\[0\]: must be an object \(got \[/,
      ) as unknown as string,
    },
    {
      name: 'mirror is a list',
      obj: vs([{ ...PRIMARY_ROUTE, mirror: [{ host: 'checkout-shadow' }] }]),
      code: 'InvalidMirror',
      message:
        'VirtualService shop/checkout: http[0]: mirror: must be an object with a host (got [{"host":"checkout-shadow"}])',
    },
    {
      name: 'mirror is a bare host string',
      obj: vs([{ ...PRIMARY_ROUTE, mirror: 'checkout-shadow' }]),
      code: 'InvalidMirror',
      message:
        'VirtualService shop/checkout: http[0]: mirror: must be an object with a host (got "checkout-shadow")',
    },
    {
      name: 'mirrors is a mapping',
      obj: vs([{ ...PRIMARY_ROUTE, mirrors: { destination: { host: 'checkout-shadow' } } }]),
      code: 'InvalidMirror',
      message:
        'VirtualService shop/checkout: http[0]: mirrors: must be a list of {destination, percentage} (got {"destination":{"host":"checkout-shadow"}})',
    },
    {
      name: 'a mirrors entry is null',
      obj: vs([{ ...PRIMARY_ROUTE, mirrors: [null] }]),
      code: 'InvalidMirror',
      message: 'VirtualService shop/checkout: http[0]: mirrors[0]: must be an object (got null)',
    },
    {
      name: 'a destination is a list',
      obj: vs([{ ...PRIMARY_ROUTE, mirrors: [{ destination: ['checkout-shadow'] }] }]),
      code: 'InvalidMirror',
      message:
        'VirtualService shop/checkout: http[0]: mirrors[0].destination: must be an object with a host (got ["checkout-shadow"])',
    },
    {
      name: 'a percentage is a list',
      obj: vs([
        { ...PRIMARY_ROUTE, mirrors: [{ destination: { host: 'checkout-shadow' }, percentage: [50] }] },
      ]),
      code: 'InvalidPercentage',
      message:
        'VirtualService shop/checkout: http[0]: mirrors[0].percentage: must be an object like {value: 50} (got [50])',
    },
    {
      name: 'metadata is a list',
      obj: { ...vs([MIRROR_SHAPE_ROUTES.implicit]), metadata: [] },
      code: 'InvalidObject',
      message: 'VirtualService ?: metadata: must be an object (got [])',
    },
    {
      name: 'a whole object that is a string',
      obj: 'VirtualService',
      code: 'InvalidObject',
      message: 'VirtualService ?: object: must be a JSON object (got "VirtualService")',
    },
  ];

  it.each(rows)('$name', ({ obj, sel, code, message }) => {
    const result = locateAndPatch(obj, sel ?? SHADOW, 42);
    expect('refused' in result).toBe(true);
    if (!('refused' in result)) return;
    expect({ code: result.refused.code, message: result.refused.message }).toEqual({ code, message });
  });
});

describe('strange but valid shapes: patched, and the result is valid', () => {
  it('routes without names: every one mirroring to the target is set', () => {
    const obj = vs([
      { ...PRIMARY_ROUTE, mirror: { host: 'checkout-shadow' }, mirrorPercentage: { value: 5 } },
      { ...PRIMARY_ROUTE },
      { ...PRIMARY_ROUTE, mirrors: [{ destination: { host: 'checkout-shadow.shop.svc.cluster.local' } }] },
    ]);
    const result = locateAndPatch(obj, SHADOW, 42);
    if ('refused' in result) throw result.refused;
    const http = (result.after.spec as { http: JsonObject[] }).http;
    expect(http[0]?.mirrorPercentage).toEqual({ value: 42 });
    expect(http[1]).toEqual(PRIMARY_ROUTE);
    expect((http[2]?.mirrors as JsonObject[] | undefined)?.[0]?.percentage).toEqual({ value: 42 });
  });

  it('hundreds of routes: only the mirrors to the target change, quickly', () => {
    const routes = Array.from({ length: 600 }, (_, i) =>
      i % 6 === 0
        ? {
            name: `r${i}`,
            ...PRIMARY_ROUTE,
            mirror: { host: 'checkout-shadow' },
            mirrorPercentage: { value: i % 100 },
          }
        : i % 6 === 1
          ? {
              name: `r${i}`,
              ...PRIMARY_ROUTE,
              mirror: { host: 'audit-sink' },
              mirrorPercentage: { value: 3 },
            }
          : { name: `r${i}`, ...PRIMARY_ROUTE },
    );
    const obj = vs(routes);
    const started = performance.now();
    const result = locateAndPatch(obj, SHADOW, 7.5);
    expect(performance.now() - started).toBeLessThan(2000);
    if ('refused' in result) throw result.refused;
    const http = (result.after.spec as { http: JsonObject[] }).http;
    for (const [i, route] of http.entries()) {
      const want = i % 6 === 0 ? { ...routes[i], mirrorPercentage: { value: 7.5 } } : routes[i];
      expect(route).toEqual(want);
    }
  });

  it('a mirrorPercentage of null reads as unset (100 %) and is replaced, tested first', () => {
    const obj = vs([{ ...MIRROR_SHAPE_ROUTES.implicit, mirrorPercentage: null }]);
    const result = locateAndPatch(obj, SHADOW, 20);
    if ('refused' in result) throw result.refused;
    expect(result.ops).toContainEqual({ op: 'test', path: '/spec/http/0/mirrorPercentage', value: null });
  });

  it('an out-of-range new percentage is refused before any op is built', () => {
    const obj = vs([MIRROR_SHAPE_ROUTES.mirrorPercentage]);
    for (const bad of [-0.5, 100.01, Number.NaN, Number.POSITIVE_INFINITY]) {
      const result = locateAndPatch(obj, SHADOW, bad);
      expect('refused' in result && result.refused.code).toBe('InvalidPercentage');
    }
  });
});

describe('checkMirrorFields', () => {
  it('accepts every shape Istio accepts', () => {
    for (const route of Object.values(MIRROR_SHAPE_ROUTES)) {
      expect(checkMirrorFields(vs([route]) as unknown as VirtualService)).toBeUndefined();
    }
  });
});

describe('property: generated VirtualServices', () => {
  /** Values that belong nowhere, for any slot. */
  const garbage = fc.constantFrom<unknown>(null, 'abc', '50', 50, -1, 101, [], [1], {}, true, {
    value: '50',
  });
  const percentObject = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.double({ min: 0, max: 100, noNaN: true }).map((value) => ({ value })),
    },
    { weight: 1, arbitrary: fc.constant({}) },
    {
      weight: 1,
      arbitrary: fc.constantFrom({ value: -5 }, { value: 150 }, { value: '50' }, { value: null }),
    },
    { weight: 1, arbitrary: garbage },
  );
  const host = fc.constantFrom(
    'checkout-shadow',
    'checkout-shadow.shop',
    'checkout-shadow.shop.svc.cluster.local',
    'audit-sink',
    'checkout-shadow.other',
    '',
  );
  const destination = fc.oneof(
    { weight: 12, arbitrary: fc.record({ host }, { requiredKeys: ['host'], noNullPrototype: true }) },
    { weight: 1, arbitrary: garbage },
  );
  const absent = fc.constant(undefined);
  const route = fc
    .record(
      {
        name: fc.oneof(
          { weight: 3, arbitrary: absent },
          { weight: 6, arbitrary: fc.constantFrom('primary', 'canary', '') },
          { weight: 1, arbitrary: garbage },
        ),
        mirror: fc.oneof({ weight: 2, arbitrary: absent }, { weight: 3, arbitrary: destination }),
        mirrorPercentage: fc.oneof({ weight: 3, arbitrary: absent }, { weight: 2, arbitrary: percentObject }),
        mirrorPercent: fc.oneof(
          { weight: 6, arbitrary: absent },
          { weight: 1, arbitrary: fc.integer({ min: -10, max: 110 }) },
          { weight: 1, arbitrary: garbage },
        ),
        mirror_percent: fc.oneof(
          { weight: 8, arbitrary: absent },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: 100 }) },
        ),
        mirrors: fc.oneof(
          { weight: 8, arbitrary: absent },
          {
            weight: 2,
            arbitrary: fc.array(
              fc.oneof(
                {
                  weight: 5,
                  arbitrary: fc.record(
                    { destination, percentage: fc.oneof(absent, percentObject) },
                    { noNullPrototype: true },
                  ),
                },
                { weight: 1, arbitrary: garbage },
              ),
              { maxLength: 3 },
            ),
          },
          { weight: 1, arbitrary: garbage },
        ),
      },
      { noNullPrototype: true },
    )
    .map((r) => {
      // Absent keys are left out rather than set to undefined: JSON has no undefined.
      const out: Record<string, unknown> = { ...PRIMARY_ROUTE };
      for (const [k, v] of Object.entries(r)) if (v !== undefined) out[k] = v;
      return out;
    });
  /** Routes Istio accepts, in every shape, so that the generated objects often are writable. */
  const validHost = fc.constantFrom(
    'checkout-shadow',
    'checkout-shadow.shop.svc.cluster.local',
    'audit-sink',
    'checkout-shadow.other',
  );
  const validPercent = fc.double({ min: 0, max: 100, noNaN: true }).map((value) => ({ value }));
  const validRoute = fc
    .tuple(
      fc.constantFrom(undefined, 'primary', 'canary'),
      validHost,
      fc.constantFrom('none', 'implicit', 'percentage', 'deprecated', 'mirrors'),
      validPercent,
      fc.integer({ min: 0, max: 100 }),
    )
    .map(([name, h, shape, percentage, integer]) => {
      const out: Record<string, unknown> = { ...(name === undefined ? {} : { name }), ...PRIMARY_ROUTE };
      if (shape === 'implicit') out.mirror = { host: h };
      if (shape === 'percentage') Object.assign(out, { mirror: { host: h }, mirrorPercentage: percentage });
      if (shape === 'deprecated') Object.assign(out, { mirror: { host: h }, mirrorPercent: integer });
      if (shape === 'mirrors')
        out.mirrors = [{ destination: { host: 'audit-sink' } }, { destination: { host: h }, percentage }];
      return out;
    });
  const spec = fc.oneof(
    {
      weight: 12,
      arbitrary: fc
        .array(
          fc.oneof(
            { weight: 12, arbitrary: validRoute },
            { weight: 2, arbitrary: route },
            { weight: 1, arbitrary: garbage },
          ),
          {
            maxLength: 6,
          },
        )
        .map((http) => ({ hosts: ['checkout'], http })),
    },
    { weight: 1, arbitrary: garbage },
  );
  const selector = fc.record(
    {
      route: fc.constantFrom('primary', 'canary'),
      host: fc.constantFrom('checkout-shadow', 'checkout-shadow.shop.svc.cluster.local'),
    },
    { requiredKeys: ['host'], noNullPrototype: true },
  );

  it('either refuses with a MeshError naming the VirtualService, or writes a valid object', () => {
    let patched = 0;
    let refused = 0;
    fc.assert(
      fc.property(spec, selector, fc.double({ min: 0, max: 100, noNaN: true }), (s, sel, percent) => {
        const obj = { ...vs([]), spec: s };
        const result = locateAndPatch(obj, sel, percent);
        if ('refused' in result) {
          refused++;
          expect(MESH_ERROR_CODES).toContain(result.refused.code);
          expect(result.refused.message).toMatch(/^VirtualService shop\/checkout: /);
          expect(result.refused.message).not.toMatch(/\n/);
        } else {
          patched++;
          // Only the mirror percentages and the annotation changed: everything else is as it was.
          const strip = (o: JsonObject) =>
            JSON.stringify(o, (k, v: unknown) =>
              ['mirrorPercentage', 'mirrorPercent', 'mirror_percent', 'percentage', 'annotations'].includes(k)
                ? undefined
                : v,
            );
          expect(strip(result.after)).toBe(strip(obj as JsonObject));
        }
      }),
      { numRuns: 1500 },
    );
    // The generator must reach both outcomes, or the property proves little.
    expect(patched).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(50);
  });
});
