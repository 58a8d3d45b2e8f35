/**
 * Secrets never leak: the Prometheus bearer token, the basic-auth password and the kubeconfig token are each a
 * unique marker; the daemon (startService, in this process) and `plan` (through commander, in this process)
 * run with them against the real Prometheus behind an authenticating proxy and the fake API server, with
 * failures forced (401 from a proxy that repeats the credentials it refused, 401 from the API server after the
 * token is revoked). Every log line, every error message, /metrics, /readyz and plan's output are searched for
 * each marker and the encodings it travels in (base64 of user:password).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register as registerPlan } from '../../src/cli/plan.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { startPrometheus, type TestPrometheus } from '../support/prometheus.js';
import {
  type ProxiedRequest,
  type ProxyAction,
  type ReverseProxy,
  startReverseProxy,
} from '../support/tls.js';
import { waitFor } from '../support/wait.js';
import { decisions, httpGet, mirroredVs, policyYaml, runCli, startDaemon } from './in-process-daemon.js';

const marker = (what: string) => `${what}-${randomBytes(8).toString('hex')}`;
const PROM_TOKEN = marker('promtoken');
const PROM_PASSWORD = marker('prompassword');
const PROM_WRONG_PASSWORD = marker('promwrongpassword');
const KUBE_TOKEN = marker('kubetoken');
const KUBE_REVOKED_TOKEN = marker('kuberevokedtoken');
const URL_PASSWORD = marker('urlpassword');
const USER = 'mirror-autoscaler';

const basic = (password: string) => Buffer.from(`${USER}:${password}`).toString('base64');

/** Every marker in every form it can take on the wire. */
const FORBIDDEN = [
  PROM_TOKEN,
  PROM_PASSWORD,
  PROM_WRONG_PASSWORD,
  basic(PROM_PASSWORD),
  basic(PROM_WRONG_PASSWORD),
  KUBE_TOKEN,
  KUBE_REVOKED_TOKEN,
  URL_PASSWORD,
  basic(URL_PASSWORD),
];

function expectNoSecret(where: string, text: string): void {
  for (const secret of FORBIDDEN) {
    expect(text.includes(secret), `${where} contains the secret ${secret}`).toBe(false);
  }
}

/**
 * An authenticating proxy in front of Prometheus that accepts `accepted` Authorization values and answers 401
 * repeating what it received otherwise, as a careless gateway would.
 */
function authenticate(accepted: () => readonly string[]): (req: ProxiedRequest) => ProxyAction {
  return (req) => {
    const got = req.headers.authorization ?? '';
    if (accepted().includes(got)) return { kind: 'forward' };
    return {
      kind: 'respond',
      status: 401,
      body: JSON.stringify({
        status: 'error',
        errorType: 'unauthorized',
        error: `rejected credentials "${got}"`,
      }),
    };
  };
}

