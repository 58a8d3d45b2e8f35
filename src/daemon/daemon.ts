import type { ControllerState } from '../core/types.js';
import type { MirrorPolicy } from '../policy/types.js';
import { type CycleDeps, type PolicyOutcome, runCycle } from './cycle.js';
import type { OverrideMemory } from './override.js';
import { Scheduler } from './scheduler.js';

/** What the daemon is built from: a cycle's dependencies (it keeps the states itself), and a hook. */
export interface DaemonDeps extends Omit<CycleDeps, 'states'> {
  /** Called after every cycle with its outcomes and duration (metrics, readiness, events). */
  onCycle?: (outcomes: readonly PolicyOutcome[], durationMs: number) => void;
}

/**
 * The reconcile loop: evaluates each policy at its interval, batching the policies that fall due together,
 * and keeps the controller state of each policy between cycles.
 */
export class Daemon {
  readonly states = new Map<string, ControllerState>();
  /** Fights over routes per policy: someone else keeps changing back what this controller wrote. */
  readonly overrides = new Map<string, OverrideMemory>();
  private readonly scheduler: Scheduler;

  constructor(
    private policies: readonly MirrorPolicy[],
    private readonly deps: DaemonDeps,
    private readonly options: { dryRun: boolean },
  ) {
    this.scheduler = new Scheduler(
      () => this.policies,
      (batch) => this.runBatch(batch).then(() => undefined),
      deps.now,
    );
  }

  /** One cycle of the given policies (all of them by default); never rejects. */
  async runBatch(batch: readonly MirrorPolicy[] = this.policies): Promise<PolicyOutcome[]> {
    const started = this.deps.now();
    try {
      const outcomes = await runCycle(
        batch,
        { ...this.deps, states: this.states, overrides: this.overrides },
        this.options,
      );
      const durationMs = this.deps.now() - started;
      this.report(outcomes, durationMs);
      this.deps.onCycle?.(outcomes, durationMs);
      return outcomes;
    } catch (err) {
      // runCycle catches per policy; anything else is a bug, logged and survived: the next tick tries again.
      this.deps.logger.error({ err }, 'cycle failed');
      return [];
    }
  }

  private report(outcomes: readonly PolicyOutcome[], durationMs: number): void {
    const log = this.deps.logger;
    for (const o of outcomes) {
      const fields = {
        policy: o.policy,
        routeKind: o.routeKind,
        route: o.routeId,
        currentPercent: o.currentPercent,
        proposedPercent: o.proposedPercent,
        action: o.action,
        reason: o.reason,
        signals: o.signals,
        ...(Object.keys(o.absent).length > 0 && { absent: o.absent }),
        mode: o.mode ?? null,
        productionRps: o.productionRps ?? null,
        ...(o.scrapeInterval !== undefined && {
          scrapeIntervalSeconds: o.scrapeInterval.seconds,
          scrapeIntervalSource: o.scrapeInterval.source,
        }),
      };
      if (o.error !== undefined) log.warn({ ...fields, error: o.error }, `${o.policy}: ${o.error}`);
      else if (this.options.dryRun) log.info({ ...fields, dryRun: true }, `${o.policy}: ${o.message}`);
      else log.debug(fields, `${o.policy}: ${o.message}`);
    }
    log.info(
      {
        policies: outcomes.length,
        written: outcomes.filter((o) => o.write === 'written').length,
        errors: outcomes.filter((o) => o.error !== undefined).length,
        durationMs,
        dryRun: this.options.dryRun,
      },
      'cycle complete',
    );
  }

  /** Replaces the managed policies; state of removed policies is dropped, their VirtualServices left as they are. */
  setPolicies(policies: readonly MirrorPolicy[]): void {
    this.policies = policies;
    const names = new Set(policies.map((p) => p.name));
    for (const k of this.states.keys()) if (!names.has(k)) this.states.delete(k);
    for (const k of this.overrides.keys()) if (!names.has(k)) this.overrides.delete(k);
    this.scheduler.due.retain(names);
  }

  start(): void {
    this.scheduler.start();
  }

  /** For tests and the scheduling shell: start the batch of policies due now. */
  tick(): Promise<void> {
    return this.scheduler.tick();
  }

  /** Stops scheduling and waits for the cycle in flight, so no write is left half-done. */
  stop(): Promise<void> {
    return this.scheduler.stop();
  }
}
