/**
 * Fault matrix, Prometheus side: the production daemon (startService, in this process) against the real
 * Prometheus behind a proxy that breaks on demand, and the fake API server. Each test is one row
 * "fault → expected behaviour":
 *
 * - the shadow sits in the hold band (CPU at 97.5 % of its guardrail), so a healthy daemon holds and a daemon
 *   that mistook a fault for headroom would raise: a raise while blind is visible;
 * - while blind: no increase is decided or written; after blindHold (2 s here) the percentage halves each
 *   cycle down to minPercent;
 * - /readyz answers 503 naming the cause, and 200 again once Prometheus is back;
 * - exactly one log line per change of Prometheus' state, and no other warning, however many cycles pass;
 * - recovery needs nobody: the next cycles read usable signals again.
 *
 * The rows run concurrently (each on its own namespace, proxy and daemon), so the file takes ~15 s.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { FakeApiServer } from '../support/fake-apiserver.js';
import {
  FUTURE_SECONDS,
  startPrometheus,
  type TestPrometheus,
  type WorkloadData,
} from '../support/prometheus.js';
import { type ProxyAction, type ReverseProxy, startReverseProxy } from '../support/tls.js';
import { waitFor } from '../support/wait.js';
import {
  decisions,
  httpGet,
  type LogLine,
  mirroredVs,
  mirrorPercentOf,
  patchedPercents,
  policyYaml,
  startDaemon,
  type TestDaemon,
} from './in-process-daemon.js';

/** A healthy shadow in the hold band: 20 req/s, 20 ms, no 5xx, CPU 0.78 of 1 core against a 0.8 guardrail. */
const SHADOW: WorkloadData = {
  namespace: 'shop',
  workload: 'checkout-shadow',
  requestsPerSecond: 20,
  cpuCores: 0.78,
  cpuRequestCores: 1,
};
const START_PERCENT = 8;
const MIN_PERCENT = 1;

type Mode =
  | 'pass'
  | 'hang'
  | 'http500'
  | 'http503'
  | 'truncated'
  | 'matrix'
  | 'duplicated'
  | 'nan'
  | 'inf'
  | 'stale';

interface PromJson {
  status: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };
}

/** Rewrites every sample of a vector answer. */
function rewriteVector(f: (data: NonNullable<PromJson['data']>) => void): (body: string) => string {
  return (body) => {
    const json = JSON.parse(body) as PromJson;
    if (json.data?.resultType === 'vector') f(json.data);
    return JSON.stringify(json);
  };
}

function setEvery(data: NonNullable<PromJson['data']>, value: string): void {
  for (const s of data.result) s.value[1] = value;
}

function action(mode: Mode, stale: TestPrometheus): ProxyAction {
  switch (mode) {
    case 'pass':
      return { kind: 'forward' };
    case 'hang':
      return { kind: 'hang' };
    case 'http500':
      return {
        kind: 'respond',
        status: 500,
        body: JSON.stringify({ status: 'error', errorType: 'internal', error: 'query processing failed' }),
      };
    case 'http503':
      return {
        kind: 'respond',
        status: 503,
        contentType: 'text/plain',
        body: 'upstream connect error or disconnect/reset before headers',
      };
    case 'truncated':
      return { kind: 'forward', rewrite: (body) => body.slice(0, Math.floor(body.length / 2)) };
    case 'matrix':
      return {
        kind: 'forward',
        rewrite: (body) => {
          const json = JSON.parse(body) as {
            data?: { resultType: string; result: { value?: unknown; values?: unknown }[] };
          };
          if (json.data !== undefined) {
            json.data.resultType = 'matrix';
            for (const s of json.data.result) {
              s.values = [s.value];
              delete s.value;
            }
          }
          return JSON.stringify(json);
        },
      };
    case 'duplicated':
      // What two Prometheus servers merged by a careless proxy look like: each series twice, one of them idle.
      return {
        kind: 'forward',
        rewrite: rewriteVector((d) => {
          d.result = d.result.flatMap((s) => [
            s,
            { metric: { ...s.metric, replica: 'b' }, value: [s.value[0], '0'] },
          ]);
        }),
      };
    case 'nan':
      return {
        kind: 'forward',
        rewrite: rewriteVector((d) => setEvery(d, 'NaN')),
      };
    case 'inf':
      return {
        kind: 'forward',
        rewrite: rewriteVector((d) => setEvery(d, '+Inf')),
      };
    case 'stale':
      // A real Prometheus whose scrapes of the shadow stopped four minutes ago.
      return { kind: 'forward', upstream: stale.url };
  }
}

