/**
 * Kubernetes Events on the VirtualServices the daemon manages, so that `kubectl describe virtualservice`
 * shows every change of the mirror percentage and every refusal to make one.
 *
 * Events are core/v1 Events written with CoreV1Api, the way client-go's legacy recorder writes them, and
 * deduplicated the way its correlator does: the same (object, type, reason, message) again within
 * `dedupWindowMs` (10 minutes by default) of its last occurrence PATCHes the existing Event's `count` and
 * `lastTimestamp` instead of creating another one. Events are best effort: a failure is logged (and
 * reported through `onApiError`) and never thrown, because a missing Event must never stop a cycle.
 */
import { Buffer } from 'node:buffer';
import { hostname } from 'node:os';
import {
  type RequestContext as ClientRequestContext,
  type ConfigurationOptions,
  CoreV1Api,
  type CoreV1Event,
  type KubeConfig,
  Observable,
  type ObservableMiddleware,
  PatchStrategy,
  type ResponseContext,
  V1MicroTime,
} from '@kubernetes/client-node';
import { NotFoundError, type RequestContext } from './errors.js';
import { toKubernetesError } from './kubernetes.js';

/** `source.component` and `reportingComponent` of every Event this daemon writes. */
export const EVENT_COMPONENT = 'mirror-autoscaler';
/** Same (object, type, reason, message) within this many ms of its last occurrence: count, do not create. */
export const DEFAULT_DEDUP_WINDOW_MS = 10 * 60 * 1000;
/** The API server rejects an Event whose message is longer than 1 KiB (bytes of UTF-8). */
export const MAX_MESSAGE_BYTES = 1024;
/** Bound on the dedup cache; the least recently seen entries go first. */
export const DEFAULT_CACHE_SIZE = 4096;
/** The reasons of the Events this daemon writes (PascalCase, as `kubectl describe` shows them). */
export const EVENT_REASONS = [
  'MirrorPercentChanged',
  'Paused',
  'NoMirror',
  'InvalidMirror',
  'ConflictGaveUp',
  'WriteFailed',
  'Braked',
  'BrakeReleased',
  'Overridden',
] as const;
export type EventReason = (typeof EVENT_REASONS)[number];

const RESOURCE = 'events';
// kube-apiserver limits for core/v1 Events that carry eventTime (pkg/apis/core/validation/events.go).
const MAX_REASON_LENGTH = 128;
const MAX_INSTANCE_LENGTH = 128;
const MAX_NAME_LENGTH = 253;

/** What an Event is about: a VirtualService as read (its uid lets `kubectl describe` find the Event). */
export interface EventSubject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly resourceVersion?: string;
    readonly [key: string]: unknown;
  };
}

/** The content of one Event. */
export interface EventSpec {
  readonly type: 'Normal' | 'Warning';
  /** PascalCase, at most 128 characters. */
  readonly reason: string;
  /** Truncated to 1 KiB. */
  readonly message: string;
  /** What was done or refused (core/v1 `action`); default `SetMirrorPercent`. */
  readonly action?: string;
}

/** What `record` did: created a new Event, counted an existing one, or failed (logged). */
export type RecordResult = 'created' | 'updated' | 'failed';

