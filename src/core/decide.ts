/**
 * The control law: one pure function from (policy, current percentage, signals, memory, time) to the next
 * mirror percentage. No I/O, no clock, no randomness: time and memory come in as arguments and go out as
 * results, so the same input always gives the same decision.
 *
 * Shape of the law (anchors: Envoy's adaptive-concurrency gradient controller, Netflix concurrency-limits,
 * Jaeger adaptive sampling, the Kubernetes HPA, TCP CUBIC):
 * - severity s = observed / limit per guardrail; a breach (max s > 1) cuts at once and multiplicatively;
 * - a hold band (1 - hysteresis, 1] where nothing moves on single readings, except a top-up when several
 *   settled readings agree that the percentage sits well below the target in it;
 * - a load anchor (requests/s of a settled reading in the band) that the percentage follows up when
 *   production falls, as long as the readings carried to that load stay at the target;
 * - below it, raise toward a target severity (the middle of the band) using an estimate of what the current
 *   percentage costs, capped by a factor and an additive step, in small steps near a knee, and additively
 *   near the level of the last breach;
 * - dead time: a rate over a window shows a change only gradually. Every reading is related to the
 *   percentage it reflects (the window-weighted percentage), raises wait until half the window reflects the
 *   previous change, a raise that projects past the limit is taken back before the breach shows, a drift
 *   that projects past the limit is met before it shows, and a cut still in flight is not cut again on the
 *   same stale readings;
 * - missing data never pushes toward the risky side, and long blindness decays toward minPercent.
 */
import { DEFAULT_CONTROL, DEFAULT_INTERVAL_SECONDS, DEFAULT_WINDOW_SECONDS } from './defaults.js';
import {
  type CoreState,
  MAX_ELASTICITY,
  MAX_RECENT_READINGS,
  MAX_TRACK_ENTRIES,
  MAX_WRITES_TRACKED,
  STATE_VERSION,
} from './state.js';
import type {
  Action,
  ControllerState,
  ControlPolicy,
  CurvePoint,
  Mode,
  ObservationTiming,
  Reading,
  Reason,
  Signal,
  SignalName,
  Signals,
} from './types.js';
import { SIGNAL_NAMES } from './types.js';

export { MAX_WRITES_TRACKED, parseControllerState, STATE_VERSION } from './state.js';
export type { ControllerState } from './types.js';

/** Everything one decision depends on. */
export interface DecideInput {
  /** Epoch milliseconds, passed in; the core never reads a clock. */
  readonly now: number;
  readonly policy: ControlPolicy;
  /** The percentage in effect; null = no percentage set on the route, which Istio treats as 100 %. */
  readonly currentPercent: number | null;
  /** Latest readings; a configured guardrail with no entry counts as absent (NoSeries). */
  readonly signals: Signals;
  /** Mirrored requests/s the target received, over the same window; optional. */
  readonly requestRate?: Signal | undefined;
  /**
   * Production requests/s of the mirrored route (the primary side; mirrored copies not counted), as a rate
   * over `productionWindowSeconds(...)`. Absent: the law falls back to feedback alone (mode FeedbackOnly).
   */
  readonly productionRate?: Signal | undefined;
  /**
   * Scrape interval and propagation delay as the caller resolved them (policy setting, else learned from
   * the samples, else the defaults in DEFAULT_OBSERVATION).
   */
  readonly observation?: Partial<ObservationTiming> | undefined;
  /** What the previous decision returned; undefined on the first cycle or when the state was lost. */
  readonly state: ControllerState | undefined;
}

/** The outcome of one decision. */
export interface Decision {
  /** The percentage that should be in effect after this cycle (quantised, within the bounds). */
  readonly percent: number;
  /** The caller writes `percent` iff this is not 'hold'. */
  readonly action: Action;
  readonly reason: Reason;
  /** One human sentence. */
  readonly message: string;
  /** observed / limit per configured guardrail that has a value this cycle. */
  readonly severities: Partial<Record<SignalName, number>>;
  /** The memory to pass to the next decision (JSON-serialisable, a few hundred bytes). */
  readonly state: ControllerState;
  /** Whether the percentage was set to deliver a mirrored load (production rate known) or by feedback alone. */
  readonly mode: Mode;
  /** The percentage the target model puts at the target severity now, when there is a model; for status. */
  readonly safePercent?: number;
}

/** How one kind of signal behaves; see LAW.signals. */
export interface SignalTraits {
  /** Assumed elasticity (d ln severity / d ln percent) until measured. */
  readonly initial: number;
  /** Floor of the elasticity estimate. */
  readonly min: number;
  /** It can turn sharply upward near capacity: raises shrink as it nears the target. */
  readonly knee: boolean;
  /** It rises steadily with load, so a low reading below a remembered breach level means the level is stale. */
  readonly graded: boolean;
  /** A quantile over the window, dominated by its worst part: it shows a cut only once the window has passed. */
  readonly quantile: boolean;
  /** A plain sum over the window (CPU seconds): a reading is the time-weighted mean of what it covers. */
  readonly additive: boolean;
}

