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
 * - feed-forward: with the production rate, every reading is kept as the percentage giving the same load
 *   at today's production, so the law compares loads; when it would hold, it holds the load, and a rise in
 *   production is met with a decrease in the same cycle (rules.ts: holdLoad, productionAhead);
 * - below the band, raise toward the target severity along each signal's model (its elasticity with
 *   respect to load, measured from settled readings), by as much as the model's confidence allows, in
 *   small steps near a knee, and additively near the level of the last breach;
 * - dead time from the observation (scrape interval, window, propagation; deadtime.ts, settings.ts): every
 *   reading is related to the percentage and the production it reflects, raises wait until half the window
 *   reflects the previous change of the load, a raise that projects past the limit is taken back before
 *   the breach shows, a drift (a robust slope beyond the measured noise) is met before it shows, and a
 *   cut still in flight is not cut again on the same stale readings;
 * - missing data never pushes toward the risky side, and long blindness decays toward minPercent.
 */
import { effectivePercent, productionOverSpan, pruneTrack, type Track, visibleShare } from './deadtime.js';
import { productionWindowSeconds } from './defaults.js';
import { LAW } from './law.js';
import { clamp, clean, floorQ, median, pct, round, sig } from './numeric.js';
import {
  aboveMax,
  type Context,
  holdLoad,
  law,
  nextAnchor,
  nextCalm,
  type Outcome,
  rememberBreach,
  updateCurve,
} from './rules.js';
import { observe, type Settings, settings } from './settings.js';
import {
  type CoreState,
  MAX_EQUIVALENT_PERCENT,
  MAX_PRODUCTION_READINGS,
  MAX_RECENT_READINGS,
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

export { LAW, type SignalTraits } from './law.js';
export { MAX_WRITES_TRACKED, parseControllerState, STATE_VERSION } from './state.js';
export type { ControllerState } from './types.js';

const HOUR_SECONDS = 3600;

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

/**
 * The production readings with every one but the newest replaced by the median of it and its neighbours:
 * a short production window has outliers (a missed scrape, a counter reset), and one of them would
 * otherwise read as a surge or a slump. The newest stays as read, so that a rise is seen at once.
 */
function smoothProduction(prod: ReadonlyArray<readonly [number, number]>): Array<readonly [number, number]> {
  return prod.map(([a, r], i) => {
    if (i === 0) return [a, r] as const;
    const near = [prod[i - 1]?.[1], r, prod[i + 1]?.[1]].filter((x): x is number => x !== undefined);
    return [a, median(near)] as const;
  });
}

/**
 * Production when a write made now lands, for decreases only: a rising production rate is a rate over a
 * window, so it trails the truth by half that window and half a scrape, and the write takes the
 * propagation to apply, and the next decision can act only an interval later. A rise that lasted two
 * readings and amounts to more than LAW.productionRise, and than LAW.followNoise times production's noise,
 * is carried over that lead, at most doubling the reading.
 */
function productionLanding(
  prod: ReadonlyArray<readonly [number, number]>,
  cfg: Settings,
  noise: number,
): number {
  const [a0, p0] = prod[0] ?? [0, 0];
  const older = prod[1];
  const oldest = prod[2];
  if (older === undefined || older[0] - a0 <= 0 || older[0] - a0 > 2 * cfg.intervalS + 1) return p0;
  // A rise counts when it has lasted two readings: one reading out of line is as likely a missed scrape.
  // It must also stand out of production's own noise, which rises for a few readings as often as it falls:
  // carried over the lead, a rise of noise would ease the percentage for nothing.
  const least = Math.max(LAW.productionRise, LAW.followNoise * noise);
  if (oldest !== undefined && (older[1] <= oldest[1] || p0 - oldest[1] < least * oldest[1])) {
    return p0;
  }
  const slope = (p0 - older[1]) / (older[0] - a0);
  if (slope <= 0) return p0;
  // Until the write lands, and on until the next decision's write can land.
  const lead =
    productionWindowSeconds(cfg.windowS, cfg.scrapeS) / 2 +
    cfg.scrapeS / 2 +
    cfg.propagationS +
    cfg.intervalS;
  return Math.min(2 * p0, p0 + slope * lead);
}

/**
 * Whether an entry `[secondsAgo, positive value, ...]` (a reading or a production reading) was taken about
 * `n` intervals before now: the differences that measure noise are only meaningful one interval apart.
 */
function intervalsAgo<T extends readonly [number, number, ...unknown[]]>(
  entry: T | undefined,
  n: number,
  intervalS: number,
): entry is T {
  return entry !== undefined && entry[1] > 0 && Math.abs(entry[0] - n * intervalS) <= 0.5 * intervalS;
}

/**
 * Each signal's noise: a moving average of the second differences of successive readings (the older two
 * carried to the percentage the newest reflects, linearly), divided by √3 so that for independent noise of
 * deviation σ it is about 1.13 σ, like a first difference. A second difference is blind to a steady drift,
 * which a slow loss of capacity is: the drift must not pass for noise. Only readings one interval apart
 * count.
 */
function updateNoise(
  prev: CoreState['noise'],
  reading: Reading,
  older: readonly Reading[],
  intervalS: number,
): NonNullable<CoreState['noise']> {
  const out: Array<number | null> = [prev?.[0] ?? null, prev?.[1] ?? null, prev?.[2] ?? null];
  const b1 = older[0];
  const b2 = older[1];
  if (reading[1] <= 0 || !intervalsAgo(b1, 1, intervalS) || !intervalsAgo(b2, 2, intervalS)) {
    return out as unknown as NonNullable<CoreState['noise']>;
  }
  for (let i = 0; i < 3; i++) {
    const now = reading[i + 2];
    const one = b1[i + 2];
    const two = b2[i + 2];
    if (typeof now !== 'number' || typeof one !== 'number' || typeof two !== 'number') continue;
    const d = Math.abs(now - (2 * one * reading[1]) / b1[1] + (two * reading[1]) / b2[1]) / Math.sqrt(3);
    const old = out[i];
    out[i] = sig(old === null || old === undefined ? d : old + LAW.noiseWeight * (d - old));
  }
  return out as unknown as NonNullable<CoreState['noise']>;
}

/**
 * Production's noise: a moving average of |ln P0 - 2 ln P1 + ln P2| / √3 over production readings one
 * interval apart (the second difference, like each signal's noise: a steady ramp of traffic, which is a
 * change to follow, does not count as noise). Each new difference counts at most LAW.productionNoiseClip
 * times the estimate (and at least LAW.productionNoiseFloor), so a surge barely moves it either.
 */
function updateProductionNoise(
  prev: number | undefined,
  ppRead: number | undefined,
  prodOld: ReadonlyArray<readonly [number, number]>,
  intervalS: number,
): number | undefined {
  const b1 = prodOld[0];
  const b2 = prodOld[1];
  if (ppRead === undefined || !intervalsAgo(b1, 1, intervalS) || !intervalsAgo(b2, 2, intervalS)) return prev;
  const d = Math.abs(Math.log(ppRead) - 2 * Math.log(b1[1]) + Math.log(b2[1])) / Math.sqrt(3);
  if (prev === undefined) return sig(Math.min(d, LAW.productionNoiseFloor));
  const clipped = Math.min(d, Math.max(LAW.productionNoiseClip * prev, LAW.productionNoiseFloor));
  return sig(prev + LAW.noiseWeight * (clipped - prev));
}

/** The curve's points carried to the production now (see `basis`). */
function carryCurve(
  curve: Partial<Record<SignalName, CurvePoint>> | undefined,
  carried: (q: number) => number,
): Partial<Record<SignalName, CurvePoint>> | undefined {
  if (curve === undefined) return undefined;
  const out: Partial<Record<SignalName, CurvePoint>> = {};
  for (const [name, point] of Object.entries(curve) as Array<[SignalName, CurvePoint]>) {
    // A point carried below the grid (production grew a hundredfold) says nothing any more: dropped.
    const at = round(carried(point[0]), 2);
    if (at > 0) out[name] = [at, point[1], point[2], point[3] ?? 0];
  }
  return out;
}

export function decide(input: DecideInput): Decision {
  const cfg = settings(input.policy, input.observation);
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
  // Production: the readings and the curve are kept as the percentage that would give the target the same
  // load at the production of the latest decision (the basis). When production moved since, they are
  // carried to the production now, so every rule below compares loads, not percentages.
  const pr = input.productionRate;
  const ppRead = pr?.kind === 'value' && Number.isFinite(pr.value) && pr.value > 0 ? pr.value : undefined;
  const prevBasis = (prev as CoreState | undefined)?.basis;
  // A percentage someone else set has no known production behind it: it is taken as set for now.
  const held =
    prev !== undefined && Math.abs(prev.percent - pIn) <= 1e-9 ? (prev as CoreState).held : undefined;
  const prodOld = ((prev as CoreState | undefined)?.prod ?? []).map(([a, r]) => [a + elapsedS, r] as const);
  const prod = (ppRead !== undefined ? [[0, ppRead] as const, ...prodOld] : prodOld)
    .filter(([a]) => a <= horizonS + cfg.windowS)
    .slice(0, MAX_PRODUCTION_READINGS);
  // The production the law works with: a reading above the median of the last three is taken as read (a
  // rise must be met at once), one below it waits until the next readings confirm it. A short window
  // reads low after a missed scrape, and a low production would carry every reading to a higher
  // percentage: the risky way.
  const smoothed = smoothProduction(prod);
  const ppNow =
    ppRead !== undefined ? Math.max(ppRead, median(prod.slice(0, 3).map(([, r]) => r))) : undefined;
  const basis = ppNow ?? prevBasis;
  const carry = ppNow !== undefined && prevBasis !== undefined ? clamp(prevBasis / ppNow, 1e-3, 1e3) : 1;
  const carried = (q: number): number => Math.min(MAX_EQUIVALENT_PERCENT, q * carry);
  const older = prev
    ? prev.recent.map((r) => [r[0] + elapsedS, carried(r[1]), r[2], r[3], r[4]] as const)
    : [];
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
  // The percentage the window reflects, and the one that would give the same load at the production now.
  const pTrack = effectivePercent(track, cfg.windowS, cfg.lagS);
  const span =
    ppNow !== undefined
      ? productionOverSpan(
          smoothed,
          cfg.scrapeS / 2,
          cfg.windowS,
          cfg.scrapeS,
          productionWindowSeconds(cfg.windowS, cfg.scrapeS),
        )
      : undefined;
  const pEff =
    ppNow !== undefined && span !== undefined
      ? Math.min(MAX_EQUIVALENT_PERCENT, (pTrack * span) / ppNow)
      : pTrack;
  const newest = track[0];
  const before = track[1];
  // The last change of the load, not of the percentage: a write that follows production keeps the load,
  // so the readings need not settle again after it. Someone else's change counts, as from now.
  const prevMove = (prev as CoreState | undefined)?.move;
  const move: CoreState['move'] =
    prev !== undefined && Math.abs(prev.percent - pIn) > 1e-9
      ? [0, prev.percent, Math.sign(pIn - prev.percent)]
      : prevMove !== undefined
        ? [prevMove[0] + elapsedS, carried(prevMove[1]), prevMove[2]]
        : newest !== undefined && before !== undefined
          ? [newest[0], before[1], Math.sign(newest[1] - before[1])]
          : undefined;
  const visibility = move !== undefined ? visibleShare(move[0], cfg.windowS, cfg.lagS) : 1;
  const cutVisibility = cutAgeS !== undefined ? visibleShare(cutAgeS, cfg.windowS, cfg.lagS) : 1;
  const lastDir = move?.[2] ?? 0;
  const lastFrom = move?.[1] ?? pIn;

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
    .filter((r) => r[0] <= Math.max(cfg.intervalS * LAW.recentIntervals, cfg.windowS + cfg.intervalS))
    .slice(0, MAX_RECENT_READINGS);
  const curve = updateCurve(carryCurve(prev?.curve, carried), values, pEff, visibility);
  const noise = updateNoise((prev as CoreState | undefined)?.noise, reading, older, cfg.intervalS);
  // Production decisions are judged against the noise known before this reading: a surge must not first
  // raise the bar it is judged against.
  const prodNoiseBefore = (prev as CoreState | undefined)?.prodNoise;
  const prodNoise = updateProductionNoise(prodNoiseBefore, ppRead, prodOld, cfg.intervalS);

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
    cutAgeS,
    calm: (prev as CoreState | undefined)?.calm,
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
    productionGrowth: ppNow !== undefined && span !== undefined && span > 0 ? ppNow / span : 1,
    noise,
    productionNow: ppNow ?? 0,
    productionLanding:
      ppNow !== undefined ? productionLanding(smoothed, cfg, prodNoiseBefore ?? 0) : undefined,
    production: smoothed,
    productionNoise: prodNoiseBefore ?? 0,
    feedForward: ppNow !== undefined,
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
    out = holdLoad(ctx, law(ctx), held);
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
    writesAgo: (action === 'increase' ? [0, ...writesAgo] : writesAgo)
      .slice(0, MAX_WRITES_TRACKED)
      .map((a) => round(a, 1)),
  };
  const cools = changed && (out.kind === 'cut' || out.kind === 'trim' || out.kind === 'retract');
  const cooling = cools ? now + cfg.cooldownS * 1000 : cooldownUntil;
  if (cooling !== undefined) state = { ...state, cooldownUntil: cooling };
  const remembered = changed ? rememberBreach(out, breach, now, p, pEff, rps, ctx.productionGrowth) : breach;
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
  const calm = nextCalm(ctx);
  if (calm !== undefined) state = { ...state, calm };
  if (noise.some((x) => x !== null)) state = { ...state, noise };
  if (prodNoise !== undefined) state = { ...state, prodNoise };
  if (basis !== undefined) state = { ...state, basis: sig(basis) };
  const moved: CoreState['move'] =
    changed && out.reason !== 'FollowProduction'
      ? [0, round(pIn, 2), Math.sign(percent - pIn)]
      : move !== undefined && move[0] < horizonS
        ? [round(move[0], 1), round(Math.min(MAX_EQUIVALENT_PERCENT, move[1]), 2), move[2]]
        : undefined;
  if (moved !== undefined) state = { ...state, move: moved };
  // The production the percentage now in effect was set for: what holdLoad keeps the load of.
  const heldNext = changed || held === undefined ? ppNow : held;
  if (heldNext !== undefined) state = { ...state, held: sig(heldNext) };
  if (prod.length > 0) state = { ...state, prod: prod.map(([a, r]) => [round(a, 1), sig(r)] as const) };
  const mode: Mode = ppNow !== undefined ? 'FeedForward' : 'FeedbackOnly';
  return { percent, action, reason, message: out.message, severities, state, mode };
}
