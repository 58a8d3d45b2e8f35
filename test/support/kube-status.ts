/**
 * Kubernetes `Status` objects, built the way k8s.io/apimachinery/pkg/api/errors builds them, so that the
 * fake API server fails with the same codes, reasons, messages and details as a real one.
 */

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: { reason?: string; message?: string; field?: string }[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** A resource as the API server names it in messages: `virtualservices.networking.istio.io`, `events`. */
export interface GroupResource {
  readonly group: string;
  readonly resource: string;
}

export function qualified(gr: GroupResource): string {
  return gr.group === '' ? gr.resource : `${gr.resource}.${gr.group}`;
}

function failure(code: number, reason: string | undefined, message: string, details?: StatusDetails): Status {
  // Field order matches the API server's JSON encoding of metav1.Status.
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    ...(reason === undefined ? {} : { reason }),
    ...(details === undefined ? {} : { details }),
    code,
  } as Status;
}

function resourceDetails(gr: GroupResource, name?: string): StatusDetails {
  return {
    ...(name === undefined || name === '' ? {} : { name }),
    ...(gr.group === '' ? {} : { group: gr.group }),
    kind: gr.resource,
  };
}

/** 404 for a missing object: `virtualservices.networking.istio.io "x" not found`. */
export function notFound(gr: GroupResource, name: string): Status {
  return failure(404, 'NotFound', `${qualified(gr)} "${name}" not found`, resourceDetails(gr, name));
}

/** 404 for a path that names no served API. */
export function notFoundPath(): Status {
  return failure(404, 'NotFound', 'the server could not find the requested resource', {});
}

/** 409 for a stale resourceVersion. */
export function conflict(gr: GroupResource, name: string): Status {
  return failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(gr)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    resourceDetails(gr, name),
  );
}

/** 409 on create of an existing name. */
export function alreadyExists(gr: GroupResource, name: string): Status {
  return failure(
    409,
    'AlreadyExists',
    `${qualified(gr)} "${name}" already exists`,
    resourceDetails(gr, name),
  );
}

/**
 * 422 from a JSON Patch that could not be applied (failed `test`, missing path, unknown op): the API server
 * wraps it in NewGenericServerResponse, which keeps only a generic message and empty details.
 */
export function patchNotApplicable(): Status {
  return failure(422, 'Invalid', 'the server rejected our request due to an error in our request', {});
}

/** 422 from validation (errors.NewInvalid): `Kind.group "name" is invalid: field: Invalid value: ...`. */
export function invalid(
  group: string,
  kind: string,
  name: string,
  causes: { field: string; message: string; reason?: string }[],
): Status {
  const qualifiedKind = group === '' ? kind : `${kind}.${group}`;
  const list = causes.map((c) => `${c.field}: ${c.message}`);
  const aggregate = list.length === 1 ? list[0] : `[${list.join(', ')}]`;
  return failure(422, 'Invalid', `${qualifiedKind} "${name}" is invalid: ${aggregate}`, {
    name,
    ...(group === '' ? {} : { group }),
    kind,
    causes: causes.map((c) => ({
      reason: c.reason ?? 'FieldValueInvalid',
      message: c.message,
      field: c.field,
    })),
  });
}

export function badRequest(message: string): Status {
  return failure(400, 'BadRequest', message);
}

export function unauthorized(): Status {
  return failure(401, 'Unauthorized', 'Unauthorized');
}

/** Where a request applies, for the authorizer's message. */
export interface AccessScope {
  readonly namespace?: string;
  readonly name?: string;
}

/**
 * 403 in the RBAC authorizer's words:
 * `virtualservices.networking.istio.io "x" is forbidden: User "u" cannot patch resource "virtualservices"
 * in API group "networking.istio.io" in the namespace "ns"`.
 */
export function forbidden(gr: GroupResource, verb: string, user: string, scope: AccessScope): Status {
  const subject = scope.name === undefined ? qualified(gr) : `${qualified(gr)} "${scope.name}"`;
  const where =
    scope.namespace === undefined ? 'at the cluster scope' : `in the namespace "${scope.namespace}"`;
  return failure(
    403,
    'Forbidden',
    `${subject} is forbidden: User "${user}" cannot ${verb} resource "${gr.resource}" in API group "${gr.group}" ${where}`,
    resourceDetails(gr, scope.name),
  );
}

export function unsupportedMediaType(accepted: readonly string[]): Status {
  return failure(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${accepted.join(', ')}`,
  );
}

export function methodNotAllowed(): Status {
  return failure(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource');
}

/** 410 sent as a watch ERROR event when the requested resourceVersion is older than the kept history. */
export function expired(requested: number, oldest: number): Status {
  return failure(410, 'Expired', `too old resource version: ${requested} (${oldest})`);
}

/** The generic answers for injected faults, in NewGenericServerResponse's words. */
export function genericFailure(code: number, retryAfterSeconds?: number): Status {
  const retry = retryAfterSeconds === undefined ? undefined : { retryAfterSeconds };
  switch (code) {
    case 400:
      return failure(400, 'BadRequest', 'the server rejected our request for an unknown reason');
    case 401:
      return unauthorized();
    case 404:
      return notFoundPath();
    case 409:
      return failure(409, 'Conflict', 'the server reported a conflict');
    case 422:
      return patchNotApplicable();
    case 429:
      return failure(
        429,
        'TooManyRequests',
        'the server has received too many requests and has asked us to try again later',
        retry ?? { retryAfterSeconds: 1 },
      );
    case 500:
      return failure(500, 'InternalError', 'Internal error occurred: injected fault', retry);
    case 503:
      return failure(
        503,
        'ServiceUnavailable',
        'the server is currently unable to handle the request',
        retry,
      );
    case 504:
      return failure(
        504,
        'Timeout',
        'the server was unable to return a response in the time allotted, but may still be processing the request',
        retry,
      );
    default:
      return failure(
        code,
        code >= 500 ? 'InternalError' : undefined,
        `the server responded with the status code ${code} but did not return more information`,
        retry,
      );
  }
}
