/**
 * The simulator's plant run against the wall clock: its load follows the mirror percentage read from the
 * VirtualService (applied after a propagation delay, as istiod's push takes), its counters are served as
 * Prometheus text, and its ground truth (the oracle's safe percentage, the true signals, breach) is sampled
 * on every tick. Pure in-process logic; bench/live/plant-process.ts puts it behind HTTP as its own process.
 */
import type { Guardrails } from '../../src/core/types.js';
import {
  accumulateByCode,
  type CodeCounters,
  type ExpositionNames,
  type ExpositionSnapshot,
  emptyCodeCounters,
  renderExposition,
} from '../../src/sim/exposition.js';
import {
  createPlant,
  maxSeverity,
  oraclePercent,
  type Plant,
  type PlantConfig,
  productionRps,
  safeUtilisation,
  scheduleAt,
  trueSignals,
  utilisationOf,
} from '../../src/sim/plant.js';

/** What the live plant needs besides its configuration. */
export interface LivePlantOptions {
  readonly plant: PlantConfig;
  readonly seed: number;
  /** Wall-clock epoch ms of plant time 0 (plant time is negative before it: the warm-up). */
  readonly t0Ms: number;
  /** Plant time (s) at which the plant starts counting; earlier times are never advanced through. */
  readonly startSeconds: number;
  readonly bounds: { readonly minPercent: number; readonly maxPercent: number };
  readonly guardrails: Guardrails;
  /** Seconds from reading a new percentage until the target receives it. */
  readonly propagationSeconds: number;
  /** The percentage in effect at the start (what the VirtualService holds then). */
  readonly initialPercent: number;
  readonly names: ExpositionNames;
}

/** One sample of the ground truth. */
export interface TruthRow {
  /** Plant seconds (0 = the daemon's start). */
  readonly t: number;
  /** Percentage last read from the VirtualService. */
  readonly written: number;
  /** Percentage the target receives now. */
  readonly effective: number;
  /** The oracle: the largest percentage within bounds at which the true target is under every guardrail. */
  readonly safe: number;
  readonly productionRps: number;
  readonly mirroredRps: number;
  readonly capacityRps: number;
  /** True severities (signal / limit) of the configured guardrails. */
  readonly cpu: number;
  readonly errors: number;
  readonly p99: number;
  readonly breach: boolean;
}

/** The plant against the wall clock. */
export class LivePlant {
  readonly uSafe: number;
  private readonly plant: Plant;
  private last: number;
  private effective: number;
  private written: number;
  private readonly pending: { at: number; percent: number }[] = [];
  private split: CodeCounters = emptyCodeCounters();
  private previous: { requests: number; errors: number; latencyBuckets: Float64Array };
  private production = 0;
  private mirroredRps = 0;

  constructor(private readonly options: LivePlantOptions) {
    this.plant = createPlant(options.plant, options.seed);
    this.uSafe = safeUtilisation(options.guardrails, options.plant.profile);
    this.last = options.startSeconds;
    this.effective = options.initialPercent;
    this.written = options.initialPercent;
    this.previous = this.copyCounters();
  }

  /** Plant seconds at wall-clock epoch ms `ms`. */
  timeAt(ms: number): number {
    return (ms - this.options.t0Ms) / 1000;
  }

  /** The percentage the VirtualService held when read at plant time `t`; a change applies after the delay. */
  read(percent: number, t: number): void {
    if (percent === this.written) return;
    this.written = percent;
    // Pushes apply in order: a newer write supersedes one still propagating only from its own time on.
    this.pending.push({ at: t + this.options.propagationSeconds, percent });
  }

  /** Advances the plant to plant time `t` (no-op when `t` is not later than the last advance). */
  advanceTo(t: number): void {
    for (let next = this.pending[0]; next !== undefined && next.at <= t; next = this.pending[0]) {
      if (next.at > this.last) {
        this.step(this.last, next.at - this.last);
        this.last = next.at;
      }
      this.effective = next.percent;
      this.pending.shift();
    }
    if (t > this.last) {
      this.step(this.last, t - this.last);
      this.last = t;
    }
  }

