/**
 * Hostile and careless policy input: generated and mutated YAML documents, alias bombs, huge files and huge
 * directories, duplicate names, policies outside a namespace-scoped install, and query overrides that try to
 * escape their label matchers or hide missing data. fuzz.test.ts covers arbitrary text and text edits; this
 * file covers structured documents and the limits.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { runValidate } from '../../src/cli/validate.js';
import { restrictToNamespace } from '../../src/daemon/wiring.js';
import {
  checkQueryTemplate,
  formatProblem,
  loadPolicyDir,
  MAX_EXPANDED_NODES,
  MAX_POLICY_BYTES,
  MAX_POLICY_DIR_BYTES,
  MAX_POLICY_FILES,
  parsePolicy,
  renderQuery,
} from '../../src/policy/index.js';
import type { MirrorPolicy, Problem } from '../../src/policy/types.js';
import { BASE, edit } from './fixtures.js';

/** Upper bound on the time of one validation, whatever the input: a bound, not a benchmark. */
const CASE_BUDGET_MS = 1000;

/** Parses, failing the test when it throws or takes longer than the budget; checks the result's contract. */
function parseBounded(text: string, file = 'f.yaml'): { policy?: MirrorPolicy; problems: Problem[] } {
  const started = performance.now();
  const result = parsePolicy(text, file);
  expect(performance.now() - started).toBeLessThan(CASE_BUDGET_MS);
  for (const p of result.problems) {
    expect(p.file).toBe(file);
    expect(p.line).toBeGreaterThanOrEqual(1);
    expect(p.message.length).toBeGreaterThan(0);
    expect(formatProblem(p)).not.toMatch(/[\r\n]/);
  }
  if (result.policy === undefined) expect(result.problems.length).toBeGreaterThan(0);
  else expect(result.problems).toEqual([]);
  return result;
}

/** BASE with metadata.name and the VirtualService renamed, so that many copies do not clash. */
function named(i: number): string {
  return edit([
    ['  name: checkout\nspec:', `  name: p${i}\nspec:`],
    ['name: checkout\n    namespace', `name: vs-${i}\n    namespace`],
  ]);
}

/** A "billion laughs" chain: ten levels of nine aliases each, 9^10 nodes once expanded. */
function laughs(indent: string): string {
  const levels = [`${indent}l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]`];
  for (let i = 1; i < 10; i++)
    levels.push(
      `${indent}l${i}: &l${i} [${Array(9)
        .fill(`*l${i - 1}`)
        .join(',')}]`,
    );
  return `${levels.join('\n')}\n`;
}

