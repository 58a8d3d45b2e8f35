/**
 * Controller state kept on the VirtualService itself, one annotation per policy.
 *
 * Why there: the state that matters for safety (the level of the last breach, the time of the last
 * decrease) must survive a restart and be seen by a second replica after a leader change. An annotation is
 * written in the same JSON Patch as the percentage, so the two can never disagree, and the patch's
 * resourceVersion test makes the write atomic with respect to other writers.
 */
import { MeshError } from './errors.js';
import type { VirtualService } from './virtualservice.js';

/** Annotation keys are `state.mirror-autoscaler.io/<policy name>`. */
export const STATE_ANNOTATION_PREFIX = 'state.mirror-autoscaler.io/';

/** Annotation values are stored in etcd with the object; keep each one small. */
export const MAX_STATE_BYTES = 4096;

// The name part of an annotation key: at most 63 characters, alphanumeric at both ends, `-_.` inside.
const NAME_PART = /^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/;

/**
 * The annotation key holding the state of one policy.
 * @throws MeshError (InvalidState) when the policy name cannot be the name part of an annotation key.
 */
export function stateAnnotationKey(policyName: string): string {
  if (!NAME_PART.test(policyName)) {
    throw new MeshError(
      'InvalidState',
      '?',
      `policy name ${JSON.stringify(policyName)}: cannot be used in annotation key ${STATE_ANNOTATION_PREFIX}<name> (at most 63 characters, letters, digits, "-", "_", ".", alphanumeric at both ends)`,
    );
  }
  return `${STATE_ANNOTATION_PREFIX}${policyName}`;
}

/** The state of one policy as read from a VirtualService. */
export type StoredState = { readonly found: false } | { readonly found: true; readonly value: unknown };

/**
 * Reads and JSON-decodes the state annotation of a policy. The caller validates the decoded value: the
 * shape belongs to the decision core.
 * @returns `{found: false}` when absent, the decoded JSON, or a MeshError when the annotation is not JSON.
 */
export function readStateAnnotation(vs: VirtualService, policyName: string): StoredState | MeshError {
  const key = stateAnnotationKey(policyName);
  const raw = vs.metadata.annotations?.[key];
  if (raw === undefined) return { found: false };
  try {
    const value: unknown = JSON.parse(raw);
    return { found: true, value };
  } catch (err) {
    const id = `${vs.metadata.namespace}/${vs.metadata.name}`;
    return new MeshError(
      'InvalidState',
      id,
      `${vs.kind} ${id}: annotation ${key}: not valid JSON (${(err as Error).message}); got ${JSON.stringify(raw.slice(0, 60))}`,
    );
  }
}

/**
 * Encodes the state of a policy as the annotations to pass to `buildPercentPatch` / `patchPercent`.
 * @throws MeshError (InvalidState) when the value is not JSON-serialisable or larger than MAX_STATE_BYTES.
 */
export function stateAnnotation(policyName: string, value: unknown): Record<string, string> {
  const key = stateAnnotationKey(policyName);
  const encoded = JSON.stringify(value);
  if (encoded === undefined) {
    throw new MeshError('InvalidState', '?', `annotation ${key}: state is not JSON-serialisable`);
  }
  if (Buffer.byteLength(encoded) > MAX_STATE_BYTES) {
    throw new MeshError(
      'InvalidState',
      '?',
      `annotation ${key}: state is ${Buffer.byteLength(encoded)} bytes, more than ${MAX_STATE_BYTES}`,
    );
  }
  return { [key]: encoded };
}
