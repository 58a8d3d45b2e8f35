/**
 * The simulator's entry points: the closed loop with the real decision core as the default controller.
 */
import { type ControllerState, decide } from '../core/decide.js';
import { type Controller, runClosedLoop, type SimOptions, type SimResult } from './loop.js';
import { SCENARIO_NAMES, type ScenarioName } from './scenarios.js';

/** The decision core as a simulator controller. */
export const decideController: Controller<ControllerState> = decide;

/**
 * Simulates a scenario in closed loop with `controller`, by default the real decision core.
 * The same options (scenario, seed, duration, policy) give the same result.
 */
export function simulate(options: SimOptions): SimResult;
export function simulate<S>(options: SimOptions, controller: Controller<S>): SimResult;
export function simulate<S>(options: SimOptions, controller?: Controller<S>): SimResult {
  return controller === undefined
    ? runClosedLoop(options, decideController)
    : runClosedLoop(options, controller);
}

/** One scenario's result in a run of several. */
export interface NamedResult {
  readonly name: ScenarioName;
  readonly result: SimResult;
}

/**
 * Simulates every named scenario (all of them by default) with the same seed, duration and policy.
 */
export function simulateAll(
  options: Omit<SimOptions, 'scenario'>,
  scenarios: readonly ScenarioName[] = SCENARIO_NAMES,
): NamedResult[] {
  return scenarios.map((name) => ({ name, result: simulate({ ...options, scenario: name }) }));
}