interface Fault {
  /** The row: "fault → expected behaviour". */
  readonly title: string;
  /** Namespace of its VirtualService. */
  readonly ns: string;
  /** How it breaks; `down` stops the proxy listening. */
  readonly mode: Exclude<Mode, 'pass'> | 'down';
  /** Broken before the daemon starts. */
  readonly atStart?: boolean;
  /** The state the daemon must log and report. */
  readonly state: 'unreachable' | 'unusable';
  /** What /readyz and the log line must say about the cause. */
  readonly cause: RegExp;
}

const BLIND =
  'no increase while blind, decays to minPercent after blindHold, /readyz 503, recovers by itself';

const FAULTS: readonly Fault[] = [
  {
    title: `Prometheus down at start → ${BLIND}; one log line per state change`,
    ns: 'fault-down-at-start',
    mode: 'down',
    atStart: true,
    state: 'unreachable',
    cause: /network error: .*ECONNREFUSED/,
  },
  {
    title: `Prometheus goes down mid-run → ${BLIND}; one log line per state change`,
    ns: 'fault-down-mid-run',
    mode: 'down',
    state: 'unreachable',
    cause: /network error: .*ECONNREFUSED/,
  },
  {
    title: `Prometheus slower than PROMETHEUS_TIMEOUT → ${BLIND}; one log line per state change`,
    ns: 'fault-slow',
    mode: 'hang',
    state: 'unreachable',
    cause: /timed out after 1500 ms/,
  },
  {
    title: `Prometheus answers HTTP 500 → ${BLIND}; one log line per state change`,
    ns: 'fault-http500',
    mode: 'http500',
    state: 'unusable',
    cause: /HTTP 500: query processing failed/,
  },
  {
    title: `Prometheus (or its gateway) answers HTTP 503 → ${BLIND}; one log line per state change`,
    ns: 'fault-http503',
    mode: 'http503',
    state: 'unreachable',
    cause: /HTTP 503: non-JSON body/,
  },
  {
    title: `Prometheus answers malformed JSON → ${BLIND}; one log line per state change`,
    ns: 'fault-malformed',
    mode: 'truncated',
    state: 'unusable',
    cause: /malformed response/,
  },
  {
    title: `Prometheus answers a matrix where a vector was expected → ${BLIND}; one log line per state change`,
    ns: 'fault-matrix',
    mode: 'matrix',
    state: 'unusable',
    cause: /expected a vector or scalar result, got matrix/,
  },
  {
    title: `Prometheus answers several series where one was expected → ${BLIND}; one log line per state change`,
    ns: 'fault-duplicated',
    mode: 'duplicated',
    state: 'unusable',
    cause: /several series for shop\/checkout-shadow/,
  },
  {
    title: `Prometheus answers NaN → ${BLIND}; one log line per state change`,
    ns: 'fault-nan',
    mode: 'nan',
    state: 'unusable',
    cause: /not a finite|no finite timestamp/,
  },
  {
    title: `Prometheus answers +Inf → ${BLIND}; one log line per state change`,
    ns: 'fault-inf',
    mode: 'inf',
    state: 'unusable',
    cause: /not a finite|no finite timestamp/,
  },
  {
    title: `Prometheus' samples are stale (scrapes stopped) → ${BLIND}; one log line per state change`,
    ns: 'fault-stale',
    mode: 'stale',
    state: 'unusable',
    cause: /Stale: newest \S+ sample for shop\/checkout-shadow is \d+ s old/,
  },
];

/** The lines the Prometheus status tracker wrote (they carry the `prometheus` state field). */
function transitions(logs: readonly LogLine[]): LogLine[] {
  return logs.filter((l) => typeof l.prometheus === 'string');
}

