/**
 * The VirtualService model: find the mirror of a route in every shape Istio accepts, and build the
 * RFC 6902 JSON Patch that changes its percentage and nothing else. Pure: no I/O, no clock.
 */
import { MeshError } from './errors.js';

/** `mirror-autoscaler.io/paused: "true"` on a VirtualService stops every write to it. */
export const PAUSED_ANNOTATION = 'mirror-autoscaler.io/paused';
/**
 * Set by `mirror-autoscaler brake` next to the pause annotation: JSON `{at, pausedBefore, from}` (see
 * src/mesh/brake.ts). `brake --release` acts only where it is, so a pause made by hand is never lifted.
 */
export const BRAKE_ANNOTATION = 'mirror-autoscaler.io/brake';
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
/**
 * Set by Argo Rollouts' Gateway API traffic router plugin on every HTTPRoute / GRPCRoute it changes while a
 * canary's weight is above 0 (value `in-progress`), removed at weight 0 (its default key; see
 * argoproj-labs/rollouts-plugin-trafficrouter-gatewayapi, internal/defaults).
 */
export const ARGO_ROLLOUTS_CANARY_LABEL = 'rollouts.argoproj.io/gatewayapi-canary';

/** The metadata fields we rely on; everything else is kept as it came. */
export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly resourceVersion: string;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly [key: string]: unknown;
}

/**
 * A route object as read from the API server (a VirtualService, HTTPRoute or GRPCRoute). `spec` stays
 * untyped: it is narrowed where it is read.
 */
export interface RouteObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: ObjectMeta;
  readonly spec?: unknown;
  readonly [key: string]: unknown;
}

/** A VirtualService as read from the API server. */
export type VirtualService = RouteObject;

/** Which mirror a policy controls: the route (by name, or every route) and the mirror target. */
export interface MirrorSelector {
  /** `spec.http[].name`; when absent, every HTTP route whose mirror goes to `host`. */
  readonly route?: string;
  readonly host: string;
  /** When set, the mirror destination's subset must equal it. */
  readonly subset?: string;
  /**
   * Namespace against which short hosts (`name`) are resolved; default the VirtualService's own namespace,
   * which is what Istio uses.
   */
  readonly namespace?: string;
}

export const MIRROR_SHAPES = [
  'mirrorPercentage',
  'mirrorPercent',
  'mirror_percent',
  'implicit',
  'mirrors',
] as const;
/**
 * How the percentage of a mirror is written:
 * - `mirrorPercentage`: `mirror` + `mirrorPercentage.value` (an empty `mirrorPercentage: {}` is 0 %, as in protobuf);
 * - `mirrorPercent` / `mirror_percent`: `mirror` + the deprecated integer field;
 * - `implicit`: `mirror` with no percentage at all, which Istio treats as 100 %;
 * - `mirrors`: one entry of the `mirrors:` list, with its own optional `percentage.value` (absent = 100 %).
 */
export type MirrorShape = (typeof MIRROR_SHAPES)[number];

/** One mirror to the target, found in one route. */
export interface MirrorLocation {
  readonly routeIndex: number;
  readonly routeName?: string;
  readonly shape: MirrorShape;
  /** Index in `mirrors:` for the `mirrors` shape. */
  readonly mirrorsIndex?: number;
  /** The effective percentage in force now (100 when none is written). */
  readonly percent: number;
  /** JSON Pointer of the percentage value, or of where it will be written. */
  readonly path: string;
  /** The mirror destination as written in the object. */
  readonly host: string;
  readonly subset?: string;
}

/** One RFC 6902 operation, restricted to the ones we emit. */
export type JsonPatchOp =
  | { readonly op: 'test'; readonly path: string; readonly value: unknown }
  | { readonly op: 'add'; readonly path: string; readonly value: unknown }
  | { readonly op: 'replace'; readonly path: string; readonly value: unknown }
  | { readonly op: 'remove'; readonly path: string };

export interface LocateOptions {
  /** Cluster DNS domain for short-name expansion; default `cluster.local`. */
  readonly clusterDomain?: string;
}

