import { describe, expect, it } from 'vitest';
import type { MirrorPolicy } from '../../src/policy/types.js';
import { type ClassifyContext, classifyWorkload } from '../../src/signals/classify.js';
import {
  cpuQuery,
  latencyQuery,
  PRESET_METRICS,
  productionBatchQuery,
  productionQuery,
  scrapeIntervalQuery,
  signalOrigin,
  trafficQuery,
} from '../../src/signals/index.js';

const refs = [
  { namespace: 'shop', workload: 'checkout-shadow' },
  { namespace: 'pay', workload: 'ledger' },
];
const checkout = { namespace: 'shop', name: 'checkout' };

describe('signalOrigin', () => {
  const rows = [
    { name: 'absent preset is istio', from: undefined, want: { preset: 'istio', reporter: 'destination' } },
    { name: 'istio', from: 'istio', want: { preset: 'istio', reporter: 'destination' } },
    { name: 'istio-ambient', from: 'istio-ambient', want: { preset: 'istio-ambient', reporter: 'waypoint' } },
    { name: 'otel has no reporter', from: 'otel', want: { preset: 'otel' } },
  ] as const;
  for (const row of rows) {
    it(row.name, () => {
      expect(signalOrigin(row.from)).toEqual(row.want);
    });
  }

  it('reads a policy', () => {
    const policy = { signalPreset: 'istio-ambient' } as Pick<MirrorPolicy, 'signalPreset'>;
    expect(signalOrigin(policy)).toEqual({ preset: 'istio-ambient', reporter: 'waypoint' });
    expect(signalOrigin({})).toEqual({ preset: 'istio', reporter: 'destination' });
  });
});

describe('istio preset (default)', () => {
  it('is what the builders produce without a preset', () => {
    expect(trafficQuery(refs, 120, PRESET_METRICS.istio)).toBe(trafficQuery(refs, 120));
    expect(latencyQuery(refs, 120, PRESET_METRICS.istio)).toBe(latencyQuery(refs, 120));
    expect(productionBatchQuery([checkout], 45, PRESET_METRICS.istio)).toBe(
      productionBatchQuery([checkout], 45),
    );
  });
});

describe('istio-ambient preset', () => {
  const m = PRESET_METRICS['istio-ambient'];
  const sel =
    'reporter="waypoint",destination_workload_namespace=~"shop|pay",destination_workload=~"checkout-shadow|ledger"';

  it('reads waypoint series, and asks which namespaces have any', () => {
    expect(trafficQuery(refs, 120, m)).toBe(
      `sum by (destination_workload_namespace, destination_workload, mirror_autoscaler_part) (label_replace(rate(istio_requests_total{${sel}}[120s]), "mirror_autoscaler_part", "5xx", "response_code", "5..")) or ` +
        `label_replace(max by (destination_workload_namespace, destination_workload) (timestamp(istio_requests_total{${sel}})), "mirror_autoscaler_part", "timestamp", "", "") or ` +
        'label_replace(group by (destination_workload_namespace) (istio_requests_total{reporter="waypoint",destination_workload_namespace=~"shop|pay"}), "mirror_autoscaler_part", "namespace", "", "")',
    );
  });

  it('p99 from the waypoint histogram in milliseconds', () => {
    expect(latencyQuery(refs, 120, m)).toBe(
      `histogram_quantile(0.99, sum by (destination_workload_namespace, destination_workload, le) (rate(istio_request_duration_milliseconds_bucket{${sel}}[120s])))`,
    );
  });

  it('production rate from the waypoint, without the mirror target', () => {
    expect(productionQuery(checkout, 'checkout-shadow', 45, m)).toBe(
      'sum(rate(istio_requests_total{reporter="waypoint",destination_service_namespace="shop",destination_service_name="checkout",destination_workload!="checkout-shadow"}[45s]))',
    );
    expect(productionBatchQuery([checkout], 45, m)).toBe(
      'sum by (destination_service_namespace, destination_service_name, destination_workload) (rate(istio_requests_total{reporter="waypoint",destination_service_namespace=~"shop",destination_service_name=~"checkout"}[45s]))',
    );
  });

  it('never reads ztunnel or sidecar series', () => {
    for (const q of [
      trafficQuery(refs, 120, m),
      latencyQuery(refs, 120, m),
      scrapeIntervalQuery(refs, 900, m),
    ]) {
      expect(q).not.toContain('istio_tcp_');
      expect(q).not.toContain('reporter="destination"');
    }
  });
});

