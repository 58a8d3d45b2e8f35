/**
 * The Gateway API model: find the `RequestMirror` filter of an HTTPRoute or GRPCRoute rule that copies
 * traffic to the mirror target, read its percentage (`percent`, `fraction` or neither), and build the
 * RFC 6902 JSON Patch that changes it and nothing else. Pure: no I/O, no clock.
 *
 * The filter (`HTTPRequestMirrorFilter`, gateway.networking.k8s.io/v1, shared by GRPCRoute):
 * `{type: RequestMirror, requestMirror: {backendRef, percent?, fraction?: {numerator, denominator?}}}`.
 * `percent` is an integer 0–100; `fraction.denominator` defaults to 100 and the numerator may not exceed
 * it; the two fields are mutually exclusive; neither means 100 %. Filters sit on a rule (`rules[i].filters`)
 * or on one of its backends (`rules[i].backendRefs[k].filters`).
 */
import { MeshError } from './errors.js';
import { readPointer } from './jsonpatch.js';
import {
  asRouteObject,
  isObject,
  isSet,
  type JsonPatchOp,
  type RouteObject,
  roundPercent,
  show,
} from './virtualservice.js';

export const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/**
 * Denominators tried, smallest first, when a percentage needs `fraction`: the first that expresses the
 * value exactly is written, so 12.5 % becomes 125/1000 and 0.05 % becomes 5/10000. The last one matches the
 * resolution of the percentages the controller computes (0.0001 %) and Envoy's (millionths), so every value
 * fits it.
 */
export const FRACTION_DENOMINATORS = [100, 1_000, 10_000, 100_000, 1_000_000] as const;

/** The mirror backend as a policy names it: a Service, as the filter's `backendRef` names it. */
export interface BackendTarget {
  readonly name: string;
  /** Default: the route's namespace (the Gateway API default). */
  readonly namespace?: string;
  /** When set, the filter's `backendRef.port` must equal it. */
  readonly port?: number;
}

/** Which filter a policy controls: the rule (by name or index, or any rule) and the mirror backend. */
export interface FilterSelector {
  /** `spec.rules[].name`, or the rule's index; when absent, every rule is searched. */
  readonly rule?: string | number;
  readonly backend: BackendTarget;
}

export const FILTER_FORMS = ['percent', 'fraction', 'implicit'] as const;
/**
 * How the percentage of a RequestMirror filter is written: `percent` (an integer), `fraction`
 * (`numerator/denominator`), or `implicit` (neither: the filter mirrors every request).
 */
export type FilterForm = (typeof FILTER_FORMS)[number];

/** The RequestMirror filter that copies to the target, found in one rule. */
export interface FilterLocation {
  readonly ruleIndex: number;
  readonly ruleName?: string;
  /** Set when the filter sits on `rules[i].backendRefs[k]` rather than on the rule. */
  readonly backendRefIndex?: number;
  readonly filterIndex: number;
  readonly form: FilterForm;
  /** The effective percentage in force now (100 when neither field is written). */
  readonly percent: number;
  /** For the `fraction` form: the denominator as stored (100 when unset). */
  readonly denominator?: number;
  /** JSON Pointer of the filter object. */
  readonly path: string;
  /** The filter's `requestMirror.backendRef` exactly as written. */
  readonly backendRef: Readonly<Record<string, unknown>>;
}

type JsonObject = Record<string, unknown>;

function isInt32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31;
}

/** `rules[2] (name "shadow")`, or `rules[2]` for an unnamed rule. */
function ruleLabel(index: number, rule: JsonObject): string {
  return typeof rule.name === 'string' ? `rules[${index}] (name "${rule.name}")` : `rules[${index}]`;
}

/** How a location is listed in `plan` and logs: the rule's name or `rules[i]`, plus the backend it sits on. */
export function filterLabel(l: FilterLocation): string {
  const rule = l.ruleName ?? `rules[${l.ruleIndex}]`;
  return l.backendRefIndex === undefined ? rule : `${rule}/backendRefs[${l.backendRefIndex}]`;
}

