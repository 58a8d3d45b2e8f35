import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  loadPolicyDir,
  loadPolicyDirOrThrow,
  loadPolicyFile,
  MAX_POLICY_BYTES,
  PolicyError,
} from '../../src/policy/index.js';
import { formatProblem } from '../../src/policy/parse.js';
import { BASE, edit } from './fixtures.js';

/** BASE renamed and optionally pointed at another VirtualService route. */
function policy(name: string, extra: readonly (readonly [string, string])[] = []): string {
  return edit([['  name: checkout\nspec:', `  name: ${name}\nspec:`], ...extra]);
}

describe('the shipped example policies', () => {
  it('load from policies/ with no problems', async () => {
    const { policies, problems } = await loadPolicyDir('policies');
    expect(problems.map(formatProblem)).toEqual([]);
    expect(policies.map((p) => p.name)).toEqual([
      'checkout',
      'inventory',
      'payments',
      'recommendations',
      'search',
      'storefront',
    ]);
    expect(policies.map((p) => p.file)).toEqual([
      'policies/checkout.yaml',
      'policies/inventory-grpcroute.yaml',
      'policies/payments.yaml',
      'policies/recommendations.yaml',
      'policies/search.yaml',
      'policies/storefront-httproute.yaml',
    ]);
  });

  it('show one policy of each route kind: VirtualService, HTTPRoute, GRPCRoute', async () => {
    const { policies } = await loadPolicyDir('policies');
    expect(new Set(policies.map((p) => p.route.kind))).toEqual(
      new Set(['VirtualService', 'HTTPRoute', 'GRPCRoute']),
    );
    const storefront = policies.find((p) => p.name === 'storefront');
    expect(storefront?.route).toEqual({
      kind: 'HTTPRoute',
      name: 'storefront',
      namespace: 'web',
      rule: 'browse',
    });
    expect(storefront?.target).toEqual({
      backend: { name: 'storefront-shadow', port: 8080 },
      workload: 'storefront-shadow',
      namespace: 'web',
    });
    const inventory = policies.find((p) => p.name === 'inventory');
    expect(inventory?.route).toEqual({ kind: 'GRPCRoute', name: 'inventory', namespace: 'stock' });
    expect(inventory?.target.namespace).toBe('stock');
  });

  it('cover latency only with a named route, and a query override with min 0', async () => {
    const { policies } = await loadPolicyDir('policies');
    const search = policies.find((p) => p.name === 'search');
    expect(search?.guardrails).toEqual({ latencyP99Ms: 250 });
    expect(search?.route).toEqual({
      kind: 'VirtualService',
      name: 'search',
      namespace: 'search',
      rule: 'query-api',
    });
    const recs = policies.find((p) => p.name === 'recommendations');
    expect(recs?.bounds).toEqual({ minPercent: 0, maxPercent: 50 });
    expect(recs?.target.namespace).toBe('ml');
    expect(Object.keys(recs?.queries ?? {})).toEqual(['cpuUtilization']);
    const payments = policies.find((p) => p.name === 'payments');
    expect(payments?.production).toEqual({ service: 'payments-api', namespace: 'billing' });
    expect(payments?.observation).toEqual({ scrapeIntervalSeconds: 30, propagationSeconds: 10 });
  });

  it('each start with the yaml-language-server schema line', async () => {
    const { readFile } = await import('node:fs/promises');
    for (const name of ['checkout', 'recommendations', 'search']) {
      const text = await readFile(`policies/${name}.yaml`, 'utf8');
      expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=../schema/mirror-policy.schema.json');
    }
  });
});

