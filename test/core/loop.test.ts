/**
 * Closed-loop sanity checks of the control law against a toy plant: severity proportional to the mirror
 * percentage, observed the way a Prometheus rate is (the mean over a window that ends a little in the past).
 * The real simulator lives in src/sim; this only shows that the law converges and stays out of breach.
 */
import { describe, expect, it } from 'vitest';
import { type ControllerState, decide } from '../../src/core/decide.js';
import type { Signals } from '../../src/core/types.js';
import { policy, T0, value } from './helpers.js';

interface Toy {
  /** The percentage at which the true severity reaches 1, per second. */
  readonly safeAt: (t: number) => number;
  /** The guardrail's true severity at percentage p when the safe level is `safe`. */
  readonly severity: (p: number, safe: number) => number;
  /** Builds the signals from an observed severity. */
  readonly signals: (s: number) => Signals;
  readonly start: number;
  readonly seconds: number;
}

interface Trace {
  /** Per second: percentage in effect and true severity. */
  readonly percent: number[];
  readonly severity: number[];
  readonly writes: number[];
}

const SCRAPE_LAG = 10;
const PROPAGATION = 2;
/** The plant's dead time as the law is told it: a reading lags by half a 20 s scrape, writes by 2 s. */
const OBSERVATION = { scrapeIntervalSeconds: 2 * SCRAPE_LAG, propagationSeconds: PROPAGATION } as const;

function simulate(toy: Toy): Trace {
  const pol = policy({ max: 100, guardrails: { cpuUtilization: 0.8, latencyP99Ms: 500 } });
  const window = pol.windowSeconds;
  const percent: number[] = [];
  const severity: number[] = [];
  const writes: number[] = [];
  let inEffect = toy.start;
  let written = toy.start;
  let pendingAt = -1;
  let state: ControllerState | undefined;
  for (let t = 0; t < toy.seconds; t++) {
    if (pendingAt === t) inEffect = written;
    percent.push(inEffect);
    severity.push(toy.severity(inEffect, toy.safeAt(t)));
    if (t % pol.intervalSeconds === 0 && t >= window + SCRAPE_LAG) {
      const span = severity.slice(t - SCRAPE_LAG - window, t - SCRAPE_LAG);
      const observed = span.reduce((a, b) => a + b, 0) / span.length;
      const d = decide({
        now: T0 + t * 1000,
        policy: pol,
        currentPercent: written,
        signals: toy.signals(observed),
        observation: OBSERVATION,
        state,
      });
      state = d.state;
      if (d.action !== 'hold') {
        written = d.percent;
        pendingAt = t + PROPAGATION;
        writes.push(t);
      }
    }
  }
  return { percent, severity, writes };
}

/** Linear: CPU proportional to load, latency flat far below its limit. */
const linear = (s: number): Signals => ({ cpuUtilization: value(0.8 * s), latencyP99Ms: value(100) });

describe('closed loop on a toy plant', () => {
  it('converges below the safe level and stays out of breach after settling (severity = percent / 30)', () => {
    const trace = simulate({
      safeAt: () => 30,
      severity: (p, safe) => p / safe,
      signals: linear,
      start: 1,
      seconds: 2 * 3600,
    });
    const settled = 30 * 60;
    const afterSettling = trace.severity.slice(settled);
    expect(Math.max(...afterSettling)).toBeLessThanOrEqual(1);
    const lastHour = trace.percent.slice(3600);
    expect(Math.max(...lastHour)).toBeLessThanOrEqual(30);
    expect(Math.min(...lastHour)).toBeGreaterThanOrEqual(0.8 * 30);
    expect(trace.writes.filter((t) => t >= 3600).length).toBeLessThanOrEqual(2);
  });

  it('starts from 0 % and converges', () => {
    const trace = simulate({
      safeAt: () => 30,
      severity: (p, safe) => p / safe,
      signals: linear,
      start: 0,
      seconds: 2 * 3600,
    });
    expect(Math.max(...trace.severity)).toBeLessThanOrEqual(1);
    expect(trace.percent[trace.percent.length - 1]).toBeGreaterThanOrEqual(0.8 * 30);
  });

  it('gets back under the limit quickly when capacity halves, then settles again', () => {
    const drop = 3600;
    const trace = simulate({
      safeAt: (t) => (t < drop ? 30 : 15),
      severity: (p, safe) => p / safe,
      signals: linear,
      start: 1,
      seconds: drop + 3600,
    });
    // The true severity doubles at the drop; the readings show it only as the window fills. Within three
    // cycles of the drop the target is back under the limit for good.
    const lastBreach = trace.severity.reduce((last, s, t) => (s > 1 ? t : last), -1);
    expect(lastBreach).toBeGreaterThanOrEqual(drop);
    expect(lastBreach - drop).toBeLessThanOrEqual(3 * 30);
    expect(Math.max(...trace.severity.slice(30 * 60, drop))).toBeLessThanOrEqual(1);
    const lastHalfHour = trace.percent.slice(trace.percent.length - 1800);
    expect(Math.max(...lastHalfHour)).toBeLessThanOrEqual(15);
    expect(Math.min(...lastHalfHour)).toBeGreaterThanOrEqual(0.7 * 15);
  });

  // Known defect: the law overshoots this knee and then breaches it again every few minutes. Far below
  // the knee the latency is measured flat (elasticity < 1), so the knee rule is skipped and the model
  // step (maxIncreaseFactor squared) jumps past it; after the breach, the remembered level is judged stale
  // because latency, scaled linearly to that level, reads far below the band, which a knee always does.
  // Remove `.fails` once the knee is approached in small steps and its breach level is kept.
  it.fails('walks up to a queueing knee without overshooting it (p99 = base + queue * u / (1 - u))', () => {
    // Latency binds: 50 ms idle, 25 ms queueing term, limit 500 ms, capacity at 40 %. The limit is reached at
    // u = 0.947, so the safe level is 37.9 %; at half the limit it is only 6 % away.
    const latency = (p: number): number => {
      const u = Math.min(p / 40, 0.999);
      return 50 + (25 * u) / (1 - u);
    };
    const trace = simulate({
      safeAt: () => 40,
      severity: (p) => latency(p) / 500,
      signals: (s) => ({ cpuUtilization: value(0.1), latencyP99Ms: value(500 * s) }),
      start: 1,
      seconds: 2 * 3600,
    });
    expect(Math.max(...trace.severity)).toBeLessThanOrEqual(1);
    const final = trace.percent[trace.percent.length - 1] ?? 0;
    expect(final).toBeGreaterThan(0.8 * 37.9);
    expect(final).toBeLessThanOrEqual(37.9);
  });
});
