import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { runSchema } from '../../src/cli/schema.js';
import { parsePolicy } from '../../src/policy/parse.js';
import { type Json, policyJsonSchema, policyJsonSchemaText } from '../../src/policy/schema.js';
import { BASE } from './fixtures.js';

const SCHEMA_FILE = 'schema/mirror-policy.schema.json';

/**
 * A small validator for exactly the keywords the generator emits; an unknown keyword fails loudly so that
 * this check keeps up with the generator. (No JSON Schema library is a dependency of the project.)
 */
function schemaErrors(schema: Json, value: unknown, path = ''): string[] {
  if (typeof schema !== 'object' || schema === null || Array.isArray(schema)) throw new Error('bad schema');
  const errors: string[] = [];
  const isObj = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  for (const [keyword, arg] of Object.entries(schema)) {
    switch (keyword) {
      case '$schema':
      case 'title':
      case 'description':
      case 'default':
        break;
      case 'type': {
        const ok =
          arg === 'object'
            ? isObj(value)
            : arg === 'string'
              ? typeof value === 'string'
              : arg === 'number'
                ? typeof value === 'number' && Number.isFinite(value)
                : arg === 'integer'
                  ? Number.isInteger(value)
                  : false;
        if (!ok) return [`${path}: type ${String(arg)}`];
        break;
      }
      case 'properties':
        if (isObj(value) && isObj(arg)) {
          for (const [k, sub] of Object.entries(arg)) {
            if (k in value) errors.push(...schemaErrors(sub as Json, value[k], `${path}.${k}`));
          }
        }
        break;
      case 'required':
        if (isObj(value) && Array.isArray(arg)) {
          for (const k of arg) if (!(String(k) in value)) errors.push(`${path}.${String(k)}: required`);
        }
        break;
      case 'additionalProperties':
        if (isObj(value) && isObj(schema.properties)) {
          const known = schema.properties;
          for (const k of Object.keys(value)) if (!(k in known)) errors.push(`${path}.${k}: additional`);
        }
        break;
      case 'minProperties':
        if (isObj(value) && Object.keys(value).length < Number(arg)) errors.push(`${path}: minProperties`);
        break;
      case 'const':
        if (value !== arg) errors.push(`${path}: const`);
        break;
      case 'enum':
        if (!Array.isArray(arg) || !arg.includes(value as Json)) errors.push(`${path}: enum`);
        break;
      case 'pattern':
        if (typeof value === 'string' && !new RegExp(String(arg), 'u').test(value))
          errors.push(`${path}: pattern`);
        break;
      case 'minLength':
        if (typeof value === 'string' && value.length < Number(arg)) errors.push(`${path}: minLength`);
        break;
      case 'maxLength':
        if (typeof value === 'string' && value.length > Number(arg)) errors.push(`${path}: maxLength`);
        break;
      case 'minimum':
        if (typeof value === 'number' && value < Number(arg)) errors.push(`${path}: minimum`);
        break;
      case 'maximum':
        if (typeof value === 'number' && value > Number(arg)) errors.push(`${path}: maximum`);
        break;
      case 'exclusiveMinimum':
        if (typeof value === 'number' && value <= Number(arg)) errors.push(`${path}: exclusiveMinimum`);
        break;
      case 'exclusiveMaximum':
        if (typeof value === 'number' && value >= Number(arg)) errors.push(`${path}: exclusiveMaximum`);
        break;
      case 'oneOf':
        if (Array.isArray(arg)) {
          const passing = arg.filter((sub) => schemaErrors(sub, value, path).length === 0).length;
          if (passing !== 1) errors.push(`${path}: oneOf (${passing} of ${arg.length} match)`);
        }
        break;
      default:
        throw new Error(`test validator does not know keyword ${keyword}`);
    }
  }
  return errors;
}

