import type { Command } from 'commander';
import { policyCrdText } from '../policy/crd.js';
import { policyJsonSchemaText } from '../policy/schema.js';
import type { CommandIo } from './validate.js';

/** Prints the JSON Schema of the policy format; returns the exit code. */
export function runSchema(io: CommandIo, options: { crd?: boolean } = {}): number {
  io.stdout.write(options.crd === true ? policyCrdText() : policyJsonSchemaText());
  return 0;
}

/** Registers the `schema` command. */
export function register(program: Command): void {
  program
    .command('schema')
    .description('Print the JSON Schema (draft 2020-12) of MirrorPolicy files, for editors and CI.')
    .option('--crd', 'print the MirrorPolicy CustomResourceDefinition (YAML) instead')
    .addHelpText(
      'after',
      `
The same schema is committed as schema/mirror-policy.schema.json. To have editors using
yaml-language-server validate a policy, put this first line in it:
  # yaml-language-server: $schema=../schema/mirror-policy.schema.json

The schema checks each field; rules across fields, PromQL syntax and unique names are
checked by 'mirror-autoscaler validate'.

--crd prints the CustomResourceDefinition mirrorpolicies.mirror-autoscaler.io generated from
the same format (committed as deploy/base/crd-mirrorpolicies.yaml): its schema checks each
field, exactly one route, minPercent <= maxPercent and the policy name.`,
    )
    .action((flags: { crd?: boolean }) => {
      process.exitCode = runSchema(process, { crd: flags.crd === true });
    });
}
