import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPolicyDir, POLICY_EXTENSIONS } from '../policy/load.js';
import type { MirrorPolicy, Problem } from '../policy/types.js';

/** What a reload check found. */
export type ReloadResult =
  | { readonly kind: 'unchanged' }
  | {
      readonly kind: 'reloaded';
      readonly policies: readonly MirrorPolicy[];
      readonly added: string[];
      readonly removed: string[];
      readonly changed: string[];
    }
  | { readonly kind: 'rejected'; readonly problems: readonly Problem[] };

/**
 * A cheap fingerprint of a policy directory: name, size, mtime and inode of every policy file, following
 * symlinks. A mounted ConfigMap is updated by swapping its `..data` symlink to a new directory, which
 * changes the inode and mtime seen through each file's link, so polling this catches it where inotify on
 * the directory would not reliably fire.
 */
export async function fingerprint(dir: string): Promise<string> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter(
      (n) => !n.startsWith('.') && POLICY_EXTENSIONS.some((e) => n.toLowerCase().endsWith(e)),
    );
  } catch (err) {
    return `error:${err instanceof Error ? err.message : String(err)}`;
  }
  const parts = await Promise.all(
    names.sort().map(async (n) => {
      try {
        const s = await stat(join(dir, n));
        return `${n}:${s.size}:${s.mtimeMs}:${s.ino}`;
      } catch {
        return `${n}:missing`;
      }
    }),
  );
  return parts.join('|');
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Watches a policy directory by polling its fingerprint. A valid change replaces the policy set; an invalid
 * one is rejected as a whole and the last good set keeps running, because a half-applied directory (one
 * service's new file valid, another's broken) is harder to reason about than "nothing changed".
 */
export class PolicyReloader {
  private last: string | undefined;
  private current: readonly MirrorPolicy[];

  constructor(
    private readonly dir: string,
    initial: readonly MirrorPolicy[],
    /** Loads and checks the directory; the daemon passes one that also applies its namespace restriction. */
    private readonly load: (
      dir: string,
    ) => Promise<{ policies: MirrorPolicy[]; problems: Problem[] }> = loadPolicyDir,
  ) {
    this.current = initial;
  }

  /** Records the directory's present fingerprint as the one the initial policies came from. */
  async prime(): Promise<void> {
    this.last = await fingerprint(this.dir);
  }

  get policies(): readonly MirrorPolicy[] {
    return this.current;
  }

  /** Reloads when the directory changed since the last check. Never throws. */
  async check(): Promise<ReloadResult> {
    const print = await fingerprint(this.dir);
    if (print === this.last) return { kind: 'unchanged' };
    this.last = print;
    const { policies, problems } = await this.load(this.dir);
    if (problems.length > 0 && problems.every((p) => p.message.endsWith('ENOENT'))) {
      // The kubelet swaps `..data` before it deletes the link of a removed key: a file that vanished
      // between listing and reading is a swap in progress, so look again at the next check.
      this.last = undefined;
      return { kind: 'unchanged' };
    }
    if (problems.length > 0) return { kind: 'rejected', problems };
    const before = new Map(this.current.map((p) => [p.name, p]));
    const after = new Map(policies.map((p) => [p.name, p]));
    const added = [...after.keys()].filter((n) => !before.has(n));
    const removed = [...before.keys()].filter((n) => !after.has(n));
    const changed = [...after.keys()].filter((n) => before.has(n) && !sameJson(before.get(n), after.get(n)));
    if (added.length === 0 && removed.length === 0 && changed.length === 0) return { kind: 'unchanged' };
    this.current = policies;
    return { kind: 'reloaded', policies, added, removed, changed };
  }
}
