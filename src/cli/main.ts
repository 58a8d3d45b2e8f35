#!/usr/bin/env node
import { Command } from 'commander';
import { register as registerBacktest } from './backtest.js';
import { register as registerBrake } from './brake.js';
import { register as registerPlan } from './plan.js';
import { register as registerRun } from './run.js';
import { register as registerSchema } from './schema.js';
import { register as registerSimulate } from './simulate.js';
import { register as registerValidate } from './validate.js';

const program = new Command()
  .name('mirror-autoscaler')
  .description(
    'Keeps the share of live traffic that Istio mirrors to a shadow service as high as the shadow can safely take.',
  )
  .version('0.1.0')
  .showHelpAfterError()
  .enablePositionalOptions();

registerValidate(program);
registerSchema(program);
registerSimulate(program);
registerPlan(program);
registerRun(program);
registerBrake(program);
registerBacktest(program);

await program.parseAsync(process.argv);