type JsonObject = Record<string, unknown>;

/** A JSON object (not null, not an array). */
export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Present and not JSON null (YAML `field:` with no value is null, which Istio reads as unset). */
export function isSet(value: unknown): boolean {
  return value !== undefined && value !== null;
}

/** A value as messages show it: JSON, cut at 60 characters. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** `namespace/name` of an object, or `?` when its metadata is unusable. */
export function objectKey(vs: unknown): string {
  if (!isObject(vs) || !isObject(vs.metadata)) return '?';
  const { name, namespace } = vs.metadata;
  return `${typeof namespace === 'string' ? namespace : '?'}/${typeof name === 'string' ? name : '?'}`;
}

/**
 * Narrows an object read from the API server to a VirtualService, checking the metadata we depend on.
 * @returns the same object, typed, or a MeshError naming the bad field.
 */
export function asVirtualService(obj: unknown): VirtualService | MeshError {
  return asRouteObject(obj, 'VirtualService');
}

/**
 * Narrows an object read from the API server to a route object, checking the metadata we depend on.
 * @param kind how to name the object in messages; default its own `kind`.
 * @returns the same object, typed, or a MeshError naming the bad field.
 */
export function asRouteObject(obj: unknown, kind?: string): RouteObject | MeshError {
  const ownKind = isObject(obj) && typeof obj.kind === 'string' ? obj.kind : 'object';
  const where = `${kind ?? ownKind} ${objectKey(obj)}`;
  const bad = (field: string, expected: string, got: unknown) =>
    new MeshError(
      'InvalidObject',
      objectKey(obj),
      `${where}: ${field}: must be ${expected} (got ${show(got)})`,
    );
  if (!isObject(obj)) return bad('object', 'a JSON object', obj);
  const meta = obj.metadata;
  if (!isObject(meta)) return bad('metadata', 'an object', meta);
  for (const field of ['name', 'namespace', 'resourceVersion'] as const) {
    const value = meta[field];
    if (typeof value !== 'string' || value === '')
      return bad(`metadata.${field}`, 'a non-empty string', value);
  }
  if (meta.annotations !== undefined && meta.annotations !== null) {
    if (!isObject(meta.annotations)) return bad('metadata.annotations', 'an object', meta.annotations);
    for (const [key, value] of Object.entries(meta.annotations)) {
      if (typeof value !== 'string') return bad(`metadata.annotations["${key}"]`, 'a string', value);
    }
  }
  if (typeof obj.apiVersion !== 'string') return bad('apiVersion', 'a string', obj.apiVersion);
  if (typeof obj.kind !== 'string') return bad('kind', 'a string', obj.kind);
  return obj as unknown as RouteObject;
}

/**
 * Expands a service host to its fully qualified form so that `name`, `name.ns`, `name.ns.svc` and
 * `name.ns.svc.cluster.local` compare equal. Short names resolve against `namespace` (the VirtualService's
 * namespace), as Istio resolves them. `name.ns` is expanded too, although Istio itself reads a two-label
 * host literally: a policy author writing `reviews.test` means the Kubernetes service. Other hosts (with
 * more labels, or external names) are compared as written, lower-cased, without a trailing dot.
 */
export function canonicalHost(
  host: string,
  namespace: string,
  clusterDomain = DEFAULT_CLUSTER_DOMAIN,
): string {
  const h = host.trim().toLowerCase().replace(/\.$/, '');
  const labels = h.split('.');
  if (labels.length === 1) return `${h}.${namespace}.svc.${clusterDomain}`;
  if (labels.length === 2) return `${h}.svc.${clusterDomain}`;
  if (labels.length === 3 && labels[2] === 'svc') return `${h}.${clusterDomain}`;
  return h;
}

/** True when two hosts name the same service, seen from a VirtualService in `namespace`. */
export function sameHost(
  a: string,
  b: string,
  namespace: string,
  clusterDomain = DEFAULT_CLUSTER_DOMAIN,
): boolean {
  return canonicalHost(a, namespace, clusterDomain) === canonicalHost(b, namespace, clusterDomain);
}

