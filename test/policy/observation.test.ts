/**
 * spec.observation, spec.production and spec.queries.productionRate: what they parse to, and the exact
 * problems of every way to get them wrong.
 */
import { describe, expect, it } from 'vitest';
import { formatProblem, parsePolicy } from '../../src/policy/parse.js';
import { checkQueryTemplate, renderQuery } from '../../src/policy/query.js';
import { BASE, edit } from './fixtures.js';

const F = 'policies/checkout.yaml';
const LABEL =
  'a DNS-1123 label: lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters';

const PRODUCTION_QUERY =
  'sum(rate(istio_requests_total{reporter="destination",destination_service_namespace="{{serviceNamespace}}",destination_service_name="{{service}}",destination_workload!="{{workload}}"}[{{window}}]))';

describe('valid observation and production settings', () => {
  it('an existing policy gets neither field: the daemon learns and derives them', () => {
    const { policy } = parsePolicy(BASE, F);
    expect(policy).toBeDefined();
    expect(policy && 'observation' in policy).toBe(false);
    expect(policy && 'production' in policy).toBe(false);
    expect(policy?.queries).toEqual({});
  });

  it('reads every field, in seconds, with the production namespace defaulted to the VirtualService', () => {
    const { policy, problems } = parsePolicy(
      edit(
        [],
        `  observation:\n    scrapeInterval: 30s\n    propagation: 2s\n  production:\n    service: checkout\n  queries:\n    productionRate: '${PRODUCTION_QUERY}'\n`,
      ),
      F,
    );
    expect(problems.map(formatProblem)).toEqual([]);
    expect(policy?.observation).toEqual({ scrapeIntervalSeconds: 30, propagationSeconds: 2 });
    expect(policy?.production).toEqual({ service: 'checkout', namespace: 'shop' });
    expect(policy?.queries).toEqual({ productionRate: PRODUCTION_QUERY });
  });

  it('takes an explicit production namespace and a zero propagation', () => {
    const { policy, problems } = parsePolicy(
      edit(
        [],
        '  observation:\n    propagation: 0s\n  production:\n    service: web\n    namespace: front\n',
      ),
      F,
    );
    expect(problems).toEqual([]);
    expect(policy?.observation).toEqual({ propagationSeconds: 0 });
    expect(policy?.production).toEqual({ service: 'web', namespace: 'front' });
  });

  it('a scrape interval of half the window is enough', () => {
    const { problems } = parsePolicy(edit([], '  window: 1m\n  observation:\n    scrapeInterval: 30s\n'), F);
    expect(problems).toEqual([]);
  });
});

