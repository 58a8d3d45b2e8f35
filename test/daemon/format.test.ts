/** The `plan` table and the `plan --output json` objects, from PolicyOutcome rows. */
import { describe, expect, it } from 'vitest';
import type { PolicyOutcome } from '../../src/daemon/cycle.js';
import { formatPlanTable, planJson } from '../../src/daemon/format.js';

const HEADER = [
  'POLICY',
  'KIND',
  'OBJECT',
  'ROUTE',
  'CURRENT',
  'PROPOSED',
  'ACTION',
  'REASON',
  'CPU',
  'ERRORS',
  'P99',
  'PRODUCTION',
  'SCRAPE',
  'SIGNALS',
  'MODE',
];

/** A healthy increase on one route with every guardrail configured; rows override what they test. */
function outcome(over: Partial<PolicyOutcome> = {}): PolicyOutcome {
  return {
    policy: 'checkout',
    routeKind: 'VirtualService',
    routeId: 'shop/checkout',
    routes: ['primary'],
    currentPercent: 37.5,
    proposedPercent: 56.25,
    action: 'increase',
    reason: 'Headroom',
    message: 'max severity 0.25 (cpuUtilization): raise 37.5 -> 56.25',
    signals: { cpuUtilization: 0.2, errorRate: 0.004, latencyP99Ms: 85.5 },
    absent: {},
    guardrails: { cpuUtilization: 0.8, errorRate: 0.02, latencyP99Ms: 400 },
    scrapeInterval: { seconds: 15, source: 'learned' },
    signalSource: { preset: 'istio', reporter: 'destination' },
    productionRps: 420,
    mode: 'FeedForward',
    write: 'written',
    ...over,
  };
}

const errorOutcome = (policy: string, error: string): PolicyOutcome =>
  outcome({
    policy,
    routeKind: 'VirtualService',
    routeId: `shop/${policy}`,
    routes: [],
    currentPercent: null,
    proposedPercent: null,
    action: null,
    reason: null,
    message: error,
    signals: { cpuUtilization: null, errorRate: null, latencyP99Ms: null },
    mode: null,
    error,
    write: 'none',
  });

/** The table split into cells: columns are separated by at least two spaces and cells have none inside. */
function parse(table: string): { rows: Record<string, string>[]; notes: string[]; lines: string[] } {
  expect(table.endsWith('\n')).toBe(true);
  const lines = table.slice(0, -1).split('\n');
  const blank = lines.indexOf('');
  const tableLines = blank === -1 ? lines : lines.slice(0, blank);
  const notes = blank === -1 ? [] : lines.slice(blank + 1);
  const [head, ...body] = tableLines;
  expect(head?.split(/ {2,}/)).toEqual(HEADER);
  const rows = body.map((line) => {
    const cells = line.split(/ {2,}/);
    expect(cells).toHaveLength(HEADER.length);
    return Object.fromEntries(HEADER.map((h, i) => [h, cells[i] ?? '']));
  });
  return { rows, notes, lines: tableLines };
}

