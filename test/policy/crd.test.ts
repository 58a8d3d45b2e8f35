/**
 * The MirrorPolicy CRD: generated from the policy format like the validator and the JSON Schema, committed as
 * deploy/base/crd-mirrorpolicies.yaml, and agreeing with `validate` on the shipped policies and on the same
 * bad inputs. The CRD's OpenAPI schema and CEL rules are checked here the way the API server applies them
 * (strict field validation, as `kubectl apply` asks for), by a checker over the subset of OpenAPI the CRD uses.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  BOUNDS_RULE,
  crdSpecSchema,
  exactlyOneRule,
  NAME_RULE,
  policyCrd,
  policyCrdText,
} from '../../src/policy/crd.js';
import { parsePolicy } from '../../src/policy/parse.js';
import type { Json } from '../../src/policy/schema.js';
import { edit } from './fixtures.js';

const ROOT = join(import.meta.dirname, '..', '..');
type Obj = { [key: string]: Json };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Evaluates one of the CEL rules the CRD carries, recognised by its text; an unknown rule fails the test. */
function celHolds(rule: string, self: Json): boolean {
  const obj = isObj(self) ? self : {};
  const has = rule.match(/^\[(.*)\]\.filter\(x, x\)\.size\(\) == 1$/);
  if (has !== null) {
    const keys = [...(has[1] ?? '').matchAll(/has\(self\.(\w+)\)/g)].map((m) => m[1] as string);
    return keys.filter((k) => k in obj).length === 1;
  }
  if (rule === BOUNDS_RULE.rule) return (obj.minPercent as number) <= (obj.maxPercent as number);
  if (rule === NAME_RULE.rule) {
    const name = String((obj.metadata as Obj | undefined)?.name ?? '');
    return name.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name);
  }
  const ref = rule.match(/^type\(self\) == int \? self >= 0 : self\.matches\('(.*)'\)$/);
  if (ref !== null) {
    return typeof self === 'number'
      ? Number.isInteger(self) && self >= 0
      : new RegExp(ref[1] as string).test(String(self));
  }
  throw new Error(`unknown CEL rule: ${rule}`);
}

/** The errors the API server (strict field validation) would report for `value` against `schema`. */
function errors(schema: Obj, value: Json, path: string): string[] {
  const out: string[] = [];
  const type = schema.type;
  if (schema['x-kubernetes-int-or-string'] === true) {
    if (!(typeof value === 'string' || Number.isInteger(value)))
      return [`${path}: must be an integer or string`];
  } else if (type === 'object' && !isObj(value)) return [`${path}: must be of type object`];
  else if (type === 'string' && typeof value !== 'string') return [`${path}: must be of type string`];
  else if (type === 'number' && typeof value !== 'number') return [`${path}: must be of type number`];
  else if (type === 'integer' && !Number.isInteger(value)) return [`${path}: must be of type integer`];
  if (isObj(value) && isObj(schema.properties)) {
    const props = schema.properties;
    for (const [k, v] of Object.entries(value)) {
      if (!(k in props)) {
        if (schema['x-kubernetes-preserve-unknown-fields'] !== true) out.push(`${path}.${k}: unknown field`);
        continue;
      }
      out.push(...errors(props[k] as Obj, v, `${path}.${k}`));
    }
  }
  if (isObj(value)) {
    for (const k of (schema.required as string[] | undefined) ?? [])
      if (!(k in value)) out.push(`${path}.${k}: Required`);
    if (typeof schema.minProperties === 'number' && Object.keys(value).length < schema.minProperties)
      out.push(`${path}: minProperties`);
  }
  if (typeof value === 'string') {
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(value))
      out.push(`${path}: pattern`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength)
      out.push(`${path}: maxLength`);
    if (typeof schema.minLength === 'number' && value.length < schema.minLength)
      out.push(`${path}: minLength`);
    if (Array.isArray(schema.enum) && !schema.enum.includes(value)) out.push(`${path}: enum`);
  }
  if (typeof value === 'number') {
    if (
      typeof schema.minimum === 'number' &&
      (schema.exclusiveMinimum === true ? value <= schema.minimum : value < schema.minimum)
    )
      out.push(`${path}: minimum`);
    if (
      typeof schema.maximum === 'number' &&
      (schema.exclusiveMaximum === true ? value >= schema.maximum : value > schema.maximum)
    )
      out.push(`${path}: maximum`);
  }
  // As in the API server, CEL rules run only on a value whose schema checks passed.
  if (out.length === 0) {
    for (const r of (schema['x-kubernetes-validations'] as Obj[] | undefined) ?? []) {
      if (!celHolds(String(r.rule), value)) out.push(`${path}: ${String(r.message)}`);
    }
  }
  return out;
}

const ROOT_SCHEMA = (): Obj => {
  const versions = ((policyCrd().spec as Obj).versions as Obj[])[0] as Obj;
  return ((versions.schema as Obj).openAPIV3Schema as Obj) ?? {};
};

/** A policy file as a MirrorPolicy resource: the document plus a namespace. */
function asResource(text: string): Obj {
  const doc = parseYaml(text) as Obj;
  return { ...doc, metadata: { ...(doc.metadata as Obj), namespace: 'mirror-autoscaler' } };
}

