/**
 * The backoff policy (pure) and the retry loop on a pinned clock, sleep and random source: no real waiting.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ApiError, ForbiddenError, TransportError } from '../../src/mesh/errors.js';
import {
  type BackoffPolicy,
  BackoffPolicyError,
  backoffDelay,
  DEFAULT_BACKOFF,
  validateBackoffPolicy,
  withRetry,
} from '../../src/mesh/retry.js';

const P: BackoffPolicy = {
  maxAttempts: 5,
  baseDelayMs: 100,
  maxDelayMs: 1000,
  maxTotalMs: 5000,
  jitter: 0.5,
};
const CTX = { verb: 'list', resource: 'virtualservices.networking.istio.io', namespace: 'shop' };

describe('backoffDelay', () => {
  const rows: {
    name: string;
    attempt: number;
    elapsedMs?: number;
    random?: number;
    retryAfter?: number;
    policy?: BackoffPolicy;
    expected: number | undefined;
  }[] = [
    { name: 'first failure, no jitter drawn', attempt: 1, random: 0, expected: 100 },
    { name: 'doubles per attempt', attempt: 3, random: 0, expected: 400 },
    { name: 'jitter takes up to half off', attempt: 3, random: 0.999_999, expected: 200 },
    { name: 'jitter in between', attempt: 2, random: 0.5, expected: 150 },
    { name: 'capped at maxDelayMs', attempt: 4, random: 0, policy: { ...P, maxAttempts: 9 }, expected: 800 },
    { name: 'capped, later', attempt: 8, random: 0, policy: { ...P, maxAttempts: 9 }, expected: 1000 },
    { name: 'attempts used up', attempt: 5, random: 0, expected: undefined },
    { name: 'Retry-After is a lower bound', attempt: 1, random: 0, retryAfter: 2, expected: 2000 },
    { name: 'Retry-After above maxDelayMs is honoured', attempt: 1, retryAfter: 3, expected: 3000 },
    { name: 'Retry-After shorter than the backoff', attempt: 3, random: 0, retryAfter: 0.1, expected: 400 },
    { name: 'Retry-After past the total budget: give up', attempt: 1, retryAfter: 60, expected: undefined },
    { name: 'a delay ending past maxTotalMs: give up', attempt: 2, elapsedMs: 4900, expected: undefined },
    { name: 'a delay ending at maxTotalMs: wait', attempt: 1, elapsedMs: 4900, random: 0, expected: 100 },
    { name: 'nonsense Retry-After is ignored', attempt: 1, random: 0, retryAfter: Number.NaN, expected: 100 },
    { name: 'nonsense random counts as 0', attempt: 1, random: Number.NaN, expected: 100 },
    { name: 'one attempt: never retry', attempt: 1, policy: { ...P, maxAttempts: 1 }, expected: undefined },
  ];
  it.each(rows)('$name', (row) => {
    expect(
      backoffDelay(row.policy ?? P, row.attempt, row.elapsedMs ?? 0, row.random ?? 0, row.retryAfter),
    ).toBe(row.expected);
  });

  it('always lies within [d × (1 − jitter), d] of the capped exponential, or gives up', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        (attempt, random, jitter) => {
          const policy = { ...P, maxAttempts: 20, maxTotalMs: 1e9, jitter };
          const d = backoffDelay(policy, attempt, 0, random);
          const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
          expect(d).toBeDefined();
          expect(d as number).toBeLessThanOrEqual(Math.round(cap));
          expect(d as number).toBeGreaterThanOrEqual(Math.round(cap * (1 - jitter)));
        },
      ),
    );
  });

  it('never lets the waiting exceed maxTotalMs, whatever the server asks', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 20_000 }),
        fc.option(fc.double({ min: 0, max: 100, noNaN: true }), { nil: undefined }),
        (attempt, elapsed, retryAfter) => {
          const d = backoffDelay(DEFAULT_BACKOFF, attempt, elapsed, 0.3, retryAfter);
          if (d !== undefined) expect(elapsed + d).toBeLessThanOrEqual(DEFAULT_BACKOFF.maxTotalMs + 1);
        },
      ),
    );
  });
});

describe('validateBackoffPolicy', () => {
  it('accepts the default', () => {
    expect(validateBackoffPolicy(DEFAULT_BACKOFF)).toBe(DEFAULT_BACKOFF);
  });
  it.each([
    {
      name: 'zero attempts',
      policy: { ...P, maxAttempts: 0 },
      message: 'backoff maxAttempts: must be an integer >= 1 (got 0)',
    },
    {
      name: 'negative base',
      policy: { ...P, baseDelayMs: -1 },
      message: 'backoff baseDelayMs: must be a finite number >= 0 (got -1)',
    },
    {
      name: 'cap below base',
      policy: { ...P, maxDelayMs: 50 },
      message: 'backoff maxDelayMs: must be a finite number >= baseDelayMs (100) (got 50)',
    },
    {
      name: 'jitter above 1',
      policy: { ...P, jitter: 2 },
      message: 'backoff jitter: must be between 0 and 1 (got 2)',
    },
  ])('refuses $name', ({ policy, message }) => {
    expect(() => validateBackoffPolicy(policy)).toThrow(new BackoffPolicyError(message));
  });
});

describe('withRetry', () => {
  /** A pinned clock that the fake sleep advances. */
  function clock() {
    let t = 0;
    const slept: number[] = [];
    return {
      slept,
      deps: {
        now: () => t,
        sleep: async (ms: number) => {
          slept.push(ms);
          t += ms;
        },
        random: () => 0,
      },
    };
  }

  it('repeats retriable failures and returns the first success', async () => {
    const c = clock();
    let calls = 0;
    const result = await withRetry(
      async () => {
        calls++;
        if (calls < 3) throw new ApiError({ ...CTX, code: 503 });
        return 'ok';
      },
      P,
      c.deps,
    );
    expect(result).toBe('ok');
    expect(calls).toBe(3);
    expect(c.slept).toEqual([100, 200]);
  });

  it('throws a non-retriable error at once', async () => {
    const c = clock();
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw new ForbiddenError(CTX);
      },
      P,
      c.deps,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(calls).toBe(1);
    expect(c.slept).toEqual([]);
  });

  it('stops at the total time budget and says how long it tried', async () => {
    const c = clock();
    let calls = 0;
    const err = await withRetry(
      async () => {
        calls++;
        throw new TransportError(CTX, 'ECONNRESET: socket hang up');
      },
      { ...P, maxAttempts: 100, maxTotalMs: 1000 },
      c.deps,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransportError);
    // 100 + 200 + 400 = 700 ms waited; the next 800 would end past 1000.
    expect(c.slept).toEqual([100, 200, 400]);
    expect(calls).toBe(4);
    expect((err as Error).message).toBe(
      'list virtualservices.networking.istio.io in namespace shop: no response from the API server: ECONNRESET: socket hang up; gave up after 4 attempts in 0.7 s',
    );
  });

  it('reports every retry before waiting', async () => {
    const c = clock();
    const seen: [number, number, number | undefined][] = [];
    let calls = 0;
    await withRetry(
      async () => {
        calls++;
        if (calls === 1)
          throw new ApiError({ ...CTX, code: 429, status: { details: { retryAfterSeconds: 1 } } });
        return calls;
      },
      P,
      { ...c.deps, onRetry: (err, attempt, delay) => seen.push([attempt, delay, err.code]) },
    );
    expect(seen).toEqual([[1, 1000, 429]]);
  });
});
