import { type Command, Option } from 'commander';
import { createLogger } from '../daemon/audit.js';
import { loadKubeConfig } from '../daemon/wiring.js';
import { EventRecorder } from '../mesh/events.js';
import {
  type BrakeOptions,
  type BrakeResult,
  type BrakeStore,
  brakeVirtualService,
  describeRoute,
  KubernetesRouteStore,
  listKey,
  listRoutes,
  type RouteKind,
  releaseVirtualService,
  routeId,
  type VirtualService,
} from '../mesh/index.js';
import { formatProblem, loadPolicyDir } from '../policy/index.js';
import type { MirrorPolicy } from '../policy/types.js';
import { kubeconfigOption, policiesOption } from './options.js';
import type { CommandIo } from './validate.js';

/** Flags of `brake`. */
export interface BrakeFlags {
  policies: string;
  kubeconfig?: string;
  namespace?: string;
  release?: boolean;
  dryRun?: boolean;
}

/** VirtualServices braked at once; bounds the load on the API server, as the cycle does. */
export const BRAKE_CONCURRENCY = 8;

/** Where an Event about a result goes; EventRecorder satisfies it. */
export interface BrakeEvents {
  record(
    subject: VirtualService,
    spec: { type: 'Normal' | 'Warning'; reason: string; message: string; action?: string },
  ): Promise<unknown>;
}

const LABELS: Record<BrakeResult['kind'], string> = {
  braked: 'braked',
  alreadyBraked: 'already braked',
  released: 'released',
  notBraked: 'not braked',
  skipped: 'skipped',
  failed: 'FAILED',
};

/** One line per VirtualService: `shop/checkout: braked: mirror 40% -> 1% (checkout); ...`. */
export function formatBrakeResult(r: BrakeResult): string {
  const label =
    r.dryRun && (r.kind === 'braked' || r.kind === 'released') ? `would be ${r.kind}` : LABELS[r.kind];
  const kind = r.routeKind === 'VirtualService' ? '' : `${r.routeKind} `;
  return `${kind}${r.virtualService}: ${label}: ${r.detail}`;
}

/**
 * Brakes (or releases) every VirtualService the policies manage, a bounded number at a time.
 * @returns one result per VirtualService, in `namespace/name` order.
 */
export async function brakeAll(
  policies: readonly MirrorPolicy[],
  store: BrakeStore & {
    list(namespaces?: readonly string[], kind?: RouteKind): Promise<Map<string, VirtualService>>;
  },
  options: BrakeOptions & { release: boolean },
): Promise<BrakeResult[]> {
  const groups = new Map<string, MirrorPolicy[]>();
  for (const p of policies) {
    const key = describeRoute(p.route);
    groups.set(key, [...(groups.get(key) ?? []), p]);
  }
  // One LIST per kind and namespace for the first read; a namespace that cannot be listed falls back to
  // GETs, whose errors then name each route object.
  const listed = await listRoutes(
    store,
    policies.map((p) => p.route),
  );
  const keys = [...groups.keys()].sort();
  const results: BrakeResult[] = new Array(keys.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < keys.length; i = next++) {
      const key = keys[i] as string;
      const group = groups.get(key) ?? [];
      const first = group[0] as MirrorPolicy;
      const list = listed.get(listKey(first.route));
      const read = list?.ok ? list.m.get(routeId(first.route)) : undefined;
      const run = options.release ? releaseVirtualService : brakeVirtualService;
      results[i] = await run(store, first.route, group, options, read);
    }
  };
  await Promise.all(Array.from({ length: Math.min(BRAKE_CONCURRENCY, keys.length) }, worker));
  return results;
}

function eventFor(
  r: BrakeResult,
): { type: 'Normal' | 'Warning'; reason: string; message: string; action: string } | undefined {
  const who = `policies ${r.policies.join(', ')}`;
  if (r.dryRun) return undefined;
  if (r.kind === 'braked') {
    return {
      type: 'Warning',
      reason: 'Braked',
      message: `${who}: global brake: ${r.detail}`,
      action: 'Brake',
    };
  }
  if (r.kind === 'released') {
    return {
      type: 'Normal',
      reason: 'BrakeReleased',
      message: `${who}: ${r.detail}`,
      action: 'ReleaseBrake',
    };
  }
  return undefined;
}

/**
 * `brake`: for every VirtualService the policies in `flags.policies` manage (in `flags.namespace` only,
 * when given), set the mirror to minPercent and pause the automation; with `release`, lift the brake's
 * pause where the brake set it. Prints one line per VirtualService and records an Event on each one changed.
 * @returns 0 when every VirtualService is braked (or released), 1 when any could not be, or a policy file
 *   is invalid (its VirtualService is then unknown, so it may not be braked).
 */
