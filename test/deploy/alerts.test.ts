/**
 * The alerts in deploy/monitoring/prometheusrule.yaml, with the real promtool: `promtool check rules` on the
 * rule groups (taken out of the PrometheusRule into a plain Prometheus rule file) and `promtool test rules`
 * with unit tests written here: for every alert, series that fire it (with the exact labels and
 * annotations expected) and series that must not (a blip shorter than `for`, a pause that is not the brake,
 * an idle route, ...). Each runbook_url must point at a `###` paragraph of deploy/README.md.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '..', '..');
const RULE_FILE = join(ROOT, 'deploy', 'monitoring', 'prometheusrule.yaml');
const README = join(ROOT, 'deploy', 'README.md');
const PROMTOOL_TIMEOUT_MS = 30_000;

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const prometheusRule = parse(readFileSync(RULE_FILE, 'utf8')) as {
  spec: { groups: { name: string; rules: AlertRule[] }[] };
};
const groups = prometheusRule.spec.groups;
const alerts = groups.flatMap((g) => g.rules);

/** Runs promtool; resolves with its output whatever the exit code, so a failure shows what promtool said. */
async function promtool(...args: string[]): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run('promtool', args, { timeout: PROMTOOL_TIMEOUT_MS });
    return { code: 0, output: stdout + stderr };
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string; message: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

// ---------------------------------------------------------------------------------------------------------
// Series in promtool's input_series notation.

type Labels = Record<string, string>;
interface InputSeries {
  series: string;
  values: string;
}

/** The target labels the Prometheus Operator gives the two replicas' series. */
const NS = 'mirror-autoscaler';
const POD_A = {
  namespace: NS,
  job: 'mirror-autoscaler',
  pod: 'mirror-autoscaler-a',
  instance: '10.0.0.1:9464',
};
const POD_B = {
  namespace: NS,
  job: 'mirror-autoscaler',
  pod: 'mirror-autoscaler-b',
  instance: '10.0.0.2:9464',
};

function s(metric: string, labels: Labels, values: string): InputSeries {
  const body = Object.entries(labels)
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(', ');
  return { series: `${metric}{${body}}`, values };
}

const m = (name: string) => `mirror_autoscaler_${name}`;

interface Expected {
  exp_labels: Labels;
  exp_annotations: Labels;
}

/** One promtool test group: input series and, at each evaluation time, the alerts expected firing. */
interface Scenario {
  name: string;
  series: InputSeries[];
  /** Evaluation time (`20m`) → the alerts firing then; an empty list means none. */
  expect: [string, Expected[]][];
}

function runbook(alert: string): string {
  return `deploy/README.md#${alert.toLowerCase()}`;
}

/** The annotations of `alert` with summary and description as given and its runbook_url. */
function annotations(alert: string, summary: string, description: string): Labels {
  return { summary, description, runbook_url: runbook(alert) };
}

// ---------------------------------------------------------------------------------------------------------
// The scenarios, per alert.

