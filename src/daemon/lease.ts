/**
 * Leader election on a coordination.k8s.io/v1 Lease, with the semantics of client-go's leaderelection
 * package (client-node has no such helper): the Lease's resourceVersion is the lock, every write is a
 * create or a PUT carrying the resourceVersion we read, and a 409 means another replica got there first.
 *
 * The safety rule the daemon relies on: a leader whose renewals have not succeeded for renewDeadline stops
 * leading (and so stops writing) before any other replica may consider the Lease expired, because
 * renewDeadline < leaseDuration. Writers additionally call `leadershipValid(now)` right before each write.
 *
 * `tryAcquireOrRenew(now)` is the whole decision, one attempt, with the time passed in so tests drive it
 * with a fake clock; `start()` only schedules it every retryPeriod.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  type RequestContext as ClientRequestContext,
  type ConfigurationOptions,
  CoordinationV1Api,
  type KubeConfig,
  Observable,
  type ObservableMiddleware,
  type ResponseContext,
  type V1Lease,
  type V1LeaseSpec,
  V1MicroTime,
} from '@kubernetes/client-node';
import {
  ConflictError,
  ForbiddenError,
  KubernetesApiError,
  NotFoundError,
  type RequestContext,
} from '../mesh/errors.js';
import { toKubernetesError } from '../mesh/kubernetes.js';
import { createLogger } from './audit.js';

/** client-go's defaults (LeaderElectionConfig): 15 s lease, 10 s renew deadline, 2 s retry period. */
export const DEFAULT_LEASE_TIMING = {
  leaseDurationSeconds: 15,
  renewDeadlineSeconds: 10,
  retryPeriodSeconds: 2,
} as const;

/**
 * client-go's JitterFactor: followers wait retryPeriod × (1 + 1.2 × random) between attempts so replicas
 * started together do not hit the API server in lockstep, and renewDeadline must exceed 1.2 × retryPeriod so
 * a leader gets more than one renewal attempt before its deadline.
 */
export const LEASE_JITTER_FACTOR = 1.2;

export const LEASE_RESOURCE = 'leases.coordination.k8s.io';

/** The structured-logging calls the elector makes; a pino Logger satisfies it. */
export interface LeaseLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface LeaseElectorOptions {
  /** Lease name (a DNS subdomain name). */
  readonly name: string;
  /** Namespace of the Lease (a DNS label). */
  readonly namespace: string;
  /** This replica's identity in spec.holderIdentity; default `<hostname>-<8 hex digits>`. */
  readonly identity?: string;
  /** How long a Lease stays valid after its renewTime without renewal; integer, default 15. */
  readonly leaseDurationSeconds?: number;
  /** A leader that has not renewed for this long stops leading; must be < leaseDurationSeconds; default 10. */
  readonly renewDeadlineSeconds?: number;
  /** Time between attempts; renewDeadlineSeconds must exceed 1.2 × this; default 2. */
  readonly retryPeriodSeconds?: number;
  /** Clock in epoch milliseconds; default Date.now. */
  readonly now?: () => number;
  /**
   * Called when this replica becomes leader. `signal` aborts when leadership ends, so work started here can
   * stop itself. Exceptions are logged, never propagated.
   */
  readonly onStartedLeading: (signal: AbortSignal) => void;
  /** Called when this replica stops leading (deadline passed, Lease taken, or stop()), before any release. */
  readonly onStoppedLeading: () => void;
  /** Default: the process root logger (pino, JSON on stdout). */
  readonly logger?: LeaseLogger;
  /**
   * Called with the typed error of every failed Lease request, e.g. to count it; not for the 404 of a Lease
   * that does not exist yet, which is how election starts.
   */
  readonly onApiError?: (err: KubernetesApiError) => void;
}

