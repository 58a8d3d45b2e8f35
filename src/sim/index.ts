/** The simulator: plant model, Prometheus-like observation, closed loop, scenarios and rendering. */
export {
  type Controller,
  type ControllerDecision,
  type ControllerInput,
  DEFAULT_SIM_DURATION_SECONDS,
  recoveryAfter,
  runClosedLoop,
  SIM_EPOCH_MS,
  type SimOptions,
  type SimResult,
  type SimSample,
  type SimSummary,
} from './loop.js';
export {
  CPU_BOUND_PROFILE,
  createPlant,
  IO_BOUND_PROFILE,
  inBreach,
  maxSeverity,
  NO_NOISE,
  oraclePercent,
  type PlantConfig,
  type PlantProfile,
  productionRps,
  type Schedule,
  safeUtilisation,
  scheduleAt,
  type TrueSignals,
  trueSignals,
} from './plant.js';
export { createObserver, DEFAULT_OBSERVATION, type ObservationConfig, type Observer } from './prometheus.js';
export { downsample, renderChart, renderSummary, renderSummaryTable, type SummaryRow } from './render.js';
export {
  buildScenario,
  DEFAULT_SCENARIO,
  DEFAULT_SIM_POLICY,
  describeScenario,
  isScenarioName,
  SCENARIO_NAMES,
  type Scenario,
  type ScenarioName,
  scenarioPolicy,
} from './scenarios.js';
export { decideController, type NamedResult, simulate, simulateAll } from './simulate.js';
