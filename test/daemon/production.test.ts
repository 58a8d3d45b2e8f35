import { describe, expect, it } from 'vitest';
import { primaryDestination, serviceOfHost } from '../../src/daemon/production.js';

describe('serviceOfHost', () => {
  const rows = [
    {
      name: 'short name: the VirtualService namespace',
      host: 'checkout',
      want: { namespace: 'shop', name: 'checkout' },
    },
    { name: 'name.namespace', host: 'checkout.web', want: { namespace: 'web', name: 'checkout' } },
    { name: 'name.namespace.svc', host: 'checkout.web.svc', want: { namespace: 'web', name: 'checkout' } },
    {
      name: 'fully qualified',
      host: 'checkout.web.svc.cluster.local',
      want: { namespace: 'web', name: 'checkout' },
    },
    {
      name: 'another cluster domain',
      host: 'checkout.web.svc.corp.internal',
      want: { namespace: 'web', name: 'checkout' },
    },
    {
      name: 'upper case and a trailing dot',
      host: 'Checkout.Web.svc.cluster.local.',
      want: { namespace: 'web', name: 'checkout' },
    },
    { name: 'an external host', host: 'api.example.com', want: undefined },
    { name: 'a wildcard', host: '*', want: undefined },
    { name: 'empty', host: '', want: undefined },
  ] as const;
  it.each(rows)('$name', ({ host, want }) => {
    expect(serviceOfHost(host, 'shop')).toEqual(want);
  });
});

describe('primaryDestination', () => {
  const dest = (host: string, weight?: number) => ({
    destination: { host },
    ...(weight !== undefined && { weight }),
  });
  const rows = [
    { name: 'the only destination, weight unset', route: [dest('checkout')], want: 'checkout' },
    { name: 'the largest weight', route: [dest('a', 10), dest('b', 90)], want: 'b' },
    { name: 'the first on ties', route: [dest('a', 50), dest('b', 50)], want: 'a' },
    { name: 'an unset weight among several counts 0', route: [dest('a'), dest('b', 1)], want: 'b' },
    { name: 'entries without a host are skipped', route: [{ destination: {} }, dest('b', 0)], want: 'b' },
  ] as const;
  it.each(rows)('$name', ({ route, want }) => {
    expect(primaryDestination({ route }, 'shop')).toEqual({ namespace: 'shop', name: want });
  });

  it('no route list, or garbage: unknown', () => {
    expect(primaryDestination({ name: 'x' }, 'shop')).toBeUndefined();
    expect(primaryDestination('nonsense', 'shop')).toBeUndefined();
    expect(primaryDestination({ route: [1, null] }, 'shop')).toBeUndefined();
  });
});
