/**
 * Prometheus duration syntax (`30s`, `2m`, `1h30m`, `500ms`): units y, w, d, h, m, s, ms, each at most once,
 * largest first. Policies use it for every time span so that a window written in a policy is the same text
 * an operator would type into PromQL.
 */

const UNIT_SECONDS = {
  y: 365 * 24 * 3600,
  w: 7 * 24 * 3600,
  d: 24 * 3600,
  h: 3600,
  m: 60,
  s: 1,
  ms: 0.001,
} as const;
type Unit = keyof typeof UNIT_SECONDS;
const UNITS_LARGEST_FIRST: readonly Unit[] = ['y', 'w', 'd', 'h', 'm', 's', 'ms'];

/**
 * The accepted syntax as an ECMAScript regular expression source, shared with the JSON Schema.
 * At most 9 digits per unit bounds the work and the size of the number; ranges are checked by the caller.
 */
export const DURATION_PATTERN =
  '^(?=\\d)(?:(\\d{1,9})y)?(?:(\\d{1,9})w)?(?:(\\d{1,9})d)?(?:(\\d{1,9})h)?(?:(\\d{1,9})m)?(?:(\\d{1,9})s)?(?:(\\d{1,9})ms)?$';
const DURATION_RE = new RegExp(DURATION_PATTERN);

/**
 * Parses a Prometheus duration into seconds.
 * @returns seconds (fractional for ms), or undefined when `text` is not a duration.
 */
export function parseDuration(text: string): number | undefined {
  // The look-ahead only guarantees a leading digit; an empty match of every group must still be refused.
  if (text.length === 0 || text.length > 80) return undefined;
  const m = DURATION_RE.exec(text);
  if (m === null) return undefined;
  let ms = 0;
  let matchedAny = false;
  UNITS_LARGEST_FIRST.forEach((unit, i) => {
    const digits = m[i + 1];
    if (digits === undefined) return;
    matchedAny = true;
    ms += Number(digits) * UNIT_SECONDS[unit] * 1000;
  });
  return matchedAny ? ms / 1000 : undefined;
}

/**
 * Formats seconds as the shortest Prometheus duration, e.g. 90 → `1m30s`, 0.5 → `500ms`, 0 → `0s`.
 * Sub-millisecond parts are rounded to the nearest millisecond because PromQL cannot express them.
 */
export function formatDuration(seconds: number): string {
  let ms = Math.round(seconds * 1000);
  if (!Number.isFinite(ms) || ms <= 0) return '0s';
  let out = '';
  for (const unit of UNITS_LARGEST_FIRST) {
    const unitMs = UNIT_SECONDS[unit] * 1000;
    // Weeks and years are left out on output: `14d` reads better than `2w` in a window.
    if (unit === 'y' || unit === 'w') continue;
    const n = Math.floor(ms / unitMs);
    if (n > 0) {
      out += `${n}${unit}`;
      ms -= n * unitMs;
    }
  }
  return out;
}