export async function runBrake(
  flags: BrakeFlags,
  io: CommandIo,
  deps: { store?: KubernetesRouteStore; events?: BrakeEvents; now?: () => number } = {},
): Promise<number> {
  const command = flags.release === true ? 'brake --release' : 'brake';
  try {
    const loaded = await loadPolicyDir(flags.policies);
    for (const p of loaded.problems) io.stderr.write(`${formatProblem(p)}\n`);
    const policies = loaded.policies.filter(
      (p) => flags.namespace === undefined || p.route.namespace === flags.namespace,
    );
    if (policies.length === 0) {
      const where = flags.namespace === undefined ? '' : ` for namespace ${flags.namespace}`;
      io.stderr.write(`${command}: ${flags.policies}: no valid policy${where}; nothing braked\n`);
      return 1;
    }
    let store = deps.store;
    let events = deps.events;
    if (store === undefined) {
      const kc = loadKubeConfig(flags.kubeconfig);
      store = new KubernetesRouteStore(kc);
      // Events are best effort and logged to stderr, so stdout keeps one line per VirtualService.
      if (events === undefined && flags.dryRun !== true) {
        const logger = createLogger({ level: 'warn', destination: process.stderr });
        events = new EventRecorder(kc, { logger });
      }
    }
    const results = await brakeAll(policies, store, {
      release: flags.release === true,
      dryRun: flags.dryRun === true,
      now: deps.now ?? Date.now,
    });
    for (const r of results) io.stdout.write(`${formatBrakeResult(r)}\n`);
    if (events !== undefined) {
      const recorder = events;
      await Promise.all(
        results.map((r) => {
          const spec = eventFor(r);
          return spec === undefined || r.object === undefined ? undefined : recorder.record(r.object, spec);
        }),
      );
    }
    const failed = results.filter((r) => r.kind === 'failed').length;
    const counts = new Map<string, number>();
    for (const r of results) counts.set(LABELS[r.kind], (counts.get(LABELS[r.kind]) ?? 0) + 1);
    const summary = [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
    io.stderr.write(
      `${command}${flags.dryRun === true ? ' (dry run, nothing written)' : ''}: ${results.length} VirtualServices: ${summary}${loaded.problems.length > 0 ? `; ${loaded.problems.length} invalid policy files (see above)` : ''}\n`,
    );
    return failed > 0 || loaded.problems.length > 0 ? 1 : 0;
  } catch (err) {
    io.stderr.write(`${command}: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** Registers the `brake` command. */
export function register(program: Command): void {
  const cmd = program
    .command('brake')
    .description(
      'Emergency brake: set every managed mirror to its minPercent and pause the automation, until --release.',
    );
  kubeconfigOption(
    policiesOption(cmd)
      .addOption(
        new Option('--namespace <ns>', 'only the VirtualServices in this namespace').env(
          'MIRROR_AUTOSCALER_NAMESPACE',
        ),
      )
      .option('--release', 'lift the pause the brake set (never a pause made by hand)')
      .option('--dry-run', 'print what would be done; write nothing'),
  )
    .addHelpText(
      'after',
      `
For each VirtualService named by a policy, one JSON Patch guarded by its resourceVersion sets every
managed mirror to its policy's minPercent, the annotation mirror-autoscaler.io/paused: "true" (which
every replica of the daemon obeys at once) and mirror-autoscaler.io/brake, which records when and what
the pause annotation held before. A concurrent edit is re-read and the patch tried again.

--release removes the brake annotation and puts the pause annotation back as it was before the brake:
a VirtualService paused by hand before the brake stays paused. The daemon then resumes from minPercent
and raises again at its usual pace. To keep one VirtualService paused after a release, remove its
mirror-autoscaler.io/brake annotation by hand before releasing.

Running it again is harmless: braked VirtualServices at minPercent are left as they are.
VirtualServices owned by a Flagger Canary are skipped (Flagger rewrites their routes).

Output: one line per VirtualService on stdout; a summary on stderr. An Event (Braked, BrakeReleased)
on each VirtualService changed. Exit status 1 when any VirtualService could not be braked or released,
or a policy file is invalid.

Examples:
  mirror-autoscaler brake --policies deploy/policies --dry-run
  mirror-autoscaler brake --policies deploy/policies
  mirror-autoscaler brake --release --policies deploy/policies`,
    )
    .action(async (flags: BrakeFlags) => {
      process.exitCode = await runBrake(flags, process);
    });
}
