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
