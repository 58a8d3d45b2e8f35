/**
 * DaemonMetrics: cycles of plain PolicyOutcome objects in, the registry's exposition text out, parsed here
 * and checked with promtool, so the assertions are about what Prometheus would scrape.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import type { PolicyOutcome } from '../../src/daemon/cycle.js';
import { DaemonMetrics, METRIC_PREFIX, type WriteResult, writeResult } from '../../src/daemon/metrics.js';
import { ConflictError, ForbiddenError, TransportError } from '../../src/mesh/errors.js';

// ------------------------------------------------------------------------------ exposition format parser

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Parses the Prometheus text exposition format (sample lines only; comments are checked by promtool). */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/.exec(line);
    if (m === null) throw new Error(`unparsable exposition line: ${JSON.stringify(line)}`);
    const [, name = '', labelText = '', valueText = ''] = m;
    const labels: Record<string, string> = {};
    const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g;
    let consumed = 0;
    for (let lm = labelRe.exec(labelText); lm !== null; lm = labelRe.exec(labelText)) {
      const [whole, key = '', raw = ''] = lm;
      labels[key] = raw.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
      consumed += whole.length;
    }
    if (consumed !== labelText.length) throw new Error(`unparsable labels: ${JSON.stringify(labelText)}`);
    const value =
      valueText === '+Inf' ? Infinity : valueText === '-Inf' ? -Infinity : Number.parseFloat(valueText);
    samples.push({ name, labels, value });
  }
  return samples;
}

async function scrape(metrics: DaemonMetrics): Promise<Sample[]> {
  return parseExposition(await metrics.expose());
}

/** The samples of one metric (full name), as `labels -> value` rows sorted for stable comparison. */
function series(samples: readonly Sample[], name: string): [Record<string, string>, number][] {
  return samples
    .filter((s) => s.name === name)
    .map((s): [Record<string, string>, number] => [{ ...s.labels }, s.value])
    .sort((a, b) => JSON.stringify(a[0]).localeCompare(JSON.stringify(b[0])));
}

