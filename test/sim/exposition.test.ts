import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { podPattern } from '../../src/signals/promql.js';
import {
  accumulateByCode,
  type CodeCounters,
  type ExpositionNames,
  emptyCodeCounters,
  formatValue,
  labelText,
  renderExposition,
} from '../../src/sim/exposition.js';
import { ISTIO_DURATION_BUCKETS_MS } from '../../src/sim/plant.js';

const NAMES: ExpositionNames = {
  namespace: 'shop',
  targetWorkload: 'checkout-shadow',
  targetService: 'checkout-shadow',
  primaryService: 'checkout',
  primaryWorkload: 'checkout',
  sourceWorkload: 'frontend',
  pods: ['checkout-shadow-7d9fcb6b4-x2k4q', 'checkout-shadow-7d9fcb6b4-m8zpt'],
};

const N = ISTIO_DURATION_BUCKETS_MS.length + 1;

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

/** A small parser of the text format, enough for what renderExposition writes. */
function parse(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] as string).matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const v = m[3] as string;
    samples.push({
      name: m[1] as string,
      labels,
      value: v === '+Inf' ? Number.POSITIVE_INFINITY : Number(v),
    });
  }
  return { samples, types };
}

const select = (samples: Sample[], name: string, match: Record<string, string | RegExp | { not: string }>) =>
  samples.filter(
    (s) =>
      s.name === name &&
      Object.entries(match).every(([k, want]) => {
        const v = s.labels[k] ?? '';
        if (typeof want === 'string') return v === want;
        if (want instanceof RegExp) return want.test(v);
        return v !== want.not;
      }),
  );

function counters(requests: number, errors: number): CodeCounters {
  // Half the requests at or below 50 ms, all at or below 250 ms.
  const bucket = (total: number) =>
    ISTIO_DURATION_BUCKETS_MS.map((le) => (le < 50 ? 0 : le < 250 ? total / 2 : total)).concat(total);
  return {
    requests: { ok: requests - errors, failed: errors },
    buckets: { ok: bucket(requests - errors), failed: bucket(errors) },
  };
}

const snapshot = (target: CodeCounters) => ({
  target,
  cpuSeconds: 12,
  cpuRequestCores: 1,
  uptimeSeconds: 100,
  productionRequests: 5000,
});

describe('renderExposition', () => {
  it('exports the target, production and CPU series under the labels the default queries select', () => {
    const { samples, types } = parse(renderExposition(NAMES, snapshot(counters(1000, 10))));
    expect(types.get('istio_requests_total')).toBe('counter');
    expect(types.get('istio_request_duration_milliseconds')).toBe('histogram');
    expect(types.get('container_cpu_usage_seconds_total')).toBe('counter');
    expect(types.get('kube_pod_container_resource_requests')).toBe('gauge');

    // The target's traffic and errors (trafficQuery's selector).
    const target = {
      reporter: 'destination',
      destination_workload_namespace: 'shop',
      destination_workload: 'checkout-shadow',
    };
    const req = select(samples, 'istio_requests_total', target);
    expect(req.map((s) => [s.labels.response_code, s.value])).toEqual([
      ['200', 990],
      ['503', 10],
    ]);
    expect(req.every((s) => s.labels.destination_service_name === 'checkout-shadow')).toBe(true);

    // Production as the primary's sidecar reports it (productionQuery's selector), once.
    const prod = select(samples, 'istio_requests_total', {
      reporter: 'destination',
      destination_service_namespace: 'shop',
      destination_service_name: 'checkout',
      destination_workload: { not: 'checkout-shadow' },
    });
    expect(prod.map((s) => s.value)).toEqual([5000]);
    // The caller's report of the same requests exists, and a reporter="destination" query leaves it out.
    expect(select(samples, 'istio_requests_total', { reporter: 'source' }).map((s) => s.value)).toEqual([
      5000,
    ]);

    // The histogram: cumulative, +Inf equal to _count, per code.
    for (const code of ['200', '503']) {
      const buckets = select(samples, 'istio_request_duration_milliseconds_bucket', {
        ...target,
        response_code: code,
      });
      expect(buckets).toHaveLength(N);
      const values = buckets.map((b) => b.value);
      expect(values).toEqual([...values].sort((a, b) => a - b));
      expect(buckets[N - 1]?.labels.le).toBe('+Inf');
      const count = select(samples, 'istio_request_duration_milliseconds_count', {
        ...target,
        response_code: code,
      });
      expect(count.map((c) => c.value)).toEqual([values[N - 1]]);
    }

    // CPU (cpuQuery's selectors): the app containers of pods the pod pattern maps to the workload.
    const pods = new RegExp(`^${podPattern(['checkout-shadow'])}$`);
    const usage = select(samples, 'container_cpu_usage_seconds_total', {
      namespace: 'shop',
      pod: pods,
    }).filter((s) => !['', 'POD', 'istio-proxy'].includes(s.labels.container ?? ''));
    expect(usage.map((s) => s.labels.container)).toEqual(['app', 'app']);
    expect(usage.reduce((a, s) => a + s.value, 0)).toBeCloseTo(12, 12);
    const requests = select(samples, 'kube_pod_container_resource_requests', {
      namespace: 'shop',
      pod: pods,
      resource: 'cpu',
      unit: 'core',
      container: { not: 'istio-proxy' },
    });
    expect(requests.reduce((a, s) => a + s.value, 0)).toBeCloseTo(1, 12);
    // The pod cgroup is the sum of its containers, so a query that forgot container!="" would double count.
    const cgroup = select(samples, 'container_cpu_usage_seconds_total', { container: '' });
    expect(cgroup).toHaveLength(2);
    expect(cgroup[0]?.value).toBeGreaterThan(usage[0]?.value ?? 0);
  });

  it('has no 503 series before the first failed request, as Istio does', () => {
    const { samples } = parse(renderExposition(NAMES, snapshot(counters(1000, 0))));
    expect(samples.filter((s) => s.labels.response_code === '503')).toEqual([]);
    expect(
      select(samples, 'istio_request_duration_milliseconds_count', {
        destination_workload: 'checkout-shadow',
      }),
    ).toHaveLength(1);
  });

  it('escapes label values and spells special values as the format does', () => {
    expect(labelText({ a: 'x"y\\z\nw' })).toBe('a="x\\"y\\\\z\\nw"');
    expect(formatValue(Number.POSITIVE_INFINITY)).toBe('+Inf');
    expect(formatValue(Number.NaN)).toBe('NaN');
    expect(formatValue(0.1 + 0.2)).toBe('0.30000000000000004');
  });
});

