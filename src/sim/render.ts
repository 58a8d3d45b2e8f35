/**
 * Terminal rendering of simulation results: a chart of the mirror percentage against the oracle's, the
 * summary of one run, and a one-row-per-scenario table.
 */
import asciichart from 'asciichart';
import { formatDuration } from '../policy/duration.js';
import type { SimResult, SimSample, SimSummary } from './loop.js';

/** How to render. */
export interface RenderOptions {
  /** Terminal width in columns. */
  readonly columns: number;
  /** Emit ANSI colours (only when writing to a terminal and NO_COLOR is not set). */
  readonly color: boolean;
}

const PERCENT_COLOR = asciichart.cyan;
const ORACLE_COLOR = asciichart.green;
const CHART_HEIGHT = 14;
const LABEL_WIDTH = 7;
/** asciichart's glyphs (axis, axis, -, -, horizontal, corners, vertical) with dashed lines for the oracle. */
const ORACLE_SYMBOLS = ['┼', '┤', '╶', '╴', '┄', '╰', '╭', '╮', '╯', '┆'];

const paint = (text: string, color: string, on: boolean): string =>
  on ? `${color}${text}${asciichart.reset}` : text;

/**
 * Averages one field of the samples into `width` columns by time; a column without a sample repeats the
 * previous column, so a short run is shown at one column per evaluation instead of stretched.
 */
export function downsample(
  samples: readonly SimSample[],
  durationSeconds: number,
  width: number,
  field: (s: SimSample) => number,
): number[] {
  const [first] = samples;
  if (first === undefined || width < 1) return [];
  const columns = Math.min(width, samples.length);
  const out: number[] = [];
  let i = 0;
  let last = field(first);
  for (let c = 0; c < columns; c++) {
    const end = ((c + 1) * durationSeconds) / columns;
    let sum = 0;
    let n = 0;
    for (let s = samples[i]; s !== undefined && s.t < end; s = samples[++i]) {
      sum += field(s);
      n++;
    }
    if (n > 0) last = sum / n;
    out.push(last);
  }
  return out;
}

/** A round tick spacing in seconds giving at most `maxTicks` ticks over `duration`. */
function tickSpacing(duration: number, maxTicks: number): number {
  const steps = [60, 120, 300, 600, 900, 1200, 1800, 3600, 7200, 10800, 21600, 43200, 86400];
  for (const s of steps) if (duration / s <= maxTicks) return s;
  return Math.ceil(duration / maxTicks / 86400) * 86400;
}

/**
 * The chart of the mirror percentage (what the target received) against the oracle's largest safe
 * percentage, over time, with a legend and a time axis.
 */
export function renderChart(result: SimResult, options: RenderOptions): string {
  const duration = result.summary.durationSeconds;
  // asciichart prints the label, then one space and the axis before the first column.
  const prefix = LABEL_WIDTH + 2;
  const width = Math.max(10, options.columns - prefix - 1);
  const percent = downsample(result.samples, duration, width, (s) => s.percent);
  const oracle = downsample(result.samples, duration, width, (s) => s.oraclePercent);
  if (percent.length === 0) return '(no samples)\n';
  const top = Math.max(...percent, ...oracle, 1);
  // Round the top up to a whole number of rows of a round size, so axis labels read cleanly.
  const unit = top <= 14 ? 1 : top <= 28 ? 2 : top <= 70 ? 5 : 10;
  const max = Math.ceil(top / unit) * unit;
  const config = {
    min: 0,
    max,
    height: Math.min(CHART_HEIGHT, Math.max(4, max / unit)),
    offset: 3,
    format: (v: number) => `${v.toFixed(1)} %`.padStart(LABEL_WIDTH),
  };
  // Each line is drawn alone and the two are overlaid cell by cell, so that the oracle can have dashed
  // glyphs: the lines stay distinguishable without colour, and the mirror percentage is drawn on top.
  const percentRows = asciichart.plot(percent, config).split('\n');
  const oracleRows = asciichart.plot(oracle, { ...config, symbols: ORACLE_SYMBOLS }).split('\n');
  const chart = percentRows
    .map((row, r) => {
      const under = oracleRows[r] ?? '';
      let line = row.slice(0, prefix);
      for (let c = prefix; c < row.length; c++) {
        const mine = row[c] ?? ' ';
        const theirs = under[c] ?? ' ';
        if (mine !== ' ') line += paint(mine, PERCENT_COLOR, options.color);
        else if (theirs !== ' ') line += paint(theirs, ORACLE_COLOR, options.color);
        else line += ' ';
      }
      return line.trimEnd();
    })
    .join('\n');

  // Time axis: labels at round times, placed at the column that shows that time.
  const columns = percent.length;
  const spacing = tickSpacing(duration, Math.max(2, Math.floor(columns / 12)));
  const axis: string[] = Array.from({ length: prefix + columns + 8 }, () => ' ');
  for (let t = 0; t <= duration; t += spacing) {
    const col = prefix + Math.min(columns - 1, Math.round((t / duration) * columns));
    const label = formatDuration(t);
    if (axis.slice(col - 1, col + label.length + 1).some((ch) => ch !== ' ')) continue;
    for (let k = 0; k < label.length; k++) axis[col + k] = label[k] ?? ' ';
  }
  const legend = `${' '.repeat(prefix)}${paint('──', PERCENT_COLOR, options.color)} mirror percentage   ${paint(
    '┄┄',
    ORACLE_COLOR,
    options.color,
  )} largest safe percentage (oracle)`;
  const fullTitle = `scenario ${result.scenario.name}: ${result.scenario.description}`;
  const title =
    fullTitle.length <= options.columns ? fullTitle : `${fullTitle.slice(0, options.columns - 1)}…`;
  return `${title}\n\n${chart}\n${axis.join('').trimEnd()}\n\n${legend}\n`;
}