describe('secrets never appear in logs, errors, metrics or plan output', () => {
  let prom: TestPrometheus;
  let api: FakeApiServer;
  let proxy: ReverseProxy;
  let tmp: string;
  let accepted: string[] = [];

  beforeAll(async () => {
    [prom, api, tmp] = await Promise.all([
      startPrometheus([
        {
          namespace: 'shop',
          workload: 'checkout-shadow',
          requestsPerSecond: 20,
          cpuCores: 0.3,
          cpuRequestCores: 1,
        },
      ]),
      FakeApiServer.start({ token: KUBE_TOKEN }),
      mkdtemp(join(tmpdir(), 'mirror-autoscaler-secrets-')),
    ]);
    proxy = await startReverseProxy({ upstream: prom.url, handle: authenticate(() => accepted) });
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    await Promise.all([prom?.stop(), api?.close(), tmp && rm(tmp, { recursive: true, force: true })]);
  });

  it('daemon with a Prometheus bearer token and a kubeconfig token, then both revoked (Prometheus 401 repeating the token, API 401) → no secret in any log line, error, /metrics or /readyz', async () => {
    const ns = 'secrets-bearer';
    api.setToken(KUBE_TOKEN);
    api.setVirtualService(mirroredVs(ns, 10));
    accepted = [`Bearer ${PROM_TOKEN}`];
    const d = await startDaemon({
      api,
      policy: policyYaml({ namespace: ns }),
      prometheusUrl: proxy.url,
      env: { PROMETHEUS_BEARER_TOKEN: PROM_TOKEN, PROMETHEUS_TIMEOUT: '3s' },
      kubeToken: KUBE_TOKEN,
      // The Lease too: its renewals fail once the token is revoked, and those errors are logged.
      leaseName: 'secrets-bearer',
    });
    try {
      await waitFor(
        '/readyz 200',
        async () => (await httpGet(`${d.url}/readyz`)).status === 200,
        15_000,
        d.describe,
      );
      // The token reached Prometheus (so the test would see a leak of it), and the signals were read.
      expect(proxy.requests.some((r) => r.headers.authorization === `Bearer ${PROM_TOKEN}`)).toBe(true);
      await waitFor(
        'a decision with signals',
        () => decisions(d.logs.lines).find((l) => l.absent === undefined),
        10_000,
        d.describe,
      );
      await waitFor(
        'leading',
        () => d.logs.lines.some((l) => l.msg === 'leading: writes enabled'),
        10_000,
        d.describe,
      );
      const healthyMetrics = await httpGet(`${d.url}/metrics`);

      // Both credentials revoked: Prometheus' gateway answers 401 quoting the token; the API server answers 401.
      accepted = [];
      api.setToken(marker('another-token'));
      const from = d.logs.lines.length;
      const notReady = await waitFor(
        '/readyz 503 for both',
        async () => {
          const r = await httpGet(`${d.url}/readyz`);
          return r.status === 503 &&
            r.body.includes('HTTP 401') &&
            r.body.includes('listing VirtualServices failed')
            ? r
            : undefined;
        },
        15_000,
        d.describe,
      );
      // The failures are reported (so a leak would have had its chance), with the secret replaced.
      const problem = d.logs.lines.slice(from).find((l) => l.prometheus === 'unusable');
      expect(String(problem?.msg)).toContain('rejected credentials "Bearer [REDACTED]"');
      const apiErrors = d.logs.lines
        .slice(from)
        .filter((l) => typeof l.error === 'string' && /401|Unauthorized/.test(String(l.error)));
      expect(apiErrors.length).toBeGreaterThan(0);
      await waitFor(
        'the lease to be lost',
        () => d.logs.lines.slice(from).some((l) => l.msg === 'not leading: evaluating without writing'),
        10_000,
        d.describe,
      );
      const metrics = await httpGet(`${d.url}/metrics`);

      expectNoSecret('the log lines', d.logs.raw);
      expectNoSecret('/readyz', notReady.body);
      expectNoSecret('/metrics while healthy', healthyMetrics.body);
      expectNoSecret('/metrics after the 401s', metrics.body);
    } finally {
      await d.stop();
    }
    // Stopping logs too.
    expectNoSecret('the log lines after stop', d.logs.raw);
  });

  it('daemon with a wrong basic-auth password (401 repeating the Authorization header) and a revoked kubeconfig token from the start → no secret anywhere', async () => {
    const ns = 'secrets-basic';
    api.setToken(KUBE_TOKEN);
    api.setVirtualService(mirroredVs(ns, 10));
    accepted = [`Basic ${basic(PROM_PASSWORD)}`];
    const d = await startDaemon({
      api,
      policy: policyYaml({ namespace: ns }),
      prometheusUrl: proxy.url,
      env: { PROMETHEUS_USERNAME: USER, PROMETHEUS_PASSWORD: PROM_WRONG_PASSWORD, PROMETHEUS_TIMEOUT: '3s' },
      kubeToken: KUBE_REVOKED_TOKEN,
    });
    try {
      const notReady = await waitFor(
        '/readyz 503 for Prometheus and the API server',
        async () => {
          const r = await httpGet(`${d.url}/readyz`);
          return r.status === 503 &&
            r.body.includes('HTTP 401') &&
            r.body.includes('listing VirtualServices failed')
            ? r
            : undefined;
        },
        15_000,
        d.describe,
      );
      expect(
        proxy.requests.some((r) => r.headers.authorization === `Basic ${basic(PROM_WRONG_PASSWORD)}`),
      ).toBe(true);
      const problem = d.logs.lines.find((l) => l.prometheus === 'unusable');
      expect(String(problem?.msg)).toContain('rejected credentials "Basic [REDACTED]"');
      const metrics = await httpGet(`${d.url}/metrics`);
      expectNoSecret('the log lines', d.logs.raw);
      expectNoSecret('/readyz', notReady.body);
      expectNoSecret('/metrics', metrics.body);
    } finally {
      await d.stop();
    }
  });

  it('plan with a bearer token and a kubeconfig token, and with a wrong password and a revoked token → no secret in its table, JSON, errors or logs', async () => {
    const ns = 'secrets-plan';
    api.setToken(KUBE_TOKEN);
    api.setVirtualService(mirroredVs(ns, 10));
    accepted = [`Bearer ${PROM_TOKEN}`];
    const dir = await mkdtemp(join(tmp, 'policies-'));
    await writeFile(join(dir, 'checkout.yaml'), policyYaml({ namespace: ns }));
    const goodKubeconfig = await api.writeKubeconfig({ token: KUBE_TOKEN });
    const revokedKubeconfig = await api.writeKubeconfig({ token: KUBE_REVOKED_TOKEN });
    const saved = { ...process.env };
    const plan = async (
      env: Record<string, string>,
      kubeconfig: string,
      output: 'table' | 'json',
      url = proxy.url,
    ) => {
      for (const k of Object.keys(process.env)) if (k.startsWith('PROMETHEUS_')) delete process.env[k];
      Object.assign(process.env, env, { LOG_LEVEL: 'debug' });
      try {
        return await runCli(
          [
            'plan',
            '--policies',
            dir,
            '--kubeconfig',
            kubeconfig,
            '--prometheus-url',
            url,
            '--output',
            output,
          ],
          registerPlan,
        );
      } finally {
        for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
        Object.assign(process.env, saved);
      }
    };

    const runs = [
      await plan({ PROMETHEUS_BEARER_TOKEN: PROM_TOKEN }, goodKubeconfig, 'table'),
      await plan({ PROMETHEUS_BEARER_TOKEN: PROM_TOKEN }, goodKubeconfig, 'json'),
      await plan(
        { PROMETHEUS_USERNAME: USER, PROMETHEUS_PASSWORD: PROM_WRONG_PASSWORD },
        revokedKubeconfig,
        'table',
      ),
      await plan(
        { PROMETHEUS_USERNAME: USER, PROMETHEUS_PASSWORD: PROM_WRONG_PASSWORD },
        revokedKubeconfig,
        'json',
      ),
      // Credentials in the URL's userinfo, refused by the gateway.
      await plan({}, goodKubeconfig, 'json', proxy.url.replace('//', `//${USER}:${URL_PASSWORD}@`)),
    ];
    // The good runs evaluated the policy with real signals; the bad ones failed, and said why.
    expect(runs[0]?.exitCode, runs[0]?.stderr).toBe(0);
    expect(runs[0]?.stdout).toMatch(/checkout\s+VirtualService\s+secrets-plan\/checkout/);
    expect(JSON.parse(runs[1]?.stdout ?? '')).toMatchObject({ policy: 'checkout', absent: {} });
    expect(runs[2]?.exitCode).toBe(1);
    expect(runs[3]?.stdout).toContain('listing VirtualServices failed');
    expect(runs[3]?.stderr).toContain('rejected credentials \\"Basic [REDACTED]\\"');
    expect(proxy.requests.some((r) => r.headers.authorization === `Basic ${basic(URL_PASSWORD)}`)).toBe(true);
    expect(runs[4]?.stdout).toContain('QueryFailed');
    for (const [i, r] of runs.entries()) {
      expectNoSecret(`plan run ${i} stdout`, r.stdout);
      expectNoSecret(`plan run ${i} stderr`, r.stderr);
    }
  });
});
