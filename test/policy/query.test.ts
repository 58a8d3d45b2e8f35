import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkQueryTemplate, renderQuery } from '../../src/policy/query.js';

describe('checkQueryTemplate', () => {
  const rows = [
    { name: 'plain metric', query: 'up', want: [] },
    {
      name: 'all placeholders, spaces inside braces allowed',
      query:
        'sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",destination_workload="{{workload}}",response_code=~"5.."}[{{window}}]))',
      want: [],
    },
    {
      name: 'histogram quantile',
      query:
        'histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket{destination_workload="{{workload}}"}[{{window}}])))',
      want: [],
    },
    { name: 'empty', query: '', want: [{ offset: 0, message: 'must not be empty' }] },
    { name: 'blank', query: '  \n', want: [{ offset: 0, message: 'must not be empty' }] },
    {
      name: 'too long',
      query: `up${' '.repeat(10_000)}`,
      want: [{ offset: 0, message: 'must be at most 10000 characters (got 10002)' }],
    },
    {
      name: 'unknown placeholder',
      query: 'up{job="{{job}}"}',
      want: [
        { offset: 8, message: 'unknown placeholder {{job}}; use {{namespace}}, {{workload}} or {{window}}' },
      ],
    },
    {
      name: 'unclosed paren',
      query: 'sum(rate(x[5m])',
      want: [
        { offset: 15, message: 'is not valid PromQL: syntax error at character 16, at the end of the query' },
      ],
    },
    {
      name: 'unknown function',
      query: 'nosuch(x)',
      want: [{ offset: 6, message: 'is not valid PromQL: syntax error at character 7, near "(x)"' }],
    },
    {
      name: 'error after a placeholder maps back to the template',
      query: 'rate(x[{{window}}]) ) ',
      want: [{ offset: 20, message: 'is not valid PromQL: syntax error at character 21, near ")"' }],
    },
    {
      name: 'unknown placeholder and syntax error both reported',
      query: 'up{a="{{b}}"} +',
      want: [
        { offset: 6, message: 'unknown placeholder {{b}}; use {{namespace}}, {{workload}} or {{window}}' },
        { offset: 15, message: 'is not valid PromQL: syntax error at character 16, at the end of the query' },
      ],
    },
  ];
  it.each(rows)('$name', ({ query, want }) => {
    expect(checkQueryTemplate(query)).toEqual(want);
  });
});

describe('renderQuery', () => {
  const rows = [
    {
      name: 'fills every placeholder',
      template: 'x{ns="{{namespace}}",w="{{ workload }}"}[{{window}}]',
      want: 'x{ns="shop",w="checkout-shadow"}[1m30s]',
    },
    {
      name: 'repeated placeholders',
      template: '{{workload}}-{{workload}}',
      want: 'checkout-shadow-checkout-shadow',
    },
    { name: 'no placeholders', template: 'up', want: 'up' },
  ];
  it.each(rows)('$name', ({ template, want }) => {
    expect(renderQuery(template, { namespace: 'shop', workload: 'checkout-shadow', windowSeconds: 90 })).toBe(
      want,
    );
  });

  it('refuses an unknown placeholder', () => {
    expect(() => renderQuery('{{job}}', { namespace: 'a', workload: 'b', windowSeconds: 60 })).toThrow(
      'query template: unknown placeholder {{job}}',
    );
  });

  it('a checked template rendered with any DNS-1123 names still parses', () => {
    const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?$/);
    const template =
      'sum(rate(istio_requests_total{destination_workload_namespace="{{namespace}}",destination_workload=~"{{workload}}-.*"}[{{window}}]))';
    expect(checkQueryTemplate(template)).toEqual([]);
    fc.assert(
      fc.property(label, label, fc.integer({ min: 1, max: 86400 }), (namespace, workload, windowSeconds) => {
        const rendered = renderQuery(template, { namespace, workload, windowSeconds });
        expect(rendered).not.toContain('{{');
        expect(checkQueryTemplate(rendered)).toEqual([]);
      }),
    );
  });
});
