/**
 * A small seeded pseudo-random generator for the simulator. Every source of randomness in a simulation
 * draws from one of these, never from Math.random, so that a seed reproduces a run bit for bit.
 */

/** A deterministic stream of pseudo-random numbers. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Standard normal (mean 0, standard deviation 1). */
  normal(): number;
  /** Poisson-distributed count with mean `lambda` (normal approximation above 30). */
  poisson(lambda: number): number;
}

/** Mixes a 32-bit value (splitmix32 finaliser) so that nearby seeds give unrelated streams. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * Derives the seed of a named sub-stream. Each part of the simulation (traffic, measurement noise, missed
 * scrapes, bursts) has its own stream, so that switching one of them on does not shift the numbers the
 * others draw.
 */
export function streamSeed(seed: number, name: string): number {
  // FNV-1a over the name, then mixed with the seed.
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32((h ^ mix32(seed >>> 0)) >>> 0);
}

/**
 * mulberry32: a 32-bit generator with a full 2^32 period, good enough for noise and event times.
 * @param seed any integer; only its low 32 bits are used.
 */
export function createRandom(seed: number): Random {
  let a = seed >>> 0;
  // Box-Muller yields two normals per draw; the second is kept for the next call.
  let spare: number | undefined;
  const next = (): number => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = (): number => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    // 1 - next() is in (0, 1], so the logarithm is finite.
    const r = Math.sqrt(-2 * Math.log(1 - next()));
    const theta = 2 * Math.PI * next();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
  const poisson = (lambda: number): number => {
    if (!(lambda > 0)) return 0;
    if (lambda > 30) return Math.max(0, Math.round(lambda + Math.sqrt(lambda) * normal()));
    // Knuth's method: exact, and cheap for the small means of a lightly loaded target.
    const limit = Math.exp(-lambda);
    let k = 0;
    let p = next();
    while (p > limit) {
      k++;
      p *= next();
    }
    return k;
  };
  return { next, normal, poisson };
}