function value(
  samples: readonly Sample[],
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  const want = JSON.stringify(Object.entries(labels).sort());
  return samples.find((s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === want)
    ?.value;
}

const P = METRIC_PREFIX;

// ------------------------------------------------------------------------------------------- outcomes

/** An outcome of a policy watching cpu and error rate that raised 10 -> 15 and wrote it. */
function outcome(over: Partial<PolicyOutcome> = {}): PolicyOutcome {
  return {
    policy: 'checkout',
    routeKind: 'VirtualService',
    routeId: 'shop/checkout',
    routes: ['primary'],
    currentPercent: 10,
    proposedPercent: 15,
    action: 'increase',
    reason: 'Headroom',
    message: 'every guardrail has headroom',
    signals: { cpuUtilization: 0.42, errorRate: 0.001, latencyP99Ms: null },
    absent: {},
    guardrails: { cpuUtilization: 0.8, errorRate: 0.02 },
    scrapeInterval: { seconds: 15, source: 'learned' },
    productionRps: 250,
    mode: 'FeedForward',
    write: 'written',
    ...over,
  };
}

const T = Date.UTC(2026, 2, 1, 12, 0, 0);
const CONFLICT =
  'writing shop/checkout failed: patch virtualservices.networking.istio.io shop/checkout: conflict: the object changed since it was read (HTTP 409 Conflict: Operation cannot be fulfilled)';

describe('recordCycle', () => {
  it('exports percentages, signals, guardrails, decisions, writes, duration and completion time', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.recordCycle([outcome()], 0.37, T);
    const s = await scrape(metrics);
    expect(series(s, `${P}mirror_percent`)).toEqual([
      [{ policy: 'checkout', route_kind: 'VirtualService', route: 'shop/checkout' }, 10],
    ]);
    expect(series(s, `${P}proposed_percent`)).toEqual([
      [{ policy: 'checkout', route_kind: 'VirtualService', route: 'shop/checkout' }, 15],
    ]);
    expect(series(s, `${P}signal_value`)).toEqual([
      [{ policy: 'checkout', signal: 'cpuUtilization' }, 0.42],
      [{ policy: 'checkout', signal: 'errorRate' }, 0.001],
    ]);
    expect(series(s, `${P}guardrail_limit`)).toEqual([
      [{ policy: 'checkout', signal: 'cpuUtilization' }, 0.8],
      [{ policy: 'checkout', signal: 'errorRate' }, 0.02],
    ]);
    expect(series(s, `${P}decisions_total`)).toEqual([
      [{ policy: 'checkout', action: 'increase', reason: 'Headroom' }, 1],
    ]);
    expect(series(s, `${P}writes_total`)).toEqual([[{ policy: 'checkout', result: 'ok' }, 1]]);
    expect(value(s, `${P}cycle_duration_seconds_count`)).toBe(1);
    expect(value(s, `${P}cycle_duration_seconds_sum`)).toBeCloseTo(0.37);
    expect(value(s, `${P}cycle_duration_seconds_bucket`, { le: '0.25' })).toBe(0);
    expect(value(s, `${P}cycle_duration_seconds_bucket`, { le: '0.5' })).toBe(1);
    expect(value(s, `${P}last_cycle_timestamp_seconds`)).toBe(T / 1000);
  });

  it('accumulates counters across cycles and keeps the latest gauge values', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.recordCycle([outcome()], 0.1, T);
    metrics.recordCycle(
      [
        outcome({
          currentPercent: 15,
          proposedPercent: 15,
          action: 'hold',
          reason: 'WithinTolerance',
          write: 'none',
        }),
      ],
      0.2,
      T + 30_000,
    );
    metrics.recordCycle([outcome({ currentPercent: 15, proposedPercent: 22.5 })], 0.3, T + 60_000);
    const s = await scrape(metrics);
    expect(
      value(s, `${P}mirror_percent`, {
        policy: 'checkout',
        route_kind: 'VirtualService',
        route: 'shop/checkout',
      }),
    ).toBe(15);
    expect(
      value(s, `${P}proposed_percent`, {
        policy: 'checkout',
        route_kind: 'VirtualService',
        route: 'shop/checkout',
      }),
    ).toBe(22.5);
    expect(series(s, `${P}decisions_total`)).toEqual([
      [{ policy: 'checkout', action: 'hold', reason: 'WithinTolerance' }, 1],
      [{ policy: 'checkout', action: 'increase', reason: 'Headroom' }, 2],
    ]);
    // The hold wrote nothing and is not a write result.
    expect(series(s, `${P}writes_total`)).toEqual([[{ policy: 'checkout', result: 'ok' }, 2]]);
    expect(value(s, `${P}cycle_duration_seconds_count`)).toBe(3);
    expect(value(s, `${P}last_cycle_timestamp_seconds`)).toBe((T + 60_000) / 1000);
  });

  it('removes the series of a signal that became absent and brings it back when it returns', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.recordCycle([outcome()], 0.1, T);
    metrics.recordCycle(
      [
        outcome({
          signals: { cpuUtilization: null, errorRate: 0.003, latencyP99Ms: null },
          absent: { cpuUtilization: 'Stale' },
          action: 'hold',
          reason: 'NoData',
          write: 'none',
        }),
      ],
      0.1,
      T + 30_000,
    );
    let s = await scrape(metrics);
    expect(series(s, `${P}signal_value`)).toEqual([[{ policy: 'checkout', signal: 'errorRate' }, 0.003]]);
    // The guardrail itself is still configured.
    expect(value(s, `${P}guardrail_limit`, { policy: 'checkout', signal: 'cpuUtilization' })).toBe(0.8);
    metrics.recordCycle(
      [outcome({ signals: { cpuUtilization: 0.5, errorRate: 0.003, latencyP99Ms: null } })],
      0.1,
      T,
    );
    s = await scrape(metrics);
    expect(value(s, `${P}signal_value`, { policy: 'checkout', signal: 'cpuUtilization' })).toBe(0.5);
  });

  it('removes the guardrail series of a signal the policy no longer watches', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.recordCycle([outcome()], 0.1, T);
    metrics.recordCycle(
      [
        outcome({
          guardrails: { latencyP99Ms: 400 },
          signals: { cpuUtilization: null, errorRate: null, latencyP99Ms: 180 },
        }),
      ],
      0.1,
      T,
    );
    const s = await scrape(metrics);
    expect(series(s, `${P}guardrail_limit`)).toEqual([[{ policy: 'checkout', signal: 'latencyP99Ms' }, 400]]);
    expect(series(s, `${P}signal_value`)).toEqual([[{ policy: 'checkout', signal: 'latencyP99Ms' }, 180]]);
  });

  it('removes percentages it cannot know and the series of a VirtualService the policy left', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.recordCycle([outcome()], 0.1, T);
    metrics.recordCycle([outcome({ routeId: 'shop/checkout-v2' })], 0.1, T);
    let s = await scrape(metrics);
    expect(series(s, `${P}mirror_percent`)).toEqual([
      [{ policy: 'checkout', route_kind: 'VirtualService', route: 'shop/checkout-v2' }, 10],
    ]);
    const missing = 'VirtualService shop/checkout-v2 not found';
    metrics.recordCycle(
      [
        outcome({
          routeKind: 'VirtualService',
          routeId: 'shop/checkout-v2',
          currentPercent: null,
          proposedPercent: null,
          action: null,
          reason: null,
          write: 'none',
          message: missing,
          error: missing,
        }),
      ],
      0.1,
      T,
    );
    s = await scrape(metrics);
    expect(series(s, `${P}mirror_percent`)).toEqual([]);
    expect(series(s, `${P}proposed_percent`)).toEqual([]);
    // No decision was made: decisions_total is untouched, the refusal is counted.
    expect(series(s, `${P}decisions_total`)).toEqual([
      [{ policy: 'checkout', action: 'increase', reason: 'Headroom' }, 2],
    ]);
    expect(value(s, `${P}writes_total`, { policy: 'checkout', result: 'refused' })).toBe(1);
  });
});