function describeBackend(b: BackendTarget): string {
  const ns = b.namespace === undefined ? '' : `${b.namespace}/`;
  return `Service ${ns}${b.name}${b.port === undefined ? '' : `:${b.port}`}`;
}

/** A `backendRef` as written, shown as `Service ns/name:port` (kind, namespace and port when set). */
function describeRef(ref: JsonObject, routeNamespace: string): string {
  const kind = typeof ref.kind === 'string' ? ref.kind : 'Service';
  const ns = typeof ref.namespace === 'string' ? ref.namespace : routeNamespace;
  const port = isSet(ref.port) ? `:${show(ref.port)}` : '';
  return `${kind} ${ns}/${typeof ref.name === 'string' ? ref.name : '?'}${port}`;
}

/** True when a filter's `backendRef` names the target Service (group core, kind Service, namespace defaulted). */
function refMatches(ref: JsonObject, target: BackendTarget, routeNamespace: string): boolean {
  const group = isSet(ref.group) ? ref.group : '';
  const kind = isSet(ref.kind) ? ref.kind : 'Service';
  const namespace = isSet(ref.namespace) ? ref.namespace : routeNamespace;
  return (
    (group === '' || group === 'core') &&
    kind === 'Service' &&
    ref.name === target.name &&
    namespace === (target.namespace ?? routeNamespace) &&
    (target.port === undefined || ref.port === target.port)
  );
}

/** The percentage a RequestMirror filter sets, and how it is written; values the API would reject are errors. */
function readFilterPercent(
  mirror: JsonObject,
  where: string,
  id: string,
): Pick<FilterLocation, 'form' | 'percent' | 'denominator'> | MeshError {
  const bad = (message: string) => new MeshError('InvalidPercentage', id, `${where}: ${message}`);
  const hasPercent = isSet(mirror.percent);
  const hasFraction = isSet(mirror.fraction);
  if (hasPercent && hasFraction) {
    return bad(
      `requestMirror: both percent and fraction are set (got ${show(mirror.percent)} and ${show(mirror.fraction)}); the API allows only one`,
    );
  }
  if (hasPercent) {
    const p = mirror.percent;
    if (!isInt32(p) || p < 0 || p > 100) {
      return bad(`requestMirror.percent: must be an integer between 0 and 100 (got ${show(p)})`);
    }
    return { form: 'percent', percent: p };
  }
  if (hasFraction) {
    const f = mirror.fraction;
    if (!isObject(f)) {
      return bad(
        `requestMirror.fraction: must be an object like {numerator: 1, denominator: 100} (got ${show(f)})`,
      );
    }
    const { numerator } = f;
    const denominator = isSet(f.denominator) ? f.denominator : 100;
    if (!isInt32(numerator) || numerator < 0) {
      return bad(`requestMirror.fraction.numerator: must be an integer >= 0 (got ${show(numerator)})`);
    }
    if (!isInt32(denominator) || denominator < 1) {
      return bad(`requestMirror.fraction.denominator: must be an integer >= 1 (got ${show(denominator)})`);
    }
    if (numerator > denominator) {
      return bad(
        `requestMirror.fraction: numerator must be less than or equal to denominator (got ${numerator}/${denominator})`,
      );
    }
    return { form: 'fraction', percent: roundPercent((numerator / denominator) * 100), denominator };
  }
  return { form: 'implicit', percent: 100 };
}

/** A filter found on the route: where it is, and the filter object itself. */
interface FoundFilter {
  readonly ruleIndex: number;
  readonly backendRefIndex?: number;
  readonly filterIndex: number;
  readonly filter: JsonObject;
  readonly where: string;
}

