/**
 * Simulator scenarios adapted to a live run of minutes: events stay at the scenario's fractions of the run,
 * and the surge (10 minutes in the simulator, where runs last hours) lasts at most 30 % of the run so that
 * its end, and the recovery after it, fall inside the run.
 */
import type { Schedule } from '../../src/sim/plant.js';
import type { Scenario } from '../../src/sim/scenarios.js';

/** The scenario's change: when it starts and when it is over (capacity back, surge over), plant seconds. */
export interface ChangeSpan {
  readonly startSeconds: number;
  readonly endSeconds: number;
  /** What the change is, for the report. */
  readonly label: string;
}

/** Largest share of the run a surge lasts, ramps included. */
export const MAX_SURGE_SHARE = 0.3;

/** The scenario with its surge shortened to fit the run (other scenarios unchanged). */
export function adaptScenario(s: Scenario, durationSeconds: number): Scenario {
  const m = s.plant.traffic.multiplier;
  if (s.name !== 'surge' || m === undefined || m.length !== 4) return s;
  const at = m[0]?.[0] ?? 0;
  const peak = m[1]?.[1] ?? 3;
  const length = (m[3]?.[0] ?? at) - at;
  const fit = Math.max(60, Math.round(durationSeconds * MAX_SURGE_SHARE));
  if (length <= fit) return s;
  const ramp = Math.min((m[1]?.[0] ?? at) - at, fit / 10);
  const multiplier: Schedule = [
    [at, 1],
    [at + ramp, peak],
    [at + fit - ramp, peak],
    [at + fit, 1],
  ];
  return { ...s, plant: { ...s.plant, traffic: { ...s.plant.traffic, multiplier } } };
}

/** The change of an (adapted) capacity-drop or surge scenario; undefined for scenarios without one. */
export function changeOf(s: Scenario): ChangeSpan | undefined {
  if (s.name === 'capacity-drop') {
    const c = s.plant.capacityRps;
    const start = s.capacityDropAtSeconds ?? c[0]?.[0];
    const end = c[c.length - 1]?.[0];
    if (start === undefined || end === undefined) return undefined;
    return { startSeconds: start, endSeconds: end, label: 'capacity halved, then back' };
  }
  if (s.name === 'surge') {
    const m = s.plant.traffic.multiplier;
    const start = m?.[0]?.[0];
    const end = m?.[m.length - 1]?.[0];
    if (start === undefined || end === undefined) return undefined;
    return { startSeconds: start, endSeconds: end, label: 'production tripled, then back' };
  }
  return undefined;
}
