import type { Command } from 'commander';

/** Registers the `validate` command. */
export function register(program: Command): void {
  program.command('validate').description('not built yet').action(() => {
    process.stderr.write('validate: not built yet\n');
    process.exitCode = 2;
  });
}
