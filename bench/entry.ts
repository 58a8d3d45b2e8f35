/** Shared by the benchmark scripts: whether a module is the script node was started with. */
import { realpathSync } from 'node:fs';

/**
 * Whether the file at `self` (a module's own path) is the script this process was started with, so a
 * benchmark module runs its main only when executed, not when a test imports it.
 */
export function isEntryPoint(self: string): boolean {
  const arg = process.argv[1];
  if (arg === undefined) return false;
  try {
    return realpathSync(arg) === realpathSync(self);
  } catch {
    return false;
  }
}
