import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runValidate } from '../../src/cli/validate.js';
import { BASE, edit } from '../policy/fixtures.js';

/** Runs the command with collecting streams. */
async function run(dir: string): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runValidate(dir, {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
  });
  return { code, out, err };
}

describe('validate command', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mirror-validate-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('passes the shipped policies with a summary on stdout', async () => {
    const { code, out, err } = await run('policies');
    expect({ code, out, err }).toEqual({
      code: 0,
      out: 'ok: 6 policies in policies/ (checkout, inventory, payments, recommendations, search, storefront)\n',
      err: '',
    });
  });

  it('says "policy" for one', async () => {
    await writeFile(join(dir, 'checkout.yaml'), BASE);
    expect((await run(`${dir}/`)).out).toBe(`ok: 1 policy in ${dir}/ (checkout)\n`);
  });

  it('prints one line per problem on stderr, across files, and exits 1', async () => {
    await writeFile(join(dir, 'a.yaml'), edit([['maxPercent: 100', 'maxPercent: 150']]));
    await writeFile(
      join(dir, 'b.yaml'),
      edit([
        ['  name: checkout\nspec:', '  name: other\nspec:'],
        ['errorRate: 0.02', 'errorRate: lots'],
      ]),
    );
    const { code, out, err } = await run(dir);
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err.split('\n')).toEqual([
      `${join(dir, 'a.yaml')}:14:17: spec.bounds.maxPercent: must be <= 100 (got 150)`,
      `${join(dir, 'b.yaml')}:17:16: spec.guardrails.errorRate: must be a number (got "lots")`,
      '',
    ]);
  });

  it('reports a missing directory and exits 1', async () => {
    const missing = join(dir, 'missing');
    expect(await run(missing)).toEqual({ code: 1, out: '', err: `${missing}: policy directory not found\n` });
  });
});
