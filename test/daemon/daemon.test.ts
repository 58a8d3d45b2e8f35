/**
 * The Daemon on the fake API server through the real client: ticks driven by hand on a pinned clock,
 * state kept between cycles, policies replaced, and what it logs.
 */
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SignalName } from '../../src/core/types.js';
import { createLogger } from '../../src/daemon/audit.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { KubernetesRouteStore } from '../../src/mesh/index.js';
import { formatProblem, parsePolicy } from '../../src/policy/index.js';
import type { MirrorPolicy } from '../../src/policy/types.js';
import type { SignalReading, SignalRequest, SignalSource } from '../../src/signals/index.js';
import { FakeApiServer, type JsonObject } from '../support/fake-apiserver.js';
import { MIRROR_SHAPE_ROUTES, virtualService } from '../support/kube-fixtures.js';

const T = Date.UTC(2026, 2, 1, 12, 0, 0);

function policy(name: string, vsName = name): MirrorPolicy {
  const yaml = `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: ${name}
spec:
  virtualService: {name: ${vsName}, namespace: shop, route: primary}
  target: {host: checkout-shadow, subset: shadow, workload: checkout-shadow}
  bounds: {minPercent: 1, maxPercent: 100}
  guardrails: {cpuUtilization: 0.8, errorRate: 0.02}
  interval: 30s
  window: 2m
`;
  const { policy: parsed, problems } = parsePolicy(yaml, `${name}.yaml`);
  if (parsed === undefined) throw new Error(problems.map(formatProblem).join('\n'));
  return parsed;
}

/** CPU at the given value, errors comfortably low. */
class CpuSignals implements SignalSource {
  readonly batches: string[][] = [];
  constructor(public cpu: number) {}
  async fetch(requests: readonly SignalRequest[], _at?: Date): Promise<Map<string, SignalReading>> {
    this.batches.push(requests.map((r) => r.key));
    const value = (v: number) => ({ kind: 'value' as const, value: v });
    const signals: Partial<Record<SignalName, ReturnType<typeof value>>> = {
      cpuUtilization: value(this.cpu),
      errorRate: value(0.001),
    };
    return new Map(requests.map((r) => [r.key, { signals, requestRate: value(30) }]));
  }
}

let server: FakeApiServer;
let routes: KubernetesRouteStore;
let lines: Record<string, unknown>[];
let clock: number;

beforeEach(async () => {
  server = await FakeApiServer.start();
  routes = new KubernetesRouteStore(server.kubeConfig(), { requestTimeoutMs: 5000 });
  lines = [];
  clock = T;
  for (const name of ['checkout', 'search']) {
    server.setVirtualService(virtualService({ name, http: [MIRROR_SHAPE_ROUTES.mirrorPercentage] }));
  }
});

afterEach(async () => {
  await server.close();
});

function daemon(policies: MirrorPolicy[], signals: SignalSource, dryRun = false): Daemon {
  const destination = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      for (const l of String(chunk).split('\n')) if (l.trim() !== '') lines.push(JSON.parse(l));
      done();
    },
  });
  return new Daemon(
    policies,
    { signals, routes, now: () => clock, logger: createLogger({ level: 'debug', destination }) },
    { dryRun },
  );
}

function percentOf(name: string): unknown {
  const obj = server.getVirtualService('shop', name);
  const route = (obj?.spec as { http?: JsonObject[] } | undefined)?.http?.[0];
  return (route?.mirrorPercentage as JsonObject | undefined)?.value;
}

describe('Daemon', () => {
  it('evaluates due policies as one batch per tick and keeps their state between cycles', async () => {
    const signals = new CpuSignals(0.2);
    const d = daemon([policy('checkout'), policy('search')], signals);

    await d.tick();
    expect(signals.batches).toEqual([['checkout', 'search']]);
    expect(server.countRequests({ verb: 'list', resource: 'virtualservices' })).toBe(1);
    const first = percentOf('checkout');
    expect(first).toBeGreaterThan(37.5);
    expect(d.states.get('checkout')?.percent).toBe(first);

    // Before the next 30 s boundary nothing is due: no queries, no requests.
    server.clearRequests();
    clock = T + 29_999;
    await d.tick();
    expect(signals.batches).toHaveLength(1);
    expect(server.requests).toHaveLength(0);

    // At the boundary the in-memory state (a raise just made) holds the next raise back until it shows.
    clock = T + 30_000;
    await d.tick();
    expect(signals.batches).toHaveLength(2);
    expect(percentOf('checkout')).toBe(first);
    expect(d.states.get('checkout')?.at).toBe(T + 30_000);
    await d.stop();
  });

  it('logs each cycle with its counts, a warning per broken policy and an audit line per write', async () => {
    const d = daemon([policy('checkout'), policy('ghost')], new CpuSignals(1.2));
    const outcomes = await d.runBatch();

    expect(outcomes.map((o) => [o.policy, o.write])).toEqual([
      ['checkout', 'written'],
      ['ghost', 'none'],
    ]);
    expect(lines.filter((l) => l.audit === true).map((l) => l.policy)).toEqual(['checkout']);
    expect(lines.find((l) => l.level === 'warn' && l.policy === 'ghost')).toMatchObject({
      error: 'VirtualService shop/ghost not found',
    });
    expect(lines.find((l) => l.msg === 'cycle complete')).toMatchObject({
      level: 'info',
      policies: 2,
      written: 1,
      errors: 1,
      dryRun: false,
    });
  });

  it('dry run logs every proposal at info and writes nothing', async () => {
    const d = daemon([policy('checkout')], new CpuSignals(0.2), true);
    const [o] = await d.runBatch();

    expect(o?.write).toBe('recorded');
    expect(server.countRequests({ verb: 'patch' })).toBe(0);
    expect(lines.find((l) => l.dryRun === true && l.policy === 'checkout')).toMatchObject({
      level: 'info',
      currentPercent: 37.5,
      proposedPercent: o?.proposedPercent,
      action: 'increase',
    });
  });

  it('never rejects: a cycle that throws is logged and the next one runs', async () => {
    let broken = true;
    const fine = new CpuSignals(0.72);
    // A source that breaks its contract by throwing synchronously, outside runCycle's per-policy handling.
    const signals: SignalSource = {
      fetch: (requests, at) => {
        if (broken) throw new Error('source bug');
        return fine.fetch(requests, at);
      },
    };
    const d = daemon([policy('checkout')], signals);
    await expect(d.runBatch()).resolves.toEqual([]);
    expect(lines.find((l) => l.msg === 'cycle failed')).toMatchObject({ level: 'error' });
    broken = false;
    const [o] = await d.runBatch();
    expect(o).toMatchObject({ policy: 'checkout', action: 'hold' });
  });

  it('setPolicies drops the state of removed policies and schedules added ones at once', async () => {
    const signals = new CpuSignals(0.72);
    const d = daemon([policy('checkout'), policy('search')], signals);
    await d.tick();
    expect([...d.states.keys()].sort()).toEqual(['checkout', 'search']);

    d.setPolicies([policy('search'), policy('other', 'checkout')]);
    expect([...d.states.keys()]).toEqual(['search']);
    clock = T + 1000;
    await d.tick();
    expect(signals.batches.at(-1)).toEqual(['other']);
    await d.stop();
  });
});
