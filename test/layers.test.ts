/**
 * The layers of src/ import downwards only: the decision core depends on nothing of ours; the mesh, policy
 * and signal layers may use the core and each other, never the daemon, the CLI, the simulator or the
 * backtest, which sit on top of them.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SRC = join(import.meta.dirname, '..', 'src');
const UPPER = ['daemon', 'cli', 'sim', 'backtest'];

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/** The top-level folder of src/ each relative import of a file lands in. */
function importedLayers(file: string): { spec: string; layer: string }[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'/g)].map(
    (m) => m[1] as string,
  );
  return specs.map((spec) => ({
    spec,
    layer: relative(SRC, resolve(dirname(file), spec)).split('/')[0] ?? '',
  }));
}

function violations(layer: string, allowed: (target: string) => boolean): string[] {
  return files(join(SRC, layer)).flatMap((f) =>
    importedLayers(f)
      .filter((i) => !allowed(i.layer))
      .map((i) => `${relative(SRC, f)} imports ${i.spec}`),
  );
}

describe('src/ layers', () => {
  it('finds the imports it checks (the check can fail)', () => {
    expect(importedLayers(join(SRC, 'daemon', 'cycle.ts')).map((i) => i.layer)).toContain('mesh');
  });

  it('the core imports nothing outside itself', () => {
    expect(violations('core', (t) => t === 'core')).toEqual([]);
  });

  it.each(['mesh', 'policy', 'signals'])(
    '%s never imports the daemon, CLI, simulator or backtest',
    (layer) => {
      expect(violations(layer, (t) => !UPPER.includes(t))).toEqual([]);
    },
  );
});
