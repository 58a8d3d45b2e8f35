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
 * `lagS` ago (propagation plus the mean age of the newest sample). For a signal proportional to load this is exactly the percentage the reading shows.
 */
export function effectivePercent(track: Track, windowS: number, lagS: number): number {
  const newest = lagS;
  const oldest = lagS + windowS;
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
export function visibleShare(ageS: number, windowS: number, lagS: number): number {
  return clamp((ageS - lagS) / windowS, 0, 1);
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

/** Production readings, newest first: `[secondsAgo, requests/s]`, each a rate over the production window. */
export type ProductionTrack = ReadonlyArray<readonly [number, number]>;

/**
 * Production requests/s averaged over the span a rate reading taken now covers (from `lagS` to
 * `lagS + windowS` seconds ago; production reaches the target without the propagation of a write).
 * Each production reading stands for the rate over its own window, which ends half a scrape before it
 * was taken; a moment no reading covers takes the reading nearest to it.
 * @returns undefined when there is no production reading.
 */
export function productionOverSpan(
  prod: ProductionTrack,
  lagS: number,
  windowS: number,
  scrapeS: number,
  productionWindowS: number,
): number | undefined {
  if (prod.length === 0) return undefined;
  const steps = 16;
  let sum = 0;
  for (let i = 0; i < steps; i++) {
    const age = lagS + (windowS * (i + 0.5)) / steps;
    let best = prod[0]?.[1] ?? 0;
    let bestDistance = Number.POSITIVE_INFINITY;
    for (const [a, rps] of prod) {
      const from = a + scrapeS / 2;
      const to = from + productionWindowS;
      const d = age < from ? from - age : age > to ? age - to : 0;
      if (d < bestDistance) {
        bestDistance = d;
        best = rps;
      }
      if (d === 0) break;
    }
    sum += best;
  }
  return sum / steps;
}
