import type { SignalName } from '../core/types.js';
import type { PolicyOutcome } from './cycle.js';

const COLUMNS: readonly { name: SignalName; title: string; unit: string }[] = [
  { name: 'cpuUtilization', title: 'CPU', unit: '' },
  { name: 'errorRate', title: 'ERRORS', unit: '' },
  { name: 'latencyP99Ms', title: 'P99', unit: 'ms' },
];

function num(v: number): string {
  if (v === 0) return '0';
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(2).replace(/\.?0+$/, '');
  return v.toPrecision(2);
}

function pct(v: number | null): string {
  return v === null ? '-' : `${Number(v.toFixed(4))}%`;
}

function signalCell(o: PolicyOutcome, name: SignalName, unit: string): string {
  const limit = o.guardrails[name];
  if (limit === undefined) return '-';
  const v = o.signals[name];
  const observed = v === null ? (o.absent[name] ?? 'NoSeries') : `${num(v)}${unit}`;
  return `${observed}/${num(limit)}${unit}`;
}

/** Production requests/s, or why it is unknown. */
function productionCell(o: PolicyOutcome): string {
  if (o.productionRps !== undefined && o.productionRps !== null) return `${num(o.productionRps)}/s`;
  return o.productionAbsent ?? '-';
}

/** The scrape interval the decision assumed and its source: `15s (learned)`. */
function scrapeCell(o: PolicyOutcome): string {
  return o.scrapeInterval === undefined
    ? '-'
    : `${num(o.scrapeInterval.seconds)}s (${o.scrapeInterval.source})`;
}

/** Which metrics the built-in queries read: `istio (destination)`, `istio-ambient (waypoint)`, `otel`. */
function signalsCell(o: PolicyOutcome): string {
  const s = o.signalSource;
  if (s === undefined) return '-';
  return s.reporter === undefined ? s.preset : `${s.preset} (${s.reporter})`;
}

/** The `plan` table: one row per policy, aligned columns, then the errors and messages underneath. */
export function formatPlanTable(outcomes: readonly PolicyOutcome[]): string {
  const header = ['POLICY', 'KIND', 'OBJECT', 'ROUTE', 'CURRENT', 'PROPOSED', 'ACTION', 'REASON'];
  header.push(...COLUMNS.map((c) => c.title), 'PRODUCTION', 'SCRAPE', 'SIGNALS', 'MODE');
  const rows = outcomes.map((o) => [
    o.policy,
    o.routeKind,
    o.routeId,
    o.routes.length === 0 ? '-' : o.routes.join(','),
    pct(o.currentPercent),
    pct(o.proposedPercent),
    o.error !== undefined && o.action === null ? 'error' : (o.action ?? '-'),
    o.reason ?? '-',
    ...COLUMNS.map((c) => signalCell(o, c.name, c.unit)),
    productionCell(o),
    scrapeCell(o),
    signalsCell(o),
    o.mode ?? '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...rows.map(line)];
  const notes = outcomes.filter((o) => o.error !== undefined || o.message !== '');
  if (notes.length > 0) out.push('');
  for (const o of notes) out.push(`${o.policy}: ${o.error !== undefined ? `error: ${o.error}` : o.message}`);
  return `${out.join('\n')}\n`;
}

/** One JSON object per policy, as `plan --output json` prints them (one per line). */
export function planJson(o: PolicyOutcome): Record<string, unknown> {
  return {
    policy: o.policy,
    routeKind: o.routeKind,
    route: o.routeId,
    routes: o.routes,
    currentPercent: o.currentPercent,
    proposedPercent: o.proposedPercent,
    action: o.action,
    reason: o.reason,
    message: o.message,
    signals: o.signals,
    absent: o.absent,
    guardrails: o.guardrails,
    mode: o.mode ?? null,
    productionRps: o.productionRps ?? null,
    ...(o.productionAbsent !== undefined && { productionAbsent: o.productionAbsent }),
    scrapeIntervalSeconds: o.scrapeInterval?.seconds ?? null,
    scrapeIntervalSource: o.scrapeInterval?.source ?? null,
    signalPreset: o.signalSource?.preset ?? null,
    reporter: o.signalSource?.reporter ?? null,
    ...(o.pausedBy !== undefined && { pausedBy: o.pausedBy }),
    ...(o.override !== undefined && {
      override: {
        manager: o.override.manager,
        found: o.override.found,
        ours: o.override.ours,
        count: o.override.count,
        until: new Date(o.override.until).toISOString(),
      },
    }),
    ...(o.error !== undefined && { error: o.error }),
  };
}