describe('scrape interval and production rate', () => {
  it('exports the scrape interval with its source and the production rate per policy', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.recordCycle([outcome()], 0.1, T);
    const s = await scrape(metrics);
    expect(series(s, `${P}scrape_interval_seconds`)).toEqual([
      [{ policy: 'checkout', source: 'learned' }, 15],
    ]);
    expect(series(s, `${P}production_rps`)).toEqual([[{ policy: 'checkout' }, 250]]);
  });

  it('keeps one scrape-interval series per policy when the source changes, and drops an unknown production rate', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.recordCycle([outcome()], 0.1, T);
    metrics.recordCycle(
      [
        outcome({
          scrapeInterval: { seconds: 30, source: 'policy' },
          productionRps: null,
          mode: 'FeedbackOnly',
        }),
      ],
      0.1,
      T + 30_000,
    );
    const s = await scrape(metrics);
    expect(series(s, `${P}scrape_interval_seconds`)).toEqual([
      [{ policy: 'checkout', source: 'policy' }, 30],
    ]);
    expect(series(s, `${P}production_rps`)).toEqual([]);
  });
});

describe('writes_total results', () => {
  const rows: { name: string; over: Partial<PolicyOutcome>; want: WriteResult | undefined }[] = [
    { name: 'written', over: {}, want: 'ok' },
    { name: 'gave up after conflicts', over: { write: 'failed', error: CONFLICT }, want: 'conflict' },
    {
      name: 'API error on the write',
      over: {
        write: 'failed',
        error:
          'writing shop/checkout failed: patch virtualservices.networking.istio.io shop/checkout: request failed (HTTP 500 InternalError)',
      },
      want: 'error',
    },
    {
      name: 're-read after a conflict failed',
      over: {
        write: 'failed',
        error:
          're-reading shop/checkout after a conflict failed: get virtualservices.networking.istio.io shop/checkout: no response from the API server: ECONNREFUSED',
      },
      want: 'error',
    },
    {
      name: 'paused',
      over: {
        action: 'hold',
        reason: 'Paused',
        proposedPercent: 10,
        write: 'none',
        message: 'automation paused',
      },
      want: 'refused',
    },
    {
      name: 'no mirror to the target',
      over: {
        action: null,
        reason: null,
        write: 'none',
        error:
          'VirtualService shop/checkout: no http route mirrors to host "checkout-shadow" subset "shadow" (no mirrors)',
      },
      want: 'refused',
    },
    {
      name: 'VirtualService missing',
      over: { action: null, reason: null, write: 'none', error: 'VirtualService shop/checkout not found' },
      want: 'refused',
    },
    {
      name: 'listing failed',
      over: {
        action: null,
        reason: null,
        write: 'none',
        error:
          'listing VirtualServices failed: list virtualservices.networking.istio.io in namespace shop: forbidden',
      },
      want: 'refused',
    },
    {
      name: 'hold',
      over: { action: 'hold', reason: 'Cooldown', proposedPercent: 10, write: 'none' },
      want: undefined,
    },
    { name: 'dry run', over: { write: 'recorded' }, want: undefined },
  ];

  it.each(rows)('$name', async ({ over, want }) => {
    const o = outcome(over);
    expect(writeResult(o)).toBe(want);
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.recordCycle([o], 0.1, T);
    const s = await scrape(metrics);
    expect(series(s, `${P}writes_total`)).toEqual(
      want === undefined ? [] : [[{ policy: 'checkout', result: want }, 1]],
    );
  });
});

