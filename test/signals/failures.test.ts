import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Signal, SignalName } from '../../src/core/types.js';
import {
  PrometheusConfigError,
  PrometheusSignalSource,
  type PrometheusSignalSourceOptions,
  type SignalRequest,
} from '../../src/signals/index.js';
import { freePort, type MisbehavingPrometheus, startMisbehavingPrometheus } from '../support/prometheus.js';

const ALL: readonly SignalName[] = ['cpuUtilization', 'errorRate', 'latencyP99Ms'];
const TOKEN = 'tok-7f3a9c1e-very-secret';
const PASSWORD = 'pw-0c8d2b44-very-secret';

let bad: MisbehavingPrometheus;

beforeAll(async () => {
  bad = await startMisbehavingPrometheus();
});

afterAll(async () => {
  await bad?.stop();
});

const requests: SignalRequest[] = [
  {
    key: 'checkout',
    namespace: 'shop',
    workload: 'checkout-shadow',
    windowSeconds: 120,
    guardrails: ALL,
    queries: {},
  },
  {
    key: 'search',
    namespace: 'shop',
    workload: 'search-shadow',
    windowSeconds: 120,
    guardrails: ['errorRate'],
    queries: { errorRate: 'vector(0.01)' },
  },
];

function everySignal(
  readings: Map<string, { signals: Partial<Record<SignalName, Signal>>; requestRate: Signal }>,
) {
  return [...readings.values()].flatMap((r) => [r.requestRate, ...Object.values(r.signals)]);
}

async function fetchAll(options: PrometheusSignalSourceOptions) {
  const logged: unknown[] = [];
  const src = new PrometheusSignalSource({
    timeoutMs: 2000,
    logger: { debug: (o) => logged.push(o), info: (o) => logged.push(o), warn: (o) => logged.push(o) },
    ...options,
  });
  const started = Date.now();
  const readings = await src.fetch(requests, new Date());
  return { readings, elapsedMs: Date.now() - started, logged, src };
}

