/**
 * The one way this project talks to Prometheus: a prometheus-query driver with the credentials, custom CA and
 * hard deadline of the configuration, and the list of every form a credential takes on the wire, so that none
 * of them survives into a message. Used by the live signal source and by the backtest's range reads.
 */
import { Buffer } from 'node:buffer';
import { Agent as HttpsAgent } from 'node:https';
import { PrometheusDriver } from 'prometheus-query';
import type { BasicAuth } from './config.js';

export interface PrometheusClientOptions {
  /** Base URL; userinfo in it becomes a Basic header (axios), so it counts as a credential. */
  readonly url: string;
  /** Hard deadline of one request, in milliseconds. */
  readonly timeoutMs: number;
  readonly bearerToken?: string | undefined;
  readonly basicAuth?: BasicAuth | undefined;
  /** PEM bundle that verifies an https Prometheus. */
  readonly ca?: string | undefined;
}

/** Every form the configured credentials can take in a request or in an answer that quotes it. */
export function credentialForms(options: PrometheusClientOptions): string[] {
  const secrets: string[] = [];
  if (options.bearerToken !== undefined) secrets.push(options.bearerToken);
  if (options.basicAuth !== undefined) {
    const { username, password } = options.basicAuth;
    secrets.push(password, Buffer.from(`${username}:${password}`).toString('base64'));
  }
  const { username: urlUser, password: urlPassword } = safeUserinfo(options.url);
  if (urlPassword !== '') {
    secrets.push(urlPassword, safeDecode(urlPassword));
    // axios turns URL userinfo into a Basic header (raw or decoded, depending on version): a gateway that
    // quotes the header back must not get the password into a message either.
    for (const pair of [`${urlUser}:${urlPassword}`, `${safeDecode(urlUser)}:${safeDecode(urlPassword)}`]) {
      secrets.push(Buffer.from(pair).toString('base64'));
    }
  }
  return secrets.filter((s) => s.length > 0);
}

/** Replaces every credential form in `text` by `[REDACTED]`. */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('[REDACTED]');
  return out;
}

/** A prometheus-query driver for the configuration: POST, credentials, custom CA, hard deadline. */
export function createPrometheusDriver(options: PrometheusClientOptions): PrometheusDriver {
  const { timeoutMs } = options;
  // One agent for every query: the custom CA applies to all of them, and keep-alive saves a TLS handshake each.
  const httpsAgent =
    options.ca !== undefined ? new HttpsAgent({ ca: options.ca, keepAlive: true }) : undefined;
  return new PrometheusDriver({
    endpoint: options.url,
    baseURL: '/api/v1/',
    // Batched selectors can be tens of kilobytes: POST keeps them out of URL length limits.
    preferPost: true,
    timeout: timeoutMs,
    ...(options.bearerToken !== undefined && {
      headers: { Authorization: `Bearer ${options.bearerToken}` },
    }),
    ...(options.basicAuth !== undefined && { auth: { ...options.basicAuth } }),
    requestInterceptor: {
      // axios' own timeout only limits socket inactivity; a server that trickles bytes needs a hard deadline.
      onFulfilled: (config) => {
        config.signal = AbortSignal.timeout(timeoutMs);
        if (httpsAgent !== undefined) config.httpsAgent = httpsAgent;
        return config;
      },
    },
    responseInterceptor: {
      onFulfilled: (response) => response,
      onRejected: (error: unknown) => {
        // prometheus-query drops the HTTP status of an error whose body is not Prometheus JSON (a proxy's
        // 502 page, say); reshape the body so the status survives into the message.
        const response = (error as { response?: { status?: number; data?: unknown } } | null)?.response;
        if (response !== undefined && (typeof response.data !== 'object' || response.data === null)) {
          response.data = { status: 'error', error: `non-JSON body${bodySnippet(response.data)}` };
        }
        return Promise.reject(error);
      },
    },
  });
}

function safeUserinfo(url: string): { username: string; password: string } {
  try {
    const u = new URL(url);
    return { username: u.username, password: u.password };
  } catch {
    return { username: '', password: '' };
  }
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The start of a response body, for a message about it (empty for no body). */
function bodySnippet(data: unknown): string {
  if (data === undefined || data === null || data === '') return '';
  const text = typeof data === 'string' ? data : JSON.stringify(data);
  const short = text.length > 60 ? `${text.slice(0, 60)}…` : text;
  return ` (body starts ${JSON.stringify(short)})`;
}

/** Node's (OpenSSL's) error codes for a certificate that failed verification. */
const CERTIFICATE_ERROR =
  /^(ERR_TLS_CERT_ALTNAME_INVALID|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_[A-Z_]+|ERR_SSL_[A-Z_]*CERTIFICATE[A-Z_]*)$/;

/** A one-line description of a prometheus-query failure (a plain object) or of a thrown Error. */
export function describePrometheusError(err: unknown, timeoutMs: number, depth = 0): string {
  if (typeof err === 'object' && err !== null && 'errorType' in err) {
    const e = err as {
      errorType?: unknown;
      error?: unknown;
      httpStatus?: unknown;
      code?: unknown;
      data?: unknown;
      original?: unknown;
    };
    // prometheus-query's catch handler wraps its own parse failures (client_error) in a network_error
    // whose `original` is the real cause.
    const inner = e.original;
    if (depth < 3 && typeof inner === 'object' && inner !== null && 'errorType' in inner) {
      return describePrometheusError(inner, timeoutMs, depth + 1);
    }
    const message = typeof e.error === 'string' ? e.error : 'no message';
    const code = typeof e.code === 'string' ? e.code : '';
    if (CERTIFICATE_ERROR.test(code)) {
      // Node reports an untrusted or mismatched certificate as a plain network error; say what it is.
      return `TLS error: certificate problem (${code}: ${message}): Prometheus' certificate is not trusted by the CA in --prometheus-ca-file / PROMETHEUS_CA_FILE (or the system roots when unset), or does not name the host`;
    }
    if (e.errorType === 'timeout_error' || e.code === 'ERR_CANCELED' || e.code === 'ECONNABORTED') {
      return `timed out after ${timeoutMs} ms`;
    }
    switch (e.errorType) {
      case 'http_error':
        return `HTTP ${String(e.httpStatus)}: ${message}`;
      case 'network_error':
        return `network error: ${message}`;
      case 'ssl_error':
        return `TLS error: ${message}`;
      case 'client_error':
        return `malformed response: not Prometheus API JSON${bodySnippet(e.data)}`;
      default:
        return `${String(e.errorType)}: ${message}`;
    }
  }
  if (err instanceof Error) return `malformed response: ${err.message}`;
  return `unexpected error: ${String(err)}`;
}
