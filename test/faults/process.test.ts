/**
 * Process faults: the daemon (`mirror-autoscaler run`, from the sources through tsx) as child processes,
 * against a real Prometheus and the fake API server. SIGTERM during a write is covered by
 * test/e2e/daemon.test.ts ("on SIGTERM during a write, ..."); here: a crash (SIGKILL) and restart, and a
 * leader killed under load with two replicas.
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeApiServer, type JsonObject, VIRTUAL_SERVICES } from '../support/fake-apiserver.js';
import { startPrometheus, type TestPrometheus } from '../support/prometheus.js';
import { pause, waitFor } from '../support/wait.js';
import { annotationsOf, labelsOf, mirroredVs, percentOf } from './harness.js';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'src', 'cli', 'main.ts');
const STATE = 'state.mirror-autoscaler.io/';

type LogLine = Record<string, unknown>;

/** A `run` child process and its JSON log lines. */
class Daemon {
  readonly logs: LogLine[] = [];
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | undefined;
  readonly exited: Promise<NonNullable<Daemon['exit']>>;
  private partial = '';

  constructor(
    readonly name: string,
    readonly child: ChildProcessByStdio<null, Readable, Readable>,
  ) {
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (this.partial + chunk.toString()).split('\n');
      this.partial = lines.pop() ?? '';
      for (const l of lines) if (l.trim() !== '') this.logs.push(JSON.parse(l) as LogLine);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exit = { code, signal, at: Date.now() };
        resolve(this.exit);
      }),
    );
  }

  describe(): string {
    const tail = this.logs.slice(-15).map((l) => JSON.stringify(l).slice(0, 300));
    return `--- ${this.name}:\n${tail.join('\n')}\n--- stderr:\n${this.stderr}`;
  }

  kill(): void {
    if (this.exit === undefined && this.child.pid !== undefined) process.kill(this.child.pid, 'SIGKILL');
  }
}

const started: Daemon[] = [];

let prom: TestPrometheus;
let api: FakeApiServer;
let tmp: string;

function start(
  name: string,
  dir: string,
  kubeconfig: string,
  args: readonly string[],
  env: Record<string, string> = {},
): Daemon {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      CLI,
      'run',
      '--policies',
      dir,
      '--kubeconfig',
      kubeconfig,
      '--prometheus-url',
      prom.url,
      '--metrics-address',
      '127.0.0.1',
      '--metrics-port',
      '0',
      '--log-level',
      'debug',
      ...args,
    ],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: tmp, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const d = new Daemon(name, child);
  started.push(d);
  return d;
}

function policyYaml(name: string, namespace: string, max: number): string {
  return `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: ${name}
spec:
  virtualService: { name: ${name}, namespace: ${namespace}, route: primary }
  target: { host: checkout-shadow, workload: checkout-shadow, namespace: shop }
  bounds: { minPercent: 1, maxPercent: ${max} }
  guardrails: { cpuUtilization: 0.8, errorRate: 0.05, latencyP99Ms: 500 }
  interval: 1s
  window: 2m
`;
}

async function policyDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmp, 'policies-'));
  for (const [k, v] of Object.entries(files)) await writeFile(join(dir, k), v);
  return dir;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'process-faults-'));
  [prom, api] = await Promise.all([
    // A healthy shadow: 20 req/s, 20 % CPU, no 5xx: room to raise.
    startPrometheus([
      {
        namespace: 'shop',
        workload: 'checkout-shadow',
        requestsPerSecond: 20,
        cpuCores: 0.2,
        cpuRequestCores: 1,
      },
    ]),
    FakeApiServer.start(),
  ]);
}, 60_000);