/** Rounds to Envoy's resolution: it applies mirror fractions in millionths, i.e. 0.0001 %. */
export function roundPercent(percent: number): number {
  return Math.round(percent * 10_000) / 10_000;
}

interface Destination {
  readonly host: string;
  readonly subset?: string;
}

/** One entry of a route's `mirrors:` list, with its destination read. */
interface MirrorsEntry {
  readonly index: number;
  readonly destination: Destination;
  readonly entry: JsonObject;
}

/** The entries of a route's `mirrors:` list (none when it is not set), or why its shape is wrong. */
function readMirrorsEntries(
  route: JsonObject,
  routeWhere: string,
  label: string,
  id: string,
): MirrorsEntry[] | MeshError {
  if (!isSet(route.mirrors)) return [];
  if (!Array.isArray(route.mirrors)) {
    return new MeshError(
      'InvalidMirror',
      id,
      `${routeWhere}: mirrors: must be a list of {destination, percentage} (got ${show(route.mirrors)})`,
    );
  }
  const out: MirrorsEntry[] = [];
  for (const [j, entry] of route.mirrors.entries()) {
    if (!isObject(entry)) {
      return new MeshError(
        'InvalidMirror',
        id,
        `${routeWhere}: mirrors[${j}]: must be an object (got ${show(entry)})`,
      );
    }
    const d = readDestination(entry.destination, `mirrors[${j}].destination`, label, id);
    if (d instanceof MeshError) return d;
    out.push({ index: j, destination: d, entry });
  }
  return out;
}

function readDestination(value: unknown, field: string, label: string, id: string): Destination | MeshError {
  const where = `VirtualService ${id}: ${label}`;
  if (!isObject(value)) {
    return new MeshError(
      'InvalidMirror',
      id,
      `${where}: ${field}: must be an object with a host (got ${show(value)})`,
    );
  }
  if (typeof value.host !== 'string' || value.host.trim() === '') {
    return new MeshError(
      'InvalidMirror',
      id,
      `${where}: ${field}.host: must be a non-empty string (got ${show(value.host)})`,
    );
  }
  if (isSet(value.subset) && typeof value.subset !== 'string') {
    return new MeshError(
      'InvalidMirror',
      id,
      `${where}: ${field}.subset: must be a string (got ${show(value.subset)})`,
    );
  }
  return typeof value.subset === 'string' ? { host: value.host, subset: value.subset } : { host: value.host };
}

/** Reads a `Percent` message (`{value: double}`); an empty message is 0, as protobuf decodes it. */
function readPercentObject(value: unknown, field: string, where: string, id: string): number | MeshError {
  if (!isObject(value)) {
    return new MeshError(
      'InvalidPercentage',
      id,
      `${where}: ${field}: must be an object like {value: 50} (got ${show(value)})`,
    );
  }
  if (!isSet(value.value)) return 0;
  return readPercentNumber(value.value, `${field}.value`, where, id, false);
}

function readPercentNumber(
  value: unknown,
  field: string,
  where: string,
  id: string,
  integer: boolean,
): number | MeshError {
  const kind = integer ? 'an integer' : 'a number';
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100) {
    return new MeshError(
      'InvalidPercentage',
      id,
      `${where}: ${field}: must be ${kind} between 0 and 100 (got ${show(value)})`,
    );
  }
  if (integer && !Number.isInteger(value)) {
    return new MeshError(
      'InvalidPercentage',
      id,
      `${where}: ${field}: must be ${kind} between 0 and 100 (got ${show(value)})`,
    );
  }
  return value;
}

function routeLabel(index: number, route: JsonObject): string {
  return typeof route.name === 'string' ? `http[${index}] (name "${route.name}")` : `http[${index}]`;
}

function describeSelector(sel: MirrorSelector): string {
  return sel.subset === undefined ? `host "${sel.host}"` : `host "${sel.host}" subset "${sel.subset}"`;
}

