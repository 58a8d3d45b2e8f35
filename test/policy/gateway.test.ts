/** Policies for Gateway API routes: spec.httpRoute / spec.grpcRoute, target.backendRef, and their messages. */
import { describe, expect, it } from 'vitest';
import { formatProblem, parsePolicy } from '../../src/policy/parse.js';
import { BASE, edit } from './fixtures.js';

const F = 'policies/web.yaml';
const RULE =
  'must be a rule name (a DNS-1123 subdomain: dot-separated lowercase labels of letters, digits and "-") or the rule\'s index (an integer >= 0)';
const HOST_FOR_VS =
  'is for spec.virtualService; a spec.httpRoute policy names its mirror target with spec.target.backendRef (the Service in the RequestMirror filter)';

/** BASE turned into an HTTPRoute policy: spec.httpRoute and target.backendRef. */
const GW: [string, string][] = [
  ['  virtualService:\n', '  httpRoute:\n'],
  ['    host: checkout-shadow\n', '    backendRef:\n      name: checkout-shadow\n'],
];
const withRule = (rule: string): [string, string] => [
  '    namespace: shop\n',
  `    namespace: shop\n    rule: ${rule}\n`,
];

describe('Gateway API policies: valid documents', () => {
  it('an HTTPRoute policy names the route, the rule by name, and the backend', () => {
    const { policy, problems } = parsePolicy(edit([...GW, withRule('reads')]), F);
    expect(problems).toEqual([]);
    expect(policy?.route).toEqual({ kind: 'HTTPRoute', name: 'checkout', namespace: 'shop', rule: 'reads' });
    expect(policy?.target).toEqual({
      backend: { name: 'checkout-shadow' },
      workload: 'checkout-shadow',
      namespace: 'shop',
    });
  });

  it('a rule by index is a number; a GRPCRoute backend in another namespace sets the workload namespace', () => {
    const text = edit([
      ['  virtualService:\n', '  grpcRoute:\n'],
      ['    namespace: shop\n', '    namespace: shop\n    rule: 2\n'],
      [
        '    host: checkout-shadow\n',
        '    backendRef:\n      name: checkout-shadow\n      namespace: shadow\n      port: 9000\n',
      ],
    ]);
    const { policy, problems } = parsePolicy(text, F);
    expect(problems).toEqual([]);
    expect(policy?.route).toEqual({ kind: 'GRPCRoute', name: 'checkout', namespace: 'shop', rule: 2 });
    expect(policy?.target).toEqual({
      backend: { name: 'checkout-shadow', namespace: 'shadow', port: 9000 },
      workload: 'checkout-shadow',
      namespace: 'shadow',
    });
  });

  it('a VirtualService policy is read as before, its route as the rule', () => {
    const { policy } = parsePolicy(edit([withRule('x')].map(([a, b]) => [a, b.replace('rule', 'route')])), F);
    expect(policy?.route).toEqual({ kind: 'VirtualService', name: 'checkout', namespace: 'shop', rule: 'x' });
    expect(policy?.target.host).toBe('checkout-shadow');
  });
});

describe('Gateway API policies: problems name file, line, field and value', () => {
  const rows: { name: string; text: string; want: string[] }[] = [
    {
      name: 'no route at all',
      text: edit([['  virtualService:\n    name: checkout\n    namespace: shop\n', '']]),
      want: [`${F}:6:3: spec: must set exactly one of virtualService, httpRoute, grpcRoute`],
    },
    {
      name: 'two routes',
      text: edit([
        ...GW.slice(1),
        ['  target:\n', '  httpRoute:\n    name: checkout\n    namespace: shop\n  target:\n'],
      ]),
      want: [
        `${F}:9:3: spec.httpRoute: set only one of virtualService, httpRoute, grpcRoute (got virtualService and httpRoute)`,
      ],
    },
    {
      name: 'a rule name that is no SectionName',
      text: edit([...GW, withRule('Reads')]),
      want: [`${F}:9:11: spec.httpRoute.rule: ${RULE} (got "Reads")`],
    },
    {
      name: 'a negative rule index',
      text: edit([...GW, withRule('-1')]),
      want: [`${F}:9:11: spec.httpRoute.rule: ${RULE} (got -1)`],
    },
    {
      name: 'a fractional rule index',
      text: edit([...GW, withRule('1.5')]),
      want: [`${F}:9:11: spec.httpRoute.rule: ${RULE} (got 1.5)`],
    },
    {
      name: 'a boolean rule',
      text: edit([...GW, withRule('true')]),
      want: [`${F}:9:11: spec.httpRoute.rule: ${RULE} (got true)`],
    },
    {
      name: "the VirtualService's route key on an HTTPRoute",
      text: edit([...GW, ['    namespace: shop\n', '    namespace: shop\n    route: primary\n']]),
      want: [`${F}:9:5: spec.httpRoute.route: unknown field (did you mean rule?)`],
    },
    {
      name: 'a host on an HTTPRoute policy',
      text: edit([GW[0] as [string, string]]),
      want: [`${F}:10:11: spec.target.host: ${HOST_FOR_VS}`],
    },
    {
      name: 'a subset on an HTTPRoute policy',
      text: edit([
        ...GW,
        ['    workload: checkout-shadow\n', '    workload: checkout-shadow\n    subset: shadow\n'],
      ]),
      want: [`${F}:13:13: spec.target.subset: ${HOST_FOR_VS}`],
    },
    {
      name: 'a backendRef on a VirtualService policy',
      text: edit([GW[1] as [string, string]]),
      want: [
        `${F}:11:7: spec.target.backendRef: is for spec.httpRoute and spec.grpcRoute; a spec.virtualService policy names its mirror target with spec.target.host`,
      ],
    },
    {
      name: 'a backendRef without a name',
      text: edit([
        GW[0] as [string, string],
        ['    host: checkout-shadow\n', '    backendRef:\n      port: 80\n'],
      ]),
      want: [`${F}:11:7: spec.target.backendRef.name: is required`],
    },
    {
      name: 'neither host nor backendRef',
      text: edit([GW[0] as [string, string], ['    host: checkout-shadow\n', '']]),
      want: [`${F}:10:5: spec.target: must set exactly one of host, backendRef`],
    },
    {
      name: 'a port out of range',
      text: edit([
        ...GW,
        ['      name: checkout-shadow\n', '      name: checkout-shadow\n      port: 70000\n'],
      ]),
      want: [`${F}:12:13: spec.target.backendRef.port: must be <= 65535 (got 70000)`],
    },
  ];
  it.each(rows)('$name', ({ text, want }) => {
    expect(text).not.toBe(BASE);
    const result = parsePolicy(text, F);
    expect(result.problems.map(formatProblem)).toEqual(want);
    expect(result.policy).toBeUndefined();
  });
});