/** Options after defaults and validation. */
export interface ResolvedLeaseOptions {
  readonly name: string;
  readonly namespace: string;
  readonly identity: string;
  readonly leaseDurationSeconds: number;
  readonly renewDeadlineSeconds: number;
  readonly retryPeriodSeconds: number;
}

/** Why leadership ended; logged with the transition. */
export const STOPPED_LEADING_REASONS = ['RenewDeadlineExceeded', 'LeaseHeldByOther', 'Stopped'] as const;
export type StoppedLeadingReason = (typeof STOPPED_LEADING_REASONS)[number];

/** What one attempt found: the elector's view of the Lease, for /readyz, metrics and logs. */
export interface LeaseStatus {
  readonly identity: string;
  /** Leading and within the renew deadline (same as isLeader()). */
  readonly leader: boolean;
  /** spec.holderIdentity as last read or written; undefined when the Lease is free or unseen. */
  readonly observedHolder: string | undefined;
  /** Clock time (ms) at the start of the last successful acquire or renew. */
  readonly lastRenewAt: number | undefined;
  /** Attempts that failed on an API error or a lost race while leading, since the last success. */
  readonly consecutiveFailures: number;
  /** All such failures since construction. */
  readonly failedAttempts: number;
  /** Message of the last API error, cleared by a successful attempt. */
  readonly lastError: string | undefined;
}

/** An invalid option; the message names the option and the value. */
export class LeaseOptionsError extends Error {
  override readonly name = 'LeaseOptionsError';
  constructor(
    readonly option: string,
    readonly value: unknown,
    problem: string,
  ) {
    super(`lease option ${option}: ${problem} (got ${describe(value)})`);
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  return String(value);
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function isDnsSubdomain(value: string): boolean {
  return value.length <= 253 && value.split('.').every((part) => part.length <= 63 && DNS_LABEL.test(part));
}

/** `<hostname>-<8 hex digits>`: the hostname says which pod, the suffix keeps a restarted pod distinct. */
export function defaultIdentity(): string {
  return `${hostname()}-${randomBytes(4).toString('hex')}`;
}

function positiveSeconds(option: string, value: unknown, integer: boolean): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new LeaseOptionsError(option, value, 'must be a positive number of seconds');
  }
  // The Lease stores leaseDurationSeconds as an int32; the other two never leave this process.
  if (integer && (!Number.isInteger(value) || value > 2 ** 31 - 1)) {
    throw new LeaseOptionsError(option, value, 'must be a whole number of seconds (Lease int32 field)');
  }
  return value;
}

/**
 * Applies defaults and checks every option, as client-go's NewLeaderElector does.
 * @throws LeaseOptionsError naming the first invalid option and its value.
 */
export function validateLeaseOptions(
  options: Omit<LeaseElectorOptions, 'onStartedLeading' | 'onStoppedLeading' | 'logger' | 'now'>,
): ResolvedLeaseOptions {
  const { name, namespace } = options;
  if (typeof name !== 'string' || !isDnsSubdomain(name)) {
    throw new LeaseOptionsError(
      'name',
      name,
      "must be a DNS subdomain name (lowercase letters, digits, '-' and '.', at most 253 characters)",
    );
  }
  if (typeof namespace !== 'string' || namespace.length > 63 || !DNS_LABEL.test(namespace)) {
    throw new LeaseOptionsError(
      'namespace',
      namespace,
      "must be a DNS label (lowercase letters, digits and '-', at most 63 characters)",
    );
  }
  const identity = options.identity ?? defaultIdentity();
  if (typeof identity !== 'string' || identity.trim() === '') {
    throw new LeaseOptionsError('identity', identity, 'must be a non-empty string');
  }
  const leaseDurationSeconds = positiveSeconds(
    'leaseDurationSeconds',
    options.leaseDurationSeconds ?? DEFAULT_LEASE_TIMING.leaseDurationSeconds,
    true,
  );
  const renewDeadlineSeconds = positiveSeconds(
    'renewDeadlineSeconds',
    options.renewDeadlineSeconds ?? DEFAULT_LEASE_TIMING.renewDeadlineSeconds,
    false,
  );
  const retryPeriodSeconds = positiveSeconds(
    'retryPeriodSeconds',
    options.retryPeriodSeconds ?? DEFAULT_LEASE_TIMING.retryPeriodSeconds,
    false,
  );
  // A leader must give up before anyone else may take the Lease; equal values would race.
  if (renewDeadlineSeconds >= leaseDurationSeconds) {
    throw new LeaseOptionsError(
      'renewDeadlineSeconds',
      renewDeadlineSeconds,
      `must be less than leaseDurationSeconds (${leaseDurationSeconds}) so a leader stops before its Lease can be taken`,
    );
  }
  if (renewDeadlineSeconds <= LEASE_JITTER_FACTOR * retryPeriodSeconds) {
    throw new LeaseOptionsError(
      'retryPeriodSeconds',
      retryPeriodSeconds,
      `must be less than renewDeadlineSeconds / ${LEASE_JITTER_FACTOR} (renewDeadlineSeconds is ${renewDeadlineSeconds}) so a leader can retry a failed renewal before its deadline`,
    );
  }
  return { name, namespace, identity, leaseDurationSeconds, renewDeadlineSeconds, retryPeriodSeconds };
}