describe('generated and mutated documents', () => {
  /** Values a careless or hostile author might put anywhere, YAML-specific ones included. */
  const hostileScalar = fc.oneof(
    fc.constantFrom<unknown>(
      null,
      true,
      '',
      '~',
      'null',
      '.inf',
      '-.nan',
      '0x10',
      '1e400',
      '"quoted"',
      '{{workload}}',
      'a\nb',
      '\u0000',
      '\uFEFF',
      '\u202Eevil',
      'x'.repeat(5000),
      [],
      {},
      [[[]]],
    ),
    fc.double(),
    fc.integer(),
    fc.string({ maxLength: 40 }),
  );
  const base = (() => {
    const doc = parsePolicy(BASE, 'base.yaml');
    expect(doc.policy).toBeDefined();
    return {
      apiVersion: 'mirror-autoscaler.io/v1alpha1',
      kind: 'MirrorPolicy',
      metadata: { name: 'checkout' },
      spec: {
        virtualService: { name: 'checkout', namespace: 'shop', route: 'primary' },
        target: { host: 'checkout-shadow', workload: 'checkout-shadow' },
        bounds: { minPercent: 1, maxPercent: 100 },
        guardrails: { cpuUtilization: 0.8, errorRate: 0.02, latencyP99Ms: 400 },
        interval: '30s',
        window: '2m',
        queries: { errorRate: 'sum(rate(x{w="{{workload}}"}[{{window}}]))' },
        control: { hysteresis: 0.2, cooldown: '1m' },
      },
    };
  })();

  it('random YAML documents never throw, hang or yield a policy without every required field', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (doc) => {
        parseBounded(stringify(doc));
      }),
      { numRuns: 250 },
    );
  });

  it('a valid policy with random values at random paths is either valid and sound, or refused', () => {
    type Json = Record<string, unknown>;
    const leaves: string[][] = [];
    const walk = (node: unknown, path: string[]) => {
      if (typeof node === 'object' && node !== null && !Array.isArray(node)) {
        leaves.push(path);
        for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
      } else leaves.push(path);
    };
    walk(base, []);
    const edits = fc.array(
      fc.tuple(fc.constantFrom(...leaves.filter((p) => p.length > 0)), hostileScalar, fc.boolean()),
      { minLength: 1, maxLength: 4 },
    );
    fc.assert(
      fc.property(edits, (changes) => {
        const doc = structuredClone(base) as Json;
        for (const [path, value, rename] of changes) {
          let node: Json = doc;
          for (const key of path.slice(0, -1)) {
            const next = node[key];
            if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
            node = node[key] as Json;
          }
          const leaf = path.at(-1) ?? '';
          // Renaming a key (a typo) or replacing its value.
          if (rename) {
            node[`${leaf}x`] = node[leaf];
            delete node[leaf];
          } else node[leaf] = value;
        }
        const { policy } = parseBounded(stringify(doc));
        if (policy === undefined) return;
        expect(policy.bounds.minPercent).toBeLessThanOrEqual(policy.bounds.maxPercent);
        expect(policy.bounds.maxPercent).toBeLessThanOrEqual(100);
        expect(policy.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
        for (const q of Object.values(policy.queries)) expect(checkQueryTemplate(q)).toEqual([]);
      }),
      { numRuns: 250 },
    );
  });

  it('anchors, aliases, merge keys and tags spliced into a valid policy never throw or hang', () => {
    const lines = BASE.split('\n');
    const splice = fc.constantFrom(
      '    <<: *x',
      '  x: &x {a: 1}',
      '    name: !!binary aGVsbG8=',
      '    minPercent: !!str 5',
      '    maxPercent: &m 50',
      '    minPercent: *m',
      '  ? [a, b]',
      '  : c',
      '%YAML 1.1',
      '--- !tag',
      '    host: *undefined',
      '    host: &h checkout-shadow',
      '    workload: *h',
      '  !!map {}',
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), splice), { minLength: 1, maxLength: 4 }), (ops) => {
        const copy = [...lines];
        for (const [at, line] of ops) copy.splice(at % (copy.length + 1), 0, line);
        parseBounded(copy.join('\n'));
      }),
      { numRuns: 250 },
    );
  });
});

describe('alias bombs', () => {
  const rows = [
    { name: 'at the top level', text: laughs(''), line: 6 },
    {
      name: 'under an unknown key, aliased into metadata.name',
      text: `x:\n${laughs('  ')}${BASE}`.replace('  name: checkout\n', '  name: *l9\n'),
      line: 7,
    },
    {
      name: 'through a merge key',
      text: `x:\n${laughs('  ')}${BASE.replace('  bounds:\n', '  bounds:\n    <<: *l9\n')}`,
      line: 7,
    },
    {
      name: 'of mappings, twenty levels deep',
      text: `a: &a {x: 1, y: 1}\n${Array.from({ length: 20 }, (_, i) => `b${i}: &b${i} {p: ${i === 0 ? '*a' : `*b${i - 1}`}, q: ${i === 0 ? '*a' : `*b${i - 1}`}}`).join('\n')}\nspec: *b19\n`,
      line: 13,
    },
  ];
  it.each(rows)('$name: refused at once, naming the bomb', ({ text, line }) => {
    const { policy, problems } = parseBounded(text, 'bomb.yaml');
    expect(policy).toBeUndefined();
    expect(problems).toHaveLength(1);
    expect(problems[0]?.line).toBe(line);
    expect(problems[0]?.message).toMatch(
      new RegExp(
        `^YAML aliases expand this document to more than ${MAX_EXPANDED_NODES} nodes \\(an alias bomb: alias \\*\\w+\\); a policy needs no more than a few dozen$`,
      ),
    );
  });

  it('a few harmless aliases are still fine', () => {
    const text = `${BASE.replace('    host: checkout-shadow', '    host: &h checkout-shadow').replace('    workload: checkout-shadow', '    workload: *h')}`;
    const { policy } = parseBounded(text);
    expect(policy?.target.workload).toBe('checkout-shadow');
  });
});

