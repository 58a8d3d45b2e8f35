/** The rules of the law, in the order they apply: breach, anticipation, blindness, cold start, headroom. */
import { type ProductionTrack, productionOverSpan, project, visibleShare } from './deadtime.js';
import { productionWindowSeconds } from './defaults.js';
import { LAW } from './law.js';
import { ceilQ, clamp, col, floorQ, fmt, median, pct, round, sig } from './numeric.js';
import type { Observation, Settings } from './settings.js';
import { type CoreState, JUDGED_READINGS, MAX_ELASTICITY, MIN_ELASTICITY } from './state.js';
import type { ControllerState, CurvePoint, Reading, Reason, SignalName } from './types.js';
import { SIGNAL_NAMES } from './types.js';

// ---------------------------------------------------------------------------------------------------------

export interface Context {
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
  /** Seconds since the last full cut, while it matters (see CoreState.cutAt). */
  readonly cutAgeS?: number | undefined;
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
  /**
   * Production now over production during the span the readings cover (1 without a production rate):
   * above 1 the target is getting more load than its readings show, below 1 less.
   */
  readonly productionGrowth: number;
  /** Production requests/s now; 0 without a production rate. */
  readonly productionNow: number;
  /** Production when a write made now lands: a rising production carried forward (see productionLanding). */
  readonly productionLanding: number | undefined;
  /** Production readings, newest first. */
  readonly production: ProductionTrack;
  /** Each signal's noise in severity, per SIGNAL_NAMES (see updateNoise in decide.ts). */
  readonly noise: CoreState['noise'];
  /** Calm memory (see nextCalm): `[CPU severity, worst knee severity, when]`. */
  readonly calm: CoreState['calm'];
  /** Production's noise, relative (a mean second difference of ln production; 0 until measured). */
  readonly productionNoise: number;
  /** Whether a production rate was read this cycle. */
  readonly feedForward: boolean;
}

