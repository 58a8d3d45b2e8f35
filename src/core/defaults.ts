import type { ControlSettings } from './types.js';

/** Defaults of the control law's tuning; a policy's spec.control overrides any of them. */
export const DEFAULT_CONTROL: ControlSettings = {
  hysteresis: 0.2,
  maxIncreaseFactor: 1.5,
  increaseStepPercent: 1,
  cooldownSeconds: 0,
  blindHoldSeconds: 300,
  minChangePercent: 0.1,
  maxWritesPerHour: 30,
  breachMemorySeconds: 1800,
};

/** Default evaluation interval and rate window, in seconds. */
export const DEFAULT_INTERVAL_SECONDS = 30;
export const DEFAULT_WINDOW_SECONDS = 120;

/** Observation timing assumed when neither the policy nor the samples say otherwise. */
export const DEFAULT_OBSERVATION_TIMING = {
  scrapeIntervalSeconds: 15,
  propagationSeconds: 5,
} as const;

/**
 * The rate window of the production query: short, so that a surge shows within a few scrapes, yet long
 * enough to hold four samples (rate() needs two, and over three a missed scrape reads a third low) and a quarter
 * of the policy's window (with 1 s scrapes, three seconds of requests are too noisy to follow). Never
 * longer than the policy's own window.
 */
export function productionWindowSeconds(windowSeconds: number, scrapeIntervalSeconds: number): number {
  const w = Number.isFinite(windowSeconds) && windowSeconds > 0 ? windowSeconds : DEFAULT_WINDOW_SECONDS;
  const s =
    Number.isFinite(scrapeIntervalSeconds) && scrapeIntervalSeconds > 0
      ? scrapeIntervalSeconds
      : DEFAULT_OBSERVATION_TIMING.scrapeIntervalSeconds;
  return Math.min(w, Math.ceil(Math.max(4 * s, w / 4)));
}
