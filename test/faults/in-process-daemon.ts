/**
 * Shared by the Prometheus fault, TLS and secrets tests: the production daemon (startService) in this process,
 * with its JSON log lines captured, against the fake API server and Prometheus behind a proxy.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Command } from 'commander';
import { createLogger } from '../../src/daemon/audit.js';
import { type RunningService, startService } from '../../src/daemon/service.js';
import { loadPolicyDir } from '../../src/policy/index.js';
import type { FakeApiServer, JsonObject } from '../support/fake-apiserver.js';
import { PRIMARY_ROUTE, virtualService } from '../support/kube-fixtures.js';

export type LogLine = Record<string, unknown>;

/** A pino-compatible destination that keeps every line, parsed. */
export class LogCapture extends Writable {
  readonly lines: LogLine[] = [];
  /** Every byte written, for "does this text appear anywhere" checks. */
  raw = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    const text = chunk.toString();
    this.raw += text;
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.lines.push({ unparsed: line });
      }
    }
    done();
  }
}

/** GET with a 3 s bound. */
export async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: res.status, body: await res.text() };
}

/** A policy on VirtualService NS/checkout mirroring to checkout-shadow (workload in namespace shop). */
export function policyYaml(o: {
  namespace: string;
  min?: number;
  max?: number;
  blindHold?: string;
  interval?: string;
  window?: string;
}): string {
  return `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: checkout
spec:
  virtualService: { name: checkout, namespace: ${o.namespace} }
  target:
    host: checkout-shadow
    workload: checkout-shadow
    namespace: shop
  bounds: { minPercent: ${o.min ?? 1}, maxPercent: ${o.max ?? 50} }
  guardrails:
    cpuUtilization: 0.8
    errorRate: 0.05
    latencyP99Ms: 500
  interval: ${o.interval ?? '1s'}
  window: ${o.window ?? '30s'}
  control:
    blindHold: ${o.blindHold ?? '2s'}
`;
}

/** VirtualService NS/checkout whose primary route mirrors `percent` % to checkout-shadow. */
export function mirroredVs(namespace: string, percent: number): JsonObject {
  return virtualService({
    namespace,
    name: 'checkout',
    hosts: ['checkout'],
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

/** The mirror percentage of a VirtualService in the fake server. */
export function mirrorPercentOf(api: FakeApiServer, namespace: string): number | undefined {
  const spec = api.getVirtualService(namespace, 'checkout')?.spec as
    | { http?: { mirrorPercentage?: { value?: number } }[] }
    | undefined;
  return spec?.http?.[0]?.mirrorPercentage?.value;
}

/** The percentages the daemon patched into NS/checkout, in order (from the fake server's request log). */
export function patchedPercents(api: FakeApiServer, namespace: string): number[] {
  return api.requestsMatching({ verb: 'patch', resource: 'virtualservices', namespace }).map((r) => {
    const ops = JSON.parse(r.body) as { op: string; path: string; value?: unknown }[];
    const op = ops.find((o) => o.op !== 'test' && /mirrorPercentage(\/value)?$/.test(o.path));
    const v = op?.value;
    if (typeof v === 'number') return v;
    if (typeof v === 'object' && v !== null && typeof (v as { value?: unknown }).value === 'number')
      return (v as { value: number }).value;
    throw new Error(`patch without a mirror percentage: ${r.body}`);
  });
}

/** The daemon's per-policy decision lines (logged at debug, or info in a dry run). */
export function decisions(logs: readonly LogLine[], from = 0): LogLine[] {
  return logs
    .slice(from)
    .filter((l) => l.policy === 'checkout' && typeof l.action === 'string' && l.audit !== true);
}

/** A daemon started by startDaemon, with what it logged. */
export interface TestDaemon {
  readonly service: RunningService;
  readonly logs: LogCapture;
  /** Base URL of /metrics, /healthz, /readyz. */
  readonly url: string;
  /** The last log lines, for failure messages. */
  describe(): string;
  stop(): Promise<void>;
}

/**
 * Writes the policy to a temporary directory and starts the production daemon in this process: no lease unless
 * asked for, no reload, endpoints on 127.0.0.1 and a free port, log level debug (so decisions are visible).
 */
export async function startDaemon(o: {
  api: FakeApiServer;
  policy: string;
  prometheusUrl: string;
  env?: NodeJS.ProcessEnv;
  prometheusCaFile?: string;
  kubeToken?: string;
  /** Elect a leader on Lease mirror-autoscaler/NAME (short timings); no election when absent. */
  leaseName?: string;
}): Promise<TestDaemon> {
  const dir = await mkdtemp(join(tmpdir(), 'mirror-autoscaler-faults-'));
  await writeFile(join(dir, 'checkout.yaml'), o.policy);
  const loaded = await loadPolicyDir(dir);
  if (loaded.problems.length > 0) throw new Error(`test policy invalid: ${JSON.stringify(loaded.problems)}`);
  const logs = new LogCapture();
  const logger = createLogger({ level: 'debug', destination: logs });
  const service = await startService(
    {
      policiesDir: dir,
      policies: loaded.policies,
      invalidPolicies: 0,
      prometheusUrl: o.prometheusUrl,
      ...(o.prometheusCaFile !== undefined && { prometheusCaFile: o.prometheusCaFile }),
      dryRun: false,
      http: { host: '127.0.0.1', port: 0 },
      lease:
        o.leaseName === undefined
          ? null
          : {
              name: o.leaseName,
              namespace: 'mirror-autoscaler',
              leaseDurationSeconds: 3,
              renewDeadlineSeconds: 2,
              retryPeriodSeconds: 0.5,
            },
      reloadIntervalMs: 0,
    },
    o.api.kubeConfig(o.kubeToken === undefined ? {} : { token: o.kubeToken }),
    { PROMETHEUS_TIMEOUT: '500ms', ...o.env },
    logger,
  );
  const url = service.http?.url ?? '';
  return {
    service,
    logs,
    url,
    describe: () =>
      logs.lines
        .slice(-30)
        .map((l) => JSON.stringify(l).slice(0, 500))
        .join('\n'),
    async stop() {
      await service.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** What a CLI command printed, and the exit status it set. */
export interface CliRun {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/**
 * Runs `mirror-autoscaler ARGS` in this process through commander, as main.ts would, capturing what it writes
 * to stdout and stderr (its logs included). Tests that use it must not run concurrently with each other.
 */
export async function runCli(args: readonly string[], register: (program: Command) => void): Promise<CliRun> {
  const program = new Command().name('mirror-autoscaler').exitOverride();
  register(program);
  let stdout = '';
  let stderr = '';
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const previousExitCode = process.exitCode;
  process.exitCode = undefined;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    stdout += chunk.toString();
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    await program.parseAsync([...args], { from: 'user' });
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
  const exitCode = typeof process.exitCode === 'number' ? process.exitCode : 0;
  process.exitCode = previousExitCode;
  return { stdout, stderr, exitCode };
}
