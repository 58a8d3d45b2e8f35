/** Dead time: which percentage a reading reflects, and how much of a change a reading shows yet. */
import { LAW } from './law.js';
import { clamp } from './numeric.js';
import { MAX_TRACK_ENTRIES } from './state.js';

// ---------------------------------------------------------------------------------------------------------
// Dead time: which percentage a reading reflects.

export type Track = Array<readonly [number, number]>;

/** Drops timeline entries that no longer matter: the oldest kept one starts before the horizon. */
export function pruneTrack(track: Track, horizonS: number): Track {
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
export function effectivePercent(track: Track, windowS: number): number {
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
export function visibleShare(ageS: number, windowS: number): number {
  return clamp((ageS - LAW.lagSeconds) / windowS, 0, 1);
}

/**
 * A severity read at `pEff` extrapolated to `p`, assuming s ∝ percent^elasticity. The exponent is chosen
 * on the cautious side: at least linear when projecting up, linear when projecting down (after a cut a
 * convex model would promise more relief than a linear one).
 */
export function project(s: number, pEff: number, p: number, elasticity: number): number {
  if (s === 0 || pEff <= 0 || p <= 0) return s;
  const r = p / pEff;
  return Math.min(LAW.severityCap, s * r ** (r >= 1 ? Math.max(1, elasticity) : 1));
}
