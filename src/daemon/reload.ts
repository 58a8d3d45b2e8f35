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
      /** Problems of files whose last good version was kept; empty when every file is valid. */
      readonly problems: readonly Problem[];
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
 * Watches a policy directory by polling its fingerprint. Valid files replace the running policies; a file
 * that became invalid is reported and its last good version keeps running, the same rule as at start-up:
 * one broken policy never stops the others.
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
    const badFiles = new Set(problems.map((p) => p.file));
    const names = new Set(policies.map((p) => p.name));
    const kept = this.current.filter((p) => badFiles.has(p.file) && !names.has(p.name));
    const next = [...policies, ...kept].sort((x, y) => x.name.localeCompare(y.name));
    const before = new Map(this.current.map((p) => [p.name, p]));
    const after = new Map(next.map((p) => [p.name, p]));
    const added = [...after.keys()].filter((n) => !before.has(n));
    const removed = [...before.keys()].filter((n) => !after.has(n));
    const changed = [...after.keys()].filter((n) => before.has(n) && !sameJson(before.get(n), after.get(n)));
    if (added.length === 0 && removed.length === 0 && changed.length === 0) {
      return problems.length > 0 ? { kind: 'rejected', problems } : { kind: 'unchanged' };
    }
    this.current = next;
    return { kind: 'reloaded', policies: next, added, removed, changed, problems };
  }
}
