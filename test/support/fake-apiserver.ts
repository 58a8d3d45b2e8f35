/**
 * A fake Kubernetes API server that is faithful on the wire, for driving the real @kubernetes/client-node.
 *
 * What it serves: discovery (/api, /apis, group and resource lists, /version), and for every registered
 * resource type (Istio VirtualServices in v1/v1beta1/v1alpha3, Gateway API HTTPRoutes in v1/v1beta1 and
 * GRPCRoutes in v1, coordination.k8s.io/v1 Leases, core v1 Events, and any type passed in `resources`) GET, LIST (namespaced and across namespaces, label and field
 * selectors, `limit`/`continue` paging), WATCH (newline-delimited JSON events, resume from a
 * resourceVersion, 410 Expired past the kept history, `timeoutSeconds`, bookmarks), POST, PUT, PATCH (JSON
 * Patch with `test`, merge patch, strategic merge for built-in types) and DELETE.
 *
 * Semantics copied from kube-apiserver: one global resourceVersion counter; a write that changes nothing
 * keeps the resourceVersion and emits no event; a stale resourceVersion in a PUT or patch body is 409
 * Conflict; a JSON Patch that fails to apply is 422 Invalid with a generic message; a custom resource PUT
 * without resourceVersion is 422; metadata.generation of a custom resource bumps when anything outside
 * metadata and status changes; errors are Status objects with the real codes, reasons, messages and details.
 * Gateway API routes are admitted as their CRDs make kube-apiserver admit them (see gateway-api.ts): unknown
 * fields pruned with a Warning header (400 under `fieldValidation=Strict`), defaults applied, the OpenAPI
 * schema and the CEL rules checked (422 Invalid with one cause per error), status kept out of main-resource
 * writes (the CRDs have a status subresource).
 * Bearer-token authentication (401) and RBAC-like rules (403 in the authorizer's words) are optional.
 *
 * Not implemented: server-side apply (415), finalizers and graceful deletion, deletecollection,
 * subresources (/status, /scale), namespaces as objects, events.k8s.io (core v1 Events only), protobuf.
 *
 * Test hooks: a request log, fault injection (status, delay, connection reset before or after the write,
 * hang, garbage body), hooks that run before a matching request (e.g. a concurrent edit between a client's
 * read and its write), direct store access, and watch controls (drop streams, compact history, bookmarks).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { admitRoute, type RouteKind } from './gateway-api.js';
import {
  applyJsonPatch,
  applyMergePatch,
  cloneJson,
  type Json,
  jsonEqual,
  PatchApplyError,
  PatchDecodeError,
} from './kube-patch.js';
import {
  alreadyExists,
  badRequest,
  conflict,
  expired,
  forbidden,
  type GroupResource,
  genericFailure,
  invalid,
  methodNotAllowed,
  notFound,
  notFoundPath,
  patchNotApplicable,
  type Status,
  unauthorized,
  unsupportedMediaType,
} from './kube-status.js';

export type JsonObject = { [key: string]: Json };

/** A resource type the server serves. */
export interface ResourceType {
  readonly group: string;
  /** Served versions; the first one is the storage (and preferred) version. */
  readonly versions: readonly string[];
  /** Plural, as in the URL. */
  readonly resource: string;
  readonly singular: string;
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames?: readonly string[];
  readonly categories?: readonly string[];
  /**
   * CustomResourceDefinition semantics: metadata.generation bumps on changes outside metadata/status, PUT
   * requires metadata.resourceVersion (422 otherwise), list items carry apiVersion/kind, strategic merge
   * patch is refused (415).
   */
  readonly custom: boolean;
  /** The type has a /status subresource: writes to the main resource do not change status (not served here). */
  readonly statusSubresource?: boolean;
}

export const ISTIO_VERSIONS = ['v1', 'v1beta1', 'v1alpha3'] as const;
export type IstioVersion = (typeof ISTIO_VERSIONS)[number];

/** Qualified names (`resource.group`) of the built-in resource types, used by the store methods. */
export const VIRTUAL_SERVICES = 'virtualservices.networking.istio.io';
export const LEASES = 'leases.coordination.k8s.io';
export const EVENTS = 'events';
export const HTTP_ROUTES = 'httproutes.gateway.networking.k8s.io';
export const GRPC_ROUTES = 'grpcroutes.gateway.networking.k8s.io';
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
/** Served HTTPRoute versions, preferred (and storage) first; GRPCRoute is served in v1 only. */
export const HTTP_ROUTE_VERSIONS = ['v1', 'v1beta1'] as const;
export const GRPC_ROUTE_VERSIONS = ['v1'] as const;
export type RouteResource = typeof HTTP_ROUTES | typeof GRPC_ROUTES;

function virtualServiceType(versions: readonly string[]): ResourceType {
  return {
    group: 'networking.istio.io',
    versions,
    resource: 'virtualservices',
    singular: 'virtualservice',
    kind: 'VirtualService',
    namespaced: true,
    shortNames: ['vs'],
    categories: ['istio-io', 'networking-istio-io'],
    custom: true,
  };
}

function routeType(kind: RouteKind, versions: readonly string[]): ResourceType {
  const resource = `${kind.toLowerCase()}s`;
  return {
    group: GATEWAY_API_GROUP,
    versions,
    resource,
    singular: kind.toLowerCase(),
    kind,
    namespaced: true,
    categories: ['gateway-api'],
    custom: true,
    statusSubresource: true,
  };
}

const ROUTE_KINDS: Readonly<Record<string, RouteKind>> = {
  [HTTP_ROUTES]: 'HTTPRoute',
  [GRPC_ROUTES]: 'GRPCRoute',
};

const LEASE_TYPE: ResourceType = {
  group: 'coordination.k8s.io',
  versions: ['v1'],
  resource: 'leases',
  singular: 'lease',
  kind: 'Lease',
  namespaced: true,
  custom: false,
};

const EVENT_TYPE: ResourceType = {
  group: '',
  versions: ['v1'],
  resource: 'events',
  singular: 'event',
  kind: 'Event',
  namespaced: true,
  shortNames: ['ev'],
  custom: false,
};

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

/** What a request is, as the server understood it. Kubernetes attributes are absent for discovery paths. */
export interface RequestInfo {
  readonly method: string;
  /** URL path without the query. */
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** Media type without parameters, e.g. `application/json-patch+json`. */
  readonly contentType?: string;
  /** Raw request body (empty string when none). */
  readonly body: string;
  readonly userAgent?: string;
  readonly verb?: Verb;
  readonly group?: string;
  readonly version?: string;
  /** Plural resource name. */
  readonly resource?: string;
  readonly namespace?: string;
  readonly name?: string;
}

/** A logged request; `status` is set when answered (absent for resets and hangs). */
export interface RequestRecord extends RequestInfo {
  status?: number;
  /** The authenticated user, when a valid token was sent. */
  user?: string;
}

/** Selects requests: every given field must equal, or a predicate. */
export type RequestMatcher =
  | Partial<Pick<RequestInfo, 'method' | 'verb' | 'group' | 'version' | 'resource' | 'namespace' | 'name'>>
  | ((info: RequestInfo) => boolean);

export type FaultAction =
  /** Answer with this HTTP status and a Status body in the API server's words (or `body`). */
  | {
      readonly kind: 'status';
      readonly code: number;
      readonly body?: unknown;
      readonly retryAfterSeconds?: number;
    }
  /** Wait, then handle normally. */
  | { readonly kind: 'delay'; readonly ms: number }
  /** Destroy the connection before handling: nothing is written. */
  | { readonly kind: 'reset' }
  /** Handle the request (a write is applied), then destroy the connection instead of answering. */
  | { readonly kind: 'resetAfterApply' }
  /** Never answer; the connection stays open until the client gives up or the server closes. */
  | { readonly kind: 'hang' }
  /** Answer with a body that is not JSON. */
  | { readonly kind: 'garbage'; readonly code?: number; readonly body?: string };

