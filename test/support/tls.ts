/**
 * Test harness for the paths between the daemon and Prometheus: certificates made at test time with the
 * openssl CLI (a private CA, a server certificate for 127.0.0.1 signed by it, and an unrelated CA), and a small
 * reverse proxy on 127.0.0.1, plain HTTP or TLS, that forwards to the real Prometheus or misbehaves on demand
 * (answers itself, rewrites the answer, hangs, or stops listening altogether).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const OPENSSL_BIN = process.env.OPENSSL_BIN ?? 'openssl';

/** Files (and their PEM text) of the test PKI; `dir` holds them all and is removed by `remove()`. */
export interface TestCertificates {
  readonly dir: string;
  /** The CA that signed the server certificate. */
  readonly caFile: string;
  /** A CA that signed nothing here: trusting it alone must fail the handshake. */
  readonly wrongCaFile: string;
  /** Server certificate for IP 127.0.0.1 and DNS localhost, and its key (PEM text). */
  readonly serverCert: string;
  readonly serverKey: string;
  remove(): Promise<void>;
}

async function openssl(args: readonly string[], cwd: string): Promise<void> {
  try {
    await execFileAsync(OPENSSL_BIN, args, { cwd, timeout: 20_000 });
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message ?? String(err)}`);
  }
}

async function makeCa(dir: string, name: string): Promise<void> {
  await openssl(
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=mirror-autoscaler test ${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
}

/**
 * Makes a CA, a server certificate for 127.0.0.1 signed by it, and a second, unrelated CA, with the openssl CLI
 * (EC P-256 keys: fast to make). Takes well under a second.
 * @throws Error with openssl's stderr when openssl is missing or fails.
 */
export async function makeTestCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), 'mirror-autoscaler-tls-'));
  try {
    await Promise.all([makeCa(dir, 'ca'), makeCa(dir, 'wrong-ca')]);
    await openssl(
      [
        'req',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'server.key',
        '-out',
        'server.csr',
        '-subj',
        '/CN=127.0.0.1',
      ],
      dir,
    );
    await writeFile(
      join(dir, 'server.ext'),
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n',
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        'server.csr',
        '-CA',
        'ca.crt',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-out',
        'server.crt',
        '-days',
        '2',
        '-extfile',
        'server.ext',
      ],
      dir,
    );
    const [serverCert, serverKey] = await Promise.all([
      readFile(join(dir, 'server.crt'), 'utf8'),
      readFile(join(dir, 'server.key'), 'utf8'),
    ]);
    return {
      dir,
      caFile: join(dir, 'ca.crt'),
      wrongCaFile: join(dir, 'wrong-ca.crt'),
      serverCert,
      serverKey,
      remove: () => rm(dir, { recursive: true, force: true }),
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** A request as the proxy saw it. */
export interface ProxiedRequest {
  readonly method: string;
  /** Path and query, e.g. /api/v1/query */
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** What the proxy does with one request. */
export type ProxyAction =
  /** Forward to `upstream` (default: the proxy's), optionally rewriting the answer's body. */
  | { readonly kind: 'forward'; readonly upstream?: string; readonly rewrite?: (body: string) => string }
  /** Answer without asking upstream. */
  | {
      readonly kind: 'respond';
      readonly status: number;
      readonly body: string;
      readonly contentType?: string;
    }
  /** Never answer (until the proxy stops listening or closes). */
  | { readonly kind: 'hang' };

/** Options of startReverseProxy. */
export interface ReverseProxyOptions {
  /** Base URL requests are forwarded to, e.g. the real Prometheus at http://127.0.0.1:PORT. */
  readonly upstream: string;
  /** Serve HTTPS with this certificate and key (PEM); plain HTTP when absent. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Decides what to do with each request; forwards everything unchanged when absent. */
  readonly handle?: (req: ProxiedRequest) => ProxyAction;
  /** Start without listening (a Prometheus that is down from the start); call listen() later. */
  readonly listening?: boolean;
}

/** A running reverse proxy. */
export interface ReverseProxy {
  /** http(s)://127.0.0.1:PORT; the port stays the same across stopListening() and listen(). */
  readonly url: string;
  /** Every request received, in order. */
  readonly requests: ProxiedRequest[];
  /** Starts (again) listening on the same port. */
  listen(): Promise<void>;
  /** Refuses new connections and drops open ones, so keep-alive sockets cannot hide the outage. */
  stopListening(): Promise<void>;
  /** Stops for good. */
  close(): Promise<void>;
}

const FORWARD_TIMEOUT_MS = 10_000;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString();
}

/**
 * Starts a reverse proxy on 127.0.0.1 and a free port (fixed once chosen, so stopListening() / listen()
 * simulate a Prometheus that goes away and comes back at the same address).
 */
export async function startReverseProxy(options: ReverseProxyOptions): Promise<ReverseProxy> {
  const requests: ProxiedRequest[] = [];
  const sockets = new Set<Socket>();
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      const body = await readBody(req);
      const seen: ProxiedRequest = {
        method: req.method ?? 'GET',
        path: req.url ?? '/',
        headers: req.headers,
        body,
      };
      requests.push(seen);
      const action = options.handle?.(seen) ?? { kind: 'forward' };
      if (action.kind === 'hang') return;
      if (action.kind === 'respond') {
        res.writeHead(action.status, { 'content-type': action.contentType ?? 'application/json' });
        res.end(action.body);
        return;
      }
      const headers: Record<string, string> = {};
      for (const name of ['content-type', 'authorization', 'accept']) {
        const v = req.headers[name];
        if (typeof v === 'string') headers[name] = v;
      }
      try {
        const upstream = await fetch(`${action.upstream ?? options.upstream}${seen.path}`, {
          method: seen.method,
          headers,
          ...(seen.method !== 'GET' && seen.method !== 'HEAD' && { body }),
          signal: AbortSignal.timeout(FORWARD_TIMEOUT_MS),
        });
        const text = await upstream.text();
        res.writeHead(upstream.status, {
          'content-type': upstream.headers.get('content-type') ?? 'application/json',
        });
        res.end(action.rewrite === undefined ? text : action.rewrite(text));
      } catch (err) {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`proxy: upstream failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    })().catch(() => res.destroy());
  };
  let port = 0;
  let server: Server | undefined;
  const listen = async (): Promise<void> => {
    if (server !== undefined) return;
    const s =
      options.tls === undefined ? createHttpServer(onRequest) : createHttpsServer(options.tls, onRequest);
    s.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    // A client refused by the TLS handshake is the point of some tests, not an error of the proxy.
    s.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => {
        s.off('error', reject);
        resolve();
      });
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const stopListening = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (s === undefined) return;
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  await listen();
  const scheme = options.tls === undefined ? 'http' : 'https';
  const url = `${scheme}://127.0.0.1:${port}`;
  if (options.listening === false) await stopListening();
  return { url, requests, listen, stopListening, close: stopListening };
}
