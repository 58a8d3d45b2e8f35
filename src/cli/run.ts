import type { Command } from 'commander';

/** Registers the `run` command. */
export function register(program: Command): void {
  program.command('run').description('not built yet').action(() => {
    process.stderr.write('run: not built yet\n');
    process.exitCode = 2;
  });
}
