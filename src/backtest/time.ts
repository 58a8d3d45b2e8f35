/**
 * Time arguments of `backtest`: `now`, relative (`-24h`, `-90m`, `-1h30m`), RFC 3339 and epoch seconds.
 * Pure: the current time is passed in.
 */
import { parseDuration } from '../policy/duration.js';

/** An argument that cannot be used; the message names the flag and the value. */
export class BacktestArgumentError extends Error {
  /** The flag at fault, e.g. --from. */
  readonly flag: string;
  constructor(flag: string, message: string) {
    super(`${flag}: ${message}`);
    this.name = 'BacktestArgumentError';
    this.flag = flag;
  }
}

// RFC 3339: date, 'T' or space, time, optional fraction, and a mandatory offset (Z or ±hh:mm).
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const EPOCH = /^\d{1,12}(\.\d+)?$/;

/**
 * Parses a point in time.
 * @param text `now`, `-DURATION` (a Prometheus duration before now), RFC 3339 with an offset, or epoch seconds.
 * @param nowSeconds the current time, epoch seconds.
 * @returns epoch seconds.
 * @throws BacktestArgumentError naming `flag` and the value.
 */
export function parseTime(flag: string, text: string, nowSeconds: number): number {
  const t = text.trim();
  if (t === 'now') return nowSeconds;
  if (t.startsWith('-')) {
    const seconds = parseDuration(t.slice(1));
    if (seconds === undefined || seconds <= 0) {
      throw new BacktestArgumentError(
        flag,
        `"${text}" is not a relative time; write a duration before now such as -24h, -90m or -1h30m`,
      );
    }
    return nowSeconds - seconds;
  }
  if (EPOCH.test(t)) return Number(t);
  if (RFC3339.test(t)) {
    const ms = Date.parse(t.replace(' ', 'T'));
    if (Number.isFinite(ms)) return ms / 1000;
  }
  throw new BacktestArgumentError(
    flag,
    `"${text}" is not a time; use now, a relative time such as -24h, RFC 3339 such as 2026-11-25T08:00:00Z, or epoch seconds`,
  );
}

/**
 * Parses a positive duration argument such as `30s`.
 * @returns seconds.
 * @throws BacktestArgumentError naming `flag` and the value.
 */
export function parseStep(flag: string, text: string): number {
  const seconds = parseDuration(text.trim());
  if (seconds === undefined || seconds < 1) {
    throw new BacktestArgumentError(
      flag,
      `must be a duration of at least 1s such as 30s or 1m (got "${text}")`,
    );
  }
  return seconds;
}

/** Formats epoch seconds as RFC 3339 UTC without milliseconds, for tables and messages. */
export function formatTime(seconds: number): string {
  return new Date(Math.round(seconds) * 1000).toISOString().replace('.000Z', 'Z');
}
