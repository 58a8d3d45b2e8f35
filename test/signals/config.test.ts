import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrometheusConfigError, redactUrl, resolvePrometheusConfig } from '../../src/signals/index.js';

const TOKEN = 'token-9d1c-secret';
const PASSWORD = 'password-44ab-secret';
let dir: string;
let tokenFile: string;
let passwordFile: string;
let emptyFile: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'mirror-autoscaler-config-'));
  tokenFile = join(dir, 'token');
  passwordFile = join(dir, 'password');
  emptyFile = join(dir, 'empty');
  writeFileSync(tokenFile, `${TOKEN}\n`);
  writeFileSync(passwordFile, `${PASSWORD}\r\n`);
  writeFileSync(emptyFile, '\n');
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('resolvePrometheusConfig', () => {
  it.each([
    { name: 'defaults', flagUrl: undefined, env: {}, url: 'http://localhost:9090', timeoutMs: 10_000 },
    {
      name: 'URL from the environment',
      flagUrl: undefined,
      env: { PROMETHEUS_URL: 'http://prom:9090' },
      url: 'http://prom:9090',
      timeoutMs: 10_000,
    },
    {
      name: 'the flag wins over the environment',
      flagUrl: 'https://prom.example/prometheus',
      env: { PROMETHEUS_URL: 'http://prom:9090' },
      url: 'https://prom.example/prometheus',
      timeoutMs: 10_000,
    },
    {
      name: 'an empty variable counts as unset',
      flagUrl: undefined,
      env: { PROMETHEUS_URL: '' },
      url: 'http://localhost:9090',
      timeoutMs: 10_000,
    },
    {
      name: 'timeout as a duration',
      flagUrl: undefined,
      env: { PROMETHEUS_TIMEOUT: '1m30s' },
      url: 'http://localhost:9090',
      timeoutMs: 90_000,
    },
    {
      name: 'timeout in milliseconds',
      flagUrl: undefined,
      env: { PROMETHEUS_TIMEOUT: '750ms' },
      url: 'http://localhost:9090',
      timeoutMs: 750,
    },
  ])('resolves $name', ({ flagUrl, env, url, timeoutMs }) => {
    const c = resolvePrometheusConfig({ ...(flagUrl !== undefined && { flagUrl }), env });
    expect({
      url: c.url,
      timeoutMs: c.timeoutMs,
      bearerToken: c.bearerToken,
      basicAuth: c.basicAuth,
    }).toEqual({
      url,
      timeoutMs,
      bearerToken: undefined,
      basicAuth: undefined,
    });
  });

  it('reads the bearer token from the variable or from a file without its trailing newline', () => {
    expect(resolvePrometheusConfig({ env: { PROMETHEUS_BEARER_TOKEN: TOKEN } }).bearerToken).toBe(TOKEN);
    expect(resolvePrometheusConfig({ env: { PROMETHEUS_BEARER_TOKEN_FILE: tokenFile } }).bearerToken).toBe(
      TOKEN,
    );
  });

  it('reads basic auth with the password from the variable or from a file', () => {
    expect(
      resolvePrometheusConfig({ env: { PROMETHEUS_USERNAME: 'reader', PROMETHEUS_PASSWORD: PASSWORD } })
        .basicAuth,
    ).toEqual({
      username: 'reader',
      password: PASSWORD,
    });
    expect(
      resolvePrometheusConfig({
        env: { PROMETHEUS_USERNAME: 'reader', PROMETHEUS_PASSWORD_FILE: passwordFile },
      }).basicAuth,
    ).toEqual({ username: 'reader', password: PASSWORD });
  });

  it.each([
    {
      name: 'a flag URL that does not parse',
      flagUrl: 'localhost 9090',
      env: {},
      message:
        '--prometheus-url: must be an http(s) URL such as http://prometheus:9090 (got "localhost 9090")',
    },
    {
      name: 'an environment URL with another scheme',
      env: { PROMETHEUS_URL: 'ftp://prom' },
      message: 'PROMETHEUS_URL: must use http or https (got "ftp://prom")',
    },
    {
      name: 'a URL with a query',
      env: { PROMETHEUS_URL: 'http://prom:9090/?x=1' },
      message: 'PROMETHEUS_URL: must not have a query or fragment (got "http://prom:9090/?x=1")',
    },
    {
      name: 'a timeout without unit',
      env: { PROMETHEUS_TIMEOUT: '10' },
      message: 'PROMETHEUS_TIMEOUT: must be a duration such as 10s or 500ms (got "10")',
    },
    {
      name: 'a zero timeout',
      env: { PROMETHEUS_TIMEOUT: '0s' },
      message: 'PROMETHEUS_TIMEOUT: must be between 1ms and 5m (got "0s")',
    },
    {
      name: 'a token and a token file',
      env: { PROMETHEUS_BEARER_TOKEN: TOKEN, PROMETHEUS_BEARER_TOKEN_FILE: '/x' },
      message:
        'PROMETHEUS_BEARER_TOKEN: set at most one of PROMETHEUS_BEARER_TOKEN and PROMETHEUS_BEARER_TOKEN_FILE',
    },
    {
      name: 'a missing token file',
      env: { PROMETHEUS_BEARER_TOKEN_FILE: '/nonexistent/token' },
      message: 'PROMETHEUS_BEARER_TOKEN_FILE: cannot read "/nonexistent/token" (ENOENT)',
    },
    {
      name: 'an empty password file',
      env: { PROMETHEUS_USERNAME: 'reader', PROMETHEUS_PASSWORD_FILE: 'EMPTY' },
      message: 'PROMETHEUS_PASSWORD_FILE: "EMPTY" is empty',
    },
    {
      name: 'a username without password',
      env: { PROMETHEUS_USERNAME: 'reader' },
      message: 'PROMETHEUS_USERNAME: is set but neither PROMETHEUS_PASSWORD nor PROMETHEUS_PASSWORD_FILE is',
    },
    {
      name: 'a password without username',
      env: { PROMETHEUS_PASSWORD: PASSWORD },
      message: 'PROMETHEUS_PASSWORD: is set but PROMETHEUS_USERNAME is not',
    },
    {
      name: 'a token together with basic auth',
      env: { PROMETHEUS_BEARER_TOKEN: TOKEN, PROMETHEUS_USERNAME: 'reader', PROMETHEUS_PASSWORD: PASSWORD },
      message:
        'PROMETHEUS_BEARER_TOKEN: set either a bearer token (PROMETHEUS_BEARER_TOKEN[_FILE]) or basic auth (PROMETHEUS_USERNAME), not both',
    },
  ])('refuses $name with a message naming the setting and never a secret', ({ flagUrl, env, message }) => {
    const resolvedEnv = Object.fromEntries(
      Object.entries(env).map(([k, v]) => [k, v === 'EMPTY' ? emptyFile : v]),
    );
    let caught: unknown;
    try {
      resolvePrometheusConfig({ ...(flagUrl !== undefined && { flagUrl }), env: resolvedEnv });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(PrometheusConfigError);
    expect((caught as Error).message).toBe(message.replace('"EMPTY"', `"${emptyFile}"`));
    expect((caught as Error).message).not.toContain(TOKEN);
    expect((caught as Error).message).not.toContain(PASSWORD);
  });

  it('hides credentials in JSON, toString and util.inspect, including a password in the URL', () => {
    const withToken = resolvePrometheusConfig({
      flagUrl: `http://admin:${PASSWORD}@prom:9090`,
      env: { PROMETHEUS_BEARER_TOKEN_FILE: tokenFile },
    });
    const withBasic = resolvePrometheusConfig({
      env: { PROMETHEUS_USERNAME: 'reader', PROMETHEUS_PASSWORD: PASSWORD },
    });
    for (const c of [withToken, withBasic]) {
      for (const text of [JSON.stringify(c), String(c), inspect(c), JSON.stringify({ config: c })]) {
        expect(text).not.toContain(TOKEN);
        expect(text).not.toContain(PASSWORD);
        expect(text).toContain('[REDACTED]');
      }
    }
    expect(JSON.parse(JSON.stringify(withBasic))).toEqual({
      url: 'http://localhost:9090',
      timeoutMs: 10_000,
      basicAuth: { username: 'reader', password: '[REDACTED]' },
    });
    // The real values stay usable by the code that needs them.
    expect(withToken.bearerToken).toBe(TOKEN);
  });

  it('redacts URL userinfo and leaves plain URLs alone', () => {
    expect(redactUrl(`http://admin:${PASSWORD}@prom:9090/x`)).toBe('http://[REDACTED]@prom:9090/x');
    expect(redactUrl('http://prom:9090')).toBe('http://prom:9090');
    expect(redactUrl(`not a url //u:${PASSWORD}@host`)).toBe('not a url //[REDACTED]@host');
  });
});