/**
 * Finds every mirror to `sel.host` (and `sel.subset`) in the selected HTTP routes of a VirtualService.
 *
 * Routes are those named `sel.route`, or all of them when no route is given. Shapes Istio would reject
 * (both `mirror` and `mirrors`, a percentage outside 0–100 or not a number, a mirror without a host) are
 * returned as a MeshError rather than guessed around, so that nothing is ever written to them.
 *
 * @returns the mirror locations (never empty), or a MeshError naming the VirtualService, route and field.
 */
export function locateMirrors(
  vs: unknown,
  sel: MirrorSelector,
  options: LocateOptions = {},
): MirrorLocation[] | MeshError {
  const checked = asVirtualService(vs);
  if (checked instanceof MeshError) return checked;
  const id = `${checked.metadata.namespace}/${checked.metadata.name}`;
  const where = `VirtualService ${id}`;
  const namespace = sel.namespace ?? checked.metadata.namespace;
  const domain = options.clusterDomain ?? DEFAULT_CLUSTER_DOMAIN;
  const matches = (d: Destination) =>
    sameHost(d.host, sel.host, namespace, domain) && (sel.subset === undefined || d.subset === sel.subset);

  const spec = checked.spec;
  if (isSet(spec) && !isObject(spec)) {
    return new MeshError('InvalidObject', id, `${where}: spec: must be an object (got ${show(spec)})`);
  }
  const http = isObject(spec) ? spec.http : undefined;
  if (!Array.isArray(http) || http.length === 0) {
    return new MeshError(
      'NoHttpRoutes',
      id,
      `${where}: spec.http: missing or empty (got ${show(http)}); only HTTP routes can mirror`,
    );
  }

  const selected: number[] = [];
  for (const [index, route] of http.entries()) {
    if (!isObject(route)) {
      return new MeshError(
        'InvalidObject',
        id,
        `${where}: http[${index}]: must be an object (got ${show(route)})`,
      );
    }
    if (sel.route === undefined || route.name === sel.route) selected.push(index);
  }
  if (sel.route !== undefined && selected.length === 0) {
    const names = http.map((r, i) =>
      isObject(r) && typeof r.name === 'string' ? `"${r.name}"` : `http[${i}] unnamed`,
    );
    return new MeshError(
      'RouteNotFound',
      id,
      `${where}: no http route named "${sel.route}" (routes: ${names.join(', ')})`,
    );
  }

  const locations: MirrorLocation[] = [];
  const seen: string[] = [];
  for (const index of selected) {
    const route = http[index] as JsonObject;
    const label = routeLabel(index, route);
    const routeWhere = `${where}: ${label}`;
    const routeName = typeof route.name === 'string' ? route.name : undefined;
    const base = { routeIndex: index, ...(routeName === undefined ? {} : { routeName }) };

    let mirror: Destination | undefined;
    if (isSet(route.mirror)) {
      const d = readDestination(route.mirror, 'mirror', label, id);
      if (d instanceof MeshError) return d;
      mirror = d;
      seen.push(d.host);
    }
    const mirrorsTargets: { index: number; destination: Destination; entry: JsonObject }[] = [];
    const entries = readMirrorsEntries(route, routeWhere, label, id);
    if (entries instanceof MeshError) return entries;
    for (const e of entries) {
      seen.push(e.destination.host);
      if (matches(e.destination)) mirrorsTargets.push(e);
    }
    const mirrorTargets = mirror !== undefined && matches(mirror);
    if (
      mirror !== undefined &&
      isSet(route.mirrors) &&
      (sel.route !== undefined || mirrorTargets || mirrorsTargets.length > 0)
    ) {
      return new MeshError(
        'BothMirrorAndMirrors',
        id,
        `${routeWhere}: route has both mirror and mirrors; Istio rejects this`,
      );
    }

    if (mirror !== undefined && mirrorTargets) {
      const location = locateSingleMirror(route, index, routeWhere, id);
      if (location instanceof MeshError) return location;
      locations.push({ ...base, ...location, ...mirror });
    }
    for (const { index: j, destination, entry } of mirrorsTargets) {
      const path = `/spec/http/${index}/mirrors/${j}/percentage/value`;
      let percent = 100;
      if (isSet(entry.percentage)) {
        const read = readPercentObject(entry.percentage, `mirrors[${j}].percentage`, routeWhere, id);
        if (read instanceof MeshError) return read;
        percent = read;
      }
      locations.push({ ...base, shape: 'mirrors', mirrorsIndex: j, percent, path, ...destination });
    }
  }

  if (locations.length === 0) {
    const mirrorsTo =
      seen.length === 0 ? 'no mirrors' : `mirrors to: ${[...new Set(seen)].map((h) => `"${h}"`).join(', ')}`;
    const scope =
      sel.route === undefined
        ? `no http route mirrors to ${describeSelector(sel)}`
        : `${selected.map((i) => routeLabel(i, http[i] as JsonObject)).join(', ')}: no mirror to ${describeSelector(sel)}`;
    return new MeshError('NoMirrorToTarget', id, `${where}: ${scope} (${mirrorsTo})`);
  }
  return locations;
}

