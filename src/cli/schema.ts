import type { Command } from 'commander';

/** Registers the `schema` command. */
export function register(program: Command): void {
  program.command('schema').description('not built yet').action(() => {
    process.stderr.write('schema: not built yet\n');
    process.exitCode = 2;
  });
}