describe('forgetPolicy and retainPolicies', () => {
  async function twoPolicies(): Promise<DaemonMetrics> {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.recordCycle(
      [
        outcome(),
        outcome({ write: 'failed', error: CONFLICT }),
        outcome({
          policy: 'cart',
          routeKind: 'VirtualService',
          routeId: 'shop/cart',
          action: 'decrease',
          reason: 'GuardrailBreached',
          currentPercent: 40,
          proposedPercent: 20,
        }),
      ],
      0.1,
      T,
    );
    return metrics;
  }

  const perPolicy = [
    'mirror_percent',
    'proposed_percent',
    'signal_value',
    'guardrail_limit',
    'decisions_total',
    'writes_total',
    'scrape_interval_seconds',
    'production_rps',
  ].map((n) => `${P}${n}`);

  function policiesIn(samples: readonly Sample[]): string[] {
    return [
      ...new Set(samples.filter((s) => perPolicy.includes(s.name)).map((s) => s.labels.policy ?? '')),
    ].sort();
  }

  it('removes every series of the forgotten policy and none of the others', async () => {
    const metrics = await twoPolicies();
    const before = await scrape(metrics);
    expect(policiesIn(before)).toEqual(['cart', 'checkout']);
    const cartBefore = before.filter((s) => s.labels.policy === 'cart');
    metrics.forgetPolicy('checkout');
    const after = await scrape(metrics);
    expect(policiesIn(after)).toEqual(['cart']);
    expect(after.filter((s) => s.labels.policy === 'cart')).toEqual(cartBefore);
    // Forgetting twice, or an unknown policy, is harmless.
    metrics.forgetPolicy('checkout');
    metrics.forgetPolicy('nope');
    expect(policiesIn(await scrape(metrics))).toEqual(['cart']);
  });

  it('counts from zero again when a forgotten policy comes back', async () => {
    const metrics = await twoPolicies();
    metrics.forgetPolicy('checkout');
    metrics.recordCycle([outcome()], 0.1, T);
    const s = await scrape(metrics);
    expect(series(s, `${P}writes_total`).filter(([l]) => l.policy === 'checkout')).toEqual([
      [{ policy: 'checkout', result: 'ok' }, 1],
    ]);
  });

  it('retainPolicies forgets every policy not in the new set', async () => {
    const metrics = await twoPolicies();
    metrics.retainPolicies(['cart', 'unknown-yet']);
    expect(policiesIn(await scrape(metrics))).toEqual(['cart']);
    metrics.retainPolicies([]);
    expect(policiesIn(await scrape(metrics))).toEqual([]);
  });
});

