/**
 * The figures of a live run, from its ground-truth trace (one TruthRow every tick). Pure.
 */
import type { TruthRow } from './plant.js';
import type { ChangeSpan } from './scenario.js';

/** Mirrored requests as a share of the oracle's over a span. */
export interface YieldFigure {
  readonly mirrored: number;
  readonly oracle: number;
  /** mirrored / oracle; null when the oracle mirrored nothing in the span. */
  readonly share: number | null;
}

export interface LiveFigures {
  /** Seconds of trace from t = 0 (the daemon's start) to the end. */
  readonly seconds: number;
  readonly yield: YieldFigure;
  /** Before the change, during it, after it (empty spans when the scenario has no change). */
  readonly phases: {
    readonly before: YieldFigure;
    readonly during: YieldFigure;
    readonly after: YieldFigure;
  };
  readonly breachSeconds: number;
  readonly breachShare: number;
  /** Largest true severity seen. */
  readonly maxSeverity: number;
  /**
   * Seconds from the change's start until the target is back under every guardrail: the end of the first
   * breach that starts within 60 s of the change; 0 when none does; null without a change or when the breach
   * lasts to the end of the run.
   */
  readonly recoverySeconds: number | null;
  /** Seconds from t = 0 until the target first receives at least 85 % of the safe percentage; null if never. */
  readonly reach85FromStartSeconds: number | null;
  /** The same from the change's end (capacity back, surge over); null if never or without a change. */
  readonly reach85AfterChangeSeconds: number | null;
  /** Decreases of the written percentage after the change's start (read by the plant). */
  readonly cutsAfterChange: number;
  /** Time-weighted means of the percentage the target received and of the safe percentage. */
  readonly meanEffective: number;
  readonly meanSafe: number;
}

/** Share of the oracle's mirrored requests that counts as reaching the safe level. */
export const REACH_SHARE = 0.85;
/** A breach that starts this long after the change is not the change's. */
const RECOVERY_WINDOW_SECONDS = 60;

function share(mirrored: number, oracle: number): YieldFigure {
  return { mirrored, oracle, share: oracle > 0 ? mirrored / oracle : null };
}

/**
 * Integrates the trace over [0, `endSeconds`): each row holds until the next one.
 * @param change the scenario's change, or undefined.
 */
export function liveFigures(
  rows: readonly TruthRow[],
  endSeconds: number,
  change: ChangeSpan | undefined,
): LiveFigures {
  const inRun = rows.filter((r) => r.t >= 0 && r.t < endSeconds).sort((a, b) => a.t - b.t);
  const acc = { before: [0, 0], during: [0, 0], after: [0, 0] };
  let seconds = 0;
  let breachSeconds = 0;
  let maxSev = 0;
  let effSeconds = 0;
  let safeSeconds = 0;
  for (let i = 0; i < inRun.length; i++) {
    const r = inRun[i] as TruthRow;
    const next = inRun[i + 1]?.t ?? endSeconds;
    const dt = Math.max(0, next - r.t);
    seconds += dt;
    const phase =
      change === undefined || r.t < change.startSeconds
        ? acc.before
        : r.t < change.endSeconds
          ? acc.during
          : acc.after;
    phase[0] = (phase[0] ?? 0) + r.mirroredRps * dt;
    phase[1] = (phase[1] ?? 0) + ((r.productionRps * r.safe) / 100) * dt;
    if (r.breach) breachSeconds += dt;
    maxSev = Math.max(maxSev, r.cpu, r.errors, r.p99);
    effSeconds += r.effective * dt;
    safeSeconds += r.safe * dt;
  }
  const total = (k: 0 | 1) => (acc.before[k] ?? 0) + (acc.during[k] ?? 0) + (acc.after[k] ?? 0);

  const reach = (from: number): number | null => {
    const hit = inRun.find((r) => r.t >= from && r.effective >= REACH_SHARE * r.safe);
    return hit === undefined ? null : hit.t - from;
  };

  let recovery: number | null = null;
  let cuts = 0;
  if (change !== undefined) {
    const start = change.startSeconds;
    const first = inRun.findIndex((r) => r.t >= start && r.t < start + RECOVERY_WINDOW_SECONDS && r.breach);
    if (first < 0) recovery = 0;
    else {
      const end = inRun.findIndex((r, i) => i > first && !r.breach);
      recovery = end < 0 ? null : (inRun[end]?.t ?? start) - start;
    }
    for (let i = 1; i < inRun.length; i++) {
      const a = inRun[i - 1] as TruthRow;
      const b = inRun[i] as TruthRow;
      if (b.t >= start && b.written < a.written) cuts++;
    }
  }

  return {
    seconds,
    yield: share(total(0), total(1)),
    phases: {
      before: share(acc.before[0] ?? 0, acc.before[1] ?? 0),
      during: share(acc.during[0] ?? 0, acc.during[1] ?? 0),
      after: share(acc.after[0] ?? 0, acc.after[1] ?? 0),
    },
    breachSeconds,
    breachShare: seconds > 0 ? breachSeconds / seconds : 0,
    maxSeverity: maxSev,
    recoverySeconds: recovery,
    reach85FromStartSeconds: reach(0),
    reach85AfterChangeSeconds: change === undefined ? null : reach(change.endSeconds),
    cutsAfterChange: cuts,
    meanEffective: seconds > 0 ? effSeconds / seconds : 0,
    meanSafe: seconds > 0 ? safeSeconds / seconds : 0,
  };
}
