/**
 * An in-process daemon for fault tests: the real Daemon, KubernetesRouteStore, EventRecorder, metrics and
 * policies from YAML, against the fake API server through the real @kubernetes/client-node. Cycles run when
 * the test calls `cycle()`, on a clock that advances by the interval each time, so a test sees every cycle
 * and waits for nothing but the API server. Signals come from a SignalSource stub (the Prometheus side of
 * the fault matrix has tests of its own); `signals.reading` picks what every policy sees.
 */
import { Writable } from 'node:stream';
import { createLogger } from '../../src/daemon/audit.js';
import type { PolicyOutcome } from '../../src/daemon/cycle.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { DaemonMetrics } from '../../src/daemon/metrics.js';
import { eventForOutcome } from '../../src/daemon/outcome.js';
import { EventRecorder } from '../../src/mesh/events.js';
import { type BackoffPolicy, KubernetesRouteStore } from '../../src/mesh/index.js';
import { formatProblem, parsePolicy } from '../../src/policy/index.js';
import type { MirrorPolicy } from '../../src/policy/types.js';
import type { SignalReading, SignalRequest, SignalSource } from '../../src/signals/index.js';
import { EVENTS, type FakeApiServer, type JsonObject } from '../support/fake-apiserver.js';
import { PRIMARY_ROUTE, virtualService } from '../support/kube-fixtures.js';

/** Short waits so that a whole fault test stays within a second or two. */
export const FAST_BACKOFF: BackoffPolicy = {
  maxAttempts: 4,
  baseDelayMs: 40,
  maxDelayMs: 400,
  maxTotalMs: 3000,
  jitter: 0.5,
};

export const INTERVAL_MS = 30_000;

/** Well below every guardrail (CPU 0.2/0.8, 5xx 0.2 %, p99 100 ms): room to raise. */
export const HEALTHY: SignalReading = {
  signals: {
    cpuUtilization: { kind: 'value', value: 0.2 },
    errorRate: { kind: 'value', value: 0.002 },
    latencyP99Ms: { kind: 'value', value: 100 },
  },
  requestRate: { kind: 'value', value: 40 },
};

/** The SignalSource port answering every policy with `reading`. */
export class StubSignals implements SignalSource {
  reading: SignalReading = HEALTHY;
  async fetch(requests: readonly SignalRequest[]): Promise<Map<string, SignalReading>> {
    return new Map(requests.map((r) => [r.key, this.reading]));
  }
}

export interface PolicyInit {
  readonly name: string;
  readonly namespace: string;
  readonly vs?: string;
  readonly min?: number;
  readonly max?: number;
}

/** A MirrorPolicy as its YAML file says it, through the real parser and validator. */
export function policyYaml(init: PolicyInit): string {
  return `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: ${init.name}
spec:
  virtualService:
    name: ${init.vs ?? init.name}
    namespace: ${init.namespace}
    route: primary
  target:
    host: checkout-shadow
    workload: checkout-shadow
    namespace: shop
  bounds:
    minPercent: ${init.min ?? 1}
    maxPercent: ${init.max ?? 100}
  guardrails:
    cpuUtilization: 0.8
    errorRate: 0.05
    latencyP99Ms: 500
  interval: 30s
  window: 2m
`;
}

export function policy(init: PolicyInit): MirrorPolicy {
  const { policy: parsed, problems } = parsePolicy(policyYaml(init), `${init.name}.yaml`);
  if (parsed === undefined) throw new Error(problems.map(formatProblem).join('\n'));
  return parsed;
}

/** A VirtualService whose route "primary" mirrors `percent` % to checkout-shadow. */
export function mirroredVs(namespace: string, name: string, percent: number): JsonObject {
  return virtualService({
    namespace,
    name,
    hosts: [name],
    http: [
      {
        name: 'primary',
        ...PRIMARY_ROUTE,
        mirror: { host: 'checkout-shadow' },
        mirrorPercentage: { value: percent },
      },
    ],
  });
}

export function percentOf(obj: JsonObject | undefined): number | undefined {
  const spec = obj?.spec as { http?: { mirrorPercentage?: { value?: number } }[] } | undefined;
  return spec?.http?.[0]?.mirrorPercentage?.value;
}

export function annotationsOf(obj: JsonObject | undefined): Record<string, string> {
  return (obj?.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {};
}

export function labelsOf(obj: JsonObject | undefined): Record<string, string> {
  return (obj?.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {};
}

/** A pino destination that keeps every JSON line. */
export function captureLog(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      for (const line of String(chunk).split('\n')) {
        if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      done();
    },
  });
  return { lines, stream };
}

/** The daemon as startService wires it (events, metrics), minus scheduling and the Lease. */
export class InProcessDaemon {
  readonly signals = new StubSignals();
  readonly metrics = new DaemonMetrics();
  readonly log = captureLog();
  readonly routes: KubernetesRouteStore;
  readonly daemon: Daemon;
  /** Every outcome of every cycle, in order. */
  readonly history: PolicyOutcome[][] = [];
  private readonly events: EventRecorder;
  private readonly pending: Promise<unknown>[] = [];
  now: number = Date.UTC(2026, 2, 1, 12, 0, 0);

  constructor(
    readonly api: FakeApiServer,
    policies: readonly MirrorPolicy[],
    options: { token?: string; requestTimeoutMs?: number } = {},
  ) {
    const kc = api.kubeConfig(options.token === undefined ? {} : { token: options.token });
    const logger = createLogger({ level: 'debug', destination: this.log.stream });
    this.routes = new KubernetesRouteStore(kc, {
      backoff: FAST_BACKOFF,
      requestTimeoutMs: options.requestTimeoutMs ?? 2000,
      onApiError: (e) => this.metrics.recordKubernetesFailure(e),
    });
    this.events = new EventRecorder(kc, { logger, now: () => this.now });
    this.daemon = new Daemon(
      policies,
      {
        signals: this.signals,
        routes: this.routes,
        now: () => this.now,
        logger,
        onCycle: (outcomes, durationMs) => {
          this.metrics.recordCycle(outcomes, durationMs / 1000, this.now);
          for (const o of outcomes) {
            const spec = eventForOutcome(o);
            if (spec !== undefined && o.object !== undefined)
              this.pending.push(this.events.record(o.object, spec));
          }
        },
      },
      { dryRun: false },
    );
  }

  /** One cycle of every policy, then the clock moves on by one interval; waits for its Events too. */
  async cycle(): Promise<Map<string, PolicyOutcome>> {
    const outcomes = await this.daemon.runBatch();
    await Promise.all(this.pending.splice(0));
    this.history.push(outcomes);
    this.now += INTERVAL_MS;
    return new Map(outcomes.map((o) => [o.policy, o]));
  }

  /** Reasons of the Events recorded on a VirtualService. */
  eventReasons(namespace: string, name: string): string[] {
    return this.api
      .listObjects(EVENTS, namespace)
      .filter((e) => (e.involvedObject as { name?: string } | undefined)?.name === name)
      .map((e) => String(e.reason));
  }

  /** The metrics exposition text. */
  exposition(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