describe('process-level metrics', () => {
  it('counts Prometheus queries by kind and result, starting every combination at zero', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    expect(series(await scrape(metrics), `${P}prometheus_queries_total`).map(([, v]) => v)).toEqual([
      0, 0, 0, 0,
    ]);
    metrics.onQuery({ kind: 'batch', query: 'up', durationMs: 3, ok: true });
    metrics.onQuery({ kind: 'batch', query: 'up', durationMs: 3, ok: true });
    metrics.onQuery({
      kind: 'override',
      query: 'x',
      durationMs: 9,
      ok: false,
      detail: 'HTTP 400: parse error',
    });
    expect(series(await scrape(metrics), `${P}prometheus_queries_total`)).toEqual([
      [{ kind: 'batch', result: 'error' }, 0],
      [{ kind: 'batch', result: 'ok' }, 2],
      [{ kind: 'override', result: 'error' }, 1],
      [{ kind: 'override', result: 'ok' }, 0],
    ]);
  });

  it('counts Kubernetes errors by verb and code, bounding both label sets', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    const ctx = { resource: 'virtualservices.networking.istio.io', namespace: 'shop', name: 'checkout' };
    metrics.recordKubernetesError('patch', 409);
    metrics.recordKubernetesError('patch', 409);
    metrics.recordKubernetesError('escalate', 403);
    metrics.recordKubernetesError('list', undefined);
    metrics.recordKubernetesError('get', 42);
    metrics.recordKubernetesFailure(new ConflictError({ ...ctx, verb: 'patch', code: 409 }));
    metrics.recordKubernetesFailure(new ForbiddenError({ ...ctx, verb: 'list', code: 403 }));
    metrics.recordKubernetesFailure(new TransportError({ ...ctx, verb: 'get' }, 'ECONNREFUSED'));
    metrics.recordKubernetesFailure(new Error('something else'));
    expect(series(await scrape(metrics), `${P}kubernetes_requests_errors_total`)).toEqual([
      [{ verb: 'get', code: 'none' }, 2],
      [{ verb: 'list', code: '403' }, 1],
      [{ verb: 'list', code: 'none' }, 1],
      [{ verb: 'other', code: '403' }, 1],
      [{ verb: 'other', code: 'none' }, 1],
      [{ verb: 'patch', code: '409' }, 3],
    ]);
  });

  it('reports loaded and invalid policies and leadership', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    let s = await scrape(metrics);
    expect(series(s, `${P}policies`)).toEqual([
      [{ state: 'invalid' }, 0],
      [{ state: 'loaded' }, 0],
    ]);
    expect(value(s, `${P}leader`)).toBe(0);
    metrics.setPolicies(3, 1);
    metrics.setLeader(true);
    s = await scrape(metrics);
    expect(series(s, `${P}policies`)).toEqual([
      [{ state: 'invalid' }, 1],
      [{ state: 'loaded' }, 3],
    ]);
    expect(value(s, `${P}leader`)).toBe(1);
    metrics.setLeader(false);
    expect(value(await scrape(metrics), `${P}leader`)).toBe(0);
  });

  it('keeps registries apart: two instances never share a series', async () => {
    const a = new DaemonMetrics({ defaultMetrics: false });
    const b = new DaemonMetrics({ defaultMetrics: false });
    a.setLeader(true);
    expect(value(await scrape(a), `${P}leader`)).toBe(1);
    expect(value(await scrape(b), `${P}leader`)).toBe(0);
  });
});

