import { describe, expect, it } from 'vitest';
import { MeshError } from '../../src/mesh/errors.js';
import {
  MAX_STATE_BYTES,
  readStateAnnotation,
  stateAnnotation,
  stateAnnotationKey,
} from '../../src/mesh/state.js';
import { asVirtualService, type VirtualService } from '../../src/mesh/virtualservice.js';
import { MIRROR_SHAPE_ROUTES, virtualService } from '../support/kube-fixtures.js';

function vsWith(annotations?: Record<string, string>): VirtualService {
  const vs = asVirtualService(
    virtualService({
      http: [MIRROR_SHAPE_ROUTES.implicit],
      resourceVersion: '3',
      ...(annotations === undefined ? {} : { annotations }),
    }),
  );
  if (vs instanceof MeshError) throw vs;
  return vs;
}

describe('state annotations', () => {
  it('round-trips a state value through the annotation', () => {
    const state = { breachPercent: 42.5, lastDecreaseAt: 1_764_140_000_000, history: [1, 2, 3] };
    const annotations = stateAnnotation('checkout-shadow', state);
    expect(Object.keys(annotations)).toEqual(['state.mirror-autoscaler.io/checkout-shadow']);
    expect(readStateAnnotation(vsWith(annotations), 'checkout-shadow')).toEqual({
      found: true,
      value: state,
    });
  });

  it('keeps the states of two policies apart', () => {
    const vs = vsWith({ ...stateAnnotation('a', { n: 1 }), ...stateAnnotation('b', { n: 2 }) });
    expect(readStateAnnotation(vs, 'a')).toEqual({ found: true, value: { n: 1 } });
    expect(readStateAnnotation(vs, 'b')).toEqual({ found: true, value: { n: 2 } });
    expect(readStateAnnotation(vs, 'c')).toEqual({ found: false });
  });

  it('reports an annotation that is not JSON', () => {
    const result = readStateAnnotation(vsWith({ 'state.mirror-autoscaler.io/a': '{broken' }), 'a');
    expect(result).toBeInstanceOf(MeshError);
    expect((result as MeshError).code).toBe('InvalidState');
    expect((result as MeshError).message).toMatch(
      /^VirtualService shop\/checkout: annotation state\.mirror-autoscaler\.io\/a: not valid JSON \(.+\); got "\{broken"$/,
    );
  });

  const names: { name: string; policy: string; ok: boolean }[] = [
    { name: 'dns label', policy: 'checkout-shadow', ok: true },
    { name: 'dots and underscores inside', policy: 'a.b_c', ok: true },
    { name: '63 characters', policy: 'a'.repeat(63), ok: true },
    { name: '64 characters', policy: 'a'.repeat(64), ok: false },
    { name: 'slash', policy: 'a/b', ok: false },
    { name: 'leading dash', policy: '-a', ok: false },
    { name: 'empty', policy: '', ok: false },
  ];
  for (const row of names) {
    it(`policy name: ${row.name}`, () => {
      if (row.ok) expect(stateAnnotationKey(row.policy)).toBe(`state.mirror-autoscaler.io/${row.policy}`);
      else expect(() => stateAnnotationKey(row.policy)).toThrow(/cannot be used in annotation key/);
    });
  }

  it('refuses state larger than the limit', () => {
    expect(() => stateAnnotation('a', 'x'.repeat(MAX_STATE_BYTES))).toThrow(
      `annotation state.mirror-autoscaler.io/a: state is ${MAX_STATE_BYTES + 2} bytes, more than ${MAX_STATE_BYTES}`,
    );
  });

  it('refuses state that is not JSON-serialisable', () => {
    expect(() => stateAnnotation('a', undefined)).toThrow('state is not JSON-serialisable');
  });
});
