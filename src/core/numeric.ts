/**
 * Small numeric helpers of the core. Every number that leaves the core goes through one of them, so no NaN
 * or Infinity can escape and -0 never appears (it would not survive a JSON round trip).
 */
import { LAW } from './law.js';
import type { SignalName } from './types.js';
import { SIGNAL_NAMES } from './types.js';

export function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

export function clean(x: number): number {
  return x === 0 ? 0 : x;
}

/** Down to the quantum, tolerating binary noise just below a grid point. */
export function floorQ(x: number): number {
  const k = 1 / LAW.quantumPercent;
  return clean(Math.floor(x * k + 1e-6) / k);
}

export function ceilQ(x: number): number {
  const k = 1 / LAW.quantumPercent;
  return clean(Math.ceil(x * k - 1e-6) / k);
}

export function round(x: number, decimals: number): number {
  const k = 10 ** decimals;
  return clean(Math.round(x * k) / k);
}

export function sig(x: number): number {
  return clean(Number(x.toPrecision(4)));
}

export function fmt(x: number): string {
  return String(Number(x.toPrecision(3)));
}

export function pct(x: number): string {
  return String(round(x, 2));
}

export function pick(x: unknown, fallback: number, lo: number, hi: number): number {
  return typeof x === 'number' && Number.isFinite(x) ? clamp(x, lo, hi) : fallback;
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const a = s[mid] ?? 0;
  return s.length % 2 === 1 ? a : ((s[mid - 1] ?? a) + a) / 2;
}

/** Index of a signal's severity in a Reading. */
export function col(name: SignalName): 2 | 3 | 4 {
  return (SIGNAL_NAMES.indexOf(name) + 2) as 2 | 3 | 4;
}
