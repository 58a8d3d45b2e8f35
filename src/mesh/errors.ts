/**
 * Typed errors of the mesh layer.
 *
 * `MeshError` is about the content of a VirtualService (a shape we refuse to edit). The `KubernetesApiError`
 * family is about talking to the API server; every subclass carries the verb, resource and object it was
 * about, so a log line or an Event says what failed without a stack trace.
 */

/** Why a route object cannot be read or edited safely. Stable codes for logs, metrics and events. */
export const MESH_ERROR_CODES = [
  'InvalidObject',
  'NoHttpRoutes',
  'NoRules',
  'RouteNotFound',
  'NoMirrorToTarget',
  'BothMirrorAndMirrors',
  'InvalidMirror',
  'AmbiguousMirror',
  'InvalidPercentage',
  'InvalidState',
] as const;
export type MeshErrorCode = (typeof MESH_ERROR_CODES)[number];

/** A route object whose content we refuse to touch; the message names the object, route and field. */
export class MeshError extends Error {
  override readonly name = 'MeshError';
  constructor(
    readonly code: MeshErrorCode,
    /** `namespace/name` of the route object, or `?` when the object had no usable metadata. */
    readonly virtualService: string,
    message: string,
  ) {
    super(message);
  }
}

/** What a request to the API server was doing, used to build messages. */
export interface RequestContext {
  /** Kubernetes verb: get, list, watch, create, update, patch, delete (or `discover`). */
  readonly verb: string;
  /** `resource.group`, e.g. `virtualservices.networking.istio.io`. */
  readonly resource: string;
  readonly namespace?: string;
  readonly name?: string;
}

/** The parts of a Kubernetes `Status` body that we use. */
export interface StatusBody {
  readonly message?: string;
  readonly reason?: string;
  readonly code?: number;
  readonly details?: {
    readonly name?: string;
    readonly group?: string;
    readonly kind?: string;
    readonly retryAfterSeconds?: number;
    readonly causes?: readonly StatusCause[];
  };
}

/** One cause of a 422 Invalid answer: which field and why. */
export interface StatusCause {
  readonly reason?: string;
  readonly message?: string;
  readonly field?: string;
}

interface ApiErrorInit extends RequestContext {
  /** HTTP status, absent when no response arrived. */
  readonly code?: number;
  readonly status?: StatusBody;
  readonly cause?: unknown;
}

/** Describes the object of a request: `shop/checkout`, `in namespace shop` or `in all namespaces`. */
export function describeTarget(ctx: RequestContext): string {
  if (ctx.name !== undefined) {
    return ctx.namespace === undefined ? ctx.name : `${ctx.namespace}/${ctx.name}`;
  }
  return ctx.namespace === undefined ? 'in all namespaces' : `in namespace ${ctx.namespace}`;
}

function statusSuffix(code: number | undefined, status: StatusBody | undefined): string {
  if (code === undefined) return '';
  const reason = status?.reason ? ` ${status.reason}` : '';
  const message = status?.message ? `: ${status.message}` : '';
  return ` (HTTP ${code}${reason}${message})`;
}

/** Base class of every failure to talk to the API server. */
export abstract class KubernetesApiError extends Error {
  readonly verb: string;
  readonly resource: string;
  readonly namespace: string | undefined;
  readonly objectName: string | undefined;
  /** HTTP status code; undefined when the request got no response (see TransportError). */
  readonly code: number | undefined;
  /** The Status object the server answered with, when it sent one. */
  readonly status: StatusBody | undefined;
  /** Whether the same request may succeed if repeated later (429, 5xx, no response). */
  abstract readonly retriable: boolean;

  protected constructor(init: ApiErrorInit, problem: string) {
    super(
      `${init.verb} ${init.resource} ${describeTarget(init)}: ${problem}${statusSuffix(init.code, init.status)}`,
      {
        cause: init.cause,
      },
    );
    this.verb = init.verb;
    this.resource = init.resource;
    this.namespace = init.namespace;
    this.objectName = init.name;
    this.code = init.code;
    this.status = init.status;
  }

  /** Seconds the server asked us to wait before retrying (Retry-After / details.retryAfterSeconds). */
  get retryAfterSeconds(): number | undefined {
    return this.status?.details?.retryAfterSeconds;
  }
}

/** 404: the object (or the API) does not exist. */
export class NotFoundError extends KubernetesApiError {
  override readonly name = 'NotFoundError';
  readonly retriable = false;
  constructor(init: ApiErrorInit) {
    super(init, 'not found');
  }
}

/**
 * The object changed between our read and our write: 409 Conflict, or 422 from a JSON Patch whose `test`
 * operation failed (the API server reports both; either way, re-read and decide again).
 */
export class ConflictError extends KubernetesApiError {
  override readonly name = 'ConflictError';
  readonly retriable = false;
  constructor(init: ApiErrorInit, attempts?: number) {
    super(
      init,
      attempts === undefined
        ? 'conflict: the object changed since it was read'
        : `conflict: the object changed since it was read, ${attempts} attempts in a row`,
    );
  }
}

/** 403: the credentials are valid but lack an RBAC permission; the message names it. */
export class ForbiddenError extends KubernetesApiError {
  override readonly name = 'ForbiddenError';
  readonly retriable = false;
  constructor(init: ApiErrorInit) {
    const scope = init.namespace === undefined ? 'at cluster scope' : `in namespace "${init.namespace}"`;
    super(init, `forbidden: missing RBAC permission "${init.verb}" on ${init.resource} ${scope}`);
  }
}

/** 401: the API server rejected the credentials (token expired, wrong kubeconfig user). */
export class UnauthorizedError extends KubernetesApiError {
  override readonly name = 'UnauthorizedError';
  readonly retriable = false;
  constructor(init: ApiErrorInit) {
    super(init, 'unauthorized: the API server rejected the credentials (check the token or kubeconfig user)');
  }
}

/** Any other HTTP error answer (400, 422 validation, 429, 5xx...). */
export class ApiError extends KubernetesApiError {
  override readonly name = 'ApiError';
  readonly retriable: boolean;
  constructor(init: ApiErrorInit & { readonly code: number }) {
    super(init, 'request failed');
    this.retriable = init.code === 429 || init.code >= 500;
  }
}

/** No HTTP answer at all: connection refused or reset, timeout, DNS failure. */
export class TransportError extends KubernetesApiError {
  override readonly name = 'TransportError';
  readonly retriable = true;
  constructor(init: Omit<ApiErrorInit, 'code' | 'status'>, detail: string) {
    super(init, `no response from the API server: ${detail}`);
  }
}

/** The API server does not serve the Istio networking API in any supported version. */
export class DiscoveryError extends Error {
  override readonly name = 'DiscoveryError';
}
