/**
 * The controller's persisted memory: size limits and the validating reader. The state comes back from a
 * Kubernetes annotation that anyone with edit rights can change, so it is parsed like any untrusted input:
 * anything malformed yields `undefined` (the controller then starts afresh, which is always safe).
 */
import type { ControllerState, CurvePoint, Reading, SignalName } from './types.js';
import { SIGNAL_NAMES } from './types.js';

/** The only state format this version reads and writes. */
export const STATE_VERSION = 1;

/** Most percentage changes kept in the timeline; older ones are folded into the oldest entry. */
export const MAX_TRACK_ENTRIES = 8;
/** Readings kept: for a trend over a window's span; the median of increases uses the newest JUDGED_READINGS. */
export const MAX_RECENT_READINGS = 6;
/** Readings the median of increases and the settled test are taken over. */
export const JUDGED_READINGS = 3;
/**
 * Most write timestamps kept. Budgets above this many writes per hour are enforced as this many (one a
 * minute), which keeps the state well under 1 KB; that errs on the side of fewer writes.
 */
export const MAX_WRITES_TRACKED = 60;

/** Range of the elasticity a curve estimate may hold: from strongly sub-linear to a very steep knee. */
export const MIN_ELASTICITY = 0.05;
export const MAX_ELASTICITY = 8;

const KEYS = new Set([
  'version',
  'at',
  'percent',
  'track',
  'recent',
  'writesAgo',
  'cooldownUntil',
  'breach',
  'cutAt',
  'blindSince',
  'blindEndedAt',
  'curve',
  'anchor',
  'prod',
  'basis',
  'held',
  'move',
  'noise',
  'prodNoise',
  'calm',
]);

/** Production readings kept: enough to cover a rate window at any interval the grid of time scales uses. */
export const MAX_PRODUCTION_READINGS = 8;

/**
 * Largest "percentage" a reading may carry once expressed at today's production: a reading taken when
 * production was 100 times higher than now is of no use, and the bound keeps hostile states finite.
 */
export const MAX_EQUIVALENT_PERCENT = 10_000;

/**
 * The persisted state as this module reads and writes it: the shared ControllerState plus the load anchor,
 * `[mirrored requests/s, worst severity]` of the last settled reading inside the hold band. The anchor lets
 * the percentage follow production traffic: the target's cost depends on the load it gets, not on the
 * percentage, so when production falls the same load needs a higher percentage, and the reverse.
 */
export interface CoreState extends ControllerState {
  readonly anchor?: readonly [rps: number, severity: number];
  /** Production requests/s read at the last decisions, newest first: `[secondsAgo, rps]`. */
  readonly prod?: ReadonlyArray<readonly [secondsAgo: number, rps: number]>;
  /**
   * The production requests/s the percentages in `recent` and `curve` are expressed at: each reading is
   * stored as the percentage that would give the target the same load at this production, so that when
   * production moves, the readings move with it.
   */
  readonly basis?: number;
  /** Production requests/s when the percentage in effect was set: the load it stands for is kept. */
  readonly held?: number;
  /**
   * The last change of the load: `[secondsAgo, percentage before it (at the basis), direction]`. Writes
   * that follow production keep the load and are not changes of it.
   */
  readonly move?: readonly [secondsAgo: number, from: number, direction: number];
  /** Each signal's noise, in severity (see updateNoise); per SIGNAL_NAMES, null when never measured. */
  readonly noise?: readonly [cpu: number | null, errors: number | null, latency: number | null];
  /**
   * Production's own noise: a moving average of the second differences of ln production over readings one
   * interval apart (see updateProductionNoise in decide.ts).
   */
  readonly prodNoise?: number;
  /**
   * Where the signals with a knee were seen calm: `[CPU severity, worst knee severity then, when (epoch
   * ms)]`; raises up to that CPU level are not held back by the knee (see calmReach in rules.ts).
   */
  readonly calm?: readonly [cpu: number, knee: number, at: number];
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function finite(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x);
}

function isPercent(x: unknown): x is number {
  return finite(x) && x >= 0 && x <= 100;
}

function isEquivalent(x: unknown): x is number {
  return finite(x) && x >= 0 && x <= MAX_EQUIVALENT_PERCENT;
}

function isAge(x: unknown): x is number {
  return finite(x) && x >= 0;
}