/** The subset of a pino logger the recorder uses. */
export interface EventLogger {
  debug(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Options of EventRecorder. */
export interface EventRecorderOptions {
  /** `reportingInstance` and `source.host`; default the host name (the pod name in a cluster). */
  readonly instance?: string;
  /** Epoch milliseconds; default Date.now. */
  readonly now?: () => number;
  /** Default 10 minutes. */
  readonly dedupWindowMs?: number;
  /** Default 4096 entries. */
  readonly cacheSize?: number;
  /** Upper bound on one request in milliseconds; default 5000. */
  readonly requestTimeoutMs?: number;
  readonly logger?: EventLogger;
  /** Called with the typed error of every failed request, e.g. to count it in a metric. */
  readonly onApiError?: (err: Error) => void;
}

interface Seen {
  /** metadata.name of the Event in the API server. */
  readonly name: string;
  readonly namespace: string;
  count: number;
  /** Epoch ms of the first occurrence counted in this Event. */
  readonly first: number;
  /** Epoch ms of the last occurrence. */
  last: number;
}

function middleware(timeoutMs: number, contentType?: string): ObservableMiddleware {
  return {
    pre: (request: ClientRequestContext) => {
      // Without a deadline a hung API server would hold a cycle waiting for a best-effort Event.
      request.setSignal(AbortSignal.timeout(timeoutMs));
      request.setHeaderParam('User-Agent', EVENT_COMPONENT);
      if (contentType !== undefined) request.setHeaderParam('Content-Type', contentType);
      return new Observable(Promise.resolve(request));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
}

/**
 * Cuts `text` to at most `maxBytes` bytes of UTF-8 without splitting a character, ending with "..." when cut.
 */
export function truncateUtf8(text: string, maxBytes: number = MAX_MESSAGE_BYTES): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  const ellipsis = '...';
  let out = '';
  let bytes = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch, 'utf8');
    if (bytes + size > maxBytes - ellipsis.length) break;
    out += ch;
    bytes += size;
  }
  return out + ellipsis;
}

/**
 * The Event name client-go uses: `<object name>.<UnixNano in hex>`; the object name is shortened when the
 * whole would exceed the 253 characters of a DNS subdomain.
 */
export function eventName(objectName: string, nanos: bigint): string {
  const suffix = `.${nanos.toString(16)}`;
  return objectName.slice(0, MAX_NAME_LENGTH - suffix.length) + suffix;
}

/**
 * Writes core/v1 Events about VirtualServices, deduplicating repeats by counting them on the existing Event.
 *
 * Dedup choice: a repeat within the window PATCHes the Event (merge patch of `count`, `lastTimestamp`,
 * `eventTime` stays the first one) rather than being suppressed, so `kubectl describe` shows
 * "x12 over 6m" exactly as for Events from Kubernetes' own controllers. A repeat after the window, or
 * after the Event was deleted (404 on the PATCH; the API server expires Events after an hour), creates a
 * new Event. The cache is per process: a restarted or newly elected replica starts a fresh Event.
 */
export class EventRecorder {
  private readonly api: CoreV1Api;
  private readonly createOptions: ConfigurationOptions<ObservableMiddleware>;
  private readonly patchOptions: ConfigurationOptions<ObservableMiddleware>;
  private readonly instance: string;
  private readonly now: () => number;
  private readonly windowMs: number;
  private readonly cacheSize: number;
  private readonly logger: EventLogger | undefined;
  private readonly onApiError: ((err: Error) => void) | undefined;
  private readonly seen = new Map<string, Seen>();
  /** Per dedup key, the record in flight, so two records of the same Event never both create it. */
  private readonly inFlight = new Map<string, Promise<RecordResult>>();
  private lastNanos = 0n;

  constructor(kc: KubeConfig, options: EventRecorderOptions = {}) {
    this.api = kc.makeApiClient(CoreV1Api);
    const timeoutMs = options.requestTimeoutMs ?? 5000;
    this.createOptions = { middleware: [middleware(timeoutMs)], middlewareMergeStrategy: 'append' };
    this.patchOptions = {
      middleware: [middleware(timeoutMs, PatchStrategy.MergePatch)],
      middlewareMergeStrategy: 'append',
    };
    // The API server refuses a reportingInstance longer than 128 characters.
    this.instance = (options.instance ?? hostname()).slice(0, MAX_INSTANCE_LENGTH);
    this.now = options.now ?? Date.now;
    this.windowMs = options.dedupWindowMs ?? DEFAULT_DEDUP_WINDOW_MS;
    this.cacheSize = options.cacheSize ?? DEFAULT_CACHE_SIZE;
    this.logger = options.logger;
    this.onApiError = options.onApiError;
  }

  /**
   * Records one Event about `subject` in the subject's namespace. Never rejects: failures are logged.
   * @returns what was done, for tests and logs.
   */
  record(subject: EventSubject, spec: EventSpec): Promise<RecordResult> {
    const key = dedupKey(subject, spec);
    const previous = this.inFlight.get(key) ?? Promise.resolve<RecordResult>('created');
    const next = previous.then(() =>
      this.recordNow(key, subject, spec).catch((err: unknown) => {
        // Not expected (every request is caught inside); still, an Event must never reject into a cycle.
        this.fail(err instanceof Error ? err : new Error(String(err)), subject, spec);
        return 'failed' as const;
      }),
    );
    this.inFlight.set(key, next);
    void next.then(() => {
      if (this.inFlight.get(key) === next) this.inFlight.delete(key);
    });
    return next;
  }

  private async recordNow(key: string, subject: EventSubject, spec: EventSpec): Promise<RecordResult> {
    const now = this.now();
    this.expire(now);
    const seen = this.seen.get(key);
    if (seen !== undefined && now - seen.last <= this.windowMs) {
      const updated = await this.bump(key, seen, now, subject, spec);
      if (updated !== 'gone') return updated;
      // The Event was deleted (or expired) under us: start a new one.
      this.seen.delete(key);
    }
    return this.create(key, subject, spec, now);
  }

