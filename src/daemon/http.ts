/**
 * The daemon's HTTP endpoints on node:http: /metrics (Prometheus text format), /healthz (the process
 * answers) and /readyz (policies loaded and the last cycle reached Prometheus and the API server), plus
 * the Readiness bookkeeping behind /readyz.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { QueryEvent } from '../signals/prometheus.js';
import type { PolicyOutcome } from './cycle.js';

/** Default port of the endpoints (METRICS_PORT). */
export const DEFAULT_METRICS_PORT = 9464;

/** What /readyz answers. */
export interface ReadinessState {
  readonly ready: boolean;
  /** Why not ready; empty when ready. */
  readonly reasons: string[];
}

/** What /metrics serves; DaemonMetrics is one. */
export interface MetricsSource {
  readonly contentType: string;
  expose(): Promise<string>;
}

/** Options of startHttpServer. */
export interface HttpServerOptions {
  /** Bind address: 127.0.0.1 in tests, 0.0.0.0 in a cluster. */
  readonly host: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly metrics: MetricsSource;
  readonly readiness: () => ReadinessState;
}

/** A running endpoint server. */
export interface HttpServerHandle {
  /** e.g. http://127.0.0.1:9464 */
  readonly url: string;
  /** The bound port (the chosen one when 0 was asked for). */
  readonly port: number;
  /** Stops listening and closes open connections. */
  close(): Promise<void>;
}

/** The endpoint server could not listen. */
export class HttpServerError extends Error {
  override readonly name = 'HttpServerError';
}

const TEXT = 'text/plain; charset=utf-8';

function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Type': TEXT, 'Cache-Control': 'no-store', ...headers });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

async function handle(req: IncomingMessage, res: ServerResponse, options: HttpServerOptions): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const known = path === '/metrics' || path === '/healthz' || path === '/readyz';
  if (!known) return send(res, 404, `not found: ${path} (try /metrics, /healthz or /readyz)\n`);
  // HEAD is GET without a body (RFC 9110); every other method is refused.
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return send(res, 405, `method ${req.method ?? '?'} not allowed on ${path}; use GET\n`, {
      Allow: 'GET, HEAD',
    });
  }
  switch (path) {
    case '/healthz':
      return send(res, 200, 'ok\n');
    case '/readyz': {
      const state = options.readiness();
      if (state.ready) return send(res, 200, 'ok\n');
      return send(res, 503, `not ready:\n${state.reasons.map((r) => `- ${r}\n`).join('')}`);
    }
    default: {
      let text: string;
      try {
        text = await options.metrics.expose();
      } catch (err) {
        return send(
          res,
          500,
          `collecting metrics failed: ${err instanceof Error ? err.message : String(err)}\n`,
        );
      }
      return send(res, 200, text, { 'Content-Type': options.metrics.contentType });
    }
  }
}