describe('accumulateByCode', () => {
  it('keeps every series non-decreasing and the codes adding up to the plant totals', () => {
    const step = fc.record({
      requests: fc.double({ min: 0, max: 1000, noNaN: true }),
      errorShare: fc.double({ min: 0, max: 1, noNaN: true }),
      slowShare: fc.double({ min: 0, max: 1, noNaN: true }),
    });
    fc.assert(
      fc.property(fc.array(step, { minLength: 1, maxLength: 20 }), (steps) => {
        let split = emptyCodeCounters();
        let plant = { requests: 0, errors: 0, latencyBuckets: new Float64Array(N) };
        for (const s of steps) {
          const buckets = Float64Array.from(plant.latencyBuckets, (v, i) =>
            i < 6 ? v + s.requests * (1 - s.slowShare) : v + s.requests,
          );
          const next = {
            requests: plant.requests + s.requests,
            errors: plant.errors + s.requests * s.errorShare,
            latencyBuckets: buckets,
          };
          const after = accumulateByCode(split, plant, next);
          expect(after.requests.ok).toBeGreaterThanOrEqual(split.requests.ok - 1e-9);
          expect(after.requests.failed).toBeGreaterThanOrEqual(split.requests.failed - 1e-9);
          for (let i = 0; i < N; i++) {
            expect(after.buckets.ok[i] ?? 0).toBeGreaterThanOrEqual((split.buckets.ok[i] ?? 0) - 1e-9);
            expect(after.buckets.failed[i] ?? 0).toBeGreaterThanOrEqual(
              (split.buckets.failed[i] ?? 0) - 1e-9,
            );
          }
          split = after;
          plant = next;
        }
        const scale = Math.max(1, plant.requests);
        expect(Math.abs(split.requests.ok + split.requests.failed - plant.requests) / scale).toBeLessThan(
          1e-9,
        );
        expect(Math.abs(split.requests.failed - plant.errors) / scale).toBeLessThan(1e-9);
        for (let i = 0; i < N; i++) {
          const sum = (split.buckets.ok[i] ?? 0) + (split.buckets.failed[i] ?? 0);
          expect(Math.abs(sum - (plant.latencyBuckets[i] ?? 0)) / scale).toBeLessThan(1e-9);
        }
      }),
    );
  });
});
