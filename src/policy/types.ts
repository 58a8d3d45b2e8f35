import type { ControlPolicy, SignalName } from '../core/types.js';

export const API_VERSION = 'mirror-autoscaler.io/v1alpha1';
export const KIND = 'MirrorPolicy';

/** A validated policy, with defaults filled in and durations in seconds. */
export interface MirrorPolicy extends ControlPolicy {
  readonly name: string;
  /** The file it was loaded from (for messages). */
  readonly file: string;
  readonly virtualService: { readonly name: string; readonly namespace: string; readonly route?: string };
  /** namespace defaults to virtualService.namespace. */
  readonly target: {
    readonly host: string;
    readonly subset?: string;
    readonly workload: string;
    readonly namespace: string;
  };
  /** PromQL overrides with {{namespace}} {{workload}} {{window}} placeholders. */
  readonly queries: Partial<Record<SignalName, string>>;
}

/** One validation problem, printed as `FILE:LINE:COL: PATH: MESSAGE`. */
export interface Problem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Dotted path of the field, e.g. spec.bounds.maxPercent; empty for file-level problems. */
  readonly path: string;
  readonly message: string;
}
