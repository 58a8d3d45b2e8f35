/**
 * What kube-apiserver does to a Gateway API HTTPRoute or GRPCRoute on write, from the CRDs' structural
 * schemas (gateway-api-crd-schemas.json: the `spec` schema of the v1.6.1 standard-channel CRDs, descriptions
 * removed): prune unknown fields, apply defaults, validate against the OpenAPI schema, then evaluate the
 * `x-kubernetes-validations` CEL rules. Errors carry the field paths, reasons and wording of
 * apiextensions-apiserver (kube-openapi messages wrapped in field.Error).
 *
 * Pruning: as a real server does, unknown fields are dropped silently and reported as warnings
 * (`unknown field "spec.x"`); the caller turns them into Warning headers, or into a 400 under
 * `fieldValidation=Strict`. A null in a field that has a default gets the default; a null elsewhere is dropped
 * (nothing in these schemas is nullable).
 *
 * CEL: there is no CEL interpreter here. Each rule expression of the CRD is recognised by its exact text (or
 * a regular expression over it, for families such as "filter.X must be nil if the filter.type is not X")
 * and evaluated by a TypeScript predicate; the message comes from the CRD. Rules not recognised are not
 * evaluated: `unimplementedRules()` lists them (none of them is about filters). As in the real server, CEL
 * rules are skipped when the schema check found a blocking error (wrong type, required, enum, too long, too
 * many), and a cause saying so is added.
 *
 * Not implemented: list-type uniqueness (x-kubernetes-list-type set/map), int32 range, validation ratcheting
 * (an unchanged invalid field on update is an error here), defaulting on read.
 */
import { readFileSync } from 'node:fs';
import { cloneJson, type Json } from './kube-patch.js';

type JsonObject = { [key: string]: Json };

export interface Schema {
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly items?: Schema;
  readonly required?: readonly string[];
  readonly enum?: readonly Json[];
  readonly default?: Json;
  readonly format?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly 'x-kubernetes-validations'?: readonly { readonly rule: string; readonly message: string }[];
}

export type RouteKind = 'HTTPRoute' | 'GRPCRoute';

/** A validation error as a Status cause: reason, message (the error body) and field. */
export interface Cause {
  readonly reason: string;
  readonly message: string;
  readonly field: string;
}

export interface RouteAdmission {
  /** The object after pruning and defaulting. */
  readonly object: JsonObject;
  /** Paths of the pruned unknown fields, e.g. `spec.rules[0].filters[0].requestMirror.percnt`. */
  readonly unknownFields: readonly string[];
  /** Validation errors; empty when the object is valid. */
  readonly causes: readonly Cause[];
}

interface SchemaFile {
  readonly HTTPRoute: Schema;
  readonly GRPCRoute: Schema;
}

let loaded: SchemaFile | undefined;

/** The `spec` schema of a route kind, as in the CRD. */
export function routeSpecSchema(kind: RouteKind): Schema {
  loaded ??= JSON.parse(
    readFileSync(new URL('./gateway-api-crd-schemas.json', import.meta.url), 'utf8'),
  ) as SchemaFile;
  return loaded[kind];
}

const ROOT_FIELDS = new Set(['apiVersion', 'kind', 'metadata', 'spec', 'status']);

/** Prunes, defaults and validates a route as kube-apiserver does on create, update and patch. */
export function admitRoute(kind: RouteKind, input: JsonObject): RouteAdmission {
  const object = cloneJson(input) as JsonObject;
  const unknownFields: string[] = [];
  for (const key of Object.keys(object)) {
    if (!ROOT_FIELDS.has(key)) {
      unknownFields.push(key);
      delete object[key];
    }
  }
  const schema = routeSpecSchema(kind);
  if (object.spec === null) delete object.spec;
  if (object.spec !== undefined) object.spec = pruneAndDefault(schema, object.spec, 'spec', unknownFields);
  const causes: Cause[] = [];
  if (object.spec !== undefined) validate(schema, object.spec, 'spec', causes);
  if (causes.some((c) => BLOCKING.has(c.reason))) {
    causes.push({
      reason: 'FieldValueInvalid',
      message:
        'Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation',
      field: '<nil>',
    });
  } else if (object.spec !== undefined) {
    evaluateRules(schema, object.spec, 'spec', causes);
  }
  return { object, unknownFields, causes };
}