/**
 * Starts the endpoint server.
 * @throws HttpServerError when the address cannot be bound (in use, not local, no permission).
 */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServerHandle> {
  const server = createServer((req, res) => {
    handle(req, res, options).catch((err: unknown) => {
      if (!res.headersSent)
        send(res, 500, `internal error: ${err instanceof Error ? err.message : String(err)}\n`);
      else res.destroy();
    });
  });
  // Probes and scrapes are small and quick; a client that trickles its request must not hold a socket.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        new HttpServerError(
          `cannot listen on ${options.host}:${options.port} for /metrics, /healthz and /readyz: ${err.code ?? ''} ${err.message}`.trim(),
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

// ------------------------------------------------------------------------------------------- readiness

/** What one cycle tells about the dependencies. */
export interface CycleHealth {
  /** At least one Prometheus query succeeded and none failed for want of reaching Prometheus. */
  readonly prometheusOk: boolean;
  /** VirtualServices could be listed in every namespace the cycle needed. */
  readonly apiOk: boolean;
  /** What went wrong, for /readyz. */
  readonly detail?: string;
}

/** Query failures that mean Prometheus was not reached (see describeError in signals/prometheus.ts). */
const UNREACHABLE = /^(network error|timed out|TLS error)|^HTTP 50[234]\b/;
const LIST_FAILED = 'listing VirtualServices failed';

/**
 * Reads a cycle's health from its outcomes and the Prometheus queries it sent.
 *
 * Prometheus is reached when at least one query succeeded and none failed with a network error, a timeout,
 * a TLS error or a gateway's 502/503/504 (a query Prometheus itself rejected still proves it answers).
 * The API server is reached when there was at least one outcome and no VirtualService list failed.
 */
export function assessCycle(outcomes: readonly PolicyOutcome[], queries: readonly QueryEvent[]): CycleHealth {
  const problems: string[] = [];
  const unreachable = queries.find((q) => !q.ok && UNREACHABLE.test(q.detail ?? ''));
  const prometheusOk = queries.some((q) => q.ok) && unreachable === undefined;
  if (!prometheusOk) {
    problems.push(
      unreachable !== undefined
        ? `Prometheus: ${unreachable.detail ?? 'query failed'}`
        : queries.length === 0
          ? 'Prometheus: no query was sent'
          : `Prometheus: every query failed (${queries[0]?.detail ?? 'no detail'})`,
    );
  }
  const listFailure = outcomes.find((o) => o.error?.startsWith(LIST_FAILED) === true);
  const apiOk = outcomes.length > 0 && listFailure === undefined;
  if (!apiOk) {
    problems.push(
      listFailure?.error !== undefined
        ? `API server: ${listFailure.error}`
        : 'API server: no VirtualService was read',
    );
  }
  return { prometheusOk, apiOk, ...(problems.length > 0 && { detail: problems.join('; ') }) };
}

/**
 * Readiness of the daemon: ready when at least one valid policy is loaded AND the last cycle reached
 * Prometheus AND the API server. Not ready before the first cycle. With zero policies the daemon has
 * nothing to do and says so rather than claiming to work.
 *
 * Feed it either with `markCycle` (health computed elsewhere) or with `onQuery` for every Prometheus query
 * and `observeCycle(outcomes)` after every cycle, which assesses the queries seen since the previous cycle.
 */
export class Readiness {
  private policies: number | undefined;
  private cycle: CycleHealth | undefined;
  private queries: QueryEvent[] = [];

  /** Records how many valid policies are loaded (after each load or reload). */
  markPolicies(loaded: number): void {
    this.policies = loaded;
  }

  /** Records the health of the cycle that just completed. */
  markCycle(health: CycleHealth): void {
    this.cycle = health;
  }

  /** Collects one Prometheus query of the cycle in progress; wire it to PrometheusSignalSource's `onQuery`. */
  onQuery(event: QueryEvent): void {
    // Bounded: a cycle sends a handful of batched queries plus one per override; far below this.
    if (this.queries.length < 10_000) this.queries.push(event);
  }

  /** Assesses the completed cycle from its outcomes and the queries collected since the last call. */
  observeCycle(outcomes: readonly PolicyOutcome[]): CycleHealth {
    const health = assessCycle(outcomes, this.queries);
    this.queries = [];
    this.markCycle(health);
    return health;
  }

  /** Whether the daemon is ready, and why not. */
  state(): ReadinessState {
    const reasons: string[] = [];
    if (this.policies === undefined) reasons.push('policies have not been loaded yet');
    else if (this.policies === 0) reasons.push('no valid policy is loaded');
    if (this.cycle === undefined) reasons.push('no cycle has completed yet');
    else {
      const unreached = [
        ...(this.cycle.prometheusOk ? [] : ['Prometheus']),
        ...(this.cycle.apiOk ? [] : ['the API server']),
      ];
      // One reason with the detail once: the detail already names each dependency's problem.
      if (unreached.length > 0)
        reasons.push(`last cycle did not reach ${unreached.join(' and ')}${suffix(this.cycle.detail)}`);
    }
    return { ready: reasons.length === 0, reasons };
  }
}

function suffix(detail: string | undefined): string {
  return detail === undefined ? '' : ` (${detail})`;
}