describe('huge input', () => {
  const rows = [
    {
      name: 'one byte over the size cap',
      text: `${BASE}#${'x'.repeat(MAX_POLICY_BYTES - BASE.length)}`,
      message: `file is too large (${MAX_POLICY_BYTES + 1} bytes; limit ${MAX_POLICY_BYTES})`,
    },
    {
      name: 'multi-byte characters over the cap, counted in bytes',
      text: `${BASE}#${'\u00e9'.repeat(MAX_POLICY_BYTES / 2)}`,
      message: `file is too large (${BASE.length + 1 + MAX_POLICY_BYTES} bytes; limit ${MAX_POLICY_BYTES})`,
    },
    {
      name: 'a name of half a megabyte',
      text: BASE.replace('  name: checkout\n', `  name: ${'a'.repeat(500_000)}\n`),
      message: 'must be at most 63 characters (got 500000)',
    },
    {
      name: 'a query override of half a megabyte',
      text: `${BASE}  queries:\n    errorRate: "${'u'.repeat(500_000)}"\n`,
      message: 'must be at most 10000 characters (got 500000)',
    },
    {
      name: 'a hundred thousand documents',
      text: `${BASE}${'---\na: 1\n'.repeat(100_000)}`,
      message: 'found a second YAML document; a policy file holds exactly one MirrorPolicy',
    },
  ];
  it.each(rows)('$name: a clear problem, quickly', ({ text, message }) => {
    const { policy, problems } = parseBounded(text);
    expect(policy).toBeUndefined();
    expect(problems.map((p) => p.message)).toContain(message);
  });
});