describe('formatPlanTable', () => {
  it('has the header alone, and nothing else, for no policies', () => {
    expect(formatPlanTable([])).toBe(`${HEADER.join('  ')}\n`);
  });

  const rows: { name: string; outcome: PolicyOutcome; cells: Partial<Record<string, string>> }[] = [
    {
      name: 'an increase with every signal against its limit',
      outcome: outcome(),
      cells: {
        POLICY: 'checkout',
        KIND: 'VirtualService',
        OBJECT: 'shop/checkout',
        ROUTE: 'primary',
        CURRENT: '37.5%',
        PROPOSED: '56.25%',
        ACTION: 'increase',
        REASON: 'Headroom',
        CPU: '0.20/0.80',
        ERRORS: '0.0040/0.020',
        P99: '85.5ms/400ms',
        PRODUCTION: '420/s',
        SCRAPE: '15s (learned)',
        SIGNALS: 'istio (destination)',
        MODE: 'FeedForward',
      },
    },
    {
      name: 'no production rate: its reason, and the decision on feedback alone',
      outcome: outcome({
        productionRps: null,
        productionAbsent: 'NoSeries',
        mode: 'FeedbackOnly',
        scrapeInterval: { seconds: 30, source: 'policy' },
      }),
      cells: { PRODUCTION: 'NoSeries', SCRAPE: '30s (policy)', MODE: 'FeedbackOnly' },
    },
    {
      name: 'a fractional production rate and the default scrape interval',
      outcome: outcome({ productionRps: 3.25, scrapeInterval: { seconds: 15, source: 'default' } }),
      cells: { PRODUCTION: '3.25/s', SCRAPE: '15s (default)' },
    },
    {
      name: 'a breach, latency in whole milliseconds above 100',
      outcome: outcome({
        currentPercent: 40,
        proposedPercent: 20,
        action: 'decrease',
        reason: 'GuardrailBreached',
        signals: { cpuUtilization: 0.3, errorRate: 0, latencyP99Ms: 2350.4 },
        guardrails: { cpuUtilization: 0.8, errorRate: 0.01, latencyP99Ms: 500 },
      }),
      cells: {
        CURRENT: '40%',
        PROPOSED: '20%',
        ACTION: 'decrease',
        REASON: 'GuardrailBreached',
        CPU: '0.30/0.80',
        ERRORS: '0/0.010',
        P99: '2350ms/500ms',
      },
    },
    {
      name: 'absent signals show their reason against the limit; unconfigured ones a dash',
      outcome: outcome({
        action: 'hold',
        reason: 'NoData',
        proposedPercent: 37.5,
        signals: { cpuUtilization: null, errorRate: null, latencyP99Ms: null },
        absent: { cpuUtilization: 'QueryFailed', errorRate: 'NoTraffic' },
        guardrails: { cpuUtilization: 1.5, errorRate: 0.02 },
      }),
      cells: {
        ACTION: 'hold',
        REASON: 'NoData',
        PROPOSED: '37.5%',
        CPU: 'QueryFailed/1.5',
        ERRORS: 'NoTraffic/0.020',
        P99: '-',
      },
    },
    {
      name: 'a configured signal with neither value nor reason counts as NoSeries',
      outcome: outcome({
        signals: { cpuUtilization: null, errorRate: 0.004, latencyP99Ms: 85.5 },
        absent: {},
      }),
      cells: { CPU: 'NoSeries/0.80' },
    },
    {
      name: 'several routes, tiny percentages at Envoy resolution',
      outcome: outcome({ routes: ['primary', 'http[2]'], currentPercent: 0.0001, proposedPercent: 0.12345 }),
      cells: { ROUTE: 'primary,http[2]', CURRENT: '0.0001%', PROPOSED: '0.1235%' },
    },
    {
      name: 'an object that could not be evaluated',
      outcome: errorOutcome('ghost', 'VirtualService shop/ghost not found'),
      cells: {
        POLICY: 'ghost',
        KIND: 'VirtualService',
        OBJECT: 'shop/ghost',
        ROUTE: '-',
        CURRENT: '-',
        PROPOSED: '-',
        ACTION: 'error',
        REASON: '-',
        CPU: 'NoSeries/0.80',
        MODE: '-',
      },
    },
    {
      name: 'a decision whose write failed keeps its action',
      outcome: outcome({ write: 'failed', error: 'writing shop/checkout failed: conflict' }),
      cells: { ACTION: 'increase', REASON: 'Headroom' },
    },
  ];

  for (const row of rows) {
    it(`row: ${row.name}`, () => {
      const { rows: parsed } = parse(formatPlanTable([row.outcome]));
      expect(parsed).toHaveLength(1);
      expect(parsed[0]).toMatchObject(row.cells);
    });
  }

  it('aligns every column under its title', () => {
    const table = formatPlanTable([
      outcome(),
      errorOutcome('a-policy-with-a-long-name', 'VirtualService shop/x not found'),
      outcome({
        policy: 'p',
        routeKind: 'VirtualService',
        routeId: 'n/v',
        routes: ['r'],
        currentPercent: 5,
        proposedPercent: 5,
      }),
    ]);
    const { lines } = parse(table);
    const [head, ...body] = lines;
    for (const title of HEADER.slice(1)) {
      const at = head?.indexOf(title) ?? -1;
      expect(at).toBeGreaterThan(0);
      for (const line of body) {
        // Each cell starts where its title starts: two spaces (or more) before it, a non-space at it.
        expect(line.slice(at - 2, at)).toBe('  ');
        expect(line[at]).not.toBe(' ');
      }
    }
    for (const line of lines) expect(line).toBe(line.trimEnd());
  });

  it('lists errors and messages under the table, one line per policy, in order', () => {
    const table = formatPlanTable([
      outcome({ message: 'max severity 0.25: raise 37.5 -> 56.25' }),
      errorOutcome('ghost', 'VirtualService shop/ghost not found'),
      outcome({ policy: 'quiet', message: '' }),
      outcome({ policy: 'stuck', write: 'failed', error: 'writing shop/stuck failed: conflict' }),
    ]);
    const { rows: parsed, notes } = parse(table);
    expect(parsed.map((r) => r.POLICY)).toEqual(['checkout', 'ghost', 'quiet', 'stuck']);
    expect(notes).toEqual([
      'checkout: max severity 0.25: raise 37.5 -> 56.25',
      'ghost: error: VirtualService shop/ghost not found',
      'stuck: error: writing shop/stuck failed: conflict',
    ]);
  });
});

