/** The policy as the law reads it, sanitised, and each signal's reading classified. */
import {
  DEFAULT_CONTROL,
  DEFAULT_INTERVAL_SECONDS,
  DEFAULT_OBSERVATION_TIMING,
  DEFAULT_WINDOW_SECONDS,
} from './defaults.js';
import { LAW } from './law.js';
import { clean, pick } from './numeric.js';
import { MAX_WRITES_TRACKED } from './state.js';
import type { ControlPolicy, ObservationTiming, Signal, SignalName } from './types.js';
import { SIGNAL_NAMES } from './types.js';

// ---------------------------------------------------------------------------------------------------------
// Policy, sanitised: the core must not produce NaN even if a caller hands it nonsense.

export interface Settings {
  readonly lo: number;
  readonly hi: number;
  readonly intervalS: number;
  readonly windowS: number;
  readonly hysteresis: number;
  /** Severity increases aim for. */
  readonly target: number;
  readonly factor: number;
  readonly step: number;
  readonly cooldownS: number;
  readonly blindHoldS: number;
  readonly minChange: number;
  readonly budget: number;
  readonly memoryS: number;
  readonly guardrails: ReadonlyArray<readonly [SignalName, number]>;
  /** Seconds between samples of the target's series. */
  readonly scrapeS: number;
  /** Seconds from a write until the proxies apply it. */
  readonly propagationS: number;
  /**
   * Seconds from a write until a reading begins to show it: the propagation, and the age of the newest
   * sample a rate() sees (half a scrape on average).
   */
  readonly lagS: number;
  /** Seconds from a write until every reading shows it in full: propagation, the window and one scrape. */
  readonly settleS: number;
  /** The settle time plus a cycle: how long the memory of a change matters. */
  readonly horizonS: number;
}

export function settings(policy: ControlPolicy, observation?: Partial<ObservationTiming>): Settings {
  const c: Partial<ControlPolicy['control']> = policy.control ?? {};
  const lo = pick(policy.bounds?.minPercent, 0, 0, 100);
  // A missing upper bound falls to the lower one: the narrowest reading of a broken policy is the safe one.
  const hi = pick(policy.bounds?.maxPercent, lo, lo, 100);
  const intervalS = pick(policy.intervalSeconds, DEFAULT_INTERVAL_SECONDS, 1, 86_400);
  const windowS = pick(policy.windowSeconds, DEFAULT_WINDOW_SECONDS, 1, 86_400);
  const hysteresis = pick(c.hysteresis, DEFAULT_CONTROL.hysteresis, 0, 0.9);
  const cooldown = pick(c.cooldownSeconds, DEFAULT_CONTROL.cooldownSeconds, 0, 86_400);
  // A scrape interval longer than half the window would leave rate() with fewer than two samples; the
  // readings would then be missing, not late, so it is capped there.
  const scrapeS = pick(
    observation?.scrapeIntervalSeconds,
    DEFAULT_OBSERVATION_TIMING.scrapeIntervalSeconds,
    0.1,
    windowS / 2,
  );
  const propagationS = pick(
    observation?.propagationSeconds,
    DEFAULT_OBSERVATION_TIMING.propagationSeconds,
    0,
    3600,
  );
  const settleS = propagationS + windowS + scrapeS;
  const guardrails: Array<readonly [SignalName, number]> = [];
  for (const name of SIGNAL_NAMES) {
    const limit = policy.guardrails?.[name];
    if (limit !== undefined) guardrails.push([name, limit]);
  }
  return {
    lo,
    hi,
    intervalS,
    windowS,
    hysteresis,
    target: 1 - hysteresis * LAW.targetInBand,
    factor: pick(c.maxIncreaseFactor, DEFAULT_CONTROL.maxIncreaseFactor, 1, 10),
    step: pick(c.increaseStepPercent, DEFAULT_CONTROL.increaseStepPercent, 0, 100),
    // 0 = derive: a cut is fully visible once it has propagated and the window has passed since.
    cooldownS: cooldown > 0 ? cooldown : settleS,
    blindHoldS: pick(c.blindHoldSeconds, DEFAULT_CONTROL.blindHoldSeconds, 0, 1e7),
    minChange: pick(c.minChangePercent, DEFAULT_CONTROL.minChangePercent, 0, 100),
    budget: Math.floor(pick(c.maxWritesPerHour, DEFAULT_CONTROL.maxWritesPerHour, 0, MAX_WRITES_TRACKED)),
    memoryS: pick(c.breachMemorySeconds, DEFAULT_CONTROL.breachMemorySeconds, 0, 1e7),
    guardrails,
    scrapeS,
    propagationS,
    lagS: propagationS + scrapeS / 2,
    settleS,
    horizonS: settleS + intervalS,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Signals, classified.

export type Observation =
  | { readonly kind: 'value'; readonly value: number; readonly s: number }
  /** No traffic, accepted as such: nothing to judge, but nothing wrong either. */
  | { readonly kind: 'quiet' }
  | { readonly kind: 'blind'; readonly why: string };

export function observe(
  name: SignalName,
  limit: number,
  signal: Signal | undefined,
  trafficSeen: boolean,
): Observation {
  if (typeof limit !== 'number' || !Number.isFinite(limit) || limit < 0) {
    return { kind: 'blind', why: `invalid limit ${limit}` };
  }
  const sg: Signal = signal ?? { kind: 'absent', reason: 'NoSeries' };
  if (sg.kind === 'value') {
    const v = sg.value;
    if (typeof v !== 'number' || !Number.isFinite(v)) return { kind: 'blind', why: `non-finite value ${v}` };
    // Tiny negatives come from floating-point rate arithmetic; real negatives mean a broken query.
    if (v < -1e-9) return { kind: 'blind', why: `negative value ${v}` };
    const value = Math.max(0, v);
    const s = limit > 0 ? value / limit : value > 0 ? LAW.severityCap : 0;
    return { kind: 'value', value, s: clean(Math.min(s, LAW.severityCap)) };
  }
  const detail = sg.detail ? ` (${sg.detail})` : '';
  if (sg.reason !== 'NoTraffic') return { kind: 'blind', why: `${sg.reason}${detail}` };
  // Latency and error rate are undefined without requests, which is normal at 0 % or when production is
  // idle. CPU is measured from the pods whether or not requests arrive, so "no traffic" cannot explain its
  // absence; and when the request rate shows traffic, "no traffic" is contradicted. Both count as blindness.
  if (name === 'cpuUtilization')
    return { kind: 'blind', why: `NoTraffic${detail}, but CPU needs no traffic` };
  if (trafficSeen) return { kind: 'blind', why: `NoTraffic${detail}, but the request rate shows traffic` };
  return { kind: 'quiet' };
}