  private async bump(
    key: string,
    seen: Seen,
    now: number,
    subject: EventSubject,
    spec: EventSpec,
  ): Promise<RecordResult | 'gone'> {
    const count = seen.count + 1;
    const ctx: RequestContext = {
      verb: 'patch',
      resource: RESOURCE,
      namespace: seen.namespace,
      name: seen.name,
    };
    try {
      await this.api.patchNamespacedEvent(
        {
          name: seen.name,
          namespace: seen.namespace,
          body: { count, lastTimestamp: new Date(now).toISOString() },
        },
        this.patchOptions,
      );
    } catch (err) {
      const error = toKubernetesError(err, ctx);
      if (error instanceof NotFoundError) return 'gone';
      this.fail(error, subject, spec);
      return 'failed';
    }
    seen.count = count;
    seen.last = now;
    this.touch(key, seen);
    this.logger?.debug({ event: seen.name, reason: spec.reason, count }, 'event counted');
    return 'updated';
  }

  private async create(
    key: string,
    subject: EventSubject,
    spec: EventSpec,
    now: number,
  ): Promise<RecordResult> {
    const { namespace } = subject.metadata;
    const name = eventName(subject.metadata.name, this.nanos(now));
    const ctx: RequestContext = { verb: 'create', resource: RESOURCE, namespace, name };
    const at = new Date(now);
    const body: CoreV1Event = {
      metadata: { name, namespace },
      involvedObject: involvedObject(subject),
      type: spec.type,
      reason: spec.reason.slice(0, MAX_REASON_LENGTH),
      message: truncateUtf8(spec.message),
      action: (spec.action ?? 'SetMirrorPercent').slice(0, MAX_REASON_LENGTH),
      source: { component: EVENT_COMPONENT, host: this.instance },
      reportingComponent: EVENT_COMPONENT,
      reportingInstance: this.instance,
      firstTimestamp: at,
      lastTimestamp: at,
      // MicroTime: the API server parses six fractional digits; a plain Date would serialize three and be refused.
      eventTime: new V1MicroTime(now),
      count: 1,
    };
    try {
      await this.api.createNamespacedEvent({ namespace, body }, this.createOptions);
    } catch (err) {
      this.fail(toKubernetesError(err, ctx), subject, spec);
      return 'failed';
    }
    this.touch(key, { name, namespace, count: 1, first: now, last: now });
    this.logger?.debug({ event: name, reason: spec.reason }, 'event created');
    return 'created';
  }

  private fail(error: Error, subject: EventSubject, spec: EventSpec): void {
    this.logger?.warn(
      {
        err: error,
        virtualService: `${subject.metadata.namespace}/${subject.metadata.name}`,
        reason: spec.reason,
      },
      `recording event ${spec.reason} failed: ${error.message}`,
    );
    try {
      this.onApiError?.(error);
    } catch {
      // A faulty observer must not turn a best-effort Event into a thrown error.
    }
  }

  /** UnixNano of `now`, strictly increasing within this process so that two Events never share a name. */
  private nanos(now: number): bigint {
    let n = BigInt(Math.floor(now)) * 1_000_000n;
    if (n <= this.lastNanos) n = this.lastNanos + 1n;
    this.lastNanos = n;
    return n;
  }

  private touch(key: string, entry: Seen): void {
    // Re-inserting keeps the Map in least-recently-seen order for eviction.
    this.seen.delete(key);
    this.seen.set(key, entry);
    while (this.seen.size > this.cacheSize) {
      const oldest = this.seen.keys().next();
      if (oldest.done === true) break;
      this.seen.delete(oldest.value);
    }
  }

  private expire(now: number): void {
    for (const [key, entry] of this.seen) {
      if (now - entry.last <= this.windowMs) break;
      this.seen.delete(key);
    }
  }
}

function dedupKey(subject: EventSubject, spec: EventSpec): string {
  const m = subject.metadata;
  const uid = typeof m.uid === 'string' ? m.uid : '';
  return [
    subject.apiVersion,
    subject.kind,
    m.namespace,
    m.name,
    uid,
    spec.type,
    spec.reason,
    spec.message,
  ].join('\u0000');
}

function involvedObject(subject: EventSubject): CoreV1Event['involvedObject'] {
  const m = subject.metadata;
  return {
    apiVersion: subject.apiVersion,
    kind: subject.kind,
    name: m.name,
    namespace: m.namespace,
    ...(typeof m.uid === 'string' && { uid: m.uid }),
    ...(m.resourceVersion !== undefined && { resourceVersion: m.resourceVersion }),
  };
}