function locateSingleMirror(
  route: JsonObject,
  index: number,
  routeWhere: string,
  id: string,
): Pick<MirrorLocation, 'shape' | 'percent' | 'path'> | MeshError {
  const path = `/spec/http/${index}/mirrorPercentage/value`;
  // mirrorPercentage wins over the deprecated integer fields when both are present (Istio's precedence).
  const deprecated = (['mirrorPercent', 'mirror_percent'] as const).filter((f) => isSet(route[f]));
  if (isSet(route.mirrorPercentage)) {
    const percent = readPercentObject(route.mirrorPercentage, 'mirrorPercentage', routeWhere, id);
    if (percent instanceof MeshError) return percent;
    // Ignored by Istio but still validated by it: a bad leftover would make our write rejected.
    for (const field of deprecated) {
      const old = readPercentNumber(route[field], field, routeWhere, id, true);
      if (old instanceof MeshError) return old;
    }
    return { shape: 'mirrorPercentage', percent, path };
  }
  if (deprecated.length === 2) {
    return new MeshError(
      'InvalidPercentage',
      id,
      `${routeWhere}: both mirrorPercent and mirror_percent are set (got ${show(route.mirrorPercent)} and ${show(route.mirror_percent)}); keep one`,
    );
  }
  const field = deprecated[0];
  if (field !== undefined) {
    const percent = readPercentNumber(route[field], field, routeWhere, id, true);
    if (percent instanceof MeshError) return percent;
    return { shape: field, percent, path };
  }
  return { shape: 'implicit', percent: 100, path };
}

/**
 * Checks the mirror fields of every HTTP route, not only the ones a policy manages, as Istio's validating
 * webhook does when any part of the object is written: both `mirror` and `mirrors` on one route, a
 * percentage that is not a number in 0–100 (an integer for the deprecated fields), both deprecated fields,
 * a mirror without a host, or `mirrors` that is not a list of objects.
 * @returns undefined when Istio would accept the mirror fields, else a MeshError naming route and field.
 */
