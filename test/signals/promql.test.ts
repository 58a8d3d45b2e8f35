import { describe, expect, it } from 'vitest';
import {
  alternation,
  chunkWorkloads,
  cpuQuery,
  isSafeName,
  latencyQuery,
  podPattern,
  renderOverride,
  trafficQuery,
  windowDuration,
} from '../../src/signals/promql.js';

/** The regexp Prometheus builds from a PromQL string literal (unescape `\\`), anchored as label matchers are. */
function promRegex(literal: string): RegExp {
  return new RegExp(`^(?:${literal.replaceAll('\\\\', '\\')})$`);
}

describe('alternation', () => {
  it('puts longer names first, drops duplicates and escapes dots for the regexp and the PromQL string', () => {
    expect(alternation(['api', 'api-gateway', 'web.v2', 'api'])).toBe('api-gateway|web\\\\.v2|api');
  });
});

describe('podPattern', () => {
  it.each([
    { name: 'Deployment pod', workloads: ['api'], pod: 'api-7d9f8c6b5-x2x4z', expected: 'api' },
    { name: 'StatefulSet pod', workloads: ['db'], pod: 'db-0', expected: 'db' },
    {
      name: 'DaemonSet-style pod of the longer name',
      workloads: ['api', 'api-gateway'],
      pod: 'api-gateway-x2x4z',
      expected: 'api-gateway',
    },
    {
      name: 'Deployment pod of a longer name only',
      workloads: ['api'],
      pod: 'api-gateway-v2-7d9f8c6b5-x2x4z',
      expected: undefined,
    },
    { name: 'dotted workload', workloads: ['web.v2'], pod: 'web.v2-7d9f8c6b5-x2x4z', expected: 'web.v2' },
    { name: 'dot is literal', workloads: ['web.v2'], pod: 'webxv2-7d9f8c6b5-x2x4z', expected: undefined },
    { name: 'workload name alone is not a pod', workloads: ['api'], pod: 'api', expected: undefined },
  ])('maps $name', ({ workloads, pod, expected }) => {
    const m = promRegex(podPattern(workloads)).exec(pod);
    expect(m?.[1]).toBe(expected);
  });
});

describe('isSafeName', () => {
  it.each([
    { name: 'label', value: 'checkout-shadow', safe: true },
    { name: 'subdomain', value: 'web.v2', safe: true },
    { name: 'quote', value: 'a"b', safe: false },
    { name: 'regex alternation', value: 'a|b', safe: false },
    { name: 'upper case', value: 'Checkout', safe: false },
    { name: 'empty', value: '', safe: false },
    { name: 'too long', value: 'a'.repeat(254), safe: false },
  ])('$name', ({ value, safe }) => {
    expect(isSafeName(value)).toBe(safe);
  });
});

describe('windowDuration', () => {
  it.each([
    { name: 'whole seconds', seconds: 120, expected: '120s' },
    { name: 'fraction', seconds: 90.5, expected: '90500ms' },
  ])('$name', ({ seconds, expected }) => {
    expect(windowDuration(seconds)).toBe(expected);
  });
});

describe('chunkWorkloads', () => {
  it('deduplicates, sorts by namespace then workload, and cuts chunks of the given size', () => {
    const refs = [
      { namespace: 'b', workload: 'x' },
      { namespace: 'a', workload: 'z' },
      { namespace: 'a', workload: 'y' },
      { namespace: 'b', workload: 'x' },
      { namespace: 'a', workload: 'w' },
    ];
    expect(chunkWorkloads(refs, 2)).toEqual([
      [
        { namespace: 'a', workload: 'w' },
        { namespace: 'a', workload: 'y' },
      ],
      [
        { namespace: 'a', workload: 'z' },
        { namespace: 'b', workload: 'x' },
      ],
    ]);
  });
});

describe('default queries', () => {
  const refs = [
    { namespace: 'shop', workload: 'checkout-shadow' },
    { namespace: 'pay', workload: 'ledger' },
  ];

  it('select the destination reporter, every workload and the window once per selector', () => {
    const q = trafficQuery(refs, 120);
    expect(q).toContain(
      'reporter="destination",destination_workload_namespace=~"shop|pay",destination_workload=~"checkout-shadow|ledger"',
    );
    expect(q.match(/\[120s\]/g)).toHaveLength(1);
    expect(latencyQuery(refs, 300)).toMatch(
      /^histogram_quantile\(0\.99, sum by \(destination_workload_namespace, destination_workload, le\)/,
    );
  });

  it('leave the pod cgroup, the pause container and the sidecar out of CPU', () => {
    const q = cpuQuery(refs, 120);
    expect(q).toContain('container!="",container!="POD",container!="istio-proxy"');
    expect(q).toContain('resource="cpu",unit="core"');
  });

  it('grow with the number of workloads only through the alternations', () => {
    const many = Array.from({ length: 500 }, (_, i) => ({ namespace: 'ns', workload: `service-${i}` }));
    const perWorkload = (trafficQuery(many, 120).length - trafficQuery(many.slice(0, 1), 120).length) / 499;
    // Each workload name appears twice (rate and freshness selectors), about 11 characters each.
    expect(perWorkload).toBeLessThan(30);
  });
});

describe('renderOverride', () => {
  const vars = { namespace: 'shop', workload: 'checkout-shadow', windowSeconds: 120 };

  it.each([
    {
      name: 'every placeholder, several times, spaces inside braces allowed',
      template:
        'sum(rate(x{ns="{{namespace}}",w="{{ workload }}"}[{{window}}])) / sum(rate(y{ns="{{namespace}}"}[{{window}}]))',
      expected: {
        query: 'sum(rate(x{ns="shop",w="checkout-shadow"}[2m])) / sum(rate(y{ns="shop"}[2m]))',
      },
    },
    { name: 'no placeholder', template: 'vector(1)', expected: { query: 'vector(1)' } },
    {
      name: 'unknown placeholder',
      template: 'x{pod="{{pod}}"}',
      expected: { error: 'query template: unknown placeholder {{pod}}' },
    },
  ])('$name', ({ template, expected }) => {
    expect(renderOverride(template, vars)).toEqual(expected);
  });
});
