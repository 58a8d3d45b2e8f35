import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DNS1123_LABEL, DNS1123_SUBDOMAIN, matchesRule } from '../../src/policy/names.js';
import { formatProblem, MAX_PROBLEMS, parsePolicy } from '../../src/policy/parse.js';
import type { MirrorPolicy, Problem } from '../../src/policy/types.js';
import { BASE } from './fixtures.js';

const SEEDS = [
  BASE,
  readFileSync('policies/checkout.yaml', 'utf8'),
  readFileSync('policies/search.yaml', 'utf8'),
  readFileSync('policies/recommendations.yaml', 'utf8'),
];

/** What must hold of any result, whatever the input. */
function checkResult(result: { policy?: MirrorPolicy; problems: Problem[] }): void {
  for (const p of result.problems) {
    expect(p.line).toBeGreaterThanOrEqual(1);
    expect(p.col).toBeGreaterThanOrEqual(1);
    expect(p.message.length).toBeGreaterThan(0);
    // One line per problem is the CLI contract.
    expect(formatProblem(p)).not.toMatch(/[\r\n]/);
  }
  const policy = result.policy;
  if (policy === undefined) {
    expect(result.problems.length).toBeGreaterThan(0);
    return;
  }
  expect(result.problems).toEqual([]);
  // A returned policy is safe to use: bounds ordered, names fit for PromQL, at least one guardrail.
  expect(policy.bounds.minPercent).toBeGreaterThanOrEqual(0);
  expect(policy.bounds.minPercent).toBeLessThanOrEqual(policy.bounds.maxPercent);
  expect(policy.bounds.maxPercent).toBeLessThanOrEqual(100);
  expect(Object.keys(policy.guardrails).length).toBeGreaterThan(0);
  expect(matchesRule(policy.target.namespace, DNS1123_LABEL)).toBe(true);
  expect(matchesRule(policy.target.workload, DNS1123_SUBDOMAIN)).toBe(true);
  expect(policy.windowSeconds).toBeGreaterThanOrEqual(policy.intervalSeconds);
  expect(policy.intervalSeconds).toBeGreaterThanOrEqual(1);
}

/** One edit of a YAML text: characters that matter to YAML are over-represented. */
const yamlish = fc.string({
  unit: fc.constantFrom(
    ...':{}[]-&*!|>\'"#%@`,?\n\t \\0123456789abcxyz'.split(''),
    '\u00e9',
    '\u{1F600}',
    '\uFEFF',
  ),
  maxLength: 8,
});
const editOp = fc.oneof(
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: yamlish }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant('dupLine' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('swapLines' as const), at: fc.nat(), with: fc.nat() }),
);
type EditOp = typeof editOp extends fc.Arbitrary<infer T> ? T : never;

function applyEdit(text: string, op: EditOp): string {
  const at = text.length === 0 ? 0 : op.at % (text.length + 1);
  switch (op.kind) {
    case 'insert':
      return text.slice(0, at) + op.text + text.slice(at);
    case 'delete':
      return text.slice(0, at) + text.slice(at + op.length);
    case 'dupLine':
    case 'swapLines': {
      const lines = text.split('\n');
      const i = op.at % lines.length;
      const line = lines[i] ?? '';
      if (op.kind === 'dupLine') lines.splice(i, 0, line);
      else {
        const j = op.with % lines.length;
        lines[i] = lines[j] ?? '';
        lines[j] = line;
      }
      return lines.join('\n');
    }
  }
}

describe('parsePolicy on hostile input', () => {
  it('never throws on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 300 }), (text) => {
        checkResult(parsePolicy(text, 'f.yaml'));
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on mutated valid policies, and any policy it returns is sound', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...SEEDS),
        fc.array(editOp, { minLength: 1, maxLength: 4 }),
        (seed, ops) => {
          checkResult(parsePolicy(ops.reduce(applyEdit, seed), 'f.yaml'));
        },
      ),
      { numRuns: 1500 },
    );
  });

  const bomb = (at: 'root' | 'spec' | 'value'): string => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 10; i++) {
      const prev = String.fromCharCode(96 + i);
      const name = String.fromCharCode(97 + i);
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(',')}]`);
    }
    if (at === 'root') return `${levels.join('\n')}\n`;
    if (at === 'spec') return `x:\n${levels.map((l) => `  ${l}`).join('\n')}\nspec: *j\n`;
    return BASE.replace(
      'maxPercent: 100',
      `maxPercent: *j\n${levels.map((l) => `    ${l.replace(':', '_:')}`).join('\n')}`,
    );
  };
  it.each(['root', 'spec', 'value'] as const)('an alias bomb (%s) gives problems quickly', (at) => {
    const started = performance.now();
    const result = parsePolicy(bomb(at), 'bomb.yaml');
    expect(performance.now() - started).toBeLessThan(2000);
    expect(result.policy).toBeUndefined();
    expect(result.problems.length).toBeGreaterThan(0);
    checkResult(result);
  });

  it('too many aliases on known paths are refused', () => {
    // Keys resolved through aliases count too: a mapping of 101 aliased keys.
    const viaKeys = Array.from({ length: 101 }, (_, i) => `  ? *v\n  : ${i}`).join('\n');
    const result = parsePolicy(`v: &v x\nspec:\n${viaKeys}\n`, 'f.yaml');
    expect(result.problems.map((p) => p.message)).toContain('too many YAML aliases (limit 100)');
    checkResult(result);
  });

  it('deep nesting does not overflow the stack', () => {
    const result = parsePolicy(`spec: ${'['.repeat(20000)}${']'.repeat(20000)}\n`, 'f.yaml');
    checkResult(result);
    expect(result.policy).toBeUndefined();
  });

  it('a large file just under the cap is handled quickly', () => {
    const filler = Array.from({ length: 20000 }, (_, i) => `  k${i}: v`).join('\n');
    const started = performance.now();
    const result = parsePolicy(`${BASE}  control:\n${filler.replace(/^ {2}/gm, '    ')}\n`, 'f.yaml');
    expect(performance.now() - started).toBeLessThan(5000);
    // Capped: the first MAX_PROBLEMS and a line saying how many more there were.
    expect(result.problems).toHaveLength(MAX_PROBLEMS + 1);
    expect(result.problems.at(-1)?.message).toBe(`too many problems; ${20000 - MAX_PROBLEMS} more not shown`);
  });
});
