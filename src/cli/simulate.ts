import type { Command } from 'commander';

/** Registers the `simulate` command. */
export function register(program: Command): void {
  program.command('simulate').description('not built yet').action(() => {
    process.stderr.write('simulate: not built yet\n');
    process.exitCode = 2;
  });
}
