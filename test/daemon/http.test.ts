/**
 * The endpoint server on 127.0.0.1 and a free port, fetched over real HTTP, and the Readiness rules behind
 * /readyz.
 */
import { Agent, request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { PolicyOutcome } from '../../src/daemon/cycle.js';
import {
  assessCycle,
  HttpServerError,
  type HttpServerHandle,
  type MetricsSource,
  Readiness,
  type ReadinessState,
  startHttpServer,
} from '../../src/daemon/http.js';
import { DaemonMetrics } from '../../src/daemon/metrics.js';
import type { QueryEvent } from '../../src/signals/prometheus.js';

const servers: HttpServerHandle[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(
  readiness: () => ReadinessState = () => ({ ready: true, reasons: [] }),
  metrics: MetricsSource = new DaemonMetrics({ defaultMetrics: false }),
): Promise<HttpServerHandle> {
  const server = await startHttpServer({ host: '127.0.0.1', port: 0, metrics, readiness });
  servers.push(server);
  return server;
}

async function get(
  server: HttpServerHandle,
  path: string,
  method = 'GET',
): Promise<{ status: number; text: string; headers: Headers }> {
  const res = await fetch(`${server.url}${path}`, { method, signal: AbortSignal.timeout(5000) });
  return { status: res.status, text: await res.text(), headers: res.headers };
}

function outcome(over: Partial<PolicyOutcome> = {}): PolicyOutcome {
  return {
    policy: 'checkout',
    routeKind: 'VirtualService',
    routeId: 'shop/checkout',
    routes: ['primary'],
    currentPercent: 10,
    proposedPercent: 10,
    action: 'hold',
    reason: 'WithinTolerance',
    message: 'within tolerance',
    signals: { cpuUtilization: 0.7, errorRate: null, latencyP99Ms: null },
    absent: {},
    guardrails: { cpuUtilization: 0.8 },
    write: 'none',
    ...over,
  };
}

const ok: QueryEvent = { kind: 'batch', query: 'q', durationMs: 2, ok: true };
const refused: QueryEvent = {
  kind: 'batch',
  query: 'q',
  durationMs: 2,
  ok: false,
  detail: 'network error: connect ECONNREFUSED 127.0.0.1:9090',
};
const LIST_FAILED =
  'listing VirtualServices failed: list virtualservices.networking.istio.io in namespace shop: no response from the API server: ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:6443';

describe('startHttpServer', () => {
  it('binds a free port on the given address and reports its URL', async () => {
    const server = await start();
    expect(server.port).toBeGreaterThan(0);
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  });

  it('serves /metrics in the Prometheus text format with the registry content type', async () => {
    const metrics = new DaemonMetrics({ defaultMetrics: false });
    metrics.setLeader(true);
    metrics.recordCycle([outcome()], 0.2, Date.UTC(2026, 2, 1));
    const server = await start(undefined, metrics);
    const res = await get(server, '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics.contentType);
    expect(res.text).toContain('# TYPE mirror_autoscaler_leader gauge\nmirror_autoscaler_leader 1\n');
    expect(res.text).toContain(
      'mirror_autoscaler_mirror_percent{policy="checkout",route_kind="VirtualService",route="shop/checkout"} 10\n',
    );
    // Each scrape reflects the registry at that moment.
    metrics.setLeader(false);
    expect((await get(server, '/metrics')).text).toContain('mirror_autoscaler_leader 0\n');
  });

  it('answers /healthz with 200 ok whatever the readiness', async () => {
    const server = await start(() => ({ ready: false, reasons: ['no cycle has completed yet'] }));
    expect(await get(server, '/healthz')).toMatchObject({ status: 200, text: 'ok\n' });
  });

  it('answers /readyz 200 when ready and 503 with the reasons otherwise', async () => {
    let state: ReadinessState = {
      ready: false,
      reasons: ['no valid policy is loaded', 'no cycle has completed yet'],
    };
    const server = await start(() => state);
    expect(await get(server, '/readyz')).toMatchObject({
      status: 503,
      text: 'not ready:\n- no valid policy is loaded\n- no cycle has completed yet\n',
    });
    state = { ready: true, reasons: [] };
    expect(await get(server, '/readyz')).toMatchObject({ status: 200, text: 'ok\n' });
  });

  const notFound = [
    { name: 'root', path: '/' },
    { name: 'unknown path', path: '/metricz' },
    { name: 'trailing slash', path: '/metrics/' },
  ];
  it.each(notFound)('404 for $name', async ({ path }) => {
    const res = await get(await start(), path);
    expect(res.status).toBe(404);
    expect(res.text).toContain(`not found: ${path}`);
  });

  it('ignores the query string', async () => {
    expect((await get(await start(), '/healthz?verbose=1')).status).toBe(200);
  });

  const methods = [
    { name: 'POST /metrics', method: 'POST', path: '/metrics' },
    { name: 'PUT /readyz', method: 'PUT', path: '/readyz' },
    { name: 'DELETE /healthz', method: 'DELETE', path: '/healthz' },
  ];
  it.each(methods)('405 for $name, with Allow', async ({ method, path }) => {
    const res = await get(await start(), path, method);
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
  });

  it('answers HEAD like GET without a body', async () => {
    const res = await get(await start(() => ({ ready: false, reasons: ['x'] })), '/readyz', 'HEAD');
    expect([res.status, res.text]).toEqual([503, '']);
  });

  it('answers 500 when collecting metrics fails, and keeps serving', async () => {
    const server = await start(undefined, {
      contentType: 'text/plain',
      expose: () => Promise.reject(new Error('collector exploded')),
    });
    expect(await get(server, '/metrics')).toMatchObject({
      status: 500,
      text: 'collecting metrics failed: collector exploded\n',
    });
    expect((await get(server, '/healthz')).status).toBe(200);
  });

  it('refuses a port in use with a typed error naming the address', async () => {
    const first = await start();
    await expect(
      startHttpServer({
        host: '127.0.0.1',
        port: first.port,
        metrics: new DaemonMetrics({ defaultMetrics: false }),
        readiness: () => ({ ready: true, reasons: [] }),
      }),
    ).rejects.toThrow(
      new HttpServerError(
        `cannot listen on 127.0.0.1:${first.port} for /metrics, /healthz and /readyz: EADDRINUSE listen EADDRINUSE: address already in use 127.0.0.1:${first.port}`,
      ),
    );
  });

  it('close() stops listening, also with a keep-alive connection open, and is idempotent', async () => {
    const server = await start();
    // A keep-alive connection left open by a scraper must not hold close() up.
    await new Promise<void>((resolve, reject) => {
      const req = request(`${server.url}/healthz`, { agent: new Agent({ keepAlive: true }) });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.end();
    });
    await Promise.all([server.close(), server.close()]);
    await expect(fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  });
});

describe('assessCycle', () => {
  const rows: {
    name: string;
    outcomes: PolicyOutcome[];
    queries: QueryEvent[];
    want: { prometheusOk: boolean; apiOk: boolean; detail?: string };
  }[] = [
    { name: 'all good', outcomes: [outcome()], queries: [ok, ok], want: { prometheusOk: true, apiOk: true } },
    {
      name: 'a query Prometheus rejected still proves it answers',
      outcomes: [outcome()],
      queries: [ok, { ...ok, kind: 'override', ok: false, detail: 'HTTP 400: bad_data: parse error' }],
      want: { prometheusOk: true, apiOk: true },
    },
    {
      name: 'one network error',
      outcomes: [outcome()],
      queries: [ok, refused],
      want: {
        prometheusOk: false,
        apiOk: true,
        detail: 'Prometheus: network error: connect ECONNREFUSED 127.0.0.1:9090',
      },
    },
    {
      name: 'a timeout',
      outcomes: [outcome()],
      queries: [{ ...ok, ok: false, detail: 'timed out after 10000 ms' }],
      want: { prometheusOk: false, apiOk: true, detail: 'Prometheus: timed out after 10000 ms' },
    },
    {
      name: 'a gateway in front of a Prometheus that is down',
      outcomes: [outcome()],
      queries: [ok, { ...ok, ok: false, detail: 'HTTP 503: non-JSON body' }],
      want: { prometheusOk: false, apiOk: true, detail: 'Prometheus: HTTP 503: non-JSON body' },
    },
    {
      name: 'every query failed, none by network',
      outcomes: [outcome()],
      queries: [{ ...ok, ok: false, detail: 'HTTP 422: execution: too many samples' }],
      want: {
        prometheusOk: false,
        apiOk: true,
        detail: 'Prometheus: every query failed (HTTP 422: execution: too many samples)',
      },
    },
    {
      name: 'no query sent',
      outcomes: [outcome()],
      queries: [],
      want: { prometheusOk: false, apiOk: true, detail: 'Prometheus: no query was sent' },
    },
    {
      name: 'a VirtualService list failed',
      outcomes: [outcome(), outcome({ policy: 'cart', error: LIST_FAILED, currentPercent: null })],
      queries: [ok],
      want: { prometheusOk: true, apiOk: false, detail: `API server: ${LIST_FAILED}` },
    },
    {
      name: 'a missing VirtualService is an answer from the API server',
      outcomes: [outcome({ error: 'VirtualService shop/checkout not found', currentPercent: null })],
      queries: [ok],
      want: { prometheusOk: true, apiOk: true },
    },
    {
      name: 'no outcome at all',
      outcomes: [],
      queries: [ok],
      want: { prometheusOk: true, apiOk: false, detail: 'API server: no VirtualService was read' },
    },
    {
      name: 'both down',
      outcomes: [outcome({ error: LIST_FAILED })],
      queries: [refused],
      want: {
        prometheusOk: false,
        apiOk: false,
        detail: `Prometheus: network error: connect ECONNREFUSED 127.0.0.1:9090; API server: ${LIST_FAILED}`,
      },
    },
  ];
  it.each(rows)('$name', ({ outcomes, queries, want }) => {
    expect(assessCycle(outcomes, queries)).toEqual(want);
  });
});

describe('Readiness', () => {
  it('is not ready before policies are loaded and a cycle completed, and says why', () => {
    const r = new Readiness();
    expect(r.state()).toEqual({
      ready: false,
      reasons: ['policies have not been loaded yet', 'no cycle has completed yet'],
    });
    r.markPolicies(0);
    expect(r.state().reasons).toEqual(['no valid policy is loaded', 'no cycle has completed yet']);
    r.markPolicies(2);
    expect(r.state().reasons).toEqual(['no cycle has completed yet']);
    r.markCycle({ prometheusOk: true, apiOk: true });
    expect(r.state()).toEqual({ ready: true, reasons: [] });
  });

  it('flips with each cycle: Prometheus away, back, API server away, back', () => {
    const r = new Readiness();
    r.markPolicies(1);
    r.markCycle({ prometheusOk: true, apiOk: true });
    expect(r.state().ready).toBe(true);
    r.markCycle({ prometheusOk: false, apiOk: true, detail: 'Prometheus: timed out after 10000 ms' });
    expect(r.state()).toEqual({
      ready: false,
      reasons: ['last cycle did not reach Prometheus (Prometheus: timed out after 10000 ms)'],
    });
    r.markCycle({ prometheusOk: true, apiOk: true });
    expect(r.state().ready).toBe(true);
    r.markCycle({ prometheusOk: false, apiOk: false });
    expect(r.state()).toEqual({
      ready: false,
      reasons: ['last cycle did not reach Prometheus and the API server'],
    });
    r.markCycle({ prometheusOk: true, apiOk: false, detail: 'API server: x' });
    expect(r.state().reasons).toEqual(['last cycle did not reach the API server (API server: x)']);
    r.markCycle({ prometheusOk: true, apiOk: true });
    expect(r.state().ready).toBe(true);
  });

  it('observeCycle assesses only the queries seen since the previous cycle', () => {
    const r = new Readiness();
    r.markPolicies(1);
    r.onQuery(refused);
    expect(r.observeCycle([outcome()]).prometheusOk).toBe(false);
    expect(r.state().ready).toBe(false);
    // The failed query belonged to the previous cycle; this one reached Prometheus.
    r.onQuery(ok);
    expect(r.observeCycle([outcome()])).toEqual({ prometheusOk: true, apiOk: true });
    expect(r.state().ready).toBe(true);
    // A cycle that sent no query (queries were consumed) does not count as reaching Prometheus.
    expect(r.observeCycle([outcome()]).prometheusOk).toBe(false);
  });

  it('drives /readyz over HTTP', async () => {
    const r = new Readiness();
    const server = await start(() => r.state());
    expect((await get(server, '/readyz')).status).toBe(503);
    r.markPolicies(1);
    r.onQuery(ok);
    r.observeCycle([outcome()]);
    expect(await get(server, '/readyz')).toMatchObject({ status: 200, text: 'ok\n' });
    r.onQuery(refused);
    r.observeCycle([outcome()]);
    expect(await get(server, '/readyz')).toMatchObject({
      status: 503,
      text: 'not ready:\n- last cycle did not reach Prometheus (Prometheus: network error: connect ECONNREFUSED 127.0.0.1:9090)\n',
    });
    r.onQuery(ok);
    r.observeCycle([outcome()]);
    expect((await get(server, '/readyz')).status).toBe(200);
  });
});