describe('JSON Schema', () => {
  it('the committed schema file is the generated one', async () => {
    const committed = await readFile(SCHEMA_FILE, 'utf8');
    // On failure: npx tsx src/cli/main.ts schema > schema/mirror-policy.schema.json
    expect(committed).toBe(policyJsonSchemaText());
  });

  it('the schema command prints the same text and exits 0', () => {
    let out = '';
    let err = '';
    const code = runSchema({
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
    });
    expect(code).toBe(0);
    expect(err).toBe('');
    expect(out).toBe(policyJsonSchemaText());
  });

  it('declares draft 2020-12 and closes every object', () => {
    const schema = policyJsonSchema();
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    const open: string[] = [];
    const walk = (node: Json, path: string): void => {
      if (typeof node !== 'object' || node === null || Array.isArray(node)) return;
      if (node.type === 'object' && node.additionalProperties !== false) open.push(path);
      const props = node.properties;
      if (typeof props === 'object' && props !== null && !Array.isArray(props)) {
        for (const [k, v] of Object.entries(props)) walk(v, `${path}.${k}`);
      }
    };
    walk(schema, '');
    expect(open).toEqual([]);
  });

  it('accepts the shipped examples', async () => {
    for (const name of ['checkout', 'recommendations', 'search']) {
      const doc: unknown = parseYaml(await readFile(`policies/${name}.yaml`, 'utf8'));
      expect(schemaErrors(policyJsonSchema(), doc), name).toEqual([]);
    }
  });

  // Rules the schema cannot express (across fields, PromQL, duration ranges); a document may pass the
  // schema and still fail only these.
  const BEYOND_SCHEMA =
    /must be <= spec\.bounds\.maxPercent|must be >= spec\.interval|has no guardrail|PromQL|placeholder|must be [<>]= [0-9][0-9a-z]* \(got [0-9]/;

  it('agrees with the validator on mutated documents', () => {
    const base = parseYaml(BASE) as Record<string, unknown>;
    const paths: string[][] = [
      ['apiVersion'],
      ['kind'],
      ['metadata', 'name'],
      ['spec', 'virtualService', 'name'],
      ['spec', 'virtualService', 'namespace'],
      ['spec', 'virtualService', 'route'],
      ['spec', 'target', 'host'],
      ['spec', 'target', 'subset'],
      ['spec', 'target', 'workload'],
      ['spec', 'target', 'namespace'],
      ['spec', 'bounds', 'minPercent'],
      ['spec', 'bounds', 'maxPercent'],
      ['spec', 'guardrails', 'cpuUtilization'],
      ['spec', 'guardrails', 'errorRate'],
      ['spec', 'guardrails', 'latencyP99Ms'],
      ['spec', 'guardrails', 'bogus'],
      ['spec', 'interval'],
      ['spec', 'window'],
      ['spec', 'queries', 'errorRate'],
      ['spec', 'signals', 'preset'],
      ['spec', 'signals', 'reporter'],
      ['spec', 'control', 'hysteresis'],
      ['spec', 'control', 'maxWritesPerHour'],
      ['spec', 'control', 'cooldown'],
      ['spec', 'control', 'nope'],
      ['spec', 'extra'],
    ];
    const values = fc.oneof(
      fc.constantFrom<unknown>(
        undefined,
        0,
        -1,
        0.5,
        1,
        1.5,
        2.5,
        50,
        100,
        150,
        '',
        'a',
        'shop',
        'Shop',
        'a.b',
        'x_y',
        '30s',
        '500ms',
        '2h',
        '1m',
        'up',
        'up +',
        '{{foo}}',
        true,
        null,
        [1],
        {},
        'mirror-autoscaler.io/v1alpha1',
        'MirrorPolicy',
        'istio',
        'istio-ambient',
        'otel',
        'Istio',
      ),
      fc.double({ noNaN: true, noDefaultInfinity: true, min: -200, max: 200 }),
    );
    const mutation = fc.array(fc.tuple(fc.constantFrom(...paths), values), { minLength: 1, maxLength: 3 });
    fc.assert(
      fc.property(mutation, (edits) => {
        const doc = structuredClone(base);
        for (const [path, value] of edits) {
          let node: Record<string, unknown> = doc;
          for (const key of path.slice(0, -1)) {
            const next = node[key];
            if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
            node = node[key] as Record<string, unknown>;
          }
          const leaf = path[path.length - 1] ?? '';
          if (value === undefined) delete node[leaf];
          else node[leaf] = value;
        }
        const text = stringify(doc);
        const { problems } = parsePolicy(text, 'f.yaml');
        const schemaOk = schemaErrors(policyJsonSchema(), parseYaml(text)).length === 0;
        if (problems.length === 0) expect(schemaOk, text).toBe(true);
        if (schemaOk)
          expect(
            problems.filter((p) => !BEYOND_SCHEMA.test(p.message)),
            text,
          ).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });
});
