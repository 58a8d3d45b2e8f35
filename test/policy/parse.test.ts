import { describe, expect, it } from 'vitest';
import { DEFAULT_CONTROL } from '../../src/core/defaults.js';
import { formatProblem, MAX_POLICY_BYTES, PolicyError, parsePolicy } from '../../src/policy/parse.js';
import { BASE, edit } from './fixtures.js';

const F = 'policies/checkout.yaml';

const LABEL =
  'a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters';
const SUBDOMAIN =
  'a DNS-1123 subdomain: dot-separated lowercase labels of letters, digits and "-", at most 253 characters';
const DURATION = 'must be a duration such as 30s, 2m or 1h30m';

interface Row {
  readonly name: string;
  readonly text: string;
  readonly want: readonly string[];
}

const rows: readonly Row[] = [
  // bounds
  {
    name: 'maxPercent above 100',
    text: edit([['maxPercent: 100', 'maxPercent: 150']]),
    want: [`${F}:14:17: spec.bounds.maxPercent: must be <= 100 (got 150)`],
  },
  {
    name: 'negative minPercent',
    text: edit([['minPercent: 1', 'minPercent: -1']]),
    want: [`${F}:13:17: spec.bounds.minPercent: must be >= 0 (got -1)`],
  },
  {
    name: 'minPercent above maxPercent',
    text: edit([
      ['minPercent: 1', 'minPercent: 60'],
      ['maxPercent: 100', 'maxPercent: 40.5'],
    ]),
    want: [`${F}:13:17: spec.bounds.minPercent: must be <= spec.bounds.maxPercent (got 60 > 40.5)`],
  },
  {
    name: 'number written as a word',
    text: edit([['maxPercent: 100', 'maxPercent: ten']]),
    want: [`${F}:14:17: spec.bounds.maxPercent: must be a number (got "ten")`],
  },
  {
    name: 'number quoted as a string',
    text: edit([['maxPercent: 100', 'maxPercent: "50"']]),
    want: [`${F}:14:17: spec.bounds.maxPercent: must be a number (got "50")`],
  },
  {
    name: 'infinite number',
    text: edit([['maxPercent: 100', 'maxPercent: .inf']]),
    want: [`${F}:14:17: spec.bounds.maxPercent: must be a finite number (got .inf)`],
  },
  {
    name: 'boolean for a number',
    text: edit([['maxPercent: 100', 'maxPercent: true']]),
    want: [`${F}:14:17: spec.bounds.maxPercent: must be a number (got true)`],
  },
  {
    name: 'empty value points at its key',
    text: edit([['maxPercent: 100', 'maxPercent:']]),
    want: [`${F}:14:5: spec.bounds.maxPercent: must be a number (got null)`],
  },
  {
    name: 'list for a number',
    text: edit([['maxPercent: 100', 'maxPercent: [100]']]),
    want: [`${F}:14:17: spec.bounds.maxPercent: must be a number (got a list)`],
  },
  {
    name: 'scalar for a mapping',
    text: edit([['  bounds:\n    minPercent: 1\n    maxPercent: 100\n', '  bounds: 5\n']]),
    want: [`${F}:12:11: spec.bounds: must be a mapping (got 5)`],
  },
  // unknown and missing fields
  {
    name: 'misspelt field: unknown at the key, required at the parent map',
    text: edit([['maxPercent: 100', 'maxPercnt: 100']]),
    want: [
      `${F}:13:5: spec.bounds.maxPercent: is required`,
      `${F}:14:5: spec.bounds.maxPercnt: unknown field (did you mean maxPercent?)`,
    ],
  },
  {
    name: 'unknown top-level field',
    text: edit([], 'status: {}\n'),
    want: [`${F}:19:1: status: unknown field`],
  },
  {
    name: 'unknown metadata field',
    text: edit([['  name: checkout\nspec:', '  name: checkout\n  labels: {}\nspec:']]),
    want: [`${F}:5:3: metadata.labels: unknown field`],
  },
  {
    name: 'unknown key with odd characters is quoted in the path',
    text: edit([], '  "a.b": 1\n'),
    want: [`${F}:19:3: spec["a.b"]: unknown field`],
  },
  {
    name: 'non-string key',
    text: edit([], '1: x\n'),
    want: [`${F}:19:1: keys must be strings (got 1)`],
  },
  {
    name: 'missing target.workload',
    text: edit([['    workload: checkout-shadow\n', '']]),
    want: [`${F}:10:5: spec.target.workload: is required`],
  },
  {
    name: 'missing apiVersion',
    text: edit([['apiVersion: mirror-autoscaler.io/v1alpha1\n', '']]),
    want: [`${F}:1:1: apiVersion: is required`],
  },
  {
    name: 'missing spec',
    text: BASE.slice(0, BASE.indexOf('spec:')),
    want: [`${F}:1:1: spec: is required`],
  },
  {
    name: 'wrong apiVersion',
    text: edit([['apiVersion: mirror-autoscaler.io/v1alpha1', 'apiVersion: v1']]),
    want: [`${F}:1:13: apiVersion: must be "mirror-autoscaler.io/v1alpha1" (got "v1")`],
  },
  {
    name: 'wrong kind',
    text: edit([['kind: MirrorPolicy', 'kind: Policy']]),
    want: [`${F}:2:7: kind: must be "MirrorPolicy" (got "Policy")`],
  },
  // guardrails
  {
    name: 'no guardrail set',
    text: edit([
      [
        '  guardrails:\n    cpuUtilization: 0.8\n    errorRate: 0.02\n    latencyP99Ms: 400\n',
        '  guardrails: {}\n',
      ],
    ]),
    want: [`${F}:15:15: spec.guardrails: must set at least one of cpuUtilization, errorRate, latencyP99Ms`],
  },
  {
    name: 'guardrails missing',
    text: edit([
      ['  guardrails:\n    cpuUtilization: 0.8\n    errorRate: 0.02\n    latencyP99Ms: 400\n', ''],
    ]),
    want: [`${F}:6:3: spec.guardrails: is required`],
  },
  {
    name: 'cpu written as a percentage',
    text: edit([['cpuUtilization: 0.8', 'cpuUtilization: 80']]),
    want: [
      `${F}:16:21: spec.guardrails.cpuUtilization: must be <= 10 (got 80); a ratio of requested CPU: 0.8 means 80 %`,
    ],
  },
  {
    name: 'cpu zero',
    text: edit([['cpuUtilization: 0.8', 'cpuUtilization: 0']]),
    want: [`${F}:16:21: spec.guardrails.cpuUtilization: must be > 0 (got 0)`],
  },
  {
    name: 'error rate written as a percentage',
    text: edit([['errorRate: 0.02', 'errorRate: 2']]),
    want: [`${F}:17:16: spec.guardrails.errorRate: must be <= 1 (got 2); a ratio: 0.01 means 1 %`],
  },
  {
    name: 'error rate zero',
    text: edit([['errorRate: 0.02', 'errorRate: 0']]),
    want: [`${F}:17:16: spec.guardrails.errorRate: must be > 0 (got 0)`],
  },
  {
    name: 'negative latency',
    text: edit([['latencyP99Ms: 400', 'latencyP99Ms: -5']]),
    want: [`${F}:18:19: spec.guardrails.latencyP99Ms: must be > 0 (got -5)`],
  },
  // durations
  {
    name: 'interval without a unit',
    text: edit([], '  interval: 30\n'),
    want: [`${F}:19:13: spec.interval: ${DURATION} (got 30)`],
  },
  {
    name: 'duration units out of order',
    text: edit([], '  interval: 30s1m\n'),
    want: [`${F}:19:13: spec.interval: ${DURATION} (got "30s1m")`],
  },
  {
    name: 'interval below 1s',
    text: edit([], '  interval: 500ms\n'),
    want: [`${F}:19:13: spec.interval: must be >= 1s (got 500ms)`],
  },
  {
    name: 'interval above 1h',
    text: edit([], '  interval: 1h1s\n'),
    want: [`${F}:19:13: spec.interval: must be <= 1h (got 1h1s)`],
  },
  {
    name: 'window shorter than interval',
    text: edit([], '  interval: 1m\n  window: 30s\n'),
    want: [`${F}:20:11: spec.window: must be >= spec.interval (got 30s < 1m)`],
  },
  {
    name: 'window shorter than the default interval',
    text: edit([], '  window: 10s\n'),
    want: [`${F}:19:11: spec.window: must be >= spec.interval (got 10s < 30s)`],
  },
  {
    name: 'control duration malformed',
    text: edit([], '  control:\n    cooldown: 5x\n'),
    want: [`${F}:20:15: spec.control.cooldown: ${DURATION} (got "5x")`],
  },
  // names: these go into PromQL and API paths
  {
    name: 'metadata.name not a DNS-1123 label',
    text: edit([['  name: checkout\nspec:', '  name: Checkout_v2\nspec:']]),
    want: [`${F}:4:9: metadata.name: must be ${LABEL} (got "Checkout_v2")`],
  },
  {
    name: 'metadata.name too long',
    text: edit([['  name: checkout\nspec:', `  name: ${'a'.repeat(64)}\nspec:`]]),
    want: [`${F}:4:9: metadata.name: must be at most 63 characters (got 64)`],
  },
  {
    name: 'metadata.name a number',
    text: edit([['  name: checkout\nspec:', '  name: 123\nspec:']]),
    want: [`${F}:4:9: metadata.name: must be a string (got 123)`],
  },
  {
    name: 'namespace with a PromQL injection',
    text: edit([['namespace: shop', `namespace: 'shop"} or vector(1) #'`]]),
    want: [`${F}:8:16: spec.virtualService.namespace: must be ${LABEL} (got "shop\\"} or vector(1) #")`],
  },
  {
    name: 'workload with a regex injection',
    text: edit([['workload: checkout-shadow', 'workload: checkout.*|payments']]),
    want: [`${F}:11:15: spec.target.workload: must be ${SUBDOMAIN} (got "checkout.*|payments")`],
  },
  {
    name: 'target namespace with upper case',
    text: edit([['    workload: checkout-shadow\n', '    workload: checkout-shadow\n    namespace: Shop\n']]),
    want: [`${F}:12:16: spec.target.namespace: must be ${LABEL} (got "Shop")`],
  },
  {
    name: 'virtualService name with an underscore',
    text: edit([['    name: checkout\n    namespace', '    name: check_out\n    namespace']]),
    want: [`${F}:7:11: spec.virtualService.name: must be ${SUBDOMAIN} (got "check_out")`],
  },
  {
    name: 'host with upper case',
    text: edit([['host: checkout-shadow', 'host: Checkout-Shadow']]),
    want: [
      `${F}:10:11: spec.target.host: must be a lowercase DNS name such as checkout-shadow or checkout-shadow.shop.svc.cluster.local (labels of at most 63 characters) (got "Checkout-Shadow")`,
    ],
  },
  {
    name: 'empty subset',
    text: edit([['    workload: checkout-shadow\n', '    workload: checkout-shadow\n    subset: ""\n']]),
    want: [`${F}:12:13: spec.target.subset: must not be empty`],
  },
  {
    name: 'route with a space',
    text: edit([['namespace: shop\n', 'namespace: shop\n    route: primary route\n']]),
    want: [
      `${F}:9:12: spec.virtualService.route: must be a route name of letters, digits and ". _ : / -", starting and ending with a letter or digit, at most 253 characters (got "primary route")`,
    ],
  },
  // queries
  {
    name: 'query with an unknown placeholder',
    text: edit([], `  queries:\n    errorRate: 'sum(rate(x{w="{{foo}}"}[{{window}}]))'\n`),
    want: [
      `${F}:20:16: spec.queries.errorRate: unknown placeholder {{foo}}; use {{namespace}}, {{workload}} or {{window}}`,
    ],
  },
  {
    name: 'query that is not PromQL',
    text: edit([], `  queries:\n    errorRate: 'sum(rate(x{w="{{workload}}"}[{{window}}])) +'\n`),
    want: [
      `${F}:20:16: spec.queries.errorRate: is not valid PromQL: syntax error at character 45, at the end of the query`,
    ],
  },
  {
    name: 'query with a syntax error in the middle',
    text: edit([], `  queries:\n    errorRate: 'sum(rate(x[{{window}}]) by job'\n`),
    want: [
      `${F}:20:16: spec.queries.errorRate: is not valid PromQL: syntax error at character 25, near "by job"`,
    ],
  },
  {
    name: 'query without its guardrail',
    text: edit([['    latencyP99Ms: 400\n', '']], '  queries:\n    latencyP99Ms: up\n'),
    want: [
      `${F}:19:19: spec.queries.latencyP99Ms: has no guardrail to feed: set spec.guardrails.latencyP99Ms or remove this query`,
    ],
  },
  {
    name: 'empty query',
    text: edit([], `  queries:\n    errorRate: ' '\n`),
    want: [`${F}:20:16: spec.queries.errorRate: must not be empty`],
  },
  {
    name: 'query not a string',
    text: edit([], '  queries:\n    errorRate: 1\n'),
    want: [`${F}:20:16: spec.queries.errorRate: must be a string (got 1)`],
  },
  // control
  {
    name: 'control values out of range, all reported',
    text: edit(
      [],
      '  control:\n    hysteresis: 1\n    maxIncreaseFactor: 0.5\n    maxWritesPerHour: 2.5\n    increaseStepPercent: 0\n    colldown: 1m\n',
    ),
    want: [
      `${F}:20:17: spec.control.hysteresis: must be < 1 (got 1)`,
      `${F}:21:24: spec.control.maxIncreaseFactor: must be >= 1 (got 0.5)`,
      `${F}:22:23: spec.control.maxWritesPerHour: must be an integer (got 2.5)`,
      `${F}:23:26: spec.control.increaseStepPercent: must be > 0 (got 0)`,
      `${F}:24:5: spec.control.colldown: unknown field (did you mean cooldown?)`,
    ],
  },
  // many problems at once, in line order
  {
    name: 'every problem in a file is reported',
    text: edit([
      ['  name: checkout\nspec:', '  name: Bad_Name\nspec:'],
      ['maxPercent: 100', 'maxPercent: 150'],
      ['errorRate: 0.02', 'errorRte: 0.02'],
    ]),
    want: [
      `${F}:4:9: metadata.name: must be ${LABEL} (got "Bad_Name")`,
      `${F}:14:17: spec.bounds.maxPercent: must be <= 100 (got 150)`,
      `${F}:17:5: spec.guardrails.errorRte: unknown field (did you mean errorRate?)`,
    ],
  },
  // document shape
  {
    name: 'empty file',
    text: '',
    want: [`${F}:1:1: file is empty; expected one MirrorPolicy document`],
  },
  {
    name: 'comments only',
    text: '# nothing here\n---\n',
    want: [`${F}:1:1: file is empty; expected one MirrorPolicy document`],
  },
  {
    name: 'two documents',
    text: `${BASE}---\n${BASE}`,
    want: [`${F}:19:1: found a second YAML document; a policy file holds exactly one MirrorPolicy`],
  },
  {
    name: 'root is a list',
    text: '- a\n- b\n',
    want: [`${F}:1:1: the document must be a mapping with apiVersion, kind, metadata, spec (got a list)`],
  },
  {
    name: 'root is a scalar',
    text: 'hello\n',
    want: [`${F}:1:1: the document must be a mapping with apiVersion, kind, metadata, spec (got "hello")`],
  },
  {
    name: 'YAML syntax error',
    text: edit([['maxPercent: 100', 'maxPercent: [100']]),
    want: [
      `${F}:15:3: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]`,
    ],
  },
  {
    name: 'duplicate key',
    text: edit([['maxPercent: 100', 'maxPercent: 100\n    maxPercent: 90']]),
    want: [`${F}:15:5: spec.bounds.maxPercent: duplicate field (first set at line 14, column 5)`],
  },
  {
    name: 'unknown tag',
    text: edit([['maxPercent: 100', 'maxPercent: !pct 100']]),
    want: [`${F}:14:17: invalid YAML: Unresolved tag: !pct`],
  },
  {
    name: 'file too large',
    text: `${BASE}#${'x'.repeat(MAX_POLICY_BYTES)}\n`,
    want: [
      `${F}:1:1: file is too large (${BASE.length + MAX_POLICY_BYTES + 2} bytes; limit ${MAX_POLICY_BYTES})`,
    ],
  },
];

