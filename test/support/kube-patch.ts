/**
 * RFC 6902 JSON Patch and RFC 7386 JSON Merge Patch, as the fake API server applies them.
 *
 * Written here rather than borrowed from fast-json-patch on purpose: the mesh tests apply our patches with
 * fast-json-patch, and the fake server with this code, so a bug in one cannot hide a bug in the other.
 * Semantics follow the API server's library (evanphx/json-patch) where RFC 6902 leaves room: a `test` of a
 * missing path fails, as do `remove`/`replace` of a missing path.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The patch document itself is malformed (not a list of operations): the API server answers 400. */
export class PatchDecodeError extends Error {
  override readonly name = 'PatchDecodeError';
}

/** The patch is well-formed but cannot be applied (failed `test`, missing path): the API server answers 422. */
export class PatchApplyError extends Error {
  override readonly name = 'PatchApplyError';
}

function isObject(value: unknown): value is { [key: string]: Json } {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Deep copy of a JSON value. */
export function cloneJson<T>(value: T): T {
  return structuredClone(value);
}

/** Structural equality of JSON values (object key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** Splits a JSON Pointer (RFC 6901) into unescaped reference tokens. */
export function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/'))
    throw new PatchApplyError(`JSON pointer must start with "/": ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function arrayIndex(token: string, length: number, forAdd: boolean, pointer: string): number {
  if (forAdd && token === '-') return length;
  if (!/^(0|[1-9][0-9]*)$/.test(token))
    throw new PatchApplyError(`invalid array index ${JSON.stringify(token)} in ${pointer}`);
  const index = Number(token);
  if (index > length || (!forAdd && index === length)) {
    throw new PatchApplyError(`array index ${index} out of bounds in ${pointer}`);
  }
  return index;
}

interface Located {
  readonly parent: Json[] | { [key: string]: Json };
  readonly token: string;
}

/** Finds the container of the last token of `pointer` (which must exist). */
function locateParent(doc: Json, pointer: string): Located {
  const tokens = parsePointer(pointer);
  const last = tokens.pop();
  if (last === undefined) throw new PatchApplyError('the whole document cannot be the target here');
  let node: Json = doc;
  for (const token of tokens) {
    if (Array.isArray(node)) {
      node = node[arrayIndex(token, node.length, false, pointer)] as Json;
    } else if (isObject(node) && Object.hasOwn(node, token)) {
      node = node[token] as Json;
    } else {
      throw new PatchApplyError(`doc is missing path: ${pointer}`);
    }
  }
  if (!Array.isArray(node) && !isObject(node)) throw new PatchApplyError(`doc is missing path: ${pointer}`);
  return { parent: node, token: last };
}

function getValue(doc: Json, pointer: string): Json {
  let node: Json = doc;
  for (const token of parsePointer(pointer)) {
    if (Array.isArray(node)) {
      node = node[arrayIndex(token, node.length, false, pointer)] as Json;
    } else if (isObject(node) && Object.hasOwn(node, token)) {
      node = node[token] as Json;
    } else {
      throw new PatchApplyError(`doc is missing path: ${pointer}`);
    }
  }
  return node;
}

function addValue(doc: Json, pointer: string, value: Json): Json {
  if (pointer === '') return value;
  const { parent, token } = locateParent(doc, pointer);
  if (Array.isArray(parent)) parent.splice(arrayIndex(token, parent.length, true, pointer), 0, value);
  else parent[token] = value;
  return doc;
}

function removeValue(doc: Json, pointer: string): Json {
  const { parent, token } = locateParent(doc, pointer);
  if (Array.isArray(parent)) {
    const removed = parent.splice(arrayIndex(token, parent.length, false, pointer), 1);
    return removed[0] as Json;
  }
  if (!Object.hasOwn(parent, token))
    throw new PatchApplyError(`remove operation does not apply: doc is missing path: ${pointer}`);
  const removed = parent[token] as Json;
  delete parent[token];
  return removed;
}

function field(op: Record<string, unknown>, name: string, index: number): string {
  const value = op[name];
  if (typeof value !== 'string') throw new PatchApplyError(`operation ${index}: missing ${name}`);
  return value;
}

/**
 * Applies a JSON Patch to a copy of `doc`.
 * @throws PatchDecodeError when `patch` is not a list of objects; PatchApplyError when an operation fails.
 */
export function applyJsonPatch(doc: Json, patch: unknown): Json {
  if (!Array.isArray(patch) || !patch.every(isObject)) {
    throw new PatchDecodeError('json: cannot unmarshal into Go value of type jsonpatch.Patch');
  }
  let result = cloneJson(doc);
  patch.forEach((op, index) => {
    const kind = op.op;
    const path = field(op, 'path', index);
    switch (kind) {
      case 'add':
        if (!Object.hasOwn(op, 'value')) throw new PatchApplyError(`operation ${index}: add without value`);
        result = addValue(result, path, cloneJson(op.value as Json));
        return;
      case 'remove':
        removeValue(result, path);
        return;
      case 'replace': {
        if (!Object.hasOwn(op, 'value'))
          throw new PatchApplyError(`operation ${index}: replace without value`);
        if (path === '') {
          result = cloneJson(op.value as Json);
          return;
        }
        const { parent, token } = locateParent(result, path);
        if (Array.isArray(parent))
          parent[arrayIndex(token, parent.length, false, path)] = cloneJson(op.value as Json);
        else if (Object.hasOwn(parent, token)) parent[token] = cloneJson(op.value as Json);
        else throw new PatchApplyError(`replace operation does not apply: doc is missing key: ${path}`);
        return;
      }
      case 'move': {
        const from = field(op, 'from', index);
        if (path.startsWith(`${from}/`))
          throw new PatchApplyError(`operation ${index}: cannot move ${from} into itself`);
        const value = removeValue(result, from);
        result = addValue(result, path, value);
        return;
      }
      case 'copy': {
        const from = field(op, 'from', index);
        result = addValue(result, path, cloneJson(getValue(result, from)));
        return;
      }
      case 'test': {
        let actual: Json;
        try {
          actual = getValue(result, path);
        } catch {
          throw new PatchApplyError(`testing value ${path} failed: path does not exist`);
        }
        if (!jsonEqual(actual, op.value))
          throw new PatchApplyError(`testing value ${path} failed: test failed`);
        return;
      }
      default:
        throw new PatchApplyError(`Unexpected kind: ${String(kind)}`);
    }
  });
  return result;
}

/** Applies an RFC 7386 merge patch: objects merge recursively, `null` deletes, anything else replaces. */
export function applyMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return cloneJson(patch);
  const result: { [key: string]: Json } = isObject(target) ? cloneJson(target) : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = applyMergePatch(result[key] ?? null, value);
  }
  return result;
}
