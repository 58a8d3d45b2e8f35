/** Noticing overrides of the percentage this controller left, and the back-off from a fight. */
import { describe, expect, it } from 'vitest';
import type { ControllerState } from '../../src/core/types.js';
import {
  findOverride,
  noteOverride,
  overrideBackoffSeconds,
  specManager,
} from '../../src/daemon/override.js';
import type { RouteObject } from '../../src/mesh/virtualservice.js';

const T = Date.UTC(2026, 2, 1, 12, 0, 0);

function route(managedFields?: unknown[]): RouteObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: {
      name: 'checkout',
      namespace: 'shop',
      resourceVersion: '9',
      ...(managedFields !== undefined && { managedFields }),
    },
  };
}

const entry = (manager: string, time: string, fields: Record<string, unknown>) => ({
  manager,
  operation: 'Update',
  apiVersion: 'networking.istio.io/v1',
  time,
  fieldsType: 'FieldsV1',
  fieldsV1: fields,
});

const state = (percent: number, at = T): ControllerState =>
  ({ version: 1, at, percent, track: [], recent: [], writesAgo: [] }) as ControllerState;

describe('specManager', () => {
  it('is the newest manager owning spec; annotation-only writers and broken entries do not count', () => {
    const obj = route([
      entry('kubectl-client-side-apply', '2026-03-01T10:00:00Z', { 'f:spec': {} }),
      entry('argocd-controller', '2026-03-01T11:00:00Z', { 'f:spec': {} }),
      entry('mirror-autoscaler', '2026-03-01T11:30:00Z', { 'f:metadata': { 'f:annotations': {} } }),
      { manager: 7 },
      'garbage',
    ]);
    expect(specManager(obj)).toBe('argocd-controller');
    expect(specManager(route())).toBeUndefined();
    expect(specManager(route([entry('x', 't', { 'f:metadata': {} })]))).toBeUndefined();
  });
});

describe('findOverride', () => {
  const argo = route([entry('argocd-controller', '2026-03-01T11:00:00Z', { 'f:spec': {} })]);
  it('is an override when the route shows another percentage, written by someone else', () => {
    expect(findOverride(argo, 10, state(20))).toEqual({ manager: 'argocd-controller', found: 10, ours: 20 });
  });
  it('is none when the percentage is the one left, when there is no state, or when we changed it', () => {
    expect(findOverride(argo, 20, state(20))).toBeUndefined();
    expect(findOverride(argo, 10, undefined)).toBeUndefined();
    const own = route([entry('mirror-autoscaler', '2026-03-01T11:00:00Z', { 'f:spec': {} })]);
    expect(findOverride(own, 10, state(20))).toBeUndefined();
  });
  it('names the manager unknown when managedFields do not say', () => {
    expect(findOverride(route(), 10, state(20))?.manager).toBe('unknown');
  });
});

describe('the back-off', () => {
  it('starts at 5 minutes (two intervals when longer), doubles, and stops at an hour', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => overrideBackoffSeconds(n, 30))).toEqual([
      300, 600, 1200, 2400, 3600, 3600,
    ]);
    expect(overrideBackoffSeconds(1, 300)).toBe(600);
  });

  it('counts an override once per write of ours, in a row within the hour, and forgets after it', () => {
    const o = { manager: 'flux', found: 10, ours: 20 };
    const first = noteOverride(o, state(20, T), undefined, T + 1000, 30);
    expect(first).toMatchObject({ fresh: true, memory: { count: 1, until: T + 1000 + 300_000, stateAt: T } });
    // The same override, seen again: not counted again.
    expect(noteOverride(o, state(20, T), first.memory, T + 60_000, 30)).toEqual({
      memory: first.memory,
      fresh: false,
    });
    // Overridden again after a new write of ours: the second in a row, twice as long.
    const second = noteOverride(o, state(25, T + 400_000), first.memory, T + 430_000, 30);
    expect(second).toMatchObject({ fresh: true, memory: { count: 2, until: T + 430_000 + 600_000 } });
    // An hour later: counted from one again.
    const later = noteOverride(o, state(25, T + 5_000_000), second.memory, T + 430_000 + 3_600_000, 30);
    expect(later.memory.count).toBe(1);
  });
});
