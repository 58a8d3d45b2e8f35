/**
 * The daemon's Prometheus metrics, on a registry of its own (never prom-client's global one, so that two
 * daemons in one test process, or a library user's own metrics, never collide).
 *
 * Names follow the shared contract, all prefixed `mirror_autoscaler_`. Label values come from the loaded
 * policies and from closed sets (actions, reasons, signal names, write results, query kinds, HTTP codes and
 * Kubernetes verbs), so the number of series is bounded by the number of policies; `forgetPolicy` removes
 * every series of a policy that is no longer loaded.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { SIGNAL_NAMES, type SignalName } from '../core/types.js';
import { KubernetesApiError } from '../mesh/errors.js';
import type { QueryEvent } from '../signals/prometheus.js';
import type { PolicyOutcome } from './cycle.js';
import { classifyOutcome } from './outcome.js';

/** Prefix of every metric name, default process metrics included. */
export const METRIC_PREFIX = 'mirror_autoscaler_';

/** Results of writes_total. */
export const WRITE_RESULTS = ['ok', 'conflict', 'error', 'refused'] as const;
export type WriteResult = (typeof WRITE_RESULTS)[number];

/** Kubernetes verbs kept as label values; anything else is counted as `other` to bound cardinality. */
const KUBERNETES_VERBS = new Set(['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'discover']);

/** Cycle durations span one fast cycle (tens of ms) to one stuck on timeouts (tens of seconds). */
const CYCLE_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * What writes_total counts for an outcome, or undefined when nothing was to be written:
 * - ok: the new percentage was written;
 * - conflict: the write gave up after repeated concurrent edits (ConflictError);
 * - error: the write failed for another reason (API error, timeout, failed re-read);
 * - refused: the policy could not be evaluated or writing to it is refused: VirtualService paused, missing,
 *   without the mirror, with a mirror shape we refuse to edit, or VirtualServices could not be listed.
 *   Counted every cycle the refusal lasts.
 * Holds and dry-run decisions count nothing.
 */
export function writeResult(outcome: PolicyOutcome): WriteResult | undefined {
  switch (classifyOutcome(outcome)) {
    case 'changed':
      return 'ok';
    case 'conflict':
      return 'conflict';
    case 'writeFailed':
      return 'error';
    case 'paused':
    case 'noMirror':
    case 'invalidMirror':
    case 'notFound':
    case 'unreadable':
      return 'refused';
    default:
      return undefined;
  }
}

/** Options of DaemonMetrics. */
export interface DaemonMetricsOptions {
  /** Also export prom-client's default process metrics (CPU, memory, event loop, GC) with the prefix; default true. */
  readonly defaultMetrics?: boolean;
}

/** The series one policy owns, so that all of them can be removed when the policy goes away. */
interface PolicySeries {
  /** Labels of the percentage series: the route object the policy manages. */
  route?: { route_kind: string; route: string };
  readonly signals: Set<SignalName>;
  readonly guardrails: Set<SignalName>;
  /** `action\0reason` pairs seen in decisions_total. */
  readonly decisions: Set<string>;
  readonly writes: Set<WriteResult>;
  /** Source label of the scrape-interval series, when set. */
  scrapeSource?: string;
  /** Managers seen in route_overridden_total. */
  readonly managers: Set<string>;
  /** Source label of the paused series, while paused. */
  pausedBy?: string;
}

/** Every metric of the daemon; one instance per process, handed to the cycle, the HTTP server and the adapters. */
export class DaemonMetrics {
  /** The registry behind /metrics. */
  readonly registry = new Registry();

  private readonly mirrorPercent: Gauge<'policy' | 'route_kind' | 'route'>;
  private readonly proposedPercent: Gauge<'policy' | 'route_kind' | 'route'>;
  private readonly signalValue: Gauge<'policy' | 'signal'>;
  private readonly guardrailLimit: Gauge<'policy' | 'signal'>;
  private readonly scrapeInterval: Gauge<'policy' | 'source'>;
  private readonly productionRps: Gauge<'policy'>;
  private readonly decisions: Counter<'policy' | 'action' | 'reason'>;
  private readonly writes: Counter<'policy' | 'result'>;
  private readonly overridden: Counter<'policy' | 'manager'>;
  private readonly paused: Gauge<'policy' | 'source'>;
  private readonly cycleDuration: Histogram;
  private readonly queries: Counter<'kind' | 'result'>;
  private readonly kubernetesErrors: Counter<'verb' | 'code'>;
  private readonly policies: Gauge<'state'>;
  private readonly leader: Gauge;
  private readonly lastCycle: Gauge;
  private readonly series = new Map<string, PolicySeries>();

  constructor(options: DaemonMetricsOptions = {}) {
    const registers = [this.registry];
    const name = (n: string) => `${METRIC_PREFIX}${n}`;
    this.mirrorPercent = new Gauge({
      name: name('mirror_percent'),
      help: 'Mirror percentage in effect on the route (highest of the mirrors the policy manages); route_kind is VirtualService, HTTPRoute or GRPCRoute, route its namespace/name.',
      labelNames: ['policy', 'route_kind', 'route'],
      registers,
    });
    this.proposedPercent = new Gauge({
      name: name('proposed_percent'),
      help: "Mirror percentage of the policy's last decision.",
      labelNames: ['policy', 'route_kind', 'route'],
      registers,
    });
    this.signalValue = new Gauge({
      name: name('signal_value'),
      help: 'Last observed value of a guardrail signal of the mirror target (absent signals have no series).',
      labelNames: ['policy', 'signal'],
      registers,
    });
    this.guardrailLimit = new Gauge({
      name: name('guardrail_limit'),
      help: 'Guardrail limit of a signal in the policy.',
      labelNames: ['policy', 'signal'],
      registers,
    });
    this.scrapeInterval = new Gauge({
      name: name('scrape_interval_seconds'),
      help: "Scrape interval of the mirror target's series the last decision assumed, by source: policy (spec.observation), learned (from the samples) or default.",
      labelNames: ['policy', 'source'],
      registers,
    });
    this.productionRps = new Gauge({
      name: name('production_rps'),
      help: 'Production requests/s of the mirrored route at the last decision (no series while unknown: the decision is then FeedbackOnly).',
      labelNames: ['policy'],
      registers,
    });
    this.decisions = new Counter({
      name: name('decisions_total'),
      help: 'Decisions made, by action and reason.',
      labelNames: ['policy', 'action', 'reason'],
      registers,
    });
    this.writes = new Counter({
      name: name('writes_total'),
      help: 'Writes of the mirror percentage by result: ok, conflict (gave up after concurrent edits), error, refused (paused, no mirror, VirtualService missing or unreadable).',
      labelNames: ['policy', 'result'],
      registers,
    });
    this.overridden = new Counter({
      name: name('route_overridden_total'),
      help: 'Times the percentage this controller wrote was found changed back by someone else (a GitOps sync, a person, another controller), by the field manager that changed it (from managedFields; unknown when they do not say).',
      labelNames: ['policy', 'manager'],
      registers,
    });
    this.paused = new Gauge({
      name: name('paused'),
      help: '1 while the policy is paused, by why: annotation (mirror-autoscaler.io/paused), brake (the global brake), flagger or argo-rollouts (a canary owns the route). No series when not paused.',
      labelNames: ['policy', 'source'],
      registers,
    });
    this.cycleDuration = new Histogram({
      name: name('cycle_duration_seconds'),
      help: 'Duration of one reconcile cycle (signal queries, VirtualService reads, decisions and writes).',
      buckets: CYCLE_BUCKETS,
      registers,
    });
    this.queries = new Counter({
      name: name('prometheus_queries_total'),
      help: 'Prometheus queries sent, by kind (batch or override) and result (ok or error).',
      labelNames: ['kind', 'result'],
      registers,
    });
    this.kubernetesErrors = new Counter({
      name: name('kubernetes_requests_errors_total'),
      help: 'Failed Kubernetes API requests by verb and HTTP code (none: no response).',
      labelNames: ['verb', 'code'],
      registers,
    });
    this.policies = new Gauge({
      name: name('policies'),
      help: 'Policies by state: loaded (valid and managed) or invalid (rejected by the last load).',
      labelNames: ['state'],
      registers,
    });
    this.leader = new Gauge({
      name: name('leader'),
      help: '1 when this replica may write: it holds the leader lease, or runs without leader election and is no dry run; else 0.',
      registers,
    });
    this.lastCycle = new Gauge({
      name: name('last_cycle_timestamp_seconds'),
      help: 'Unix time at which the last reconcile cycle completed.',
      registers,
    });
    // Zero-valued series from the start, so that rate() and absent() work before the first event.
    for (const kind of ['batch', 'override'] as const)
      for (const result of ['ok', 'error'] as const) this.queries.inc({ kind, result }, 0);
    this.policies.set({ state: 'loaded' }, 0);
    this.policies.set({ state: 'invalid' }, 0);
    this.leader.set(0);
    if (options.defaultMetrics ?? true)
      collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  /** Content type of `expose()`, for the Content-Type header of /metrics. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The registry in the Prometheus text exposition format. */
  expose(): Promise<string> {
    return this.registry.metrics();
  }

  /**
   * Records one cycle: per-policy gauges (percentages, signal values, guardrail limits), decisions and
   * write results, the cycle duration and its completion time.
   * @param durationSeconds wall time of the cycle.
   * @param nowMs completion time, epoch milliseconds.
   */
  recordCycle(outcomes: readonly PolicyOutcome[], durationSeconds: number, nowMs: number): void {
    for (const o of outcomes) this.recordOutcome(o);
    if (Number.isFinite(durationSeconds) && durationSeconds >= 0) this.cycleDuration.observe(durationSeconds);
    this.lastCycle.set(nowMs / 1000);
  }

  private recordOutcome(o: PolicyOutcome): void {
    const policy = o.policy;
    const s = this.seriesOf(policy);
    const route = { route_kind: o.routeKind, route: o.routeId };
    if (s.route !== undefined && (s.route.route !== route.route || s.route.route_kind !== route.route_kind)) {
      // The policy now points at another route object: the old series would report a stale object.
      this.mirrorPercent.remove({ policy, ...s.route });
      this.proposedPercent.remove({ policy, ...s.route });
    }
    s.route = route;
    const vsLabels = { policy, ...route };
    setOrRemove(this.mirrorPercent, vsLabels, o.currentPercent);
    setOrRemove(this.proposedPercent, vsLabels, o.proposedPercent);

    for (const signal of SIGNAL_NAMES) {
      const labels = { policy, signal };
      const value = o.absent[signal] === undefined ? o.signals[signal] : null;
      if (setOrRemove(this.signalValue, labels, value)) s.signals.add(signal);
      else s.signals.delete(signal);
      if (setOrRemove(this.guardrailLimit, labels, o.guardrails[signal] ?? null)) s.guardrails.add(signal);
      else s.guardrails.delete(signal);
    }

    const scrape = o.scrapeInterval;
    if (s.scrapeSource !== undefined && s.scrapeSource !== scrape?.source) {
      // One series per policy: the old source's would report an interval no longer in use.
      this.scrapeInterval.remove({ policy, source: s.scrapeSource });
      delete s.scrapeSource;
    }
    if (
      scrape !== undefined &&
      setOrRemove(this.scrapeInterval, { policy, source: scrape.source }, scrape.seconds)
    ) {
      s.scrapeSource = scrape.source;
    }
    setOrRemove(this.productionRps, { policy }, o.productionRps);

    if (o.action !== null && o.reason !== null) {
      this.decisions.inc({ policy, action: o.action, reason: o.reason });
      s.decisions.add(`${o.action}\u0000${o.reason}`);
    }
    const result = writeResult(o);
    if (result !== undefined) {
      this.writes.inc({ policy, result });
      s.writes.add(result);
    }
    if (o.override?.fresh === true) {
      this.overridden.inc({ policy, manager: o.override.manager });
      s.managers.add(o.override.manager);
    }
    if (s.pausedBy !== undefined && s.pausedBy !== o.pausedBy) {
      this.paused.remove({ policy, source: s.pausedBy });
      delete s.pausedBy;
    }
    if (o.pausedBy !== undefined) {
      this.paused.set({ policy, source: o.pausedBy }, 1);
      s.pausedBy = o.pausedBy;
    }
  }

  /** Removes every series of a policy that is no longer loaded, counters included. */
  forgetPolicy(policy: string): void {
    const s = this.series.get(policy);
    if (s === undefined) return;
    for (const manager of s.managers) this.overridden.remove({ policy, manager });
    if (s.pausedBy !== undefined) this.paused.remove({ policy, source: s.pausedBy });
    if (s.route !== undefined) {
      this.mirrorPercent.remove({ policy, ...s.route });
      this.proposedPercent.remove({ policy, ...s.route });
    }
    for (const signal of s.signals) this.signalValue.remove({ policy, signal });
    for (const signal of s.guardrails) this.guardrailLimit.remove({ policy, signal });
    for (const pair of s.decisions) {
      const [action = '', reason = ''] = pair.split('\u0000');
      this.decisions.remove({ policy, action, reason });
    }
    for (const result of s.writes) this.writes.remove({ policy, result });
    if (s.scrapeSource !== undefined) this.scrapeInterval.remove({ policy, source: s.scrapeSource });
    this.productionRps.remove({ policy });
    this.series.delete(policy);
  }

  /** Forgets every policy not in `names`: call it with the names of a freshly loaded policy set. */
  retainPolicies(names: Iterable<string>): void {
    const keep = new Set(names);
    for (const policy of [...this.series.keys()]) if (!keep.has(policy)) this.forgetPolicy(policy);
  }

  /** Counts one Prometheus query; wire it to PrometheusSignalSource's `onQuery`. */
  onQuery(event: QueryEvent): void {
    this.queries.inc({ kind: event.kind, result: event.ok ? 'ok' : 'error' });
  }

  /** Sets the number of loaded (valid) and invalid policies after a load or reload. */
  setPolicies(loaded: number, invalid: number): void {
    this.policies.set({ state: 'loaded' }, loaded);
    this.policies.set({ state: 'invalid' }, invalid);
  }

  /** Sets whether this replica holds the leader lease. */
  setLeader(isLeader: boolean): void {
    this.leader.set(isLeader ? 1 : 0);
  }

  /**
   * Counts one failed Kubernetes API request.
   * @param verb Kubernetes verb (unknown verbs are counted as `other`).
   * @param code HTTP status, or undefined when no response arrived (`none`).
   */
  recordKubernetesError(verb: string, code: number | undefined): void {
    const v = KUBERNETES_VERBS.has(verb) ? verb : 'other';
    const c =
      code !== undefined && Number.isInteger(code) && code >= 100 && code <= 599 ? String(code) : 'none';
    this.kubernetesErrors.inc({ verb: v, code: c });
  }

  /**
   * Counts a failed request from whatever it threw: a KubernetesApiError gives its verb and code; any other
   * error counts as verb `other`, code `none`.
   */
  recordKubernetesFailure(err: unknown): void {
    if (err instanceof KubernetesApiError) this.recordKubernetesError(err.verb, err.code);
    else this.recordKubernetesError('other', undefined);
  }

  private seriesOf(policy: string): PolicySeries {
    let s = this.series.get(policy);
    if (s === undefined) {
      s = {
        signals: new Set(),
        guardrails: new Set(),
        decisions: new Set(),
        writes: new Set(),
        managers: new Set(),
      };
      this.series.set(policy, s);
    }
    return s;
  }
}

/** Sets the series to a finite value, or removes it; returns whether it is set. */
function setOrRemove<L extends string>(
  gauge: Gauge<L>,
  labels: Partial<Record<L, string>>,
  value: number | null | undefined,
): boolean {
  if (value === null || value === undefined || !Number.isFinite(value)) {
    gauge.remove(labels);
    return false;
  }
  gauge.set(labels, value);
  return true;
}
