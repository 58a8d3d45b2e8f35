/**
 * The package's bin runs as a program of its own (shebang and executable bit), as `npx mirror-autoscaler` and
 * an installed package need; `npm test` builds dist/ first.
 */
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };

describe('the mirror-autoscaler bin', () => {
  const bin = join(ROOT, pkg.bin['mirror-autoscaler'] ?? 'missing');

  it('is executable and starts with a node shebang', () => {
    expect(statSync(bin).mode & 0o111).not.toBe(0);
    expect(readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('runs directly and lists its commands', async () => {
    const { stdout } = await promisify(execFile)(bin, ['--help'], { timeout: 20_000 });
    for (const command of ['simulate', 'plan', 'run', 'backtest', 'brake', 'status', 'validate']) {
      expect(stdout).toContain(command);
    }
  });
});
