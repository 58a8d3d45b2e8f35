/**
 * The kinds of route whose mirror percentage can be managed, and the one place that dispatches between
 * their models: Istio VirtualServices (virtualservice.ts) and Gateway API HTTPRoutes and GRPCRoutes
 * (gateway.ts). Pure: no I/O, no clock.
 */
import { MeshError } from './errors.js';
import {
  type BackendTarget,
  type FilterLocation,
  filterLabel,
  filterPatchOps,
  GATEWAY_GROUP,
  locateMirrorFilter,
} from './gateway.js';
import {
  annotationOps,
  buildPercentPatch,
  type JsonPatchOp,
  locateMirrors,
  type MirrorLocation,
  type RouteObject,
  validPercentOrThrow,
} from './virtualservice.js';

export const ROUTE_KINDS = ['VirtualService', 'HTTPRoute', 'GRPCRoute'] as const;

/** Served versions of the Istio networking API, in order of preference (v1 is storage from Istio 1.27). */
export const ISTIO_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;
export type IstioVersion = (typeof ISTIO_VERSIONS)[number];
export type RouteKind = (typeof ROUTE_KINDS)[number];

/** Where a kind of route is served: API group, versions in order of preference, plural. */
export interface RouteApi {
  readonly kind: RouteKind;
  readonly group: string;
  readonly versions: readonly string[];
  readonly plural: string;
  /** `plural.group`, as RBAC and error messages name it. */
  readonly resource: string;
  /** What to check when the API is not served at all. */
  readonly installHint: string;
}

function api(
  kind: RouteKind,
  group: string,
  versions: readonly string[],
  plural: string,
  hint: string,
): RouteApi {
  return { kind, group, versions, plural, resource: `${plural}.${group}`, installHint: hint };
}

/** The API of each route kind; v1 is preferred everywhere (storage version of current releases). */
export const ROUTE_APIS: Readonly<Record<RouteKind, RouteApi>> = {
  VirtualService: api(
    'VirtualService',
    'networking.istio.io',
    ISTIO_VERSIONS,
    'virtualservices',
    'is Istio installed?',
  ),
  HTTPRoute: api(
    'HTTPRoute',
    GATEWAY_GROUP,
    ['v1', 'v1beta1'],
    'httproutes',
    'are the Gateway API CRDs installed?',
  ),
  GRPCRoute: api(
    'GRPCRoute',
    GATEWAY_GROUP,
    ['v1'],
    'grpcroutes',
    'are the Gateway API CRDs (v1.1 or later, standard channel) installed?',
  ),
};

/** The route object a policy manages, and which part of it. */
export interface RouteRef {
  readonly kind: RouteKind;
  readonly name: string;
  readonly namespace: string;
  /**
   * VirtualService: the http route's `name` (absent: every http route that mirrors to the target).
   * HTTPRoute / GRPCRoute: the rule's `name` or index (absent: the one rule whose filter mirrors to the target).
   */
  readonly rule?: string | number;
}

/** The mirror target as a policy names it: a host (VirtualService) or a Service backend (Gateway API). */
export interface MirrorTarget {
  readonly host?: string;
  readonly subset?: string;
  readonly backend?: BackendTarget;
}

/** One place where the percentage of the managed mirror is written. */
export type Location = MirrorLocation | FilterLocation;

/** True when `kind` is one this tool manages. */
export function isRouteKind(kind: unknown): kind is RouteKind {
  return typeof kind === 'string' && (ROUTE_KINDS as readonly string[]).includes(kind);
}

/** `namespace/name` of the route object. */
export function routeId(ref: Pick<RouteRef, 'name' | 'namespace'>): string {
  return `${ref.namespace}/${ref.name}`;
}

/** `HTTPRoute shop/checkout`: the kind and name, as messages name a route object. */
export function describeRoute(ref: Pick<RouteRef, 'kind' | 'name' | 'namespace'>): string {
  return `${ref.kind} ${routeId(ref)}`;
}

/** The kind of an object read from the API server, VirtualService when it carries none we manage. */
export function kindOf(obj: RouteObject): RouteKind {
  return isRouteKind(obj.kind) ? obj.kind : 'VirtualService';
}

function isFilterLocation(l: Location): l is FilterLocation {
  return 'filterIndex' in l;
}

/**
 * Finds the mirror a policy manages in a route object of its kind.
 * @returns the locations (never empty), or a MeshError naming the object, route or rule and field.
 */
export function locateTarget(obj: unknown, ref: RouteRef, target: MirrorTarget): Location[] | MeshError {
  if (ref.kind === 'VirtualService') {
    if (target.host === undefined) {
      return new MeshError(
        'InvalidMirror',
        routeId(ref),
        `${describeRoute(ref)}: the policy names no target.host`,
      );
    }
    return locateMirrors(obj, {
      ...(typeof ref.rule === 'string' && { route: ref.rule }),
      host: target.host,
      namespace: ref.namespace,
      ...(target.subset !== undefined && { subset: target.subset }),
    });
  }
  if (target.backend === undefined) {
    return new MeshError(
      'InvalidMirror',
      routeId(ref),
      `${describeRoute(ref)}: the policy names no target.backendRef`,
    );
  }
  return locateMirrorFilter(obj, {
    ...(ref.rule !== undefined && { rule: ref.rule }),
    backend: target.backend,
  });
}

/** How a location is listed: the http route's name or `http[i]`; the rule's name or `rules[i]`. */
export function locationLabel(l: Location): string {
  return isFilterLocation(l) ? filterLabel(l) : (l.routeName ?? `http[${l.routeIndex}]`);
}

/** The index of the rule (Gateway API) or http route (VirtualService) a location sits in. */
export function locationRuleIndex(l: Location): number {
  return isFilterLocation(l) ? l.ruleIndex : l.routeIndex;
}

/**
 * Builds the JSON Patch that sets every location to `newPercent` and sets `annotations`, guarded by a test
 * of `metadata.resourceVersion` and of what was read at each location (see buildPercentPatch for
 * VirtualServices, filterPatchOps for Gateway API routes).
 * @throws MeshError when `newPercent` is outside 0–100 or a location no longer fits the object.
 */
export function buildRoutePatch(
  obj: RouteObject,
  locations: readonly Location[],
  newPercent: number,
  annotations: Readonly<Record<string, string>> = {},
): JsonPatchOp[] {
  const filters = locations.filter(isFilterLocation);
  if (filters.length === 0)
    return buildPercentPatch(obj, locations as readonly MirrorLocation[], newPercent, annotations);
  const id = `${obj.metadata.namespace}/${obj.metadata.name}`;
  if (filters.length !== locations.length) {
    throw new MeshError('InvalidObject', id, `${obj.kind} ${id}: locations of two route kinds in one patch`);
  }
  const percent = validPercentOrThrow(newPercent, id, obj.kind);
  const ops: JsonPatchOp[] = [
    { op: 'test', path: '/metadata/resourceVersion', value: obj.metadata.resourceVersion },
  ];
  const done = new Set<string>();
  for (const l of filters) {
    if (done.has(l.path) || l.percent === percent) continue;
    done.add(l.path);
    ops.push(...filterPatchOps(obj, l, percent));
  }
  ops.push(...annotationOps(obj, annotations));
  return ops;
}
