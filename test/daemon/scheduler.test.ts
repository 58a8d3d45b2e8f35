/**
 * DueTable and Scheduler with an injected clock: ticks are called directly, batches finish when the test
 * says so, and nothing sleeps.
 */
import { describe, expect, it } from 'vitest';
import { DueTable, Scheduler } from '../../src/daemon/scheduler.js';
import { formatProblem, parsePolicy } from '../../src/policy/index.js';
import type { MirrorPolicy } from '../../src/policy/types.js';

/** 2026-03-01T12:00:00Z, a multiple of every interval used here. */
const T = Date.UTC(2026, 2, 1, 12, 0, 0);
const S = 1000;

function policy(name: string, interval = '30s'): MirrorPolicy {
  const yaml = `apiVersion: mirror-autoscaler.io/v1alpha1
kind: MirrorPolicy
metadata:
  name: ${name}
spec:
  virtualService: {name: ${name}, namespace: shop}
  target: {host: ${name}-shadow, workload: ${name}-shadow}
  bounds: {minPercent: 0, maxPercent: 50}
  guardrails: {cpuUtilization: 0.8}
  interval: ${interval}
  window: 5m
`;
  const { policy: parsed, problems } = parsePolicy(yaml, `${name}.yaml`);
  if (parsed === undefined) throw new Error(problems.map(formatProblem).join('\n'));
  return parsed;
}

const names = (ps: readonly MirrorPolicy[]) => ps.map((p) => p.name);

describe('DueTable', () => {
  it('every policy is due at start, whatever the time', () => {
    const due = new DueTable();
    const ps = [policy('a'), policy('b', '1m')];
    expect(names(due.take(ps, T + 12_345))).toEqual(['a', 'b']);
  });

  it('a policy in flight is not handed out again until it is done', () => {
    const due = new DueTable();
    const a = policy('a');
    const b = policy('b');
    expect(names(due.take([a], T))).toEqual(['a']);
    expect(due.busy).toBe(true);
    // Long past its interval, still in flight: not again. A policy that is not in flight is.
    expect(names(due.take([a, b], T + 10 * 60 * S))).toEqual(['b']);
    due.done([a, b], T + 10 * 60 * S);
    expect(due.busy).toBe(false);
  });

  const alignRows = [
    { name: '30s interval, done 7 s into it', interval: '30s', doneAt: T + 7 * S, next: T + 30 * S },
    {
      name: '30s interval, done exactly on a boundary',
      interval: '30s',
      doneAt: T + 30 * S,
      next: T + 60 * S,
    },
    { name: '30s interval, done late (41 s)', interval: '30s', doneAt: T + 41 * S, next: T + 60 * S },
    { name: '1m interval, done 59.999 s into it', interval: '1m', doneAt: T + 59_999, next: T + 60 * S },
    { name: '5m interval, done 2 min in', interval: '5m', doneAt: T + 120 * S, next: T + 300 * S },
    {
      name: '7s interval (not a divisor of a minute)',
      interval: '7s',
      doneAt: T + 1 * S,
      next: (Math.floor((T + S) / 7000) + 1) * 7000,
    },
  ] as const;

  for (const row of alignRows) {
    it(`next due at the next interval boundary: ${row.name}`, () => {
      const due = new DueTable();
      const p = policy('a', row.interval);
      due.take([p], row.doneAt);
      due.done([p], row.doneAt);
      expect(due.take([p], row.next - 1)).toEqual([]);
      expect(names(due.take([p], row.next))).toEqual(['a']);
    });
  }

  it('policies sharing an interval fall due together, however their last runs were spread', () => {
    const due = new DueTable();
    const a = policy('a');
    const b = policy('b');
    const c = policy('c', '1m');
    due.take([a, b, c], T);
    due.done([a], T + 3 * S);
    due.done([b], T + 17 * S);
    due.done([c], T + 17 * S);
    expect(due.take([a, b, c], T + 29_999)).toEqual([]);
    expect(names(due.take([a, b, c], T + 30 * S))).toEqual(['a', 'b']);
    due.done([a, b], T + 31 * S);
    expect(names(due.take([a, b, c], T + 60 * S))).toEqual(['a', 'b', 'c']);
  });

  it('retain forgets removed policies and keeps the schedule of the others', () => {
    const due = new DueTable();
    const a = policy('a');
    const b = policy('b');
    due.take([a, b], T);
    due.done([a, b], T + S);
    due.retain(new Set(['b']));
    // `a` was forgotten: loaded again, it is new and due at once; `b` still waits for its boundary.
    expect(names(due.take([a, b], T + 2 * S))).toEqual(['a']);
    expect(names(due.take([b], T + 30 * S))).toEqual(['b']);
  });
});