  private step(t: number, dt: number): void {
    const result = this.plant.advance(t, dt, this.effective);
    this.mirroredRps = result.mirroredRps;
    this.production += productionRps(this.options.plant.traffic, t) * dt;
    const now = this.plant.counters;
    this.split = accumulateByCode(this.split, this.previous, now);
    this.previous = this.copyCounters();
  }

  private copyCounters(): { requests: number; errors: number; latencyBuckets: Float64Array } {
    const c = this.plant.counters;
    return { requests: c.requests, errors: c.errors, latencyBuckets: Float64Array.from(c.latencyBuckets) };
  }

  /** What a scrape at the last advance shows. */
  snapshot(): ExpositionSnapshot {
    return {
      target: this.split,
      cpuSeconds: this.plant.counters.cpuSeconds,
      cpuRequestCores: this.options.plant.profile.cpuRequestCores,
      uptimeSeconds: this.last - this.options.startSeconds,
      productionRequests: this.production,
    };
  }

  /** The scrape body at the last advance. */
  metrics(): string {
    return renderExposition(this.options.names, this.snapshot());
  }

  /** The ground truth at the last advance. */
  truth(): TruthRow {
    const t = this.last;
    const { plant, guardrails, bounds } = this.options;
    const prod = productionRps(plant.traffic, t);
    const capacity = Math.max(0, scheduleAt(plant.capacityRps, t));
    const mirrored = (prod * Math.min(100, Math.max(0, this.effective))) / 100;
    const truth = trueSignals(plant.profile, utilisationOf(mirrored, plant.backgroundRps, capacity));
    const sev = (limit: number | undefined, v: number) => (limit === undefined || limit <= 0 ? 0 : v / limit);
    return {
      t,
      written: this.written,
      effective: this.effective,
      safe: oraclePercent(bounds, this.uSafe, prod, capacity, plant.backgroundRps),
      productionRps: prod,
      mirroredRps: mirrored,
      capacityRps: capacity,
      cpu: sev(guardrails.cpuUtilization, truth.cpuUtilization),
      errors: sev(guardrails.errorRate, truth.errorRate),
      p99: sev(guardrails.latencyP99Ms, truth.latencyP99Ms),
      breach: maxSeverity(guardrails, truth) > 1,
    };
  }

  /** Mirrored requests per second in the last step (for diagnostics). */
  get lastMirroredRps(): number {
    return this.mirroredRps;
  }
}

/** The mirror percentage Istio applies for a route: mirrorPercentage, else mirrorPercent, else 100. */
export function routeMirrorPercent(vs: unknown, routeName: string, mirrorHost: string): number | undefined {
  const spec = (vs as { spec?: { http?: unknown } } | undefined)?.spec;
  const http = Array.isArray(spec?.http) ? (spec.http as Record<string, unknown>[]) : [];
  const route = http.find((r) => r.name === routeName) ?? http[0];
  if (route === undefined) return undefined;
  const mirror = route.mirror as { host?: unknown } | undefined;
  if (mirror !== undefined && mirror.host === mirrorHost) {
    const p = route.mirrorPercentage as { value?: unknown } | undefined;
    if (p !== undefined && p !== null) return typeof p.value === 'number' ? p.value : 0;
    if (typeof route.mirrorPercent === 'number') return route.mirrorPercent;
    return 100;
  }
  const mirrors = Array.isArray(route.mirrors) ? (route.mirrors as Record<string, unknown>[]) : [];
  for (const m of mirrors) {
    const d = m.destination as { host?: unknown } | undefined;
    if (d?.host !== mirrorHost) continue;
    const p = m.percentage as { value?: unknown } | undefined;
    return p === undefined || p === null ? 100 : typeof p.value === 'number' ? p.value : 0;
  }
  // No mirror to this host on the route: nothing is mirrored.
  return 0;
}
