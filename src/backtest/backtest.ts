/**
 * A backtest end to end: read the history, fit the model, replay the policy through it.
 */
import { SIGNAL_NAMES } from '../core/types.js';
import { describeRoute } from '../mesh/route.js';
import type { MirrorPolicy } from '../policy/types.js';
import { capacityOf, DEFAULT_FIT_OPTIONS, type FitOptions, fitSignal } from './fit.js';
import { type History, mirrorRatio } from './history.js';
import { type HistoryRequest, type PrometheusRangeReader, readHistory } from './prometheus.js';
import { replay } from './replay.js';
import type { BacktestResult, SignalFit } from './types.js';

/**
 * How far the received rate may stray from production * percent before the backtest says so: sampling,
 * rate windows and retries move it a little, a wrong production query by far more.
 */
export const MIRROR_RATIO_TOLERANCE = 1.25;

/**
 * Fits every guardrail of the policy on the history and replays the policy through the fits. Pure.
 * @param range the requested range, epoch seconds (the grid's ends)
 */
export function backtestHistory(
  policy: MirrorPolicy,
  history: History,
  range: { readonly from: number; readonly to: number },
  fitOptions: FitOptions = DEFAULT_FIT_OPTIONS,
): BacktestResult {
  const fits: SignalFit[] = [];
  for (const s of SIGNAL_NAMES) {
    const limit = policy.guardrails[s];
    if (limit === undefined) continue;
    fits.push(fitSignal(s, limit, history.mirroredRps, history.signals[s] ?? [], fitOptions));
  }
  const capacityRps = capacityOf(fits);
  const replayed = replay({ policy, history, fits });
  const warnings = [...history.warnings, ...replayed.warnings];
  if (capacityRps === null) {
    warnings.push(
      'No trusted fit reaches its guardrail, so the capacity of the mirror target is unknown: the replay rests on untrusted fits.',
    );
  }
  const ratio = mirrorRatio(history);
  if (ratio !== undefined && (ratio < 1 / MIRROR_RATIO_TOLERANCE || ratio > MIRROR_RATIO_TOLERANCE)) {
    warnings.push(
      `The target received ${Math.round(ratio * 100)} % of production traffic times the percentage in effect (median over the history; 100 % expected): the production query may count another service (see --primary-service, --production-query) or the percentage may be wrong, and the replay's mirrored rates are off by as much.`,
    );
  }
  if (history.stepSeconds !== policy.intervalSeconds) {
    warnings.push(
      `The replay decides every ${history.stepSeconds} s (--step) while the policy's interval is ${policy.intervalSeconds} s: write counts and the pace of raises differ from live.`,
    );
  }
  return {
    policy: policy.name,
    route: describeRoute(policy.route),
    from: range.from,
    to: range.to,
    stepSeconds: history.stepSeconds,
    percentSource: history.percentSource,
    fits,
    capacityRps,
    points: replayed.points,
    summary: replayed.summary,
    warnings,
  };
}

/**
 * Reads the policy's history from Prometheus and backtests it.
 * @throws BacktestError when the history cannot support a backtest (no target data, no production data, no
 *   percentage), naming what is missing.
 */
export async function runBacktest(
  reader: PrometheusRangeReader,
  request: HistoryRequest,
  fitOptions: FitOptions = DEFAULT_FIT_OPTIONS,
): Promise<BacktestResult> {
  const history = await readHistory(reader, request);
  return backtestHistory(request.policy, history, request.grid, fitOptions);
}
