/**
 * What a cycle's outcome means for operators: its kind (changed, held, paused, no mirror, …), and the
 * Kubernetes Event it deserves on the route object. The Events themselves are written by the mesh layer's
 * EventRecorder, which knows nothing of cycles.
 */
import type { EventSpec } from '../mesh/events.js';
import type { PolicyOutcome } from './cycle.js';

/**
 * What a cycle did with one policy, read from its outcome:
 * - changed: the percentage was written; recorded: a dry run would have changed it; held: nothing to change;
 * - paused: the VirtualService carries the pause annotation;
 * - noMirror: the route or the mirror to the target is missing; invalidMirror: a mirror shape we refuse to edit;
 * - notFound: the VirtualService does not exist; unreadable: VirtualServices could not be listed;
 * - conflict: the write gave up after repeated concurrent edits; writeFailed: the write failed otherwise;
 * - overridden: someone else changed back what this controller wrote; it backs off (see override.ts).
 */
export type OutcomeKind =
  | 'changed'
  | 'recorded'
  | 'held'
  | 'paused'
  | 'noMirror'
  | 'invalidMirror'
  | 'notFound'
  | 'unreadable'
  | 'conflict'
  | 'writeFailed'
  | 'overridden';

// The outcome carries error text only; these are the fixed parts of the messages that runCycle and the mesh
// layer produce (ConflictError, locateMirrors' MeshErrors, runCycle's own), kept next to the code that reads them.
const CONFLICT_TEXT = 'conflict: the object changed since it was read';
const NO_MIRROR_TEXTS = [
  ': no http route named ',
  ': spec.http: missing or empty',
  ': no mirror to ',
  ': no http route mirrors to ',
  ': no rule named ',
  ': no rule at index ',
  ': spec.rules: missing or empty',
  ': no RequestMirror filter to ',
  ': no rule has a RequestMirror filter to ',
];

/** Classifies an outcome; see OutcomeKind. */
export function classifyOutcome(outcome: PolicyOutcome): OutcomeKind {
  if (outcome.write === 'written') return 'changed';
  if (outcome.write === 'failed') {
    // "re-reading ... after a conflict failed: <error>" is a failed read, not a conflict: test the error itself.
    const error = outcome.error ?? '';
    return error.includes(CONFLICT_TEXT) && !error.startsWith('re-reading ') ? 'conflict' : 'writeFailed';
  }
  if (outcome.error !== undefined) {
    const error = outcome.error;
    const route = `${outcome.routeKind} ${outcome.routeId}`;
    if (error === `${route} not found`) return 'notFound';
    if (error.startsWith(route)) {
      return NO_MIRROR_TEXTS.some((t) => error.includes(t)) ? 'noMirror' : 'invalidMirror';
    }
    return 'unreadable';
  }
  if (outcome.reason === 'Paused') return 'paused';
  if (outcome.reason === 'Overridden') return 'overridden';
  if (outcome.write === 'recorded') return 'recorded';
  return 'held';
}

function describePercent(p: number | null): string {
  return p === null ? '?' : `${p}%`;
}

/**
 * The Event an outcome deserves, or undefined: every change (Normal MirrorPercentChanged, with from -> to,
 * action and reason) and every refusal that has an object to attach to (Warning Paused, NoMirror,
 * InvalidMirror, ConflictGaveUp, WriteFailed). Holds, dry-run decisions (a dry run writes nothing, Events
 * included), a missing VirtualService and a failed list give none.
 */
export function eventForOutcome(outcome: PolicyOutcome): EventSpec | undefined {
  const kind = classifyOutcome(outcome);
  const who = `policy ${outcome.policy}`;
  const error = outcome.error ?? outcome.message;
  switch (kind) {
    case 'changed':
      return {
        type: 'Normal',
        reason: 'MirrorPercentChanged',
        message: `${who}: mirror percentage ${describePercent(outcome.currentPercent)} -> ${describePercent(outcome.proposedPercent)} (${outcome.action ?? '?'}, ${outcome.reason ?? '?'}): ${outcome.message}`,
        action: 'SetMirrorPercent',
      };
    case 'paused':
      return {
        type: 'Warning',
        reason: 'Paused',
        message: `${who}: not changing the mirror percentage: ${outcome.message}`,
        action: 'SetMirrorPercent',
      };
    case 'noMirror':
      return { type: 'Warning', reason: 'NoMirror', message: `${who}: ${error}`, action: 'SetMirrorPercent' };
    case 'overridden':
      // Once per override, on the cycle that noticed it; the back-off that follows is in the message.
      return outcome.override?.fresh === true
        ? {
            type: 'Warning',
            reason: 'Overridden',
            message: `${who}: ${outcome.message}`,
            action: 'SetMirrorPercent',
          }
        : undefined;
    case 'invalidMirror':
      return {
        type: 'Warning',
        reason: 'InvalidMirror',
        message: `${who}: refusing to edit: ${error}`,
        action: 'SetMirrorPercent',
      };
    case 'conflict':
      return {
        type: 'Warning',
        reason: 'ConflictGaveUp',
        message: `${who}: gave up setting the mirror percentage ${describePercent(outcome.currentPercent)} -> ${describePercent(outcome.proposedPercent)} after repeated concurrent edits: ${error}`,
        action: 'SetMirrorPercent',
      };
    case 'writeFailed':
      return {
        type: 'Warning',
        reason: 'WriteFailed',
        message: `${who}: setting the mirror percentage ${describePercent(outcome.currentPercent)} -> ${describePercent(outcome.proposedPercent)} failed: ${error}`,
        action: 'SetMirrorPercent',
      };
    default:
      return undefined;
  }
}