/** A promise the test settles. */
function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve = () => {};
  let reject: (err: Error) => void = () => {};
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A scheduler over a mutable policy list and clock, whose batches finish when the test settles them. */
function harness(initial: MirrorPolicy[]) {
  const state = { now: T, policies: initial };
  const batches: { names: string[]; done: ReturnType<typeof deferred> }[] = [];
  const scheduler = new Scheduler(
    () => state.policies,
    (batch) => {
      const done = deferred();
      batches.push({ names: names(batch), done });
      return done.promise;
    },
    () => state.now,
  );
  return { state, batches, scheduler };
}

/** Lets queued promise callbacks run (one macrotask turn), without waiting on time. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('Scheduler.tick', () => {
  it('starts one batch of every due policy, and none while they are in flight', async () => {
    const { state, batches, scheduler } = harness([policy('a'), policy('b', '1m')]);
    const first = scheduler.tick();
    expect(batches.map((b) => b.names)).toEqual([['a', 'b']]);

    state.now = T + 5 * 60 * S;
    await scheduler.tick();
    expect(batches).toHaveLength(1);

    state.now = T + 12 * S;
    batches[0]?.done.resolve();
    await first;
    // Done at 12 s: `a` (30 s) is due at 30 s, `b` (1 min) at 60 s.
    state.now = T + 29 * S;
    await scheduler.tick();
    expect(batches).toHaveLength(1);
    state.now = T + 30 * S;
    const second = scheduler.tick();
    expect(batches.map((b) => b.names)).toEqual([['a', 'b'], ['a']]);
    batches[1]?.done.resolve();
    await second;
    state.now = T + 60 * S;
    scheduler.tick();
    expect(batches[2]?.names).toEqual(['a', 'b']);
    batches[2]?.done.resolve();
    await scheduler.stop();
  });

  it('a slow batch does not delay a policy outside it', async () => {
    const { state, batches, scheduler } = harness([policy('slow')]);
    scheduler.tick();
    state.policies = [policy('slow'), policy('added')];
    state.now = T + 2 * S;
    scheduler.tick();
    expect(batches.map((b) => b.names)).toEqual([['slow'], ['added']]);
    for (const b of batches) b.done.resolve();
    await scheduler.stop();
  });

  it('a batch that fails resolves, releases its policies, which run again at their next boundary', async () => {
    const { state, batches, scheduler } = harness([policy('a')]);
    const failing = scheduler.tick();
    state.now = T + 4 * S;
    batches[0]?.done.reject(new Error('cycle blew up'));
    await expect(failing).resolves.toBeUndefined();

    state.now = T + 29 * S;
    await scheduler.tick();
    expect(batches).toHaveLength(1);
    state.now = T + 30 * S;
    scheduler.tick();
    expect(batches).toHaveLength(2);
    batches[1]?.done.resolve();
    await scheduler.stop();
  });

  it('stop waits for the batches in flight', async () => {
    const { batches, scheduler } = harness([policy('a')]);
    scheduler.tick();
    let stopped = false;
    const stopping = scheduler.stop().then(() => {
      stopped = true;
    });
    await settle();
    expect(stopped).toBe(false);
    batches[0]?.done.resolve();
    await stopping;
    expect(stopped).toBe(true);
  });

  it('start runs the first tick at once; stop ends the schedule', async () => {
    const { batches, scheduler } = harness([policy('a'), policy('b')]);
    scheduler.start();
    expect(batches.map((b) => b.names)).toEqual([['a', 'b']]);
    batches[0]?.done.resolve();
    await scheduler.stop();
    // The clock is pinned before the next boundary: whatever cron ticks happened, nothing else was due.
    expect(batches).toHaveLength(1);
  });
});