/** Constants of the law that are not policy settings; exported so tests and benchmarks can refer to them. */
export const LAW = {
  /** A cut keeps at least this share: one reading should not take away more than half at once. */
  cutFactorMin: 0.5,
  /**
   * A cut keeps at most this share, i.e. every breach cuts at least 30 %: an overloaded target recovers only
   * when load falls clearly below its capacity, and the reading that showed the breach is already stale.
   */
  cutFactorMax: 0.7,
  /** Increases aim at this point of the hold band, as a share of its width below 1 (0.5 = the middle). */
  targetInBand: 0.25,
  /**
   * Seconds between a change and its first effect on a reading: half a typical 15 s scrape interval, Istio's
   * stats flush and the propagation of a route change, rounded up.
   */
  lagSeconds: 15,
  /** Raise again only when at least this share of the rate window reflects the previous change. */
  settleVisibility: 0.5,
  /** Readings are not extrapolated to more than this multiple of the percentage they reflect. */
  maxProjection: 2,
  /** Percentages are multiples of this (pp). Envoy supports 1e-4 pp; 0.01 pp is plenty and reads well. */
  quantumPercent: 0.01,
  /** Severity reported for an infinite ratio (a non-zero reading against a limit of 0). */
  severityCap: 1e6,
  /**
   * CPU grows about linearly with load (sub-linearly when idle usage is a large part); latency and errors
   * grow faster near capacity (queueing). Latency warns before it breaches; errors often do not.
   */
  signals: {
    cpuUtilization: { initial: 1, min: 0.75, knee: false, graded: true, quantile: false, additive: true },
    errorRate: { initial: 2, min: 2, knee: true, graded: false, quantile: false, additive: false },
    latencyP99Ms: { initial: 2, min: 1.5, knee: true, graded: true, quantile: true, additive: false },
  } satisfies Record<SignalName, SignalTraits>,
  /** How sharply raises shrink toward the target on a signal with a knee. */
  kneeExponent: 3,
  /** A quantile reading counts as evidence about a cut once this share of the window reflects it. */
  quantileVisibility: 0.9,
  /** A rising quantile reading counts as evidence once this share of the window follows the cut. */
  quantileRisingVisibility: 0.25,
  /** Raises smaller than this share of the percentage are not worth a write. */
  minRaiseShare: 0.03,
  /** A rate reading is rising (the load itself grew) when it exceeds the previous one by more than this. */
  risingMargin: 0.05,
  /** Two readings give an elasticity estimate only when their percentages differ by at least this factor. */
  curveSpread: 1.1,
  /** The percentage follows production (the load anchor) only when that moves it by at least this share. */
  followShare: 0.05,
  /** Readings older than this many intervals are not part of the median. */
  recentIntervals: 3.5,
  /**
   * Inside the hold band a raise is made only when every recent reading, all taken at the current
   * percentage with the window fully reflecting it, stays this far (in severity) below the target: the band
   * absorbs noise and one-off readings, but a percentage that settled low in it after a cautious raise is
   * worth closing up (a CPU-bound target at severity 0.8 mirrors under 80 % of what it could).
   */
  topUpGap: 0.04,
  /**
   * A raise aims this many times the spread of the recent readings (highest minus lowest, each carried to
   * the percentage now) below the target: where readings scatter, the truth between them does too, and a
   * raise sized on a low one lands above the limit. Quiet signals keep the full target.
   */
  noiseMargin: 1,
  /**
   * A trend counts when each reading is at least the one before minus this (in severity), and the newest is
   * above the oldest: a slow drift (capacity ramping down, production climbing) moves less per interval
   * than the noise of one reading, so strictly rising triples of it are rare and the drift showed only as
   * a breach.
   */
  trendSlack: 0.01,
  /**
   * A steady rise is met with a decrease once it projects above this severity by the next cycle, not only
   * above the limit: the projection is linear while the readings lag the truth by half a window, and a drift
   * often accelerates (severity goes with 1 / capacity), so waiting for the projection to cross 1 was late.
   */
  easeAbove: 0.98,
} as const;

const HOUR_SECONDS = 3600;

// ---------------------------------------------------------------------------------------------------------
// Small numeric helpers. Every number that leaves this module goes through one of them, so no NaN or
// Infinity can escape and -0 never appears (it would not survive a JSON round trip).

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

function clean(x: number): number {
  return x === 0 ? 0 : x;
}

/** Down to the quantum, tolerating binary noise just below a grid point. */
function floorQ(x: number): number {
  const k = 1 / LAW.quantumPercent;
  return clean(Math.floor(x * k + 1e-6) / k);
}

function ceilQ(x: number): number {
  const k = 1 / LAW.quantumPercent;
  return clean(Math.ceil(x * k - 1e-6) / k);
}

function round(x: number, decimals: number): number {
  const k = 10 ** decimals;
  return clean(Math.round(x * k) / k);
}

function sig(x: number): number {
  return clean(Number(x.toPrecision(4)));
}

function fmt(x: number): string {
  return String(Number(x.toPrecision(3)));
}

function pct(x: number): string {
  return String(round(x, 2));
}

function pick(x: unknown, fallback: number, lo: number, hi: number): number {
  return typeof x === 'number' && Number.isFinite(x) ? clamp(x, lo, hi) : fallback;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const a = s[mid] ?? 0;
  return s.length % 2 === 1 ? a : ((s[mid - 1] ?? a) + a) / 2;
}

/** Index of a signal's severity in a Reading. */
function col(name: SignalName): 2 | 3 | 4 {
  return (SIGNAL_NAMES.indexOf(name) + 2) as 2 | 3 | 4;
}

// ---------------------------------------------------------------------------------------------------------
// Policy, sanitised: the core must not produce NaN even if a caller hands it nonsense.

interface Settings {
  readonly lo: number;
  readonly hi: number;
  readonly intervalS: number;
  readonly windowS: number;
  readonly hysteresis: number;
  /** Severity increases aim for. */
  readonly target: number;
  readonly factor: number;
  readonly step: number;
  readonly cooldownS: number;
  readonly blindHoldS: number;
  readonly minChange: number;
  readonly budget: number;
  readonly memoryS: number;
  readonly guardrails: ReadonlyArray<readonly [SignalName, number]>;
  /** How long past the lag a window takes to show a change fully, plus a cycle: how long memory matters. */
  readonly horizonS: number;
}