describe('the SIGNALS column names the preset and reporter', () => {
  it.each([
    [{ preset: 'istio', reporter: 'destination' }, 'istio (destination)'],
    [{ preset: 'istio-ambient', reporter: 'waypoint' }, 'istio-ambient (waypoint)'],
    [{ preset: 'otel' }, 'otel'],
  ] as const)('%o', (signalSource, cell) => {
    const { rows } = parse(formatPlanTable([outcome({ signalSource })]));
    expect(rows[0]?.SIGNALS).toBe(cell);
    expect(planJson(outcome({ signalSource }))).toMatchObject({
      signalPreset: signalSource.preset,
      reporter: 'reporter' in signalSource ? signalSource.reporter : null,
    });
  });
});

describe('planJson', () => {
  it('carries every field of a decision, signals null where not configured or absent', () => {
    const o = outcome({
      signals: { cpuUtilization: 0.2, errorRate: null, latencyP99Ms: null },
      absent: { errorRate: 'NoTraffic' },
      guardrails: { cpuUtilization: 0.8, errorRate: 0.02 },
    });
    const line = JSON.stringify(planJson(o));
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({
      policy: 'checkout',
      routeKind: 'VirtualService',
      route: 'shop/checkout',
      routes: ['primary'],
      currentPercent: 37.5,
      proposedPercent: 56.25,
      action: 'increase',
      reason: 'Headroom',
      message: 'max severity 0.25 (cpuUtilization): raise 37.5 -> 56.25',
      signals: { cpuUtilization: 0.2, errorRate: null, latencyP99Ms: null },
      absent: { errorRate: 'NoTraffic' },
      guardrails: { cpuUtilization: 0.8, errorRate: 0.02 },
      mode: 'FeedForward',
      productionRps: 420,
      scrapeIntervalSeconds: 15,
      scrapeIntervalSource: 'learned',
      signalPreset: 'istio',
      reporter: 'destination',
    });
  });

  it('says why the production rate is unknown', () => {
    expect(
      planJson(outcome({ productionRps: null, productionAbsent: 'NoTraffic', mode: 'FeedbackOnly' })),
    ).toMatchObject({ productionRps: null, productionAbsent: 'NoTraffic', mode: 'FeedbackOnly' });
  });

  it('has no error key when the policy was evaluated', () => {
    expect(planJson(outcome())).not.toHaveProperty('error');
  });

  it('names the error and keeps nulls when the policy could not be evaluated', () => {
    const parsed = JSON.parse(
      JSON.stringify(planJson(errorOutcome('ghost', 'VirtualService shop/ghost not found'))),
    );
    expect(parsed).toMatchObject({
      policy: 'ghost',
      routeKind: 'VirtualService',
      route: 'shop/ghost',
      currentPercent: null,
      proposedPercent: null,
      action: null,
      reason: null,
      signals: { cpuUtilization: null, errorRate: null, latencyP99Ms: null },
      error: 'VirtualService shop/ghost not found',
    });
  });

  it('reports a failed write as an error next to the decision', () => {
    const json = planJson(outcome({ write: 'failed', error: 'writing shop/checkout failed: conflict' }));
    expect(json).toMatchObject({
      action: 'increase',
      proposedPercent: 56.25,
      error: 'writing shop/checkout failed: conflict',
    });
  });
});
