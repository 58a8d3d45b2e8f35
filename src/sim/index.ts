/** The simulator: plant model, Prometheus-like observation, closed loop, scenarios and rendering. */
export {
  applyTimeScale,
  type Controller,
  type ControllerDecision,
  type ControllerInput,
  DEFAULT_SIM_DURATION_SECONDS,
  REACH_SHARE,
  recoveryAfter,
  runClosedLoop,
  SIM_EPOCH_MS,
  type SimOptions,
  type SimResult,
  type SimSample,
  type SimSummary,
  type TimeScale,
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
export {
  createObserver,
  DEFAULT_OBSERVATION,
  DEFAULT_STALE_AFTER_SECONDS,
  type ObservationConfig,
  type Observer,
  staleAfterFor,
} from './prometheus.js';
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
  withProductionNoise,
} from './scenarios.js';
export { decideController, type NamedResult, simulate, simulateAll } from './simulate.js';
