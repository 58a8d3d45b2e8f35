import { mkdir, rename, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Writes files the way the kubelet updates a mounted ConfigMap: a new timestamped directory, `..data`
 * swapped to it atomically, and one symlink per key pointing through `..data`.
 */
export class ConfigMapMount {
  private generation = 0;
  constructor(readonly dir: string) {}

  async publish(files: Record<string, string>): Promise<void> {
    const gen = `..2026_11_26_${++this.generation}`;
    await mkdir(join(this.dir, gen));
    for (const [k, v] of Object.entries(files)) await writeFile(join(this.dir, gen, k), v);
    await symlink(gen, join(this.dir, '..data_tmp'));
    await rename(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const k of Object.keys(files)) {
      await symlink(join('..data', k), join(this.dir, k)).catch(() => undefined);
    }
  }

  /** Removes the key `name`: its symlink goes, then `files` without it are published. */
  async remove(name: string, files: Record<string, string>): Promise<void> {
    await unlink(join(this.dir, name));
    const rest = { ...files };
    delete rest[name];
    await this.publish(rest);
  }
}