/** The filters of one list (`rules[i].filters` or `rules[i].backendRefs[k].filters`), checked for shape. */
function readFilterList(
  list: unknown,
  at: Omit<FoundFilter, 'filterIndex' | 'filter' | 'where'>,
  where: string,
  id: string,
): FoundFilter[] | MeshError {
  if (!isSet(list)) return [];
  if (!Array.isArray(list)) {
    return new MeshError('InvalidObject', id, `${where}: filters: must be a list (got ${show(list)})`);
  }
  const out: FoundFilter[] = [];
  for (const [j, filter] of list.entries()) {
    if (!isObject(filter)) {
      return new MeshError(
        'InvalidObject',
        id,
        `${where}: filters[${j}]: must be an object (got ${show(filter)})`,
      );
    }
    out.push({ ...at, filterIndex: j, filter, where: `${where}: filters[${j}]` });
  }
  return out;
}

/** Every filter of a rule: its own, then those on each of its backendRefs. */
function ruleFilters(
  rule: JsonObject,
  index: number,
  routeWhere: string,
  id: string,
): FoundFilter[] | MeshError {
  const where = `${routeWhere}: ${ruleLabel(index, rule)}`;
  const own = readFilterList(rule.filters, { ruleIndex: index }, where, id);
  if (own instanceof MeshError) return own;
  const all = [...own];
  if (!isSet(rule.backendRefs)) return all;
  if (!Array.isArray(rule.backendRefs)) {
    return new MeshError(
      'InvalidObject',
      id,
      `${where}: backendRefs: must be a list (got ${show(rule.backendRefs)})`,
    );
  }
  for (const [k, ref] of rule.backendRefs.entries()) {
    if (!isObject(ref)) {
      return new MeshError(
        'InvalidObject',
        id,
        `${where}: backendRefs[${k}]: must be an object (got ${show(ref)})`,
      );
    }
    const found = readFilterList(
      ref.filters,
      { ruleIndex: index, backendRefIndex: k },
      `${where}: backendRefs[${k}]`,
      id,
    );
    if (found instanceof MeshError) return found;
    all.push(...found);
  }
  return all;
}

/** The RequestMirror part of a filter, or undefined for other filter types; a broken one is an error. */
function requestMirrorOf(f: FoundFilter, id: string): JsonObject | undefined | MeshError {
  if (f.filter.type !== 'RequestMirror') return undefined;
  const mirror = f.filter.requestMirror;
  if (!isObject(mirror)) {
    return new MeshError(
      'InvalidMirror',
      id,
      `${f.where}: requestMirror: must be an object with a backendRef for type RequestMirror (got ${show(mirror)})`,
    );
  }
  const ref = mirror.backendRef;
  if (!isObject(ref) || typeof ref.name !== 'string' || ref.name === '') {
    return new MeshError(
      'InvalidMirror',
      id,
      `${f.where}: requestMirror.backendRef: must be an object with a name (got ${show(ref)})`,
    );
  }
  return mirror;
}

/**
 * Finds the RequestMirror filter that copies to `sel.backend` in the selected rules of an HTTPRoute or
 * GRPCRoute, on the rules themselves and on their backendRefs.
 *
 * Exactly one filter must match: none, or more than one (two rules, or a rule and one of its backends,
 * mirroring to the same Service), is a MeshError naming what was found, so nothing is written on a guess.
 * So is a percentage the API would reject (both fields, out of range, numerator above denominator).
 *
 * @returns a list holding the one location, or a MeshError naming the route, rule and field.
 */