describe.concurrent('Prometheus faults: the daemon fails toward less mirroring and recovers by itself', () => {
  let prom: TestPrometheus;
  let stale: TestPrometheus;
  let api: FakeApiServer;
  const proxies: ReverseProxy[] = [];
  const daemons: TestDaemon[] = [];

  beforeAll(async () => {
    [prom, stale, api] = await Promise.all([
      startPrometheus([SHADOW]),
      startPrometheus([{ ...SHADOW, gaps: [{ fromSeconds: -240, toSeconds: FUTURE_SECONDS }] }]),
      FakeApiServer.start(),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all([prom?.stop(), stale?.stop(), api?.close()]);
  });

  for (const fault of FAULTS) {
    it(fault.title, { timeout: 40_000 }, async ({ expect }) => {
      const { ns } = fault;
      api.setVirtualService(mirroredVs(ns, START_PERCENT));
      let mode: Mode = 'pass';
      const proxy = await startReverseProxy({
        upstream: prom.url,
        handle: () => action(mode, stale),
        listening: !(fault.atStart === true && fault.mode === 'down'),
      });
      proxies.push(proxy);
      const breakIt = async () => {
        if (fault.mode === 'down') await proxy.stopListening();
        else mode = fault.mode;
      };
      const heal = async () => {
        mode = 'pass';
        await proxy.listen();
      };
      if (fault.atStart === true) await breakIt();

      const d = await startDaemon({
        api,
        policy: policyYaml({ namespace: ns, min: MIN_PERCENT, max: 50, blindHold: '2s' }),
        prometheusUrl: proxy.url,
        // Generous for a loaded test machine (eleven daemons share it), except where the timeout is the fault.
        env: { PROMETHEUS_TIMEOUT: fault.mode === 'hang' ? '1500ms' : '3s' },
      });
      daemons.push(d);
      const logs = d.logs.lines;
      const readyz = () => httpGet(`${d.url}/readyz`);

      let faultFrom = 0;
      if (fault.atStart !== true) {
        // Healthy first: ready, and a decision on a full set of signals (a hold: the shadow is in the hold band).
        await waitFor(
          '/readyz 200 while healthy',
          async () => (await readyz()).status === 200,
          10_000,
          d.describe,
        );
        const healthy = await waitFor(
          'a decision with every signal present',
          () => decisions(logs).find((l) => l.absent === undefined),
          10_000,
          d.describe,
        );
        expect(healthy).toMatchObject({ action: 'hold', reason: 'WithinTolerance' });
        faultFrom = logs.length;
        await breakIt();
      }

      const notReady = await waitFor(
        `/readyz 503 naming ${fault.cause}`,
        async () => {
          const r = await readyz();
          return r.status === 503 && fault.cause.test(r.body) ? r : undefined;
        },
        10_000,
        d.describe,
      );
      expect(notReady.body).toContain('Prometheus');

      // After blindHold the percentage halves every cycle: 8 -> 4 -> 2 -> 1 (minPercent), then stays there.
      await waitFor(
        `the mirror percentage of ${ns}/checkout to reach minPercent`,
        () => mirrorPercentOf(api, ns) === MIN_PERCENT,
        15_000,
        d.describe,
      );
      const blindCycles = await waitFor(
        'two more cycles at minPercent',
        () => {
          const list = decisions(logs, faultFrom).filter((l) => l.reason === 'AtBound');
          return list.length >= 2 ? decisions(logs, faultFrom).length : undefined;
        },
        10_000,
        d.describe,
      );
      const healFrom = logs.length;
      await heal();

      await waitFor(
        '/readyz 200 once Prometheus is back',
        async () => (await readyz()).status === 200,
        10_000,
        d.describe,
      );
      const recovered = await waitFor(
        'a decision with every signal present again',
        () => decisions(logs, healFrom).find((l) => l.absent === undefined),
        10_000,
        d.describe,
      );

      // While blind: never an increase, and the only writes are the decays, each lower than the one before.
      const blind = decisions(logs, faultFrom).filter((l) => l.absent !== undefined);
      expect(blind.length).toBeGreaterThanOrEqual(4);
      expect(blind.filter((l) => l.action === 'increase')).toEqual([]);
      for (const l of blind) expect(['NoData', 'BlindDecay', 'AtBound']).toContain(l.reason);
      expect(blind.some((l) => l.reason === 'BlindDecay')).toBe(true);
      const written = patchedPercents(api, ns);
      expect(written).toEqual([4, 2, 1]);
      // After recovery the data of the outage still fills the rate window: it holds rather than raising at once.
      expect(recovered.action).not.toBe('increase');

      // One line per change of state, whatever the number of cycles in between; no other warning at all.
      const states = transitions(logs).map((l) => l.prometheus);
      expect(states, JSON.stringify(transitions(logs), null, 1)).toEqual(
        fault.atStart === true ? [fault.state, 'reachable'] : ['reachable', fault.state, 'reachable'],
      );
      const down = transitions(logs).find((l) => l.prometheus === fault.state);
      expect(down?.level).toBe('warn');
      expect(String(down?.msg)).toMatch(fault.cause);
      expect(transitions(logs).at(-1)?.msg).toMatch(
        new RegExp(`^Prometheus reachable again after \\d+ s ${fault.state}$`),
      );
      expect(blindCycles).toBeGreaterThanOrEqual(5);
      const warnings = logs.filter((l) => l.level === 'warn' || l.level === 'error');
      expect(warnings).toEqual([down]);
    });
  }
});