describe('otel preset', () => {
  const m = PRESET_METRICS.otel;
  const sel = 'k8s_namespace_name=~"shop|pay",k8s_deployment_name=~"checkout-shadow|ledger"';

  it('counts requests and 5xx from the histogram count, by http_response_status_code', () => {
    expect(trafficQuery(refs, 120, m)).toBe(
      `sum by (k8s_namespace_name, k8s_deployment_name, mirror_autoscaler_part) (label_replace(rate(http_server_request_duration_seconds_count{${sel}}[120s]), "mirror_autoscaler_part", "5xx", "http_response_status_code", "5..")) or ` +
        `label_replace(max by (k8s_namespace_name, k8s_deployment_name) (timestamp(http_server_request_duration_seconds_count{${sel}})), "mirror_autoscaler_part", "timestamp", "", "")`,
    );
  });

  it('p99 over the seconds buckets, scaled to milliseconds', () => {
    expect(latencyQuery(refs, 120, m)).toBe(
      `histogram_quantile(0.99, sum by (k8s_namespace_name, k8s_deployment_name, le) (rate(http_server_request_duration_seconds_bucket{${sel}}[120s]))) * 1000`,
    );
  });

  it("production rate from the primary Deployment's own count, nothing to exclude", () => {
    expect(productionQuery(checkout, 'checkout-shadow', 45, m)).toBe(
      'sum(rate(http_server_request_duration_seconds_count{k8s_namespace_name="shop",k8s_deployment_name="checkout"}[45s]))',
    );
    expect(productionBatchQuery([checkout], 45, m)).toBe(
      'sum by (k8s_namespace_name, k8s_deployment_name) (rate(http_server_request_duration_seconds_count{k8s_namespace_name=~"shop",k8s_deployment_name=~"checkout"}[45s]))',
    );
  });

  it('learns the scrape interval from the request count', () => {
    const q = scrapeIntervalQuery(refs, 900, m);
    expect(q).toContain(`http_server_request_duration_seconds_count{${sel}}`);
    expect(q).toContain('min by (k8s_namespace_name, k8s_deployment_name)');
    expect(q).not.toContain('istio_request');
  });

  it('has no reporter and no Istio metric', () => {
    for (const q of [trafficQuery(refs, 120, m), latencyQuery(refs, 120, m)]) {
      expect(q).not.toContain('reporter=');
      expect(q).not.toContain('istio_');
    }
  });
});

describe('CPU is the same for every preset', () => {
  it('reads cAdvisor and kube-state-metrics', () => {
    const q = cpuQuery(refs, 120);
    expect(q).toContain('container_cpu_usage_seconds_total');
    expect(q).toContain('kube_pod_container_resource_requests');
  });
});

describe('classification under istio-ambient', () => {
  const ctx: ClassifyContext = {
    ref: { namespace: 'shop', workload: 'checkout-shadow' },
    windowSeconds: 120,
    atSeconds: 1_000_000,
    staleAfterSeconds: 120,
    metrics: PRESET_METRICS['istio-ambient'],
  };
  const podsScraped = {
    ok: true,
    value: { newestSampleSeconds: 999_990, usageCores: 0.1, requestCores: 1 },
  } as const;
  const noPods = { ok: true, value: undefined } as const;
  const noTraffic = { ok: true, value: undefined } as const;

  const rows = [
    {
      name: 'no waypoint series in the namespace, pods unseen',
      cpu: noPods,
      namespaceHasSeries: false,
      want: {
        kind: 'absent',
        reason: 'NoSeries',
        detail:
          'no istio_requests_total series with reporter="waypoint" in namespace shop: is a waypoint deployed and the namespace (or service) enrolled with istio.io/use-waypoint? (target shop/checkout-shadow)',
      },
    },
    {
      name: 'no waypoint series in the namespace, pods scraped',
      cpu: podsScraped,
      namespaceHasSeries: false,
      want: {
        kind: 'absent',
        reason: 'NoTraffic',
        detail:
          'no istio_requests_total series with reporter="waypoint" in namespace shop: is a waypoint deployed and the namespace (or service) enrolled with istio.io/use-waypoint? (target shop/checkout-shadow); its pods are scraped, so if it is enrolled it received no requests',
      },
    },
    {
      name: 'waypoint series in the namespace but none for the workload',
      cpu: noPods,
      namespaceHasSeries: true,
      want: {
        kind: 'absent',
        reason: 'NoSeries',
        detail:
          'no istio_requests_total series with reporter="waypoint" for shop/checkout-shadow, though namespace shop has some (is its service enrolled with istio.io/use-waypoint?)',
      },
    },
  ] as const;
  for (const row of rows) {
    it(row.name, () => {
      const out = classifyWorkload(
        { traffic: noTraffic, cpu: row.cpu, namespaceHasSeries: row.namespaceHasSeries },
        ctx,
      );
      expect(out.errorRate).toEqual(row.want);
      expect(out.requestRate).toEqual(row.want);
    });
  }
});