export function locateMirrorFilter(obj: unknown, sel: FilterSelector): FilterLocation[] | MeshError {
  const checked = asRouteObject(obj);
  if (checked instanceof MeshError) return checked;
  const id = `${checked.metadata.namespace}/${checked.metadata.name}`;
  const where = `${checked.kind} ${id}`;
  const routeNamespace = checked.metadata.namespace;
  const spec = checked.spec;
  if (isSet(spec) && !isObject(spec)) {
    return new MeshError('InvalidObject', id, `${where}: spec: must be an object (got ${show(spec)})`);
  }
  const rules = isObject(spec) ? spec.rules : undefined;
  if (!Array.isArray(rules) || rules.length === 0) {
    return new MeshError('NoRules', id, `${where}: spec.rules: missing or empty (got ${show(rules)})`);
  }
  for (const [index, rule] of rules.entries()) {
    if (!isObject(rule)) {
      return new MeshError(
        'InvalidObject',
        id,
        `${where}: rules[${index}]: must be an object (got ${show(rule)})`,
      );
    }
  }
  const all = rules as JsonObject[];
  const selected =
    sel.rule === undefined
      ? all.map((_, i) => i)
      : typeof sel.rule === 'number'
        ? sel.rule < all.length
          ? [sel.rule]
          : []
        : all.flatMap((r, i) => (r.name === sel.rule ? [i] : []));
  if (selected.length === 0) {
    const names = all.map((r, i) => (typeof r.name === 'string' ? `"${r.name}"` : `rules[${i}] unnamed`));
    const wanted =
      typeof sel.rule === 'number' ? `no rule at index ${sel.rule}` : `no rule named "${sel.rule}"`;
    return new MeshError('RouteNotFound', id, `${where}: ${wanted} (rules: ${names.join(', ')})`);
  }

  const matches: { f: FoundFilter; mirror: JsonObject }[] = [];
  const seen: string[] = [];
  for (const index of selected) {
    const filters = ruleFilters(all[index] as JsonObject, index, where, id);
    if (filters instanceof MeshError) return filters;
    for (const f of filters) {
      const mirror = requestMirrorOf(f, id);
      if (mirror instanceof MeshError) return mirror;
      if (mirror === undefined) continue;
      const ref = mirror.backendRef as JsonObject;
      seen.push(describeRef(ref, routeNamespace));
      if (refMatches(ref, sel.backend, routeNamespace)) matches.push({ f, mirror });
    }
  }

  const scope =
    sel.rule === undefined ? 'no rule' : selected.map((i) => ruleLabel(i, all[i] as JsonObject)).join(', ');
  if (matches.length === 0) {
    const found =
      seen.length === 0 ? 'no RequestMirror filters' : `mirrors to: ${[...new Set(seen)].join(', ')}`;
    const what = `RequestMirror filter to ${describeBackend(sel.backend)}`;
    const text = sel.rule === undefined ? `no rule has a ${what}` : `${scope}: no ${what}`;
    return new MeshError('NoMirrorToTarget', id, `${where}: ${text} (${found})`);
  }
  if (matches.length > 1) {
    const places = matches.map(({ f }) => f.where.slice(where.length + 2));
    return new MeshError(
      'AmbiguousMirror',
      id,
      `${where}: ${matches.length} RequestMirror filters mirror to ${describeBackend(sel.backend)} (${places.join('; ')}); name the rule in the policy (spec.${checked.kind === 'GRPCRoute' ? 'grpcRoute' : 'httpRoute'}.rule) or keep one filter`,
    );
  }
  const [{ f, mirror }] = matches as [{ f: FoundFilter; mirror: JsonObject }];
  const read = readFilterPercent(mirror, f.where, id);
  if (read instanceof MeshError) return read;
  const rule = all[f.ruleIndex] as JsonObject;
  const base = `/spec/rules/${f.ruleIndex}`;
  const path =
    f.backendRefIndex === undefined
      ? `${base}/filters/${f.filterIndex}`
      : `${base}/backendRefs/${f.backendRefIndex}/filters/${f.filterIndex}`;
  return [
    {
      ruleIndex: f.ruleIndex,
      ...(typeof rule.name === 'string' && { ruleName: rule.name }),
      ...(f.backendRefIndex !== undefined && { backendRefIndex: f.backendRefIndex }),
      filterIndex: f.filterIndex,
      ...read,
      path,
      backendRef: mirror.backendRef as JsonObject,
    },
  ];
}

type Fraction = { numerator: number; denominator: number };

