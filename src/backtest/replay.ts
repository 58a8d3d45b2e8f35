/**
 * Replays a policy over history through the fitted model. Pure and deterministic: the same history, fits
 * and policy give the same points, bit for bit.
 *
 * At each step the percentage left by the previous decision is in effect; the mirrored rate is production *
 * percent / 100; the signals the controller sees are the model's prediction at the rate the policy's rate
 * window has seen (the mean percentage over the window times the production rate, which Prometheus already
 * averages over the same window), so the core meets the same dead time as live. The real decide() then
 * chooses the next percentage, with its state carried from step to step. It gets the historical production
 * rate as the live daemon gets its production query, so it feeds forward where production is known, and
 * the observation timing of the policy (spec.observation) or the defaults.
 */
import { decide } from '../core/decide.js';
import type {
  ControllerState,
  ControlPolicy,
  ObservationTiming,
  Signal,
  SignalName,
  Signals,
} from '../core/types.js';
import { SIGNAL_NAMES } from '../core/types.js';
import type { MirrorPolicy } from '../policy/types.js';
import { resolveObservation } from '../signals/scrape.js';
import { predict } from './fit.js';
import type { History } from './history.js';
import { formatTime } from './time.js';
import type { BacktestPoint, BacktestSummary, SignalFit } from './types.js';

/** Inputs of a replay. */
export interface ReplayInput {
  readonly policy: ControlPolicy & Partial<Pick<MirrorPolicy, 'observation'>>;
  readonly history: History;
  readonly fits: readonly SignalFit[];
  /**
   * Observation timing of the replayed decisions; default the policy's spec.observation, else the defaults
   * (15 s scrape, 5 s propagation). History read at a coarse step says nothing about the scrape interval.
   */
  readonly observation?: ObservationTiming;
}

/** Outputs of a replay. */
export interface ReplayOutput {
  readonly points: BacktestPoint[];
  readonly summary: BacktestSummary;
  readonly warnings: string[];
  /** Steps whose decision fed forward on the production rate (the others used feedback alone). */
  readonly feedForwardSteps: number;
}

/** Would-be rates beyond this multiple of the largest rate a fit saw are flagged as extrapolation. */
const EXTRAPOLATION_FACTOR = 1.5;

function guardrailsOf(policy: ControlPolicy): SignalName[] {
  return SIGNAL_NAMES.filter((s) => policy.guardrails[s] !== undefined);
}

function clampPercent(p: number): number {
  return Math.min(100, Math.max(0, p));
}

function round(n: number, digits = 6): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

/** The signals the model says the controller would read with `rps` mirrored over the window. */
function modelSignals(
  guardrails: readonly SignalName[],
  fits: ReadonlyMap<SignalName, SignalFit>,
  rps: number,
): Signals {
  const out: Partial<Record<SignalName, Signal>> = {};
  for (const s of guardrails) {
    const fit = fits.get(s);
    if (fit === undefined || fit.points === 0) {
      out[s] = { kind: 'absent', reason: 'NoSeries', detail: `no history to model ${s}` };
    } else if (s !== 'cpuUtilization' && rps === 0) {
      // As live: without requests, error rate and latency are undefined (CPU still speaks).
      out[s] = { kind: 'absent', reason: 'NoTraffic', detail: 'no mirrored requests in the window' };
    } else {
      out[s] = { kind: 'value', value: predict(fit, rps) };
    }
  }
  return out;
}

/**
 * Runs the decision core step by step over the history's production traffic through the fitted model.
 * Fits that are not trusted are used anyway (with a warning); a signal with no fitted points at all is
 * absent for the whole replay. Steps without production data give the core absent signals, so it holds
 * and then decays exactly as it would live while blind.
 */
