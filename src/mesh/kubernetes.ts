/**
 * KubernetesRouteStore: the RouteStore port on @kubernetes/client-node (CustomObjectsApi for
 * VirtualServices, HTTPRoutes and GRPCRoutes, ApisApi for discovery). Every failure becomes a typed KubernetesApiError naming the
 * verb, resource and object.
 */
import {
  ApiException,
  ApisApi,
  type RequestContext as ClientRequestContext,
  type ConfigurationOptions,
  CustomObjectsApi,
  type KubeConfig,
  Observable,
  type ObservableMiddleware,
  PatchStrategy,
  type ResponseContext,
} from '@kubernetes/client-node';
import {
  ApiError,
  ConflictError,
  DiscoveryError,
  ForbiddenError,
  KubernetesApiError,
  MeshError,
  NotFoundError,
  type RequestContext,
  type StatusBody,
  type StatusCause,
  TransportError,
  UnauthorizedError,
} from './errors.js';
import { showsPatch } from './jsonpatch.js';
import {
  type BackoffPolicy,
  backoffDelay,
  DEFAULT_BACKOFF,
  isRetriable,
  noteGaveUp,
  type RetryDeps,
  sleep,
  validateBackoffPolicy,
  withRetry,
} from './retry.js';
import {
  buildRoutePatch,
  type IstioVersion,
  kindOf,
  type Location,
  ROUTE_APIS,
  type RouteKind,
} from './route.js';
import type { RouteStore } from './store.js';
import { asRouteObject, type JsonPatchOp, type RouteObject } from './virtualservice.js';

export { ISTIO_VERSIONS, type IstioVersion } from './route.js';
export const ISTIO_NETWORKING_GROUP = ROUTE_APIS.VirtualService.group;
export const VIRTUAL_SERVICE_PLURAL = ROUTE_APIS.VirtualService.plural;

export interface KubernetesRouteStoreOptions {
  /** Upper bound on one request, in milliseconds; default 10 000. */
  readonly requestTimeoutMs?: number;
  /** Items per LIST page (`limit`); default 500. */
  readonly pageSize?: number;
  /** `fieldManager` recorded in managedFields for our writes; default `mirror-autoscaler`. */
  readonly fieldManager?: string;
  /** How requests answered 429, 5xx or not at all are retried; default DEFAULT_BACKOFF. */
  readonly backoff?: BackoffPolicy;
  /** Clock, sleep and randomness of the retries (tests pin them); `onRetry` sees every retried failure. */
  readonly retry?: RetryDeps;
  /** Called with the typed error of every failed request, retried ones included, e.g. to count it. */
  readonly onApiError?: (err: KubernetesApiError) => void;
}

// A cluster would need 500 × 10 000 VirtualServices in one namespace to reach this; it only bounds the loop.
const MAX_PAGES = 10_000;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parses the Status object an ApiException carries (a JSON string, an object, or nothing). */
export function parseStatus(body: unknown): StatusBody | undefined {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.trim() === '' ? undefined : { message: body.trim().slice(0, 500) };
    }
  }
  if (!isObject(parsed) || parsed.kind !== 'Status') return undefined;
  const details = isObject(parsed.details) ? parsed.details : undefined;
  return {
    ...(typeof parsed.message === 'string' ? { message: parsed.message } : {}),
    ...(typeof parsed.reason === 'string' ? { reason: parsed.reason } : {}),
    ...(typeof parsed.code === 'number' ? { code: parsed.code } : {}),
    ...(details === undefined
      ? {}
      : {
          details: {
            ...(typeof details.name === 'string' ? { name: details.name } : {}),
            ...(typeof details.group === 'string' ? { group: details.group } : {}),
            ...(typeof details.kind === 'string' ? { kind: details.kind } : {}),
            ...(typeof details.retryAfterSeconds === 'number'
              ? { retryAfterSeconds: details.retryAfterSeconds }
              : {}),
            ...(Array.isArray(details.causes)
              ? { causes: details.causes.filter(isObject).map(toCause) }
              : {}),
          },
        }),
  };
}