/** Non-decreasing ages: entries are newest first. */
function ascending(ages: readonly number[]): boolean {
  for (let i = 1; i < ages.length; i++) {
    const a = ages[i - 1];
    const b = ages[i];
    if (a === undefined || b === undefined || b < a) return false;
  }
  return true;
}

function parseTrack(x: unknown): Array<readonly [number, number]> | undefined {
  if (!Array.isArray(x) || x.length < 1 || x.length > MAX_TRACK_ENTRIES) return undefined;
  const out: Array<readonly [number, number]> = [];
  for (const e of x as unknown[]) {
    if (!Array.isArray(e) || e.length !== 2) return undefined;
    const [age, p] = e as unknown[];
    if (!isAge(age) || !isPercent(p)) return undefined;
    out.push([age, p]);
  }
  return ascending(out.map((e) => e[0])) ? out : undefined;
}

function parseSeverity(x: unknown): number | null | undefined {
  if (x === null) return null;
  return finite(x) && x >= 0 ? x : undefined;
}

function parseRecent(x: unknown): Reading[] | undefined {
  if (!Array.isArray(x) || x.length > MAX_RECENT_READINGS) return undefined;
  const out: Reading[] = [];
  for (const e of x as unknown[]) {
    if (!Array.isArray(e) || e.length !== 5) return undefined;
    const [age, p, c, er, l] = e as unknown[];
    const cs = parseSeverity(c);
    const es = parseSeverity(er);
    const ls = parseSeverity(l);
    if (!isAge(age) || !isEquivalent(p) || cs === undefined || es === undefined || ls === undefined) {
      return undefined;
    }
    out.push([age, p, cs, es, ls]);
  }
  return ascending(out.map((e) => e[0])) ? out : undefined;
}

function parseProduction(x: unknown): Array<readonly [number, number]> | undefined {
  if (!Array.isArray(x) || x.length > MAX_PRODUCTION_READINGS) return undefined;
  const out: Array<readonly [number, number]> = [];
  for (const e of x as unknown[]) {
    if (!Array.isArray(e) || e.length !== 2) return undefined;
    const [age, rps] = e as unknown[];
    if (!isAge(age) || !finite(rps) || rps <= 0) return undefined;
    out.push([age, rps]);
  }
  return ascending(out.map((e) => e[0])) ? out : undefined;
}

function parseWrites(x: unknown): number[] | undefined {
  if (!Array.isArray(x) || x.length > MAX_WRITES_TRACKED) return undefined;
  const out: number[] = [];
  for (const e of x as unknown[]) {
    if (!isAge(e)) return undefined;
    out.push(e);
  }
  return ascending(out) ? out : undefined;
}

function parseBreach(x: unknown): ControllerState['breach'] | undefined {
  if (!isRecord(x)) return undefined;
  for (const k of Object.keys(x)) if (!['at', 'percent', 'rps', 'signal'].includes(k)) return undefined;
  const { at, percent, rps, signal } = x;
  if (!finite(at) || !isPercent(percent)) return undefined;
  let breach: NonNullable<ControllerState['breach']> = { at, percent };
  if (rps !== undefined) {
    if (!finite(rps) || rps <= 0) return undefined;
    breach = { ...breach, rps };
  }
  if (signal !== undefined) {
    if (typeof signal !== 'string' || !(SIGNAL_NAMES as readonly string[]).includes(signal)) return undefined;
    breach = { ...breach, signal: signal as SignalName };
  }
  return breach;
}

function parseCurve(x: unknown): Partial<Record<SignalName, CurvePoint>> | undefined {
  if (!isRecord(x)) return undefined;
  const out: Partial<Record<SignalName, CurvePoint>> = {};
  for (const [k, v] of Object.entries(x)) {
    if (!(SIGNAL_NAMES as readonly string[]).includes(k)) return undefined;
    if (!Array.isArray(v) || v.length < 3 || v.length > 4) return undefined;
    const [p, s, e, m] = v as unknown[];
    if (m !== undefined && m !== 0 && m !== 1) return undefined;
    if (
      !isEquivalent(p) ||
      p <= 0 ||
      !finite(s) ||
      s <= 0 ||
      !finite(e) ||
      e < MIN_ELASTICITY ||
      e > MAX_ELASTICITY
    ) {
      return undefined;
    }
    out[k as SignalName] = m === undefined ? [p, s, e] : [p, s, e, m];
  }
  return out;
}

