import { type Command, Option } from 'commander';
import { settings } from '../core/settings.js';
import { parseControllerState } from '../core/state.js';
import type { ControllerState, SignalName } from '../core/types.js';
import { loadKubeConfig } from '../daemon/wiring.js';
import {
  currentPercent,
  describeRoute,
  KubernetesRouteStore,
  listKey,
  listRoutes,
  locateTarget,
  locationLabel,
  MeshError,
  PAUSED_ANNOTATION,
  type PauseSource,
  pauseState,
  type RouteKind,
  type RouteObject,
  readStateAnnotation,
  routeId,
  STATE_ANNOTATION_PREFIX,
} from '../mesh/index.js';
import { formatProblem, loadPolicyDir } from '../policy/index.js';
import type { MirrorPolicy } from '../policy/types.js';
import { kubeconfigOption, policiesOption } from './options.js';
import type { CommandIo } from './validate.js';

/** Flags of `status`. */
export interface StatusFlags {
  policies: string;
  kubeconfig?: string;
  namespace?: string;
  output: 'table' | 'json';
}

/** What `status` reads route objects with; KubernetesRouteStore satisfies it. */
export interface StatusStore {
  list(namespaces?: readonly string[], kind?: RouteKind): Promise<Map<string, RouteObject>>;
}

/**
 * The conditions a policy can be in, as `status --output json` names them; the table spells them out.
 * `Ok` only when none of the others holds.
 */
export const STATUS_CONDITIONS = [
  'Error',
  'Paused',
  'Overridden',
  'Blind',
  'CoolingDown',
  'BreachRemembered',
  'NoState',
  'StateIgnored',
  'Ok',
] as const;
export type StatusCondition = (typeof STATUS_CONDITIONS)[number];

/** Who paused a route: a Flagger Canary, an Argo Rollouts canary, the brake, the pause annotation (or a bad value in it). */
export const PAUSED_BY = ['Flagger', 'ArgoRollouts', 'Brake', 'Annotation', 'InvalidAnnotation'] as const;
export type PausedBy = (typeof PAUSED_BY)[number];

const PAUSED_WORDS: Record<PausedBy, string> = {
  Flagger: 'Flagger Canary',
  ArgoRollouts: 'Argo Rollouts canary',
  Brake: 'brake',
  Annotation: 'annotation',
  InvalidAnnotation: 'annotation not true/false',
};

const PAUSED_BY_SOURCE: Record<PauseSource, PausedBy> = {
  flagger: 'Flagger',
  'argo-rollouts': 'ArgoRollouts',
  brake: 'Brake',
  annotation: 'Annotation',
};

/** Who paused a route, from pauseState's source; a pause annotation other than "true" is told apart. */
function pausedBy(obj: RouteObject, source: PauseSource | undefined): PausedBy {
  if (source === 'annotation') {
    const value = (obj.metadata.annotations?.[PAUSED_ANNOTATION] ?? '').trim().toLowerCase();
    if (value !== 'true') return 'InvalidAnnotation';
  }
  return PAUSED_BY_SOURCE[source ?? 'annotation'];
}

/** One policy as the cluster shows it: the route object and the state the daemon left on it. */
export interface PolicyStatus {
  policy: string;
  routeKind: RouteKind;
  /** `namespace/name` of the route object. */
  route: string;
  /** Where the managed mirror sits in it (location labels); empty when it could not be found. */
  routes: string[];
  /** The mirror target as the policy names it: `host` (VirtualService) or `Service name[:port]` (Gateway API). */
  target: string;
  /** The percentage on the route now (the largest of its locations); null when it could not be read. */
  currentPercent: number | null;
  /** The percentage the daemon left in effect with its last write (state.percent); null without state. */
  controllerPercent: number | null;
  /**
   * The level of the remembered breach (state.breach.percent) while the daemon still remembers it: the mirror
   * percentage the reading that breached a guardrail reflected. The daemon treats the target as safe only
   * below it. Null when no breach is remembered.
   */
  safeBelowPercent: number | null;
  /** When (epoch ms) the daemon last changed the percentage, from its state's timeline; null without state. */
  lastChangeAt: number | null;
  conditions: StatusCondition[];
  /** Why writes are paused (pauseState's sentence), when paused. */
  paused: string | null;
  /** Who paused them, in a word: the first that applies, in the order pauseState checks. */
  pausedBy: PausedBy | null;
  /** Start (epoch ms) of the blindness the daemon recorded with its last write. */
  blindSince: number | null;
  /** No increase before this instant (epoch ms), while it is still ahead. */
  cooldownUntil: number | null;
  /** The remembered breach: when (epoch ms), the level and the guardrail. */
  breach: { at: number; percent: number; signal: SignalName | null } | null;
  /** Why the state annotation was ignored (the daemon then starts afresh). */
  stateProblem: string | null;
  error: string | null;
}