function toCause(cause: Record<string, unknown>): StatusCause {
  return {
    ...(typeof cause.reason === 'string' ? { reason: cause.reason } : {}),
    ...(typeof cause.message === 'string' ? { message: cause.message } : {}),
    ...(typeof cause.field === 'string' ? { field: cause.field } : {}),
  };
}

/**
 * A 422 that comes from applying a JSON Patch (a failed `test`, or a path that no longer exists) carries
 * the generic message and empty details; a 422 from validating the result names the object and its causes.
 */
function isPatchApplyFailure(status: StatusBody | undefined): boolean {
  const details = status?.details;
  return status?.reason === 'Invalid' && details?.name === undefined && (details?.causes ?? []).length === 0;
}

/**
 * Turns anything a client-node call threw into a typed error.
 * @param patch whether the request was a JSON Patch (a 422 is then a conflict, see isPatchApplyFailure).
 */
export function toKubernetesError(
  err: unknown,
  ctx: RequestContext,
  patch = false,
): KubernetesApiError | Error {
  if (err instanceof ApiException) {
    const code: number = err.code;
    const status =
      parseStatus(err.body as unknown) ?? (code === 401 ? { reason: 'Unauthorized' } : undefined);
    const init = { ...ctx, code, ...(status === undefined ? {} : { status }), cause: err };
    const retryAfter = Number(err.headers?.['retry-after']);
    const withRetry =
      Number.isFinite(retryAfter) && status?.details?.retryAfterSeconds === undefined
        ? { ...init, status: { ...status, details: { ...status?.details, retryAfterSeconds: retryAfter } } }
        : init;
    switch (code) {
      case 401:
        return new UnauthorizedError(init);
      case 403:
        return new ForbiddenError(init);
      case 404:
        return new NotFoundError(init);
      case 409:
        return new ConflictError(init);
      case 422:
        return patch && isPatchApplyFailure(status) ? new ConflictError(init) : new ApiError(init);
      default:
        return new ApiError(withRetry);
    }
  }
  if (err instanceof Error) {
    if (err.name === 'TimeoutError' || err.name === 'AbortError') {
      return new TransportError({ ...ctx, cause: err }, `request timed out or was aborted (${err.message})`);
    }
    // undici's fetch rejects with TypeError("fetch failed") and the socket error as its cause.
    const cause = (err as { cause?: unknown }).cause;
    if (err instanceof TypeError && cause instanceof Error) {
      const code = (cause as { code?: unknown }).code;
      return new TransportError(
        { ...ctx, cause: err },
        `${typeof code === 'string' ? `${code}: ` : ''}${cause.message}`,
      );
    }
    if (err instanceof TypeError && err.message === 'fetch failed') {
      return new TransportError({ ...ctx, cause: err }, err.message);
    }
  }
  return err instanceof Error ? err : new Error(String(err));
}

