import type { Command } from 'commander';
import { loadPolicyDir } from '../policy/load.js';
import { formatProblem } from '../policy/parse.js';

/** Where a command writes; `process` satisfies it, tests pass collectors. */
export interface CommandIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
}

/**
 * Validates every policy file in `dir`.
 * Prints `ok: N policies in DIR/` to stdout and returns 0, or one `FILE:LINE:COL: PATH: MESSAGE` line per
 * problem to stderr and returns 1. Never throws.
 */
export async function runValidate(dir: string, io: CommandIo): Promise<number> {
  try {
    const { policies, problems } = await loadPolicyDir(dir);
    if (problems.length > 0) {
      io.stderr.write(`${problems.map(formatProblem).join('\n')}\n`);
      return 1;
    }
    const shown = dir.endsWith('/') ? dir : `${dir}/`;
    const noun = policies.length === 1 ? 'policy' : 'policies';
    io.stdout.write(
      `ok: ${policies.length} ${noun} in ${shown} (${policies.map((p) => p.name).join(', ')})\n`,
    );
    return 0;
  } catch (err) {
    // loadPolicyDir does not throw; this guards the contract of the command all the same.
    io.stderr.write(`${dir}: validate failed: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** Registers the `validate` command. */
export function register(program: Command): void {
  program
    .command('validate')
    .description('Check every policy file (*.yaml, *.yml) in a directory and report all problems.')
    .option('-p, --policies <dir>', 'directory of MirrorPolicy files', 'policies')
    .addHelpText(
      'after',
      `
Checks syntax, unknown and missing fields, types, ranges, names (DNS-1123), durations,
PromQL query overrides, and that policy names are unique across files.

Exit status: 0 when every policy is valid (a summary goes to stdout),
1 otherwise, with one line per problem on stderr:
  policies/checkout.yaml:12:5: spec.bounds.maxPercent: must be <= 100 (got 150)

Examples:
  mirror-autoscaler validate
  mirror-autoscaler validate --policies deploy/policies`,
    )
    .action(async (opts: { policies: string }) => {
      process.exitCode = await runValidate(opts.policies, process);
    });
}
