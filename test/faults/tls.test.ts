/**
 * TLS to Prometheus with a private CA: certificates made at test time with openssl, a TLS reverse proxy on
 * 127.0.0.1 in front of the real Prometheus, the production daemon (startService, in this process) and `plan`
 * (through commander, in this process) against the fake API server.
 * The right CA works end to end; a wrong CA, or none, fails closed: the queries fail, nothing is raised, the
 * percentage decays after blindHold, and the messages say it is a certificate problem.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { register as registerPlan } from '../../src/cli/plan.js';
import { PrometheusSignalSource, resolvePrometheusConfig } from '../../src/signals/index.js';
import { FakeApiServer } from '../support/fake-apiserver.js';
import { startPrometheus, type TestPrometheus } from '../support/prometheus.js';
import {
  makeTestCertificates,
  type ReverseProxy,
  startReverseProxy,
  type TestCertificates,
} from '../support/tls.js';
import { waitFor } from '../support/wait.js';
import {
  decisions,
  httpGet,
  mirroredVs,
  mirrorPercentOf,
  patchedPercents,
  policyYaml,
  runCli,
  startDaemon,
  type TestDaemon,
} from './in-process-daemon.js';

const CERTIFICATE_PROBLEM =
  /TLS error: certificate problem \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/;

describe('TLS to Prometheus with a custom CA', () => {
  let certs: TestCertificates;
  let prom: TestPrometheus;
  let api: FakeApiServer;
  let proxy: ReverseProxy;
  let tmp: string;
  const daemons: TestDaemon[] = [];

  beforeAll(async () => {
    [certs, prom, api, tmp] = await Promise.all([
      makeTestCertificates(),
      // In the hold band (CPU at 97.5 % of its guardrail): a healthy daemon holds, so any raise would be a fault's.
      startPrometheus([
        {
          namespace: 'shop',
          workload: 'checkout-shadow',
          requestsPerSecond: 20,
          cpuCores: 0.78,
          cpuRequestCores: 1,
        },
      ]),
      FakeApiServer.start(),
      mkdtemp(join(tmpdir(), 'mirror-autoscaler-tls-test-')),
    ]);
    proxy = await startReverseProxy({
      upstream: prom.url,
      tls: { cert: certs.serverCert, key: certs.serverKey },
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    await proxy?.close();
    await Promise.all([
      prom?.stop(),
      api?.close(),
      certs?.remove(),
      tmp && rm(tmp, { recursive: true, force: true }),
    ]);
  });

  it('right CA (PROMETHEUS_CA_FILE) → every query verified over TLS, signals read, /readyz 200, one "reachable" line', async () => {
    const ns = 'tls-right-ca';
    api.setVirtualService(mirroredVs(ns, 8));
    const before = proxy.requests.length;
    const d = await startDaemon({
      api,
      policy: policyYaml({ namespace: ns }),
      prometheusUrl: proxy.url,
      env: { PROMETHEUS_CA_FILE: certs.caFile, PROMETHEUS_TIMEOUT: '3s' },
    });
    daemons.push(d);
    await waitFor(
      '/readyz 200',
      async () => (await httpGet(`${d.url}/readyz`)).status === 200,
      15_000,
      d.describe,
    );
    const decision = await waitFor(
      'a decision with every signal present',
      () => decisions(d.logs.lines).find((l) => l.absent === undefined),
      10_000,
      d.describe,
    );
    expect(decision).toMatchObject({ action: 'hold', reason: 'WithinTolerance' });
    expect((decision.signals as { cpuUtilization: number }).cpuUtilization).toBeCloseTo(0.78, 2);
    expect(proxy.requests.length).toBeGreaterThan(before);
    expect(proxy.requests.slice(before).every((r) => r.path.startsWith('/api/v1/query'))).toBe(true);
    expect(d.logs.lines.filter((l) => typeof l.prometheus === 'string').map((l) => l.prometheus)).toEqual([
      'reachable',
    ]);
    await d.stop();
    daemons.splice(daemons.indexOf(d), 1);
  });

  it('wrong CA (--prometheus-ca-file) → fails closed: no query reaches Prometheus, no raise, decays to minPercent, /readyz 503 and one log line name the certificate problem', async () => {
    const ns = 'tls-wrong-ca';
    api.setVirtualService(mirroredVs(ns, 8));
    const before = proxy.requests.length;
    const d = await startDaemon({
      api,
      policy: policyYaml({ namespace: ns, min: 1, blindHold: '2s' }),
      prometheusUrl: proxy.url,
      prometheusCaFile: certs.wrongCaFile,
    });
    daemons.push(d);
    const notReady = await waitFor(
      '/readyz 503 naming the certificate problem',
      async () => {
        const r = await httpGet(`${d.url}/readyz`);
        return r.status === 503 && CERTIFICATE_PROBLEM.test(r.body) ? r : undefined;
      },
      15_000,
      d.describe,
    );
    expect(notReady.body).toContain('--prometheus-ca-file');
    await waitFor('decay to minPercent', () => mirrorPercentOf(api, ns) === 1, 15_000, d.describe);

    expect(patchedPercents(api, ns)).toEqual([4, 2, 1]);
    const all = decisions(d.logs.lines);
    expect(all.length).toBeGreaterThanOrEqual(4);
    expect(all.filter((l) => l.action === 'increase')).toEqual([]);
    expect(all.every((l) => l.absent !== undefined)).toBe(true);
    // The handshake is refused: not one request got through to Prometheus.
    expect(proxy.requests.length).toBe(before);
    const lines = d.logs.lines.filter((l) => typeof l.prometheus === 'string');
    expect(lines.map((l) => l.prometheus)).toEqual(['unreachable']);
    expect(String(lines[0]?.msg)).toMatch(CERTIFICATE_PROBLEM);
    expect(d.logs.lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual(lines);
    await d.stop();
    daemons.splice(daemons.indexOf(d), 1);
  });

  it('no CA configured (system roots) against a private CA → fails closed with a certificate error', async () => {
    const source = new PrometheusSignalSource({ url: proxy.url, timeoutMs: 3000 });
    const readings = await source.fetch(
      [
        {
          key: 'checkout',
          namespace: 'shop',
          workload: 'checkout-shadow',
          windowSeconds: 30,
          guardrails: ['cpuUtilization', 'latencyP99Ms'],
          queries: {},
        },
      ],
      prom.now,
    );
    const reading = readings.get('checkout');
    expect(reading?.signals.cpuUtilization).toMatchObject({ kind: 'absent', reason: 'QueryFailed' });
    expect(
      reading?.signals.cpuUtilization?.kind === 'absent' && reading.signals.cpuUtilization.detail,
    ).toMatch(CERTIFICATE_PROBLEM);
    expect(source.status?.state).toBe('unreachable');
  });

  it('plan --prometheus-ca-file: the right CA reads the signals; a wrong CA shows QueryFailed naming the certificate problem, and proposes no raise', async () => {
    const ns = 'tls-plan';
    api.setVirtualService(mirroredVs(ns, 8));
    const dir = await mkdtemp(join(tmp, 'policies-'));
    await writeFile(join(dir, 'checkout.yaml'), policyYaml({ namespace: ns }));
    const kubeconfig = await api.writeKubeconfig();
    const plan = (caFile: string) =>
      runCli(
        [
          'plan',
          '--policies',
          dir,
          '--kubeconfig',
          kubeconfig,
          '--prometheus-url',
          proxy.url,
          '--prometheus-ca-file',
          caFile,
          '--output',
          'json',
        ],
        registerPlan,
      );

    const right = await plan(certs.caFile);
    expect(right.exitCode, right.stderr).toBe(0);
    const ok = JSON.parse(right.stdout.trim()) as { signals: Record<string, unknown>; action: string };
    expect(ok.signals).toMatchObject({ cpuUtilization: expect.closeTo(0.78, 2) });
    expect(ok.action).toBe('hold');

    const wrong = await plan(certs.wrongCaFile);
    const blind = JSON.parse(wrong.stdout.trim()) as {
      absent: Record<string, unknown>;
      action: string;
      reason: string;
      message: string;
    };
    expect(blind.action).toBe('hold');
    expect(blind.reason).toBe('NoData');
    expect(blind.absent).toEqual({
      cpuUtilization: 'QueryFailed',
      errorRate: 'QueryFailed',
      latencyP99Ms: 'QueryFailed',
    });
    expect(blind.message).toMatch(CERTIFICATE_PROBLEM);
    // plan logs at warn on stderr: the one line of the state change says what is wrong.
    expect(wrong.stderr).toMatch(CERTIFICATE_PROBLEM);
    expect(wrong.stderr.split('\n').filter((l) => l.includes('certificate problem'))).toHaveLength(1);
    expect(patchedPercents(api, ns)).toEqual([]);
  });

  const configRows: {
    name: string;
    flagCaFile?: string;
    env: Record<string, string>;
    url: string;
    error: RegExp;
  }[] = [
    {
      name: 'CA file missing',
      env: { PROMETHEUS_CA_FILE: '/nonexistent/ca.crt' },
      url: 'https://prometheus:9090',
      error: /^PROMETHEUS_CA_FILE: cannot read "\/nonexistent\/ca\.crt" \(ENOENT\)$/,
    },
    {
      name: 'CA file without a PEM certificate',
      flagCaFile: 'NOT_PEM',
      env: {},
      url: 'https://prometheus:9090',
      error: /^--prometheus-ca-file: ".*not-pem\.txt" holds no PEM certificate/,
    },
    {
      name: 'CA file for a plain-HTTP URL',
      env: { PROMETHEUS_CA_FILE: 'CA' },
      url: 'http://prometheus:9090',
      error:
        /^PROMETHEUS_CA_FILE: is set but the Prometheus URL is not https \(got "http:\/\/prometheus:9090"\)$/,
    },
  ];
  for (const row of configRows) {
    it(`configuration error: ${row.name} → refused at start with the setting named`, async () => {
      const notPem = join(tmp, 'not-pem.txt');
      await writeFile(notPem, 'hello\n');
      const fix = (v: string) => (v === 'NOT_PEM' ? notPem : v === 'CA' ? certs.caFile : v);
      const env = Object.fromEntries(Object.entries(row.env).map(([k, v]) => [k, fix(v)]));
      expect(() =>
        resolvePrometheusConfig({
          flagUrl: row.url,
          ...(row.flagCaFile !== undefined && { flagCaFile: fix(row.flagCaFile) }),
          env,
        }),
      ).toThrow(row.error);
    });
  }
});
