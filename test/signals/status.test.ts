import { describe, expect, it } from 'vitest';
import type { Signal } from '../../src/core/types.js';
import { duplicateSeries } from '../../src/signals/classify.js';
import {
  assessPrometheus,
  type PrometheusStatus,
  PrometheusStatusTracker,
  type QueryResultSummary,
  type RequestHealth,
  requestHealth,
} from '../../src/signals/status.js';

const ok: QueryResultSummary = { ok: true };
const fail = (detail: string): QueryResultSummary => ({ ok: false, detail });
const v = (value: number): Signal => ({ kind: 'value', value });
const absent = (reason: 'NoTraffic' | 'NoSeries' | 'QueryFailed' | 'Stale', detail = 'why'): Signal => ({
  kind: 'absent',
  reason,
  detail,
});

describe('requestHealth', () => {
  it('is undefined when no signal is blind for a Prometheus reason', () => {
    expect(requestHealth([v(1), absent('NoTraffic'), absent('NoSeries')])).toBeUndefined();
  });
  it('is partial when some signals failed or are stale', () => {
    expect(requestHealth([v(1), absent('Stale', 'old')])).toEqual({ blind: false, detail: 'Stale: old' });
  });
  it('is blind when all are', () => {
    expect(requestHealth([absent('QueryFailed', 'NaN'), absent('Stale', 'old')])).toEqual({
      blind: true,
      detail: 'QueryFailed: NaN',
    });
  });
});

describe('assessPrometheus', () => {
  const fine = new Map<string, RequestHealth>([['a', undefined]]);
  const rows: {
    name: string;
    queries: QueryResultSummary[];
    requests: Map<string, RequestHealth>;
    want: Omit<PrometheusStatus, 'since'> | undefined;
  }[] = [
    { name: 'no query sent: nothing learnt', queries: [], requests: fine, want: undefined },
    {
      name: 'all answered, no request blind',
      queries: [ok, ok],
      requests: fine,
      want: { state: 'reachable' },
    },
    {
      name: 'connection refused everywhere',
      queries: [fail('network error: connect ECONNREFUSED 127.0.0.1:1'), fail('network error: x')],
      requests: fine,
      want: { state: 'unreachable', detail: 'network error: connect ECONNREFUSED 127.0.0.1:1' },
    },
    {
      name: 'timeouts',
      queries: [fail('timed out after 500 ms')],
      requests: fine,
      want: { state: 'unreachable', detail: 'timed out after 500 ms' },
    },
    {
      name: 'a gateway 503 counts as unreachable even after another failure',
      queries: [fail('HTTP 500: boom'), fail('HTTP 503: non-JSON body')],
      requests: fine,
      want: { state: 'unreachable', detail: 'HTTP 503: non-JSON body' },
    },
    {
      name: 'Prometheus answers 500 to every query',
      queries: [fail('HTTP 500: query processing failed'), fail('HTTP 500: query processing failed')],
      requests: fine,
      want: { state: 'unusable', detail: 'every query failed: HTTP 500: query processing failed' },
    },
    {
      name: 'answers parse, every request blind (NaN, stale)',
      queries: [ok, ok],
      requests: new Map([
        ['a', { blind: true, detail: 'QueryFailed: not a finite number' }],
        ['b', { blind: true, detail: 'Stale: old' }],
      ]),
      want: { state: 'unusable', detail: 'no usable signal: QueryFailed: not a finite number' },
    },
    {
      name: 'one request blind, another fine',
      queries: [ok, fail('HTTP 400: bad_data')],
      requests: new Map<string, RequestHealth>([
        ['a', { blind: true, detail: 'QueryFailed: HTTP 400: bad_data' }],
        ['b', undefined],
      ]),
      want: { state: 'degraded', detail: '1 of 2 policies miss signals: a: QueryFailed: HTTP 400: bad_data' },
    },
    {
      name: 'every request partly blind',
      queries: [ok],
      requests: new Map([['a', { blind: false, detail: 'Stale: old' }]]),
      want: { state: 'degraded', detail: '1 of 1 policies miss signals: a: Stale: old' },
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(assessPrometheus(row.queries, row.requests)).toEqual(row.want);
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
  const healthy = (key: string) => new Map([[key, [v(1)]]]);
  const blind = (key: string) => new Map([[key, [absent('QueryFailed', 'x')]]]);

  it('logs the first state and each change once, not every fetch', () => {
    const { t, lines } = tracker();
    t.observe([ok], healthy('a'), 0);
    t.observe([ok], healthy('a'), 1000);
    t.observe([fail('network error: a')], blind('a'), 2000);
    t.observe([fail('network error: b')], blind('a'), 3000);
    t.observe([fail('network error: c')], blind('a'), 4000);
    t.observe([], blind('a'), 5000);
    t.observe([ok], healthy('a'), 12_000);
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

  it('does not flap between policies fetched at different times', () => {
    const { t, lines } = tracker();
    // Policy a's override fails every time; b, fetched in other ticks, is fine. At start both fall due together.
    t.observe([ok, fail('HTTP 400: bad_data')], new Map([...blind('a'), ...healthy('b')]), 0);
    for (let i = 1; i < 5; i++) {
      t.observe([ok, fail('HTTP 400: bad_data')], blind('a'), i * 2000);
      t.observe([ok], healthy('b'), i * 2000 + 1000);
    }
    expect(lines.map((l) => l.obj.prometheus)).toEqual(['degraded']);
    // a is removed by a reload: the next fetch finds everything fine.
    t.retain(['b']);
    t.observe([ok], healthy('b'), 20_000);
    expect(lines.map((l) => l.obj.prometheus)).toEqual(['degraded', 'reachable']);
  });

  it('keeps the start of a state and the latest detail', () => {
    const { t } = tracker();
    t.observe([fail('HTTP 500: first')], blind('a'), 1000);
    t.observe([fail('HTTP 500: second')], blind('a'), 2000);
    expect(t.status).toEqual({
      state: 'unusable',
      detail: 'every query failed: HTTP 500: second',
      since: 1000,
    });
  });

  it('a first state that is not reachable is a warning', () => {
    const { t, lines } = tracker();
    expect(t.observe([ok], new Map([['a', [v(1), absent('Stale', 'old')]]]), 0)).toBe(true);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.level).toBe('warn');
    expect(lines[0]?.msg).toMatch(
      /^Prometheus partly failing: 1 of 1 policies miss signals: a: Stale: old; /,
    );
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