export interface FaultSpec {
  readonly match?: RequestMatcher;
  /** How many matching requests get the fault; default 1, Infinity for all. */
  readonly times?: number;
  readonly action: FaultAction;
}

/** A registered fault or hook. */
export interface Handle {
  /** Matching requests it has applied to so far. */
  readonly hits: number;
  /** Whether it still applies to future requests. */
  readonly active: boolean;
  remove(): void;
}

/** An RBAC-like permission. Requests are allowed when any rule matches; with no rules set, all are. */
export interface AccessRule {
  /** Kubernetes verbs, or `*`. */
  readonly verbs: readonly string[];
  /** API groups (`''` for core), or `*`. */
  readonly apiGroups: readonly string[];
  /** Plural resources, or `*`. */
  readonly resources: readonly string[];
  /** Restricts the rule to these object names (requests without a name never match then). */
  readonly resourceNames?: readonly string[];
  /** Namespaces the rule is bound in (a Role); undefined means cluster-wide (a ClusterRole binding). */
  readonly namespaces?: readonly string[];
}

export interface FakeApiServerOptions {
  /** Accepted bearer token; null disables authentication. Default `test-token`. */
  readonly token?: string | null;
  /** The user that token authenticates as (used in 403 messages). */
  readonly user?: string;
  /** Served Istio networking versions, preferred first; default v1, v1beta1, v1alpha3. Empty: Istio absent. */
  readonly istioVersions?: readonly IstioVersion[];
  /** More resource types to serve. */
  readonly resources?: readonly ResourceType[];
  /** Authorisation rules; undefined allows everything. */
  readonly rules?: readonly AccessRule[];
  /** Watch events kept for resuming from a resourceVersion; default 10 000. */
  readonly watchHistory?: number;
  /** Reject VirtualServices Istio's validating webhook would reject (mirror+mirrors, bad percentages); default true. */
  readonly istioValidation?: boolean;
  /**
   * Gateway API CRDs installed: HTTPRoutes (v1, v1beta1) and GRPCRoutes (v1) served; default true. False: the
   * group is absent from discovery and its paths are 404 (the store still holds routes set directly).
   */
  readonly gatewayApi?: boolean;
  /** Admit routes as their CRDs do (pruning, defaults, schema and CEL rules); default true. */
  readonly gatewayApiValidation?: boolean;
  /** Clock for creationTimestamp. */
  readonly now?: () => Date;
  /** Git version reported by /version; default v1.31.0. */
  readonly kubernetesVersion?: string;
}

interface HistoryEvent {
  readonly rv: number;
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED';
  readonly resource: string;
  readonly object: JsonObject;
}

interface Watcher {
  readonly resource: string;
  readonly version: string;
  readonly namespace: string | undefined;
  readonly filter: (obj: JsonObject) => boolean;
  readonly bookmarks: boolean;
  readonly res: ServerResponse;
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
}

interface Registered<T> {
  readonly match: RequestMatcher | undefined;
  remaining: number;
  hits: number;
  readonly value: T;
}

class HttpAnswer {
  constructor(
    readonly code: number,
    readonly body: unknown,
    readonly headers: Record<string, string | string[]> = {},
  ) {}
}

function fail(status: Status, headers: Record<string, string> = {}): HttpAnswer {
  return new HttpAnswer(status.code, status, headers);
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function meta(obj: JsonObject): JsonObject {
  const m = obj.metadata;
  if (!isObject(m)) throw new Error('object without metadata');
  return m;
}

function qualifiedName(rt: ResourceType): string {
  return rt.group === '' ? rt.resource : `${rt.resource}.${rt.group}`;
}

function apiVersionOf(rt: ResourceType, version: string): string {
  return rt.group === '' ? version : `${rt.group}/${version}`;
}

function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

function matches(matcher: RequestMatcher | undefined, info: RequestInfo): boolean {
  if (matcher === undefined) return true;
  if (typeof matcher === 'function') return matcher(info);
  return Object.entries(matcher).every(([key, value]) => info[key as keyof RequestInfo] === value);
}

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function randomSuffix(): string {
  return [...randomBytes(5)].map((b) => NAME_ALPHABET[b % NAME_ALPHABET.length]).join('');
}

/**
 * The field manager of a write, as kube-apiserver names it: the `fieldManager` query parameter, else the
 * user agent up to its first "/" (client-go's default), else "unknown".
 */
function managerOf(info: RequestInfo): string {
  const given = info.query.fieldManager;
  if (given !== undefined && given !== '') return given;
  const agent = info.userAgent?.split('/')[0]?.trim();
  return agent === undefined || agent === '' ? 'unknown' : agent;
}

/**
 * Records a write in metadata.managedFields the way Update operations do, at the granularity of the
 * top-level parts of the object: the writer's entry (manager, operation Update, apiVersion) gets the time
 * and the parts it changed (`f:spec`, `f:metadata` with `f:labels` / `f:annotations`); a part changed
 * by one manager is no longer owned by the others, and an entry left owning nothing is dropped. A client
 * that sends managedFields itself (a test seeding a GitOps controller's write) is taken at its word.
 */
function trackManagedFields(
  old: JsonObject | undefined,
  next: JsonObject,
  manager: string,
  time: string,
): void {
  const m = meta(next);
  const oldMeta = old === undefined ? {} : meta(old);
  if (
    old !== undefined &&
    !jsonEqual(m.managedFields, oldMeta.managedFields) &&
    m.managedFields !== undefined
  ) {
    return;
  }
  const changed: Record<string, Json> = {};
  if (
    !jsonEqual(old === undefined ? undefined : specPart(old), specPart(next)) &&
    Object.keys(specPart(next)).length > 0
  ) {
    changed['f:spec'] = {};
  }
  const metaParts: Record<string, Json> = {};
  for (const part of ['labels', 'annotations'] as const) {
    if (!jsonEqual(oldMeta[part], m[part]) && m[part] !== undefined) metaParts[`f:${part}`] = {};
  }
  if (Object.keys(metaParts).length > 0) changed['f:metadata'] = metaParts;
  if (Object.keys(changed).length === 0) return;
  const apiVersion = typeof next.apiVersion === 'string' ? next.apiVersion : 'v1';
  const entries = (
    Array.isArray(oldMeta.managedFields) ? cloneJson(oldMeta.managedFields) : []
  ) as JsonObject[];
  const kept: JsonObject[] = [];
  let own: JsonObject | undefined;
  for (const e of entries) {
    if (e.manager === manager && e.operation === 'Update') {
      own = e;
      continue;
    }
    const fields = { ...((e.fieldsV1 as JsonObject | undefined) ?? {}) };
    if (changed['f:spec'] !== undefined) delete fields['f:spec'];
    if (Object.keys(fields).length > 0) kept.push({ ...e, fieldsV1: fields });
  }
  const ownFields = { ...((own?.fieldsV1 as JsonObject | undefined) ?? {}) };
  if (changed['f:spec'] !== undefined) ownFields['f:spec'] = {};
  if (changed['f:metadata'] !== undefined) {
    ownFields['f:metadata'] = {
      ...((ownFields['f:metadata'] as JsonObject | undefined) ?? {}),
      ...metaParts,
    };
  }
  kept.push({ manager, operation: 'Update', apiVersion, time, fieldsType: 'FieldsV1', fieldsV1: ownFields });
  m.managedFields = kept;
}

/** Everything that is not metadata or status: a change there bumps metadata.generation. */
function specPart(obj: JsonObject): JsonObject {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = obj;
  return rest;
}

type Selector = (labels: Record<string, string>) => boolean;

/** Parses a label selector (`a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x,y)`). */
function parseLabelSelector(text: string): Selector {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += ch;
  }
  if (current.trim() !== '') terms.push(current);
  const tests = terms.map((raw): Selector => {
    const term = raw.trim();
    let m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m) {
      const [, key, op, list] = m as unknown as [string, string, string, string];
      const values = list.split(',').map((v) => v.trim());
      return op === 'in'
        ? (l) => l[key] !== undefined && values.includes(l[key])
        : (l) => l[key] === undefined || !values.includes(l[key]);
    }
    m = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(term);
    if (m) {
      const [, key, op, value] = m as unknown as [string, string, string, string];
      return op === '!=' ? (l) => l[key] !== value : (l) => l[key] === value;
    }
    m = /^(!?)([\w./-]+)$/.exec(term);
    if (m) {
      const [, not, key] = m as unknown as [string, string, string];
      return not === '!' ? (l) => l[key] === undefined : (l) => l[key] !== undefined;
    }
    throw new Error(`unable to parse requirement: ${JSON.stringify(term)}`);
  });
  return (labels) => tests.every((t) => t(labels));
}