function headerMiddleware(timeoutMs: number): ObservableMiddleware {
  // client-node builds a new connection pool for every request that carries TLS settings (every in-cluster
  // request): one TLS handshake and one socket per PATCH. The TLS settings of one KubeConfig do not change,
  // so the first pool is kept and reused; credentials travel in headers set per request.
  let shared: ReturnType<ClientRequestContext['getDispatcher']>;
  return {
    pre: (request: ClientRequestContext) => {
      const own = request.getDispatcher();
      if (shared === undefined) shared = own;
      else if (own !== undefined) request.setDispatcher(shared);
      // Without a signal a request to a hung API server waits forever and stalls the whole cycle.
      request.setSignal(AbortSignal.timeout(timeoutMs));
      request.setHeaderParam('User-Agent', 'mirror-autoscaler');
      return new Observable(Promise.resolve(request));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
}

/**
 * Reads and patches Istio VirtualServices through the Kubernetes API.
 *
 * Reads go through `list` (one request per namespace or one cluster-wide, paginated) so that a cycle over
 * a thousand policies costs a handful of requests, not a thousand GETs.
 *
 * Every request answered 429 or 5xx, or not answered at all, is retried with exponential backoff and jitter
 * (see backoffDelay), bounded in attempts and total time. A write is never blindly sent twice: after a
 * failed PATCH the object is read again, and the patch is re-sent only when the object is unchanged (it did
 * not land); when it shows the patch, the write is done; when something else changed it, that is a conflict.
 */
export class KubernetesRouteStore implements RouteStore {
  private readonly custom: CustomObjectsApi;
  private readonly apis: ApisApi;
  private readonly options: ConfigurationOptions<ObservableMiddleware>;
  private readonly patchOptions: ConfigurationOptions<ObservableMiddleware>;
  private readonly pageSize: number;
  private readonly fieldManager: string;
  private readonly backoff: BackoffPolicy;
  private readonly retryDeps: RetryDeps;
  private readonly onApiError: ((err: KubernetesApiError) => void) | undefined;
  private readonly versions = new Map<RouteKind, Promise<string>>();

  constructor(kc: KubeConfig, options: KubernetesRouteStoreOptions = {}) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.apis = kc.makeApiClient(ApisApi);
    const middleware = headerMiddleware(options.requestTimeoutMs ?? 10_000);
    this.options = { middleware: [middleware], middlewareMergeStrategy: 'append' };
    const contentType: ObservableMiddleware = {
      pre: (request: ClientRequestContext) => {
        request.setHeaderParam('Content-Type', PatchStrategy.JsonPatch);
        return new Observable(Promise.resolve(request));
      },
      post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
    };
    this.patchOptions = { middleware: [middleware, contentType], middlewareMergeStrategy: 'append' };
    this.pageSize = options.pageSize ?? 500;
    this.fieldManager = options.fieldManager ?? 'mirror-autoscaler';
    this.backoff = validateBackoffPolicy(options.backoff ?? DEFAULT_BACKOFF);
    this.retryDeps = options.retry ?? {};
    this.onApiError = options.onApiError;
  }

  /** One request: its failure typed (and reported), retried as the backoff policy says. */
  private request<T>(ctx: RequestContext, send: () => Promise<T>): Promise<T> {
    return withRetry(
      async () => {
        try {
          return await send();
        } catch (err) {
          throw this.typed(err, ctx);
        }
      },
      this.backoff,
      this.retryDeps,
    );
  }

  private typed(err: unknown, ctx: RequestContext, patch = false): KubernetesApiError | Error {
    const typed = toKubernetesError(err, ctx, patch);
    if (typed instanceof KubernetesApiError) this.onApiError?.(typed);
    return typed;
  }

  /**
   * The preferred served version of a route kind's API (VirtualService: v1, else v1beta1, else v1alpha3 of
   * networking.istio.io; HTTPRoute: v1, else v1beta1; GRPCRoute: v1, of gateway.networking.k8s.io),
   * discovered once and cached; a failed discovery is not cached, so the next call tries again.
   * @throws DiscoveryError when none of them is served; a KubernetesApiError when discovery fails.
   */
  servedVersion(kind: 'VirtualService'): Promise<IstioVersion>;
  servedVersion(kind?: RouteKind): Promise<string>;
  servedVersion(kind: RouteKind = 'VirtualService'): Promise<string> {
    let version = this.versions.get(kind);
    if (version === undefined) {
      const discovering = this.discover(kind);
      version = discovering;
      this.versions.set(kind, discovering);
      discovering.catch(() => {
        if (this.versions.get(kind) === discovering) this.versions.delete(kind);
      });
    }
    return version;
  }

  private async discover(kind: RouteKind): Promise<string> {
    const api = ROUTE_APIS[kind];
    const ctx: RequestContext = { verb: 'get', resource: 'API groups', name: '/apis' };
    const groups: unknown = await this.request(ctx, () => this.apis.getAPIVersions(this.options));
    const list = isObject(groups) && Array.isArray(groups.groups) ? (groups.groups as unknown[]) : [];
    const group = list.find((g) => isObject(g) && g.name === api.group);
    const served =
      isObject(group) && Array.isArray(group.versions)
        ? group.versions.map((v: unknown) => (isObject(v) && typeof v.version === 'string' ? v.version : '?'))
        : [];
    const candidates = api.versions.filter((v) => served.includes(v));
    const fail = (detail: string) =>
      new DiscoveryError(
        `the API server serves no ${api.group} version this tool supports for ${kind} (${api.versions.join(', ')}); ${detail}`,
      );
    if (candidates.length === 0) {
      throw fail(`served: ${served.length === 0 ? `none (${api.installHint})` : served.join(', ')}`);
    }
    // Istio serves VirtualServices in every version of its group. A Gateway API group version may lack a
    // kind (GRPCRoute came later than HTTPRoute, experimental kinds come and go): ask for its resources.
    if (kind === 'VirtualService') return candidates[0] as string;
    for (const version of candidates) {
      const rctx: RequestContext = {
        verb: 'get',
        resource: 'API resources',
        name: `/apis/${api.group}/${version}`,
      };
      const resources: unknown = await this.request(rctx, () =>
        this.custom.getAPIResources({ group: api.group, version }, this.options),
      );
      const items = isObject(resources) && Array.isArray(resources.resources) ? resources.resources : [];
      if (items.some((r: unknown) => isObject(r) && r.name === api.plural)) return version;
    }
    throw fail(
      `${api.group} ${candidates.join(', ')} is served but has no ${api.plural} (${api.installHint})`,
    );
  }

  /**
   * Route objects of one kind (default VirtualServices) in `namespaces` (one paginated LIST each), or in all
   * namespaces (one LIST), keyed ns/name.
   */
  async list(
    namespaces?: readonly string[],
    kind: RouteKind = 'VirtualService',
  ): Promise<Map<string, RouteObject>> {
    const version = await this.servedVersion(kind);
    const scopes = namespaces === undefined ? [undefined] : [...new Set(namespaces)];
    const pages = await Promise.all(scopes.map((ns) => this.listScope(kind, version, ns)));
    const all = pages.flat().sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return new Map(all);
  }

  private async listScope(
    kind: RouteKind,
    version: string,
    namespace: string | undefined,
  ): Promise<[string, RouteObject][]> {
    const api = ROUTE_APIS[kind];
    const ctx: RequestContext = {
      verb: 'list',
      resource: api.resource,
      ...(namespace === undefined ? {} : { namespace }),
    };
    const found: [string, RouteObject][] = [];
    let token: string | undefined;
    for (let page = 0; page < MAX_PAGES; page++) {
      const common = {
        group: api.group,
        version,
        plural: api.plural,
        limit: this.pageSize,
        ...(token === undefined ? {} : { _continue: token }),
      };
      // A page that fails (reset mid-answer, 5xx) is asked for again with the same continue token.
      const body: unknown = await this.request(ctx, () =>
        namespace === undefined
          ? this.custom.listClusterCustomObject(common, this.options)
          : this.custom.listNamespacedCustomObject({ ...common, namespace }, this.options),
      );
      if (!isObject(body) || !Array.isArray(body.items)) {
        throw new ApiError({ ...ctx, code: 200, status: { message: 'the LIST answer has no items array' } });
      }
      for (const item of body.items as unknown[]) {
        const vs = asRouteObject(item, kind);
        if (vs instanceof MeshError) throw vs;
        found.push([`${vs.metadata.namespace}/${vs.metadata.name}`, vs]);
      }
      const meta = isObject(body.metadata) ? body.metadata : {};
      token = typeof meta.continue === 'string' && meta.continue !== '' ? meta.continue : undefined;
      if (token === undefined) return found;
    }
    throw new ApiError({ ...ctx, code: 200, status: { message: `more than ${MAX_PAGES} pages; giving up` } });
  }

  /** One route object (default a VirtualService). @throws NotFoundError when it does not exist. */
  async get(namespace: string, name: string, kind: RouteKind = 'VirtualService'): Promise<RouteObject> {
    const api = ROUTE_APIS[kind];
    const version = await this.servedVersion(kind);
    const ctx: RequestContext = { verb: 'get', resource: api.resource, namespace, name };
    const body: unknown = await this.request(ctx, () =>
      this.custom.getNamespacedCustomObject(
        { group: api.group, version, namespace, plural: api.plural, name },
        this.options,
      ),
    );
    const vs = asRouteObject(body, kind);
    if (vs instanceof MeshError) throw vs;
    return vs;
  }

  /**
   * Sends the JSON Patch of `buildRoutePatch` (content type application/json-patch+json).
   * @throws ConflictError when the object changed since `vs` was read (409, or 422 from a failed `test`).
   */
  patchPercent(
    vs: RouteObject,
    locations: readonly Location[],
    newPercent: number,
    annotations: Readonly<Record<string, string>> = {},
  ): Promise<RouteObject> {
    return this.patchObject(vs, buildRoutePatch(vs, locations, newPercent, annotations));
  }

  /**
   * Sends a JSON Patch to `vs`, whose first operation must test `metadata.resourceVersion` against the
   * version of `vs` (so that a patch can never apply twice, nor over someone else's change).
   *
   * After a retriable failure (429, 5xx, connection reset: the patch may or may not have been applied) the
   * object is read again before anything is re-sent: unchanged, the patch is sent again (within the backoff
   * policy); showing every change of the patch, it landed and the read object is returned; changed
   * otherwise, the write lost a race and ConflictError is thrown, as when the server refuses the `test`.
   *
   * @returns the object as stored after the write.
   * @throws ConflictError when the object changed since `vs` was read; MeshError when `ops` does not start
   *   with the resourceVersion test; a KubernetesApiError when the API server refuses or cannot be reached.
   */
  async patchObject(vs: RouteObject, ops: readonly JsonPatchOp[]): Promise<RouteObject> {
    const { namespace, name, resourceVersion } = vs.metadata;
    const kind = kindOf(vs);
    const api = ROUTE_APIS[kind];
    const id = `${namespace}/${name}`;
    const first = ops[0];
    if (
      first?.op !== 'test' ||
      first.path !== '/metadata/resourceVersion' ||
      first.value !== resourceVersion
    ) {
      throw new MeshError(
        'InvalidObject',
        id,
        `${kind} ${id}: refusing an unguarded patch: its first operation must test /metadata/resourceVersion against "${resourceVersion}"`,
      );
    }
    const version = await this.servedVersion(kind);
    const ctx: RequestContext = { verb: 'patch', resource: api.resource, namespace, name };
    const now = this.retryDeps.now ?? Date.now;
    const wait = this.retryDeps.sleep ?? sleep;
    const random = this.retryDeps.random ?? Math.random;
    const started = now();
    for (let attempt = 1; ; attempt++) {
      let body: unknown;
      try {
        body = await this.custom.patchNamespacedCustomObject(
          {
            group: api.group,
            version,
            namespace,
            plural: api.plural,
            name,
            body: ops,
            fieldManager: this.fieldManager,
          },
          this.patchOptions,
        );
      } catch (raw) {
        const err = this.typed(raw, ctx, true);
        if (!isRetriable(err)) throw err;
        const elapsed = now() - started;
        const delay = backoffDelay(this.backoff, attempt, elapsed, random(), err.retryAfterSeconds);
        if (delay === undefined) throw noteGaveUp(err, attempt, elapsed);
        this.retryDeps.onRetry?.(err, attempt, delay);
        await wait(delay);
        const current = await this.get(namespace, name, kind);
        if (current.metadata.resourceVersion === resourceVersion) continue;
        if (showsPatch(current, ops)) return current;
        throw new ConflictError(ctx);
      }
      const written = asRouteObject(body, kind);
      if (written instanceof MeshError) throw written;
      return written;
    }
  }
}
