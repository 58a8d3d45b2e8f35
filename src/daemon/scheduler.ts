import cron, { type ScheduledTask } from 'node-cron';
import type { MirrorPolicy } from '../policy/types.js';

/**
 * When each policy is next due. Due times are aligned to multiples of the policy's interval so that policies
 * sharing an interval fall due in the same tick and are evaluated as one batch (one list, batched queries).
 */
export class DueTable {
  private readonly next = new Map<string, number>();
  private readonly inFlight = new Set<string>();

  /** Policies due at `now` that are not already being evaluated; marks them in flight. */
  take(policies: readonly MirrorPolicy[], now: number): MirrorPolicy[] {
    const due = policies.filter((p) => !this.inFlight.has(p.name) && (this.next.get(p.name) ?? 0) <= now);
    for (const p of due) this.inFlight.add(p.name);
    return due;
  }

  /** Marks policies done and schedules each at the next boundary of its interval after `now`. */
  done(policies: readonly MirrorPolicy[], now: number): void {
    for (const p of policies) {
      this.inFlight.delete(p.name);
      const ms = p.intervalSeconds * 1000;
      this.next.set(p.name, (Math.floor(now / ms) + 1) * ms);
    }
  }

  /** Clears the in-flight mark of policies, whether or not they are rescheduled. */
  release(policies: readonly MirrorPolicy[]): void {
    for (const p of policies) this.inFlight.delete(p.name);
  }

  /** Forgets policies that are no longer loaded. */
  retain(names: ReadonlySet<string>): void {
    for (const k of this.next.keys()) if (!names.has(k)) this.next.delete(k);
  }

  get busy(): boolean {
    return this.inFlight.size > 0;
  }
}

/**
 * The scheduling shell: node-cron ticks every second, and each tick starts one batch of the policies that
 * are due. A policy is never evaluated twice at once; a slow batch does not delay policies outside it.
 */
export class Scheduler {
  private task: ScheduledTask | undefined;
  private readonly running = new Set<Promise<void>>();
  readonly due = new DueTable();

  constructor(
    private readonly policies: () => readonly MirrorPolicy[],
    private readonly runBatch: (batch: MirrorPolicy[]) => Promise<void>,
    private readonly now: () => number,
  ) {}

  start(): void {
    this.task = cron.schedule('* * * * * *', () => this.tick(), { name: 'mirror-autoscaler-tick' });
    this.tick();
  }

  /** Starts a batch of the due policies, if any; returns its promise (for tests and shutdown). */
  tick(): Promise<void> {
    const batch = this.due.take(this.policies(), this.now());
    if (batch.length === 0) return Promise.resolve();
    // A batch that rejects must not become an unhandled rejection inside the cron timer; the batch runner
    // logs its own failures, and the policies are simply due again at their next boundary.
    const p = this.runBatch(batch)
      .catch(() => undefined)
      .finally(() => {
        const loaded = new Set(this.policies().map((q) => q.name));
        this.due.done(
          batch.filter((q) => loaded.has(q.name)),
          this.now(),
        );
        this.due.release(batch);
        this.running.delete(p);
      });
    this.running.add(p);
    return p;
  }

  /** Stops ticking and waits for the batches in flight to finish. */
  async stop(): Promise<void> {
    await this.task?.stop();
    await this.task?.destroy();
    await Promise.allSettled([...this.running]);
  }
}