/**
 * An age as kubectl prints AGE (k8s.io/apimachinery duration.HumanDuration): `45s`, `4m5s`, `12m`, `3h5m`,
 * `3h`, `2d3h`, `12d`, `1y30d`. More than a second in the future (clocks apart) is `<invalid>`.
 */
export function formatAge(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${days}d` : `${days}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) {
    const d = days % 365;
    return d === 0 ? `${years}y` : `${years}y${d}d`;
  }
  return `${years}y`;
}

/** The mirror target as the policy names it. */
export function targetLabel(p: MirrorPolicy): string {
  const { host, subset, backend } = p.target;
  if (host !== undefined) return subset === undefined ? host : `${host} (subset ${subset})`;
  if (backend === undefined) return '-';
  const ns = backend.namespace === undefined ? '' : `${backend.namespace}/`;
  const port = backend.port === undefined ? '' : `:${backend.port}`;
  return `Service ${ns}${backend.name}${port}`;
}

function blank(p: MirrorPolicy): PolicyStatus {
  return {
    policy: p.name,
    routeKind: p.route.kind,
    route: routeId(p.route),
    routes: [],
    target: targetLabel(p),
    currentPercent: null,
    controllerPercent: null,
    safeBelowPercent: null,
    lastChangeAt: null,
    conditions: [],
    paused: null,
    pausedBy: null,
    blindSince: null,
    cooldownUntil: null,
    breach: null,
    stateProblem: null,
    error: null,
  };
}

/** The policy's state on the route object, or why it is ignored; undefined when there is none. */
function stateOf(obj: RouteObject, policy: string): ControllerState | string | undefined {
  const stored = readStateAnnotation(obj, policy);
  if (stored instanceof MeshError) return stored.message;
  if (!stored.found) return undefined;
  return (
    parseControllerState(stored.value) ??
    `annotation ${STATE_ANNOTATION_PREFIX}${policy}: not a valid state of this version; the daemon ignores it and starts afresh`
  );
}

/**
 * What `status` shows for one policy, from its route object as read (undefined: not found) and the time
 * now. Pure: the same object and time always give the same row.
 */
