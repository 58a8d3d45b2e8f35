/**
 * Retries of API requests that may succeed if repeated (429, 5xx, no answer), with exponential backoff and
 * jitter, bounded in attempts and in total time.
 *
 * `backoffDelay` is the whole policy, pure: the attempt that failed, the time spent so far, a random number
 * and the server's Retry-After in, the delay before the next attempt (or "give up") out. `withRetry` only
 * loops around it with an injectable clock, sleep and random source, so tests pin all three.
 */
import { KubernetesApiError } from './errors.js';

/** How a failed request is retried. */
export interface BackoffPolicy {
  /** Attempts in all, the first one included; 1 disables retries. */
  readonly maxAttempts: number;
  /** Delay after the first failure, before jitter, in milliseconds. */
  readonly baseDelayMs: number;
  /** Cap on one computed delay (a Retry-After from the server may exceed it), in milliseconds. */
  readonly maxDelayMs: number;
  /**
   * Cap on the time spent waiting and retrying, in milliseconds: a delay that would end past it is not
   * waited, the request gives up instead. Keeps one slow API server from stalling a whole cycle.
   */
  readonly maxTotalMs: number;
  /** Share of each delay that is random, 0 to 1: the delay lies in [d × (1 − jitter), d]. */
  readonly jitter: number;
}

/**
 * 4 attempts, 250 ms doubling to at most 4 s, within 10 s in all, half of each delay random: an API server
 * restarting or shedding load (429) gets a few seconds, and replicas that failed together do not retry in
 * lockstep.
 */
export const DEFAULT_BACKOFF: BackoffPolicy = {
  maxAttempts: 4,
  baseDelayMs: 250,
  maxDelayMs: 4000,
  maxTotalMs: 10_000,
  jitter: 0.5,
};

/** An invalid backoff setting; the message names the field and the value. */
export class BackoffPolicyError extends Error {
  override readonly name = 'BackoffPolicyError';
}

/**
 * Checks a policy. @throws BackoffPolicyError naming the field and value when one is out of range.
 * @returns the same policy.
 */
export function validateBackoffPolicy(policy: BackoffPolicy): BackoffPolicy {
  const check = (field: keyof BackoffPolicy, ok: boolean, expected: string) => {
    if (!ok) {
      throw new BackoffPolicyError(`backoff ${field}: must be ${expected} (got ${String(policy[field])})`);
    }
  };
  check('maxAttempts', Number.isInteger(policy.maxAttempts) && policy.maxAttempts >= 1, 'an integer >= 1');
  check(
    'baseDelayMs',
    Number.isFinite(policy.baseDelayMs) && policy.baseDelayMs >= 0,
    'a finite number >= 0',
  );
  check(
    'maxDelayMs',
    Number.isFinite(policy.maxDelayMs) && policy.maxDelayMs >= policy.baseDelayMs,
    `a finite number >= baseDelayMs (${policy.baseDelayMs})`,
  );
  check('maxTotalMs', Number.isFinite(policy.maxTotalMs) && policy.maxTotalMs >= 0, 'a finite number >= 0');
  check(
    'jitter',
    Number.isFinite(policy.jitter) && policy.jitter >= 0 && policy.jitter <= 1,
    'between 0 and 1',
  );
  return policy;
}

/**
 * The delay before the next attempt, after attempt number `attempt` (1-based) failed; undefined to give up.
 *
 * The delay is `baseDelayMs × 2^(attempt−1)`, capped at `maxDelayMs`, less up to `jitter` of it at random.
 * A Retry-After from the server is honoured as a lower bound: the server knows when it will take requests
 * again, and retrying earlier only adds to its load. The request gives up when the attempts are used up, or
 * when waiting would end past `maxTotalMs` (better to fail this cycle and try the next than to stall it).
 *
 * @param elapsedMs time since the first attempt started.
 * @param random a number in [0, 1), e.g. Math.random().
 * @param retryAfterSeconds what the server asked for (Retry-After or Status details), when it did.
 */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  elapsedMs: number,
  random: number,
  retryAfterSeconds?: number,
): number | undefined {
  if (attempt >= policy.maxAttempts) return undefined;
  const exponential = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  const r = Number.isFinite(random) ? Math.min(Math.max(random, 0), 1) : 0;
  let delay = exponential * (1 - policy.jitter * r);
  if (retryAfterSeconds !== undefined && Number.isFinite(retryAfterSeconds) && retryAfterSeconds > 0) {
    delay = Math.max(delay, retryAfterSeconds * 1000);
  }
  if (elapsedMs + delay > policy.maxTotalMs) return undefined;
  return Math.round(delay);
}

/** True for an error worth repeating the request for: 429, 5xx, or no answer at all. */
export function isRetriable(err: unknown): err is KubernetesApiError {
  return err instanceof KubernetesApiError && err.retriable;
}

/** The clock, sleep and randomness of the retry loop; the defaults are the real ones. */
export interface RetryDeps {
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  /** Called before each wait with the error that caused it, e.g. to log or count it. */
  readonly onRetry?: (err: KubernetesApiError, attempt: number, delayMs: number) => void;
}

/** A real sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Appends how long the retries went on to a typed error's message (the type, code and fields stay), so the
 * log line that reports it says that it was retried, not only what the last answer was.
 */
export function noteGaveUp(err: KubernetesApiError, attempts: number, elapsedMs: number): KubernetesApiError {
  if (attempts > 1)
    err.message = `${err.message}; gave up after ${attempts} attempts in ${(elapsedMs / 1000).toFixed(1)} s`;
  return err;
}

/**
 * Runs `fn` and repeats it after retriable failures (see isRetriable) as `backoffDelay` says. Any other
 * error is thrown at once.
 * @throws the last error when retries are exhausted, its message ending with the attempts made.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  deps: RetryDeps = {},
): Promise<T> {
  const now = deps.now ?? Date.now;
  const wait = deps.sleep ?? sleep;
  const random = deps.random ?? Math.random;
  const started = now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (!isRetriable(err)) throw err;
      const elapsed = now() - started;
      const delay = backoffDelay(policy, attempt, elapsed, random(), err.retryAfterSeconds);
      if (delay === undefined) throw noteGaveUp(err, attempt, elapsed);
      deps.onRetry?.(err, attempt, delay);
      await wait(delay);
    }
  }
}