/** Parses a field selector over metadata.name and metadata.namespace (what the API server supports for CRs). */
function parseFieldSelector(text: string): (obj: JsonObject) => boolean {
  const tests = text
    .split(',')
    .filter((t) => t.trim() !== '')
    .map((raw) => {
      const m = /^\s*(metadata\.name|metadata\.namespace)\s*(==|=|!=)\s*(.*?)\s*$/.exec(raw);
      if (!m) throw new Error(`field label not supported: ${raw.split(/[!=]/)[0]?.trim() ?? raw}`);
      const [, field, op, value] = m as unknown as [string, string, string, string];
      const key = field === 'metadata.name' ? 'name' : 'namespace';
      return (obj: JsonObject) => (meta(obj)[key] === value) !== (op === '!=');
    });
  return (obj) => tests.every((t) => t(obj));
}

function labelsOf(obj: JsonObject): Record<string, string> {
  const labels = meta(obj).labels;
  return isObject(labels) ? (labels as Record<string, string>) : {};
}

/** Checks what Istio's validating webhook checks about mirroring; returns the denial message or undefined. */
function istioMirrorValidation(obj: JsonObject): string | undefined {
  const spec = obj.spec;
  const http = isObject(spec) ? spec.http : undefined;
  if (!Array.isArray(http)) return undefined;
  const badPercent = (v: unknown) =>
    v !== undefined && v !== null && (typeof v !== 'number' || v < 0 || v > 100);
  for (const [i, route] of http.entries()) {
    if (!isObject(route)) continue;
    const hasMirror = route.mirror !== undefined && route.mirror !== null;
    const hasMirrors = route.mirrors !== undefined && route.mirrors !== null;
    if (hasMirror && hasMirrors) return `http[${i}]: only one of mirror or mirrors can be specified`;
    if (isObject(route.mirrorPercentage) && badPercent(route.mirrorPercentage.value)) {
      return `http[${i}]: percentage ${JSON.stringify(route.mirrorPercentage.value)} is not in range 0..100`;
    }
    for (const f of ['mirrorPercent', 'mirror_percent']) {
      if (badPercent(route[f])) return `http[${i}]: ${f} ${JSON.stringify(route[f])} is not in range 0..100`;
    }
    if (Array.isArray(route.mirrors)) {
      for (const [j, m] of route.mirrors.entries()) {
        if (isObject(m) && isObject(m.percentage) && badPercent(m.percentage.value)) {
          return `http[${i}].mirrors[${j}]: percentage ${JSON.stringify(m.percentage.value)} is not in range 0..100`;
        }
      }
    }
  }
  return undefined;
}

const JSON_PATCH = 'application/json-patch+json';
const MERGE_PATCH = 'application/merge-patch+json';
const STRATEGIC_PATCH = 'application/strategic-merge-patch+json';
const APPLY_PATCH = 'application/apply-patch+yaml';
const MAX_BODY = 3 * 1024 * 1024;

/** See the file comment. Start with `FakeApiServer.start()`, stop with `close()`. */
export class FakeApiServer {
  /** TCP connections accepted so far (clients that reuse connections keep this low). */
  connectionCount = 0;

  /** Base URL, e.g. http://127.0.0.1:40123. */
  readonly url: string;
  readonly port: number;

  private readonly server: Server;
  private readonly types = new Map<string, ResourceType>();
  private readonly store = new Map<string, Map<string, JsonObject>>();
  private readonly history: HistoryEvent[] = [];
  private compactedThrough = 0;
  private rv = 1000;
  private readonly watchers = new Set<Watcher>();
  private readonly log: RequestRecord[] = [];
  private readonly faults: Registered<FaultAction>[] = [];
  private readonly hooks: Registered<(info: RequestInfo, server: FakeApiServer) => void | Promise<void>>[] =
    [];
  private readonly hanging = new Set<ServerResponse>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly tempDirs: string[] = [];
  private readonly tokens = new Map<string, string>();
  private authEnabled: boolean;
  private rules: readonly AccessRule[] | undefined;
  private readonly emitter = new EventEmitter();
  private closed = false;
  private readonly historyLimit: number;
  private readonly istioValidation: boolean;
  private readonly gatewayApiValidation: boolean;
  private readonly now: () => Date;
  private readonly gitVersion: string;

  private constructor(server: Server, options: FakeApiServerOptions) {
    this.server = server;
    const address = server.address() as AddressInfo;
    this.port = address.port;
    this.url = `http://127.0.0.1:${address.port}`;
    const token = options.token === undefined ? 'test-token' : options.token;
    this.authEnabled = token !== null;
    if (token !== null) this.tokens.set(token, options.user ?? DEFAULT_USER);
    this.rules = options.rules;
    this.historyLimit = options.watchHistory ?? 10_000;
    this.istioValidation = options.istioValidation ?? true;
    this.gatewayApiValidation = options.gatewayApiValidation ?? true;
    this.now = options.now ?? (() => new Date());
    this.gitVersion = options.kubernetesVersion ?? 'v1.31.0';
    const istio = options.istioVersions ?? ISTIO_VERSIONS;
    const gateway = options.gatewayApi ?? true;
    // The store keeps VirtualServices and routes even when no version is served, so tests can seed them.
    for (const rt of [
      virtualServiceType(istio),
      routeType('HTTPRoute', gateway ? HTTP_ROUTE_VERSIONS : []),
      routeType('GRPCRoute', gateway ? GRPC_ROUTE_VERSIONS : []),
      LEASE_TYPE,
      EVENT_TYPE,
      ...(options.resources ?? []),
    ]) {
      this.types.set(qualifiedName(rt), rt);
      this.store.set(qualifiedName(rt), new Map());
    }
    this.emitter.setMaxListeners(100);
  }