describe('policy directories', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mirror-hostile-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes files in parallel batches (thousands of sequential writes are slow on a loaded machine). */
  async function writeMany(files: readonly (readonly [string, string])[]): Promise<void> {
    for (let i = 0; i < files.length; i += 200) {
      await Promise.all(files.slice(i, i + 200).map(([name, text]) => writeFile(join(dir, name), text)));
    }
  }

  it('5,000 valid files load, every one of them, in bounded time', async () => {
    await writeMany(
      Array.from({ length: 5000 }, (_, i) => [`p${String(i).padStart(4, '0')}.yaml`, named(i)] as const),
    );
    const started = performance.now();
    const { policies, problems } = await loadPolicyDir(dir);
    expect(performance.now() - started).toBeLessThan(15_000);
    expect(problems).toEqual([]);
    expect(policies).toHaveLength(5000);
    expect(new Set(policies.map((p) => p.name)).size).toBe(5000);
  }, 30_000);

  it(`more than ${MAX_POLICY_FILES} files are refused as a whole, naming the directory and the limit, without reading them`, async () => {
    // Empty files: had they been read, each would be a problem of its own.
    await writeMany(Array.from({ length: MAX_POLICY_FILES + 1 }, (_, i) => [`p${i}.yaml`, ''] as const));
    const started = performance.now();
    const { policies, problems } = await loadPolicyDir(dir);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(policies).toEqual([]);
    expect(problems.map(formatProblem)).toEqual([
      `${dir}: too many policy files (${MAX_POLICY_FILES + 1}; limit ${MAX_POLICY_FILES}); split them over several installs`,
    ]);
  }, 30_000);

  it('files adding up to more than the directory limit are refused, naming the file where it was crossed', async () => {
    // Files just under the per-file cap: each valid on its own (a long comment), together too much.
    const padded = `${BASE}#${'x'.repeat(MAX_POLICY_BYTES - BASE.length - 100)}\n`;
    const count = Math.ceil(MAX_POLICY_DIR_BYTES / padded.length) + 1;
    await writeMany(
      Array.from({ length: count }, (_, i) => [`p${String(i).padStart(3, '0')}.yaml`, padded] as const),
    );
    const { policies, problems } = await loadPolicyDir(dir);
    expect(policies).toEqual([]);
    const crossing = `p${String(Math.floor(MAX_POLICY_DIR_BYTES / padded.length)).padStart(3, '0')}.yaml`;
    expect(problems.map(formatProblem)).toEqual([
      `${join(dir, crossing)}: policy files up to this one add up to more than ${MAX_POLICY_DIR_BYTES} bytes (limit for a directory); this and later files were not read`,
    ]);
  }, 30_000);

  it('duplicate names across many files: each later one is refused, naming the first', async () => {
    const files: [string, string][] = Array.from({ length: 50 }, (_, i) => [
      `p${String(i).padStart(2, '0')}.yaml`,
      named(i),
    ]);
    // Three more files reuse the name p7 (on other VirtualServices, so only the name clashes).
    for (const k of [1, 2, 3]) {
      files.push([`z${k}.yaml`, named(7).replace('name: vs-7\n', `name: other-${k}\n`)]);
    }
    await writeMany(files);
    const { policies, problems } = await loadPolicyDir(dir);
    expect(problems.map(formatProblem)).toEqual(
      [1, 2, 3].map(
        (k) =>
          `${join(dir, `z${k}.yaml`)}:4:9: metadata.name: duplicate policy name "p7"; also defined in ${join(dir, 'p07.yaml')}:4:9`,
      ),
    );
    expect(policies).toHaveLength(50);
  });

  it('a duplicate key inside one file is refused, naming where it was first set', () => {
    const { problems } = parseBounded(BASE.replace('  name: checkout\n', '  name: checkout\n  name: evil\n'));
    expect(problems.map(formatProblem)).toEqual([
      'f.yaml:5:3: metadata.name: duplicate field (first set at line 4, column 3)',
    ]);
  });

  it('validate over a hostile directory reports every file and never throws', async () => {
    await writeMany([
      ['bomb.yaml', laughs('')],
      ['binary.yaml', '\u0000\u0001\u0002\uFFFD'],
      ['ok.yaml', BASE],
      ['deep.yaml', `spec: ${'['.repeat(5000)}${']'.repeat(5000)}\n`],
    ]);
    const out: string[] = [];
    const err: string[] = [];
    const code = await runValidate(dir, {
      stdout: { write: (t: string) => out.push(t) },
      stderr: { write: (t: string) => err.push(t) },
    });
    expect(code).toBe(1);
    const text = err.join('');
    for (const f of ['bomb.yaml', 'binary.yaml', 'deep.yaml']) expect(text).toContain(join(dir, f));
    expect(text).not.toContain(join(dir, 'ok.yaml'));
  });
});

