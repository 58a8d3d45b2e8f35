import { describe, expect, it } from 'vitest';
import type { Signal } from '../../src/core/types.js';
import { duplicateSeries } from '../../src/signals/classify.js';
import {
  assessPrometheus,
  type PrometheusStatus,
  PrometheusStatusTracker,
  type QueryResultSummary,
} from '../../src/signals/status.js';

const ok: QueryResultSummary = { ok: true };
const fail = (detail: string): QueryResultSummary => ({ ok: false, detail });
const v = (value: number): Signal => ({ kind: 'value', value });
const absent = (reason: 'NoTraffic' | 'NoSeries' | 'QueryFailed' | 'Stale', detail = 'why'): Signal => ({
  kind: 'absent',
  reason,
  detail,
});

describe('assessPrometheus', () => {
  const rows: {
    name: string;
    queries: QueryResultSummary[];
    signals: Signal[];
    want: Omit<PrometheusStatus, 'since'> | undefined;
  }[] = [
    { name: 'no query sent: nothing learnt', queries: [], signals: [], want: undefined },
    { name: 'all answered, values', queries: [ok, ok], signals: [v(1), v(0)], want: { state: 'reachable' } },
    {
      name: 'no traffic and no series are the target, not Prometheus',
      queries: [ok, ok],
      signals: [absent('NoTraffic'), absent('NoSeries')],
      want: { state: 'reachable' },
    },
    {
      name: 'connection refused everywhere',
      queries: [fail('network error: connect ECONNREFUSED 127.0.0.1:1'), fail('network error: x')],
      signals: [absent('QueryFailed')],
      want: { state: 'unreachable', detail: 'network error: connect ECONNREFUSED 127.0.0.1:1' },
    },
    {
      name: 'timeouts',
      queries: [fail('timed out after 500 ms')],
      signals: [],
      want: { state: 'unreachable', detail: 'timed out after 500 ms' },
    },
    {
      name: 'a gateway 503 counts as unreachable even after another failure',
      queries: [fail('HTTP 500: boom'), fail('HTTP 503: non-JSON body')],
      signals: [],
      want: { state: 'unreachable', detail: 'HTTP 503: non-JSON body' },
    },
    {
      name: 'Prometheus answers 500 to every query',
      queries: [fail('HTTP 500: query processing failed'), fail('HTTP 500: query processing failed')],
      signals: [absent('QueryFailed')],
      want: { state: 'unusable', detail: 'every query failed: HTTP 500: query processing failed' },
    },
    {
      name: 'answers parse, every signal failed (NaN)',
      queries: [ok, ok],
      signals: [absent('QueryFailed', 'not a finite number'), absent('QueryFailed')],
      want: { state: 'unusable', detail: 'no usable signal: QueryFailed: not a finite number' },
    },
    {
      name: 'every signal stale',
      queries: [ok],
      signals: [absent('Stale', 'newest sample is 300 s old'), absent('Stale')],
      want: { state: 'unusable', detail: 'no usable signal: Stale: newest sample is 300 s old' },
    },
    {
      name: 'one override failed',
      queries: [ok, ok, fail('HTTP 400: bad_data: parse error')],
      signals: [v(1), absent('QueryFailed')],
      want: { state: 'degraded', detail: '1 of 3 queries failed: HTTP 400: bad_data: parse error' },
    },
    {
      name: 'one workload stale among fresh ones',
      queries: [ok],
      signals: [v(1), absent('Stale', 'old')],
      want: { state: 'degraded', detail: '1 of 2 signals Stale: old' },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(assessPrometheus(row.queries, row.signals)).toEqual(row.want);
    });
  }
});

describe('PrometheusStatusTracker', () => {
  function tracker() {
    const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
    const t = new PrometheusStatusTracker(
      {
        info: (obj, msg) => lines.push({ level: 'info', obj: obj as Record<string, unknown>, msg }),
        warn: (obj, msg) => lines.push({ level: 'warn', obj: obj as Record<string, unknown>, msg }),
      },
      'http://prometheus:9090',
    );
    return { t, lines };
  }

  it('logs the first state and each change once, not every fetch', () => {
    const { t, lines } = tracker();
    t.observe({ state: 'reachable' }, 0);
    t.observe({ state: 'reachable' }, 1000);
    t.observe({ state: 'unreachable', detail: 'network error: a' }, 2000);
    t.observe({ state: 'unreachable', detail: 'network error: b' }, 3000);
    t.observe({ state: 'unreachable', detail: 'network error: c' }, 4000);
    t.observe(undefined, 5000);
    t.observe({ state: 'reachable' }, 12_000);
    expect(lines.map((l) => [l.level, l.msg])).toEqual([
      ['info', 'Prometheus reachable'],
      [
        'warn',
        'Prometheus unreachable: network error: a; every signal counts as missing: no mirror percentage is raised, and after blindHold they decay',
      ],
      ['info', 'Prometheus reachable again after 10 s unreachable'],
    ]);
    expect(lines[2]?.obj).toEqual({
      prometheus: 'reachable',
      previous: 'unreachable',
      previousForSeconds: 10,
      url: 'http://prometheus:9090',
    });
  });

  it('keeps the start of a state and the latest detail', () => {
    const { t } = tracker();
    t.observe({ state: 'unusable', detail: 'first' }, 1000);
    t.observe({ state: 'unusable', detail: 'second' }, 2000);
    expect(t.status).toEqual({ state: 'unusable', detail: 'second', since: 1000 });
  });

  it('a first state that is not reachable is a warning', () => {
    const { t, lines } = tracker();
    expect(t.observe({ state: 'degraded', detail: '1 of 3 queries failed: x' }, 0)).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.level).toBe('warn');
    expect(lines[0]?.msg).toMatch(/^Prometheus partly failing: 1 of 3 queries failed: x; /);
  });
});

describe('duplicateSeries', () => {
  const labels = { namespace: 'namespace', workload: 'workload' };
  const s = (workload: string, part?: string, extra: Record<string, string> = {}) => ({
    labels: {
      namespace: 'shop',
      workload,
      ...(part !== undefined && { mirror_autoscaler_part: part }),
      ...extra,
    },
    value: 1,
  });
  const rows = [
    { name: 'one series per workload and part', samples: [s('a'), s('a', 'usage'), s('b')], want: undefined },
    { name: 'same workload twice', samples: [s('a'), s('a', undefined, { replica: 'b' })], want: 'shop/a' },
    {
      name: 'same part twice',
      samples: [s('a', 'usage'), s('a', 'usage', { replica: 'b' })],
      want: 'shop/a (mirror_autoscaler_part="usage")',
    },
    {
      name: 'series without workload labels are ignored',
      samples: [
        { labels: {}, value: 1 },
        { labels: {}, value: 2 },
      ],
      want: undefined,
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(duplicateSeries(row.samples, labels)).toBe(row.want);
    });
  }
});