const MICRO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * Reads a MicroTime as epoch ms. client-node declares V1MicroTime (a Date) but hands back the raw string
 * for it when deserialising, so both shapes arrive here; anything else is undefined.
 */
export function parseMicroTime(value: unknown): number | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value.getTime();
  if (typeof value !== 'string' || !MICRO_TIME.test(value)) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/**
 * A MicroTime for a Lease field. A plain Date would be sent with millisecond precision
 * (`…00.123Z`), which kube-apiserver's RFC3339Micro parser rejects; V1MicroTime sends `…00.123000Z`.
 */
export function microTime(ms: number): V1MicroTime {
  return new V1MicroTime(ms);
}

type Outcome =
  | { readonly kind: 'acquired' | 'renewed'; readonly lease: V1Lease }
  | { readonly kind: 'held'; readonly holder: string }
  | { readonly kind: 'lostRace'; readonly verb: 'create' | 'update'; readonly err: Error }
  | { readonly kind: 'failed'; readonly err: Error };

function holderOf(lease: V1Lease | undefined): string | undefined {
  const holder = lease?.spec?.holderIdentity;
  return typeof holder === 'string' && holder !== '' ? holder : undefined;
}

function requestOptions(signal: AbortSignal): ConfigurationOptions<ObservableMiddleware> {
  const middleware: ObservableMiddleware = {
    pre: (request: ClientRequestContext) => {
      // Without a signal a hung API server would hold an attempt past the renew deadline.
      request.setSignal(signal);
      request.setHeaderParam('User-Agent', 'mirror-autoscaler');
      return new Observable(Promise.resolve(request));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/**
 * Leader election on one Lease. Construct, `start()`, gate writes on `leadershipValid(now)`, `stop()` on
 * shutdown. See the file comment for the safety rule.
 */
export class LeaseElector {
  readonly options: ResolvedLeaseOptions;
  private readonly api: CoordinationV1Api;
  private readonly now: () => number;
  private readonly logger: LeaseLogger;
  private readonly onStartedLeading: (signal: AbortSignal) => void;
  private readonly onStoppedLeading: () => void;
  private readonly logFields: { lease: string; identity: string };

  private leading = false;
  private leadership: AbortController | undefined;
  private lastRenewAt: number | undefined;
  /** The Lease as last read or written, kept for release and status. */
  private lease: V1Lease | undefined;
  /** resourceVersion of the Lease when we last saw it change, and our clock at that moment. */
  private observedVersion: string | undefined;
  private observedAt = 0;
  private consecutiveFailures = 0;
  private failedAttempts = 0;
  private lastError: string | undefined;

  /** Attempts run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();
  private running = false;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private readonly stopController = new AbortController();
  private loopTimer: NodeJS.Timeout | undefined;
  private readonly onApiError: ((err: KubernetesApiError) => void) | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;

  /** @throws LeaseOptionsError when an option is invalid (see validateLeaseOptions). */
  constructor(kc: KubeConfig, options: LeaseElectorOptions) {
    this.options = validateLeaseOptions(options);
    if (typeof options.onStartedLeading !== 'function') {
      throw new LeaseOptionsError('onStartedLeading', options.onStartedLeading, 'must be a function');
    }
    if (typeof options.onStoppedLeading !== 'function') {
      throw new LeaseOptionsError('onStoppedLeading', options.onStoppedLeading, 'must be a function');
    }
    this.api = kc.makeApiClient(CoordinationV1Api);
    this.now = options.now ?? Date.now;
    this.onApiError = options.onApiError;
    this.logger = options.logger ?? createLogger().child({ component: 'lease' });
    this.onStartedLeading = options.onStartedLeading;
    this.onStoppedLeading = options.onStoppedLeading;
    this.logFields = {
      lease: `${this.options.namespace}/${this.options.name}`,
      identity: this.options.identity,
    };
  }

  get identity(): string {
    return this.options.identity;
  }

  /** Whether this replica leads right now: leading and within the renew deadline by the injected clock. */
  isLeader(): boolean {
    return this.leadershipValid(this.now());
  }

  /**
   * Whether a write at `now` is covered: true only while leading and the last successful renew is less than
   * renewDeadlineSeconds before `now`. Call it right before each write.
   */
  leadershipValid(now: number): boolean {
    return (
      this.leading &&
      this.lastRenewAt !== undefined &&
      this.lastRenewAt + this.options.renewDeadlineSeconds * 1000 > now
    );
  }

  /** A snapshot for /readyz, metrics and logs. */
  status(): LeaseStatus {
    return {
      identity: this.options.identity,
      leader: this.isLeader(),
      observedHolder: holderOf(this.lease),
      lastRenewAt: this.lastRenewAt,
      consecutiveFailures: this.consecutiveFailures,
      failedAttempts: this.failedAttempts,
      lastError: this.lastError,
    };
  }

  /**
   * One election step at clock time `now` (ms): read the Lease, create it when absent, take it when free or
   * expired, renew it when ours; start or stop leading accordingly. Never rejects: API errors are logged
   * and count as failed renewals. Calls are serialised. After stop() it does nothing and returns false.
   * @returns whether this replica leads after the step.
   */
  tryAcquireOrRenew(now: number = this.now()): Promise<boolean> {
    const run = this.queue.then(() => this.attempt(now));
    this.queue = run.catch(() => undefined);
    return run.catch((err: unknown) => {
      // attempt() handles its own errors; this only guards the promise contract against a bug there.
      this.logger.error({ ...this.logFields, err }, 'lease election step failed unexpectedly');
      return false;
    });
  }

  /** Starts the timer loop (first attempt at once). Idempotent. @throws Error after stop(). */
  start(): void {
    if (this.stopped) {
      throw new Error(`lease ${this.logFields.lease}: start() after stop(); create a new LeaseElector`);
    }
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /**
   * Stops the loop, abandons an attempt in flight, stops leading (onStoppedLeading runs first, so writing
   * stops before anyone else can lead) and releases the Lease when it is ours: holderIdentity removed and
   * leaseDurationSeconds 1, as client-go's ReleaseOnCancel, so a follower takes over at its next attempt.
   * Idempotent; never rejects.
   */
  stop(): Promise<void> {
    if (this.stopping === undefined) this.stopping = this.shutdown();
    return this.stopping;
  }

  // ---------------------------------------------------------------- timer shell

  private schedule(delayMs: number): void {
    this.loopTimer = setTimeout(() => {
      this.loopTimer = undefined;
      void this.tick();
    }, delayMs);
  }

  private async tick(): Promise<void> {
    await this.tryAcquireOrRenew(this.now());
    if (!this.running) return;
    this.armWatchdog();
    const period = this.options.retryPeriodSeconds * 1000;
    // A leader renews on the period exactly: its deadline leaves room for few attempts, jitter would eat it.
    this.schedule(this.leading ? period : period * (1 + LEASE_JITTER_FACTOR * Math.random()));
  }

  /** Stops leading at the deadline even if the attempt in flight hangs until then. */
  private armWatchdog(): void {
    if (this.watchdogTimer !== undefined) clearTimeout(this.watchdogTimer);
    this.watchdogTimer = undefined;
    if (!this.leading || this.lastRenewAt === undefined || !this.running) return;
    const remaining = this.lastRenewAt + this.options.renewDeadlineSeconds * 1000 - this.now();
    this.watchdogTimer = setTimeout(
      () => {
        this.watchdogTimer = undefined;
        if (this.leading && !this.leadershipValid(this.now())) {
          this.stopLeading('RenewDeadlineExceeded');
        } else {
          this.armWatchdog();
        }
      },
      Math.max(remaining, 1),
    );
  }

  private async shutdown(): Promise<void> {
    this.stopped = true;
    this.running = false;
    if (this.loopTimer !== undefined) clearTimeout(this.loopTimer);
    if (this.watchdogTimer !== undefined) clearTimeout(this.watchdogTimer);
    this.loopTimer = undefined;
    this.watchdogTimer = undefined;
    this.stopController.abort(new Error('lease elector stopped'));
    await this.queue;
    if (this.leading) this.stopLeading('Stopped');
    try {
      await this.release();
    } catch (err) {
      this.logger.error({ ...this.logFields, err }, 'releasing the lease failed unexpectedly');
    }
  }

  // ---------------------------------------------------------------- the election step

  private async attempt(now: number): Promise<boolean> {
    if (this.stopped) return false;
    // The deadline is checked before the request: a late success must not extend a leadership that lapsed.
    if (this.leading && !this.leadershipValid(now)) this.stopLeading('RenewDeadlineExceeded');

    // Like client-go's renew context: a leader's attempt may last until its deadline, a follower's for
    // renewDeadline.
    const budget = this.leading
      ? (this.lastRenewAt ?? now) + this.options.renewDeadlineSeconds * 1000 - now
      : this.options.renewDeadlineSeconds * 1000;
    const signal = AbortSignal.any([this.stopController.signal, AbortSignal.timeout(Math.max(budget, 1))]);
    const outcome = await this.acquireOrRenew(now, signal);

    switch (outcome.kind) {
      case 'acquired':
      case 'renewed': {
        this.consecutiveFailures = 0;
        this.lastError = undefined;
        this.lastRenewAt = now;
        if (this.stopped) return false; // stop() came during the request; it releases what we just wrote
        if (!this.leading) {
          this.logger.info(
            { ...this.logFields, leaseTransitions: outcome.lease.spec?.leaseTransitions },
            outcome.kind === 'acquired' ? 'acquired lease' : 'renewed own lease, leading again',
          );
          this.startLeading();
        } else {
          this.logger.debug(this.logFields, 'renewed lease');
        }
        return true;
      }
      case 'held':
        this.consecutiveFailures = 0;
        this.lastError = undefined;
        if (this.leading) {
          this.logger.warn({ ...this.logFields, holder: outcome.holder }, 'lease is held by another replica');
          this.stopLeading('LeaseHeldByOther');
        } else {
          this.logger.debug(
            { ...this.logFields, holder: outcome.holder },
            'lease is held by another replica',
          );
        }
        return false;
      case 'lostRace':
        // For a follower a lost race is the normal way of losing an election; for a leader it is a failed
        // renewal, and the next read tells whether the Lease is gone.
        if (this.leading) this.recordFailure(outcome.err, 'renewing the lease lost a race (409 Conflict)');
        else
          this.logger.info({ ...this.logFields, verb: outcome.verb }, 'another replica took the lease first');
        return this.leadershipValid(now);
      case 'failed':
        if (this.stopped) {
          this.logger.debug({ ...this.logFields, err: outcome.err }, 'lease request abandoned by stop()');
          return false;
        }
        this.recordFailure(outcome.err, 'lease request failed');
        return this.leadershipValid(now);
    }
  }

  private recordFailure(err: Error, msg: string): void {
    this.consecutiveFailures++;
    this.failedAttempts++;
    this.lastError = err.message;
    const fields = { ...this.logFields, err, consecutiveFailures: this.consecutiveFailures };
    if (err instanceof ForbiddenError) {
      // RBAC will not fix itself: say exactly which permissions the ServiceAccount needs.
      this.logger.error(
        fields,
        `lease request forbidden: missing RBAC permission "${err.verb}" on ${LEASE_RESOURCE} in namespace "${this.options.namespace}"; the ServiceAccount needs get, create and update on ${LEASE_RESOURCE} there`,
      );
    } else {
      this.logger.warn(fields, msg);
    }
  }

  /** Runs one client call, turning whatever it throws into a typed error that names verb and object. */
  private async call<T>(verb: 'get' | 'create' | 'update', fn: () => Promise<T>): Promise<T> {
    const ctx: RequestContext = {
      verb,
      resource: LEASE_RESOURCE,
      namespace: this.options.namespace,
      name: this.options.name,
    };
    try {
      return await fn();
    } catch (err) {
      const typed = toKubernetesError(err, ctx);
      if (typed instanceof KubernetesApiError && !(verb === 'get' && typed instanceof NotFoundError)) {
        this.onApiError?.(typed);
      }
      throw typed;
    }
  }

  private async acquireOrRenew(now: number, signal: AbortSignal): Promise<Outcome> {
    const { name, namespace, identity, leaseDurationSeconds } = this.options;
    const options = requestOptions(signal);
    let old: V1Lease | undefined;
    try {
      old = await this.call('get', () => this.api.readNamespacedLease({ name, namespace }, options));
    } catch (err) {
      if (!(err instanceof NotFoundError)) return { kind: 'failed', err: err as Error };
    }

    if (old === undefined) {
      const body: V1Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        },
      };
      try {
        const created = await this.call('create', () =>
          this.api.createNamespacedLease({ namespace, body }, options),
        );
        this.observe(created, now);
        return { kind: 'acquired', lease: created };
      } catch (err) {
        // 409 AlreadyExists: another replica created it between our read and our create.
        if (err instanceof ConflictError) return { kind: 'lostRace', verb: 'create', err };
        return { kind: 'failed', err: err as Error };
      }
    }

    this.observe(old, now);
    const spec: V1LeaseSpec = old.spec ?? {};
    const holder = holderOf(old);
    if (holder !== undefined && holder !== identity && !this.expired(spec, now)) {
      return { kind: 'held', holder };
    }
    const ours = holder === identity;
    const transitions = typeof spec.leaseTransitions === 'number' ? spec.leaseTransitions : 0;
    const body: V1Lease = {
      ...old,
      spec: {
        // Fields we do not manage (strategy, preferredHolder) are kept as they were.
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: ours && spec.acquireTime !== undefined ? spec.acquireTime : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: ours ? transitions : transitions + 1,
      },
    };
    try {
      // PUT with the resourceVersion we read: the API server refuses it (409) if anyone wrote since.
      const updated = await this.call('update', () =>
        this.api.replaceNamespacedLease({ name, namespace, body }, options),
      );
      this.observe(updated, now);
      return { kind: ours ? 'renewed' : 'acquired', lease: updated };
    } catch (err) {
      if (err instanceof ConflictError) return { kind: 'lostRace', verb: 'update', err };
      return { kind: 'failed', err: err as Error };
    }
  }

  /** Notes the Lease and, when its resourceVersion changed, our clock time as the moment we saw it change. */
  private observe(lease: V1Lease, now: number): void {
    this.lease = lease;
    const version = lease.metadata?.resourceVersion;
    if (version !== this.observedVersion) {
      this.observedVersion = version;
      this.observedAt = now;
    }
  }

  /**
   * Whether another holder's Lease may be taken at `now`. Two clocks must agree: the holder's renewTime plus
   * the lease duration has passed (the documented rule), and so has a full lease duration since we last saw
   * the Lease change on our own clock (client-go's rule, which holds whatever the clock skew between
   * replicas: a follower whose clock runs ahead cannot take a Lease early).
   */
  private expired(spec: V1LeaseSpec, now: number): boolean {
    const seconds =
      typeof spec.leaseDurationSeconds === 'number' && spec.leaseDurationSeconds > 0
        ? spec.leaseDurationSeconds
        : this.options.leaseDurationSeconds;
    const duration = seconds * 1000;
    const renewedAt = parseMicroTime(spec.renewTime);
    const byRenewTime = renewedAt === undefined || renewedAt + duration < now;
    const byObservation = this.observedAt + duration < now;
    return byRenewTime && byObservation;
  }

  // ---------------------------------------------------------------- transitions

  private startLeading(): void {
    this.leading = true;
    this.leadership = new AbortController();
    try {
      this.onStartedLeading(this.leadership.signal);
    } catch (err) {
      this.logger.error({ ...this.logFields, err }, 'onStartedLeading threw');
    }
    this.armWatchdog();
  }

  private stopLeading(reason: StoppedLeadingReason): void {
    if (!this.leading) return;
    this.leading = false;
    this.leadership?.abort(new Error(`leadership ended: ${reason}`));
    this.leadership = undefined;
    if (this.watchdogTimer !== undefined) clearTimeout(this.watchdogTimer);
    this.watchdogTimer = undefined;
    const log = reason === 'Stopped' ? this.logger.info : this.logger.warn;
    log.call(this.logger, { ...this.logFields, reason, lastRenewAt: this.lastRenewAt }, 'stopped leading');
    try {
      this.onStoppedLeading();
    } catch (err) {
      this.logger.error({ ...this.logFields, err }, 'onStoppedLeading threw');
    }
  }

  /** Gives the Lease up when our last view says we hold it; one re-read when it changed since. */
  private async release(): Promise<void> {
    const { name, namespace } = this.options;
    const timeoutMs = this.options.renewDeadlineSeconds * 1000;
    for (let attempt = 0; attempt < 2; attempt++) {
      const lease = this.lease;
      if (lease === undefined || holderOf(lease) !== this.options.identity) return;
      const options = requestOptions(AbortSignal.timeout(timeoutMs));
      const now = this.now();
      const { holderIdentity: _held, ...rest } = lease.spec ?? {};
      const body: V1Lease = {
        ...lease,
        spec: {
          ...rest,
          leaseDurationSeconds: 1,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: typeof rest.leaseTransitions === 'number' ? rest.leaseTransitions : 0,
        },
      };
      try {
        this.lease = await this.call('update', () =>
          this.api.replaceNamespacedLease({ name, namespace, body }, options),
        );
        this.logger.info(this.logFields, 'released lease');
        return;
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt > 0) {
          this.logger.warn({ ...this.logFields, err }, 'could not release lease; it expires on its own');
          return;
        }
      }
      try {
        this.lease = await this.call('get', () =>
          this.api.readNamespacedLease({ name, namespace }, requestOptions(AbortSignal.timeout(timeoutMs))),
        );
      } catch (err) {
        this.logger.warn({ ...this.logFields, err }, 'could not release lease; it expires on its own');
        return;
      }
    }
  }
}