describe('loadPolicyDir on temporary directories', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mirror-policies-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const write = (name: string, text: string) => writeFile(join(dir, name), text);

  it('reports a missing directory', async () => {
    const missing = join(dir, 'nope');
    const { policies, problems } = await loadPolicyDir(missing);
    expect(policies).toEqual([]);
    expect(problems.map(formatProblem)).toEqual([`${missing}: policy directory not found`]);
  });

  it('reports a file given as the directory', async () => {
    await write('a.yaml', BASE);
    const file = join(dir, 'a.yaml');
    expect((await loadPolicyDir(file)).problems.map(formatProblem)).toEqual([`${file}: not a directory`]);
  });

  it('reports a directory without policy files, ignoring other files', async () => {
    await write('README.md', '# hi');
    await write('.hidden.yaml', 'garbage: [');
    const { problems } = await loadPolicyDir(dir);
    expect(problems.map(formatProblem)).toEqual([`${dir}: no policy files (*.yaml, *.yml) found`]);
  });

  it('reads .yaml and .yml files in name order and skips other files, dot-files and sub-directories', async () => {
    await write('b.yml', policy('bravo', [['name: checkout\n    namespace', 'name: other\n    namespace']]));
    await write('a.YAML', policy('alpha'));
    await write('notes.txt', 'not yaml');
    await write('.a.yaml.swp', 'junk');
    await mkdir(join(dir, 'sub.yaml'));
    const { policies, problems } = await loadPolicyDir(dir);
    expect(problems).toEqual([]);
    expect(policies.map((p) => p.name)).toEqual(['alpha', 'bravo']);
  });

  it('follows the symlinks of a mounted ConfigMap without reading ..data twice', async () => {
    // kubelet mounts a ConfigMap as NAME -> ..data/NAME, ..data -> ..<timestamp>/
    await mkdir(join(dir, '..2026_11_01'));
    await writeFile(join(dir, '..2026_11_01', 'checkout.yaml'), BASE);
    await symlink('..2026_11_01', join(dir, '..data'));
    await symlink(join('..data', 'checkout.yaml'), join(dir, 'checkout.yaml'));
    const { policies, problems } = await loadPolicyDir(dir);
    expect(problems).toEqual([]);
    expect(policies.map((p) => p.file)).toEqual([join(dir, 'checkout.yaml')]);
  });

  it('collects every problem in every file and keeps the valid policies', async () => {
    await write('a.yaml', edit([['maxPercent: 100', 'maxPercent: 150']]));
    await write('b.yaml', policy('bravo', [['name: checkout\n    namespace', 'name: other\n    namespace']]));
    await write('c.yaml', '');
    const { policies, problems } = await loadPolicyDir(dir);
    expect(problems.map(formatProblem)).toEqual([
      `${join(dir, 'a.yaml')}:14:17: spec.bounds.maxPercent: must be <= 100 (got 150)`,
      `${join(dir, 'c.yaml')}:1:1: file is empty; expected one MirrorPolicy document`,
    ]);
    expect(policies.map((p) => p.name)).toEqual(['bravo']);
  });

  it('reports a duplicate name on the later file, naming the earlier one', async () => {
    await write('a.yaml', BASE);
    await write('b.yaml', edit([['name: checkout\n    namespace', 'name: other\n    namespace']]));
    const { policies, problems } = await loadPolicyDir(dir);
    expect(problems.map(formatProblem)).toEqual([
      `${join(dir, 'b.yaml')}:4:9: metadata.name: duplicate policy name "checkout"; also defined in ${join(dir, 'a.yaml')}:4:9`,
    ]);
    expect(policies.map((p) => p.file)).toEqual([join(dir, 'a.yaml')]);
  });

  const conflictRows = [
    { name: 'same VirtualService and host, no routes', second: [] as [string, string][], conflict: true },
    {
      name: 'one named route overlaps "every route"',
      second: [['namespace: shop\n', 'namespace: shop\n    route: primary\n']] as [string, string][],
      conflict: true,
    },
    {
      name: 'different VirtualService',
      second: [['name: checkout\n    namespace', 'name: other\n    namespace']] as [string, string][],
      conflict: false,
    },
    {
      name: 'different mirror host',
      second: [['host: checkout-shadow', 'host: checkout-canary']] as [string, string][],
      conflict: false,
    },
  ];
  it.each(conflictRows)('two policies on one mirror: $name', async ({ second, conflict }) => {
    await write('a.yaml', BASE);
    await write('b.yaml', policy('second', second));
    const { policies, problems } = await loadPolicyDir(dir);
    const want = conflict
      ? [
          `${join(dir, 'b.yaml')}:7:5: spec.virtualService: steers the same mirror as policy "checkout" in ${join(dir, 'a.yaml')}:4:9 (VirtualService shop/checkout, host checkout-shadow); routes and subsets must not overlap`,
        ]
      : [];
    expect(problems.map(formatProblem)).toEqual(want);
    expect(policies).toHaveLength(conflict ? 1 : 2);
  });

  it('refuses an oversized file without parsing it', async () => {
    await write('big.yaml', `${BASE}#${'x'.repeat(MAX_POLICY_BYTES)}\n`);
    const { problems } = await loadPolicyDir(dir);
    expect(problems.map(formatProblem)).toEqual([
      `${join(dir, 'big.yaml')}:1:1: file is too large (limit ${MAX_POLICY_BYTES} bytes)`,
    ]);
  });

  it('loadPolicyFile reads one file and reports a missing one', async () => {
    await write('a.yaml', BASE);
    const ok = await loadPolicyFile(join(dir, 'a.yaml'));
    expect(ok.problems).toEqual([]);
    expect(ok.policy?.name).toBe('checkout');
    expect((await loadPolicyFile(dir)).problems.map(formatProblem)).toEqual([`${dir}: not a regular file`]);
    const missing = await loadPolicyFile(join(dir, 'x.yaml'));
    expect(missing.policy).toBeUndefined();
    expect(missing.problems.map(formatProblem)).toEqual([
      `${join(dir, 'x.yaml')}: cannot read policy file: ENOENT`,
    ]);
  });

  it('loadPolicyDirOrThrow throws a PolicyError carrying the problems', async () => {
    await write('a.yaml', edit([['maxPercent: 100', 'maxPercent: 150']]));
    const err = await loadPolicyDirOrThrow(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyError);
    expect(err instanceof PolicyError ? err.problems.map((p) => p.path) : []).toEqual([
      'spec.bounds.maxPercent',
    ]);
    await write('a.yaml', BASE);
    expect((await loadPolicyDirOrThrow(dir)).map((p) => p.name)).toEqual(['checkout']);
  });
});
