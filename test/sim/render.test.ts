import { describe, expect, it } from 'vitest';
import { runClosedLoop, type SimSample, type SimSummary } from '../../src/sim/loop.js';
import { downsample, renderChart, renderSummary, renderSummaryTable } from '../../src/sim/render.js';

const sample = (t: number, percent: number): SimSample => ({
  t,
  percent,
  setPercent: percent,
  oraclePercent: 2 * percent,
  action: 'hold',
  reason: '',
  observed: {},
  truth: { cpuUtilization: 0, errorRate: 0, latencyP99Ms: 0 },
  breach: false,
  breachSeconds: 0,
  productionRps: 0,
  capacityRps: 0,
});

describe('downsample', () => {
  const rows = [
    {
      name: 'averages samples falling into one column',
      samples: [sample(0, 1), sample(30, 3), sample(60, 5), sample(90, 7)],
      duration: 120,
      width: 2,
      want: [2, 6],
    },
    {
      name: 'keeps one column per sample when the terminal is wider',
      samples: [sample(0, 1), sample(30, 3)],
      duration: 60,
      width: 100,
      want: [1, 3],
    },
    {
      name: 'repeats the previous column when a column has no sample',
      samples: [sample(0, 4), sample(100, 8), sample(110, 8)],
      duration: 120,
      width: 3,
      want: [4, 4, 8],
    },
    { name: 'no samples', samples: [], duration: 60, width: 10, want: [] },
  ];
  it.each(rows)('$name', ({ samples, duration, width, want }) => {
    expect(downsample(samples, duration, width, (s) => s.percent)).toEqual(want);
  });
});

describe('renderChart', () => {
  const result = runClosedLoop({ scenario: 'capacity-drop', seed: 1, durationSeconds: 3600 }, (input) => ({
    percent: input.currentPercent ?? 100,
    action: 'hold',
    state: undefined,
  }));
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI escapes is the point
  const ansi = /\x1b\[/;

  it('fits the terminal width and has a legend and a time axis, without colours', () => {
    const text = renderChart(result, { columns: 80, color: false });
    expect(ansi.test(text)).toBe(false);
    for (const line of text.split('\n')) expect(line.length).toBeLessThanOrEqual(80);
    expect(text).toContain('── mirror percentage');
    expect(text).toContain('┄┄ largest safe percentage (oracle)');
    expect(text).toContain('┄');
    expect(text).toMatch(/0s +.*1h/);
    expect(text).toContain('scenario capacity-drop');
  });

  it('colours the two lines differently when asked', () => {
    const text = renderChart(result, { columns: 80, color: true });
    expect(text).toContain('\x1b[36m');
    expect(text).toContain('\x1b[32m');
  });

  it('spans the range of both series on the y axis', () => {
    const text = renderChart(result, { columns: 100, color: false });
    const labels = [...text.matchAll(/^ *([\d.]+) %/gm)].map((m) => Number(m[1]));
    const highest = Math.max(...result.samples.map((s) => Math.max(s.percent, s.oraclePercent)));
    expect(Math.max(...labels)).toBeGreaterThanOrEqual(highest);
    expect(Math.min(...labels)).toBe(0);
  });
});

const summary = (over: Partial<SimSummary>): SimSummary => ({
  durationSeconds: 7200,
  mirroredRequests: 900,
  oracleRequests: 1000,
  mirroredShare: 0.9,
  breachSeconds: 12,
  breachShare: 12 / 7200,
  breachIntegral: 3.25,
  writes: 20,
  writesPerHour: 10,
  blindEvaluations: 0,
  maxPercentWhileBlind: null,
  maxRiseWhileBlind: null,
  recoverySeconds: null,
  reachSeconds: null,
  reachAfterRestoreSeconds: null,
  meanPercent: 9,
  meanOraclePercent: 10,
  minOraclePercent: 8,
  ...over,
});

describe('renderSummaryTable', () => {
  it('has a header, a rule and one aligned row per scenario', () => {
    const text = renderSummaryTable([
      { name: 'steady', summary: summary({}) },
      { name: 'capacity-drop', summary: summary({ recoverySeconds: 41, maxPercentWhileBlind: 12.34 }) },
    ]);
    const lines = text.trimEnd().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^scenario +mirrored\/safe +breach s/);
    expect(lines[1]).toMatch(/^-+ +-+/);
    expect(lines[2]).toMatch(/^steady +0\.900 +12 +0\.17 +3\.3 +20 +10\.0 +- +-$/);
    expect(lines[3]).toMatch(/^capacity-drop +0\.900 .* 12\.3 +41$/);
    // Right-aligned numbers end in the same column as their heading.
    expect(lines[2]?.length).toBe(lines[0]?.length);
  });
});

describe('renderSummary', () => {
  it('names the run and gives every figure', () => {
    const text = renderSummary({
      ...runClosedLoop({ scenario: 'steady', seed: 1, durationSeconds: 600 }, (i) => ({
        percent: i.currentPercent ?? 100,
        action: 'hold',
        state: 0,
      })),
      summary: summary({
        recoverySeconds: 41,
        maxPercentWhileBlind: 7,
        maxRiseWhileBlind: -1,
        blindEvaluations: 3,
      }),
    });
    expect(text).toContain('scenario steady, seed 1');
    expect(text).toContain('0.900 of the safe maximum (900 of 1,000 requests');
    expect(text).toContain('12 s (0.17 % of the time');
    expect(text).toContain('20 (10.0 per hour)');
    expect(text).toContain('3 evaluations, highest 7.0 % (-1.0 points over the last safe level)');
    expect(text).toContain('back under the guardrails in 41 s');
  });
});
