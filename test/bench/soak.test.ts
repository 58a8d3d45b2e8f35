/**
 * The soak of bench/soak.ts for one minute, at 100 policies so that two cores stay usable: the real daemon
 * against a real Prometheus and the fake API server, with faults on both sides and concurrent edits. It
 * asserts the correctness checks (decisions logged, no unhandled rejection, clean exit, bounds held, no lost
 * edit) and that faults did happen; memory growth is reported by the benchmark, not judged over one minute.
 * The pure parts (options, growth, checks) are tested on their own below.
 */
import { describe, expect, it } from 'vitest';
import {
  formatSoakReport,
  type MemorySample,
  memoryGrowth,
  parseSoakOptions,
  runSoak,
  type SoakResult,
  seededRandom,
  soakChecks,
  soakFleet,
} from '../../bench/soak.js';

describe('bench/soak.ts for one minute at 100 policies', () => {
  it('keeps every correctness check while Prometheus and the API server fail and another writer edits', async () => {
    const result = await runSoak({
      durationSeconds: 60,
      policies: 100,
      intervalSeconds: 5,
      namespaces: 5,
      seed: 7,
      sampleSeconds: 2,
      log: () => undefined,
    });
    const report = formatSoakReport(result);
    const correctness = result.checks.filter((c) => !/growth/.test(c.name));
    expect(correctness.map((c) => c.name)).toEqual([
      'decisions logged',
      'unhandled rejections / exceptions',
      'daemon alive until SIGTERM, then exit 0',
      'VirtualServices outside bounds',
      'concurrent label edits lost',
    ]);
    for (const c of correctness)
      expect({ check: c.name, value: c.value, ok: c.ok }, report).toMatchObject({ ok: true });
    // The run did what a soak is for: cycles went by, the daemon wrote, both sides failed, edits raced writes.
    expect(result.cycles).toBeGreaterThanOrEqual(5);
    expect(result.patches.ok).toBeGreaterThan(0);
    expect(Object.keys(result.promFaults).length, report).toBeGreaterThan(0);
    expect(
      Object.values(result.apiFaults).reduce((a, b) => a + b, 0),
      report,
    ).toBeGreaterThan(0);
    expect(result.edits.made).toBeGreaterThan(30);
    expect(result.memory.length).toBeGreaterThan(10);
  }, 240_000);
});

describe('parseSoakOptions', () => {
  const rows = [
    {
      name: 'defaults: 1,000 policies every 5 s for 10 minutes',
      argv: [],
      want: {
        durationSeconds: 600,
        policies: 1000,
        intervalSeconds: 5,
        namespaces: 10,
        seed: 1,
        sampleSeconds: 5,
      },
    },
    {
      name: 'durations in Prometheus form',
      argv: ['--duration', '2m', '--interval', '10s', '--policies', '50', '--seed', '9'],
      want: { durationSeconds: 120, policies: 50, intervalSeconds: 10, seed: 9 },
    },
  ];
  it.each(rows)('$name', ({ argv, want }) => {
    expect(parseSoakOptions(argv)).toMatchObject(want);
  });

  const bad = [
    {
      name: 'a duration without unit',
      argv: ['--duration', '10'],
      message: '--duration: expected a duration such as 30s or 10m (got "10")',
    },
    {
      name: 'zero policies',
      argv: ['--policies', '0'],
      message: '--policies: expected a positive integer (got "0")',
    },
    { name: 'an unknown flag', argv: ['--nope'], message: "Unknown option '--nope'" },
  ];
  it.each(bad)('refuses $name', ({ argv, message }) => {
    expect(() => parseSoakOptions(argv)).toThrow(message);
  });
});

describe('memoryGrowth', () => {
  const series = (values: number[]): MemorySample[] =>
    values.map((v, i) => ({ atSeconds: i * 10, rssMb: v, heapMb: v / 2 }));
  const rows = [
    { name: 'flat', values: [90, 50, 50, 50, 50, 50, 50, 50], growth: 0 },
    { name: 'a warm-up spike is ignored', values: [200, 200, 50, 50, 50, 55, 55, 55], growth: 0.1 },
    { name: 'steady growth', values: [50, 50, 50, 50, 60, 70, 80, 80], growth: 0.6 },
  ];
  it.each(rows)('$name', ({ values, growth }) => {
    const g = memoryGrowth(series(values), 20, 'rssMb');
    expect(g?.growth).toBeCloseTo(growth, 6);
  });

  it('needs six samples after warm-up', () => {
    expect(memoryGrowth(series([50, 50, 50, 50, 50, 50]), 10, 'heapMb')).toBeUndefined();
  });
});

