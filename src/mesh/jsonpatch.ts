/**
 * Reading JSON Patches back: whether an object already shows the changes of a patch. Used after a write
 * whose answer was lost (connection reset, 5xx) to tell "it landed" from "it did not" without sending it
 * again. Pure.
 */
import type { JsonPatchOp } from './virtualservice.js';

/** Decodes one JSON Pointer reference token (RFC 6901): `~1` → `/`, `~0` → `~`. */
export function unescapePointerToken(token: string): string {
  return token.replaceAll('~1', '/').replaceAll('~0', '~');
}

/** The value at a JSON Pointer, or `{found: false}`. */
export function readPointer(
  root: unknown,
  pointer: string,
): { found: true; value: unknown } | { found: false } {
  if (pointer === '') return { found: true, value: root };
  let node: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const key = unescapePointerToken(raw);
    if (Array.isArray(node)) {
      const i = /^(0|[1-9][0-9]*)$/.test(key) ? Number(key) : -1;
      if (i < 0 || i >= node.length) return { found: false };
      node = node[i];
    } else if (typeof node === 'object' && node !== null && Object.hasOwn(node, key)) {
      node = (node as Record<string, unknown>)[key];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: node };
}

/** Structural equality of JSON values (object key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]))
    );
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return (
    ka.length === kb.length &&
    ka.every(
      (k) =>
        Object.hasOwn(b, k) &&
        jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
    )
  );
}

/**
 * True when `obj` shows every change of `ops`: each `add`/`replace` value is at its path and each `remove`d
 * path is gone (`test` ops are preconditions, not changes). A patch we sent whose answer was lost has landed
 * exactly when this holds for the object as read afterwards, given its values are specific to that write
 * (the state annotation, written with every change, carries the decision's time).
 */
export function showsPatch(obj: unknown, ops: readonly JsonPatchOp[]): boolean {
  return ops.every((op) => {
    if (op.op === 'test') return true;
    const at = readPointer(obj, op.path);
    if (op.op === 'remove') return !at.found;
    return at.found && jsonEqual(at.value, op.value);
  });
}
