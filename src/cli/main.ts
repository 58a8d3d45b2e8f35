#!/usr/bin/env node
import { Command } from 'commander';

/** Each command's module, loaded only when needed: `validate` or `simulate` need not load the Kubernetes client. */
const COMMANDS: Readonly<Record<string, () => Promise<{ register(program: Command): void }>>> = {
  validate: () => import('./validate.js'),
  schema: () => import('./schema.js'),
  simulate: () => import('./simulate.js'),
  plan: () => import('./plan.js'),
  run: () => import('./run.js'),
  brake: () => import('./brake.js'),
  status: () => import('./status.js'),
  backtest: () => import('./backtest.js'),
};

const program = new Command()
  .name('mirror-autoscaler')
  .description(
    'Keeps the share of live traffic mirrored to a shadow service (Istio VirtualService, Gateway API HTTPRoute or GRPCRoute) as high as the shadow can safely take.',
  )
  .version('0.1.0')
  .showHelpAfterError()
  .enablePositionalOptions();

// The first word that is not an option names the command (the program's own options take no value); help,
// an unknown word or none at all registers every command, so that commander can list them or suggest one.
const word = process.argv.slice(2).find((a) => !a.startsWith('-'));
const load = word !== undefined && Object.hasOwn(COMMANDS, word) ? [word] : Object.keys(COMMANDS);
for (const name of load) {
  const module = await COMMANDS[name]?.();
  module?.register(program);
}

await program.parseAsync(process.argv);