export function checkMirrorFields(vs: VirtualService): MeshError | undefined {
  const id = `${vs.metadata.namespace}/${vs.metadata.name}`;
  const where = `VirtualService ${id}`;
  const spec = vs.spec;
  if (!isSet(spec)) return undefined;
  if (!isObject(spec))
    return new MeshError('InvalidObject', id, `${where}: spec: must be an object (got ${show(spec)})`);
  const http = spec.http;
  if (!isSet(http)) return undefined;
  if (!Array.isArray(http)) {
    return new MeshError('InvalidObject', id, `${where}: spec.http: must be a list (got ${show(http)})`);
  }
  for (const [index, route] of http.entries()) {
    if (!isObject(route)) {
      return new MeshError(
        'InvalidObject',
        id,
        `${where}: http[${index}]: must be an object (got ${show(route)})`,
      );
    }
    const label = routeLabel(index, route);
    const routeWhere = `${where}: ${label}`;
    if (isSet(route.mirror)) {
      const d = readDestination(route.mirror, 'mirror', label, id);
      if (d instanceof MeshError) return d;
      if (isSet(route.mirrors)) {
        return new MeshError(
          'BothMirrorAndMirrors',
          id,
          `${routeWhere}: route has both mirror and mirrors; Istio rejects this`,
        );
      }
    }
    if (isSet(route.mirrorPercentage)) {
      const p = readPercentObject(route.mirrorPercentage, 'mirrorPercentage', routeWhere, id);
      if (p instanceof MeshError) return p;
    }
    const deprecated = (['mirrorPercent', 'mirror_percent'] as const).filter((f) => isSet(route[f]));
    if (deprecated.length === 2) {
      return new MeshError(
        'InvalidPercentage',
        id,
        `${routeWhere}: both mirrorPercent and mirror_percent are set (got ${show(route.mirrorPercent)} and ${show(route.mirror_percent)}); keep one`,
      );
    }
    for (const field of deprecated) {
      const p = readPercentNumber(route[field], field, routeWhere, id, true);
      if (p instanceof MeshError) return p;
    }
    const entries = readMirrorsEntries(route, routeWhere, label, id);
    if (entries instanceof MeshError) return entries;
    for (const { index: j, entry } of entries) {
      if (isSet(entry.percentage)) {
        const p = readPercentObject(entry.percentage, `mirrors[${j}].percentage`, routeWhere, id);
        if (p instanceof MeshError) return p;
      }
    }
  }
  return undefined;
}

/** The percentage a set of locations puts on the target: the largest one, the conservative reading. */
export function currentPercent(locations: readonly { readonly percent: number }[]): number {
  return Math.max(...locations.map((l) => l.percent));
}

/** Escapes one JSON Pointer reference token (RFC 6901): `~` → `~0`, `/` → `~1`. */
export function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** True when writing `newPercent` and `annotations` would change nothing in the object. */
export function isNoopChange(
  vs: VirtualService,
  locations: readonly { readonly percent: number }[],
  newPercent: number,
  annotations: Readonly<Record<string, string>> = {},
): boolean {
  const target = roundPercent(newPercent);
  const current = vs.metadata.annotations ?? {};
  return (
    locations.every((l) => l.percent === target) &&
    Object.entries(annotations).every(([key, value]) => current[key] === value)
  );
}

/**
 * A percentage to write, rounded to Envoy's resolution.
 * @throws MeshError (InvalidPercentage) when it is not a number in 0–100.
 */
export function validPercentOrThrow(newPercent: number, id: string, kind = 'VirtualService'): number {
  if (typeof newPercent !== 'number' || !Number.isFinite(newPercent) || newPercent < 0 || newPercent > 100) {
    throw new MeshError(
      'InvalidPercentage',
      id,
      `${kind} ${id}: new mirror percentage must be a number between 0 and 100 (got ${show(newPercent)})`,
    );
  }
  return roundPercent(newPercent);
}

function get(root: unknown, ...keys: (string | number)[]): unknown {
  let node = root;
  for (const key of keys) {
    if (typeof key === 'number') {
      if (!Array.isArray(node)) return undefined;
      node = node[key];
    } else {
      if (!isObject(node)) return undefined;
      node = node[key];
    }
  }
  return node;
}

/**
 * Builds the JSON Patch that sets every location to `newPercent` and sets `extraAnnotations`.
 *
 * The patch first tests `metadata.resourceVersion`, so the API server refuses it (409/422) if anything
 * changed since the read; each location then tests what was read there (the mirror destination and the
 * old value, or the deprecated field) before writing `mirrorPercentage: {value}` / `percentage: {value}`.
 * A deprecated `mirrorPercent` / `mirror_percent` is removed and replaced by `mirrorPercentage`. Locations
 * already at `newPercent` are left as they are, so an annotation-only change touches nothing else.
 *
 * @throws MeshError when `newPercent` is outside 0–100, a location no longer fits `vs`, or any route's mirror
 * fields are ones Istio would reject (see {@link checkMirrorFields}).
 */