const rows: readonly { name: string; text: string; want: readonly string[] }[] = [
  {
    name: 'scrape interval below 1s',
    text: edit([], '  observation:\n    scrapeInterval: 500ms\n'),
    want: [`${F}:20:21: spec.observation.scrapeInterval: must be >= 1s (got 500ms)`],
  },
  {
    name: 'scrape interval above 5m',
    text: edit([], '  window: 1h\n  observation:\n    scrapeInterval: 6m\n'),
    want: [`${F}:21:21: spec.observation.scrapeInterval: must be <= 5m (got 6m)`],
  },
  {
    name: 'propagation above 5m',
    text: edit([], '  observation:\n    propagation: 10m\n'),
    want: [`${F}:20:18: spec.observation.propagation: must be <= 5m (got 10m)`],
  },
  {
    name: 'propagation not a duration',
    text: edit([], '  observation:\n    propagation: 5\n'),
    want: [`${F}:20:18: spec.observation.propagation: must be a duration such as 30s, 2m or 1h30m (got 5)`],
  },
  {
    name: 'window shorter than two scrapes',
    text: edit([], '  window: 1m\n  observation:\n    scrapeInterval: 45s\n'),
    want: [`${F}:19:11: spec.window: must be >= 2 × spec.observation.scrapeInterval (got 1m < 2 × 45s)`],
  },
  {
    name: 'default window shorter than two scrapes',
    text: edit([], '  observation:\n    scrapeInterval: 90s\n'),
    want: [
      `${F}:20:21: spec.observation.scrapeInterval: must be <= half of spec.window (got 1m30s; spec.window is 2m by default): set spec.window to at least 3m`,
    ],
  },
  {
    name: 'misspelt observation field',
    text: edit([], '  observation:\n    scrapeIntervall: 15s\n'),
    want: [`${F}:20:5: spec.observation.scrapeIntervall: unknown field (did you mean scrapeInterval?)`],
  },
  {
    name: 'production without a service',
    text: edit([], '  production:\n    namespace: shop\n'),
    want: [`${F}:20:5: spec.production.service: is required`],
  },
  {
    name: 'production service that is not a DNS-1123 label',
    text: edit([], '  production:\n    service: checkout.shop\n'),
    want: [`${F}:20:14: spec.production.service: must be ${LABEL} (got "checkout.shop")`],
  },
  {
    name: 'production namespace that would escape a matcher',
    text: edit([], `  production:\n    service: checkout\n    namespace: 'shop"} or vector(1) #'\n`),
    want: [`${F}:21:16: spec.production.namespace: must be ${LABEL} (got "shop\\"} or vector(1) #")`],
  },
  {
    name: 'production query with an unknown placeholder',
    text: edit([], `  queries:\n    productionRate: 'sum(rate(x{s="{{host}}"}[{{window}}]))'\n`),
    want: [
      `${F}:20:21: spec.queries.productionRate: unknown placeholder {{host}}; use {{namespace}}, {{workload}}, {{window}}, {{service}} or {{serviceNamespace}}`,
    ],
  },
  {
    name: 'production query with {{service}} outside quotes',
    text: edit([], `  queries:\n    productionRate: 'sum(rate({{service}}_requests[{{window}}]))'\n`),
    want: [
      `${F}:20:21: spec.queries.productionRate: placeholder {{service}} must sit inside a quoted label value such as destination_service_name="{{service}}"; elsewhere its value would be read as PromQL`,
    ],
  },
  {
    name: 'production query that makes up a value',
    text: edit(
      [],
      `  queries:\n    productionRate: 'sum(rate(x{s="{{service}}"}[{{window}}])) or vector(0)'\n`,
    ),
    want: [
      `${F}:20:21: spec.queries.productionRate: must not use vector(): it makes up a value when series are missing, which hides missing data (missing data must hold the percentage)`,
    ],
  },
  {
    name: 'signal query may not use {{service}}',
    text: edit([], `  queries:\n    errorRate: 'sum(rate(x{s="{{service}}"}[{{window}}]))'\n`),
    want: [
      `${F}:20:16: spec.queries.errorRate: unknown placeholder {{service}}; use {{namespace}}, {{workload}} or {{window}}`,
    ],
  },
];

describe('observation and production problems', () => {
  it.each(rows)('$name', ({ text, want }) => {
    const result = parsePolicy(text, F);
    expect(result.problems.map(formatProblem)).toEqual(want);
    expect(result.policy).toBeUndefined();
  });
});

describe('production query placeholders', () => {
  it('renders the primary service into the override', () => {
    expect(
      checkQueryTemplate(PRODUCTION_QUERY, [
        'namespace',
        'workload',
        'window',
        'service',
        'serviceNamespace',
      ]),
    ).toEqual([]);
    expect(
      renderQuery(PRODUCTION_QUERY, {
        namespace: 'shop',
        workload: 'checkout-shadow',
        windowSeconds: 45,
        service: 'checkout',
        serviceNamespace: 'front',
      }),
    ).toBe(
      'sum(rate(istio_requests_total{reporter="destination",destination_service_namespace="front",destination_service_name="checkout",destination_workload!="checkout-shadow"}[45s]))',
    );
  });

  it('refuses to render {{service}} without a service', () => {
    expect(() =>
      renderQuery('x{s="{{service}}"}', { namespace: 'a', workload: 'b', windowSeconds: 60 }),
    ).toThrow('query template: no value for {{service}}');
  });
});