function settings(policy: ControlPolicy): Settings {
  const c: Partial<ControlPolicy['control']> = policy.control ?? {};
  const lo = pick(policy.bounds?.minPercent, 0, 0, 100);
  // A missing upper bound falls to the lower one: the narrowest reading of a broken policy is the safe one.
  const hi = pick(policy.bounds?.maxPercent, lo, lo, 100);
  const intervalS = pick(policy.intervalSeconds, DEFAULT_INTERVAL_SECONDS, 1, 86_400);
  const windowS = pick(policy.windowSeconds, DEFAULT_WINDOW_SECONDS, 1, 86_400);
  const hysteresis = pick(c.hysteresis, DEFAULT_CONTROL.hysteresis, 0, 0.9);
  const cooldown = pick(c.cooldownSeconds, DEFAULT_CONTROL.cooldownSeconds, 0, 86_400);
  const guardrails: Array<readonly [SignalName, number]> = [];
  for (const name of SIGNAL_NAMES) {
    const limit = policy.guardrails?.[name];
    if (limit !== undefined) guardrails.push([name, limit]);
  }
  return {
    lo,
    hi,
    intervalS,
    windowS,
    hysteresis,
    target: 1 - hysteresis * LAW.targetInBand,
    factor: pick(c.maxIncreaseFactor, DEFAULT_CONTROL.maxIncreaseFactor, 1, 10),
    step: pick(c.increaseStepPercent, DEFAULT_CONTROL.increaseStepPercent, 0, 100),
    // 0 = derive: a cut is fully visible once the window has passed since it, plus a scrape and a cycle.
    cooldownS: cooldown > 0 ? cooldown : windowS + Math.max(intervalS, LAW.lagSeconds),
    blindHoldS: pick(c.blindHoldSeconds, DEFAULT_CONTROL.blindHoldSeconds, 0, 1e7),
    minChange: pick(c.minChangePercent, DEFAULT_CONTROL.minChangePercent, 0, 100),
    budget: Math.floor(pick(c.maxWritesPerHour, DEFAULT_CONTROL.maxWritesPerHour, 0, MAX_WRITES_TRACKED)),
    memoryS: pick(c.breachMemorySeconds, DEFAULT_CONTROL.breachMemorySeconds, 0, 1e7),
    guardrails,
    horizonS: LAW.lagSeconds + windowS + intervalS,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Signals, classified.

type Observation =
  | { readonly kind: 'value'; readonly value: number; readonly s: number }
  /** No traffic, accepted as such: nothing to judge, but nothing wrong either. */
  | { readonly kind: 'quiet' }
  | { readonly kind: 'blind'; readonly why: string };

function observe(
  name: SignalName,
  limit: number,
  signal: Signal | undefined,
  trafficSeen: boolean,
): Observation {
  if (typeof limit !== 'number' || !Number.isFinite(limit) || limit < 0) {
    return { kind: 'blind', why: `invalid limit ${limit}` };
  }
  const sg: Signal = signal ?? { kind: 'absent', reason: 'NoSeries' };
  if (sg.kind === 'value') {
    const v = sg.value;
    if (typeof v !== 'number' || !Number.isFinite(v)) return { kind: 'blind', why: `non-finite value ${v}` };
    // Tiny negatives come from floating-point rate arithmetic; real negatives mean a broken query.
    if (v < -1e-9) return { kind: 'blind', why: `negative value ${v}` };
    const value = Math.max(0, v);
    const s = limit > 0 ? value / limit : value > 0 ? LAW.severityCap : 0;
    return { kind: 'value', value, s: clean(Math.min(s, LAW.severityCap)) };
  }
  const detail = sg.detail ? ` (${sg.detail})` : '';
  if (sg.reason !== 'NoTraffic') return { kind: 'blind', why: `${sg.reason}${detail}` };
  // Latency and error rate are undefined without requests, which is normal at 0 % or when production is
  // idle. CPU is measured from the pods whether or not requests arrive, so "no traffic" cannot explain its
  // absence; and when the request rate shows traffic, "no traffic" is contradicted. Both count as blindness.
  if (name === 'cpuUtilization')
    return { kind: 'blind', why: `NoTraffic${detail}, but CPU needs no traffic` };
  if (trafficSeen) return { kind: 'blind', why: `NoTraffic${detail}, but the request rate shows traffic` };
  return { kind: 'quiet' };
}

// ---------------------------------------------------------------------------------------------------------
// Dead time: which percentage a reading reflects.

type Track = Array<readonly [number, number]>;

/** Drops timeline entries that no longer matter: the oldest kept one starts before the horizon. */
function pruneTrack(track: Track, horizonS: number): Track {
  const out: Track = [];
  for (const [age, p] of track) {
    if (age >= horizonS) {
      out.push([horizonS, p]);
      break;
    }
    out.push([age, p]);
  }
  return out.slice(0, MAX_TRACK_ENTRIES);
}

/**
 * The time-weighted percentage over the span a reading taken now covers: the rate window, ending
 * `LAW.lagSeconds` ago. For a signal proportional to load this is exactly the percentage the reading shows.
 */
function effectivePercent(track: Track, windowS: number): number {
  const newest = LAW.lagSeconds;
  const oldest = LAW.lagSeconds + windowS;
  let sum = 0;
  for (let i = 0; i < track.length; i++) {
    const entry = track[i];
    if (entry === undefined) continue;
    const start = i === track.length - 1 ? Number.POSITIVE_INFINITY : entry[0];
    const end = i === 0 ? 0 : (track[i - 1]?.[0] ?? 0);
    const overlap = Math.max(0, Math.min(start, oldest) - Math.max(end, newest));
    sum += overlap * entry[1];
  }
  return sum / windowS;
}

/** Share of the rate window that reflects something that happened `ageS` seconds ago. */
function visibleShare(ageS: number, windowS: number): number {
  return clamp((ageS - LAW.lagSeconds) / windowS, 0, 1);
}

/**
 * A severity read at `pEff` extrapolated to `p`, assuming s ∝ percent^elasticity. The exponent is chosen
 * on the cautious side: at least linear when projecting up, linear when projecting down (after a cut a
 * convex model would promise more relief than a linear one).
 */
function project(s: number, pEff: number, p: number, elasticity: number): number {
  if (s === 0 || pEff <= 0 || p <= 0) return s;
  const r = p / pEff;
  return Math.min(LAW.severityCap, s * r ** (r >= 1 ? Math.max(1, elasticity) : 1));
}

// ---------------------------------------------------------------------------------------------------------

interface Context {
  readonly cfg: Settings;
  readonly now: number;
  /** The percentage in effect as the caller sees it (null resolved to 100). */
  readonly p: number;
  /** No percentage is set on the route. */
  readonly unset: boolean;
  readonly obs: ReadonlyArray<readonly [SignalName, Observation]>;
  readonly values: ReadonlyArray<readonly [SignalName, number]>;
  readonly pEff: number;
  /** Share of the rate window that reflects the last change (1 when there is none in view). */
  readonly visibility: number;
  /** Share of the rate window that reflects the last full cut (1 when there is none in view). */
  readonly cutVisibility: number;
  /** Direction of the last change still in view: 1 up, -1 down, 0 none. */
  readonly lastDir: number;
  /** The percentage before the last change still in view. */
  readonly lastFrom: number;
  /** This cycle's reading first, then the previous ones. */
  readonly recent: readonly Reading[];
  /** The previous cycle's reading, if it was taken about one interval ago. */
  readonly previous: Reading | undefined;
  readonly writes: number;
  readonly cooldownUntil: number | undefined;
  readonly breach: ControllerState['breach'];
  readonly blindSince: number | undefined;
  readonly blindEndedAt: number | undefined;
  readonly curve: Partial<Record<SignalName, CurvePoint>>;
  readonly rps: number | undefined;
  /** Load anchor from the state: `[requests/s, worst severity]` of the last settled reading in the band. */
  readonly anchor: CoreState['anchor'];
}

/** What the law decided, before it is turned into a Decision. */
interface Outcome {
  readonly percent: number;
  readonly reason: Reason;
  readonly message: string;
  /**
   * Decreases for safety: 'cut' (a breach; its level is remembered, a cooldown starts), 'trim' (a breach
   * while an earlier cut is in flight; refreshes the memory and the cooldown), 'retract' (a raise in flight
   * projects past the limit; the raised level is remembered, a cooldown starts), 'ease' (a drift projects
   * past the limit).
   */
  readonly kind?: 'cut' | 'trim' | 'retract' | 'ease';
  /** The guardrail a cut or retract was for. */
  readonly signal?: SignalName;
}

function elasticityOf(ctx: Context, name: SignalName): number {
  const e = LAW.signals[name];
  return clamp(ctx.curve[name]?.[2] ?? e.initial, e.min, MAX_ELASTICITY);
}

function hold(ctx: Context, reason: Reason, message: string): Outcome {
  return { percent: ctx.p, reason, message };
}

function worst(entries: ReadonlyArray<readonly [SignalName, number]>): readonly [SignalName, number] {
  let best: readonly [SignalName, number] = ['cpuUtilization', 0];
  let first = true;
  for (const e of entries) {
    if (first || e[1] > best[1]) best = e;
    first = false;
  }
  return best;
}

function budgetLeft(ctx: Context): boolean {
  return ctx.writes < ctx.cfg.budget;
}

function budgetMessage(ctx: Context, to: number): string {
  return `${ctx.writes} writes in the last hour (max ${ctx.cfg.budget}): raise ${pct(ctx.p)} -> ${pct(to)} withheld`;
}

/** The smallest decrease worth writing. */
function smallestCut(ctx: Context): number {
  return Math.max(ctx.cfg.minChange, LAW.quantumPercent);
}

/**
 * How fast a signal's severity is rising (per second), from the recent readings, each related to the
 * percentage in effect now: 0 unless there are three and each is higher than the one before. A rate reading
 * shows the load at the middle of its window, half a window and the lag ago; with a trend, the load now is
 * further along it, and further still by the time the next decision can act.
 */
function trend(ctx: Context, name: SignalName): number {
  const rs = ctx.recent;
  if (rs.length < MAX_RECENT_READINGS || ctx.p <= 0) return 0;
  const e = elasticityOf(ctx, name);
  const xs: Array<readonly [number, number]> = [];
  for (const r of rs) {
    const sv = r[col(name)];
    if (sv === null || r[1] <= 0 || ctx.p / r[1] > LAW.maxProjection) return 0;
    xs.push([r[0], project(sv, r[1], ctx.p, e)]);
  }
  for (let i = 1; i < xs.length; i++)
    if ((xs[i - 1]?.[1] ?? 0) <= (xs[i]?.[1] ?? 0) - LAW.trendSlack) return 0;
  if ((xs[0]?.[1] ?? 0) <= (xs[xs.length - 1]?.[1] ?? 0)) return 0;
  const [t0, s0] = xs[0] ?? [0, 0];
  const [t1, s1] = xs[xs.length - 1] ?? [0, 0];
  return t1 > t0 ? (s0 - s1) / (t1 - t0) : 0;
}

/** How far ahead of a reading a trend is extrapolated: to the load the next decision could still correct. */
function trendDelayS(ctx: Context): number {
  return LAW.lagSeconds + ctx.cfg.windowS / 2 + ctx.cfg.intervalS;
}

/**
 * A breach: decrease now, on the latest value.
 *
 * A fresh breach cuts by clamp(target / severity, 0.5, 0.7), where severity is the reading related to the
 * percentage in effect and, when the reading jumped since the previous one at a steady percentage, the size
 * of the step that jump implies (the window shows only its first part). While an earlier decrease is still
 * becoming visible, a further full cut needs evidence that it was not enough: a rate reading that,
 * discounted for the part of the window still at the old percentage, stays above the limit, or that keeps
 * rising (the load itself grew); a quantile reading only once the window has passed the last cut. Without
 * such evidence the breach still yields a decrease, but only the smallest that the readings ask for:
 * cutting again on every stale reading of the same overload would cut it several times over.
 */
function cut(ctx: Context): Outcome {
  const { cfg, p, pEff } = ctx;
  const [name, s] = worst(ctx.values);
  const limit = cfg.guardrails.find((g) => g[0] === name)?.[1] ?? 0;
  const value = ctx.obs.find((o) => o[0] === name)?.[1];
  const observed = value?.kind === 'value' ? value.value : 0;
  const head = `${name} ${fmt(observed)} > ${fmt(limit)} (severity ${fmt(s)})`;
  if (p <= cfg.lo) return hold(ctx, 'AtBound', `${head}, but already at minPercent ${pct(cfg.lo)}`);
  const recovering = ctx.lastDir < 0 && ctx.visibility < 1;
  const stepsPerWindow = cfg.windowS / cfg.intervalS;
  let evidence = 0;
  let evidenceFor: SignalName = name;
  for (const [n, sv] of ctx.values) {
    const before = ctx.previous?.[col(n)] ?? undefined;
    let e: number;
    if (!recovering) {
      e = project(sv, pEff, p, elasticityOf(ctx, n));
      if (ctx.visibility === 1 && typeof before === 'number' && sv > before && stepsPerWindow > 1) {
        e = Math.max(e, before + (sv - before) * stepsPerWindow);
      }
    } else {
      const rising = typeof before === 'number' && sv > before * (1 + LAW.risingMargin);
      const prevEff = ctx.previous?.[1] ?? 0;
      if (LAW.signals[n].additive) {
        // A sum over the window (CPU seconds): the reading is the mean cost of the window, so its cost per
        // percent applies to the percentage now. When that cost per percent still climbs, the window is
        // still filling with a change (capacity lost, load grown): extrapolate the climb over the rest of
        // the window, as a fresh breach does.
        const cost = pEff > 0 ? sv / pEff : 0;
        const costBefore = typeof before === 'number' && prevEff > 0 ? before / prevEff : cost;
        const climb = cost > costBefore * (1 + LAW.risingMargin) ? cost - costBefore : 0;
        // The change began before the cut, so the window covers it at least as far as it covers the cut.
        e = (cost + climb * Math.max(0, stepsPerWindow - 1) * (1 - ctx.cutVisibility)) * p;
      } else if (ctx.cutVisibility >= LAW.quantileVisibility) {
        e = project(sv, pEff, p, 1);
      } else {
        // The slow samples of the overload stay in the window until it has passed, so a level reading says
        // nothing yet; but once samples after the cut arrive, a reading that still climbs means slow
        // requests keep coming.
        // A ratio (errors / requests) climbs after a cut for another reason: the errors of the overload stay
        // in the window while the requests shrink. It counts only once the window has passed the cut.
        e = LAW.signals[n].quantile && rising && ctx.cutVisibility >= LAW.quantileRisingVisibility ? sv : 0;
      }
    }
    e = Math.min(e, LAW.severityCap);
    if (e > evidence) {
      evidence = e;
      evidenceFor = n;
    }
  }
  const floor = floorQ(p - smallestCut(ctx));
  if (evidence > 1) {
    const factor = clamp(cfg.target / evidence, LAW.cutFactorMin, LAW.cutFactorMax);
    const to = Math.max(cfg.lo, Math.min(cfg.hi, floor, floorQ(p * factor)));
    const why = evidence > s * 1.001 ? ` (estimated ${fmt(evidence)} at ${pct(p)} %)` : '';
    return {
      percent: to,
      reason: 'GuardrailBreached',
      message: `${head}${why}: cut ${pct(p)} -> ${pct(to)}`,
      kind: 'cut',
      signal: evidenceFor,
    };
  }
  const wanted = evidence > cfg.target ? p * (cfg.target / evidence) : p;
  const to = Math.max(cfg.lo, Math.min(cfg.hi, floor, floorQ(wanted)));
  return {
    percent: to,
    reason: 'GuardrailBreached',
    message: `${head}, but the decrease to ${pct(p)} % is not fully visible yet: trim ${pct(p)} -> ${pct(to)}`,
    kind: 'trim',
    signal: name,
  };
}

/**
 * Dead-time projections that ask for a decrease before a breach shows: a raise in flight that will pass
 * the limit once the window reflects it, or a steady rise that has already passed it by now.
 */
function anticipate(ctx: Context): Outcome | undefined {
  const { cfg, p, pEff } = ctx;
  if (ctx.lastDir > 0 && ctx.visibility < 1 && pEff > 0 && p / pEff <= LAW.maxProjection) {
    let over: readonly [SignalName, number] | undefined;
    let to = p;
    for (const [name, s] of ctx.values) {
      const proj = project(s, pEff, p, elasticityOf(ctx, name));
      if (proj > 1) {
        to = Math.min(to, p * (cfg.target / proj));
        if (over === undefined || proj > over[1]) over = [name, proj];
      }
    }
    if (over !== undefined) {
      // The level before the raise was judged on settled data; do not go below it on a projection.
      to = Math.max(cfg.lo, ctx.lastFrom, floorQ(to));
      const head = `${over[0]} projects to severity ${fmt(over[1])} once the raise to ${pct(p)} % is fully visible`;
      if (p - to >= smallestCut(ctx)) {
        return {
          percent: to,
          reason: 'Settling',
          message: `${head}: take back ${pct(p)} -> ${pct(to)}`,
          kind: 'retract',
          signal: over[0],
        };
      }
      return hold(ctx, 'Settling', `${head}: hold ${pct(p)}`);
    }
  }
  if (ctx.visibility === 1) {
    let over: readonly [SignalName, number] | undefined;
    for (const [name, s] of ctx.values) {
      const rise = trend(ctx, name);
      const now = s + rise * trendDelayS(ctx);
      if (rise > 0 && now > LAW.easeAbove && (over === undefined || now > over[1])) over = [name, now];
    }
    if (over !== undefined) {
      const to = Math.max(cfg.lo, floorQ(p * (cfg.target / over[1])));
      const head = `${over[0]} is rising at a steady ${pct(p)} % and projects to severity ${fmt(over[1])} by the next cycle`;
      if (p - to >= smallestCut(ctx)) {
        return {
          percent: to,
          reason: 'Settling',
          message: `${head}: ease ${pct(p)} -> ${pct(to)}`,
          kind: 'ease',
        };
      }
    }
  }
  return undefined;
}

/**
 * Follows production traffic with the load anchor: the target's cost depends on the requests it gets, so
 * the load of a settled, in-band reading stays right when production moves; only the percentage that
 * delivers it changes. Production per percent is the request rate over the window divided by the
 * percentage that window reflects. Only upward, and only while the readings, carried to the anchor's
 * load, stay at the target (so the target did not lose capacity meanwhile): when production grows, the severities rise
 * with it in the same window, and the hold band, the trend projection and the cut answer that.
 */
function followLoad(ctx: Context, wName: SignalName, wSev: number): Outcome | undefined {
  if (ctx.values.length === 0) return undefined;
  const { cfg, p, pEff, anchor, rps } = ctx;
  if (anchor === undefined || rps === undefined || pEff <= 0 || ctx.cooldownUntil !== undefined) return;
  if (ctx.visibility < LAW.settleVisibility || ctx.blindEndedAt !== undefined) return;
  const perPercent = rps / pEff;
  const to = clamp(floorQ(anchor[0] / perPercent), cfg.lo, cfg.hi);
  const head = `production at ${fmt(perPercent * 100)} req/s, load anchor ${fmt(anchor[0])} req/s`;
  // The readings now, carried to the anchor's load along each signal's curve (at least linearly), must
  // stay at the target: a target that lost capacity since costs more per request than it did then.
  const load = perPercent * p;
  const atAnchor = Math.max(
    ...ctx.values.map(([n, sv]) => project(sv, load, anchor[0], elasticityOf(ctx, n))),
  );
  if (to > p * (1 + LAW.followShare) && atAnchor <= cfg.target && p < cfg.hi) {
    const up = Math.min(to, floorQ(p * cfg.factor + cfg.step));
    if (!budgetLeft(ctx)) return hold(ctx, 'WriteBudget', budgetMessage(ctx, up));
    return {
      percent: up,
      reason: 'Headroom',
      message: `${head}, max severity ${fmt(wSev)} (${wName}): follow ${pct(p)} -> ${pct(up)}`,
    };
  }
  return undefined;
}

/**
 * Whether the recent readings all reflect the current percentage: the last change is fully visible in the
 * window, no gap in the data is, and every one of the last few readings was taken at this percentage.
 */
function settledHere(ctx: Context): boolean {
  if (ctx.visibility < 1 || ctx.blindEndedAt !== undefined || ctx.recent.length < MAX_RECENT_READINGS) {
    return false;
  }
  if (!ctx.recent.every((r) => Math.abs(r[1] - ctx.p) <= ctx.p * 0.005)) return false;
  // Readings that disagree by more than the gap a top-up keeps are noise, not evidence of room.
  for (const [name] of ctx.values) {
    const xs = ctx.recent.map((r) => r[col(name)]).filter((x): x is number => x !== null);
    if (xs.length > 0 && Math.max(...xs) - Math.min(...xs) > LAW.topUpGap / 2) return false;
  }
  return true;
}

/** Headroom on every guardrail: how far up. */
function raise(ctx: Context): Outcome {
  const { cfg, p } = ctx;
  if (p >= cfg.hi) return hold(ctx, 'AtBound', `headroom, but already at maxPercent ${pct(cfg.hi)}`);
  // Increases are judged on the median of the last few readings, each related to the percentage it
  // reflected, so a single low reading cannot ratchet the percentage up (with fewer than three, the
  // highest), and moved along a rising trend to where it is by now.
  // Inside the hold band (a top-up), the highest recent reading counts, not the median.
  const inBand = worst(ctx.values)[1] > 1 - cfg.hysteresis;
  const smoothed: Array<readonly [SignalName, number]> = [];
  const spreads: number[] = [];
  for (const [name] of ctx.values) {
    const e = elasticityOf(ctx, name);
    const xs: number[] = [];
    for (const r of ctx.recent) {
      const sv = r[col(name)];
      const pr = r[1];
      if (sv === null || pr <= 0 || p / pr > LAW.maxProjection) continue;
      xs.push(project(sv, pr, p, e));
    }
    if (xs.length === 0) {
      return hold(ctx, 'Settling', `no reading yet reflects ${pct(p)} % enough to judge a raise`);
    }
    const base = xs.length >= 3 && !inBand ? median(xs) : Math.max(...xs);
    smoothed.push([name, base + trend(ctx, name) * trendDelayS(ctx)]);
    spreads.push(xs.length >= 2 ? Math.max(...xs) - Math.min(...xs) : 0);
  }
  const [wName, wSev] = worst(smoothed);
  if (inBand ? wSev > cfg.target - LAW.topUpGap : wSev > 1 - cfg.hysteresis) {
    return hold(
      ctx,
      'WithinTolerance',
      `${wName} severity ${fmt(wSev)} (recent readings at ${pct(p)} %) within tolerance: hold ${pct(p)}`,
    );
  }
  // Size the raise from the estimated cost of the current percentage: the percentage at which the binding
  // guardrail would reach the target severity, under s ∝ percent^elasticity.
  let to = p * cfg.factor + cfg.step;
  for (const [i, [name, sv]] of smoothed.entries()) {
    const aim = Math.max(1 - cfg.hysteresis, cfg.target - LAW.noiseMargin * (spreads[i] ?? 0));
    if (sv > 0) to = Math.min(to, p * (aim / sv) ** (1 / elasticityOf(ctx, name)));
    if (LAW.signals[name].knee) {
      // A knee (queueing) is invisible from below: shrink factor and step with the cube of the remaining
      // distance to the target, so the last stretch is walked in small steps whatever the estimate says.
      // (p99 of an M/M/1 queue at half its limit can be within 7 % of it.)
      const room = (1 - Math.min(1, sv / cfg.target)) ** LAW.kneeExponent;
      to = Math.min(to, p * (1 + (cfg.factor - 1) * room) + cfg.step * room);
    }
  }
  let near = '';
  const b = ctx.breach;
  if (b !== undefined) {
    // Near the level of the last breach, creep up additively (CUBIC's plateau): that level is the best
    // evidence of where capacity ends. With a request rate the level is compared in mirrored requests/s,
    // so that a change in production traffic moves it to the right percentage.
    const level =
      b.rps !== undefined && ctx.rps !== undefined && ctx.pEff > 0 ? (b.rps * ctx.pEff) / ctx.rps : b.percent;
    const lowEdge = level * (1 - cfg.hysteresis);
    const highEdge = level * (1 + cfg.hysteresis);
    // The memory is stale when a guardrail that rises steadily with load (not errors, which jump at a knee)
    // breached there, and its reading now, scaled linearly up to that level, stays below the hold band:
    // capacity grew or the breach was a passing burst.
    const at = b.signal !== undefined ? smoothed.find((x) => x[0] === b.signal)?.[1] : undefined;
    const stale =
      b.signal !== undefined &&
      LAW.signals[b.signal].graded &&
      at !== undefined &&
      (at * level) / p <= 1 - cfg.hysteresis;
    if (!stale && p < highEdge && to > lowEdge) {
      const creep = p + Math.max(cfg.step / 2, cfg.minChange, LAW.quantumPercent, p * LAW.minRaiseShare);
      to = Math.min(to, Math.max(lowEdge, creep));
      near = `, near the last breach at ${pct(level)} %`;
    }
  }
  to = to >= cfg.hi ? cfg.hi : Math.max(p, floorQ(to));
  const head = `max severity ${fmt(wSev)} (${wName})${near}`;
  // Small raises are not worth a write (each one costs API traffic, an audit line and write budget); the
  // last step to maxPercent is exempt from the relative threshold so the bound can be reached.
  const tooSmall = to - p < Math.max(cfg.minChange, LAW.quantumPercent / 2);
  if (tooSmall || (to < cfg.hi && to - p < p * LAW.minRaiseShare)) {
    return hold(
      ctx,
      'ChangeTooSmall',
      `${head}: raise ${pct(p)} -> ${pct(to)} is below ${pct(cfg.minChange)} pp`,
    );
  }
  if (!budgetLeft(ctx)) return hold(ctx, 'WriteBudget', budgetMessage(ctx, to));
  return { percent: to, reason: 'Headroom', message: `${head}: raise ${pct(p)} -> ${pct(to)}` };
}

function aboveMax(ctx: Context): Outcome {
  const shown = ctx.unset ? 'unset (Istio mirrors 100 %)' : `${pct(ctx.p)} %`;
  const hi = pct(ctx.cfg.hi);
  return {
    percent: ctx.cfg.hi,
    reason: 'OutOfBounds',
    message: `current ${shown} is above maxPercent ${hi}: set ${hi}`,
  };
}

/** The law proper, for a percentage already known to be >= minPercent. */
function law(ctx: Context): Outcome {
  const { cfg, p, now } = ctx;

  // 1. Breach: decrease on the latest value, even when other signals are missing.
  if (ctx.values.some(([, s]) => s > 1)) return cut(ctx);
  if (p > cfg.hi) return aboveMax(ctx);

  // 2. A breach the readings do not show yet.
  const early = anticipate(ctx);
  if (early !== undefined) return early;

  // 3. Blind: never raise; after blindHoldSeconds of continuous blindness, halve toward minPercent.
  if (cfg.guardrails.length === 0) return hold(ctx, 'NoData', 'no guardrail configured: nothing to judge by');
  const blind = ctx.obs.filter((o) => o[1].kind === 'blind');
  if (blind.length > 0) {
    const why = blind.map(([n, o]) => `${n} ${o.kind === 'blind' ? o.why : ''}`).join(', ');
    const forS = (now - (ctx.blindSince ?? now)) / 1000;
    if (forS < cfg.blindHoldS) {
      return hold(
        ctx,
        'NoData',
        `${why}: hold ${pct(p)}, blind for ${fmt(forS)} s of ${fmt(cfg.blindHoldS)} s`,
      );
    }
    if (p <= cfg.lo) return hold(ctx, 'AtBound', `${why}: blind for ${fmt(forS)} s, already at minPercent`);
    // Halving reaches the floor in a few writes without a cliff; a step too small to write goes all the way.
    let to = Math.max(cfg.lo, floorQ(p / 2));
    if (p - to < cfg.minChange) to = cfg.lo;
    return {
      percent: to,
      reason: 'BlindDecay',
      message: `${why}: blind for ${fmt(forS)} s, decay ${pct(p)} -> ${pct(to)}`,
    };
  }

  const lowest = 1 - cfg.hysteresis;
  const [wName, wSev] = worst(ctx.values);
  const quiet = ctx.obs.filter((o) => o[1].kind === 'quiet').map((o) => o[0]);

  // 4. Cold start: at 0 % (or below one step while there is no traffic to measure) take one step, provided
  //    every reading there is has headroom. Without traffic latency and errors cannot speak, but a target
  //    that receives nothing cannot be hurt by the current percentage either, and one step is a small,
  //    bounded risk; beyond it, raising on "no traffic" would be a guess, so it holds.
  const start = Math.min(cfg.hi, ceilQ(Math.max(cfg.step, cfg.minChange, LAW.quantumPercent)));
  if (p === 0 || (quiet.length > 0 && p < start)) {
    const said = quiet.length > 0 ? `${quiet.join(', ')} NoTraffic` : `max severity ${fmt(wSev)} (${wName})`;
    if (ctx.values.length > 0 && wSev > lowest) {
      return hold(
        ctx,
        'WithinTolerance',
        `${wName} severity ${fmt(wSev)} leaves no room to start: hold ${pct(p)}`,
      );
    }
    if (ctx.cooldownUntil !== undefined) {
      return hold(ctx, 'Cooldown', `cooling down for another ${fmt((ctx.cooldownUntil - now) / 1000)} s`);
    }
    if (p >= start) return hold(ctx, 'AtBound', `${said}: already at maxPercent ${pct(cfg.hi)}`);
    if (!budgetLeft(ctx)) return hold(ctx, 'WriteBudget', budgetMessage(ctx, start));
    return {
      percent: start,
      reason: 'ColdStart',
      message: `cold start (${said}): ${pct(p)} -> ${pct(start)}`,
    };
  }
  if (quiet.length > 0) {
    return hold(ctx, 'NoData', `${quiet.join(', ')} NoTraffic: nothing to judge a raise by, hold ${pct(p)}`);
  }

  // 5. Production moved: keep the load the target took well, at a new percentage.
  const follow = followLoad(ctx, wName, wSev);
  if (follow !== undefined) return follow;
  // 6. Hold band, on the latest reading, unless settled readings say the percentage sits low in it.
  if (wSev > lowest && !(settledHere(ctx) && wSev <= cfg.target - LAW.topUpGap)) {
    return hold(
      ctx,
      'WithinTolerance',
      `max severity ${fmt(wSev)} (${wName}) within tolerance (${fmt(lowest)}, 1]: hold ${pct(p)}`,
    );
  }
  // 7. After a cut, wait until the rate windows have flushed.
  if (ctx.cooldownUntil !== undefined) {
    return hold(
      ctx,
      'Cooldown',
      `cooling down after a cut for another ${fmt((ctx.cooldownUntil - now) / 1000)} s`,
    );
  }
  // 8. Dead time: a raise is judged on data that reflects the last change, and on windows that no longer
  //    span a gap in the data.
  if (ctx.visibility < LAW.settleVisibility) {
    return hold(
      ctx,
      'Settling',
      `last change ${pct(ctx.lastFrom)} -> ${pct(p)} is ${pct(Math.round(ctx.visibility * 100))} % visible in the ${fmt(cfg.windowS)} s window: hold`,
    );
  }
  if (ctx.blindEndedAt !== undefined) {
    const back = visibleShare((now - ctx.blindEndedAt) / 1000, cfg.windowS);
    if (back < LAW.settleVisibility) {
      return hold(
        ctx,
        'Settling',
        `data came back ${fmt((now - ctx.blindEndedAt) / 1000)} s ago; the ${fmt(cfg.windowS)} s window still spans the gap: hold`,
      );
    }
  }
  // 9. Headroom.
  return raise(ctx);
}

/** The breach memory after a decrease of the given kind (see Outcome.kind). */
function rememberBreach(
  out: Outcome,
  breach: ControllerState['breach'],
  now: number,
  p: number,
  pEff: number,
  rps: number | undefined,
): ControllerState['breach'] {
  if (out.kind === undefined || out.kind === 'ease') return breach;
  if (out.kind === 'trim' && breach !== undefined) return { ...breach, at: now };
  // A breach reading reflects the window-weighted percentage; a retracted raise breaches at the raised level.
  const level = out.kind === 'retract' || pEff <= 0 ? p : pEff;
  const percent = round(clamp(level, 0, 100), 2);
  const atLevel = rps !== undefined && pEff > 0 ? sig((rps * level) / pEff) : 0;
  return {
    at: now,
    percent,
    ...(atLevel > 0 ? { rps: atLevel } : {}),
    ...(out.signal !== undefined ? { signal: out.signal } : {}),
  };
}

/**
 * The load anchor after this decision: a settled reading inside the band, at or below the target, becomes
 * the new anchor; a cut drops it (the load it stood for was too much after all).
 */
function nextAnchor(ctx: Context, out: Outcome, changed: boolean): CoreState['anchor'] {
  if (changed && (out.kind === 'cut' || out.kind === 'retract')) return undefined;
  const [, wSev] = worst(ctx.values);
  const full = ctx.values.length === ctx.cfg.guardrails.length && ctx.values.length > 0;
  if (
    full &&
    ctx.rps !== undefined &&
    settledHere(ctx) &&
    wSev > 1 - ctx.cfg.hysteresis &&
    wSev <= ctx.cfg.target
  ) {
    return [sig(ctx.rps), sig(wSev)];
  }
  return ctx.anchor;
}

/** Elasticity estimates, from readings that mostly reflect settled percentages and are not breaches. */
function updateCurve(
  prev: Partial<Record<SignalName, CurvePoint>> | undefined,
  values: ReadonlyArray<readonly [SignalName, number]>,
  pEff: number,
  visibility: number,
): Partial<Record<SignalName, CurvePoint>> {
  const curve: Partial<Record<SignalName, CurvePoint>> = { ...(prev ?? {}) };
  const pe = round(pEff, 2);
  // Only a window that reflects one percentage throughout says what that percentage costs: a mix of two
  // gives a point between them that, for anything but a linear signal, bends the estimate.
  if (visibility < 1 || pe <= 0 || values.some(([, s]) => s > 1)) return curve;
  for (const [name, s] of values) {
    if (s <= 0) continue;
    const traits = LAW.signals[name];
    const point = curve[name];
    if (point === undefined) {
      curve[name] = [pe, sig(s), traits.initial];
      continue;
    }
    const dp = Math.log(pe / point[0]);
    // Close percentages say more about noise than about the curve; keep the older point until they differ.
    if (Math.abs(dp) >= Math.log(LAW.curveSpread)) {
      const estimate = Math.log(s / point[1]) / dp;
      const e = Number.isFinite(estimate) ? estimate : traits.initial;
      curve[name] = [pe, sig(s), round(clamp(e, traits.min, MAX_ELASTICITY), 2)];
    }
  }
  return curve;
}

/**
 * Decides the mirror percentage for the next cycle. Pure: the result depends only on the input.
 *
 * @param input - time, policy, percentage in effect, latest signals and the previous state.
 * @returns the percentage that should be in effect, the action the caller takes ('hold' = write nothing),
 *   a stable reason code, a sentence, the severities and the state for the next call.
 */
export function decide(input: DecideInput): Decision {
  const cfg = settings(input.policy);
  const prev = input.state;
  const now = Number.isFinite(input.now) ? input.now : (prev?.at ?? 0);
  const raw = input.currentPercent;
  // Unset means Istio mirrors everything; an unreadable value is treated the same way, the riskiest case.
  const p = clean(raw === null || typeof raw !== 'number' || !Number.isFinite(raw) ? 100 : raw);
  const pIn = clamp(p, 0, 100);
  const { horizonS } = cfg;
  // Capped so that absurd clocks cannot overflow the ages into Infinity (a year is long past every horizon).
  const elapsedS = prev ? clamp((now - prev.at) / 1000, 0, 3.2e7) : 0;

  // Age the memory to `now`.
  let track: Track = prev ? prev.track.map(([a, q]) => [a + elapsedS, q] as const) : [[horizonS, pIn]];
  // Missing state means the percentage was set by a person (state is written with every change we make),
  // typically long ago: treat it as steady. A value other than the one we left means someone changed it
  // since; when is unknown, so assume just now, which delays raises until readings reflect it.
  if (prev && Math.abs(prev.percent - pIn) > 1e-9) track = [[0, pIn], ...track];
  track = pruneTrack(track, horizonS);
  const writesAgo = prev ? prev.writesAgo.map((a) => a + elapsedS).filter((a) => a < HOUR_SECONDS) : [];
  const older = prev ? prev.recent.map((r) => [r[0] + elapsedS, r[1], r[2], r[3], r[4]] as const) : [];
  const cooldownUntil =
    prev?.cooldownUntil !== undefined && prev.cooldownUntil > now
      ? Math.min(prev.cooldownUntil, now + cfg.cooldownS * 1000)
      : undefined;
  const breach =
    prev?.breach !== undefined && now - Math.min(prev.breach.at, now) < cfg.memoryS * 1000
      ? prev.breach
      : undefined;
  const cutAgeS = prev?.cutAt !== undefined ? Math.max(0, (now - prev.cutAt) / 1000) : undefined;

  // Signals.
  const rr = input.requestRate;
  const rps = rr?.kind === 'value' && Number.isFinite(rr.value) && rr.value > 0 ? rr.value : undefined;
  const trafficSeen = rps !== undefined && rps * cfg.windowS >= 1;
  const obs = cfg.guardrails.map(
    ([name, limit]) => [name, observe(name, limit, input.signals?.[name], trafficSeen)] as const,
  );
  const values: Array<readonly [SignalName, number]> = [];
  const severities: Partial<Record<SignalName, number>> = {};
  for (const [name, o] of obs) {
    if (o.kind !== 'value') continue;
    values.push([name, o.s]);
    severities[name] = o.s;
  }
  const blind = obs.some(([, o]) => o.kind === 'blind') || cfg.guardrails.length === 0;
  const blindSince = blind ? Math.min(prev?.blindSince ?? now, now) : undefined;
  let blindEndedAt = !blind && prev?.blindSince !== undefined ? now : prev?.blindEndedAt;
  if (blindEndedAt !== undefined && (blind || now - blindEndedAt >= horizonS * 1000))
    blindEndedAt = undefined;

  // Dead time.
  const pEff = effectivePercent(track, cfg.windowS);
  const newest = track[0];
  const before = track[1];
  const visibility = newest !== undefined && before !== undefined ? visibleShare(newest[0], cfg.windowS) : 1;
  const cutVisibility = cutAgeS !== undefined ? visibleShare(cutAgeS, cfg.windowS) : 1;
  const lastDir = newest !== undefined && before !== undefined ? Math.sign(newest[1] - before[1]) : 0;
  const lastFrom = before?.[1] ?? pIn;

  // This cycle's reading joins the recent ones.
  const sevOf = (n: SignalName): number | null => {
    const v = severities[n];
    return v === undefined ? null : sig(v);
  };
  const reading: Reading = [
    0,
    round(pEff, 2),
    sevOf('cpuUtilization'),
    sevOf('errorRate'),
    sevOf('latencyP99Ms'),
  ];
  const recent: Reading[] = (values.length > 0 ? [reading, ...older] : older)
    .filter((r) => r[0] <= cfg.intervalS * LAW.recentIntervals)
    .slice(0, MAX_RECENT_READINGS);
  const curve = updateCurve(prev?.curve, values, pEff, visibility);

  const ctx: Context = {
    cfg,
    now,
    p,
    unset: raw === null,
    obs,
    values,
    pEff,
    visibility,
    cutVisibility,
    lastDir,
    lastFrom,
    recent,
    previous: older.find((r) => r[0] <= cfg.intervalS * 1.5),
    writes: writesAgo.length,
    cooldownUntil,
    breach,
    blindSince,
    blindEndedAt,
    curve,
    rps,
    anchor: prev !== undefined && 'anchor' in prev ? (prev as CoreState).anchor : undefined,
  };

  let out: Outcome;
  if (p < cfg.lo) {
    // Bounds are hard: below the floor goes to the floor whatever the signals say.
    out = {
      percent: cfg.lo,
      reason: 'OutOfBounds',
      message: `current ${pct(p)} % is below minPercent ${pct(cfg.lo)}: set ${pct(cfg.lo)}`,
    };
  } else {
    out = law(ctx);
    if (p > cfg.hi && out.percent > cfg.hi) out = aboveMax(ctx);
  }
  // Every write lands on the grid (or a bound); off-grid values round down, toward less mirroring.
  const onGrid =
    out.percent === p || out.percent <= cfg.lo || out.percent >= cfg.hi ? out.percent : floorQ(out.percent);
  const percent = clean(clamp(onGrid, cfg.lo, cfg.hi));
  const action: Action = percent > p ? 'increase' : percent < p ? 'decrease' : 'hold';
  // A move the bounds do not allow is a hold at the bound.
  const reason: Reason = action === 'hold' && out.percent !== p ? 'AtBound' : out.reason;
  const changed = action !== 'hold';

  let state: CoreState = {
    version: STATE_VERSION,
    at: now,
    percent,
    track: pruneTrack(changed ? [[0, percent], ...track] : track, horizonS).map(
      ([a, q]) => [round(a, 1), q] as const,
    ),
    recent: recent.map((r) => [round(r[0], 1), r[1], r[2], r[3], r[4]] as const),
    writesAgo: (changed ? [0, ...writesAgo] : writesAgo).slice(0, MAX_WRITES_TRACKED).map((a) => round(a, 1)),
  };
  const cools = changed && (out.kind === 'cut' || out.kind === 'trim' || out.kind === 'retract');
  const cooling = cools ? now + cfg.cooldownS * 1000 : cooldownUntil;
  if (cooling !== undefined) state = { ...state, cooldownUntil: cooling };
  const remembered = changed ? rememberBreach(out, breach, now, p, pEff, rps) : breach;
  if (remembered !== undefined) state = { ...state, breach: remembered };
  const cutAt = changed && (out.kind === 'cut' || out.kind === 'retract') ? now : prev?.cutAt;
  if (cutAt !== undefined && now - cutAt < horizonS * 1000) state = { ...state, cutAt };
  if (blindSince !== undefined) state = { ...state, blindSince };
  if (blindEndedAt !== undefined) state = { ...state, blindEndedAt };
  // A cut means the readings cost more than the curve said (capacity lost, load grown): start it afresh
  // rather than fit a slope across two different targets.
  const kept = changed && out.kind === 'cut' ? {} : curve;
  if (Object.keys(kept).length > 0) state = { ...state, curve: kept };
  const anchor = nextAnchor(ctx, out, changed);
  if (anchor !== undefined) state = { ...state, anchor };
  const pr = input.productionRate;
  const mode: Mode =
    pr?.kind === 'value' && Number.isFinite(pr.value) && pr.value > 0 ? 'FeedForward' : 'FeedbackOnly';
  return { percent, action, reason, message: out.message, severities, state, mode };
}
