/**
 * Where Prometheus is and how to authenticate: from the --prometheus-url flag and the environment.
 * Secrets (bearer token, password) never appear in error messages, toString(), JSON or util.inspect output.
 */
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';
import { parseDuration } from '../policy/duration.js';

/** The URL used when neither --prometheus-url nor PROMETHEUS_URL is set. */
export const DEFAULT_PROMETHEUS_URL = 'http://localhost:9090';
/** Per-query timeout when PROMETHEUS_TIMEOUT is not set. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Longest accepted PROMETHEUS_TIMEOUT: a cycle must not hang for longer than an operator would wait. */
export const MAX_TIMEOUT_MS = 5 * 60_000;

const REDACTED = '[REDACTED]';

/** A setting that cannot be used; the message starts with the flag or variable name. */
export class PrometheusConfigError extends Error {
  /** The flag or environment variable at fault, e.g. PROMETHEUS_TIMEOUT. */
  readonly setting: string;
  constructor(setting: string, message: string) {
    super(`${setting}: ${message}`);
    this.name = 'PrometheusConfigError';
    this.setting = setting;
  }
}

/** HTTP basic auth credentials. */
export interface BasicAuth {
  readonly username: string;
  readonly password: string;
}

/** Fields of a Prometheus connection. */
export interface PrometheusConfigFields {
  readonly url: string;
  readonly timeoutMs: number;
  readonly bearerToken?: string;
  readonly basicAuth?: BasicAuth;
  /**
   * PEM certificates (one or more) trusted for Prometheus' TLS certificate instead of Node's built-in roots,
   * for a Prometheus behind a private CA.
   */
  readonly ca?: string;
  /** Where `ca` was read from, for messages. */
  readonly caFile?: string;
}

/** The URL with any user:password part replaced, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.username === '' && u.password === '') return url;
    return `${u.protocol}//${REDACTED}@${u.host}${u.pathname}${u.search}${u.hash}`;
  } catch {
    // Not a URL: strip anything that looks like userinfo rather than risk printing a password.
    return url.replace(/\/\/[^/@]*@/, `//${REDACTED}@`);
  }
}

/** A resolved Prometheus connection whose JSON, string and inspect forms hide the credentials. */
export class PrometheusConfig implements PrometheusConfigFields {
  readonly url: string;
  readonly timeoutMs: number;
  readonly bearerToken?: string;
  readonly basicAuth?: BasicAuth;
  readonly ca?: string;
  readonly caFile?: string;

  constructor(fields: PrometheusConfigFields) {
    this.url = fields.url;
    this.timeoutMs = fields.timeoutMs;
    if (fields.bearerToken !== undefined) this.bearerToken = fields.bearerToken;
    if (fields.basicAuth !== undefined) this.basicAuth = fields.basicAuth;
    if (fields.ca !== undefined) this.ca = fields.ca;
    if (fields.caFile !== undefined) this.caFile = fields.caFile;
  }

  /** The config as logged: URL userinfo, token and password replaced by "[REDACTED]". */
  toJSON(): Record<string, unknown> {
    return {
      url: redactUrl(this.url),
      timeoutMs: this.timeoutMs,
      ...(this.bearerToken !== undefined && { bearerToken: REDACTED }),
      ...(this.basicAuth !== undefined && {
        basicAuth: { username: this.basicAuth.username, password: REDACTED },
      }),
      ...(this.caFile !== undefined && { caFile: this.caFile }),
    };
  }

  toString(): string {
    return `PrometheusConfig ${JSON.stringify(this.toJSON())}`;
  }

  [inspect.custom](): Record<string, unknown> {
    return this.toJSON();
  }
}

/** Inputs of resolvePrometheusConfig. */
export interface ResolveOptions {
  /** Value of --prometheus-url, when given. */
  readonly flagUrl?: string;
  /** Value of --prometheus-ca-file, when given (else PROMETHEUS_CA_FILE). */
  readonly flagCaFile?: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Reads a credentials file; defaults to fs.readFileSync(path, 'utf8'). */
  readonly readFile?: (path: string) => string;
}

function envValue(env: ResolveOptions['env'], name: string): string | undefined {
  const v = env[name];
  // An empty variable (`PROMETHEUS_URL=`) is how shells unset things; treat it as not set.
  return v === undefined || v === '' ? undefined : v;
}

function checkUrl(setting: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new PrometheusConfigError(
      setting,
      `must be an http(s) URL such as http://prometheus:9090 (got "${redactUrl(raw)}")`,
    );
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new PrometheusConfigError(setting, `must use http or https (got "${redactUrl(raw)}")`);
  }
  if (u.search !== '' || u.hash !== '') {
    throw new PrometheusConfigError(setting, `must not have a query or fragment (got "${redactUrl(raw)}")`);
  }
  return raw;
}

/** One secret from NAME or NAME_FILE (at most one of them), or undefined when neither is set. */
function secret(
  env: ResolveOptions['env'],
  name: string,
  readFile: (path: string) => string,
): { value: string; setting: string } | undefined {
  const direct = envValue(env, name);
  const fileVar = `${name}_FILE`;
  const file = envValue(env, fileVar);
  if (direct !== undefined && file !== undefined) {
    throw new PrometheusConfigError(name, `set at most one of ${name} and ${fileVar}`);
  }
  if (direct !== undefined) return { value: direct, setting: name };
  if (file === undefined) return undefined;
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'read error';
    throw new PrometheusConfigError(fileVar, `cannot read "${file}" (${code})`);
  }
  // Secret files written by Kubernetes or editors often end in a newline that is not part of the secret.
  const value = text.replace(/[\r\n]+$/, '');
  if (value === '') throw new PrometheusConfigError(fileVar, `"${file}" is empty`);
  return { value, setting: fileVar };
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/;

