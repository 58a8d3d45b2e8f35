/**
 * VirtualService fixtures: one builder and one route per mirror shape Istio accepts, for the mesh tests,
 * the fake API server tests and end-to-end tests alike.
 */
import type { JsonObject } from './fake-apiserver.js';

export interface VirtualServiceInit {
  readonly namespace?: string;
  readonly name?: string;
  readonly http: readonly JsonObject[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly labels?: Readonly<Record<string, string>>;
  readonly hosts?: readonly string[];
  /** Set to emulate an object read back from the API server. */
  readonly resourceVersion?: string;
}

/** A VirtualService with the given HTTP routes (networking.istio.io/v1). */
export function virtualService(init: VirtualServiceInit): JsonObject {
  return {
    apiVersion: 'networking.istio.io/v1',
    kind: 'VirtualService',
    metadata: {
      name: init.name ?? 'checkout',
      namespace: init.namespace ?? 'shop',
      ...(init.resourceVersion === undefined ? {} : { resourceVersion: init.resourceVersion }),
      ...(init.labels === undefined ? {} : { labels: { ...init.labels } }),
      ...(init.annotations === undefined ? {} : { annotations: { ...init.annotations } }),
    },
    spec: {
      hosts: [...(init.hosts ?? ['checkout'])],
      gateways: ['mesh'],
      http: init.http.map((r) => structuredClone(r)),
    },
  };
}

/** The primary destination every fixture route sends real traffic to. */
export const PRIMARY_ROUTE: JsonObject = {
  route: [{ destination: { host: 'checkout', subset: 'stable', port: { number: 8080 } }, weight: 100 }],
  timeout: '5s',
  retries: { attempts: 2, perTryTimeout: '2s' },
};

/** A route of each mirror shape, mirroring to `checkout-shadow` (subset `shadow`). */
export const MIRROR_SHAPE_ROUTES = {
  mirrorPercentage: {
    name: 'primary',
    ...PRIMARY_ROUTE,
    mirror: { host: 'checkout-shadow', subset: 'shadow' },
    mirrorPercentage: { value: 37.5 },
  },
  mirrorPercent: {
    name: 'primary',
    ...PRIMARY_ROUTE,
    mirror: { host: 'checkout-shadow', subset: 'shadow' },
    mirrorPercent: 20,
  },
  mirror_percent: {
    name: 'primary',
    ...PRIMARY_ROUTE,
    mirror: { host: 'checkout-shadow', subset: 'shadow' },
    mirror_percent: 30,
  },
  implicit: {
    name: 'primary',
    ...PRIMARY_ROUTE,
    mirror: { host: 'checkout-shadow', subset: 'shadow' },
  },
  mirrors: {
    name: 'primary',
    ...PRIMARY_ROUTE,
    mirrors: [
      { destination: { host: 'audit-sink' }, percentage: { value: 5 } },
      {
        destination: { host: 'checkout-shadow', subset: 'shadow', port: { number: 8080 } },
        percentage: { value: 12 },
      },
    ],
  },
  mirrorsImplicit: {
    name: 'primary',
    ...PRIMARY_ROUTE,
    mirrors: [{ destination: { host: 'checkout-shadow', subset: 'shadow' } }],
  },
} satisfies Record<string, JsonObject>;

export type MirrorShapeFixture = keyof typeof MIRROR_SHAPE_ROUTES;

export interface GatewayRouteInit {
  readonly kind?: 'HTTPRoute' | 'GRPCRoute';
  readonly namespace?: string;
  readonly name?: string;
  readonly rules: readonly JsonObject[];
  readonly annotations?: Readonly<Record<string, string>>;
  readonly ownerReferences?: readonly JsonObject[];
  /** Set to emulate an object read back from the API server. */
  readonly resourceVersion?: string;
}

/** An HTTPRoute (or GRPCRoute) attached to the mesh's `checkout` Service, with the given rules. */
export function gatewayRoute(init: GatewayRouteInit): JsonObject {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: init.kind ?? 'HTTPRoute',
    metadata: {
      name: init.name ?? 'checkout',
      namespace: init.namespace ?? 'shop',
      ...(init.resourceVersion === undefined ? {} : { resourceVersion: init.resourceVersion }),
      ...(init.annotations === undefined ? {} : { annotations: { ...init.annotations } }),
      ...(init.ownerReferences === undefined
        ? {}
        : { ownerReferences: init.ownerReferences.map((r) => ({ ...r })) }),
    },
    spec: {
      parentRefs: [{ group: '', kind: 'Service', name: 'checkout', port: 8080 }],
      rules: init.rules.map((r) => structuredClone(r)),
    },
  };
}

/**
 * A RequestMirror filter to Service `name` (port 8080), with `percent`, `fraction` or neither; `extra`
 * is merged into requestMirror (to build shapes the API would reject).
 */
export function mirrorFilter(
  name: string,
  pct: {
    percent?: number;
    fraction?: JsonObject;
    namespace?: string;
    port?: number;
    extra?: JsonObject;
  } = {},
): JsonObject {
  return {
    type: 'RequestMirror',
    requestMirror: {
      backendRef: {
        name,
        ...(pct.namespace === undefined ? {} : { namespace: pct.namespace }),
        port: pct.port ?? 8080,
      },
      ...(pct.percent === undefined ? {} : { percent: pct.percent }),
      ...(pct.fraction === undefined ? {} : { fraction: pct.fraction }),
      ...pct.extra,
    },
  };
}

/** A rule sending all traffic to `checkout:8080`, with the given filters. */
export function gatewayRule(filters: readonly JsonObject[], over: JsonObject = {}): JsonObject {
  return {
    matches: [{ path: { type: 'PathPrefix', value: '/' } }],
    backendRefs: [{ name: 'checkout', port: 8080, weight: 1 }],
    ...(filters.length === 0 ? {} : { filters: filters.map((f) => structuredClone(f)) }),
    ...over,
  };
}

/** The `requestMirror` of `rules[rule].filters[filter]` of a stored route; throws when there is none. */
export function routeMirror(route: JsonObject | undefined, rule = 0, filter = 0): JsonObject {
  const spec = route?.spec as { rules?: { filters?: { requestMirror?: JsonObject }[] }[] } | undefined;
  const mirror = spec?.rules?.[rule]?.filters?.[filter]?.requestMirror;
  if (mirror === undefined) throw new Error(`no requestMirror at rules[${rule}].filters[${filter}]`);
  return mirror;
}

/** The annotations of a stored object (empty when it has none). */
export function annotationsOfObject(obj: JsonObject | undefined): Record<string, string> {
  const metadata = obj?.metadata as { annotations?: Record<string, string> } | undefined;
  return metadata?.annotations ?? {};
}