export function buildPercentPatch(
  vs: VirtualService,
  locations: readonly MirrorLocation[],
  newPercent: number,
  extraAnnotations: Readonly<Record<string, string>> = {},
): JsonPatchOp[] {
  const id = `${vs.metadata.namespace}/${vs.metadata.name}`;
  const percent = validPercentOrThrow(newPercent, id);
  // istiod validates the whole object on every write: a broken route elsewhere would get ours rejected, so
  // it is refused here with a message that names it, and nothing is sent.
  const invalid = checkMirrorFields(vs);
  if (invalid !== undefined) throw invalid;
  const ops: JsonPatchOp[] = [
    { op: 'test', path: '/metadata/resourceVersion', value: vs.metadata.resourceVersion },
  ];
  const stale = (l: MirrorLocation, what: string) =>
    new MeshError(
      'InvalidObject',
      id,
      `VirtualService ${id}: http[${l.routeIndex}]: ${what} no longer matches the object it was located in; locate again`,
    );

  const done = new Set<string>();
  for (const l of locations) {
    if (done.has(l.path) || l.percent === percent) continue;
    done.add(l.path);
    const i = l.routeIndex;
    const routePath = `/spec/http/${i}`;
    const route = get(vs.spec, 'http', i);
    if (!isObject(route)) throw stale(l, 'the route');

    if (l.shape === 'mirrors') {
      const j = l.mirrorsIndex;
      const entry = j === undefined ? undefined : get(route, 'mirrors', j);
      if (j === undefined || !isObject(entry) || !isObject(entry.destination))
        throw stale(l, 'mirrors entry');
      const entryPath = `${routePath}/mirrors/${j}`;
      ops.push({ op: 'test', path: `${entryPath}/destination`, value: entry.destination });
      ops.push(...setPercentObject(entry, 'percentage', entryPath, percent));
      continue;
    }

    if (!isObject(route.mirror)) throw stale(l, 'mirror');
    ops.push({ op: 'test', path: `${routePath}/mirror`, value: route.mirror });
    if (l.shape === 'mirrorPercent' || l.shape === 'mirror_percent') {
      const old = route[l.shape];
      if (!isSet(old)) throw stale(l, l.shape);
      ops.push({ op: 'test', path: `${routePath}/${l.shape}`, value: old });
      ops.push({ op: 'remove', path: `${routePath}/${l.shape}` });
    }
    ops.push(...setPercentObject(route, 'mirrorPercentage', routePath, percent));
  }

  ops.push(...annotationOps(vs, extraAnnotations));
  return ops;
}

/** Ops that set `extra` annotations the object does not already carry with the same value. */
export function annotationOps(obj: RouteObject, extra: Readonly<Record<string, string>>): JsonPatchOp[] {
  const changed = Object.entries(extra).filter(([key, value]) => obj.metadata.annotations?.[key] !== value);
  if (changed.length === 0) return [];
  const current: unknown = obj.metadata.annotations;
  if (isObject(current)) {
    return changed.map(([key, value]) => ({
      op: 'add' as const,
      path: `/metadata/annotations/${escapePointerToken(key)}`,
      value,
    }));
  }
  return [
    ...(current === null ? [{ op: 'test' as const, path: '/metadata/annotations', value: null }] : []),
    { op: 'add' as const, path: '/metadata/annotations', value: Object.fromEntries(changed) },
  ];
}

/** Ops that make `parent[field]` a Percent message `{value: percent}`, testing what was there. */
function setPercentObject(
  parent: JsonObject,
  field: string,
  parentPath: string,
  percent: number,
): JsonPatchOp[] {
  const path = `${parentPath}/${field}`;
  const existing = parent[field];
  if (isObject(existing)) {
    if (isSet(existing.value)) {
      return [
        { op: 'test', path: `${path}/value`, value: existing.value },
        { op: 'replace', path: `${path}/value`, value: percent },
      ];
    }
    // `{}` (0 %) or `{value: null}`: the message exists without a usable value; test it whole.
    return [
      { op: 'test', path, value: existing },
      { op: 'add', path: `${path}/value`, value: percent },
    ];
  }
  if (existing === null) {
    return [
      { op: 'test', path, value: null },
      { op: 'add', path, value: { value: percent } },
    ];
  }
  return [{ op: 'add', path, value: { value: percent } }];
}