/** The CA bundle from --prometheus-ca-file or PROMETHEUS_CA_FILE, checked to hold at least one PEM certificate. */
function caBundle(
  options: ResolveOptions,
  url: string,
  readFile: (path: string) => string,
): { ca: string; caFile: string } | undefined {
  const fromEnv = envValue(options.env, 'PROMETHEUS_CA_FILE');
  const setting = options.flagCaFile !== undefined ? '--prometheus-ca-file' : 'PROMETHEUS_CA_FILE';
  const file = options.flagCaFile ?? fromEnv;
  if (file === undefined) return undefined;
  if (file === '') throw new PrometheusConfigError(setting, 'must name a PEM file (got "")');
  // A CA for a plain-HTTP URL would be silently unused: the operator meant TLS, so say so instead.
  if (!url.startsWith('https:')) {
    throw new PrometheusConfigError(
      setting,
      `is set but the Prometheus URL is not https (got "${redactUrl(url)}")`,
    );
  }
  let text: string;
  try {
    text = readFile(file);
  } catch (err) {
    const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'read error';
    throw new PrometheusConfigError(setting, `cannot read "${file}" (${code})`);
  }
  if (!PEM_CERTIFICATE.test(text)) {
    throw new PrometheusConfigError(
      setting,
      `"${file}" holds no PEM certificate (expected a -----BEGIN CERTIFICATE----- block)`,
    );
  }
  return { ca: text, caFile: file };
}

/**
 * Resolves the Prometheus connection: URL from `flagUrl`, else PROMETHEUS_URL, else http://localhost:9090;
 * bearer token from PROMETHEUS_BEARER_TOKEN or PROMETHEUS_BEARER_TOKEN_FILE; basic auth from PROMETHEUS_USERNAME
 * with PROMETHEUS_PASSWORD or PROMETHEUS_PASSWORD_FILE; per-query timeout from PROMETHEUS_TIMEOUT (a Prometheus
 * duration such as 10s or 500ms); the CA bundle that verifies an https Prometheus from `flagCaFile`, else
 * PROMETHEUS_CA_FILE (Node's built-in roots when neither is set). Like Prometheus' own http_config, a token and
 * basic auth together are refused.
 * @throws PrometheusConfigError naming the flag or variable (never the secret) when a setting is unusable.
 */
export function resolvePrometheusConfig(options: ResolveOptions): PrometheusConfig {
  const { env } = options;
  const readFile = options.readFile ?? ((path: string) => readFileSync(path, 'utf8'));

  const fromEnv = envValue(env, 'PROMETHEUS_URL');
  const url =
    options.flagUrl !== undefined
      ? checkUrl('--prometheus-url', options.flagUrl)
      : fromEnv !== undefined
        ? checkUrl('PROMETHEUS_URL', fromEnv)
        : DEFAULT_PROMETHEUS_URL;

  let timeoutMs = DEFAULT_TIMEOUT_MS;
  const timeoutText = envValue(env, 'PROMETHEUS_TIMEOUT');
  if (timeoutText !== undefined) {
    const seconds = parseDuration(timeoutText);
    if (seconds === undefined) {
      throw new PrometheusConfigError(
        'PROMETHEUS_TIMEOUT',
        `must be a duration such as 10s or 500ms (got "${timeoutText}")`,
      );
    }
    timeoutMs = Math.round(seconds * 1000);
    if (timeoutMs <= 0 || timeoutMs > MAX_TIMEOUT_MS) {
      throw new PrometheusConfigError(
        'PROMETHEUS_TIMEOUT',
        `must be between 1ms and 5m (got "${timeoutText}")`,
      );
    }
  }

  const token = secret(env, 'PROMETHEUS_BEARER_TOKEN', readFile);
  const username = envValue(env, 'PROMETHEUS_USERNAME');
  const password = secret(env, 'PROMETHEUS_PASSWORD', readFile);
  if (username === undefined && password !== undefined) {
    throw new PrometheusConfigError(password.setting, 'is set but PROMETHEUS_USERNAME is not');
  }
  if (username !== undefined && password === undefined) {
    throw new PrometheusConfigError(
      'PROMETHEUS_USERNAME',
      'is set but neither PROMETHEUS_PASSWORD nor PROMETHEUS_PASSWORD_FILE is',
    );
  }
  if (token !== undefined && username !== undefined) {
    throw new PrometheusConfigError(
      token.setting,
      'set either a bearer token (PROMETHEUS_BEARER_TOKEN[_FILE]) or basic auth (PROMETHEUS_USERNAME), not both',
    );
  }
  const ca = caBundle(options, url, readFile);
  return new PrometheusConfig({
    url,
    timeoutMs,
    ...(ca !== undefined && ca),
    ...(token !== undefined && { bearerToken: token.value }),
    ...(username !== undefined &&
      password !== undefined && { basicAuth: { username, password: password.value } }),
  });
}