/** `{numerator, denominator}` for `percent` over `denominator`, when that denominator expresses it exactly. */
function exactFraction(percent: number, denominator: number): Fraction | undefined {
  const n = (percent * denominator) / 100;
  const numerator = Math.round(n);
  return Math.abs(n - numerator) < 1e-6 ? { numerator, denominator } : undefined;
}

/** `percent` over the smallest of FRACTION_DENOMINATORS that expresses it (at 0.0001 % resolution). */
function finestFraction(percent: number): Fraction {
  for (const d of FRACTION_DENOMINATORS) {
    const f = exactFraction(percent, d);
    if (f !== undefined) return f;
  }
  return { numerator: Math.round(percent * 10_000), denominator: 1_000_000 };
}

/** The smallest of FRACTION_DENOMINATORS that expresses `percent` exactly (at 0.0001 % resolution). */
export function fractionDenominator(percent: number): number {
  return finestFraction(percent).denominator;
}

/**
 * What will be written for `percent` at a filter, keeping the user's form where it can express the value:
 * - a `fraction` stays a fraction, over its own denominator when that expresses the value exactly, else
 *   over the smallest of FRACTION_DENOMINATORS that does;
 * - `percent` or neither: a whole percentage is written as `percent`, any other as a `fraction`.
 */
export function filterValue(
  l: Pick<FilterLocation, 'form' | 'denominator'>,
  percent: number,
): { percent: number } | { fraction: Fraction } {
  if (l.form === 'fraction') {
    return { fraction: exactFraction(percent, l.denominator ?? 100) ?? finestFraction(percent) };
  }
  return Number.isInteger(percent) ? { percent } : { fraction: finestFraction(percent) };
}

function get(root: unknown, pointer: string): unknown {
  const found = readPointer(root, pointer);
  return found.found ? found.value : undefined;
}

/**
 * The operations that set one RequestMirror filter to `newPercent` (already rounded), after testing what
 * was read there: the filter's type and backendRef, and the old value. Switching form (`percent` ⇄
 * `fraction`) removes one field and adds the other in the same patch, so the API never sees both.
 * @throws MeshError when the filter at `l.path` no longer matches what was located.
 */
export function filterPatchOps(route: RouteObject, l: FilterLocation, newPercent: number): JsonPatchOp[] {
  const id = `${route.metadata.namespace}/${route.metadata.name}`;
  const filter = get(route, l.path);
  const mirror = isObject(filter) ? filter.requestMirror : undefined;
  if (!isObject(filter) || filter.type !== 'RequestMirror' || !isObject(mirror)) {
    throw new MeshError(
      'InvalidObject',
      id,
      `${route.kind} ${id}: ${filterLabel(l)}: the RequestMirror filter no longer matches the object it was located in; locate again`,
    );
  }
  const m = `${l.path}/requestMirror`;
  const ops: JsonPatchOp[] = [
    { op: 'test', path: `${l.path}/type`, value: 'RequestMirror' },
    { op: 'test', path: `${m}/backendRef`, value: mirror.backendRef },
  ];
  const next = filterValue(l, newPercent);
  if ('percent' in next) {
    if (isSet(mirror.percent)) {
      ops.push({ op: 'test', path: `${m}/percent`, value: mirror.percent });
      ops.push({ op: 'replace', path: `${m}/percent`, value: next.percent });
    } else {
      ops.push({ op: 'add', path: `${m}/percent`, value: next.percent });
    }
    return ops;
  }
  if (isSet(mirror.fraction)) {
    ops.push({ op: 'test', path: `${m}/fraction`, value: mirror.fraction });
    ops.push({ op: 'replace', path: `${m}/fraction`, value: next.fraction });
    return ops;
  }
  if (isSet(mirror.percent)) {
    ops.push({ op: 'test', path: `${m}/percent`, value: mirror.percent });
    ops.push({ op: 'remove', path: `${m}/percent` });
  }
  ops.push({ op: 'add', path: `${m}/fraction`, value: next.fraction });
  return ops;
}