afterAll(async () => {
  // Every process this file started is ended by its PID.
  for (const d of started) {
    d.kill();
    await d.exited;
  }
  await prom?.stop();
  await api?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('process faults', () => {
  it('crash and restart: state comes back from the annotation, and the percentage does not oscillate', async () => {
    const ns = 'proc-restart';
    api.setVirtualService(mirroredVs(ns, 'checkout', 10));
    const dir = await policyDir({ 'checkout.yaml': policyYaml('checkout', ns, 100) });
    const kubeconfig = await api.writeKubeconfig();
    // Every percentage the VirtualService takes, in order, sampled as the API server applies each write.
    const sequence: number[] = [10];
    api.beforeRequest(
      (i) => i.verb === 'patch' && i.namespace === ns,
      () =>
        void setImmediate(() => {
          const p = percentOf(api.getVirtualService(ns, 'checkout'));
          if (p !== undefined && p !== sequence.at(-1)) sequence.push(p);
        }),
      Number.POSITIVE_INFINITY,
    );
    const first = start('first', dir, kubeconfig, ['--no-leader-elect']);
    const raised = await waitFor(
      'the first raise',
      () => first.logs.find((l) => l.audit === true && l.policy === 'checkout'),
      30_000,
      () => first.describe(),
    );
    expect(raised).toMatchObject({ from: 10, action: 'increase' });
    const cyclesOf = (d: Daemon) => d.logs.filter((l) => l.msg === 'cycle complete').length;
    const at = cyclesOf(first);
    await waitFor(
      '2 more cycles',
      () => cyclesOf(first) >= at + 2,
      10_000,
      () => first.describe(),
    );
    const before = api.getVirtualService(ns, 'checkout');
    const stateBefore = annotationsOf(before)[`${STATE}checkout`];
    expect(stateBefore).toBeDefined();

    first.kill();
    expect((await first.exited).signal).toBe('SIGKILL');
    const patchesBefore = api.countRequests({ verb: 'patch', namespace: ns });

    const second = start('second', dir, kubeconfig, ['--no-leader-elect']);
    await waitFor(
      '3 cycles after the restart',
      () => cyclesOf(second) >= 3,
      30_000,
      () => second.describe(),
    );
    // Read back from the annotation, the state says the last raise is not yet visible in the rate window:
    // the restarted daemon holds instead of raising again at once as a fresh start (the first one) did.
    const decisions = second.logs.filter((l) => l.policy === 'checkout' && typeof l.reason === 'string');
    expect(decisions.length).toBeGreaterThanOrEqual(3);
    expect(
      decisions.every((l) => l.action === 'hold'),
      second.describe(),
    ).toBe(true);
    expect(decisions.map((l) => l.reason)).toContain('Settling');
    expect(api.countRequests({ verb: 'patch', namespace: ns })).toBe(patchesBefore);
    expect(api.getVirtualService(ns, 'checkout')).toEqual(before);
    // Monotone across the restart: up, never back down.
    expect(sequence.length).toBeGreaterThanOrEqual(2);
    expect([...sequence].sort((a, b) => a - b)).toEqual(sequence);
    second.kill();
    await second.exited;
  }, 60_000);

  it('two replicas under load, leader killed: one writer at any time, no lost or double write, every concurrent edit kept', async () => {
    const ns = 'proc-lease';
    const names = Array.from({ length: 24 }, (_, i) => `svc-${String(i).padStart(2, '0')}`);
    for (const n of names) api.setVirtualService(mirroredVs(ns, n, 90));
    const dir = await policyDir(Object.fromEntries(names.map((n) => [`${n}.yaml`, policyYaml(n, ns, 50)])));
    api.addToken('token-a', 'replica-a');
    api.addToken('token-b', 'replica-b');
    const kubeconfigs = await Promise.all(
      ['token-a', 'token-b'].map(async (token) => {
        const file = join(tmp, `kubeconfig-${token}`);
        await writeFile(file, api.kubeconfigYaml({ token }), { mode: 0o600 });
        return file;
      }),
    );
    // Every PATCH to these VirtualServices: who sent it, which resourceVersion it tested, how it ended.
    const patches: { t: number; user: string | undefined; name: string | undefined; rv: unknown }[] = [];
    api.beforeRequest(
      (i) => i.verb === 'patch' && i.namespace === ns,
      (info, server) => {
        const ops = JSON.parse(info.body) as { op: string; path: string; value?: unknown }[];
        patches.push({
          t: Date.now(),
          user: server.requests.at(-1)?.user,
          name: info.name,
          rv: ops[0]?.value,
        });
      },
      Number.POSITIVE_INFINITY,
    );
    // Load: every 150 ms, put a VirtualService back above its bound and add a label, as a person would.
    let edits = 0;
    const editor = setInterval(() => {
      const n = names[edits % names.length] as string;
      edits++;
      const label = `edit-${edits}`;
      api.mutateObject(VIRTUAL_SERVICES, ns, n, (o) => {
        const m = o.metadata as JsonObject;
        m.labels = { ...(m.labels as Record<string, string> | undefined), [label]: 'kept' };
        const route = (o.spec as { http: JsonObject[] }).http[0];
        if (route !== undefined) route.mirrorPercentage = { value: 90 };
      });
    }, 150);
    const timing = [
      '--lease-name',
      'proc-lease',
      '--lease-namespace',
      'mirror-autoscaler',
      '--lease-duration',
      '3s',
      '--renew-deadline',
      '2s',
      '--retry-period',
      '500ms',
    ];
    const replicas = (['a', 'b'] as const).map((r, i) =>
      start(`replica-${r}`, dir, kubeconfigs[i] ?? '', timing, { POD_NAME: `replica-${r}` }),
    );
    const describeAll = () => replicas.map((r) => r.describe()).join('\n');
    try {
      await waitFor(
        'every VirtualService written once',
        () => names.every((n) => patches.some((p) => p.name === n)),
        30_000,
        describeAll,
      );
      const holder = (
        api.getObject('leases.coordination.k8s.io', 'mirror-autoscaler', 'proc-lease')?.spec as {
          holderIdentity?: string;
        }
      )?.holderIdentity;
      const leader = replicas.find((r) => r.name === holder);
      const follower = replicas.find((r) => r.name !== holder);
      if (leader === undefined || follower === undefined)
        throw new Error(`no replica holds the lease (${holder})`);
      await pause(1000);
      leader.kill();
      const death = await leader.exited;
      await waitFor(
        'the follower to write',
        () => patches.some((p) => p.user === follower.name && p.t > death.at),
        15_000,
        describeAll,
      );
      const taken = patches.length;
      await waitFor('a few more writes', () => patches.length >= taken + 10, 10_000, describeAll);
      clearInterval(editor);
      // Settle: every VirtualService back at its bound once the edits stop.
      await waitFor(
        'every VirtualService at 50',
        () => names.every((n) => percentOf(api.getVirtualService(ns, n)) === 50),
        10_000,
        describeAll,
      );

      // One writer at any time: the old leader's PATCHes, then only the new one's, never interleaved.
      const users = patches.map((p) => p.user);
      const switchAt = users.indexOf(follower.name);
      expect(users.slice(0, switchAt).every((u) => u === holder)).toBe(true);
      expect(users.slice(switchAt).every((u) => u === follower.name)).toBe(true);
      expect(patches.filter((p) => p.user === holder).every((p) => p.t <= death.at)).toBe(true);
      // No double write: each resourceVersion of each VirtualService was written from once at most.
      const bases = patches.map((p) => `${p.name}@${String(p.rv)}`);
      expect(new Set(bases).size).toBe(bases.length);
      // No lost edit: every label the test added is still there.
      const labels = new Set(names.flatMap((n) => Object.keys(labelsOf(api.getVirtualService(ns, n)))));
      for (let e = 1; e <= edits; e++) expect(labels.has(`edit-${e}`), `edit-${e}`).toBe(true);
    } finally {
      clearInterval(editor);
      for (const r of replicas) r.kill();
      await Promise.all(replicas.map((r) => r.exited));
    }
  }, 80_000);
});