/** What the law decided, before it is turned into a Decision. */
export interface Outcome {
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

export function worst(entries: ReadonlyArray<readonly [SignalName, number]>): readonly [SignalName, number] {
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

/**
 * The smallest raise worth a write, as a share of the percentage: small while the write budget is
 * untouched, growing with the square of the share of it spent in the last hour beyond LAW.paceFrom. Raises then come
 * fewer and larger as the budget runs low, instead of spending it in the first minutes and then holding
 * far below the safe level for the rest of the hour.
 */
function raiseShareNeeded(ctx: Context): number {
  const used = ctx.cfg.budget > 0 ? Math.min(1, ctx.writes / ctx.cfg.budget) : 1;
  const over = Math.max(0, used - LAW.paceFrom) / (1 - LAW.paceFrom);
  return LAW.minRaiseShare + LAW.paceShare * over * over;
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
function trend(ctx: Context, name: SignalName, sinceCut = false): number {
  // Over the span of a window at least (noise that lasts longer than an interval must not pass for a
  // drift), and over at least two intervals.
  const span = Math.max(2 * ctx.cfg.intervalS, ctx.cfg.windowS) + ctx.cfg.intervalS / 2;
  // With `sinceCut`, only readings whose window no longer holds the overload a cut answered: before that
  // they are off the target's curve (CPU stops growing at its limit), and carried to the percentage now
  // they climb back as the window clears, which is no drift to ease for.
  const clean = sinceCut && ctx.cutAgeS !== undefined ? ctx.cutAgeS - ctx.cfg.lagS - ctx.cfg.windowS : span;
  const rs = ctx.recent.filter((r) => r[0] <= Math.min(span, clean));
  if (rs.length < JUDGED_READINGS || ctx.p <= 0) return 0;
  const e = elasticityOf(ctx, name);
  const xs: Array<readonly [number, number]> = [];
  for (const r of rs) {
    const sv = r[col(name)];
    if (sv === null || r[1] <= 0 || ctx.p / r[1] > LAW.maxProjection) return 0;
    xs.push([r[0], project(sv, r[1], ctx.p, e)]);
  }
  // A robust slope (the median of the pairwise slopes, Theil–Sen): one reading out of line neither makes
  // nor breaks a drift. Ages count back, so a rise has older readings lower.
  const slopes: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    for (let j = i + 1; j < xs.length; j++) {
      const [ti, si] = xs[i] ?? [0, 0];
      const [tj, sj] = xs[j] ?? [0, 0];
      if (tj > ti) slopes.push((si - sj) / (tj - ti));
    }
  }
  if (slopes.length === 0) return 0;
  const slope = median(slopes);
  // The rise must stand out of the noise, whose measure is per interval: over the span of the readings
  // it is scaled by the square root of their number of steps.
  const steps = xs.length - 1;
  const spanS = (xs[xs.length - 1]?.[0] ?? 0) - (xs[0]?.[0] ?? 0);
  if (slope <= 0 || slope * spanS <= LAW.trendNoise * noiseOf(ctx, name) * Math.sqrt(steps)) return 0;
  return slope;
}

/** The readings increases and the settled test are judged on: the newest few, within a few intervals. */
function judged(ctx: Context): readonly Reading[] {
  return ctx.recent.filter((r) => r[0] <= ctx.cfg.intervalS * LAW.recentIntervals).slice(0, JUDGED_READINGS);
}

/** A signal's noise in severity (0 until measured). */
function noiseOf(ctx: Context, name: SignalName): number {
  return ctx.noise?.[SIGNAL_NAMES.indexOf(name)] ?? 0;
}

/**
 * Spread (highest minus lowest) of the readings before this one, each carried to the percentage now, or
 * the measured noise if larger.
 */
function scatter(ctx: Context, name: SignalName): number {
  return Math.max(noiseOf(ctx, name), spreadBefore(ctx, name));
}

function spreadBefore(ctx: Context, name: SignalName): number {
  const e = elasticityOf(ctx, name);
  const xs: number[] = [];
  for (const r of judged(ctx).slice(1)) {
    const sv = r[col(name)];
    if (sv === null || r[1] <= 0 || ctx.p / r[1] > LAW.maxProjection) continue;
    xs.push(project(sv, r[1], ctx.p, e));
  }
  return xs.length >= 2 ? Math.max(...xs) - Math.min(...xs) : 0;
}

/** The level of the remembered breach at the production now (in requests/s when both are known). */
function breachLevel(ctx: Context, b: NonNullable<ControllerState['breach']>): number {
  return b.rps !== undefined && ctx.rps !== undefined && ctx.pEff > 0
    ? (b.rps * ctx.pEff) / ctx.rps
    : b.percent;
}

/**
 * Whether the last cut, still in view, took the percentage well below where the target broke: an
 * overload, whose readings are off the target's curve until the window has cleared it (a marginal
 * breach cut in proportion is not).
 */
function deepCut(ctx: Context): boolean {
  const b = ctx.breach;
  return ctx.cutAgeS !== undefined && b !== undefined && ctx.p <= breachLevel(ctx, b) * LAW.deepCutShare;
}

/** How far ahead of a reading a trend is extrapolated: to the load the next decision could still correct. */
function trendDelayS(ctx: Context): number {
  return ctx.cfg.lagS + ctx.cfg.windowS / 2 + ctx.cfg.intervalS;
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
  // Recovering from a cut (or a retract) still working through the window; trims do not restart that
  // clock, or a slow drift met by a trim every cycle would be trimmed after forever, never cut.
  const recovering = ctx.lastDir < 0 && ctx.visibility < 1 && ctx.cutVisibility < 1;
  const stepsPerWindow = cfg.windowS / cfg.intervalS;
  let evidence = 0;
  let evidenceFor: SignalName = name;
  // A sum over the window (CPU) is read: it judges a cut in flight without a quantile's bias (below).
  const sumRead = ctx.values.some(([m]) => LAW.signals[m].additive);
  for (const [n, sv] of ctx.values) {
    const before = ctx.previous?.[col(n)] ?? undefined;
    let e: number;
    // Whether the evidence already carries the window's climb forward (see below).
    let climbing = false;
    if (!recovering) {
      e = project(sv, pEff, p, elasticityOf(ctx, n));
      // A jump at a steady percentage is the first part of a step the window shows only in part
      // (capacity lost): carried over the whole window, unless it is no larger than the readings'
      // own scatter, when it is noise and carrying it would multiply the noise into a deep cut.
      const jump = typeof before === 'number' ? sv - before : 0;
      if (ctx.visibility === 1 && jump > LAW.jumpNoise * scatter(ctx, n) && stepsPerWindow > 1) {
        e = Math.max(e, (before as number) + jump * stepsPerWindow);
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
        climbing = climb > 0;
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
        // A quantile climbs for that reason too (the slow requests of the overload are a growing share of a
        // window whose newer part carries fewer requests), so where a sum over the window (CPU) is read as
        // well, which has no such bias, that signal judges whether the cut was enough.
        e =
          LAW.signals[n].quantile && rising && ctx.cutVisibility >= LAW.quantileRisingVisibility && !sumRead
            ? sv
            : 0;
      }
    }
    // A drift (capacity ebbing, production climbing) keeps going: carried along its trend, so that a
    // slow rise is cut, not trimmed after for ever. While a cut is in flight, only for a sum over the
    // window (CPU): a latency or an error ratio then climbs with the overload that cut answers, and
    // its trend is that overload, not a drift.
    // A climb already carried over the rest of the window is that drift: not carried twice.
    if (!recovering || (LAW.signals[n].additive && !climbing)) e += trend(ctx, n) * trendDelayS(ctx);
    e = Math.min(e, LAW.severityCap);
    if (e > evidence) {
      evidence = e;
      evidenceFor = n;
    }
  }
  const floor = floorQ(p - smallestCut(ctx));
  // With production up since the readings' window, the signals still within their limits say how far
  // the load now is past what the target takes: a cut goes at least that far.
  const ahead = productionAhead(ctx);
  const follow = ahead !== undefined ? ahead.percent : cfg.hi;
  if (evidence > 1) {
    // A reading just past the limit, with no jump that hints at more to come, is as likely noise on a
    // target near its limit as an overload: it is met by bringing that reading back to the target. Past
    // LAW.marginalBreach the full cut applies (at least 30 %).
    // Only out of the blue, though: after a reading already past the limit it is an overload, and a
    // drift the readings show is carried into the evidence above.
    const was = ctx.previous?.[col(evidenceFor)];
    const marginal = evidence <= LAW.marginalBreach && typeof was === 'number' && was <= 1;
    // While a cut is in flight the evidence is already the cost of the percentage now, projected from
    // readings discounted for the part of the window still at the old one: the stale-reading margin that
    // makes a fresh cut at least 30 % was taken by that cut, so a further one is in proportion.
    // (Never more than halving at once, in flight or not: a quantile still full of the overload reads
    // tens of times its limit, which says nothing of how far the percentage now is over it.)
    const factor = clamp(
      cfg.target / evidence,
      LAW.cutFactorMin,
      marginal || recovering ? 1 - LAW.minRaiseShare : LAW.cutFactorMax,
    );
    const to = Math.max(cfg.lo, Math.min(cfg.hi, floor, floorQ(p * factor), follow));
    const why =
      follow < floorQ(p * factor)
        ? ' (production up)'
        : evidence > s * 1.001
          ? ` (estimated ${fmt(evidence)} at ${pct(p)} %)`
          : '';
    return {
      percent: to,
      reason: 'GuardrailBreached',
      message: `${head}${why}: cut ${pct(p)} -> ${pct(to)}`,
      kind: 'cut',
      signal: evidenceFor,
    };
  }
  const wanted = evidence > cfg.target ? p * (cfg.target / evidence) : p;
  const to = Math.max(cfg.lo, Math.min(cfg.hi, floor, floorQ(wanted), follow));
  return {
    percent: to,
    reason: 'GuardrailBreached',
    message: `${head}, but the decrease to ${pct(p)} % is not fully visible yet: trim ${pct(p)} -> ${pct(to)}`,
    kind: 'trim',
    signal: name,
  };
}

/**
 * Feed-forward: production grew since the span the readings cover, so the target is already getting more
 * than they show. Each reading carried to the load now (along its curve, at least linearly) that passes
 * the limit asks for the percentage that brings the load back to the target, in this cycle, before the
 * target's own signals show the rise. Not a cut: the readings were fine at their load, so no cooldown and
 * no breach memory.
 */
function productionAhead(ctx: Context): Outcome | undefined {
  const { cfg, p } = ctx;
  if (!ctx.feedForward || ctx.productionLanding === undefined) return undefined;
  // The newest reading of a target within its limits: past them it is overloaded and off its curve, and
  // its readings say nothing about the load it takes.
  const r = ctx.recent.find((x) => {
    const sv = SIGNAL_NAMES.map((n) => x[col(n)]).filter((v): v is number => v !== null);
    return sv.length > 0 && sv.every((v) => v <= 1);
  });
  if (r === undefined || r[1] <= 0) return undefined;
  const then = productionOverSpan(
    ctx.production,
    r[0] + cfg.scrapeS / 2,
    cfg.windowS,
    cfg.scrapeS,
    productionWindowSeconds(cfg.windowS, cfg.scrapeS),
  );
  if (then === undefined || then <= 0) return undefined;
  const growth = ctx.productionLanding / then;
  if (growth <= 1 + Math.max(LAW.risingMargin, LAW.followNoise * ctx.productionNoise)) return undefined;
  // The reading is kept at the production now; carried on to the production when the write lands.
  const at = (r[1] * ctx.productionNow) / ctx.productionLanding;
  let over: readonly [SignalName, number] | undefined;
  let to = p;
  for (const [name] of ctx.values) {
    const s = r[col(name)];
    if (s === null || s === undefined) continue;
    const e = Math.max(1, elasticityOf(ctx, name));
    const proj = project(s, at, p, e);
    if (proj > 1) {
      to = Math.min(to, p * (cfg.target / proj) ** (1 / e));
      if (over === undefined || proj > over[1]) over = [name, proj];
    }
  }
  if (over === undefined) return undefined;
  to = Math.max(cfg.lo, floorQ(to));
  if (p - to < smallestCut(ctx)) return undefined;
  return {
    percent: to,
    reason: 'FollowProduction',
    message: `production up ×${fmt(growth)} since a reading within the limits: ${over[0]} projects to severity ${fmt(over[1])} at ${pct(p)} %, ease ${pct(p)} -> ${pct(to)}`,
    kind: 'ease',
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
  // After a decrease the readings, carried down linearly to the percentage now, still show the drift; a
  // slow drift seen through a long window must not wait a whole window after every ease. Half of it,
  // though: before that, the readings cannot show the ease yet, and noise that lasts longer than an
  // interval would look like the same drift again and again.
  if (ctx.visibility === 1 || (ctx.lastDir < 0 && ctx.visibility >= LAW.settleVisibility)) {
    let over: readonly [SignalName, number, number] | undefined;
    // The next ease can come only once this one is half visible: size this one for the drift until then.
    const until = trendDelayS(ctx) + cfg.lagS + cfg.windowS * LAW.settleVisibility;
    for (const [name, s] of ctx.values) {
      const rise = trend(ctx, name, deepCut(ctx));
      const now = s + rise * trendDelayS(ctx);
      if (rise > 0 && now > LAW.easeAbove && (over === undefined || now > over[1])) {
        over = [name, now, s + rise * until];
      }
    }
    if (over !== undefined) {
      const to = Math.max(cfg.lo, floorQ(p * (cfg.target / over[2])));
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
  // A signal with a knee cannot be carried (its curve is flat, then steep); it must read no more than the
  // worst severity at the anchor, as it would below that load on the same target.
  const load = perPercent * p;
  const fitsAnchor = ctx.values.every(([n, sv]) =>
    LAW.signals[n].knee ? sv <= anchor[1] : project(sv, load, anchor[0], elasticityOf(ctx, n)) <= cfg.target,
  );
  if (to > p * (1 + Math.max(LAW.followShare, raiseShareNeeded(ctx))) && fitsAnchor && p < cfg.hi) {
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
export function settledHere(ctx: Context): boolean {
  const rs = judged(ctx);
  if (ctx.visibility < 1 || ctx.blindEndedAt !== undefined || rs.length < JUDGED_READINGS) return false;
  // With a production rate each reading is kept as the percentage that gives its load at the production
  // now, so production noise scatters them around the percentage in effect (which is what holding the load
  // means); without one they are the percentage the window reflected, and must match it.
  const tolerance = ctx.feedForward ? LAW.settledLoadShare : 0.005;
  if (!rs.every((r) => Math.abs(r[1] - ctx.p) <= ctx.p * tolerance)) return false;
  // Readings that disagree by more than the gap a top-up keeps, or by more than their measured noise
  // explains, are not evidence of room (something moved).
  for (const [name] of ctx.values) {
    const e = elasticityOf(ctx, name);
    const xs: number[] = [];
    for (const r of rs) {
      const sv = r[col(name)];
      if (sv !== null && r[1] > 0) xs.push(project(sv, r[1], ctx.p, e));
    }
    const allowed = Math.max(LAW.topUpGap / 2, LAW.noiseMargin * noiseOf(ctx, name));
    if (xs.length > 0 && Math.max(...xs) - Math.min(...xs) > allowed) return false;
  }
  return true;
}

/**
 * The largest factor one raise may apply on a guardrail's model. A signal that grows about linearly with
 * load from a positive idle level (CPU) is over-estimated by a proportional projection, so its model is
 * safe to follow at once, up to LAW.modelStep. A signal with a knee is capped at the policy's
 * maxIncreaseFactor while its elasticity is assumed, and at its square once settled readings at two loads
 * have measured it.
 */
function stepCap(ctx: Context, name: SignalName): number {
  if (!LAW.signals[name].knee) return Math.max(ctx.cfg.factor, LAW.modelStep);
  return measuredCurve(ctx, name) !== undefined ? ctx.cfg.factor ** 2 : ctx.cfg.factor;
}

/** The signal's elasticity as measured by settled readings at two loads; undefined while assumed. */
function measuredCurve(ctx: Context, name: SignalName): number | undefined {
  const point = ctx.curve[name];
  return point !== undefined && point[3] === 1 ? point[2] : undefined;
}

/**
 * The percentage up to which the signals with a knee are known to stay calm: latency and errors of a
 * target that one resource limits are functions of its utilisation, as CPU is, so a knee signal read calm
 * (`calm`: at most its severity then) while CPU read a given severity stays so wherever CPU reads no more,
 * whatever the capacity did since. CPU is carried linearly through zero, which over-states it (its idle
 * floor), so the reach errs low. 0 when there is no such memory, CPU is not read, or a knee signal reads
 * above what it read then (the relation no longer holds: something else slowed the target).
 */
function calmReach(ctx: Context, smoothed: ReadonlyArray<readonly [SignalName, number]>): number {
  const calm = ctx.calm;
  if (calm === undefined) return 0;
  const cpu = smoothed.find(([n]) => n === 'cpuUtilization')?.[1];
  if (cpu === undefined || cpu <= 0) return 0;
  for (const [n, sv] of smoothed) if (LAW.signals[n].knee && sv > calm[1]) return 0;
  return ctx.p * (calm[0] / cpu);
}

/**
 * The calm memory after this decision: `[CPU severity, worst knee severity, when]` of the settled reading with
 * the highest CPU at which every knee signal stayed at most LAW.calmKnee; dropped when a knee signal reads
 * above it (within its limit) at a settled CPU no higher, and after the breach memory's time.
 */
export function nextCalm(ctx: Context): CoreState['calm'] {
  let calm = ctx.calm;
  const cpu = ctx.values.find(([n]) => n === 'cpuUtilization')?.[1];
  const knees = ctx.values.filter(([n]) => LAW.signals[n].knee).map(([, sv]) => sv);
  const kneeNow = knees.length > 0 ? Math.max(...knees) : undefined;
  if (calm !== undefined) {
    const stale = ctx.now - calm[2] >= ctx.cfg.memoryS * 1000;
    // A breach is no contradiction: in an overload the quantile shows the worst of the window at once
    // while CPU, a mean over it, trails, and the knee was met above the calm level, not below it. A knee
    // signal that reads high but within its limit at a settled CPU no higher is: the target slowed for
    // another reason (a dependency), and the relation to CPU no longer holds.
    const contradicted =
      ctx.visibility === 1 &&
      cpu !== undefined &&
      kneeNow !== undefined &&
      kneeNow <= 1 &&
      cpu <= calm[0] &&
      kneeNow > calm[1] * LAW.calmSlack;
    if (stale || contradicted) calm = undefined;
  }
  const full = ctx.values.length === ctx.cfg.guardrails.length;
  if (
    full &&
    cpu !== undefined &&
    kneeNow !== undefined &&
    ctx.visibility === 1 &&
    ctx.blindEndedAt === undefined &&
    cpu > 0 &&
    cpu <= 1 &&
    kneeNow <= LAW.calmKnee &&
    (calm === undefined || cpu > calm[0])
  ) {
    calm = [sig(cpu), sig(Math.max(kneeNow, calm?.[1] ?? 0)), ctx.now];
  }
  return calm;
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
    for (const r of judged(ctx)) {
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
  // Size the raise from the model of the target: the percentage at which each guardrail would reach the
  // aim, capped by how far that model can be trusted (stepCap).
  let to = Number.POSITIVE_INFINITY;
  for (const [i, [name, sv]] of smoothed.entries()) {
    const aim = Math.max(
      1 - cfg.hysteresis,
      cfg.target - LAW.noiseMargin * Math.max(spreads[i] ?? 0, noiseOf(ctx, name)),
    );
    const traits = LAW.signals[name];
    // On a knee signal the calm memory is an observation where the model and its step cap are estimates:
    // it may reach further than they do, never further than CPU's own model allows.
    const calm = traits.knee ? calmReach(ctx, smoothed) : 0;
    to = Math.min(to, Math.max(calm, p * stepCap(ctx, name) + cfg.step));
    if (sv > 0) to = Math.min(to, Math.max(calm, p * (aim / sv) ** (1 / elasticityOf(ctx, name))));
    if (traits.knee) {
      // A knee is invisible from below: shrink factor and step with the cube of the remaining
      // distance to the target, so the last stretch is walked in small steps whatever the estimate says.
      // (p99 of an M/M/1 queue at half its limit can be within 7 % of it.) Up to a CPU level at which
      // this signal was seen calm, though, the knee is known not to be there (see calmReach).
      const room = (1 - Math.min(1, sv / cfg.target)) ** LAW.kneeExponent;
      const kneeCap = p * (1 + (stepCap(ctx, name) - 1) * room) + cfg.step * room;
      to = Math.min(to, Math.max(kneeCap, calm));
    }
  }
  let near = '';
  const b = ctx.breach;
  if (b !== undefined) {
    // Near the level of the last breach, creep up additively (CUBIC's plateau): that level is the best
    // evidence of where capacity ends. With a request rate the level is compared in mirrored requests/s,
    // so that a change in production traffic moves it to the right percentage.
    const level = breachLevel(ctx, b);
    const lowEdge = level * (1 - cfg.hysteresis * LAW.breachApproach);
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
      // Rounded up onto the grid, so that the smallest raise worth a write survives the grid.
      const creep =
        p + ceilQ(Math.max(cfg.step / 2, cfg.minChange, LAW.quantumPercent, p * raiseShareNeeded(ctx)));
      to = Math.min(to, Math.max(lowEdge, creep));
      near = `, near the last breach at ${pct(level)} %`;
    }
  }
  to = to >= cfg.hi ? cfg.hi : Math.max(p, floorQ(to));
  const head = `max severity ${fmt(wSev)} (${wName})${near}`;
  // Small raises are not worth a write (each one costs API traffic, an audit line and write budget); the
  // last step to maxPercent is exempt from the relative threshold so the bound can be reached.
  const tooSmall = to - p < Math.max(cfg.minChange, LAW.quantumPercent / 2);
  const share = raiseShareNeeded(ctx);
  // (With a hair of tolerance: a raise of exactly the smallest share must not fail on binary rounding.)
  if (tooSmall || (to < cfg.hi && to - p < p * share - 1e-9)) {
    const least = Math.max(cfg.minChange, p * share);
    return hold(ctx, 'ChangeTooSmall', `${head}: raise ${pct(p)} -> ${pct(to)} is below ${pct(least)} pp`);
  }
  if (!budgetLeft(ctx)) return hold(ctx, 'WriteBudget', budgetMessage(ctx, to));
  return { percent: to, reason: 'Headroom', message: `${head}: raise ${pct(p)} -> ${pct(to)}` };
}

export function aboveMax(ctx: Context): Outcome {
  const shown = ctx.unset ? 'unset (Istio mirrors 100 %)' : `${pct(ctx.p)} %`;
  const hi = pct(ctx.cfg.hi);
  return {
    percent: ctx.cfg.hi,
    reason: 'OutOfBounds',
    message: `current ${shown} is above maxPercent ${hi}: set ${hi}`,
  };
}

/** The law proper, for a percentage already known to be >= minPercent. */
export function law(ctx: Context): Outcome {
  const { cfg, p, now } = ctx;

  // 1. Breach: decrease on the latest value, even when other signals are missing.
  if (ctx.values.some(([, s]) => s > 1)) return cut(ctx);
  if (p > cfg.hi) return aboveMax(ctx);

  // 2. A breach the readings do not show yet.
  const ahead = productionAhead(ctx);
  if (ahead !== undefined) return ahead;
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
    const back = visibleShare((now - ctx.blindEndedAt) / 1000, cfg.windowS, cfg.lagS);
    if (back < 1) {
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

/** Reasons after which the percentage keeps its load as production moves: the law left it where it was. */
const HOLDS_LOAD: ReadonlySet<Reason> = new Set<Reason>([
  'WithinTolerance',
  'Settling',
  'Cooldown',
  'ChangeTooSmall',
  'WriteBudget',
  'AtBound',
  'NoData',
]);

/**
 * Feed-forward: the law holds the mirrored load, not the percentage. When it would hold, and production
 * moved since the percentage was set (`held`, requests/s then), the percentage moves by the inverse
 * factor: down at once (a rise in production reaches the target before its readings show it), up once
 * the change is worth a write, never while blind, and within the write budget. The load itself was judged
 * before, so this needs no new evidence.
 */
export function holdLoad(ctx: Context, out: Outcome, held: number | undefined): Outcome {
  const { cfg, p } = ctx;
  if (!ctx.feedForward || held === undefined || out.percent !== p || !HOLDS_LOAD.has(out.reason)) return out;
  if (ctx.unset || p <= 0) return out;
  // The production read now, not carried forward: `held` is a reading too, and comparing a carried value
  // with a plain one would ratchet the percentage down through every rise (productionAhead looks ahead).
  // Production is read over a short window, which is noisy and, after a missed scrape, reads low. Down
  // (production up) goes by the median of the last three readings, so one outlier moves nothing; up
  // (production down, the risky way) only once all three agree, by the highest of them.
  const last = ctx.production.slice(0, 3).map(([, r]) => r);
  const mid = median(last);
  const high = Math.max(...last);
  if (!(mid > 0)) return out;
  const now = (p * held) / mid < p ? mid : high;
  const to = clamp((p * held) / now, cfg.lo, cfg.hi);
  const head = `production ${fmt(held)} -> ${fmt(now)} req/s since ${pct(p)} % was set`;
  // Production noise is not a move to follow: chasing it with readings that trail it by half their window
  // moves the percentage against the noise as often as with it, and spends the write budget.
  const beyond = LAW.followNoise * ctx.productionNoise;
  if (to < p * (1 - Math.max(LAW.followDownShare, beyond))) {
    const down = Math.max(cfg.lo, floorQ(to));
    if (p - down < smallestCut(ctx)) return out;
    return {
      percent: down,
      reason: 'FollowProduction',
      message: `${head}: keep the load, ${pct(p)} -> ${pct(down)}`,
      kind: 'ease',
    };
  }
  const blind = ctx.obs.some(([, o]) => o.kind === 'blind');
  if (to > p * (1 + Math.max(LAW.followShare, beyond)) && !blind && ctx.values.length > 0) {
    const up = to >= cfg.hi ? cfg.hi : floorQ(to);
    if (up - p < Math.max(cfg.minChange, LAW.quantumPercent)) return out;
    if (!budgetLeft(ctx)) return hold(ctx, 'WriteBudget', budgetMessage(ctx, up));
    return {
      percent: up,
      reason: 'FollowProduction',
      message: `${head}: keep the load, ${pct(p)} -> ${pct(up)}`,
    };
  }
  return out;
}

/** The breach memory after a decrease of the given kind (see Outcome.kind). */
export function rememberBreach(
  out: Outcome,
  breach: ControllerState['breach'],
  now: number,
  p: number,
  pEff: number,
  rps: number | undefined,
  productionGrowth = 1,
): ControllerState['breach'] {
  // A retract answers a projection, not a breach: remembering the raised level as one would make every
  // later raise creep below it for the whole memory, on an estimate that errs high by design (a linear
  // projection through zero over-states a signal with an idle floor, as CPU has).
  if (out.kind === undefined || out.kind === 'ease' || out.kind === 'retract') return breach;
  if (out.kind === 'trim' && breach !== undefined) return { ...breach, at: now };
  // A breach reading reflects the window-weighted percentage.
  const level = pEff <= 0 ? p : pEff;
  const percent = round(clamp(level, 0, 100), 2);
  // In requests/s at that level; when production grew since the window the reading covers, the load that
  // broke the target is the grown one (the window's request rate trails a surge), and remembering the
  // window's would make every later raise creep far below what the target took before the surge.
  const grown = Math.max(1, Number.isFinite(productionGrowth) ? productionGrowth : 1);
  const atLevel = rps !== undefined && pEff > 0 ? sig((rps * level * grown) / pEff) : 0;
  return {
    at: now,
    percent,
    ...(atLevel > 0 ? { rps: atLevel } : {}),
    ...(out.signal !== undefined ? { signal: out.signal } : {}),
  };
}

/**
 * The load anchor after this decision: a settled reading inside the band, at or below the target, becomes
 * the new anchor; a cut drops it (the load it stood for was too much after all), unless the breach came at
 * a load well above it.
 */
export function nextAnchor(ctx: Context, out: Outcome, changed: boolean): CoreState['anchor'] {
  if (changed && (out.kind === 'cut' || out.kind === 'retract')) {
    // A breach at a load well above the anchor's (production surged under a steady percentage) says
    // nothing against the anchor: the target took that load well, and it is where to come back to.
    const a = ctx.anchor;
    const load = ctx.rps !== undefined && ctx.pEff > 0 ? (ctx.rps * ctx.p) / ctx.pEff : undefined;
    return a !== undefined && load !== undefined && load > a[0] * LAW.anchorAbove ? a : undefined;
  }
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
export function updateCurve(
  prev: Partial<Record<SignalName, CurvePoint>> | undefined,
  values: ReadonlyArray<readonly [SignalName, number]>,
  pEff: number,
  visibility: number,
): Partial<Record<SignalName, CurvePoint>> {
  const curve: Partial<Record<SignalName, CurvePoint>> = { ...(prev ?? {}) };
  const pe = round(pEff, 2);
  // Only a window that reflects one percentage throughout says what that percentage costs: a mix of two
  // gives a point between them that, for anything but a linear signal, bends the estimate.
  // A sum over the window (CPU seconds) is the time-weighted mean of what the window covers, so a
  // window half at each percentage still gives a point on a linear curve, at the weighted percentage.
  if (pe <= 0 || values.some(([, s]) => s > 1)) return curve;
  for (const [name, s] of values) {
    if (s <= 0) continue;
    const traits = LAW.signals[name];
    if (visibility < LAW.settleVisibility) continue;
    const point = curve[name];
    if (point === undefined) {
      curve[name] = [pe, sig(s), traits.initial, 0];
      continue;
    }
    const dp = Math.log(pe / point[0]);
    // Close percentages say more about noise than about the curve; keep the older point until they differ.
    if (Math.abs(dp) >= Math.log(LAW.curveSpread)) {
      const estimate = Math.log(s / point[1]) / dp;
      const e = Number.isFinite(estimate) ? estimate : traits.initial;
      // Kept as measured (the floor of each kind of signal applies where it is used): a flat queueing
      // signal says how far it is from its knee.
      curve[name] = [pe, sig(s), round(clamp(e, MIN_ELASTICITY, MAX_ELASTICITY), 2), 1];
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