// ---------------------------------------------------------------- pruning and defaulting

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function pruneAndDefault(schema: Schema, value: Json, path: string, unknown: string[]): Json {
  if (isObject(value) && schema.properties !== undefined) {
    const props = schema.properties;
    for (const key of Object.keys(value)) {
      const child = props[key];
      if (child === undefined) {
        unknown.push(`${path}.${key}`);
        delete value[key];
      } else if (value[key] === null && child.default === undefined) {
        delete value[key];
      }
    }
    for (const [key, child] of Object.entries(props)) {
      if ((value[key] === undefined || value[key] === null) && child.default !== undefined) {
        value[key] = cloneJson(child.default);
      }
      const v = value[key];
      if (v !== undefined) value[key] = pruneAndDefault(child, v, `${path}.${key}`, unknown);
    }
    return value;
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items;
    return value.map((item, i) => pruneAndDefault(items, item, `${path}[${i}]`, unknown));
  }
  return value;
}

// ---------------------------------------------------------------- OpenAPI schema validation

/** field.Error types that make the real server skip CEL rules (hasBlockingErr in apiextensions-apiserver). */
const BLOCKING = new Set([
  'FieldValueNotSupported',
  'FieldValueRequired',
  'FieldValueTooLong',
  'FieldValueTooMany',
  'FieldValueTypeInvalid',
]);

/** The OpenAPI type name of a JSON value, as kube-openapi reports it. */
function jsonType(value: Json): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function typeMatches(type: Schema['type'], value: Json): boolean {
  switch (type) {
    case undefined:
      return true;
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    default:
      return typeof value === type;
  }
}

/** A bad value as field.Error.ErrorBody prints it: numbers and booleans bare, strings quoted. */
function show(value: Json): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

const patterns = new Map<string, RegExp>();

function regex(pattern: string): RegExp {
  let re = patterns.get(pattern);
  if (re === undefined) {
    re = new RegExp(pattern, 'u');
    patterns.set(pattern, re);
  }
  return re;
}

function validate(schema: Schema, value: Json, path: string, causes: Cause[]): void {
  const invalid = (bad: Json, detail: string) =>
    causes.push({
      reason: 'FieldValueInvalid',
      message: `Invalid value: ${show(bad)}: ${detail}`,
      field: path,
    });
  if (!typeMatches(schema.type, value)) {
    const actual = jsonType(value);
    causes.push({
      reason: 'FieldValueTypeInvalid',
      message: `Invalid value: "${actual}": ${path} in body must be of type ${schema.type}: "${actual}"`,
      field: path,
    });
    return;
  }
  if (schema.enum !== undefined && !schema.enum.includes(value)) {
    const supported = schema.enum.map((v) => JSON.stringify(typeof v === 'string' ? v : JSON.stringify(v)));
    causes.push({
      reason: 'FieldValueNotSupported',
      message: `Unsupported value: ${show(value)}: supported values: ${supported.join(', ')}`,
      field: path,
    });
  }
  if (typeof value === 'number') {
    if (schema.maximum !== undefined && value > schema.maximum)
      invalid(value, `${path} in body should be less than or equal to ${schema.maximum}`);
    if (schema.minimum !== undefined && value < schema.minimum)
      invalid(value, `${path} in body should be greater than or equal to ${schema.minimum}`);
  }
  if (typeof value === 'string') {
    // kube-openapi counts runes, not bytes (the TooLong message says bytes all the same).
    const runes = [...value].length;
    if (schema.maxLength !== undefined && runes > schema.maxLength) {
      causes.push({
        reason: 'FieldValueTooLong',
        message: `Too long: may not be more than ${schema.maxLength} bytes`,
        field: path,
      });
    }
    if (schema.minLength !== undefined && runes < schema.minLength)
      invalid(value, `${path} in body should be at least ${schema.minLength} chars long`);
    if (schema.pattern !== undefined && !regex(schema.pattern).test(value))
      invalid(value, `${path} in body should match '${schema.pattern}'`);
  }
  if (Array.isArray(value)) {
    if (schema.maxItems !== undefined && value.length > schema.maxItems) {
      causes.push({
        reason: 'FieldValueTooMany',
        message: `Too many: ${value.length}: must have at most ${schema.maxItems} ${schema.maxItems === 1 ? 'item' : 'items'}`,
        field: path,
      });
    }
    if (schema.minItems !== undefined && value.length < schema.minItems)
      invalid(value.length, `${path} in body should have at least ${schema.minItems} items`);
    const items = schema.items;
    if (items !== undefined)
      for (const [i, item] of value.entries()) validate(items, item, `${path}[${i}]`, causes);
  }
  if (isObject(value)) {
    for (const key of schema.required ?? []) {
      if (value[key] === undefined)
        causes.push({ reason: 'FieldValueRequired', message: 'Required value', field: `${path}.${key}` });
    }
    const props = schema.properties ?? {};
    for (const [key, v] of Object.entries(value)) {
      const child = props[key];
      if (child !== undefined) validate(child, v, `${path}.${key}`, causes);
    }
  }
}