export function replay(input: ReplayInput): ReplayOutput {
  const { policy, history, fits } = input;
  const observation = input.observation ?? resolveObservation(policy, undefined).timing;
  const step = history.stepSeconds;
  const guardrails = guardrailsOf(policy);
  const fitBy = new Map(fits.map((f) => [f.signal, f] as const));
  const warnings: string[] = [];

  for (const s of guardrails) {
    const f = fitBy.get(s);
    if (f === undefined || f.points === 0) {
      warnings.push(
        `${s}: the history has no points to model it, so the replay treats it as missing and the controller is blind to it.`,
      );
    } else if (!f.trusted) {
      warnings.push(
        `${s}: the fit is not trusted: ${f.why ?? 'poor fit'}. The replay uses it anyway, so read its verdicts with care.`,
      );
    }
  }

  const firstActual = history.actualPercent.find((p): p is number => p !== null);
  let percent = clampPercent(firstActual ?? policy.bounds.minPercent);
  // Percentages in effect over the last window, newest last, to know what the rate window reflects.
  const windowSteps = Math.max(1, Math.ceil(policy.windowSeconds / step));
  const inWindow: number[] = Array.from({ length: windowSteps }, () => percent);
  let state: ControllerState | undefined;

  const points: BacktestPoint[] = [];
  let writes = 0;
  let decreases = 0;
  let increases = 0;
  let estimatedBreachSteps = 0;
  let actualBreachSteps = 0;
  let actualMirrored = 0;
  let wouldBeMirrored = 0;
  let productionGaps = 0;
  let maxWouldBeRps = 0;
  let feedForwardSteps = 0;

  history.times.forEach((t, i) => {
    const production = history.productionRps[i] ?? null;
    const windowPercent = inWindow.reduce((a, b) => a + b, 0) / inWindow.length;
    let signals: Signals;
    let requestRate: Signal;
    let productionRate: Signal;
    if (production === null || !Number.isFinite(production) || production < 0) {
      productionGaps++;
      const absent: Signal = {
        kind: 'absent',
        reason: 'NoSeries',
        detail: `no production traffic data at ${formatTime(t)}`,
      };
      signals = Object.fromEntries(guardrails.map((s) => [s, absent]));
      requestRate = absent;
      productionRate = absent;
    } else {
      const seen = (production * windowPercent) / 100;
      signals = modelSignals(guardrails, fitBy, seen);
      requestRate = { kind: 'value', value: seen };
      productionRate =
        production > 0
          ? { kind: 'value', value: production }
          : { kind: 'absent', reason: 'NoTraffic', detail: `no production traffic at ${formatTime(t)}` };
    }

    const decision = decide({
      now: t * 1000,
      policy,
      currentPercent: percent,
      signals,
      requestRate,
      productionRate,
      observation,
      state,
    });
    if (decision.mode === 'FeedForward') feedForwardSteps++;
    state = decision.state;
    percent = decision.percent;
    inWindow.push(percent);
    inWindow.shift();
    if (decision.action !== 'hold') writes++;
    if (decision.action === 'decrease') decreases++;
    if (decision.action === 'increase') increases++;

    const usable = production !== null && Number.isFinite(production) && production >= 0;
    const wouldBeRps = usable ? (production * percent) / 100 : null;
    const predicted: Partial<Record<SignalName, number>> = {};
    const breaches: SignalName[] = [];
    if (wouldBeRps !== null) {
      maxWouldBeRps = Math.max(maxWouldBeRps, wouldBeRps);
      wouldBeMirrored += wouldBeRps * step;
      const atRate = modelSignals(guardrails, fitBy, wouldBeRps);
      for (const s of guardrails) {
        const sig = atRate[s];
        if (sig?.kind !== 'value') continue;
        predicted[s] = round(sig.value);
        const limit = policy.guardrails[s];
        if (limit !== undefined && sig.value > limit) breaches.push(s);
      }
      if (breaches.length > 0) estimatedBreachSteps++;
    }

    const actualRps = history.mirroredRps[i] ?? null;
    if (actualRps !== null && Number.isFinite(actualRps) && actualRps >= 0)
      actualMirrored += actualRps * step;
    const observedBreach = guardrails.some((s) => {
      const v = history.signals[s]?.[i] ?? null;
      const limit = policy.guardrails[s];
      return v !== null && limit !== undefined && v > limit;
    });
    if (observedBreach) actualBreachSteps++;

    points.push({
      t,
      productionRps: usable ? round(production) : null,
      actualPercent: history.actualPercent[i] ?? null,
      wouldBePercent: percent,
      actualMirroredRps: actualRps === null ? null : round(actualRps),
      wouldBeMirroredRps: wouldBeRps === null ? null : round(wouldBeRps),
      predicted,
      breaches,
      action: decision.action,
      reason: decision.reason,
    });
  });

  if (productionGaps > 0) {
    const share = Math.round((productionGaps / Math.max(1, history.times.length)) * 100);
    warnings.push(
      `Production traffic has no data for ${productionGaps} of ${history.times.length} steps (${share} %): the controller saw no signals there, as it would live while blind.`,
    );
  }
  const seenMax = Math.max(0, ...fits.filter((f) => f.points > 0).map((f) => f.rpsRange[1]));
  if (seenMax > 0 && maxWouldBeRps > EXTRAPOLATION_FACTOR * seenMax) {
    warnings.push(
      `The replay asked the model about up to ${round(maxWouldBeRps, 1)} req/s mirrored, beyond the ${round(seenMax, 1)} req/s seen in the history: predictions there are extrapolated.`,
    );
  }

  return {
    points,
    summary: {
      writes,
      estimatedBreachSeconds: estimatedBreachSteps * step,
      actualBreachSeconds: actualBreachSteps * step,
      actualMirroredRequests: Math.round(actualMirrored),
      wouldBeMirroredRequests: Math.round(wouldBeMirrored),
      decreases,
      increases,
    },
    warnings,
    feedForwardSteps,
  };
}