describe('parsePolicy problems', () => {
  it.each(rows)('$name', ({ text, want }) => {
    const result = parsePolicy(text, F);
    expect(result.problems.map(formatProblem)).toEqual(want);
    expect(result.policy).toBeUndefined();
  });
});

describe('parsePolicy valid documents', () => {
  it('fills defaults, resolves target.namespace and records the file', () => {
    const { policy, problems } = parsePolicy(BASE, F);
    expect(problems).toEqual([]);
    expect(policy).toEqual({
      name: 'checkout',
      file: F,
      route: { kind: 'VirtualService', name: 'checkout', namespace: 'shop' },
      target: { host: 'checkout-shadow', workload: 'checkout-shadow', namespace: 'shop' },
      bounds: { minPercent: 1, maxPercent: 100 },
      guardrails: { cpuUtilization: 0.8, errorRate: 0.02, latencyP99Ms: 400 },
      intervalSeconds: 30,
      windowSeconds: 120,
      queries: {},
      control: DEFAULT_CONTROL,
    });
    // exactOptionalPropertyTypes: absent optional fields must be absent, not undefined.
    expect(policy && 'rule' in policy.route).toBe(false);
    expect(policy && 'subset' in policy.target).toBe(false);
  });

  const valid = [
    {
      name: 'every optional field set',
      text: edit(
        [
          ['namespace: shop\n', 'namespace: shop\n    route: primary\n'],
          [
            '    workload: checkout-shadow\n',
            '    workload: checkout-shadow.v2\n    subset: shadow\n    namespace: shadow-ns\n',
          ],
          ['minPercent: 1', 'minPercent: 0.25'],
          ['maxPercent: 100', 'maxPercent: 33.3'],
        ],
        `  interval: 1m
  window: 45m
  queries:
    latencyP99Ms: |
      histogram_quantile(0.99, sum by (le) (rate(
        istio_request_duration_milliseconds_bucket{destination_workload_namespace="{{ namespace }}", destination_workload="{{workload}}"}[{{window}}])))
  control:
    hysteresis: 0
    maxIncreaseFactor: 2
    increaseStepPercent: 0.5
    cooldown: 0s
    blindHold: 10m
    minChangePercent: 0
    maxWritesPerHour: 60
    breachMemory: 1d
`,
      ),
      check: (p: NonNullable<ReturnType<typeof parsePolicy>['policy']>) => {
        expect(p.route).toEqual({
          kind: 'VirtualService',
          name: 'checkout',
          namespace: 'shop',
          rule: 'primary',
        });
        expect(p.target).toEqual({
          host: 'checkout-shadow',
          subset: 'shadow',
          workload: 'checkout-shadow.v2',
          namespace: 'shadow-ns',
        });
        expect(p.bounds).toEqual({ minPercent: 0.25, maxPercent: 33.3 });
        expect(p.intervalSeconds).toBe(60);
        expect(p.windowSeconds).toBe(2700);
        expect(p.queries.latencyP99Ms).toContain('{{ namespace }}');
        expect(p.control).toEqual({
          hysteresis: 0,
          maxIncreaseFactor: 2,
          increaseStepPercent: 0.5,
          cooldownSeconds: 0,
          blindHoldSeconds: 600,
          minChangePercent: 0,
          maxWritesPerHour: 60,
          breachMemorySeconds: 86400,
        });
      },
    },
    {
      name: 'unset window follows a long interval',
      text: edit([], '  interval: 5m\n'),
      check: (p: NonNullable<ReturnType<typeof parsePolicy>['policy']>) => {
        expect(p.intervalSeconds).toBe(300);
        expect(p.windowSeconds).toBe(300);
      },
    },
    {
      name: 'cpu above 1 and min equal to max',
      text: edit([
        ['cpuUtilization: 0.8', 'cpuUtilization: 1.5'],
        ['maxPercent: 100', 'maxPercent: 1'],
      ]),
      check: (p: NonNullable<ReturnType<typeof parsePolicy>['policy']>) => {
        expect(p.guardrails.cpuUtilization).toBe(1.5);
        expect(p.bounds).toEqual({ minPercent: 1, maxPercent: 1 });
      },
    },
    {
      name: 'aliases resolve on known paths; trailing document separator and comments are fine',
      text: `# leading comment\n${edit([
        ['minPercent: 1', 'minPercent: &pct 5'],
        ['maxPercent: 100', 'maxPercent: *pct'],
      ])}---\n`,
      check: (p: NonNullable<ReturnType<typeof parsePolicy>['policy']>) => {
        expect(p.bounds).toEqual({ minPercent: 5, maxPercent: 5 });
      },
    },
    {
      name: 'flow style',
      text: `{apiVersion: mirror-autoscaler.io/v1alpha1, kind: MirrorPolicy, metadata: {name: a},
 spec: {virtualService: {name: a, namespace: b}, target: {host: c, workload: d},
        bounds: {minPercent: 0, maxPercent: 0}, guardrails: {errorRate: 1}}}`,
      check: (p: NonNullable<ReturnType<typeof parsePolicy>['policy']>) => {
        expect(p.target).toEqual({ host: 'c', workload: 'd', namespace: 'b' });
        expect(p.guardrails).toEqual({ errorRate: 1 });
      },
    },
  ];
  it.each(valid)('$name', ({ text, check }) => {
    const { policy, problems } = parsePolicy(text, F);
    expect(problems.map(formatProblem)).toEqual([]);
    expect(policy).toBeDefined();
    if (policy) check(policy);
  });
});

describe('formatProblem and PolicyError', () => {
  const cases = [
    {
      name: 'field problem',
      p: { file: 'a.yaml', line: 3, col: 7, path: 'spec.x', message: 'bad' },
      want: 'a.yaml:3:7: spec.x: bad',
    },
    {
      name: 'file problem',
      p: { file: 'a.yaml', line: 1, col: 1, path: '', message: 'bad' },
      want: 'a.yaml:1:1: bad',
    },
    {
      name: 'no position',
      p: { file: 'dir', line: 0, col: 0, path: '', message: 'gone' },
      want: 'dir: gone',
    },
  ];
  it.each(cases)('$name', ({ p, want }) => {
    expect(formatProblem(p)).toBe(want);
  });

  it('PolicyError carries every problem and lists them in its message', () => {
    const problems = parsePolicy(edit([['maxPercent: 100', 'maxPercent: 150']]), F).problems;
    const err = new PolicyError(problems);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('PolicyError');
    expect(err.problems).toEqual(problems);
    expect(err.message).toBe(`${F}:14:17: spec.bounds.maxPercent: must be <= 100 (got 150)`);
  });
});
