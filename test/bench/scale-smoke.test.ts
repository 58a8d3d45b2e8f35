/**
 * Smoke run of bench/scale.ts at a tiny size: checks that the machinery works end to end (Prometheus backfill,
 * fake API server, worker process, optional CLI runs, report) and that the counts it reports hold — batched
 * queries, one LIST per namespace, no GET per policy, one PATCH per write — and that every process it started
 * is gone afterwards. It asserts no timing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  benchSize,
  type CycleFigures,
  fleet,
  formatReport,
  parseOptions,
  type ScaleOptions,
  type SizeResult,
} from '../../bench/scale.js';

const SIZE = 12;
const NAMESPACES = 3;
const CLI_BUILT = existsSync(join(import.meta.dirname, '..', '..', 'dist', 'cli', 'main.js'));

const OPTIONS: ScaleOptions = {
  sizes: [SIZE],
  cycles: 3,
  namespaces: NAMESPACES,
  dryRuns: 2,
  decisionRuns: 3,
  cli: CLI_BUILT,
  log: () => undefined,
};

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('bench/scale.ts at a tiny size', () => {
  let result: SizeResult;
  let cycles: { name: string; c: CycleFigures }[];

  beforeAll(async () => {
    result = await benchSize(SIZE, OPTIONS);
    const w = result.worker;
    cycles = [
      { name: 'cold dry run', c: w.cold },
      ...w.dry.map((c, i) => ({ name: `dry run ${i + 1}`, c })),
      ...w.loop.map((c, i) => ({ name: `cycle with writes ${i + 1}`, c })),
    ];
  }, 180_000);

  it('evaluates every policy without an error in every cycle', () => {
    expect(result.worker.policies).toBe(SIZE);
    expect(cycles).toHaveLength(1 + OPTIONS.dryRuns + OPTIONS.cycles);
    for (const { name, c } of cycles) expect({ name, errors: c.errors }).toEqual({ name, errors: 0 });
  });

  it('sends a bounded number of batched Prometheus queries per cycle, not one per policy', () => {
    for (const { name, c } of cycles) {
      // Traffic, CPU, p99 and the production rate: one query each for up to 500 workloads sharing the
      // default queries and window; the first cycle also learns the scrape intervals (one more).
      expect(c.queries, name).toBeGreaterThan(0);
      expect(c.queries, name).toBeLessThanOrEqual(name === 'cold dry run' ? 5 : 4);
    }
  });

  it('reads VirtualServices with one LIST per namespace and no GET', () => {
    for (const { name, c } of cycles) {
      expect({ name, list: c.api.list, get: c.api.get }).toEqual({ name, list: NAMESPACES, get: 0 });
    }
  });

  it('writes only outside dry runs, one PATCH per changed policy', () => {
    for (const { name, c } of [
      { name: 'cold', c: result.worker.cold },
      ...cycles.slice(1, 1 + OPTIONS.dryRuns),
    ]) {
      expect({ name, patch: c.api.patch }).toEqual({ name, patch: 0 });
    }
    const first = result.worker.loop[0];
    expect(first?.writes).toBeGreaterThan(0);
    for (const [i, c] of result.worker.loop.entries()) {
      expect({ cycle: i + 1, patch: c.api.patch }).toEqual({ cycle: i + 1, patch: c.writes });
    }
  });

  it('reports decision time and memory as finite, positive figures, with gc available', () => {
    const { decision, memory, peakRssMb } = result.worker;
    expect(decision.runs).toBe(OPTIONS.decisionRuns);
    expect(Number.isFinite(decision.medianMs)).toBe(true);
    expect(memory.gc).toBe(true);
    for (const v of [memory.heapEarlyMb, memory.heapLateMb, memory.rssEarlyMb, memory.rssLateMb, peakRssMb]) {
      expect(v).toBeGreaterThan(0);
    }
  });

  it.runIf(CLI_BUILT)('runs the built CLI: the dry run writes nothing, the real run patches', () => {
    if ('skipped' in result.cli) throw new Error(`CLI skipped: ${result.cli.skipped}`);
    const { dryRun, run } = result.cli;
    expect([dryRun.exitCode, run.exitCode]).toEqual([0, 0]);
    expect([dryRun.api.list, dryRun.api.get, dryRun.api.patch]).toEqual([NAMESPACES, 0, 0]);
    expect(run.api.list).toBe(NAMESPACES);
    expect(run.api.patch).toBeGreaterThan(0);
    expect(dryRun.promQueries).toBeGreaterThan(0);
    // A fresh process: the four signal queries and the scrape-interval learning.
    expect(dryRun.promQueries).toBeLessThanOrEqual(5);
    expect(dryRun.peakRssMb).toBeGreaterThan(0);
  });

  it('leaves no process running: the worker and Prometheus are stopped', async () => {
    expect(alive(result.worker.pid)).toBe(false);
    await expect(fetch(`${result.promUrl}/-/ready`, { signal: AbortSignal.timeout(2000) })).rejects.toThrow();
  });

  it('prints a table with a column for the size and every target row', () => {
    const report = formatReport([result], OPTIONS);
    expect(report).toContain(`| figure | ${SIZE} | target |`);
    for (const row of [
      'decision time',
      'dry-run cycle',
      'Prometheus queries per cycle',
      'peak RSS',
      'heap after',
    ]) {
      expect(report).toContain(row);
    }
    // 1,000 was not run, so no target is judged.
    expect(report).toContain('n/a (1,000 not run)');
    expect(report).not.toContain('**no**');
  });
});

describe('fleet', () => {
  it('spreads members over the namespaces with the documented mix of states', () => {
    const members = fleet(100, 10);
    expect(new Set(members.map((m) => m.namespace)).size).toBe(10);
    expect(new Set(members.map((m) => m.name)).size).toBe(100);
    const noTraffic = members.filter((m) => m.data.requestsPerSecond === 0);
    const hot = members.filter((m) => (m.data.cpuCores ?? 0) > 0.8);
    expect([noTraffic.length, hot.length]).toEqual([10, 10]);
  });
});

describe('parseOptions', () => {
  const rows: { name: string; argv: string[]; sizes: number[]; cycles: number; cli: boolean }[] = [
    { name: 'defaults', argv: [], sizes: [10, 100, 1000, 5000], cycles: 100, cli: true },
    { name: 'quick', argv: ['--quick'], sizes: [10, 100], cycles: 10, cli: true },
    {
      name: 'explicit sizes and cycles win over quick',
      argv: ['--quick', '--sizes', '5,50', '--cycles', '7', '--skip-cli'],
      sizes: [5, 50],
      cycles: 7,
      cli: false,
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const o = parseOptions(row.argv);
      expect({ sizes: o.sizes, cycles: o.cycles, cli: o.cli }).toEqual({
        sizes: row.sizes,
        cycles: row.cycles,
        cli: row.cli,
      });
    });
  }

  const bad: { name: string; argv: string[]; message: string }[] = [
    {
      name: 'zero size',
      argv: ['--sizes', '10,0'],
      message: '--sizes: expected a positive integer (got "0")',
    },
    {
      name: 'fractional cycles',
      argv: ['--cycles', '1.5'],
      message: '--cycles: expected a positive integer (got "1.5")',
    },
  ];
  for (const row of bad) {
    it(`refuses ${row.name}`, () => {
      expect(() => parseOptions(row.argv)).toThrow(row.message);
    });
  }
});