describe('a namespace-scoped daemon', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mirror-scoped-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a policy on a VirtualService of another namespace, saying which namespace it is held to', async () => {
    await writeFile(join(dir, 'a.yaml'), BASE);
    await writeFile(
      join(dir, 'b.yaml'),
      edit([
        ['  name: checkout\nspec:', '  name: payments\nspec:'],
        ['name: checkout\n    namespace: shop', 'name: payments\n    namespace: kube-system'],
      ]),
    );
    const { policies, problems } = restrictToNamespace(await loadPolicyDir(dir), 'shop');
    expect(policies.map((p) => p.name)).toEqual(['checkout']);
    expect(problems.map(formatProblem)).toEqual([
      `${join(dir, 'b.yaml')}: spec.virtualService.namespace: must be "shop": the daemon is restricted to that namespace (got "kube-system")`,
    ]);
  });

  it('a mirror target in another namespace is not a VirtualService elsewhere: kept', async () => {
    await writeFile(
      join(dir, 'a.yaml'),
      edit([
        ['    workload: checkout-shadow\n', '    workload: checkout-shadow\n    namespace: shadow-ns\n'],
      ]),
    );
    const { policies, problems } = restrictToNamespace(await loadPolicyDir(dir), 'shop');
    expect(problems).toEqual([]);
    expect(policies.map((p) => p.target.namespace)).toEqual(['shadow-ns']);
  });

  it('without a scope every namespace is kept', async () => {
    await writeFile(join(dir, 'a.yaml'), edit([['namespace: shop', 'namespace: kube-system']]));
    const { policies, problems } = restrictToNamespace(await loadPolicyDir(dir), undefined);
    expect(problems).toEqual([]);
    expect(policies).toHaveLength(1);
  });
});

