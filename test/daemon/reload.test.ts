import { mkdtemp, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PolicyReloader } from '../../src/daemon/reload.js';
import { loadPolicyDir } from '../../src/policy/load.js';
import { ConfigMapMount } from '../support/configmap-mount.js';

function policy(name: string, maxPercent: number): string {
  return `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: ${name}
spec:
  virtualService: { name: ${name}, namespace: shop }
  target: { host: ${name}-shadow, workload: ${name}-shadow }
  bounds: { minPercent: 0, maxPercent: ${maxPercent} }
  guardrails: { errorRate: 0.01 }
`;
}

describe('PolicyReloader', () => {
  let dir: string;
  let mount: ConfigMapMount;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mirror-autoscaler-reload-'));
    mount = new ConfigMapMount(dir);
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function start(files: Record<string, string>): Promise<PolicyReloader> {
    await mount.publish(files);
    const { policies, problems } = await loadPolicyDir(dir);
    expect(problems).toEqual([]);
    const r = new PolicyReloader(dir, policies);
    await r.prime();
    return r;
  }

  it('reports nothing when nothing changed', async () => {
    const r = await start({ 'a.yaml': policy('a', 10) });
    expect(await r.check()).toEqual({ kind: 'unchanged' });
  });

  it('applies a valid change published through a symlink swap', async () => {
    const r = await start({ 'a.yaml': policy('a', 10), 'b.yaml': policy('b', 20) });
    await mount.publish({ 'a.yaml': policy('a', 30), 'b.yaml': policy('b', 20) });
    const res = await r.check();
    expect(res).toMatchObject({ kind: 'reloaded', added: [], removed: [], changed: ['a'] });
    expect(r.policies.find((p) => p.name === 'a')?.bounds.maxPercent).toBe(30);
  });

  it('keeps the last good policies when the change is invalid, and reports the problem', async () => {
    const r = await start({ 'a.yaml': policy('a', 10) });
    await mount.publish({ 'a.yaml': policy('a', 150) });
    const res = await r.check();
    expect(res.kind).toBe('rejected');
    if (res.kind === 'rejected') {
      expect(res.problems.map((p) => p.message)).toEqual(['must be <= 100 (got 150)']);
    }
    expect(r.policies.map((p) => p.bounds.maxPercent)).toEqual([10]);
    // The same broken content is reported once, not at every check.
    expect(await r.check()).toEqual({ kind: 'unchanged' });
    await mount.publish({ 'a.yaml': policy('a', 40) });
    expect(await r.check()).toMatchObject({ kind: 'reloaded', changed: ['a'] });
  });

  it('applies valid files and keeps the last good version of an invalid one', async () => {
    const r = await start({ 'a.yaml': policy('a', 10), 'b.yaml': policy('b', 20) });
    await mount.publish({ 'a.yaml': policy('a', 150), 'b.yaml': policy('b', 25) });
    const res = await r.check();
    expect(res).toMatchObject({ kind: 'reloaded', changed: ['b'], added: [], removed: [] });
    if (res.kind === 'reloaded') expect(res.problems.map((p) => p.path)).toEqual(['spec.bounds.maxPercent']);
    expect(r.policies.map((p) => [p.name, p.bounds.maxPercent])).toEqual([
      ['a', 10],
      ['b', 25],
    ]);
  });

  it('waits out a removed key whose link outlives the ..data swap, without reporting an error', async () => {
    const r = await start({ 'a.yaml': policy('a', 10), 'b.yaml': policy('b', 20) });
    // The kubelet's order: publish the new data first, delete the removed key's link afterwards.
    await mount.publish({ 'a.yaml': policy('a', 10) });
    expect(await r.check()).toEqual({ kind: 'unchanged' });
    await unlink(join(dir, 'b.yaml'));
    expect(await r.check()).toMatchObject({ kind: 'reloaded', removed: ['b'] });
  });

  it('stops managing a removed policy and picks up an added one', async () => {
    const files = { 'a.yaml': policy('a', 10), 'b.yaml': policy('b', 20) };
    const r = await start(files);
    await mount.remove('b.yaml', files);
    expect(await r.check()).toMatchObject({ kind: 'reloaded', removed: ['b'], added: [] });
    await mount.publish({ 'a.yaml': policy('a', 10), 'c.yaml': policy('c', 5) });
    expect(await r.check()).toMatchObject({ kind: 'reloaded', added: ['c'], removed: [] });
    expect(r.policies.map((p) => p.name).sort()).toEqual(['a', 'c']);
  });
});