const SCENARIOS: Record<string, Scenario[]> = {
  MirrorAutoscalerAbsent: [
    {
      name: 'no daemon series at all',
      series: [s('up', { job: 'other' }, '1x20')],
      expect: [
        ['9m', []],
        [
          '11m',
          [
            {
              exp_labels: { severity: 'warning' },
              exp_annotations: annotations(
                'MirrorAutoscalerAbsent',
                'mirror-autoscaler is not scraped',
                'Prometheus has had no mirror_autoscaler_* series for 10 minutes: no replica of the daemon is scraped, so no mirror percentage is being steered (each stays where it was last written) and none of the other alerts can fire.',
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'scraped replicas, one of them leading',
      series: [s(m('leader'), POD_A, '1x30'), s(m('leader'), POD_B, '0x30')],
      expect: [['25m', []]],
    },
    {
      name: 'a scrape gap shorter than for',
      // Last sample at 10m, gone after the 5m lookback (15m), back at 22m: 7 minutes absent.
      series: [s(m('leader'), POD_A, '1x10 _x11 1x10')],
      expect: [
        ['18m', []],
        ['24m', []],
      ],
    },
    {
      name: 'the series go away for good',
      series: [s(m('leader'), POD_A, '1x10')],
      expect: [
        ['20m', []],
        [
          '26m',
          [
            {
              exp_labels: { severity: 'warning' },
              exp_annotations: annotations(
                'MirrorAutoscalerAbsent',
                'mirror-autoscaler is not scraped',
                'Prometheus has had no mirror_autoscaler_* series for 10 minutes: no replica of the daemon is scraped, so no mirror percentage is being steered (each stays where it was last written) and none of the other alerts can fire.',
              ),
            },
          ],
        ],
      ],
    },
  ],

  MirrorAutoscalerNoLeader: [
    {
      name: 'two replicas, neither leading',
      series: [s(m('leader'), POD_A, '0x20'), s(m('leader'), POD_B, '0x20')],
      expect: [
        ['4m', []],
        [
          '6m',
          [
            {
              exp_labels: { severity: 'warning', namespace: NS },
              exp_annotations: annotations(
                'MirrorAutoscalerNoLeader',
                `no mirror-autoscaler replica leads in ${NS}`,
                `mirror-autoscaler replicas in ${NS} are up but none has held the leader Lease for 5 minutes: they keep evaluating, but no mirror percentage is written.`,
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'a handover of 3 minutes, then the other replica leads',
      series: [s(m('leader'), POD_A, '1x5 0x25'), s(m('leader'), POD_B, '0x8 1x22')],
      expect: [
        ['7m', []],
        ['20m', []],
      ],
    },
  ],

  MirrorAutoscalerCyclesStalled: [
    {
      name: 'the leader stops completing cycles at 10m, the follower goes on',
      series: [
        // Promtool's clock starts at 0: a cycle each minute writes the minute as its Unix time.
        s(m('last_cycle_timestamp_seconds'), POD_A, '0+60x10 600x20'),
        s(m('last_cycle_timestamp_seconds'), POD_B, '0+60x30'),
        s(m('policies'), { ...POD_A, state: 'loaded' }, '3x30'),
        s(m('policies'), { ...POD_B, state: 'loaded' }, '3x30'),
      ],
      expect: [
        // The age passes 300 s after 15m; held 5 minutes.
        ['19m', []],
        [
          '22m',
          [
            {
              exp_labels: { severity: 'warning', ...POD_A },
              exp_annotations: annotations(
                'MirrorAutoscalerCyclesStalled',
                'mirror-autoscaler mirror-autoscaler-a completes no cycles',
                `mirror-autoscaler replica mirror-autoscaler-a in ${NS} last completed a reconcile cycle 12m 0s ago although it has policies loaded.`,
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'a replica started at 40m reports 0 until its first cycle two minutes later',
      series: [
        s(m('last_cycle_timestamp_seconds'), POD_A, '_x40 0 0 2520+60x10'),
        s(m('policies'), { ...POD_A, state: 'loaded' }, '_x40 3x12'),
      ],
      expect: [
        ['41m', []],
        ['50m', []],
      ],
    },
    {
      name: 'no policies loaded, so no cycle ever completes',
      series: [
        s(m('last_cycle_timestamp_seconds'), POD_A, '0x30'),
        s(m('policies'), { ...POD_A, state: 'loaded' }, '0x30'),
        s(m('policies'), { ...POD_A, state: 'invalid' }, '0x30'),
      ],
      expect: [['25m', []]],
    },
  ],

  MirrorAutoscalerPolicyBlind: [
    {
      name: 'latency has no value: NoData for 5 minutes, BlindDecay, then AtBound at the floor',
      series: [
        s(m('guardrail_limit'), { ...POD_A, policy: 'checkout', signal: 'latencyP99Ms' }, '250x40'),
        s(m('guardrail_limit'), { ...POD_A, policy: 'checkout', signal: 'cpuUtilization' }, '0.8x40'),
        s(m('signal_value'), { ...POD_A, policy: 'checkout', signal: 'cpuUtilization' }, '0.3x40'),
        s(m('production_rps'), { ...POD_A, policy: 'checkout' }, '120x40'),
        s(
          m('decisions_total'),
          { ...POD_A, policy: 'checkout', action: 'hold', reason: 'NoData' },
          '1+1x4 5x35',
        ),
        s(
          m('decisions_total'),
          { ...POD_A, policy: 'checkout', action: 'decrease', reason: 'BlindDecay' },
          '_x5 1+1x2 3x32',
        ),
        s(
          m('decisions_total'),
          { ...POD_A, policy: 'checkout', action: 'hold', reason: 'AtBound' },
          '_x8 1+1x31',
        ),
      ],
      expect: [
        ['14m', []],
        [
          '35m',
          [
            {
              exp_labels: { severity: 'warning', namespace: NS, policy: 'checkout', signal: 'latencyP99Ms' },
              exp_annotations: annotations(
                'MirrorAutoscalerPolicyBlind',
                'policy checkout is blind to latencyP99Ms',
                'Policy checkout has had no value for its latencyP99Ms guardrail for 15 minutes and decides only NoData, BlindDecay or AtBound: it will not raise the mirror, and decays it toward minPercent.',
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'blind for 8 minutes, then values and Headroom decisions again',
      series: [
        s(m('guardrail_limit'), { ...POD_A, policy: 'checkout', signal: 'latencyP99Ms' }, '250x40'),
        s(m('signal_value'), { ...POD_A, policy: 'checkout', signal: 'latencyP99Ms' }, '_x8 120x32'),
        s(m('production_rps'), { ...POD_A, policy: 'checkout' }, '120x40'),
        s(
          m('decisions_total'),
          { ...POD_A, policy: 'checkout', action: 'hold', reason: 'NoData' },
          '1+1x7 8x32',
        ),
        s(
          m('decisions_total'),
          { ...POD_A, policy: 'checkout', action: 'increase', reason: 'Headroom' },
          '_x8 1+1x31',
        ),
      ],
      expect: [
        ['20m', []],
        ['35m', []],
      ],
    },
    {
      name: 'an idle production route: no mirrored traffic, so no latency to read',
      series: [
        s(m('guardrail_limit'), { ...POD_A, policy: 'checkout', signal: 'latencyP99Ms' }, '250x40'),
        s(m('production_rps'), { ...POD_A, policy: 'checkout' }, '0.02x40'),
        s(m('decisions_total'), { ...POD_A, policy: 'checkout', action: 'hold', reason: 'NoData' }, '1+1x39'),
      ],
      expect: [['35m', []]],
    },
  ],

  MirrorAutoscalerBreachPersists: [
    {
      name: 'error rate past its limit for 20 minutes: cuts to the floor, then AtBound; seen by both replicas',
      series: [
        ...[POD_A, POD_B].flatMap((pod) => [
          s(m('signal_value'), { ...pod, policy: 'checkout', signal: 'errorRate' }, '0.2x30'),
          s(m('guardrail_limit'), { ...pod, policy: 'checkout', signal: 'errorRate' }, '0.05x30'),
          s(m('signal_value'), { ...pod, policy: 'checkout', signal: 'cpuUtilization' }, '0.4x30'),
          s(m('guardrail_limit'), { ...pod, policy: 'checkout', signal: 'cpuUtilization' }, '0.8x30'),
          s(
            m('decisions_total'),
            { ...pod, policy: 'checkout', action: 'decrease', reason: 'GuardrailBreached' },
            '1+1x3 4x26',
          ),
          s(
            m('decisions_total'),
            { ...pod, policy: 'checkout', action: 'hold', reason: 'AtBound' },
            '_x4 1+1x25',
          ),
          s(
            m('mirror_percent'),
            { ...pod, policy: 'checkout', route_kind: 'HTTPRoute', route: 'shop/checkout' },
            '20 10 5 2 1x26',
          ),
        ]),
      ],
      expect: [
        ['14m', []],
        [
          '20m',
          [
            {
              exp_labels: { severity: 'warning', namespace: NS, policy: 'checkout', signal: 'errorRate' },
              exp_annotations: annotations(
                'MirrorAutoscalerBreachPersists',
                'policy checkout stays past its errorRate guardrail despite cuts',
                'The mirror target of policy checkout has had errorRate at 0.2, past its guardrail, for 15 minutes although the daemon cut the mirror or holds it at minPercent (now 1 %): the target is unhealthy at any mirrored share.',
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'a breach the cuts end after 10 minutes',
      series: [
        s(m('signal_value'), { ...POD_A, policy: 'checkout', signal: 'errorRate' }, '0.2x10 0.03x20'),
        s(m('guardrail_limit'), { ...POD_A, policy: 'checkout', signal: 'errorRate' }, '0.05x30'),
        s(
          m('decisions_total'),
          { ...POD_A, policy: 'checkout', action: 'decrease', reason: 'GuardrailBreached' },
          '1+1x9 10x20',
        ),
      ],
      expect: [
        ['9m', []],
        ['25m', []],
      ],
    },
    {
      name: 'a breach on a paused route (the daemon may not cut it)',
      series: [
        s(m('signal_value'), { ...POD_A, policy: 'checkout', signal: 'errorRate' }, '0.2x30'),
        s(m('guardrail_limit'), { ...POD_A, policy: 'checkout', signal: 'errorRate' }, '0.05x30'),
        s(
          m('decisions_total'),
          { ...POD_A, policy: 'checkout', action: 'hold', reason: 'AtBound' },
          '1+1x29',
        ),
        s(m('paused'), { ...POD_A, policy: 'checkout', source: 'annotation' }, '1x30'),
      ],
      expect: [['25m', []]],
    },
  ],

  MirrorAutoscalerWriteErrors: [
    {
      name: 'every write fails for 20 minutes; refusals alongside are not errors',
      series: [
        s(m('writes_total'), { ...POD_A, policy: 'checkout', result: 'error' }, '1+1x20'),
        s(m('writes_total'), { ...POD_A, policy: 'checkout', result: 'ok' }, '5x20'),
        s(m('writes_total'), { ...POD_A, policy: 'search', result: 'refused' }, '1+1x20'),
      ],
      expect: [
        ['2m', []],
        [
          '20m',
          [
            {
              exp_labels: { severity: 'warning', namespace: NS, policy: 'checkout', result: 'error' },
              exp_annotations: annotations(
                'MirrorAutoscalerWriteErrors',
                'writes for policy checkout fail (error)',
                'About 15 writes of the mirror percentage for policy checkout ended in error over the last 15 minutes: the route keeps its old percentage.',
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'conflicts given up after a leader change, counted on both replicas',
      series: [
        s(m('writes_total'), { ...POD_A, policy: 'checkout', result: 'conflict' }, '1+1x4 5x16'),
        s(m('writes_total'), { ...POD_B, policy: 'checkout', result: 'conflict' }, '_x5 1+1x15'),
      ],
      expect: [
        [
          '12m',
          [
            {
              exp_labels: { severity: 'warning', namespace: NS, policy: 'checkout', result: 'conflict' },
              exp_annotations: annotations(
                'MirrorAutoscalerWriteErrors',
                'writes for policy checkout fail (conflict)',
                'About 12 writes of the mirror percentage for policy checkout ended in conflict over the last 15 minutes: the route keeps its old percentage.',
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'one failed write, retried with success',
      series: [
        s(m('writes_total'), { ...POD_A, policy: 'checkout', result: 'error' }, '_x5 1x15'),
        s(m('writes_total'), { ...POD_A, policy: 'checkout', result: 'ok' }, '1x5 2x15'),
      ],
      expect: [['12m', []]],
    },
  ],

  MirrorAutoscalerRouteFight: [
    {
      name: 'Argo CD changes the percentage back twice within 5 minutes (a new series)',
      series: [
        s(
          m('route_overridden_total'),
          { ...POD_A, policy: 'checkout', manager: 'argocd-controller' },
          '_x5 1 1 2x30',
        ),
      ],
      expect: [
        ['8m', []],
        [
          '13m',
          [
            {
              exp_labels: {
                severity: 'warning',
                namespace: NS,
                policy: 'checkout',
                manager: 'argocd-controller',
              },
              exp_annotations: annotations(
                'MirrorAutoscalerRouteFight',
                'argocd-controller keeps overriding the mirror of policy checkout',
                'The mirror percentage written for policy checkout was changed back by field manager argocd-controller about 2 times in 30 minutes. The daemon backs off that route while the fight goes on; one of the two must stop managing the percentage.',
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'a long-known override counted again twice within 30 minutes',
      series: [
        s(
          m('route_overridden_total'),
          { ...POD_A, policy: 'checkout', manager: 'kubectl-edit' },
          '3x40 4 5x20',
        ),
      ],
      expect: [
        ['39m', []],
        [
          '48m',
          [
            {
              exp_labels: { severity: 'warning', namespace: NS, policy: 'checkout', manager: 'kubectl-edit' },
              exp_annotations: annotations(
                'MirrorAutoscalerRouteFight',
                'kubectl-edit keeps overriding the mirror of policy checkout',
                'The mirror percentage written for policy checkout was changed back by field manager kubectl-edit about 2 times in 30 minutes. The daemon backs off that route while the fight goes on; one of the two must stop managing the percentage.',
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'one override, and another 40 minutes later',
      series: [
        s(m('route_overridden_total'), { ...POD_A, policy: 'checkout', manager: 'unknown' }, '1x40 2x40'),
      ],
      expect: [
        ['20m', []],
        ['50m', []],
        ['75m', []],
      ],
    },
  ],

  MirrorAutoscalerBrakeEngaged: [
    {
      name: 'the brake holds two policies for over an hour; a hand pause is not counted',
      series: [
        s(m('paused'), { ...POD_A, policy: 'checkout', source: 'brake' }, '1x80'),
        s(m('paused'), { ...POD_B, policy: 'checkout', source: 'brake' }, '1x80'),
        s(m('paused'), { ...POD_A, policy: 'search', source: 'brake' }, '1x80'),
        s(m('paused'), { ...POD_A, policy: 'cart', source: 'annotation' }, '1x80'),
      ],
      expect: [
        ['50m', []],
        [
          '65m',
          [
            {
              exp_labels: { severity: 'info', namespace: NS },
              exp_annotations: annotations(
                'MirrorAutoscalerBrakeEngaged',
                'the mirror-autoscaler brake is engaged',
                'The emergency brake has held 2 policies at minPercent and paused for over an hour. Release it with `mirror-autoscaler brake --release` once the reason for it is gone.',
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'pauses by annotation, Flagger and Argo Rollouts are not the brake',
      series: [
        s(m('paused'), { ...POD_A, policy: 'checkout', source: 'annotation' }, '1x80'),
        s(m('paused'), { ...POD_A, policy: 'search', source: 'flagger' }, '1x80'),
        s(m('paused'), { ...POD_A, policy: 'cart', source: 'argo-rollouts' }, '1x80'),
      ],
      expect: [['70m', []]],
    },
    {
      name: 'a brake released after 30 minutes',
      series: [s(m('paused'), { ...POD_A, policy: 'checkout', source: 'brake' }, '1x30')],
      expect: [
        ['25m', []],
        ['70m', []],
      ],
    },
  ],

  MirrorAutoscalerInvalidPolicies: [
    {
      name: 'an invalid edit nobody fixes',
      series: [
        s(m('policies'), { ...POD_A, state: 'invalid' }, '0x5 2x20'),
        s(m('policies'), { ...POD_A, state: 'loaded' }, '4x25'),
      ],
      expect: [
        ['14m', []],
        [
          '16m',
          [
            {
              exp_labels: { severity: 'warning', namespace: NS },
              exp_annotations: annotations(
                'MirrorAutoscalerInvalidPolicies',
                'mirror-autoscaler rejects 2 policies',
                `The last policy load in ${NS} found 2 invalid policies; each keeps its last valid version, or is not managed if it never had one.`,
              ),
            },
          ],
        ],
      ],
    },
    {
      name: 'an invalid edit fixed within 5 minutes',
      series: [s(m('policies'), { ...POD_A, state: 'invalid' }, '0x5 1x5 0x20')],
      expect: [
        ['9m', []],
        ['20m', []],
      ],
    },
  ],
};

/** A promtool unit-test file for `scenarios` of one alert, reading the rules from `rulesFile`. */
function unitTests(alert: string, scenarios: Scenario[], rulesFile: string): string {
  return stringify({
    rule_files: [rulesFile],
    evaluation_interval: '1m',
    tests: scenarios.map((sc) => ({
      name: sc.name,
      interval: '1m',
      input_series: sc.series,
      alert_rule_test: sc.expect.map(([at, firing]) => ({
        eval_time: at,
        alertname: alert,
        exp_alerts: firing,
      })),
    })),
  });
}

let dir = '';
let rulesFile = '';

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'alerts-'));
  rulesFile = join(dir, 'rules.yaml');
  writeFileSync(rulesFile, stringify({ groups }));
});

afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

describe('the PrometheusRule', () => {
  it('is accepted by promtool check rules', async () => {
    const { code, output } = await promtool('check', 'rules', rulesFile);
    expect(output).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(code, output).toBe(0);
  });

  it('has one scenario set per alert, each with a firing and a quiet case', () => {
    expect(Object.keys(SCENARIOS).sort()).toEqual(alerts.map((a) => a.alert).sort());
    for (const [alert, scenarios] of Object.entries(SCENARIOS)) {
      const firing = scenarios.flatMap((sc) => sc.expect).filter(([, f]) => f.length > 0);
      const quiet = scenarios.flatMap((sc) => sc.expect).filter(([, f]) => f.length === 0);
      expect(firing.length, `${alert} fires somewhere`).toBeGreaterThan(0);
      expect(quiet.length, `${alert} stays quiet somewhere`).toBeGreaterThan(0);
    }
  });

  it.each(alerts.map((a) => ({ name: a.alert, rule: a })))(
    '$name has for, a severity, summary, description and a runbook in deploy/README.md',
    ({ name, rule }) => {
      expect(rule.for).toMatch(/^\d+[mh]$/);
      expect(['info', 'warning', 'critical']).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary).toBeTruthy();
      expect(rule.annotations?.description).toBeTruthy();
      expect(rule.annotations?.runbook_url).toBe(runbook(name));
      // The anchor GitHub gives `### MirrorAutoscalerAbsent` is its lowercased text.
      const headings = readFileSync(README, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('### '))
        .map((l) => l.slice(4).trim());
      expect(headings).toContain(name);
    },
  );

  it('the runbooks sit under "## Alerts" in deploy/README.md, in the order of the rules', () => {
    const text = readFileSync(README, 'utf8');
    const section = text.slice(text.indexOf('\n## Alerts\n'));
    expect(section.length).toBeLessThan(text.length);
    const end = section.indexOf('\n## ', 1);
    const headings = [...(end === -1 ? section : section.slice(0, end)).matchAll(/^### (\S+)$/gm)].map(
      (x) => x[1],
    );
    expect(headings).toEqual(alerts.map((a) => a.alert));
  });
});

describe('promtool test rules', () => {
  it.each(Object.entries(SCENARIOS).map(([alert, scenarios]) => ({ alert, scenarios })))(
    '$alert',
    async ({ alert, scenarios }) => {
      const file = join(dir, `${alert}.test.yaml`);
      writeFileSync(file, unitTests(alert, scenarios, rulesFile));
      const { code, output } = await promtool('test', 'rules', file);
      expect(code, output).toBe(0);
      expect(output).toContain('SUCCESS');
    },
  );

  it('fails when an expectation is wrong (the harness really compares)', async () => {
    const [first] = SCENARIOS.MirrorAutoscalerNoLeader ?? [];
    if (first === undefined) throw new Error('no NoLeader scenario');
    const wrong: Scenario = {
      ...first,
      expect: first.expect.map(([at, firing]) => [
        at,
        firing.map((f) => ({ ...f, exp_labels: { ...f.exp_labels, severity: 'critical' } })),
      ]),
    };
    const file = join(dir, 'wrong.test.yaml');
    writeFileSync(file, unitTests('MirrorAutoscalerNoLeader', [wrong], rulesFile));
    const { code, output } = await promtool('test', 'rules', file);
    expect(code).not.toBe(0);
    expect(output).toContain('FAILED');
  });
});