describe('query overrides that try to escape', () => {
  const W = 'sum(rate(istio_requests_total{destination_workload="{{workload}}"}[{{window}}]))';
  const rows: { name: string; query: string; message: RegExp }[] = [
    {
      name: 'placeholder outside quotes, read as PromQL (a-b_total is a - b_total)',
      query: '{{workload}}_total',
      message:
        /^placeholder \{\{workload\}\} must sit inside a quoted label value such as destination_workload="\{\{workload\}\}"; elsewhere its value would be read as PromQL$/,
    },
    {
      name: 'placeholder as a label name',
      query: 'up{ {{namespace}}="x"}',
      message: /^placeholder \{\{namespace\}\} must sit inside a quoted label value/,
    },
    {
      name: 'window used as a number',
      query: 'up > {{window}}',
      message:
        /^placeholder \{\{window\}\} must sit inside a range such as \[\{\{window\}\}\] or a quoted string/,
    },
    {
      name: 'closing the matcher early to add a selector',
      query: 'up{namespace="{{namespace}}"}{job="x"}',
      message: /is not valid PromQL/,
    },
    {
      name: 'quote break-out written into the template',
      query: 'up{namespace="{{namespace}}",pod=~".*"} or up{namespace!="',
      message: /is not valid PromQL/,
    },
    {
      name: 'or vector(0): missing data would read as healthy',
      query: `${W} or vector(0)`,
      message: /^must not use vector\(\): it makes up a value when series are missing/,
    },
    {
      name: 'or on() vector(0) in a ratio',
      query: `${W} / (${W} or on() vector(1))`,
      message: /^must not use vector\(\)/,
    },
    {
      name: 'absent() fallback',
      query: `${W} or absent(${W})`,
      message: /^must not use absent\(\)/,
    },
    {
      name: 'absent_over_time() fallback',
      query: `absent_over_time(up{pod="{{workload}}"}[{{window}}])`,
      message: /^must not use absent_over_time\(\)/,
    },
    {
      name: 'a constant',
      query: '0',
      message: /^must read at least one series/,
    },
    {
      name: 'time() only',
      query: 'time() - time()',
      message: /^must read at least one series/,
    },
    {
      name: 'pinned with @ (old data looks current)',
      query: `up{pod="{{workload}}"} @ 1700000000`,
      message: /^must not use the @ modifier/,
    },
    {
      name: 'offset into the past',
      query: `rate(up{pod="{{workload}}"}[{{window}}] offset 1h)`,
      message: /^must not use offset/,
    },
    {
      name: 'negative offset into the future',
      query: `rate(up{pod="{{workload}}"}[{{window}}] offset -1h)`,
      message: /^must not use offset/,
    },
    {
      name: 'subquery at a fine resolution',
      query: `max_over_time(rate(up{pod="{{workload}}"}[1m])[30d:1s])`,
      message: /^must not use a subquery/,
    },
    {
      name: 'two statements separated by ;',
      query: `${W}; up`,
      message: /is not valid PromQL/,
    },
    {
      name: 'two statements on two lines',
      query: `${W}\nup`,
      message: /is not valid PromQL/,
    },
    {
      name: 'a string instead of a number',
      query: '"{{workload}}"',
      message: /^must read at least one series/,
    },
  ];
  it.each(rows)('refused: $name', ({ query, message }) => {
    const problems = checkQueryTemplate(query);
    expect(problems.map((p) => p.message)).toContainEqual(expect.stringMatching(message));
  });

  it('every problem points into the template', () => {
    for (const { query } of rows) {
      for (const p of checkQueryTemplate(query)) {
        expect(p.offset).toBeGreaterThanOrEqual(0);
        expect(p.offset).toBeLessThanOrEqual(query.length);
      }
    }
  });

  it('the same refusals reach the policy file as positioned problems', () => {
    const { problems } = parseBounded(`${BASE}  queries:\n    errorRate: '${W} or vector(0)'\n`);
    expect(problems.map(formatProblem)).toEqual([
      expect.stringMatching(/^f\.yaml:20:16: spec\.queries\.errorRate: must not use vector\(\)/),
    ]);
  });

  const accepted = [
    { name: 'the default-style ratio', query: `${W} / ${W}` },
    {
      name: 'window inside a string is harmless',
      query: 'up{pod="{{workload}}",window="{{window}}"}',
    },
    {
      name: 'regex matcher with a placeholder',
      query:
        'sum(rate(container_cpu_usage_seconds_total{namespace="{{namespace}}",pod=~"{{workload}}-.*"}[{{window}}]))',
    },
    {
      name: 'or between two real selectors',
      query: `${W} or sum(rate(other_total{w="{{workload}}"}[{{window}}]))`,
    },
  ];
  it.each(accepted)('accepted: $name', ({ query }) => {
    expect(checkQueryTemplate(query)).toEqual([]);
  });

  it('an accepted template rendered with any valid names reads the same selectors: no value escapes its quotes', () => {
    const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,30}[a-z0-9])?$/);
    const templates = fc.constantFrom(...accepted.map((a) => a.query));
    fc.assert(
      fc.property(
        templates,
        label,
        label,
        fc.integer({ min: 1, max: 3600 }),
        (template, namespace, workload, windowSeconds) => {
          const rendered = renderQuery(template, { namespace, workload, windowSeconds });
          // Still valid with the real values, and with as many selectors as with the probe values.
          expect(checkQueryTemplate(rendered)).toEqual([]);
          const selectors = (q: string) => (q.match(/\{/g) ?? []).length;
          expect(selectors(rendered)).toBe(selectors(template.replace(/\{\{\s*\w+\s*\}\}/g, '')));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('arbitrary templates never throw and never take long', () => {
    const piece = fc.constantFrom(
      'up',
      '{',
      '}',
      '"',
      '{{workload}}',
      '{{window}}',
      '{{namespace}}',
      '[',
      ']',
      '(',
      ')',
      ' or ',
      'vector(0)',
      ' @ 1 ',
      ' offset 5m',
      ':',
      ';',
      '=~',
      '=',
      ',',
      'rate',
      'sum',
      '\\',
      '\n',
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 30 }), (pieces) => {
        const started = performance.now();
        const problems = checkQueryTemplate(pieces.join(''));
        expect(performance.now() - started).toBeLessThan(CASE_BUDGET_MS);
        for (const p of problems) expect(p.message).not.toMatch(/[\r\n]/);
      }),
      { numRuns: 500 },
    );
  });
});