  /** Starts a server on 127.0.0.1 and a free port. */
  static async start(options: FakeApiServerOptions = {}): Promise<FakeApiServer> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const fake = new FakeApiServer(server, options);
    server.on('connection', () => {
      fake.connectionCount += 1;
    });
    server.on('request', (req, res) => {
      fake.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { 'Content-Type': 'application/json' });
          res.end(JSON.stringify(genericFailure(500)));
        }
        fake.emitter.emit('handlerError', err);
      });
    });
    return fake;
  }

  /** Ends every watch and open connection, stops the server and removes written kubeconfig files. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.watchers) this.endWatch(w, 'end');
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await stopped;
    await Promise.all(this.tempDirs.map((d) => rm(d, { recursive: true, force: true })));
  }

  // ---------------------------------------------------------------- client configuration

  /** A KubeConfig for the real client, pointing here with a bearer token (default: the accepted one). */
  kubeConfig(options: { token?: string | null; namespace?: string } = {}): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromString(this.kubeconfigYaml(options));
    return kc;
  }

  /** The kubeconfig file content (http://127.0.0.1 needs insecure-skip-tls-verify for client-node). */
  kubeconfigYaml(options: { token?: string | null; namespace?: string } = {}): string {
    const token = options.token === undefined ? [...this.tokens.keys()][0] : options.token;
    return stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: token === undefined || token === null ? {} : { token } }],
      contexts: [
        {
          name: 'fake',
          context: {
            cluster: 'fake',
            user: 'fake',
            ...(options.namespace ? { namespace: options.namespace } : {}),
          },
        },
      ],
      'current-context': 'fake',
    });
  }

  /** Writes the kubeconfig to a temporary file (removed by close) and returns its path, for KUBECONFIG. */
  async writeKubeconfig(options: { token?: string | null; namespace?: string } = {}): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'fake-apiserver-'));
    this.tempDirs.push(dir);
    const file = join(dir, 'kubeconfig');
    await writeFile(file, this.kubeconfigYaml(options), { mode: 0o600 });
    return file;
  }

  // ---------------------------------------------------------------- auth

  /** Replaces the accepted tokens by this one (null: no authentication). */
  setToken(token: string | null, user = DEFAULT_USER): void {
    this.tokens.clear();
    this.authEnabled = token !== null;
    if (token !== null) this.tokens.set(token, user);
  }

  /** Accepts one more token, authenticating as `user`. */
  addToken(token: string, user: string): void {
    this.tokens.set(token, user);
    this.authEnabled = true;
  }

  /** Replaces the authorisation rules; undefined allows everything. */
  setRules(rules: readonly AccessRule[] | undefined): void {
    this.rules = rules;
  }

  // ---------------------------------------------------------------- store access

  /** The current global resourceVersion. */
  get resourceVersion(): string {
    return String(this.rv);
  }

  /**
   * Creates or replaces an object directly (no admission, no auth), as another writer would; emits the
   * watch event. System metadata (uid, creationTimestamp) is kept from the existing object unless given.
   * @returns the stored object.
   */
  setObject(resource: string, obj: JsonObject): JsonObject {
    const rt = this.type(resource);
    const m = isObject(obj.metadata) ? obj.metadata : {};
    if (typeof m.name !== 'string') throw new Error('setObject: metadata.name is required');
    const namespace = rt.namespaced ? (typeof m.namespace === 'string' ? m.namespace : 'default') : undefined;
    const key = objectKey(namespace, m.name);
    const old = this.bucket(resource).get(key);
    const next = cloneJson(obj);
    const nextMeta = meta(next);
    if (namespace !== undefined) nextMeta.namespace = namespace;
    delete nextMeta.resourceVersion;
    if (old === undefined) return this.commitCreate(rt, next, false);
    return this.commitUpdate(rt, old, next, false, true);
  }

  /** A copy of a stored object (apiVersion of the storage version), or undefined. */
  getObject(resource: string, namespace: string | undefined, name: string): JsonObject | undefined {
    const obj = this.bucket(resource).get(
      objectKey(this.type(resource).namespaced ? namespace : undefined, name),
    );
    return obj === undefined ? undefined : cloneJson(obj);
  }

  /** Copies of the stored objects of a type (in one namespace, or all), in list order. */
  listObjects(resource: string, namespace?: string): JsonObject[] {
    return this.sorted(resource)
      .filter((o) => namespace === undefined || meta(o).namespace === namespace)
      .map((o) => cloneJson(o));
  }

  /**
   * Edits a stored object in place as another writer would (new resourceVersion, MODIFIED event). `edit`
   * mutates its argument or returns a replacement.
   * @throws Error when the object does not exist.
   */
  mutateObject(
    resource: string,
    namespace: string | undefined,
    name: string,
    edit: (obj: JsonObject) => unknown,
  ): JsonObject {
    const rt = this.type(resource);
    const old = this.bucket(resource).get(objectKey(rt.namespaced ? namespace : undefined, name));
    if (old === undefined) throw new Error(`mutateObject: ${resource} ${namespace}/${name} does not exist`);
    const draft = cloneJson(old);
    const returned = edit(draft);
    const next = isObject(returned) ? returned : draft;
    const nextMeta = meta(next);
    delete nextMeta.resourceVersion;
    return this.commitUpdate(rt, old, next, false, true);
  }

  /** Deletes a stored object directly; emits DELETED. @returns whether it existed. */
  deleteObject(resource: string, namespace: string | undefined, name: string): boolean {
    const rt = this.type(resource);
    const key = objectKey(rt.namespaced ? namespace : undefined, name);
    const old = this.bucket(resource).get(key);
    if (old === undefined) return false;
    this.commitDelete(rt, key, old, false);
    return true;
  }

  /** Shorthand for setObject on VirtualServices. */
  setVirtualService(vs: JsonObject): JsonObject {
    return this.setObject(VIRTUAL_SERVICES, vs);
  }

  /** Shorthand for getObject on VirtualServices. */
  getVirtualService(namespace: string, name: string): JsonObject | undefined {
    return this.getObject(VIRTUAL_SERVICES, namespace, name);
  }

  /**
   * Creates or replaces a route directly, after the pruning and defaulting its CRD makes the API server
   * apply, so the stored object looks like one written through the API. Status is stored as given.
   * @throws Error with the API server's Invalid message when the route would be rejected.
   */
  setRoute(resource: RouteResource, route: JsonObject): JsonObject {
    const admitted = this.admitRoute(resource, route);
    if (isStatus(admitted)) throw new Error(admitted.message);
    return this.setObject(resource, admitted.object);
  }

  /** Shorthand for getObject on routes. */
  getRoute(resource: RouteResource, namespace: string, name: string): JsonObject | undefined {
    return this.getObject(resource, namespace, name);
  }

  /** Prunes, defaults and validates a route; a Status when invalid. */
  private admitRoute(
    resource: string,
    obj: JsonObject,
  ): { object: JsonObject; unknownFields: readonly string[] } | Status {
    const kind = ROUTE_KINDS[resource];
    if (kind === undefined) throw new Error(`not a route type: ${resource}`);
    const admitted = admitRoute(kind, obj);
    if (admitted.causes.length === 0 || !this.gatewayApiValidation) return admitted;
    const name = isObject(obj.metadata) && typeof obj.metadata.name === 'string' ? obj.metadata.name : '';
    return invalid(GATEWAY_API_GROUP, kind, name, [...admitted.causes]);
  }

  // ---------------------------------------------------------------- request log

  /** Every request received so far, in order. */
  get requests(): readonly RequestRecord[] {
    return this.log;
  }

  clearRequests(): void {
    this.log.length = 0;
  }

  /** Requests matching `match` (all fields equal, or a predicate). */
  requestsMatching(match: RequestMatcher): RequestRecord[] {
    return this.log.filter((r) => matches(match, r));
  }

  countRequests(match: RequestMatcher): number {
    return this.requestsMatching(match).length;
  }

  // ---------------------------------------------------------------- faults and hooks

  /** The next `times` (default 1) requests matching `match` get `action` instead of (or around) normal handling. */
  injectFault(spec: FaultSpec): Handle {
    return this.register(this.faults, spec.match, spec.times ?? 1, spec.action);
  }

  /**
   * Runs `fn` before the next `times` (default 1) requests matching `match` are handled, after
   * authentication and authorisation passed. Use it to change the store between a client's read and write.
   */
  beforeRequest(
    match: RequestMatcher,
    fn: (info: RequestInfo, server: FakeApiServer) => void | Promise<void>,
    times = 1,
  ): Handle {
    return this.register(this.hooks, match, times, fn);
  }

  /**
   * Edits an object as another writer would, just before the next `times` write requests (patch or update
   * by default) to it are handled: the client's write then carries a stale resourceVersion.
   */
  concurrentEdit(
    target: { resource?: string; namespace: string; name: string; verbs?: readonly Verb[] },
    edit: (obj: JsonObject) => unknown,
    times = 1,
  ): Handle {
    const resource = target.resource ?? VIRTUAL_SERVICES;
    const rt = this.type(resource);
    const verbs = target.verbs ?? ['patch', 'update'];
    return this.beforeRequest(
      (info) =>
        info.verb !== undefined &&
        verbs.includes(info.verb) &&
        info.group === rt.group &&
        info.resource === rt.resource &&
        info.namespace === target.namespace &&
        info.name === target.name,
      () => {
        this.mutateObject(resource, target.namespace, target.name, edit);
      },
      times,
    );
  }

  private register<T>(
    list: Registered<T>[],
    match: RequestMatcher | undefined,
    times: number,
    value: T,
  ): Handle {
    const entry: Registered<T> = { match, remaining: times, hits: 0, value };
    list.push(entry);
    return {
      get hits() {
        return entry.hits;
      },
      get active() {
        return entry.remaining > 0;
      },
      remove: () => {
        entry.remaining = 0;
      },
    };
  }

  private take<T>(list: Registered<T>[], info: RequestInfo): T[] {
    const taken: T[] = [];
    for (const entry of list) {
      if (entry.remaining > 0 && matches(entry.match, info)) {
        entry.remaining--;
        entry.hits++;
        taken.push(entry.value);
      }
    }
    return taken;
  }

  // ---------------------------------------------------------------- watch controls

  /** Open watch streams (of one resource type, when given). */
  watchCount(resource?: string): number {
    return [...this.watchers].filter((w) => !w.closed && (resource === undefined || w.resource === resource))
      .length;
  }

  /** Resolves once at least `count` watches of `resource` are open; rejects after `timeoutMs`. */
  waitForWatches(count: number, resource?: string, timeoutMs = 5000): Promise<void> {
    if (this.watchCount(resource) >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.watchCount(resource) >= count) {
          cleanup();
          resolve();
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(`waitForWatches: ${this.watchCount(resource)} of ${count} watches after ${timeoutMs} ms`),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.emitter.off('watch', check);
      };
      this.emitter.on('watch', check);
    });
  }

  /**
   * Ends open watch streams: `end` closes them cleanly (as a server timeout does), `reset` destroys the
   * connection (as a dropped network does). @returns how many were ended.
   */
  dropWatches(options: { resource?: string; mode?: 'end' | 'reset' } = {}): number {
    let count = 0;
    for (const w of [...this.watchers]) {
      if (options.resource !== undefined && w.resource !== options.resource) continue;
      this.endWatch(w, options.mode ?? 'reset');
      count++;
    }
    return count;
  }

  /** Forgets the kept watch history: a watch resuming from an older resourceVersion then gets 410 Expired. */
  compactHistory(): void {
    this.compactedThrough = this.rv;
    this.history.length = 0;
  }

  /** Sends a BOOKMARK with the current resourceVersion to every watch that asked for bookmarks. */
  sendBookmarks(): void {
    for (const w of this.watchers) {
      if (!w.bookmarks || w.closed) continue;
      const rt = this.type(w.resource);
      this.writeEvent(w, 'BOOKMARK', {
        apiVersion: apiVersionOf(rt, w.version),
        kind: rt.kind,
        metadata: { resourceVersion: String(this.rv) },
      });
    }
  }

  private endWatch(w: Watcher, mode: 'end' | 'reset'): void {
    if (w.closed) return;
    w.closed = true;
    if (w.timer !== undefined) clearTimeout(w.timer);
    this.watchers.delete(w);
    if (mode === 'reset') w.res.destroy();
    else w.res.end();
  }

  // ---------------------------------------------------------------- internals: store

  private type(resource: string): ResourceType {
    const rt = this.types.get(resource);
    if (rt === undefined)
      throw new Error(`unknown resource type ${resource}; known: ${[...this.types.keys()].join(', ')}`);
    return rt;
  }

  private bucket(resource: string): Map<string, JsonObject> {
    const bucket = this.store.get(resource);
    if (bucket === undefined) throw new Error(`unknown resource type ${resource}`);
    return bucket;
  }

  private sorted(resource: string): JsonObject[] {
    return [...this.bucket(resource).entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o);
  }

  private timestamp(): string {
    return `${this.now().toISOString().slice(0, 19)}Z`;
  }

  private record(resource: string, type: HistoryEvent['type'], object: JsonObject): void {
    const event: HistoryEvent = { rv: this.rv, type, resource, object: cloneJson(object) };
    this.history.push(event);
    while (this.history.length > this.historyLimit) {
      const dropped = this.history.shift();
      if (dropped !== undefined) this.compactedThrough = dropped.rv;
    }
    for (const w of this.watchers) {
      if (w.resource === resource && !w.closed && this.visible(w, event.object)) {
        this.writeEvent(w, type, this.render(this.type(resource), event.object, w.version));
      }
    }
  }

  private visible(w: Watcher, obj: JsonObject): boolean {
    return (w.namespace === undefined || meta(obj).namespace === w.namespace) && w.filter(obj);
  }

  /** Stores a new object: uid, creationTimestamp, generation, resourceVersion. */
  private commitCreate(rt: ResourceType, obj: JsonObject, dryRun: boolean, manager?: string): JsonObject {
    const m = meta(obj);
    if (manager !== undefined) trackManagedFields(undefined, obj, manager, this.timestamp());
    if (typeof m.uid !== 'string') m.uid = randomUUID();
    if (typeof m.creationTimestamp !== 'string') m.creationTimestamp = this.timestamp();
    if (rt.custom) m.generation = 1;
    obj.apiVersion = apiVersionOf(rt, rt.versions[0] ?? 'v1');
    obj.kind = rt.kind;
    if (dryRun) return obj;
    this.rv++;
    m.resourceVersion = String(this.rv);
    this.bucket(qualifiedName(rt)).set(objectKey(m.namespace as string | undefined, m.name as string), obj);
    this.record(qualifiedName(rt), 'ADDED', obj);
    return cloneJson(obj);
  }

  /**
   * Stores a new version of `old`. System fields come from `old`; metadata.generation bumps on a spec
   * change; a write that changes nothing keeps the resourceVersion and emits nothing (as etcd3 storage does).
   */
  private commitUpdate(
    rt: ResourceType,
    old: JsonObject,
    next: JsonObject,
    dryRun: boolean,
    keepGivenSystemFields = false,
    manager?: string,
  ): JsonObject {
    const oldMeta = meta(old);
    const m = meta(next);
    if (manager !== undefined) trackManagedFields(old, next, manager, this.timestamp());
    for (const f of ['uid', 'creationTimestamp', 'namespace', 'name'] as const) {
      if (!(keepGivenSystemFields && typeof m[f] === 'string' && f !== 'name' && f !== 'namespace')) {
        if (oldMeta[f] === undefined) delete m[f];
        else m[f] = oldMeta[f];
      }
    }
    next.apiVersion = old.apiVersion as Json;
    next.kind = old.kind as Json;
    if (rt.custom) {
      const generation = typeof oldMeta.generation === 'number' ? oldMeta.generation : 1;
      m.generation = jsonEqual(specPart(old), specPart(next)) ? generation : generation + 1;
    }
    m.resourceVersion = oldMeta.resourceVersion as Json;
    if (jsonEqual(old, next) || dryRun) return cloneJson(next);
    this.rv++;
    m.resourceVersion = String(this.rv);
    this.bucket(qualifiedName(rt)).set(objectKey(m.namespace as string | undefined, m.name as string), next);
    this.record(qualifiedName(rt), 'MODIFIED', next);
    return cloneJson(next);
  }

  private commitDelete(rt: ResourceType, key: string, old: JsonObject, dryRun: boolean): void {
    if (dryRun) return;
    this.rv++;
    this.bucket(qualifiedName(rt)).delete(key);
    const gone = cloneJson(old);
    meta(gone).resourceVersion = String(this.rv);
    this.record(qualifiedName(rt), 'DELETED', gone);
  }

  /** The object as served in `version`: same body, apiVersion rewritten. */
  private render(rt: ResourceType, obj: JsonObject, version: string): JsonObject {
    return { ...cloneJson(obj), apiVersion: apiVersionOf(rt, version), kind: rt.kind };
  }

  // ---------------------------------------------------------------- internals: HTTP

  private async readBody(req: IncomingMessage): Promise<string | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > MAX_BODY) return undefined;
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }

  private parse(req: IncomingMessage, body: string): RequestInfo {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const query = Object.fromEntries(url.searchParams.entries());
    const contentType = req.headers['content-type']?.split(';')[0]?.trim().toLowerCase();
    const userAgent = req.headers['user-agent'];
    const base = {
      method,
      path: url.pathname,
      query,
      body,
      ...(contentType ? { contentType } : {}),
      ...(userAgent ? { userAgent } : {}),
    };
    const segments = url.pathname
      .split('/')
      .filter((s) => s !== '')
      .map(decodeURIComponent);
    let group: string;
    let version: string | undefined;
    let rest: string[];
    if (segments[0] === 'api') {
      group = '';
      version = segments[1];
      rest = segments.slice(2);
    } else if (segments[0] === 'apis') {
      group = segments[1] ?? '';
      version = segments[2];
      rest = segments.slice(3);
    } else return base;
    if (version === undefined || rest.length === 0) return base;
    let namespace: string | undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const [resource, name, subresource] = rest;
    if (resource === undefined || subresource !== undefined) return base;
    const watch = query.watch === 'true' || query.watch === '1';
    const verb: Verb | undefined =
      method === 'GET'
        ? name !== undefined
          ? 'get'
          : watch
            ? 'watch'
            : 'list'
        : method === 'POST' && name === undefined
          ? 'create'
          : method === 'PUT' && name !== undefined
            ? 'update'
            : method === 'PATCH' && name !== undefined
              ? 'patch'
              : method === 'DELETE' && name !== undefined
                ? 'delete'
                : undefined;
    return {
      ...base,
      ...(verb === undefined ? {} : { verb }),
      group,
      version,
      resource,
      ...(namespace === undefined ? {} : { namespace }),
      ...(name === undefined ? {} : { name }),
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.readBody(req);
    const info = this.parse(req, body ?? '');
    const record: RequestRecord = { ...info };
    this.log.push(record);
    if (this.closed) {
      res.destroy();
      return;
    }
    if (body === undefined) {
      this.send(res, record, fail(genericFailure(413)));
      return;
    }

    let resetAfter = false;
    for (const action of this.take(this.faults, info)) {
      switch (action.kind) {
        case 'delay':
          await this.sleep(action.ms);
          if (this.closed) {
            res.destroy();
            return;
          }
          break;
        case 'reset':
          req.socket.destroy();
          return;
        case 'hang':
          this.hanging.add(res);
          res.on('close', () => this.hanging.delete(res));
          return;
        case 'resetAfterApply':
          resetAfter = true;
          break;
        case 'garbage':
          record.status = action.code ?? 200;
          res.writeHead(record.status, { 'Content-Type': 'application/json' });
          res.end(action.body ?? '<html>502 Bad Gateway</html>{"kind":');
          return;
        case 'status': {
          const status = action.body ?? genericFailure(action.code, action.retryAfterSeconds);
          const headers: Record<string, string> =
            action.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(action.retryAfterSeconds) };
          this.send(res, record, new HttpAnswer(action.code, status, headers));
          return;
        }
      }
    }

    const auth = this.authenticate(req);
    if (auth === undefined) {
      this.send(res, record, fail(unauthorized()));
      return;
    }
    record.user = auth;

    const rt = this.resourceFor(info);
    if (rt !== undefined && info.verb !== undefined) {
      const denied = this.authorize(info, rt, auth);
      if (denied !== undefined) {
        this.send(res, record, fail(denied));
        return;
      }
    }
    for (const hook of this.take(this.hooks, info)) await hook(info, this);

    if (info.verb === 'watch' && rt !== undefined) {
      const answer = this.startWatch(info, rt, res);
      if (answer !== undefined) this.send(res, record, answer);
      else record.status = 200;
      return;
    }
    const answer = this.route(info, rt);
    if (resetAfter) {
      req.socket.destroy();
      return;
    }
    this.send(res, record, answer);
  }

  private send(res: ServerResponse, record: RequestRecord, answer: HttpAnswer): void {
    record.status = answer.code;
    if (res.destroyed) return;
    const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    res.writeHead(answer.code, {
      'Content-Type': typeof answer.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
      'Cache-Control': 'no-cache, private',
      ...answer.headers,
    });
    res.end(text);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private authenticate(req: IncomingMessage): string | undefined {
    if (!this.authEnabled) return DEFAULT_USER;
    const header = req.headers.authorization;
    const m = header === undefined ? null : /^Bearer\s+(\S+)$/i.exec(header);
    return m ? this.tokens.get(m[1] as string) : undefined;
  }

  private authorize(info: RequestInfo, rt: ResourceType, user: string): Status | undefined {
    const rules = this.rules;
    if (rules === undefined || info.verb === undefined) return undefined;
    const any = (list: readonly string[], value: string) => list.includes('*') || list.includes(value);
    const allowed = rules.some(
      (r) =>
        any(r.verbs, info.verb as string) &&
        any(r.apiGroups, rt.group) &&
        any(r.resources, rt.resource) &&
        (r.resourceNames === undefined || (info.name !== undefined && r.resourceNames.includes(info.name))) &&
        (r.namespaces === undefined ||
          (info.namespace !== undefined && r.namespaces.includes(info.namespace))),
    );
    if (allowed) return undefined;
    return forbidden(rt, info.verb, user, {
      ...(info.namespace === undefined ? {} : { namespace: info.namespace }),
      ...(info.name === undefined ? {} : { name: info.name }),
    });
  }

  /** The resource type a request addresses, when that group/version/resource is served. */
  private resourceFor(info: RequestInfo): ResourceType | undefined {
    if (info.resource === undefined || info.version === undefined) return undefined;
    for (const rt of this.types.values()) {
      if (rt.group === info.group && rt.resource === info.resource && rt.versions.includes(info.version))
        return rt;
    }
    return undefined;
  }

  private route(info: RequestInfo, rt: ResourceType | undefined): HttpAnswer {
    if (rt === undefined) {
      if (info.resource !== undefined) return fail(notFoundPath());
      return this.discovery(info);
    }
    const version = info.version as string;
    if (rt.namespaced && info.name !== undefined && info.namespace === undefined) return fail(notFoundPath());
    if (!rt.namespaced && info.namespace !== undefined) return fail(notFoundPath());
    const dryRun = info.query.dryRun === 'All';
    switch (info.verb) {
      case 'get':
        return this.doGet(rt, version, info);
      case 'list':
        return this.doList(rt, version, info);
      case 'create':
        return this.doCreate(rt, version, info, dryRun);
      case 'update':
        return this.doUpdate(rt, version, info, dryRun);
      case 'patch':
        return this.doPatch(rt, version, info, dryRun);
      case 'delete':
        return this.doDelete(rt, info, dryRun);
      default:
        return fail(methodNotAllowed());
    }
  }

  // ---------------------------------------------------------------- discovery

  private servedGroups(): Map<string, string[]> {
    const groups = new Map<string, string[]>();
    for (const rt of this.types.values()) {
      if (rt.group === '' || rt.versions.length === 0) continue;
      const versions = groups.get(rt.group) ?? [];
      for (const v of rt.versions) if (!versions.includes(v)) versions.push(v);
      groups.set(rt.group, versions);
    }
    return groups;
  }

  private apiGroup(name: string, versions: string[]): JsonObject {
    const list = versions.map((version) => ({ groupVersion: `${name}/${version}`, version }));
    return { name, versions: list, preferredVersion: list[0] ?? null };
  }

  private resourceList(group: string, version: string): JsonObject {
    const resources = [...this.types.values()]
      .filter((rt) => rt.group === group && rt.versions.includes(version))
      .map((rt) => ({
        name: rt.resource,
        singularName: rt.singular,
        namespaced: rt.namespaced,
        kind: rt.kind,
        verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
        ...(rt.shortNames ? { shortNames: [...rt.shortNames] } : {}),
        ...(rt.categories ? { categories: [...rt.categories] } : {}),
      }));
    return {
      kind: 'APIResourceList',
      apiVersion: 'v1',
      groupVersion: group === '' ? version : `${group}/${version}`,
      resources,
    };
  }

  private discovery(info: RequestInfo): HttpAnswer {
    if (info.method !== 'GET') return fail(methodNotAllowed());
    const segments = info.path.split('/').filter((s) => s !== '');
    const [root, second, third] = segments;
    if (segments.length === 1 && (root === 'healthz' || root === 'readyz' || root === 'livez')) {
      return new HttpAnswer(200, 'ok');
    }
    if (segments.length === 1 && root === 'version') {
      const [major, minor] = this.gitVersion.replace(/^v/, '').split('.');
      return new HttpAnswer(200, {
        major,
        minor,
        gitVersion: this.gitVersion,
        gitCommit: '0000000000000000000000000000000000000000',
        gitTreeState: 'clean',
        buildDate: '2026-01-01T00:00:00Z',
        goVersion: 'go1.23.0',
        compiler: 'gc',
        platform: 'linux/amd64',
      });
    }
    if (root === 'api') {
      if (segments.length === 1) {
        return new HttpAnswer(200, {
          kind: 'APIVersions',
          versions: ['v1'],
          serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${this.port}` }],
        });
      }
      if (segments.length === 2 && second === 'v1') return new HttpAnswer(200, this.resourceList('', 'v1'));
    }
    if (root === 'apis') {
      const groups = this.servedGroups();
      if (segments.length === 1) {
        const list = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b));
        return new HttpAnswer(200, {
          kind: 'APIGroupList',
          apiVersion: 'v1',
          groups: list.map(([name, versions]) => this.apiGroup(name, versions)),
        });
      }
      const versions = second === undefined ? undefined : groups.get(second);
      if (versions !== undefined && second !== undefined) {
        if (segments.length === 2) {
          return new HttpAnswer(200, {
            kind: 'APIGroup',
            apiVersion: 'v1',
            ...this.apiGroup(second, versions),
          });
        }
        if (segments.length === 3 && third !== undefined && versions.includes(third)) {
          return new HttpAnswer(200, this.resourceList(second, third));
        }
      }
    }
    return new HttpAnswer(404, '404 page not found\n');
  }

  // ---------------------------------------------------------------- verbs

  private doGet(rt: ResourceType, version: string, info: RequestInfo): HttpAnswer {
    const name = info.name as string;
    const obj = this.bucket(qualifiedName(rt)).get(objectKey(info.namespace, name));
    if (obj === undefined) return fail(notFound(rt, name));
    return new HttpAnswer(200, this.render(rt, obj, version));
  }

  private selectors(info: RequestInfo): ((obj: JsonObject) => boolean) | Status {
    try {
      const labels = info.query.labelSelector ? parseLabelSelector(info.query.labelSelector) : () => true;
      const fields = info.query.fieldSelector ? parseFieldSelector(info.query.fieldSelector) : () => true;
      return (obj) => labels(labelsOf(obj)) && fields(obj);
    } catch (err) {
      return badRequest((err as Error).message);
    }
  }

  private doList(rt: ResourceType, version: string, info: RequestInfo): HttpAnswer {
    const filter = this.selectors(info);
    if (typeof filter !== 'function') return fail(filter);
    let listRv = this.rv;
    let after: string | undefined;
    if (info.query.continue) {
      try {
        const token: unknown = JSON.parse(Buffer.from(info.query.continue, 'base64url').toString('utf8'));
        if (!isObject(token) || typeof token.rv !== 'number' || typeof token.after !== 'string')
          throw new Error();
        listRv = token.rv;
        after = token.after;
      } catch {
        return fail(
          badRequest(
            'continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)',
          ),
        );
      }
      if (listRv < this.compactedThrough) {
        return fail({
          ...badRequest(
            'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.',
          ),
          reason: 'Expired',
          code: 410,
        });
      }
    }
    const all = [...this.bucket(qualifiedName(rt)).entries()]
      .filter(
        ([key, obj]) =>
          (info.namespace === undefined || meta(obj).namespace === info.namespace) &&
          filter(obj) &&
          (after === undefined || key > after),
      )
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const limit = Number(info.query.limit);
    const page = Number.isInteger(limit) && limit > 0 ? all.slice(0, limit) : all;
    const remaining = all.length - page.length;
    const last = page[page.length - 1];
    const metadata: JsonObject = { resourceVersion: String(listRv) };
    if (remaining > 0 && last !== undefined) {
      metadata.continue = Buffer.from(JSON.stringify({ rv: listRv, after: last[0] })).toString('base64url');
      metadata.remainingItemCount = remaining;
    }
    const items = page.map(([, obj]) => {
      const rendered = this.render(rt, obj, version);
      if (rt.custom) return rendered;
      // Built-in types are encoded without apiVersion/kind inside lists.
      const { apiVersion: _a, kind: _k, ...rest } = rendered;
      return rest;
    });
    return new HttpAnswer(200, {
      apiVersion: apiVersionOf(rt, version),
      kind: `${rt.kind}List`,
      metadata,
      items,
    });
  }

  private parseJsonBody(info: RequestInfo): Json | Status {
    try {
      return JSON.parse(info.body) as Json;
    } catch (err) {
      return badRequest(`error decoding request body: ${(err as Error).message}`);
    }
  }

  /** What kube-apiserver checks of any written object before storing it. */
  private checkObject(rt: ResourceType, obj: Json, info: RequestInfo): JsonObject | Status {
    if (!isObject(obj))
      return badRequest("Object 'Kind' is missing in request body: the body must be a JSON object");
    if (!isObject(obj.metadata)) obj.metadata = {};
    const m = meta(obj);
    for (const field of ['labels', 'annotations'] as const) {
      const map = m[field];
      if (map === undefined || map === null) continue;
      if (!isObject(map) || Object.values(map).some((v) => typeof v !== 'string')) {
        return badRequest(
          `json: cannot unmarshal into Go struct field ObjectMeta.metadata.${field} of type string`,
        );
      }
    }
    if (info.namespace !== undefined && m.namespace !== undefined && m.namespace !== info.namespace) {
      return badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    if (info.namespace !== undefined) m.namespace = info.namespace;
    if (rt.resource === 'virtualservices' && rt.group === 'networking.istio.io' && this.istioValidation) {
      const denied = istioMirrorValidation(obj);
      if (denied !== undefined) {
        return {
          kind: 'Status',
          apiVersion: 'v1',
          metadata: {},
          status: 'Failure',
          message: `admission webhook "validation.istio.io" denied the request: configuration is invalid: ${denied}`,
          code: 400,
        };
      }
    }
    return obj;
  }

  /**
   * What the API server does to a custom resource after decoding and before storing: routes are pruned,
   * defaulted and validated as their CRDs say (pruned fields become warnings, or a 400 under strict field
   * validation); with a status subresource, status comes from the stored object, not the request.
   */
  private admit(
    rt: ResourceType,
    obj: JsonObject,
    old: JsonObject | undefined,
    info: RequestInfo,
    warnings: string[],
  ): JsonObject | Status {
    let next = obj;
    const resource = qualifiedName(rt);
    if (ROUTE_KINDS[resource] !== undefined) {
      const admitted = this.admitRoute(resource, obj);
      if (isStatus(admitted)) return admitted;
      const unknown = admitted.unknownFields.map((f) => `unknown field ${JSON.stringify(f)}`);
      const mode = info.query.fieldValidation ?? 'Warn';
      if (mode === 'Strict' && unknown.length > 0)
        return badRequest(`strict decoding error: ${unknown.join(', ')}`);
      if (mode !== 'Ignore') warnings.push(...unknown);
      next = admitted.object;
    }
    if (rt.statusSubresource) {
      if (old?.status === undefined) delete next.status;
      else next.status = cloneJson(old.status);
    }
    return next;
  }

  private doCreate(rt: ResourceType, version: string, info: RequestInfo, dryRun: boolean): HttpAnswer {
    const parsed = this.parseJsonBody(info);
    if (isStatus(parsed)) return fail(parsed);
    const checked = this.checkObject(rt, parsed, info);
    if (isStatus(checked)) return fail(checked);
    const m = meta(checked);
    if (typeof m.name !== 'string' || m.name === '') {
      if (typeof m.generateName === 'string' && m.generateName !== '')
        m.name = `${m.generateName}${randomSuffix()}`;
      else
        return fail(
          invalid(rt.group, rt.kind, '', [
            {
              field: 'metadata.name',
              message: 'Required value: name or generateName is required',
              reason: 'FieldValueRequired',
            },
          ]),
        );
    }
    if (m.resourceVersion !== undefined && m.resourceVersion !== '') {
      return fail({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'resourceVersion should not be set on objects to be created',
        reason: 'InternalError',
        details: { causes: [{ message: 'resourceVersion should not be set on objects to be created' }] },
        code: 500,
      });
    }
    const warnings: string[] = [];
    const admitted = this.admit(rt, checked, undefined, info, warnings);
    if (isStatus(admitted)) return fail(admitted);
    const key = objectKey(info.namespace, m.name as string);
    if (this.bucket(qualifiedName(rt)).has(key)) return fail(alreadyExists(rt, m.name as string));
    delete m.uid;
    delete m.creationTimestamp;
    const stored = this.commitCreate(rt, admitted, dryRun, managerOf(info));
    return new HttpAnswer(201, this.render(rt, stored, version), warningHeaders(warnings));
  }

  private doUpdate(rt: ResourceType, version: string, info: RequestInfo, dryRun: boolean): HttpAnswer {
    const name = info.name as string;
    const key = objectKey(info.namespace, name);
    const parsed = this.parseJsonBody(info);
    if (isStatus(parsed)) return fail(parsed);
    const checked = this.checkObject(rt, parsed, info);
    if (isStatus(checked)) return fail(checked);
    const m = meta(checked);
    if (m.name !== name) {
      return fail(
        badRequest(`the name of the object (${String(m.name)}) does not match the name on the URL (${name})`),
      );
    }
    const old = this.bucket(qualifiedName(rt)).get(key);
    if (old === undefined) return fail(notFound(rt, name));
    const given = m.resourceVersion;
    if (given === undefined || given === '') {
      if (rt.custom) {
        return fail(
          invalid(rt.group, rt.kind, name, [
            {
              field: 'metadata.resourceVersion',
              message: 'Invalid value: 0x0: must be specified for an update',
            },
          ]),
        );
      }
    } else if (given !== meta(old).resourceVersion) {
      return fail(conflict(rt, name));
    }
    const warnings: string[] = [];
    const admitted = this.admit(rt, checked, old, info, warnings);
    if (isStatus(admitted)) return fail(admitted);
    return new HttpAnswer(
      200,
      this.render(rt, this.commitUpdate(rt, old, admitted, dryRun, false, managerOf(info)), version),
      warningHeaders(warnings),
    );
  }

  private doPatch(rt: ResourceType, version: string, info: RequestInfo, dryRun: boolean): HttpAnswer {
    const name = info.name as string;
    const key = objectKey(info.namespace, name);
    const type = info.contentType ?? '';
    const accepted = rt.custom
      ? [JSON_PATCH, MERGE_PATCH, APPLY_PATCH]
      : [JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH];
    if (!accepted.includes(type)) return fail(unsupportedMediaType(accepted));
    if (type === APPLY_PATCH) {
      return fail({
        ...unsupportedMediaType(accepted),
        message: 'the fake API server does not implement server-side apply',
      });
    }
    const old = this.bucket(qualifiedName(rt)).get(key);
    if (old === undefined) return fail(notFound(rt, name));
    let patch: unknown;
    try {
      patch = JSON.parse(info.body);
    } catch (err) {
      return fail(badRequest(`error decoding patch: ${(err as Error).message}`));
    }
    let patched: Json;
    try {
      patched =
        type === JSON_PATCH
          ? applyJsonPatch(this.render(rt, old, version), patch)
          : applyMergePatch(this.render(rt, old, version), patch as Json);
    } catch (err) {
      if (err instanceof PatchDecodeError) return fail(badRequest(err.message));
      if (err instanceof PatchApplyError) return fail(patchNotApplicable());
      throw err;
    }
    const checked = this.checkObject(rt, patched, info);
    if (isStatus(checked)) return fail(checked);
    const m = meta(checked);
    if (m.name !== name) {
      return fail(
        badRequest(`the name of the object (${String(m.name)}) does not match the name on the URL (${name})`),
      );
    }
    // A patched resourceVersion is a precondition, as in kube-apiserver: stale means conflict.
    if (m.resourceVersion !== undefined && m.resourceVersion !== meta(old).resourceVersion) {
      return fail(conflict(rt, name));
    }
    const warnings: string[] = [];
    const admitted = this.admit(rt, checked, old, info, warnings);
    if (isStatus(admitted)) return fail(admitted);
    return new HttpAnswer(
      200,
      this.render(rt, this.commitUpdate(rt, old, admitted, dryRun, false, managerOf(info)), version),
      warningHeaders(warnings),
    );
  }

  private doDelete(rt: ResourceType, info: RequestInfo, dryRun: boolean): HttpAnswer {
    const name = info.name as string;
    const key = objectKey(info.namespace, name);
    const old = this.bucket(qualifiedName(rt)).get(key);
    if (old === undefined) return fail(notFound(rt, name));
    this.commitDelete(rt, key, old, dryRun);
    return new HttpAnswer(200, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: {
        name,
        ...(rt.group === '' ? {} : { group: rt.group }),
        kind: rt.resource,
        uid: meta(old).uid as Json,
      },
    });
  }

  // ---------------------------------------------------------------- watch

  /** Starts a watch stream; returns an answer only when the watch cannot start. */
  private startWatch(info: RequestInfo, rt: ResourceType, res: ServerResponse): HttpAnswer | undefined {
    const filter = this.selectors(info);
    if (typeof filter !== 'function') return fail(filter);
    const version = info.version as string;
    const resource = qualifiedName(rt);
    const w: Watcher = {
      resource,
      version,
      namespace: info.namespace,
      filter,
      bookmarks: info.query.allowWatchBookmarks === 'true',
      res,
      timer: undefined,
      closed: false,
    };
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache, private',
    });
    res.flushHeaders();
    res.on('close', () => {
      if (!w.closed) {
        w.closed = true;
        if (w.timer !== undefined) clearTimeout(w.timer);
        this.watchers.delete(w);
      }
    });
    const requested = info.query.resourceVersion;
    if (requested === undefined || requested === '' || requested === '0') {
      // No resourceVersion (or "0"): the current state as synthetic ADDED events, then changes.
      for (const obj of this.sorted(resource)) {
        if (this.visible(w, obj)) this.writeEvent(w, 'ADDED', this.render(rt, obj, version));
      }
    } else {
      const from = Number(requested);
      if (!Number.isInteger(from))
        return this.endWithError(w, badRequest(`invalid resource version: ${requested}`));
      if (from < this.compactedThrough) return this.endWithError(w, expired(from, this.compactedThrough + 1));
      for (const event of this.history) {
        if (event.rv > from && event.resource === resource && this.visible(w, event.object)) {
          this.writeEvent(w, event.type, this.render(rt, event.object, version));
        }
      }
    }
    const timeout = Number(info.query.timeoutSeconds);
    if (Number.isFinite(timeout) && timeout > 0) {
      w.timer = setTimeout(() => this.endWatch(w, 'end'), timeout * 1000);
    }
    this.watchers.add(w);
    this.emitter.emit('watch');
    return undefined;
  }

  private endWithError(w: Watcher, status: Status): undefined {
    this.writeEvent(w, 'ERROR', status as unknown as JsonObject);
    w.closed = true;
    w.res.end();
    return undefined;
  }

  private writeEvent(w: Watcher, type: string, object: JsonObject): void {
    if (w.res.destroyed || w.res.writableEnded) return;
    w.res.write(`${JSON.stringify({ type, object })}\n`);
  }
}

const DEFAULT_USER = 'system:serviceaccount:mirror-autoscaler:mirror-autoscaler';

/** Warning headers as kube-apiserver sends them: `299 - "text"`, one header per warning. */
function warningHeaders(warnings: readonly string[]): Record<string, string[]> {
  return warnings.length === 0 ? {} : { Warning: warnings.map((w) => `299 - ${JSON.stringify(w)}`) };
}

function isStatus(value: unknown): value is Status {
  return isObject(value) && value.kind === 'Status' && typeof value.code === 'number';
}

export type { GroupResource };
