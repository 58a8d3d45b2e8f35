import { describe, expect, it } from 'vitest';
import {
  applyJsonPatch,
  applyMergePatch,
  type Json,
  PatchApplyError,
  PatchDecodeError,
} from './kube-patch.js';

const doc: Json = { a: { b: [1, 2, 3], 'x/y': 'slash', 'm~n': 'tilde' }, c: null };

describe('applyJsonPatch (RFC 6902)', () => {
  const ok: { name: string; patch: unknown; expected: Json }[] = [
    {
      name: 'add member',
      patch: [{ op: 'add', path: '/d', value: 1 }],
      expected: { ...(doc as object), d: 1 } as Json,
    },
    {
      name: 'add replaces an existing member',
      patch: [{ op: 'add', path: '/c', value: 2 }],
      expected: { a: (doc as { a: Json }).a, c: 2 },
    },
    {
      name: 'add into array and append with -',
      patch: [
        { op: 'add', path: '/a/b/0', value: 0 },
        { op: 'add', path: '/a/b/-', value: 4 },
      ],
      expected: { a: { b: [0, 1, 2, 3, 4], 'x/y': 'slash', 'm~n': 'tilde' }, c: null },
    },
    {
      name: 'escaped tokens',
      patch: [
        { op: 'replace', path: '/a/x~1y', value: 'S' },
        { op: 'remove', path: '/a/m~0n' },
      ],
      expected: { a: { b: [1, 2, 3], 'x/y': 'S' }, c: null },
    },
    {
      name: 'test passes on equal values (key order ignored), null included',
      patch: [
        { op: 'test', path: '/a', value: { 'm~n': 'tilde', 'x/y': 'slash', b: [1, 2, 3] } },
        { op: 'test', path: '/c', value: null },
      ],
      expected: doc,
    },
    {
      name: 'move and copy',
      patch: [
        { op: 'copy', from: '/a/b', path: '/copy' },
        { op: 'move', from: '/a/x~1y', path: '/moved' },
      ],
      expected: { a: { b: [1, 2, 3], 'm~n': 'tilde' }, c: null, copy: [1, 2, 3], moved: 'slash' },
    },
  ];
  for (const row of ok) {
    it(row.name, () => {
      expect(applyJsonPatch(doc, row.patch)).toEqual(row.expected);
    });
  }

  const failing: { name: string; patch: unknown; error: typeof PatchApplyError | typeof PatchDecodeError }[] =
    [
      {
        name: 'test with a different value',
        patch: [{ op: 'test', path: '/a/b/0', value: 9 }],
        error: PatchApplyError,
      },
      {
        name: 'test of a missing path',
        patch: [{ op: 'test', path: '/nope', value: null }],
        error: PatchApplyError,
      },
      {
        name: 'remove of a missing member',
        patch: [{ op: 'remove', path: '/nope' }],
        error: PatchApplyError,
      },
      {
        name: 'replace of a missing member',
        patch: [{ op: 'replace', path: '/nope', value: 1 }],
        error: PatchApplyError,
      },
      {
        name: 'add under a missing parent',
        patch: [{ op: 'add', path: '/x/y', value: 1 }],
        error: PatchApplyError,
      },
      {
        name: 'array index out of bounds',
        patch: [{ op: 'add', path: '/a/b/9', value: 1 }],
        error: PatchApplyError,
      },
      { name: 'unknown op', patch: [{ op: 'frobnicate', path: '/a' }], error: PatchApplyError },
      { name: 'not a list', patch: { op: 'add', path: '/a', value: 1 }, error: PatchDecodeError },
    ];
  for (const row of failing) {
    it(`fails: ${row.name}`, () => {
      expect(() => applyJsonPatch(doc, row.patch)).toThrow(row.error);
    });
  }

  it('is atomic: a failed op leaves the input untouched', () => {
    const input: Json = { n: 1 };
    expect(() =>
      applyJsonPatch(input, [
        { op: 'replace', path: '/n', value: 2 },
        { op: 'test', path: '/n', value: 1 },
      ]),
    ).toThrow(PatchApplyError);
    expect(input).toEqual({ n: 1 });
  });
});

describe('applyMergePatch (RFC 7386)', () => {
  const rows: { name: string; target: Json; patch: Json; expected: Json }[] = [
    {
      name: 'merges objects',
      target: { a: { b: 1, c: 2 } },
      patch: { a: { c: 3 } },
      expected: { a: { b: 1, c: 3 } },
    },
    { name: 'null deletes', target: { a: 1, b: 2 }, patch: { a: null }, expected: { b: 2 } },
    { name: 'arrays replace', target: { a: [1, 2] }, patch: { a: [3] }, expected: { a: [3] } },
    { name: 'non-object patch replaces', target: { a: 1 }, patch: 'x', expected: 'x' },
  ];
  for (const row of rows) {
    it(row.name, () => {
      expect(applyMergePatch(row.target, row.patch)).toEqual(row.expected);
    });
  }
});