// ---------------------------------------------------------------- CEL rules

type Predicate = (self: Json) => boolean;

const has = (self: Json, field: string): boolean => isObject(self) && self[field] !== undefined;
const get = (self: Json, field: string): Json | undefined => (isObject(self) ? self[field] : undefined);
const list = (self: Json): Json[] => (Array.isArray(self) ? self : []);
const strOf = (self: Json, field: string): string => {
  const v = get(self, field);
  return typeof v === 'string' ? v : '';
};
const EXACT_OR_PREFIX = "(self.type in ['Exact','PathPrefix'])";
const exactOrPrefix = (self: Json) => ['Exact', 'PathPrefix'].includes(strOf(self, 'type'));

/** Rule expressions recognised by their exact text. */
const EXACT_RULES: Readonly<Record<string, Predicate>> = {
  "(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true": (self) =>
    !(strOf(self, 'group') === '' && get(self, 'kind') === 'Service') || has(self, 'port'),
  '(has(self.backendRefs) && size(self.backendRefs) > 0) ? (!has(self.filters) || self.filters.all(f, !has(f.requestRedirect))): true':
    (self) =>
      !(list(get(self, 'backendRefs') ?? []).length > 0) ||
      list(get(self, 'filters') ?? []).every((f) => !has(f, 'requestRedirect')),
  [`${EXACT_OR_PREFIX} ? self.value.startsWith('/') : true`]: (self) =>
    !exactOrPrefix(self) || strOf(self, 'value').startsWith('/'),
  "self.type in ['Exact','PathPrefix'] || self.type == 'RegularExpression'": (self) =>
    ['Exact', 'PathPrefix', 'RegularExpression'].includes(strOf(self, 'type')),
  'has(self.type) ? has(self.service) || has(self.method) : true': (self) =>
    !has(self, 'type') || has(self, 'service') || has(self, 'method'),
};

/** Families of rules recognised by a regular expression over their text. */
const RULE_FAMILIES: readonly [RegExp, (m: RegExpExecArray) => Predicate][] = [
  // filter.X must be nil if the filter.type is not T
  [
    /^!\(has\(self\.(\w+)\) && self\.type != '(\w+)'\)$/,
    ([, f, t]) =>
      (self) =>
        !(has(self, f as string) && get(self, 'type') !== t),
  ],
  // filter.X must be specified for T filter.type
  [
    /^!\(!has\(self\.(\w+)\) && self\.type == '(\w+)'\)$/,
    ([, f, t]) =>
      (self) =>
        !(!has(self, f as string) && get(self, 'type') === t),
  ],
  // Only one of percent or fraction may be specified
  [
    /^!\(has\(self\.(\w+)\) && has\(self\.(\w+)\)\)$/,
    ([, a, b]) =>
      (self) =>
        !(has(self, a as string) && has(self, b as string)),
  ],
  // numerator must be less than or equal to denominator
  [
    /^self\.(\w+) <= self\.(\w+)$/,
    ([, a, b]) =>
      (self) =>
        Number(get(self, a as string)) <= Number(get(self, b as string)),
  ],
  // X filter cannot be repeated
  [
    /^self\.filter\(f, f\.type == '(\w+)'\)\.size\(\) <= 1$/,
    ([, t]) =>
      (self) =>
        list(self).filter((f) => get(f, 'type') === t).length <= 1,
  ],
  // May specify either RequestRedirect or URLRewrite, but not both
  [
    /^!\(self\.exists\(f, f\.type == '(\w+)'\) && self\.exists\(f, f\.type == '(\w+)'\)\)$/,
    ([, a, b]) =>
      (self) =>
        !(list(self).some((f) => get(f, 'type') === a) && list(self).some((f) => get(f, 'type') === b)),
  ],
  // path modifier: X must be specified when type is set to T / type must be T when X is set
  [
    /^self\.type == '(\w+)' \? has\(self\.(\w+)\) : true$/,
    ([, t, f]) =>
      (self) =>
        get(self, 'type') !== t || has(self, f as string),
  ],
  [
    /^has\(self\.(\w+)\) \? self\.type == '(\w+)' : true$/,
    ([, f, t]) =>
      (self) =>
        !has(self, f as string) || get(self, 'type') === t,
  ],
  // CORS: '*' alone
  [
    /^!\('\*' in self && self\.size\(\) > 1\)$/,
    () => (self) => !(list(self).includes('*') && list(self).length > 1),
  ],
  // path match: must not contain / must not end with
  [
    /^\(self\.type in \['Exact','PathPrefix'\]\) \? !self\.value\.(contains|endsWith)\('([^']+)'\) : true$/,
    ([, op, text]) =>
      (self) => {
        const value = strOf(self, 'value');
        return (
          !exactOrPrefix(self) ||
          !(op === 'contains' ? value.includes(text as string) : value.endsWith(text as string))
        );
      },
  ],
  // path match / gRPC service and method: matches(r"""...""")
  [
    /^\(self\.type in \['Exact','PathPrefix'\]\) \? self\.value\.matches\(r"""(.*)"""\) : true$/,
    ([, re]) => {
      const compiled = new RegExp(re as string);
      return (self) => !exactOrPrefix(self) || compiled.test(strOf(self, 'value'));
    },
  ],
  [
    /^\(!has\(self\.type\) \|\| self\.type == 'Exact'\) && has\(self\.(\w+)\) \? self\.\1\.matches\(r"""(.*)"""\): true$/,
    ([, f, re]) => {
      // RE2's inline (?i) becomes the JavaScript i flag.
      const source = re as string;
      const compiled = new RegExp(source.replace('(?i)', ''), source.includes('(?i)') ? 'i' : '');
      return (self) =>
        !((!has(self, 'type') || get(self, 'type') === 'Exact') && has(self, f as string)) ||
        compiled.test(strOf(self, f as string));
    },
  ],
];