describe('PrometheusSignalSource when Prometheus misbehaves', () => {
  it('reports QueryFailed for every signal, without throwing, when Prometheus is down', async () => {
    const port = await freePort();
    const { readings } = await fetchAll({ url: `http://127.0.0.1:${port}` });
    expect([...readings.keys()].sort()).toEqual(['checkout', 'search']);
    for (const s of everySignal(readings)) {
      expect(s).toMatchObject({
        kind: 'absent',
        reason: 'QueryFailed',
        detail: expect.stringContaining('ECONNREFUSED'),
      });
    }
  });

  it.each([
    { name: 'slow beyond the timeout', mode: 'slow' as const, detail: /timed out after 300 ms/ },
    {
      name: 'HTTP 500 with a Prometheus error',
      mode: 'http500' as const,
      detail: /HTTP 500: query processing failed/,
    },
    {
      name: 'HTTP 503 from a proxy, not JSON',
      mode: 'http503' as const,
      detail: /HTTP 503: non-JSON body .*upstream connect error/,
    },
    {
      name: 'truncated JSON',
      mode: 'garbage' as const,
      detail: /malformed response: not Prometheus API JSON/,
    },
    { name: 'a vector that is not a list', mode: 'wrong-shape' as const, detail: /malformed response/ },
    { name: 'a matrix where a vector was expected', mode: 'matrix' as const, detail: /got matrix/ },
  ])('reports QueryFailed with a detail: $name', async ({ mode, detail }) => {
    const { readings, elapsedMs } = await fetchAll({ url: bad.url(mode), timeoutMs: 300 });
    const signals = everySignal(readings);
    expect(signals).toHaveLength(6);
    for (const s of signals) {
      expect(s).toMatchObject({ kind: 'absent', reason: 'QueryFailed' });
      expect(s.kind === 'absent' ? s.detail : '').toMatch(detail);
    }
    // Queries run in parallel, each bounded by the timeout.
    expect(elapsedMs).toBeLessThan(3000);
  });

  it('sends the bearer token, and keeps it out of details and logs even when the server echoes it', async () => {
    const before = bad.requests.length;
    const { readings, logged } = await fetchAll({ url: bad.url('echo-auth'), bearerToken: TOKEN });
    const seen = bad.requests.slice(before);
    expect(seen.length).toBeGreaterThan(0);
    for (const r of seen) expect(r.headers.authorization).toBe(`Bearer ${TOKEN}`);
    const details = everySignal(readings).map((s) => (s.kind === 'absent' ? (s.detail ?? '') : ''));
    expect(details.every((d) => d.includes('HTTP 401: rejected Bearer [REDACTED]'))).toBe(true);
    expect(JSON.stringify([...readings.entries()])).not.toContain(TOKEN);
    expect(JSON.stringify(logged)).not.toContain(TOKEN);
  });

  it('sends basic auth, and keeps the password and its base64 form out of details', async () => {
    const before = bad.requests.length;
    const { readings } = await fetchAll({
      url: bad.url('echo-auth'),
      basicAuth: { username: 'reader', password: PASSWORD },
    });
    const encoded = Buffer.from(`reader:${PASSWORD}`).toString('base64');
    for (const r of bad.requests.slice(before)) expect(r.headers.authorization).toBe(`Basic ${encoded}`);
    const text = JSON.stringify([...readings.entries()]);
    expect(text).toContain('QueryFailed');
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(encoded);
  });

  it('sends batched queries as POST bodies, evaluated at the given time', async () => {
    const before = bad.requests.length;
    const at = new Date('2026-11-26T10:00:00Z');
    const src = new PrometheusSignalSource({ url: bad.url('ok'), timeoutMs: 2000 });
    await src.fetch(requests, at);
    const seen = bad.requests.slice(before);
    expect(seen.length).toBe(src.queryCount);
    for (const r of seen) {
      expect(r.method).toBe('POST');
      expect(r.path).toBe('/ok/api/v1/query');
      expect(new URLSearchParams(r.body).get('time')).toBe(String(at.getTime() / 1000));
    }
  });

  it('sends nothing for an empty cycle', async () => {
    const before = bad.requests.length;
    const src = new PrometheusSignalSource({ url: bad.url('ok') });
    expect((await src.fetch([], new Date())).size).toBe(0);
    expect(src.queryCount).toBe(0);
    expect(bad.requests.length).toBe(before);
  });

  it.each([
    {
      name: 'a namespace that is not DNS-1123',
      namespace: 'Shop"}',
      workload: 'w',
      detail: 'namespace "Shop"}" is not a DNS-1123 name',
    },
    {
      name: 'a workload with a regex metacharacter',
      namespace: 'shop',
      workload: 'w|.*',
      detail: 'workload "w|.*" is not a DNS-1123 name',
    },
  ])(
    'refuses $name before querying, and still answers the other requests',
    async ({ namespace, workload, detail }) => {
      const src = new PrometheusSignalSource({ url: bad.url('ok'), timeoutMs: 2000 });
      const readings = await src.fetch(
        [
          { key: 'bad', namespace, workload, windowSeconds: 120, guardrails: ['errorRate'], queries: {} },
          ...requests,
        ],
        new Date(),
      );
      expect(readings.get('bad')?.signals.errorRate).toEqual({
        kind: 'absent',
        reason: 'QueryFailed',
        detail,
      });
      expect(readings.get('checkout')?.signals.errorRate).toMatchObject({
        kind: 'absent',
        reason: 'NoSeries',
      });
    },
  );

  it.each([
    {
      name: 'an URL that does not parse',
      options: { url: 'not a url' },
      message: 'url: must be an http(s) URL (got "not a url")',
    },
    {
      name: 'a zero timeout',
      options: { url: 'http://127.0.0.1:9090', timeoutMs: 0 },
      message: 'timeoutMs: must be a positive number (got 0)',
    },
    {
      name: 'token and basic auth together',
      options: {
        url: 'http://127.0.0.1:9090',
        bearerToken: 't',
        basicAuth: { username: 'u', password: 'p' },
      },
      message: 'bearerToken: set either bearerToken or basicAuth, not both',
    },
  ])('refuses unusable options: $name', ({ options, message }) => {
    let caught: unknown;
    try {
      new PrometheusSignalSource(options);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PrometheusConfigError);
    expect((caught as Error).message).toBe(message);
  });
});
