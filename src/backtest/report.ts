/**
 * The backtest's HTML report: one self-contained file that opens in a browser with no network. uPlot and
 * its stylesheet are inlined, the data travels as JSON in a non-executed script block, and a strict
 * Content-Security-Policy forbids every fetch, so a report mailed around or opened from an air-gapped
 * laptop looks the same and cannot leak anything. The text parts (headline numbers, warnings, fits, breach
 * intervals) are plain HTML, readable without JavaScript.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { BacktestPoint, BacktestResult, SignalFit } from './types.js';

/** The report's assets (uPlot) could not be read from the installed package. */
export class ReportAssetError extends Error {
  constructor(
    readonly asset: string,
    cause: unknown,
  ) {
    super(
      `backtest report: cannot read ${asset}: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
      },
    );
    this.name = 'ReportAssetError';
  }
}

/** Series colours, shared by the charts, the legend text and the browser test that looks for them. */
export const REPORT_COLORS = {
  actualPercent: '#1f6fd1',
  wouldBePercent: '#e8590c',
  productionRps: '#7a7a7a',
  actualMirroredRps: '#1f6fd1',
  wouldBeMirroredRps: '#e8590c',
  breachShade: 'rgba(224, 49, 49, 0.16)',
  capacity: '#a61e1e',
} as const;

/** Rows of the breach-interval table shown without JavaScript; the chart still shades every interval. */
const MAX_BREACH_ROWS = 200;
/** Rows of the decision-change table; a week at 30 s could have thousands and the page must stay light. */
const MAX_CHANGE_ROWS = 500;

interface Assets {
  readonly js: string;
  readonly css: string;
}

let cachedAssets: Assets | undefined;

function loadAssets(): Assets {
  if (cachedAssets !== undefined) return cachedAssets;
  // Resolved from this module, not the working directory, so it works from src/, dist/ and an installed package.
  const require = createRequire(import.meta.url);
  const read = (spec: string): string => {
    try {
      return readFileSync(require.resolve(spec), 'utf8');
    } catch (err) {
      throw new ReportAssetError(spec, err);
    }
  };
  const js = read('uplot/dist/uPlot.iife.min.js');
  const css = read('uplot/dist/uPlot.min.css');
  // An inline block ends at the first "</script" or "</style" whatever the surrounding syntax; refuse
  // rather than emit a page that silently breaks.
  if (/<\/script/i.test(js))
    throw new ReportAssetError('uplot/dist/uPlot.iife.min.js', 'contains "</script"');
  if (/<\/style/i.test(css)) throw new ReportAssetError('uplot/dist/uPlot.min.css', 'contains "</style"');
  cachedAssets = { js, css };
  return cachedAssets;
}

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON for a `<script type="application/json">` block. `<`, `>` and `&` become \u escapes so no string
 * (a policy name such as `</script><script>…`) can close the block; U+2028/2029 are escaped for old
 * parsers. JSON.parse gives back the same strings.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Six significant digits: plenty for a chart, and a week of 30 s steps stays around a megabyte. */
function compact(v: number | null): number | null {
  if (v === null || !Number.isFinite(v)) return null;
  return Number(v.toPrecision(6));
}

/** A run of consecutive steps in which the model says the would-be percentage breaches a guardrail. */
export interface BreachInterval {
  /** Epoch seconds: the first breaching step, and the end of the last one (its time plus the step). */
  readonly from: number;
  readonly to: number;
  readonly signals: readonly string[];
}

/** Groups the breaching steps of a replay into intervals, for shading and for the table. */
export function breachIntervals(points: readonly BacktestPoint[], stepSeconds: number): BreachInterval[] {
  const out: { from: number; to: number; signals: Set<string> }[] = [];
  let open: { from: number; to: number; signals: Set<string> } | undefined;
  for (const p of points) {
    if (p.breaches.length === 0) {
      open = undefined;
      continue;
    }
    // A missing step between two breaching ones is a gap in the data, not a recovery: only adjacency joins.
    if (open !== undefined && p.t <= open.to) {
      open.to = p.t + stepSeconds;
      for (const s of p.breaches) open.signals.add(s);
    } else {
      open = { from: p.t, to: p.t + stepSeconds, signals: new Set(p.breaches) };
      out.push(open);
    }
  }
  return out.map((i) => ({ from: i.from, to: i.to, signals: [...i.signals].sort() }));
}

/**
 * The data embedded in the report: everything but the per-step predictions, with the points as columns
 * (uPlot's layout, and a third of the size of one object per step), for the page's script and for anyone
 * who wants the numbers back out of the file.
 */
export interface ReportData {
  readonly policy: string;
  readonly route: string;
  readonly from: number;
  readonly to: number;
  readonly stepSeconds: number;
  readonly percentSource: BacktestResult['percentSource'];
  readonly capacityRps: number | null;
  readonly summary: BacktestResult['summary'];
  readonly fits: BacktestResult['fits'];
  readonly warnings: BacktestResult['warnings'];
  /** Columns, one entry per point, aligned on `t` (uPlot's data layout). */
  readonly t: readonly number[];
  readonly actualPercent: readonly (number | null)[];
  readonly wouldBePercent: readonly (number | null)[];
  readonly productionRps: readonly (number | null)[];
  readonly actualMirroredRps: readonly (number | null)[];
  readonly wouldBeMirroredRps: readonly (number | null)[];
  readonly breaches: readonly BreachInterval[];
  readonly colors: typeof REPORT_COLORS;
}

function reportData(result: BacktestResult): ReportData {
  const pts = result.points;
  return {
    policy: result.policy,
    route: result.route,
    from: result.from,
    to: result.to,
    stepSeconds: result.stepSeconds,
    percentSource: result.percentSource,
    capacityRps: result.capacityRps,
    summary: result.summary,
    fits: result.fits,
    warnings: result.warnings,
    t: pts.map((p) => p.t),
    actualPercent: pts.map((p) => compact(p.actualPercent)),
    wouldBePercent: pts.map((p) => compact(p.wouldBePercent)),
    productionRps: pts.map((p) => compact(p.productionRps)),
    actualMirroredRps: pts.map((p) => compact(p.actualMirroredRps)),
    wouldBeMirroredRps: pts.map((p) => compact(p.wouldBeMirroredRps)),
    breaches: breachIntervals(pts, result.stepSeconds),
    colors: REPORT_COLORS,
  };
}

// ---------- text formatting ----------

function isoUtc(epochSeconds: number): string {
  if (!Number.isFinite(epochSeconds)) return String(epochSeconds);
  return `${new Date(epochSeconds * 1000).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return String(seconds);
  const s = Math.max(0, Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = s % 60;
  const parts: string[] = [];
  if (d > 0) parts.push(`${d}d`);
  if (h > 0) parts.push(`${h}h`);
  if (m > 0) parts.push(`${m}m`);
  if (rest > 0 && d === 0 && h === 0) parts.push(`${rest}s`);
  return parts.length === 0 ? '0s' : parts.join(' ');
}

function num(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined) return '–';
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && Math.abs(v) < 10 ** -digits) return v.toExponential(2);
  return v.toLocaleString('en-US', { maximumFractionDigits: digits });
}

function count(v: number): string {
  return Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : String(v);
}

function ratio(wouldBe: number, actual: number): string {
  if (!(actual > 0) || !Number.isFinite(wouldBe)) return '–';
  return `×${(wouldBe / actual).toFixed(2)}`;
}

function signalUnit(signal: string): string {
  return signal === 'latencyP99Ms' ? ' ms' : '';
}

// ---------- sections ----------

function warningsSection(result: BacktestResult): string {
  const untrusted = result.fits.filter((f) => !f.trusted);
  if (result.warnings.length === 0 && untrusted.length === 0) return '';
  const banner =
    untrusted.length > 0
      ? `<p class="untrusted-banner"><strong>The fit is too poor to trust</strong> for ${untrusted
          .map((f) => `<code>${escapeHtml(f.signal)}</code>`)
          .join(', ')}: the would-be percentages and breach estimates that depend on ${
          untrusted.length === 1 ? 'it are guesses' : 'them are guesses'
        }.</p>`
      : '';
  const items = result.warnings.map((w) => `<li>${escapeHtml(w)}</li>`).join('');
  return `<section id="warnings" class="warnings" role="alert">
<h2>Read this first</h2>
${banner}${items === '' ? '' : `<ul>${items}</ul>`}
</section>`;
}

function summarySection(result: BacktestResult): string {
  const s = result.summary;
  const cells: [string, string, string][] = [
    ['Writes', count(s.writes), `${count(s.decreases)} cuts, ${count(s.increases)} raises`],
    [
      'Mirrored requests',
      `${count(s.wouldBeMirroredRequests)} would-be`,
      `vs ${count(s.actualMirroredRequests)} actual (${ratio(s.wouldBeMirroredRequests, s.actualMirroredRequests)})`,
    ],
    [
      'Guardrail breach time',
      `${duration(s.estimatedBreachSeconds)} estimated`,
      `vs ${duration(s.actualBreachSeconds)} actual`,
    ],
    [
      'Capacity (trusted fits)',
      result.capacityRps === null ? 'unknown' : `${num(result.capacityRps, 1)} rps`,
      'mirrored rate at the first guardrail',
    ],
  ];
  const tiles = cells
    .map(
      ([label, value, detail]) =>
        `<div class="tile"><div class="label">${escapeHtml(label)}</div><div class="value">${escapeHtml(
          value,
        )}</div><div class="detail">${escapeHtml(detail)}</div></div>`,
    )
    .join('\n');
  return `<section id="summary" class="tiles">\n${tiles}\n</section>`;
}

function fitRow(f: SignalFit): string {
  const unit = signalUnit(f.signal);
  const cls = f.trusted ? 'trusted' : 'untrusted';
  const verdict = f.trusted
    ? 'trusted'
    : `<strong>NOT TRUSTED</strong>${f.why === undefined ? '' : `: ${escapeHtml(f.why)}`}`;
  return `<tr class="${cls}"><td><code>${escapeHtml(f.signal)}</code></td><td class="n">${escapeHtml(
    num(f.limit) + unit,
  )}</td><td class="n">${escapeHtml(num(f.slope, 5) + unit)}/rps</td><td class="n">${escapeHtml(
    num(f.intercept) + unit,
  )}</td><td class="n">${escapeHtml(num(f.r2, 3))}</td><td class="n">${escapeHtml(
    count(f.points),
  )}</td><td class="n">${escapeHtml(`${num(f.rpsRange[0], 2)} – ${num(f.rpsRange[1], 2)}`)}</td><td class="n">${
    f.capacityRps === null ? 'never' : escapeHtml(`${num(f.capacityRps, 1)} rps`)
  }</td><td>${verdict}</td></tr>`;
}

function fitsSection(result: BacktestResult): string {
  const body =
    result.fits.length === 0
      ? '<tr><td colspan="9">No signal could be fitted.</td></tr>'
      : result.fits.map(fitRow).join('\n');
  return `<section id="fits">
<h2>Fitted model of the mirror target</h2>
<p class="note">value = intercept + slope × mirrored rps, fitted on the history; capacity is the mirrored rate at which the model reaches the limit.</p>
<table class="fits">
<thead><tr><th>signal</th><th>limit</th><th>slope</th><th>intercept</th><th>r²</th><th>points</th><th>rps range</th><th>capacity</th><th>verdict</th></tr></thead>
<tbody>
${body}
</tbody>
</table>
</section>`;
}

function breachesSection(intervals: readonly BreachInterval[]): string {
  if (intervals.length === 0) {
    return '<section id="breaches"><h2>Estimated breaches</h2><p>None: the model says the would-be percentage stays within every guardrail.</p></section>';
  }
  const rows = intervals
    .slice(0, MAX_BREACH_ROWS)
    .map(
      (i) =>
        `<tr><td>${escapeHtml(isoUtc(i.from))}</td><td>${escapeHtml(isoUtc(i.to))}</td><td class="n">${escapeHtml(
          duration(i.to - i.from),
        )}</td><td>${i.signals.map((s) => `<code>${escapeHtml(s)}</code>`).join(', ')}</td></tr>`,
    )
    .join('\n');
  const more =
    intervals.length > MAX_BREACH_ROWS
      ? `<p class="note">…and ${intervals.length - MAX_BREACH_ROWS} more (all are shaded on the chart).</p>`
      : '';
  return `<section id="breaches">
<details>
<summary><h2>Estimated breaches (${intervals.length})</h2></summary>
<table><thead><tr><th>from</th><th>to</th><th>length</th><th>signals</th></tr></thead><tbody>
${rows}
</tbody></table>${more}
</details>
</section>`;
}

function changesSection(result: BacktestResult): string {
  const rows: string[] = [];
  let total = 0;
  // The replay starts from the percentage in effect, so a change at the first step counts too.
  let prev: number | undefined = result.points[0]?.actualPercent ?? undefined;
  for (const p of result.points) {
    if (prev !== undefined && p.wouldBePercent !== prev) {
      total++;
      if (rows.length < MAX_CHANGE_ROWS) {
        rows.push(
          `<tr><td>${escapeHtml(isoUtc(p.t))}</td><td class="n">${escapeHtml(num(prev, 2))}%</td><td class="n">${escapeHtml(
            num(p.wouldBePercent, 2),
          )}%</td><td>${escapeHtml(p.action)}</td><td><code>${escapeHtml(p.reason)}</code></td></tr>`,
        );
      }
    }
    prev = p.wouldBePercent;
  }
  if (total === 0) return '';
  const more =
    total > MAX_CHANGE_ROWS ? `<p class="note">…and ${total - MAX_CHANGE_ROWS} more changes.</p>` : '';
  return `<section id="changes">
<details>
<summary><h2>Would-be percentage changes (${total})</h2></summary>
<table><thead><tr><th>time</th><th>from</th><th>to</th><th>action</th><th>reason</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table>${more}
</details>
</section>`;
}

const STYLE = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: #1d1d1f; margin: 0; background: #f6f7f9; }
main { max-width: 1280px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 22px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 16px; margin: 0 0 8px; display: inline-block; }
.sub { color: #555; margin: 0 0 16px; overflow-wrap: anywhere; }
section { background: #fff; border: 1px solid #dfe1e5; border-radius: 6px; padding: 14px 16px; margin: 0 0 16px; }
.warnings { background: #fff4e5; border: 2px solid #e8590c; }
.warnings ul { margin: 4px 0 0; padding-left: 20px; }
.untrusted-banner { background: #c92a2a; color: #fff; padding: 8px 12px; border-radius: 4px; font-size: 15px; margin: 0 0 8px; }
.untrusted-banner code { color: #fff; }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 12px; background: none; border: none; padding: 0; }
.tile { background: #fff; border: 1px solid #dfe1e5; border-radius: 6px; padding: 10px 14px; }
.tile .label { color: #555; font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.tile .value { font-size: 20px; font-weight: 600; margin: 2px 0; }
.tile .detail { color: #444; }
.chart-title { font-weight: 600; margin: 0 0 4px; }
.legend-note { color: #555; font-size: 12px; margin: 4px 0 0; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: -1px; border-radius: 2px; margin-right: 4px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #eceef1; vertical-align: top; overflow-wrap: anywhere; }
th { font-weight: 600; color: #444; }
td.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.untrusted td { background: #ffe3e3; }
tr.untrusted td:last-child { color: #a61e1e; }
.note { color: #555; font-size: 12px; margin: 4px 0 8px; }
summary { cursor: pointer; }
.chart { min-height: 60px; }
.uplot { font-family: inherit; }
`;

/** The page's own script: draws both charts from the embedded JSON. Kept free of "</" on purpose. */
const CLIENT_SCRIPT = `
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('backtest-data').textContent);
  var c = data.colors;
  var charts = [];
  window.backtestCharts = charts;
  if (data.t.length === 0) {
    document.getElementById('charts-empty').hidden = false;
    return;
  }
  function pad(n) { return n < 10 ? '0' + n : '' + n; }
  function day(d) { return d.getUTCFullYear() + '-' + pad(d.getUTCMonth() + 1) + '-' + pad(d.getUTCDate()); }
  function hm(d) { return pad(d.getUTCHours()) + ':' + pad(d.getUTCMinutes()); }
  // Everything is in UTC, like the text above, so a report reads the same wherever it is opened.
  var timeAxis = {
    values: function (u, splits) {
      return splits.map(function (ts, i) {
        var d = new Date(ts * 1e3);
        return i === 0 || (d.getUTCHours() === 0 && d.getUTCMinutes() === 0) ? hm(d) + '\\n' + day(d) : hm(d);
      });
    }
  };
  var timeSeries = { label: 'time (UTC)', value: function (u, ts) { if (ts == null) return '–'; var d = new Date(ts * 1e3); return day(d) + ' ' + hm(d); } };
  var utc = function (ts) { return uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'); };
  var stepped = uPlot.paths.stepped({ align: 1 });
  function width(el) { return Math.max(320, el.clientWidth); }
  function shadeBreaches(u) {
    if (data.breaches.length === 0) return;
    var ctx = u.ctx;
    var top = u.bbox.top, height = u.bbox.height;
    var left = u.bbox.left, right = u.bbox.left + u.bbox.width;
    ctx.save();
    ctx.fillStyle = c.breachShade;
    for (var i = 0; i < data.breaches.length; i++) {
      var b = data.breaches[i];
      var x0 = Math.max(left, u.valToPos(b.from, 'x', true));
      var x1 = Math.min(right, u.valToPos(b.to, 'x', true));
      if (x1 > x0) ctx.fillRect(x0, top, Math.max(1, x1 - x0), height);
    }
    ctx.restore();
  }
  function drawCapacity(u) {
    if (data.capacityRps == null) return;
    var y = u.valToPos(data.capacityRps, 'mirrored', true);
    if (!(y >= u.bbox.top && y <= u.bbox.top + u.bbox.height)) return;
    var ctx = u.ctx;
    var px = window.devicePixelRatio || 1;
    ctx.save();
    ctx.strokeStyle = c.capacity;
    ctx.fillStyle = c.capacity;
    ctx.lineWidth = px;
    ctx.setLineDash([6 * px, 4 * px]);
    ctx.beginPath();
    ctx.moveTo(u.bbox.left, y);
    ctx.lineTo(u.bbox.left + u.bbox.width, y);
    ctx.stroke();
    ctx.font = (11 * px) + 'px sans-serif';
    ctx.textBaseline = 'bottom';
    ctx.fillText('capacity ' + data.capacityRps.toFixed(1) + ' rps', u.bbox.left + 4 * px, y - 2 * px);
    ctx.restore();
  }
  function fmt(digits, unit) {
    return function (u, v) { return v == null ? '–' : v.toFixed(digits) + unit; };
  }
  function upFrom0(u, min, max) { return [0, Math.max(1, (max || 0) * 1.1)]; }
  var pctEl = document.getElementById('chart-percent');
  charts.push(new uPlot({
    width: width(pctEl), height: 300, tzDate: utc,
    scales: { x: { time: true }, '%': { range: function (u, min, max) { return [0, Math.max(5, Math.ceil((max || 0) * 1.1))]; } } },
    axes: [timeAxis, { scale: '%', label: 'mirror %', values: function (u, vs) { return vs.map(function (v) { return v + '%'; }); } }],
    series: [
      timeSeries,
      { label: 'actual %', scale: '%', stroke: c.actualPercent, width: 2, paths: stepped, value: fmt(2, '%') },
      { label: 'would-be %', scale: '%', stroke: c.wouldBePercent, width: 2, paths: stepped, value: fmt(2, '%') }
    ],
    hooks: { drawClear: [shadeBreaches] }
  }, [data.t, data.actualPercent, data.wouldBePercent], pctEl));
  var rpsEl = document.getElementById('chart-rps');
  var capacityMax = data.capacityRps == null ? 0 : data.capacityRps;
  charts.push(new uPlot({
    width: width(rpsEl), height: 300, tzDate: utc,
    scales: {
      x: { time: true },
      mirrored: { range: function (u, min, max) { return upFrom0(u, min, Math.max(max || 0, capacityMax)); } },
      production: { range: upFrom0 }
    },
    axes: [timeAxis, { scale: 'mirrored', label: 'mirrored rps' }, { scale: 'production', side: 1, label: 'production rps', grid: { show: false } }],
    series: [
      timeSeries,
      { label: 'production rps (right axis)', scale: 'production', stroke: c.productionRps, width: 1.5, value: fmt(2, '') },
      { label: 'actual mirrored rps', scale: 'mirrored', stroke: c.actualMirroredRps, width: 2, value: fmt(2, '') },
      { label: 'would-be mirrored rps', scale: 'mirrored', stroke: c.wouldBeMirroredRps, width: 2, value: fmt(2, '') }
    ],
    hooks: { drawClear: [shadeBreaches], draw: [drawCapacity] }
  }, [data.t, data.productionRps, data.actualMirroredRps, data.wouldBeMirroredRps], rpsEl));
  var pending = false;
  window.addEventListener('resize', function () {
    if (pending) return;
    pending = true;
    requestAnimationFrame(function () {
      pending = false;
      charts[0].setSize({ width: width(pctEl), height: 300 });
      charts[1].setSize({ width: width(rpsEl), height: 300 });
    });
  });
})();
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

function swatch(color: string): string {
  return `<span class="swatch" style="background:${color}"></span>`;
}

/**
 * Renders a backtest as one self-contained HTML page (uPlot inlined, no network: a Content-Security-Policy
 * meta forbids every fetch). Text parts are plain HTML; the two charts (would-be vs actual percentage with
 * estimated breaches shaded, and production vs mirrored rates) are drawn by an inline script from the
 * result embedded as JSON. Every string from the result is escaped, so a hostile policy name stays text.
 *
 * @throws ReportAssetError when uPlot's files cannot be read from the installed package.
 */
export function renderHtmlReport(result: BacktestResult): string {
  const assets = loadAssets();
  const data = reportData(result);
  const title = `Backtest of ${result.policy} on ${result.route}`;
  const range = `${isoUtc(result.from)} – ${isoUtc(result.to)}`;
  // Only these exact inline scripts may run, by hash: even an escaping bug elsewhere could not inject code.
  // Style attributes are allowed for the legend swatches; with default-src 'none', CSS cannot fetch anything.
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(assets.js)} ${sha256(CLIENT_SCRIPT)}`,
    "style-src 'unsafe-inline'",
    'img-src data:',
    "connect-src 'none'",
    "font-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  // Built from constants and base64 hashes only, so it needs no escaping (and stays readable in the source).
  const percentSource =
    result.percentSource === 'metric'
      ? 'actual percentage from the daemon’s exported metric'
      : 'actual percentage assumed constant (--assume-percent), not measured';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(`${title}, ${range}`)}</title>
<style>${assets.css}</style>
<style>${STYLE}</style>
</head>
<body>
<main>
<header>
<h1>${escapeHtml(title)}</h1>
<p class="sub">${escapeHtml(range)} · step ${escapeHtml(duration(result.stepSeconds))} · ${escapeHtml(
    count(result.points.length),
  )} points · ${escapeHtml(percentSource)}</p>
</header>
${warningsSection(result)}
${summarySection(result)}
<section id="percent">
<p class="chart-title">Mirror percentage: would-be vs actual</p>
<div id="chart-percent" class="chart"></div>
<p class="legend-note">${swatch(
    REPORT_COLORS.breachShade,
  )}shaded: the model estimates the would-be percentage breaches a guardrail · a break in a line is missing history</p>
</section>
<section id="rps">
<p class="chart-title">Request rates: production and mirrored (actual vs would-be)</p>
<div id="chart-rps" class="chart"></div>
<p class="legend-note">production on the right axis, mirrored on the left · dashed: the capacity from the trusted fits · shaded: estimated breach</p>
</section>
<p id="charts-empty" class="note" hidden>The replay has no points to chart.</p>
<noscript><p class="note">The charts need JavaScript; every number above and below is plain text.</p></noscript>
${fitsSection(result)}
${breachesSection(data.breaches)}
${changesSection(result)}
</main>
<script type="application/json" id="backtest-data">${jsonForScript(data)}</script>
<script>${assets.js}</script>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
}
