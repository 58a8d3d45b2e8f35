/**
 * Property tests run from a fixed seed so that a run is reproducible and the suite's verdict does not
 * depend on chance. FC_SEED picks another seed (or `random` for a fresh one each run) and FC_NUM_RUNS
 * raises the effort, to search deeper than the default suite does:
 *
 *   FC_SEED=random FC_NUM_RUNS=20000 npx vitest run test/core/decide.property.test.ts
 */
import fc from 'fast-check';

const DEFAULT_SEED = 20_261_126;
const wanted = process.env.FC_SEED;
const seed =
  wanted === 'random' ? Date.now() ^ (Math.random() * 0x100000000) : Number(wanted ?? DEFAULT_SEED);
if (!Number.isInteger(seed))
  throw new Error(`FC_SEED must be an integer or "random", got ${JSON.stringify(wanted)}`);
fc.configureGlobal({ seed });
