import { describe, expect, it } from 'vitest';
import { decide } from '../../src/core/decide.js';
import type { Controller } from '../../src/sim/loop.js';
import { SCENARIO_NAMES } from '../../src/sim/scenarios.js';
import { decideController, simulate, simulateAll } from '../../src/sim/simulate.js';

describe('simulate with the decision core', () => {
  it.each(SCENARIO_NAMES.map((name) => ({ name })))('$name runs end to end within the bounds', ({ name }) => {
    const result = simulate({ scenario: name, seed: 5 });
    const { minPercent, maxPercent } = result.policy.bounds;
    expect(result.samples).toHaveLength(240);
    for (const s of result.samples) {
      // The initial percentage may lie outside the bounds; what the core writes may not.
      expect(s.setPercent).toBeGreaterThanOrEqual(minPercent);
      expect(s.setPercent).toBeLessThanOrEqual(maxPercent);
      expect(Number.isFinite(s.oraclePercent)).toBe(true);
    }
    for (const [key, value] of Object.entries(result.summary)) {
      if (value !== null) expect(Number.isFinite(value), key).toBe(true);
    }
    expect(result.summary.mirroredShare).toBeGreaterThan(0);
    expect(result.summary.breachSeconds).toBeLessThan(result.summary.durationSeconds);
  });

  // Floors any sound law clears on every time scale, not today's figures: a hand-set 10 % fails them (about
  // 0.62 of the safe level on steady, about 30 % of the time in breach after the capacity drop).
  it.each([
    [1, 5, 20],
    [15, 30, 120],
    [30, 60, 300],
  ])(
    'at %i s scrapes, %i s interval, %i s window it finds the safe level and backs off',
    (scrape, interval, window) => {
      const timeScale = { scrapeIntervalSeconds: scrape, intervalSeconds: interval, windowSeconds: window };
      for (const [scenario, share] of [
        ['steady', 0.7],
        ['capacity-drop', 0.6],
      ] as const) {
        const { summary } = simulate({ scenario, seed: 1, durationSeconds: 3600, timeScale });
        expect(summary.mirroredShare, scenario).toBeGreaterThan(share);
        expect(summary.breachShare, scenario).toBeLessThan(0.03);
      }
    },
  );

  it('the default controller is decide()', () => {
    const calls: string[] = [];
    const spy: Controller<Parameters<typeof decide>[0]['state']> = (input) => {
      calls.push('x');
      return decide(input);
    };
    const viaDefault = simulate({ scenario: 'steady', seed: 2, durationSeconds: 1800 });
    const viaSpy = simulate({ scenario: 'steady', seed: 2, durationSeconds: 1800 }, spy);
    expect(viaSpy).toEqual(viaDefault);
    expect(calls).toHaveLength(60);
    expect(simulate({ scenario: 'steady', seed: 2, durationSeconds: 1800 }, decideController)).toEqual(
      viaDefault,
    );
  });

  it('is deterministic for a seed', () => {
    const a = simulate({ scenario: 'noisy', seed: 9 });
    const b = simulate({ scenario: 'noisy', seed: 9 });
    expect(b).toEqual(a);
    expect(simulate({ scenario: 'noisy', seed: 10 }).summary).not.toEqual(a.summary);
  });

  it('simulateAll runs every scenario with the same seed', () => {
    const all = simulateAll({ seed: 3, durationSeconds: 1800 }, ['steady', 'surge']);
    expect(all.map((r) => r.name)).toEqual(['steady', 'surge']);
    expect(all[1]?.result.summary).toEqual(
      simulate({ scenario: 'surge', seed: 3, durationSeconds: 1800 }).summary,
    );
  });
});