describe('soakChecks', () => {
  const base: Omit<SoakResult, 'checks'> = {
    options: {
      durationSeconds: 60,
      policies: 10,
      intervalSeconds: 5,
      namespaces: 2,
      seed: 1,
      sampleSeconds: 5,
    },
    runSeconds: 60,
    cycles: 12,
    evaluated: 120,
    decisionLines: 120,
    policiesMissingDecisions: 0,
    auditLines: 5,
    errorOutcomes: 0,
    unhandled: [],
    exitCode: 0,
    aliveUntilStop: true,
    boundsSamples: 30,
    boundsViolations: [],
    edits: { made: 40, lost: [] },
    nudges: 3,
    patches: { ok: 5, conflict: 1, failed: 0 },
    promFaults: { http500: 1 },
    apiFaults: { 'patch 409': 1 },
    memory: Array.from({ length: 12 }, (_, i) => ({ atSeconds: i * 5, rssMb: 100, heapMb: 40 })),
    warmupSeconds: 15,
    stderrTail: '',
  };
  const rows: { name: string; change: Partial<Omit<SoakResult, 'checks'>>; failing: string[] }[] = [
    { name: 'a clean run passes everything', change: {}, failing: [] },
    { name: 'a missing decision line', change: { decisionLines: 119 }, failing: ['decisions logged'] },
    {
      name: 'a policy decided in fewer cycles',
      change: { policiesMissingDecisions: 1 },
      failing: ['decisions logged'],
    },
    {
      name: 'an unhandled rejection',
      change: { unhandled: ['unhandledRejection: boom'] },
      failing: ['unhandled rejections / exceptions'],
    },
    {
      name: 'a daemon that died',
      change: { aliveUntilStop: false, exitCode: 1 },
      failing: ['daemon alive until SIGTERM, then exit 0'],
    },
    {
      name: 'one VirtualService out of bounds once',
      change: { boundsViolations: ['10 s: a/b at 0 (bounds 1-40)'] },
      failing: ['VirtualServices outside bounds'],
    },
    {
      name: 'one lost edit',
      change: { edits: { made: 40, lost: ['a/b soak.mirror-autoscaler.io/e3'] } },
      failing: ['concurrent label edits lost'],
    },
    {
      name: 'heap growing by a fifth',
      change: {
        memory: Array.from({ length: 12 }, (_, i) => ({
          atSeconds: i * 5,
          rssMb: 100,
          heapMb: i < 8 ? 40 : 48,
        })),
      },
      failing: ['heap growth after warm-up'],
    },
  ];
  it.each(rows)('$name', ({ change, failing }) => {
    const checks = soakChecks({ ...base, ...change });
    expect(checks.filter((c) => !c.ok).map((c) => c.name)).toEqual(failing);
    const report = formatSoakReport({ ...base, ...change, checks });
    expect(report.includes('**no**')).toBe(failing.length > 0);
  });
});

describe('helpers', () => {
  it('seededRandom replays the same sequence for the same seed', () => {
    const a = seededRandom(3);
    const b = seededRandom(3);
    const xs = Array.from({ length: 5 }, () => a());
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs);
    for (const x of xs) expect(x >= 0 && x < 1).toBe(true);
    expect(seededRandom(4)()).not.toBe(xs[0]);
  });

  it('soakFleet starts every VirtualService inside its bounds, with blind spells on every seventh', () => {
    const members = soakFleet(100, 10, 600);
    for (const m of members) {
      expect(m.percent).toBeGreaterThanOrEqual(m.minPercent);
      expect(m.percent).toBeLessThanOrEqual(m.maxPercent);
    }
    expect(members.filter((m) => m.data.gaps !== undefined)).toHaveLength(15);
  });
});