/** Why a route is paused: the pause annotation, the global brake, or a Flagger / Argo Rollouts canary. */
export type PauseSource = 'annotation' | 'brake' | 'flagger' | 'argo-rollouts';

/** Result of reading the pause annotation. */
export interface PauseState {
  readonly paused: boolean;
  /** Set when paused. */
  readonly source?: PauseSource;
  /**
   * What to tell the operator besides "paused": the annotation holds something other than "true"/"false"
   * (it then counts as paused), a Flagger Canary owns the object, an Argo Rollouts canary is shifting it,
   * or the global brake paused it.
   */
  readonly problem?: string;
}

/**
 * Reads `mirror-autoscaler.io/paused`. "true" pauses and "false" (or no annotation) does not; any other
 * value also pauses, with a problem to report: an operator who wrote "yes" meant to stop the automation,
 * and guessing otherwise would write to an object someone tried to freeze.
 */
export function pauseState(vs: VirtualService): PauseState {
  // Flagger rewrites the routes of a VirtualService it owns at every canary step: two controllers steering
  // one mirror would fight, so a Canary's VirtualService is left to Flagger.
  const owner = flaggerOwner(vs);
  if (owner !== undefined) {
    return {
      paused: true,
      source: 'flagger',
      problem: `${vs.kind} ${vs.metadata.namespace}/${vs.metadata.name}: owned by Flagger Canary ${owner}; left to Flagger`,
    };
  }
  // Argo Rollouts' Gateway API plugin labels every route it is shifting weight on while a canary runs, and
  // writes the whole route back at each step: an edit of ours would be lost or fight it.
  const labels = vs.metadata.labels;
  const rollout = isObject(labels) ? labels[ARGO_ROLLOUTS_CANARY_LABEL] : undefined;
  if (typeof rollout === 'string') {
    const value = rollout;
    return {
      paused: true,
      source: 'argo-rollouts',
      problem: `${vs.kind} ${vs.metadata.namespace}/${vs.metadata.name}: label ${ARGO_ROLLOUTS_CANARY_LABEL}=${value}: an Argo Rollouts canary is shifting this route; left to Argo Rollouts until it ends`,
    };
  }
  const raw = vs.metadata.annotations?.[PAUSED_ANNOTATION];
  if (raw === undefined) return { paused: false };
  const value = raw.trim().toLowerCase();
  if (value === 'true') {
    // Paused by the global brake: say so, and how it ends, rather than the generic pause message.
    const brake = vs.metadata.annotations?.[BRAKE_ANNOTATION];
    if (brake === undefined) return { paused: true, source: 'annotation' };
    return {
      paused: true,
      source: 'brake',
      problem: `${vs.kind} ${vs.metadata.namespace}/${vs.metadata.name}: braked (annotation ${BRAKE_ANNOTATION}: ${brake.slice(0, 120)}); automation paused until "mirror-autoscaler brake --release"`,
    };
  }
  if (value === 'false' || value === '') return { paused: false };
  return {
    paused: true,
    source: 'annotation',
    problem: `${vs.kind} ${vs.metadata.namespace}/${vs.metadata.name}: annotation ${PAUSED_ANNOTATION}: must be "true" or "false" (got ${JSON.stringify(raw)}); treated as paused`,
  };
}

/** The name of the Flagger Canary that owns this VirtualService, if any. */
export function flaggerOwner(vs: VirtualService): string | undefined {
  const refs = vs.metadata.ownerReferences;
  if (!Array.isArray(refs)) return undefined;
  for (const r of refs as unknown[]) {
    if (typeof r !== 'object' || r === null) continue;
    const { apiVersion, kind, name } = r as Record<string, unknown>;
    if (kind === 'Canary' && typeof apiVersion === 'string' && apiVersion.startsWith('flagger.app/')) {
      return typeof name === 'string' ? name : '?';
    }
  }
  return undefined;
}

/** True when writes to this VirtualService are paused (see pauseState). */
export function isPaused(vs: VirtualService): boolean {
  return pauseState(vs).paused;
}
