import type { Command } from 'commander';

/** Registers the `plan` command. */
export function register(program: Command): void {
  program.command('plan').description('not built yet').action(() => {
    process.stderr.write('plan: not built yet\n');
    process.exitCode = 2;
  });
}