/**
 * Validates a controller state read from an untrusted place (a Kubernetes annotation).
 *
 * Accepts either the parsed JSON value or the JSON text itself. Never throws.
 * @returns the state, or `undefined` when the input is not a complete, well-formed state of this version
 *   (unknown keys, wrong types, non-finite numbers, percentages outside 0–100, unordered ages, oversized arrays).
 */
export function parseControllerState(json: unknown): CoreState | undefined {
  let x: unknown = json;
  if (typeof x === 'string') {
    try {
      x = JSON.parse(x);
    } catch {
      return undefined;
    }
  }
  if (!isRecord(x)) return undefined;
  for (const k of Object.keys(x)) if (!KEYS.has(k)) return undefined;
  if (x.version !== STATE_VERSION || !finite(x.at) || !isPercent(x.percent)) return undefined;
  const track = parseTrack(x.track);
  const recent = parseRecent(x.recent);
  const writesAgo = parseWrites(x.writesAgo);
  if (track === undefined || recent === undefined || writesAgo === undefined) return undefined;
  let state: CoreState = {
    version: STATE_VERSION,
    at: x.at,
    percent: x.percent,
    track,
    recent,
    writesAgo,
  };
  if (x.cooldownUntil !== undefined) {
    if (!finite(x.cooldownUntil)) return undefined;
    state = { ...state, cooldownUntil: x.cooldownUntil };
  }
  if (x.breach !== undefined) {
    const breach = parseBreach(x.breach);
    if (breach === undefined) return undefined;
    state = { ...state, breach };
  }
  if (x.cutAt !== undefined) {
    if (!finite(x.cutAt)) return undefined;
    state = { ...state, cutAt: x.cutAt };
  }
  if (x.blindSince !== undefined) {
    if (!finite(x.blindSince)) return undefined;
    state = { ...state, blindSince: x.blindSince };
  }
  if (x.blindEndedAt !== undefined) {
    if (!finite(x.blindEndedAt)) return undefined;
    state = { ...state, blindEndedAt: x.blindEndedAt };
  }
  if (x.anchor !== undefined) {
    const a = x.anchor;
    if (!Array.isArray(a) || a.length !== 2) return undefined;
    const [rps, severity] = a as unknown[];
    if (!finite(rps) || rps <= 0 || !finite(severity) || severity < 0) return undefined;
    state = { ...state, anchor: [rps, severity] };
  }
  if (x.prod !== undefined) {
    const prod = parseProduction(x.prod);
    if (prod === undefined) return undefined;
    state = { ...state, prod };
  }
  if (x.basis !== undefined) {
    if (!finite(x.basis) || x.basis <= 0) return undefined;
    state = { ...state, basis: x.basis };
  }
  if (x.noise !== undefined) {
    const n = x.noise;
    if (!Array.isArray(n) || n.length !== 3) return undefined;
    const parsed = (n as unknown[]).map(parseSeverity);
    const [a, b, c] = parsed;
    if (a === undefined || b === undefined || c === undefined) return undefined;
    state = { ...state, noise: [a, b, c] };
  }
  if (x.prodNoise !== undefined) {
    if (!finite(x.prodNoise) || x.prodNoise < 0 || x.prodNoise > 10) return undefined;
    state = { ...state, prodNoise: x.prodNoise };
  }
  if (x.calm !== undefined) {
    const c = x.calm;
    if (!Array.isArray(c) || c.length !== 3) return undefined;
    const [cpu, knee, at] = c as unknown[];
    if (!finite(cpu) || cpu <= 0 || cpu > 1 || !finite(knee) || knee < 0 || knee > 1 || !finite(at)) {
      return undefined;
    }
    state = { ...state, calm: [cpu, knee, at] };
  }
  if (x.move !== undefined) {
    const m = x.move;
    if (!Array.isArray(m) || m.length !== 3) return undefined;
    const [age, from, dir] = m as unknown[];
    if (!isAge(age) || !isEquivalent(from) || (dir !== -1 && dir !== 0 && dir !== 1)) return undefined;
    state = { ...state, move: [age, from, dir] };
  }
  if (x.held !== undefined) {
    if (!finite(x.held) || x.held <= 0) return undefined;
    state = { ...state, held: x.held };
  }
  if (x.curve !== undefined) {
    const curve = parseCurve(x.curve);
    if (curve === undefined) return undefined;
    state = { ...state, curve };
  }
  return state;
}
