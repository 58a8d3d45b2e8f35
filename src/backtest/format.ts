/**
 * The backtest result as text for people: a short summary, the fits, and where the controller would have
 * cut and raised. Pure.
 */
import { formatTime } from './time.js';
import type { BacktestPoint, BacktestResult, SignalFit } from './types.js';

/** Most change episodes listed; the rest are counted. */
export const MAX_EPISODES = 40;

function num(n: number, digits = 3): string {
  if (!Number.isFinite(n)) return String(n);
  if (n !== 0 && Math.abs(n) < 10 ** -digits) return n.toExponential(2);
  return Number(n.toPrecision(digits)).toString();
}

function thousands(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function pct(n: number | null): string {
  return n === null ? '-' : `${Number(n.toFixed(2))}%`;
}

/** Seconds as `2h 5m`, `5m 30s` or `45s`. */
export function formatSeconds(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
  if (m > 0) return r > 0 ? `${m}m ${r}s` : `${m}m`;
  return `${r}s`;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) {
    r.forEach((c, i) => {
      widths[i] = Math.max(widths[i] ?? 0, c.length);
    });
  }
  return rows
    .map((r) =>
      r
        .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function fitRow(f: SignalFit): string[] {
  return [
    f.signal,
    num(f.limit),
    num(f.intercept),
    num(f.slope),
    num(f.r2, 2),
    String(f.points),
    `${num(f.rpsRange[0])}-${num(f.rpsRange[1])}`,
    f.capacityRps === null ? 'never' : `${num(f.capacityRps)} req/s`,
    f.trusted ? 'yes' : `no: ${f.why ?? 'poor fit'}`,
  ];
}

/** A stretch of consecutive steps with the same kind of change. */
export interface Episode {
  readonly action: 'increase' | 'decrease';
  readonly from: number;
  readonly to: number;
  readonly fromPercent: number;
  readonly toPercent: number;
  readonly writes: number;
  readonly reasons: readonly string[];
  /** Actual percentage at the end of the stretch. */
  readonly actualPercent: number | null;
}

/**
 * Groups the replay's changes into episodes: changes in the same direction with only holds between them,
 * none longer than `maxGapSeconds`, make one line (a slow trim over hours is one story, not twenty).
 */
export function episodes(points: readonly BacktestPoint[], maxGapSeconds = 1800): Episode[] {
  const out: Episode[] = [];
  let current: (Episode & { reasons: string[] }) | undefined;
  let previousPercent = points[0]?.actualPercent ?? points[0]?.wouldBePercent ?? 0;
  points.forEach((p, i) => {
    const before = i === 0 ? previousPercent : (points[i - 1]?.wouldBePercent ?? previousPercent);
    previousPercent = p.wouldBePercent;
    if (p.action === 'hold') return;
    if (current !== undefined && current.action === p.action && p.t - current.to <= maxGapSeconds) {
      current = {
        ...current,
        to: p.t,
        toPercent: p.wouldBePercent,
        writes: current.writes + 1,
        actualPercent: p.actualPercent,
        reasons: current.reasons.includes(p.reason) ? current.reasons : [...current.reasons, p.reason],
      };
      out[out.length - 1] = current;
      return;
    }
    current = {
      action: p.action,
      from: p.t,
      to: p.t,
      fromPercent: before,
      toPercent: p.wouldBePercent,
      writes: 1,
      reasons: [p.reason],
      actualPercent: p.actualPercent,
    };
    out.push(current);
  });
  return out;
}

function meanPercent(
  points: readonly BacktestPoint[],
  pick: (p: BacktestPoint) => number | null,
): number | null {
  let sum = 0;
  let n = 0;
  for (const p of points) {
    const v = pick(p);
    if (v !== null) {
      sum += v;
      n++;
    }
  }
  return n === 0 ? null : sum / n;
}

/** The result as the `--output table` text (ends with a newline). */
export function formatBacktestTable(result: BacktestResult): string {
  const s = result.summary;
  const lines: string[] = [];
  lines.push(
    `Backtest of policy ${result.policy} (${result.route}), ${formatTime(result.from)} to ${formatTime(result.to)}, every ${result.stepSeconds}s`,
  );
  lines.push(
    `Actual percentage: ${result.percentSource === 'metric' ? 'from mirror_autoscaler_mirror_percent' : 'assumed (--assume-percent)'}`,
  );
  const binding = result.fits
    .filter((f) => f.trusted && f.capacityRps !== null)
    .sort((a, b) => (a.capacityRps ?? 0) - (b.capacityRps ?? 0))[0];
  lines.push(
    `Capacity of the mirror target: ${
      result.capacityRps === null
        ? 'unknown (no trusted fit reaches its guardrail)'
        : `${num(result.capacityRps)} req/s mirrored${binding !== undefined ? ` (${binding.signal} reaches ${num(binding.limit)})` : ''}`
    }`,
  );
  lines.push('');
  const change =
    s.actualMirroredRequests > 0
      ? ` (${s.wouldBeMirroredRequests >= s.actualMirroredRequests ? '+' : ''}${Math.round((s.wouldBeMirroredRequests / s.actualMirroredRequests - 1) * 100)} %)`
      : '';
  lines.push(
    table([
      ['', 'ACTUAL', 'WOULD-BE'],
      [
        'mean percentage',
        pct(meanPercent(result.points, (p) => p.actualPercent)),
        pct(meanPercent(result.points, (p) => p.wouldBePercent)),
      ],
      [
        'mirrored requests',
        thousands(s.actualMirroredRequests),
        `${thousands(s.wouldBeMirroredRequests)}${change}`,
      ],
      [
        'time over a guardrail',
        `${formatSeconds(s.actualBreachSeconds)} (observed)`,
        `${formatSeconds(s.estimatedBreachSeconds)} (model)`,
      ],
      ['writes', '-', `${s.writes} (${s.increases} raises, ${s.decreases} cuts)`],
    ]),
  );
  lines.push('');
  lines.push(
    table([
      ['FIT', 'LIMIT', 'INTERCEPT', 'SLOPE/RPS', 'R2', 'POINTS', 'RPS RANGE', 'CAPACITY', 'TRUSTED'],
      ...result.fits.map(fitRow),
    ]),
  );
  const eps = episodes(result.points);
  lines.push('');
  if (eps.length === 0) {
    lines.push('Changes: none (the controller would have held the percentage throughout).');
  } else {
    lines.push('Changes (would-be; actual percentage at the end of each stretch):');
    const rows = eps
      .slice(0, MAX_EPISODES)
      .map((e) => [
        formatTime(e.from),
        e.from === e.to ? '' : `to ${formatTime(e.to)}`,
        e.action === 'decrease' ? 'cut' : 'raise',
        `${pct(e.fromPercent)} -> ${pct(e.toPercent)}`,
        `${e.writes} write${e.writes === 1 ? '' : 's'}`,
        `actual ${pct(e.actualPercent)}`,
        e.reasons.join(','),
      ]);
    lines.push(
      table(rows)
        .split('\n')
        .map((l) => `  ${l}`)
        .join('\n'),
    );
    if (eps.length > MAX_EPISODES) {
      lines.push(`  … ${eps.length - MAX_EPISODES} more (--output json has every step)`);
    }
  }
  if (result.warnings.length > 0) {
    lines.push('');
    lines.push('Warnings:');
    for (const w of result.warnings) lines.push(`  - ${w}`);
  }
  return `${lines.join('\n')}\n`;
}