const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : String(n));
const count = (n: number): string => Math.round(n).toLocaleString('en-US');

/** The summary of one run as labelled lines. */
export function renderSummary(result: SimResult): string {
  const s = result.summary;
  const b = result.policy.bounds;
  const g = result.policy.guardrails;
  const limits = [
    g.cpuUtilization !== undefined ? `cpu ${g.cpuUtilization}` : undefined,
    g.errorRate !== undefined ? `errors ${g.errorRate}` : undefined,
    g.latencyP99Ms !== undefined ? `p99 ${g.latencyP99Ms} ms` : undefined,
  ].filter((x) => x !== undefined);
  const lines: [string, string][] = [
    [
      'run',
      `scenario ${result.scenario.name}, seed ${result.seed}, ${formatDuration(s.durationSeconds)}; bounds ${b.minPercent}–${b.maxPercent} %, guardrails ${limits.join(', ')}, every ${formatDuration(result.policy.intervalSeconds)} over ${formatDuration(result.policy.windowSeconds)}, scrapes every ${formatDuration(result.scenario.observation.scrapeIntervalSeconds)}`,
    ],
    [
      'mirrored',
      `${fixed(s.mirroredShare, 3)} of the safe maximum (${count(s.mirroredRequests)} of ${count(s.oracleRequests)} requests; mean ${fixed(s.meanPercent, 1)} % vs ${fixed(s.meanOraclePercent, 1)} %)`,
    ],
    [
      'in breach',
      `${s.breachSeconds} s (${fixed(s.breachShare * 100, 2)} % of the time; integral ${fixed(s.breachIntegral, 1)} severity·s)`,
    ],
    ['writes', `${s.writes} (${fixed(s.writesPerHour, 1)} per hour)`],
    [
      'while blind',
      s.maxPercentWhileBlind === null
        ? 'never blind'
        : `${s.blindEvaluations} evaluations, highest ${fixed(s.maxPercentWhileBlind, 1)} %${
            s.maxRiseWhileBlind === null
              ? ''
              : ` (${fixed(s.maxRiseWhileBlind, 1)} points over the last safe level)`
          }`,
    ],
  ];
  if (s.recoverySeconds !== null)
    lines.push(['after the drop', `back under the guardrails in ${s.recoverySeconds} s`]);
  const w = Math.max(...lines.map(([k]) => k.length));
  return `${lines.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n')}\n`;
}

/** One row of the all-scenarios table. */
export interface SummaryRow {
  readonly name: string;
  readonly summary: SimSummary;
}

/** The column headings and cells of the all-scenarios table. */
export function summaryTableCells(rows: readonly SummaryRow[]): string[][] {
  const header = [
    'scenario',
    'mirrored/safe',
    'breach s',
    'breach %',
    'breach integral',
    'writes',
    'writes/h',
    'max % blind',
    'recovery s',
  ];
  const body = rows.map(({ name, summary: s }) => [
    name,
    fixed(s.mirroredShare, 3),
    String(s.breachSeconds),
    fixed(s.breachShare * 100, 2),
    fixed(s.breachIntegral, 1),
    String(s.writes),
    fixed(s.writesPerHour, 1),
    s.maxPercentWhileBlind === null ? '-' : fixed(s.maxPercentWhileBlind, 1),
    s.recoverySeconds === null ? '-' : String(s.recoverySeconds),
  ]);
  return [header, ...body];
}

/** The all-scenarios table, columns aligned (names left, numbers right). */
export function renderSummaryTable(rows: readonly SummaryRow[]): string {
  const cells = summaryTableCells(rows);
  const widths = (cells[0] ?? []).map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: readonly string[]): string =>
    r
      .map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join('  ')
      .trimEnd();
  const [header, ...body] = cells;
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return `${[line(header ?? []), rule, ...body.map(line)].join('\n')}\n`;
}
