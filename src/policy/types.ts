import type { ControlPolicy, SignalName } from '../core/types.js';
import type { BackendTarget } from '../mesh/gateway.js';
import type { RouteKind, RouteRef } from '../mesh/route.js';

/** The queries a policy may override: one per signal, and the production rate of the mirrored route. */
export const QUERY_NAMES = ['cpuUtilization', 'errorRate', 'latencyP99Ms', 'productionRate'] as const;
export type QueryName = SignalName | 'productionRate';

/**
 * Where a policy's request signals come from (spec.signals.preset): Istio sidecars (`reporter="destination"`),
 * Istio ambient waypoints (`reporter="waypoint"`), or OpenTelemetry HTTP server metrics. CPU is read from
 * cAdvisor and kube-state-metrics whatever the preset.
 */
export const SIGNAL_PRESETS = ['istio', 'istio-ambient', 'otel'] as const;
export type SignalPreset = (typeof SIGNAL_PRESETS)[number];
/** The preset of a policy that names none (and of policies built in code). */
export const DEFAULT_SIGNAL_PRESET: SignalPreset = 'istio';

export const API_VERSION = 'mirror-autoscaler.io/v1alpha1';
export const KIND = 'MirrorPolicy';

/** The spec field that names a route of each kind. */
export const ROUTE_FIELDS: Readonly<Record<RouteKind, string>> = {
  VirtualService: 'virtualService',
  HTTPRoute: 'httpRoute',
  GRPCRoute: 'grpcRoute',
};

/** A validated policy, with defaults filled in and durations in seconds. */
export interface MirrorPolicy extends ControlPolicy {
  readonly name: string;
  /** The file it was loaded from (for messages). */
  readonly file: string;
  /**
   * The managed route: spec.virtualService (rule = its `route`), spec.httpRoute or spec.grpcRoute (rule =
   * the rule's name or index).
   */
  readonly route: RouteRef;
  /**
   * The mirror target: `host` (and `subset`) for a VirtualService, `backend` (spec.target.backendRef) for a
   * Gateway API route. namespace (of the workload) defaults to the backend's, else the route's namespace.
   */
  readonly target: {
    readonly host?: string;
    readonly subset?: string;
    readonly backend?: BackendTarget;
    readonly workload: string;
    readonly namespace: string;
  };
  /**
   * PromQL overrides with {{namespace}} {{workload}} {{window}} placeholders; productionRate may also use
   * {{service}} and {{serviceNamespace}} (the primary service) and its {{window}} is the production window.
   */
  readonly queries: Partial<Record<QueryName, string>>;
  /**
   * The primary service whose traffic is mirrored, as spec.production names it (namespace defaulted to the
   * route's). Absent: the managed route's primary destination (VirtualService) or backend (Gateway API).
   */
  readonly production?: { readonly service: string; readonly namespace: string };
  /**
   * Observation timing as the policy writes it (spec.observation), in seconds; what is absent is learned
   * (scrape interval) or defaulted. Absent altogether in policies built by code.
   */
  readonly observation?: { readonly scrapeIntervalSeconds?: number; readonly propagationSeconds?: number };
  /** spec.signals.preset as written; absent means {@link DEFAULT_SIGNAL_PRESET} (istio). */
  readonly signalPreset?: SignalPreset;
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
