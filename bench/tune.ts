/**
 * Control-quality table for tuning the decision core: every scenario over several seeds, with the default
 * simulator policy, against the control targets, at one time scale. Run:
 * `npx tsx bench/tune.ts [seeds] [durationSeconds] [scenario,scenario|all] [scrape/interval/window]`.
 */
import { SCENARIO_NAMES, type SimSummary, simulate, type TimeScale } from '../src/sim/index.js';

const seeds = Number(process.argv[2] ?? 10);
const duration = Number(process.argv[3] ?? 7200);
const only =
  process.argv[4] === undefined || process.argv[4] === 'all' ? undefined : process.argv[4].split(',');
const scale = process.argv[5]?.split('/').map(Number);
const timeScale: TimeScale | undefined =
  scale === undefined
    ? undefined
    : {
        scrapeIntervalSeconds: scale[0] ?? 15,
        intervalSeconds: scale[1] ?? 30,
        windowSeconds: scale[2] ?? 120,
      };
const interval = timeScale?.intervalSeconds ?? 30;

const TARGET = { share: 0.9, breach: 0.01, recoveryS: 2 * interval, writesPerHour: 30 };

interface Row {
  readonly name: string;
  readonly runs: SimSummary[];
}

const rows: Row[] = [];
for (const name of SCENARIO_NAMES) {
  if (only !== undefined && !only.includes(name)) continue;
  const runs: SimSummary[] = [];
  for (let seed = 1; seed <= seeds; seed++) {
    runs.push(
      simulate({
        scenario: name,
        seed,
        durationSeconds: duration,
        ...(timeScale === undefined ? {} : { timeScale }),
      }).summary,
    );
  }
  rows.push({ name, runs });
}

const f = (x: number, d = 3): string => x.toFixed(d);
const lines = [
  `${seeds} seeds, ${duration} s each${timeScale === undefined ? '' : `, time scale ${process.argv[5]}`}; targets: share >= ${TARGET.share}, breach <= ${TARGET.breach * 100} %, recovery <= ${TARGET.recoveryS} s, writes <= ${TARGET.writesPerHour}/h, blind rise <= 0`,
  '',
  '| scenario | mean share | min share (seed) | max breach % | max recovery s | max writes/h | max blind rise pp | ok |',
  '|---|---|---|---|---|---|---|---|',
];
let allOk = true;
for (const { name, runs } of rows) {
  const shares = runs.map((r) => r.mirroredShare);
  const mean = shares.reduce((a, b) => a + b, 0) / shares.length;
  const min = Math.min(...shares);
  const minSeed = shares.indexOf(min) + 1;
  const breach = Math.max(...runs.map((r) => r.breachShare)) * 100;
  const recoveries = runs.map((r) => r.recoverySeconds).filter((x): x is number => x !== null);
  const recovery = recoveries.length > 0 ? Math.max(...recoveries) : null;
  const writes = Math.max(...runs.map((r) => r.writesPerHour));
  const rises = runs.map((r) => r.maxRiseWhileBlind).filter((x): x is number => x !== null);
  const rise = rises.length > 0 ? Math.max(...rises) : null;
  const ok =
    min >= TARGET.share &&
    breach <= TARGET.breach * 100 &&
    (recovery === null || recovery <= TARGET.recoveryS) &&
    writes <= TARGET.writesPerHour &&
    (rise === null || rise <= 1e-9);
  allOk &&= ok;
  lines.push(
    `| ${name} | ${f(mean)} | ${f(min)} (${minSeed}) | ${f(breach, 2)} | ${recovery ?? '-'} | ${f(writes, 1)} | ${rise === null ? '-' : f(rise, 2)} | ${ok ? 'yes' : 'NO'} |`,
  );
}
lines.push('', allOk ? 'all targets met' : 'some targets missed');
console.log(lines.join('\n'));
