import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { register } from '../../src/cli/simulate.js';
import { DEFAULT_SIMULATE_FLAGS, runSimulate, type SimulateFlags } from '../../src/sim/command.js';
import { SCENARIO_NAMES } from '../../src/sim/scenarios.js';

async function run(flags: Partial<SimulateFlags>, color = false) {
  let out = '';
  let err = '';
  const code = await runSimulate(
    { ...DEFAULT_SIMULATE_FLAGS, duration: '30m', ...flags },
    {
      stdout: { write: (t: string) => (out += t) },
      stderr: { write: (t: string) => (err += t) },
      columns: 90,
      color,
    },
  );
  return { code, out, err };
}

describe('runSimulate', () => {
  it('by default charts the capacity drop and prints the summary', async () => {
    const { code, out, err } = await run({ duration: '2h' });
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('scenario capacity-drop');
    expect(out).toContain('┄┄ largest safe percentage (oracle)');
    expect(out).toMatch(/^mirrored +\d\.\d{3} of the safe maximum/m);
    expect(out).toMatch(/^in breach +\d+ s/m);
    expect(out).toMatch(/^writes +\d+ \(/m);
    expect(out).toMatch(/^after the drop +back under the guardrails in \d+ s/m);
    expect(out).not.toContain('\x1b[');
  });

  it('uses colours only when told to', async () => {
    expect((await run({}, true)).out).toContain('\x1b[');
  });

  it('--no-chart prints only the summary', async () => {
    const { out } = await run({ chart: false });
    expect(out).not.toContain('largest safe percentage');
    expect(out.split('\n')[0]).toMatch(/^run +scenario capacity-drop, seed 1, 30m/);
  });

  it('--scrape-interval changes the scrape interval only; interval and window stay the policy’s', async () => {
    const { code, out } = await run({ chart: false, scrapeInterval: '1s' });
    expect(code).toBe(0);
    expect(out.split('\n')[0]).toMatch(/every 30s over 2m, scrapes every 1s$/);
    const json = JSON.parse((await run({ output: 'json', scrapeInterval: '5s' })).out) as {
      policy: { intervalSeconds: number; windowSeconds: number };
    };
    expect(json.policy).toMatchObject({ intervalSeconds: 30, windowSeconds: 120 });
  });

  it('--scenario all prints one row per scenario', async () => {
    const { code, out } = await run({ scenario: 'all' });
    expect(code).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines).toHaveLength(2 + SCENARIO_NAMES.length);
    expect(lines.slice(2).map((l) => l.split(' ')[0])).toEqual([...SCENARIO_NAMES]);
  });

  it('--output json gives the summary and the samples', async () => {
    const { code, out } = await run({ scenario: 'surge', output: 'json', seed: '4' });
    expect(code).toBe(0);
    const body = JSON.parse(out) as {
      scenario: string;
      seed: number;
      summary: Record<string, unknown>;
      samples: unknown[];
    };
    expect(body.scenario).toBe('surge');
    expect(body.seed).toBe(4);
    expect(body.samples).toHaveLength(60);
    expect(Object.keys(body.summary)).toContain('mirroredShare');
  });

  it('--output json with all scenarios gives one summary each', async () => {
    const body = JSON.parse((await run({ scenario: 'all', output: 'json' })).out) as {
      results: { scenario: string }[];
    };
    expect(body.results.map((r) => r.scenario)).toEqual([...SCENARIO_NAMES]);
  });

  const bad = [
    {
      name: 'unknown scenario',
      flags: { scenario: 'tsunami' },
      message:
        'simulate: --scenario: must be one of steady, diurnal, capacity-drop, surge, prometheus-outage, noisy, slow-ramp, cold-start, all (got "tsunami")',
    },
    {
      name: 'duration without unit',
      flags: { duration: '90' },
      message: 'simulate: --duration: must be a duration such as 2h or 90m (got "90")',
    },
    {
      name: 'duration too short',
      flags: { duration: '1m' },
      message: 'simulate: --duration: must be between 5m and 7d (got "1m")',
    },
    {
      name: 'negative seed',
      flags: { seed: '-1' },
      message: 'simulate: --seed: must be an integer from 0 to 4294967295 (got "-1")',
    },
    {
      name: 'seed too large',
      flags: { seed: '4294967296' },
      message: 'simulate: --seed: must be an integer from 0 to 4294967295 (got "4294967296")',
    },
    {
      name: 'unknown output',
      flags: { output: 'yaml' },
      message: 'simulate: --output: must be table or json (got "yaml")',
    },
    {
      name: 'scrape interval under a second',
      flags: { scrapeInterval: '500ms' },
      message: 'simulate: --scrape-interval: must be a duration between 1s and 5m such as 15s (got "500ms")',
    },
  ];
  it.each(bad)('refuses $name', async ({ flags, message }) => {
    const { code, out, err } = await run(flags);
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toBe(`${message}\n`);
  });
});

describe('runSimulate --policy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sim-policy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs with a valid policy file instead of the default policy', async () => {
    const { code, out, err } = await run({ policy: 'policies/checkout.yaml', chart: false });
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(out).toContain('bounds 1–100 %, guardrails cpu 0.8, errors 0.02, p99 400 ms');
  });

  it('names the route kind and mirror target of the policy it runs, for every kind', async () => {
    const rows = [
      [
        'policies/checkout.yaml',
        'policy checkout: VirtualService shop/checkout, mirror to host checkout-shadow.shop.svc.cluster.local',
      ],
      [
        'policies/storefront-httproute.yaml',
        'policy storefront: HTTPRoute web/storefront, rule "browse", mirror to Service web/storefront-shadow',
      ],
      [
        'policies/inventory-grpcroute.yaml',
        'policy inventory: GRPCRoute stock/inventory, mirror to Service stock/inventory-shadow',
      ],
    ] as const;
    for (const [policy, line] of rows) {
      const { code, out } = await run({ policy, chart: false, duration: '5m' });
      expect(code).toBe(0);
      expect(out.split('\n')[0]).toBe(line);
      const json = await run({ policy, output: 'json', duration: '5m' });
      expect(JSON.parse(json.out).route).toBe(line);
    }
  });

  it('prints every problem of an invalid policy file and exits 1', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(
      file,
      [
        'apiVersion: mirror-autoscaler.io/v1alpha1',
        'kind: MirrorPolicy',
        'metadata:',
        '  name: bad',
        'spec:',
        '  virtualService: {name: vs, namespace: ns}',
        '  target: {host: h.ns.svc.cluster.local, workload: w}',
        '  bounds: {minPercent: 1, maxPercent: 150}',
        '  guardrails: {cpuUtilization: 0.8}',
        '  interval: 30s',
        '  window: 2m',
        '',
      ].join('\n'),
    );
    const { code, out, err } = await run({ policy: file });
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:8:\\d+: spec\\.bounds\\.maxPercent: `),
    );
  });

  it('reports a missing policy file and exits 1', async () => {
    const { code, err } = await run({ policy: join(dir, 'nope.yaml') });
    expect(code).toBe(1);
    expect(err).toContain('nope.yaml');
  });
});

describe('simulate command registration', () => {
  it('--help lists every scenario', async () => {
    let help = '';
    const program = new Command().exitOverride().configureOutput({ writeOut: (t) => (help += t) });
    register(program);
    await expect(program.parseAsync(['simulate', '--help'], { from: 'user' })).rejects.toThrow();
    for (const name of SCENARIO_NAMES) expect(help).toMatch(new RegExp(`^  ${name} +\\S`, 'm'));
    expect(help).toContain('--no-chart');
  });
});