describe('the MirrorPolicy CRD', () => {
  it('is committed as generated (regenerate: npx tsx src/cli/main.ts schema --crd > deploy/base/crd-mirrorpolicies.yaml)', () => {
    expect(readFileSync(join(ROOT, 'deploy', 'base', 'crd-mirrorpolicies.yaml'), 'utf8')).toBe(
      policyCrdText(),
    );
  });

  it('is namespaced, v1alpha1, with a status subresource, and its spec schema is the policy format', () => {
    const spec = policyCrd().spec as Obj;
    expect(spec).toMatchObject({ group: 'mirror-autoscaler.io', scope: 'Namespaced' });
    const [version] = spec.versions as Obj[];
    expect(version).toMatchObject({
      name: 'v1alpha1',
      served: true,
      storage: true,
      subresources: { status: {} },
    });
    expect(Object.keys((crdSpecSchema().properties as Obj) ?? {})).toContain('httpRoute');
    expect(crdSpecSchema()['x-kubernetes-validations']).toEqual([
      exactlyOneRule(['virtualService', 'httpRoute', 'grpcRoute']),
    ]);
  });

  it('accepts every shipped policy, as validate does', () => {
    const files = readdirSync(join(ROOT, 'policies')).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(4);
    for (const f of files) {
      const text = readFileSync(join(ROOT, 'policies', f), 'utf8');
      expect(parsePolicy(text, f).problems, f).toEqual([]);
      expect(errors(ROOT_SCHEMA(), asResource(text), ''), f).toEqual([]);
    }
  });

  // Field-level problems: validate and the CRD both refuse them.
  const bad: { name: string; text: string; crd: string }[] = [
    {
      name: 'maxPercent above 100',
      text: edit([['maxPercent: 100', 'maxPercent: 150']]),
      crd: '.spec.bounds.maxPercent: maximum',
    },
    {
      name: 'minPercent above maxPercent',
      text: edit([
        ['minPercent: 1', 'minPercent: 60'],
        ['maxPercent: 100', 'maxPercent: 50'],
      ]),
      crd: '.spec.bounds: minPercent must be <= maxPercent',
    },
    {
      name: 'a CPU limit of 0',
      text: edit([['cpuUtilization: 0.8', 'cpuUtilization: 0']]),
      crd: '.spec.guardrails.cpuUtilization: minimum',
    },
    {
      name: 'an error rate above 1',
      text: edit([['errorRate: 0.02', 'errorRate: 2']]),
      crd: '.spec.guardrails.errorRate: maximum',
    },
    {
      name: 'an unknown field',
      text: edit([['  bounds:\n', '  bound:\n    x: 1\n  bounds:\n']]),
      crd: '.spec.bound: unknown field',
    },
    {
      name: 'a namespace with capitals',
      text: edit([['namespace: shop', 'namespace: Shop']]),
      crd: '.spec.virtualService.namespace: pattern',
    },
    { name: 'a bad duration', text: edit([], '  interval: 30 seconds\n'), crd: '.spec.interval: pattern' },
    {
      name: 'no guardrail',
      text: edit([
        ['    cpuUtilization: 0.8\n    errorRate: 0.02\n    latencyP99Ms: 400\n', '    {}\n'],
      ]).replace('  guardrails:\n    {}\n', '  guardrails: {}\n'),
      crd: '.spec.guardrails: minProperties',
    },
    {
      name: 'two routes',
      text: edit([['  target:\n', '  httpRoute: { name: checkout, namespace: shop }\n  target:\n']]),
      crd: '.spec: must set exactly one of virtualService, httpRoute, grpcRoute',
    },
    {
      name: 'no route',
      text: edit([['  virtualService:\n    name: checkout\n    namespace: shop\n', '']]),
      crd: '.spec: must set exactly one of virtualService, httpRoute, grpcRoute',
    },
    {
      name: 'a negative rule index',
      text: edit([
        ['  virtualService:\n', '  httpRoute:\n'],
        ['    namespace: shop\n', '    namespace: shop\n    rule: -1\n'],
        ['    host: checkout-shadow\n', '    backendRef: { name: checkout-shadow }\n'],
      ]),
      crd: '.spec.httpRoute.rule: must be a rule name (a DNS-1123 subdomain) or the rule index (an integer >= 0)',
    },
    {
      name: 'an unknown preset',
      text: edit([], '  signals: { preset: linkerd }\n'),
      crd: '.spec.signals.preset: enum',
    },
    {
      name: 'a policy name with capitals',
      text: edit([['  name: checkout\nspec:', '  name: Checkout\nspec:']]),
      crd: ': metadata.name must be a DNS-1123 label: lowercase letters, digits and "-", at most 63 characters',
    },
  ];
  it.each(bad)('refuses what validate refuses: $name', ({ text, crd }) => {
    expect(parsePolicy(text, 'p.yaml').problems.length).toBeGreaterThan(0);
    expect(errors(ROOT_SCHEMA(), asResource(text), '')).toContain(crd);
  });
});
