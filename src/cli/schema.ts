import type { Command } from 'commander';
import { policyJsonSchemaText } from '../policy/schema.js';
import type { CommandIo } from './validate.js';

/** Prints the JSON Schema of the policy format; returns the exit code. */
export function runSchema(io: CommandIo): number {
  io.stdout.write(policyJsonSchemaText());
  return 0;
}

/** Registers the `schema` command. */
export function register(program: Command): void {
  program
    .command('schema')
    .description('Print the JSON Schema (draft 2020-12) of MirrorPolicy files, for editors and CI.')
    .addHelpText(
      'after',
      `
The same schema is committed as schema/mirror-policy.schema.json. To have editors using
yaml-language-server validate a policy, put this first line in it:
  # yaml-language-server: $schema=../schema/mirror-policy.schema.json

The schema checks each field; rules across fields, PromQL syntax and unique names are
checked by 'mirror-autoscaler validate'.`,
    )
    .action(() => {
      process.exitCode = runSchema(process);
    });
}