const compiledRules = new Map<string, Predicate | null>();

/** The predicate for a rule expression, or undefined when it is not implemented. */
function predicateFor(rule: string): Predicate | undefined {
  let p = compiledRules.get(rule);
  if (p === undefined) {
    p = EXACT_RULES[rule] ?? null;
    for (const [re, make] of RULE_FAMILIES) {
      if (p !== null) break;
      const m = re.exec(rule);
      if (m) p = make(m);
    }
    compiledRules.set(rule, p);
  }
  return p ?? undefined;
}

function evaluateRules(schema: Schema, value: Json, path: string, causes: Cause[]): void {
  for (const { rule, message } of schema['x-kubernetes-validations'] ?? []) {
    const p = predicateFor(rule);
    if (p !== undefined && !p(value)) {
      causes.push({
        reason: 'FieldValueInvalid',
        message: `Invalid value: "${schema.type}": ${message}`,
        field: path,
      });
    }
  }
  if (Array.isArray(value) && schema.items !== undefined) {
    const items = schema.items;
    for (const [i, item] of value.entries()) evaluateRules(items, item, `${path}[${i}]`, causes);
  } else if (isObject(value) && schema.properties !== undefined) {
    for (const [key, v] of Object.entries(value)) {
      const child = schema.properties[key];
      if (child !== undefined) evaluateRules(child, v, `${path}.${key}`, causes);
    }
  }
}

/** A CEL rule of the route schemas: the kind, the schema path (`[]` for list items) and the message. */
export interface RuleInfo {
  readonly kind: RouteKind;
  readonly path: string;
  readonly message: string;
}

function rulesWhere(implemented: boolean): RuleInfo[] {
  const out: RuleInfo[] = [];
  const walk = (kind: RouteKind, schema: Schema, path: string) => {
    for (const { rule, message } of schema['x-kubernetes-validations'] ?? []) {
      if ((predicateFor(rule) !== undefined) === implemented) out.push({ kind, path, message });
    }
    for (const [key, child] of Object.entries(schema.properties ?? {})) walk(kind, child, `${path}.${key}`);
    if (schema.items !== undefined) walk(kind, schema.items, `${path}[]`);
  };
  for (const kind of ['HTTPRoute', 'GRPCRoute'] as const) walk(kind, routeSpecSchema(kind), 'spec');
  return out;
}

/** The CEL rules of the route schemas that are evaluated. */
export function implementedRules(): RuleInfo[] {
  return rulesWhere(true);
}

/** The CEL rules of the route schemas that are not evaluated. */
export function unimplementedRules(): RuleInfo[] {
  return rulesWhere(false);
}