describe('exposition', () => {
  function promtool(text: string): { status: number | null; output: string } {
    const run = spawnSync('promtool', ['check', 'metrics'], {
      input: text,
      encoding: 'utf8',
      timeout: 20_000,
    });
    return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
  }

  it('passes promtool check metrics with every metric populated', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.recordCycle(
      [outcome(), outcome({ policy: 'cart', routeKind: 'VirtualService', routeId: 'shop/cart' })],
      0.1,
      T,
    );
    metrics.onQuery({ kind: 'batch', query: 'up', durationMs: 3, ok: true });
    metrics.recordKubernetesError('patch', 409);
    metrics.setPolicies(2, 0);
    metrics.setLeader(true);
    const text = await metrics.expose();
    expect(promtool(text)).toEqual({ status: 0, output: '' });
    // The parser agrees with promtool on the shape: the contract's metric names are all there.
    const names = new Set(parseExposition(text).map((s) => s.name));
    for (const n of [
      'mirror_percent',
      'proposed_percent',
      'signal_value',
      'guardrail_limit',
      'decisions_total',
      'writes_total',
      'scrape_interval_seconds',
      'production_rps',
      'cycle_duration_seconds_bucket',
      'prometheus_queries_total',
      'kubernetes_requests_errors_total',
      'policies',
      'leader',
      'last_cycle_timestamp_seconds',
    ]) {
      expect(names, n).toContain(`${P}${n}`);
    }
  });

  it('promtool rejects a broken exposition, so the check above can fail', () => {
    expect(promtool('mirror_autoscaler_leader{a="1" 1\n').status).not.toBe(0);
  });

  it('exports the default process metrics under the prefix, and nothing unprefixed', async () => {
    const metrics = new DaemonMetrics();
    const text = await metrics.expose();
    const names = parseExposition(text).map((s) => s.name);
    expect(names).toContain(`${P}process_resident_memory_bytes`);
    expect(names).toContain(`${P}nodejs_eventloop_lag_seconds`);
    expect(names.filter((n) => !n.startsWith(P))).toEqual([]);
    // promtool parses it; its only lint complaints are prom-client's own gauge names ending in _total.
    const check = promtool(text);
    const complaints = check.output.split('\n').filter((l) => l !== '');
    expect(
      complaints.every((l) => /^mirror_autoscaler_nodejs_active_\w+_total non-counter metrics/.test(l)),
    ).toBe(true);
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });
});

describe('fights and pauses', () => {
  it('counts each override once, by manager, and shows why a policy is paused until it is not', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    const override = {
      manager: 'argocd-controller',
      found: 10,
      ours: 20,
      count: 1,
      at: T,
      until: T + 300_000,
      stateAt: T - 30_000,
      fresh: true,
    };
    const held = { action: 'hold', reason: 'Overridden', write: 'none' } as const;
    metrics.recordCycle([outcome({ ...held, override })], 0.1, T);
    metrics.recordCycle([outcome({ ...held, override: { ...override, fresh: false } })], 0.1, T + 30_000);
    let s = await scrape(metrics);
    expect(series(s, `${P}route_overridden_total`)).toEqual([
      [{ policy: 'checkout', manager: 'argocd-controller' }, 1],
    ]);

    metrics.recordCycle(
      [outcome({ action: 'hold', reason: 'Paused', write: 'none', pausedBy: 'brake' })],
      0.1,
      T,
    );
    s = await scrape(metrics);
    expect(series(s, `${P}paused`)).toEqual([[{ policy: 'checkout', source: 'brake' }, 1]]);
    metrics.recordCycle(
      [outcome({ action: 'hold', reason: 'Paused', write: 'none', pausedBy: 'flagger' })],
      0.1,
      T,
    );
    s = await scrape(metrics);
    expect(series(s, `${P}paused`)).toEqual([[{ policy: 'checkout', source: 'flagger' }, 1]]);
    metrics.recordCycle([outcome()], 0.1, T);
    s = await scrape(metrics);
    expect(series(s, `${P}paused`)).toEqual([]);

    metrics.forgetPolicy('checkout');
    s = await scrape(metrics);
    expect(series(s, `${P}route_overridden_total`)).toEqual([]);
  });
});