export function policyStatus(p: MirrorPolicy, obj: RouteObject | undefined, now: number): PolicyStatus {
  const row = blank(p);
  if (obj === undefined)
    return { ...row, conditions: ['Error'], error: `${describeRoute(p.route)} not found` };
  const located = locateTarget(obj, p.route, p.target);
  if (!Array.isArray(located)) return { ...row, conditions: ['Error'], error: located.message };
  const current = currentPercent(located);
  const out: PolicyStatus = { ...row, routes: located.map(locationLabel), currentPercent: current };
  const pause = pauseState(obj);
  if (pause.paused) {
    out.conditions.push('Paused');
    out.paused = pause.problem ?? `annotation ${PAUSED_ANNOTATION} is "true": automation paused`;
    out.pausedBy = pausedBy(obj, pause.source);
  }
  const state = stateOf(obj, p.name);
  if (state === undefined) {
    out.conditions.push('NoState');
    return out;
  }
  if (typeof state === 'string') {
    out.conditions.push('StateIgnored');
    out.stateProblem = state;
    return out;
  }
  out.controllerPercent = state.percent;
  // The state is written with each change only (holds stay in the daemon's memory), so the newest entry of
  // its timeline is the last change the daemon made; its age counts back from the write.
  const newest = state.track[0];
  out.lastChangeAt = state.at - (newest?.[0] ?? 0) * 1000;
  if (Math.abs(state.percent - current) > 1e-9) out.conditions.push('Overridden');
  if (state.blindSince !== undefined) {
    out.conditions.push('Blind');
    out.blindSince = state.blindSince;
  }
  if (state.cooldownUntil !== undefined && state.cooldownUntil > now) {
    out.conditions.push('CoolingDown');
    out.cooldownUntil = state.cooldownUntil;
  }
  // The daemon forgets a breach breachMemorySeconds after it (src/core/decide.ts); so does status.
  const b = state.breach;
  if (b !== undefined && now - Math.min(b.at, now) < settings(p).memoryS * 1000) {
    out.conditions.push('BreachRemembered');
    out.breach = { at: b.at, percent: b.percent, signal: b.signal ?? null };
    out.safeBelowPercent = b.percent;
  }
  if (out.conditions.length === 0) out.conditions.push('Ok');
  return out;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Reads every policy's route object (one LIST per kind and namespace) and builds its status row, in policy
 * name order. A LIST that fails is an error on the policies in its scope only; never throws.
 */
export async function statusAll(
  policies: readonly MirrorPolicy[],
  store: StatusStore,
  now: number,
): Promise<PolicyStatus[]> {
  const listed = await listRoutes(
    store,
    policies.map((p) => p.route),
  );
  return [...policies]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((p) => {
      const list = listed.get(listKey(p.route));
      if (list === undefined || !list.ok) {
        const why = list === undefined || list.ok ? 'namespace was not listed' : list.err;
        return {
          ...blank(p),
          conditions: ['Error'],
          error: `listing ${p.route.kind}s in ${p.route.namespace} failed: ${why}`,
        };
      }
      return policyStatus(p, list.m.get(routeId(p.route)), now);
    });
}

function pct(v: number | null): string {
  return v === null ? '-' : `${Number(v.toFixed(4))}%`;
}

/** The STATE cell: every condition that holds, in words, `; `-separated. */
export function stateCell(s: PolicyStatus, now: number): string {
  const parts: string[] = [];
  for (const c of s.conditions) {
    switch (c) {
      case 'Error':
        parts.push('error');
        break;
      case 'Paused':
        parts.push(`paused (${s.pausedBy === null ? 'annotation' : PAUSED_WORDS[s.pausedBy]})`);
        break;
      case 'Overridden':
        parts.push(`overridden (controller left ${pct(s.controllerPercent)})`);
        break;
      case 'Blind':
        parts.push(`blind at last write (since ${formatAge(now - (s.blindSince ?? now))} ago)`);
        break;
      case 'CoolingDown':
        parts.push(`cooling down (${formatAge((s.cooldownUntil ?? now) - now)} left)`);
        break;
      case 'BreachRemembered': {
        const b = s.breach;
        const what = b?.signal === null || b === null ? '' : `${b.signal}, `;
        parts.push(`breach remembered (${what}${formatAge(now - (b?.at ?? now))} ago)`);
        break;
      }
      case 'NoState':
        parts.push('no state yet');
        break;
      case 'StateIgnored':
        parts.push('state ignored');
        break;
      case 'Ok':
        parts.push('ok');
        break;
    }
  }
  return parts.join('; ');
}

/** The `status` table: one row per policy, aligned columns, then errors and long reasons underneath. */
export function formatStatusTable(rows: readonly PolicyStatus[], now: number): string {
  const header = [
    'POLICY',
    'KIND',
    'OBJECT',
    'ROUTE',
    'TARGET',
    'CURRENT %',
    'SAFE %',
    'LAST CHANGE',
    'STATE',
  ];
  const cells = rows.map((s) => [
    s.policy,
    s.routeKind,
    s.route,
    s.routes.length === 0 ? '-' : s.routes.join(','),
    s.target,
    pct(s.currentPercent),
    s.safeBelowPercent === null ? '-' : `<${pct(s.safeBelowPercent)}`,
    s.lastChangeAt === null ? '-' : formatAge(now - s.lastChangeAt),
    stateCell(s, now),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (row: readonly string[]): string =>
    row
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...cells.map(line)];
  const notes: string[] = [];
  for (const s of rows) {
    if (s.error !== null) notes.push(`${s.policy}: error: ${s.error}`);
    if (s.paused !== null) notes.push(`${s.policy}: paused: ${s.paused}`);
    if (s.stateProblem !== null) notes.push(`${s.policy}: state ignored: ${s.stateProblem}`);
  }
  if (notes.length > 0) out.push('', ...notes);
  return `${out.join('\n')}\n`;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** One JSON object per policy, as `status --output json` prints them (one per line); every key always present. */
export function statusJson(s: PolicyStatus, now: number): Record<string, unknown> {
  return {
    policy: s.policy,
    routeKind: s.routeKind,
    route: s.route,
    routes: s.routes,
    target: s.target,
    currentPercent: s.currentPercent,
    controllerPercent: s.controllerPercent,
    safeBelowPercent: s.safeBelowPercent,
    lastChange: iso(s.lastChangeAt),
    lastChangeAgeSeconds: s.lastChangeAt === null ? null : Math.round((now - s.lastChangeAt) / 1000),
    conditions: s.conditions,
    paused: s.paused,
    pausedBy: s.pausedBy,
    blindSince: iso(s.blindSince),
    cooldownUntil: iso(s.cooldownUntil),
    breach:
      s.breach === null
        ? null
        : { at: new Date(s.breach.at).toISOString(), percent: s.breach.percent, signal: s.breach.signal },
    stateProblem: s.stateProblem,
    error: s.error,
  };
}

/**
 * `status`: for every policy in `flags.policies` (whose route is in `flags.namespace`, when given), read its
 * route object and the state the daemon keeps on it, and print one row (or JSON line) per policy. Reads
 * the Kubernetes API only; writes nothing.
 * @returns 0 when every policy was read, 1 when a policy file is invalid or any policy's route could not be
 *   read (missing, unreadable, no mirror to the target); the others are still printed.
 */
export async function runStatus(
  flags: StatusFlags,
  io: CommandIo,
  deps: { store?: StatusStore; now?: () => number } = {},
): Promise<number> {
  try {
    const loaded = await loadPolicyDir(flags.policies);
    for (const p of loaded.problems) io.stderr.write(`${formatProblem(p)}\n`);
    const policies = loaded.policies.filter(
      (p) => flags.namespace === undefined || p.route.namespace === flags.namespace,
    );
    if (policies.length === 0) {
      const where = flags.namespace === undefined ? '' : ` with a route in namespace ${flags.namespace}`;
      io.stderr.write(`status: ${flags.policies}: no valid policy${where}\n`);
      return 1;
    }
    const store = deps.store ?? new KubernetesRouteStore(loadKubeConfig(flags.kubeconfig));
    const now = (deps.now ?? Date.now)();
    const rows = await statusAll(policies, store, now);
    if (flags.output === 'json') {
      for (const s of rows) io.stdout.write(`${JSON.stringify(statusJson(s, now))}\n`);
    } else {
      io.stdout.write(formatStatusTable(rows, now));
    }
    return loaded.problems.length > 0 || rows.some((s) => s.error !== null) ? 1 : 0;
  } catch (err) {
    io.stderr.write(`status: ${errorMessage(err)}\n`);
    return 1;
  }
}

/** Registers the `status` command. */
export function register(program: Command): void {
  const cmd = program
    .command('status')
    .description(
      'Show what the controller is doing: per policy, the mirror percentage on the route and the state the daemon keeps on it.',
    );
  kubeconfigOption(
    policiesOption(cmd).addOption(
      new Option('--namespace <ns>', 'only the policies whose route is in this namespace').env(
        'MIRROR_AUTOSCALER_NAMESPACE',
      ),
    ),
  )
    .addOption(
      new Option('-o, --output <format>', 'table for people, json for one object per policy per line')
        .choices(['table', 'json'])
        .default('table'),
    )
    .addHelpText(
      'after',
      `
Reads each policy's route object (one LIST per kind and namespace) and the annotation
state.mirror-autoscaler.io/<policy> the daemon writes with every change; needs no Prometheus and
writes nothing.

Columns:
  CURRENT %    the mirror percentage on the route now
  SAFE %       <N%: the daemon remembers a breach at N % (the percentage the breaching reading
               reflected) and treats the target as safe only below it; raises near it creep. "-" when
               no breach is remembered (none within spec.control.breachMemory, default 30m).
  LAST CHANGE  how long ago the daemon last changed the percentage (its state's timeline)
  STATE        paused (why), overridden (the route's percentage is not the one the daemon left:
               someone else changed it), blind at last write (signals were missing when the daemon
               last wrote), cooling down (no increase yet), breach remembered, no state yet, or ok

Exit status: 0 when every policy's route was read, 1 when a policy file is invalid or a route is
missing, unreadable, or has no mirror to the target (the others are still printed).

Examples:
  mirror-autoscaler status
  mirror-autoscaler status --policies deploy/policies --namespace shop
  mirror-autoscaler status -o json | jq 'select(.conditions != ["Ok"])'`,
    )
    .action(async (flags: StatusFlags) => {
      process.exitCode = await runStatus(flags, process);
    });
}
