/**
 * Parsing and validation of one policy document. Reading files lives in load.ts: this module turns text
 * into a {@link MirrorPolicy} or a list of problems, never throws, and never touches the file system.
 */
import {
  type Alias,
  Composer,
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  Parser,
} from 'yaml';
import { DEFAULT_CONTROL, DEFAULT_INTERVAL_SECONDS, DEFAULT_WINDOW_SECONDS } from '../core/defaults.js';
import { SIGNAL_NAMES, type SignalName } from '../core/types.js';
import type { BackendTarget } from '../mesh/gateway.js';
import { ROUTE_KINDS, type RouteRef } from '../mesh/route.js';
import { formatDuration, parseDuration } from './duration.js';
import { matchesRule } from './names.js';
import { checkQueryTemplate } from './query.js';
import { type Field, type ObjectField, POLICY_SPEC } from './spec.js';
import {
  type MirrorPolicy,
  type Problem,
  QUERY_NAMES,
  type QueryName,
  ROUTE_FIELDS,
  SIGNAL_PRESETS,
} from './types.js';

/** Files above this size are refused before parsing: a policy is a few hundred bytes. */
export const MAX_POLICY_BYTES = 1024 * 1024;

/**
 * Aliases resolved per document. The validator only follows aliases on the fixed paths of the format and
 * never expands a whole tree, so an alias bomb costs nothing; the cap bounds the work of looking anchors up.
 */
export const MAX_ALIASES = 100;

/**
 * Nodes a document may hold once its aliases are expanded. A policy has a few dozen; a "billion laughs" alias
 * bomb has billions. The validator never expands aliases, but any other tool reading the file (kubectl,
 * an editor, a YAML linter) would, so such a file is refused outright with a message that says what it is.
 */
export const MAX_EXPANDED_NODES = 10_000;

/** Problems reported per file; past this a file is garbage and more lines would only bury the first ones. */
export const MAX_PROBLEMS = 200;

/** A line/column position, both 1-based; line 0 means "no position" (directory-level problems). */
export interface Position {
  readonly line: number;
  readonly col: number;
}

const START: Position = { line: 1, col: 1 };

/** Thrown by callers that need a valid policy set (the daemon); carries every problem. */
export class PolicyError extends Error {
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[]) {
    const lines = problems.map(formatProblem);
    super(lines.length === 0 ? 'invalid policy' : lines.join('\n'));
    this.name = 'PolicyError';
    this.problems = problems;
  }
}

/**
 * Formats a problem as `FILE:LINE:COL: PATH: MESSAGE`; the position is left out when line is 0 and the path
 * when it is empty (file- and directory-level problems).
 */
export function formatProblem(p: Problem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file;
  return p.path === '' ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
}

/** Where a parsed policy's identifying fields sit, for messages about clashes between files. */
export interface PolicyAnchors {
  readonly name: Position;
  /** spec.virtualService, spec.httpRoute or spec.grpcRoute, whichever the policy sets. */
  readonly route: Position;
}

/** The result of {@link parsePolicyDetailed}. */
export interface ParsedPolicy {
  readonly policy?: MirrorPolicy;
  readonly problems: Problem[];
  readonly anchors?: PolicyAnchors;
}

/**
 * Parses and validates one policy document.
 * @param text the file's content
 * @param file the name used in problems and stored in `policy.file`
 * @returns the policy when there is no problem, and every problem found (empty when valid). Never throws.
 */
export function parsePolicy(text: string, file: string): { policy?: MirrorPolicy; problems: Problem[] } {
  const { policy, problems } = parsePolicyDetailed(text, file);
  return policy === undefined ? { problems } : { policy, problems };
}

/** {@link parsePolicy} plus the positions of metadata.name and the route field, for cross-file checks. */
export function parsePolicyDetailed(text: string, file: string): ParsedPolicy {
  try {
    return parseUnsafe(text, file);
  } catch (err) {
    // Anything the YAML library or a grammar throws on hostile input (e.g. stack overflow on deep nesting).
    const reason = err instanceof Error ? err.message : String(err);
    return { problems: [{ file, ...START, path: '', message: `cannot parse: ${oneLine(reason)}` }] };
  }
}

function parseUnsafe(text: string, file: string): ParsedPolicy {
  const problem = (pos: Position, path: string, message: string): Problem => ({
    file,
    line: pos.line,
    col: pos.col,
    path,
    message: oneLine(message),
  });
  // Strings are UTF-16; 3 bytes per unit is the worst case, so only count bytes when it could matter.
  if (text.length * 3 > MAX_POLICY_BYTES && Buffer.byteLength(text, 'utf8') > MAX_POLICY_BYTES) {
    return {
      problems: [
        problem(
          START,
          '',
          `file is too large (${Buffer.byteLength(text, 'utf8')} bytes; limit ${MAX_POLICY_BYTES})`,
        ),
      ],
    };
  }
  const lineCounter = new LineCounter();
  const at = (offset: number): Position => {
    const lp = lineCounter.linePos(offset);
    return { line: lp.line, col: lp.col };
  };
  // Documents are composed one at a time so that a file of a hundred thousand `---` stops at the second.
  const composer = new Composer({
    prettyErrors: false,
    strict: true,
    // The library's own duplicate-key check is quadratic in the size of a mapping; checkObject does it in
    // linear time on the mappings that matter.
    uniqueKeys: false,
    version: '1.2',
  });
  const yamlProblems: Problem[] = [];
  // A trailing `---` or a comment-only document is harmless; only documents with content count.
  const nonEmpty: Document.Parsed[] = [];
  for (const doc of composer.compose(new Parser(lineCounter.addNewLine).parse(text))) {
    for (const e of [...doc.errors, ...doc.warnings]) {
      yamlProblems.push(problem(at(e.pos[0]), '', `invalid YAML: ${e.message}`));
    }
    if (!isEmptyContent(doc.contents)) nonEmpty.push(doc);
    if (nonEmpty.length > 1 || yamlProblems.length >= MAX_PROBLEMS) break;
  }
  // Semantic checks on a document the YAML parser could not read would only add noise.
  if (yamlProblems.length > 0) return { problems: capProblems(sortProblems(yamlProblems), problem) };

  const first = nonEmpty[0];
  if (first === undefined) {
    return { problems: [problem(START, '', 'file is empty; expected one MirrorPolicy document')] };
  }
  const second = nonEmpty[1];
  if (second !== undefined) {
    return {
      problems: [
        problem(
          at(second.range[0]),
          '',
          'found a second YAML document; a policy file holds exactly one MirrorPolicy',
        ),
      ],
    };
  }

  const bomb = aliasBomb(first);
  if (bomb !== undefined) {
    return {
      problems: [
        problem(
          bomb.range == null ? START : at(bomb.range[0]),
          '',
          `YAML aliases expand this document to more than ${MAX_EXPANDED_NODES} nodes (an alias bomb: alias *${bomb.source}); a policy needs no more than a few dozen`,
        ),
      ],
    };
  }

  const checker = new Checker(first, at, problem);
  const raw = checker.check(first.contents, POLICY_SPEC, '', START);
  const rootPos = checker.valuePos.get('') ?? START;
  const crossProblems = crossCheck(raw, checker, problem);
  const problems = capProblems(sortProblems([...checker.problems, ...crossProblems]), problem);
  if (problems.length > 0 || !isRecord(raw)) return { problems };
  const policy = buildPolicy(raw, file);
  const anchors: PolicyAnchors = {
    name: checker.valuePos.get('metadata.name') ?? rootPos,
    route: checker.valuePos.get(`spec.${ROUTE_FIELDS[policy.route.kind]}`) ?? rootPos,
  };
  return { policy, problems: [], anchors };
}

/**
 * The first alias at which the document, expanded, exceeds {@link MAX_EXPANDED_NODES} nodes; undefined when
 * it stays under. Linear in the size of the unexpanded document: the expanded size of each node is memoised.
 */
function aliasBomb(doc: Document.Parsed): Alias | undefined {
  const sizes = new Map<unknown, number>();
  let culprit: Alias | undefined;
  const size = (node: unknown): number => {
    if (culprit !== undefined) return MAX_EXPANDED_NODES + 1;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    // An anchor used inside its own node (a cycle) counts as too large while it is being measured.
    sizes.set(node, MAX_EXPANDED_NODES + 1);
    let total = 1;
    if (isAlias(node)) {
      const target = node.resolve(doc);
      total = target === undefined ? 1 : size(target);
      if (total > MAX_EXPANDED_NODES && culprit === undefined) culprit = node;
    } else if (isMap(node)) {
      for (const pair of node.items) total += size(pair.key) + size(pair.value);
    } else if (isSeq(node)) {
      for (const item of node.items) total += size(item);
    }
    total = Math.min(total, MAX_EXPANDED_NODES + 1);
    sizes.set(node, total);
    return total;
  };
  const whole = size(doc.contents);
  return whole > MAX_EXPANDED_NODES ? culprit : undefined;
}

type MakeProblem = (pos: Position, path: string, message: string) => Problem;

function isEmptyContent(contents: unknown): boolean {
  return contents === null || (isScalar(contents) && contents.value === null && contents.source === '');
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ').trim();
}

function capProblems(problems: Problem[], problem: MakeProblem): Problem[] {
  if (problems.length <= MAX_PROBLEMS) return problems;
  const last = problems[MAX_PROBLEMS - 1];
  const more = problem(
    last === undefined ? START : { line: last.line, col: last.col },
    '',
    `too many problems; ${problems.length - MAX_PROBLEMS} more not shown`,
  );
  return [...problems.slice(0, MAX_PROBLEMS), more];
}

function sortProblems(problems: Problem[]): Problem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function joinPath(path: string, key: string): string {
  // Odd keys are quoted so that the path stays readable and unambiguous: spec["a.b"].
  if (!/^[A-Za-z_$][\w$-]*$/.test(key)) return `${path}[${JSON.stringify(truncate(key, 40))}]`;
  return path === '' ? key : `${path}.${key}`;
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** How a value is shown after "got": what the user wrote, quoted when it is a string. */
function describe(node: unknown): string {
  if (node === null || node === undefined) return 'null';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isAlias(node)) return `alias *${node.source}`;
  if (isScalar(node)) {
    const v = node.value;
    if (typeof v === 'string') return JSON.stringify(truncate(v, 60));
    if (v === null) return 'null';
    if (typeof node.source === 'string' && node.source !== '') return truncate(node.source, 60);
    return String(v);
  }
  return 'an unsupported value';
}

/** Keys within edit distance 2 of a misspelt one, for "did you mean". */
function suggest(key: string, known: readonly string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = editDistance(key.toLowerCase(), name.toLowerCase());
    if (d <= 2 && (best === undefined || d < best.d)) best = { name, d };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64) return 3;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, sub));
    }
    prev = cur;
  }
  return prev[b.length] ?? 3;
}

/** Walks a YAML node against the field tree, collecting problems and value positions. */
class Checker {
  readonly problems: Problem[] = [];
  /** Position of each checked value by dotted path (the key when the value is empty). */
  readonly valuePos = new Map<string, Position>();
  private aliases = 0;

  constructor(
    private readonly doc: Document,
    private readonly at: (offset: number) => Position,
    private readonly makeProblem: MakeProblem,
  ) {}

  report(pos: Position, path: string, message: string): void {
    this.problems.push(this.makeProblem(pos, path, message));
  }

  private pos(node: unknown, fallback: Position): Position {
    if (isScalar(node) && node.value === null && node.source === '') return fallback;
    if ((isScalar(node) || isMap(node) || isSeq(node) || isAlias(node)) && node.range)
      return this.at(node.range[0]);
    return fallback;
  }

  /** Follows an alias to its anchored node; a missing anchor or too many aliases is reported. */
  private resolve(node: unknown, path: string, pos: Position): { ok: boolean; node: unknown } {
    if (!isAlias(node)) return { ok: true, node };
    this.aliases++;
    if (this.aliases > MAX_ALIASES) {
      if (this.aliases === MAX_ALIASES + 1)
        this.report(pos, path, `too many YAML aliases (limit ${MAX_ALIASES})`);
      return { ok: false, node: undefined };
    }
    const target: Node | undefined = node.resolve(this.doc);
    if (target === undefined || isAlias(target)) {
      this.report(pos, path, `YAML alias *${node.source} has no anchor`);
      return { ok: false, node: undefined };
    }
    return { ok: true, node: target };
  }

  /**
   * Checks `node` against `field` at `path`. `fallback` is where to point when the value is empty (its key).
   * @returns the checked JS value (durations in seconds), or undefined when it is invalid.
   */
  check(rawNode: unknown, field: Field, path: string, fallback: Position): unknown {
    const pos = this.pos(rawNode, fallback);
    this.valuePos.set(path, pos);
    const { ok, node } = this.resolve(rawNode, path, pos);
    if (!ok) return undefined;
    switch (field.kind) {
      case 'object':
        return this.checkObject(node, field, path, pos);
      case 'const': {
        const value = isScalar(node) ? node.value : undefined;
        if (value !== field.value) {
          this.report(pos, path, `must be ${JSON.stringify(field.value)} (got ${describe(node)})`);
          return undefined;
        }
        return value;
      }
      case 'name': {
        const value = this.string(node, path, pos);
        if (value === undefined) return undefined;
        const { rule } = field;
        if (value.length > rule.maxLength) {
          this.report(pos, path, `must be at most ${rule.maxLength} characters (got ${value.length})`);
          return undefined;
        }
        if (!new RegExp(rule.pattern).test(value)) {
          this.report(pos, path, `must be ${rule.describe} (got ${describe(node)})`);
          return undefined;
        }
        return value;
      }
      case 'number':
        return this.checkNumber(node, field, path, pos);
      case 'duration': {
        const text = isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
        const seconds = text === undefined ? undefined : parseDuration(text);
        if (seconds === undefined) {
          this.report(pos, path, `must be a duration such as 30s, 2m or 1h30m (got ${describe(node)})`);
          return undefined;
        }
        if (seconds < field.minSeconds) {
          this.report(pos, path, `must be >= ${formatDuration(field.minSeconds)} (got ${text})`);
          return undefined;
        }
        if (seconds > field.maxSeconds) {
          this.report(pos, path, `must be <= ${formatDuration(field.maxSeconds)} (got ${text})`);
          return undefined;
        }
        return seconds;
      }
      case 'ruleRef': {
        // A rule's index (an integer >= 0) or its name (held to the rule's pattern): one message for both.
        const value = isScalar(node) ? node.value : undefined;
        const ok =
          typeof value === 'number'
            ? Number.isInteger(value) && value >= 0 && value <= 1_000_000
            : typeof value === 'string' && matchesRule(value, field.rule);
        if (!ok) {
          this.report(pos, path, `must be ${field.rule.describe} (got ${describe(node)})`);
          return undefined;
        }
        return value;
      }
      case 'enum': {
        const value = this.string(node, path, pos);
        if (value === undefined) return undefined;
        if (field.values.includes(value)) return value;
        const allowed = field.values.map((v) => JSON.stringify(v)).join(', ');
        const guess = suggest(value, field.values);
        this.report(
          pos,
          path,
          `must be one of ${allowed} (got ${describe(node)})${guess === undefined ? '' : `; did you mean ${JSON.stringify(guess)}?`}`,
        );
        return undefined;
      }
      case 'query': {
        const value = this.string(node, path, pos);
        if (value === undefined) return undefined;
        const found = checkQueryTemplate(value, field.placeholders);
        for (const q of found) this.report(pos, path, q.message);
        return found.length === 0 ? value : undefined;
      }
    }
  }

  private string(node: unknown, path: string, pos: Position): string | undefined {
    if (!isScalar(node) || typeof node.value !== 'string') {
      this.report(pos, path, `must be a string (got ${describe(node)})`);
      return undefined;
    }
    if (node.value === '') {
      this.report(pos, path, 'must not be empty');
      return undefined;
    }
    return node.value;
  }

  private checkNumber(
    node: unknown,
    field: Extract<Field, { kind: 'number' }>,
    path: string,
    pos: Position,
  ): number | undefined {
    if (!isScalar(node) || typeof node.value !== 'number') {
      this.report(pos, path, `must be a number (got ${describe(node)})`);
      return undefined;
    }
    const v = node.value;
    const got = describe(node);
    if (!Number.isFinite(v)) {
      this.report(pos, path, `must be a finite number (got ${got})`);
      return undefined;
    }
    if (field.integer && !Number.isInteger(v)) {
      this.report(pos, path, `must be an integer (got ${got})`);
      return undefined;
    }
    const failed =
      field.minimum !== undefined && v < field.minimum
        ? `>= ${field.minimum}`
        : field.exclusiveMinimum !== undefined && v <= field.exclusiveMinimum
          ? `> ${field.exclusiveMinimum}`
          : field.maximum !== undefined && v > field.maximum
            ? `<= ${field.maximum}`
            : field.exclusiveMaximum !== undefined && v >= field.exclusiveMaximum
              ? `< ${field.exclusiveMaximum}`
              : undefined;
    if (failed !== undefined) {
      // The unit hint matters when a value is too large: 80 written for a ratio of 0.8.
      const tooLarge = failed.startsWith('<');
      const hint = field.hint === undefined || !tooLarge ? '' : `; ${field.hint}`;
      this.report(pos, path, `must be ${failed} (got ${got})${hint}`);
      return undefined;
    }
    return v;
  }

  private checkObject(node: unknown, field: ObjectField, path: string, pos: Position): unknown {
    if (!isMap(node)) {
      const what =
        path === ''
          ? `the document must be a mapping with ${field.required.join(', ')}`
          : 'must be a mapping';
      this.report(pos, path, `${what} (got ${describe(node)})`);
      return undefined;
    }
    const known = Object.keys(field.properties);
    const out: Record<string, unknown> = {};
    const seen = new Map<string, Position>();
    let valid = true;
    for (const pair of node.items) {
      const keyPos = this.pos(pair.key, pos);
      const { ok, node: key } = this.resolve(pair.key, path, keyPos);
      if (!ok) {
        valid = false;
        continue;
      }
      if (!isScalar(key) || typeof key.value !== 'string') {
        this.report(keyPos, path, `keys must be strings (got ${describe(key)})`);
        valid = false;
        continue;
      }
      const name = key.value;
      const childPath = joinPath(path, name);
      const sub = Object.hasOwn(field.properties, name) ? field.properties[name] : undefined;
      if (sub === undefined) {
        const guess = suggest(name, known);
        this.report(
          keyPos,
          childPath,
          guess === undefined ? 'unknown field' : `unknown field (did you mean ${guess}?)`,
        );
        valid = false;
        continue;
      }
      const first = seen.get(name);
      if (first !== undefined) {
        this.report(
          keyPos,
          childPath,
          `duplicate field (first set at line ${first.line}, column ${first.col})`,
        );
        valid = false;
        continue;
      }
      seen.set(name, keyPos);
      const value = this.check(pair.value, sub, childPath, keyPos);
      if (value === undefined) valid = false;
      else out[name] = value;
    }
    for (const name of field.required) {
      if (!seen.has(name)) {
        this.report(pos, joinPath(path, name), 'is required');
        valid = false;
      }
    }
    if (field.exactlyOne !== undefined) {
      const set = field.exactlyOne.filter((k) => seen.has(k));
      if (set.length === 0) {
        this.report(pos, path, `must set exactly one of ${field.exactlyOne.join(', ')}`);
        valid = false;
      } else if (set.length > 1) {
        // Reported on the one set last in the file: the earlier one is what the document was about.
        const byPosition = [...set].sort((a, b) => {
          const pa = seen.get(a) ?? pos;
          const pb = seen.get(b) ?? pos;
          return pa.line - pb.line || pa.col - pb.col;
        });
        const second = byPosition[byPosition.length - 1] as string;
        this.report(
          seen.get(second) ?? pos,
          joinPath(path, second),
          `set only one of ${field.exactlyOne.join(', ')} (got ${set.join(' and ')})`,
        );
        valid = false;
      }
    }
    if (field.atLeastOne && seen.size === 0) {
      this.report(pos, path, `must set at least one of ${known.join(', ')}`);
      valid = false;
    }
    // Returning the partial object lets cross-field checks run on the parts that were valid.
    return valid || seen.size > 0 ? out : undefined;
  }
}

/** Rules that involve more than one field. They only look at fields that passed their own checks. */
function crossCheck(raw: unknown, checker: Checker, problem: MakeProblem): Problem[] {
  const out: Problem[] = [];
  if (!isRecord(raw) || !isRecord(raw.spec)) return out;
  const spec = raw.spec;
  const posOf = (path: string): Position => checker.valuePos.get(path) ?? START;

  if (isRecord(spec.bounds)) {
    const { minPercent, maxPercent } = spec.bounds;
    if (typeof minPercent === 'number' && typeof maxPercent === 'number' && minPercent > maxPercent) {
      out.push(
        problem(
          posOf('spec.bounds.minPercent'),
          'spec.bounds.minPercent',
          `must be <= spec.bounds.maxPercent (got ${minPercent} > ${maxPercent})`,
        ),
      );
    }
  }

  // A window shorter than the interval would leave samples between two evaluations unseen.
  const intervalWritten = checker.valuePos.has('spec.interval');
  if (typeof spec.window === 'number' && (typeof spec.interval === 'number' || !intervalWritten)) {
    const interval = typeof spec.interval === 'number' ? spec.interval : DEFAULT_INTERVAL_SECONDS;
    if (spec.window < interval) {
      out.push(
        problem(
          posOf('spec.window'),
          'spec.window',
          `must be >= spec.interval (got ${formatDuration(spec.window)} < ${formatDuration(interval)})`,
        ),
      );
    }
  }

  // Rates over a window need at least two samples in it; with fewer than two scrapes per window every signal
  // would be missing as often as not.
  const observation = isRecord(spec.observation) ? spec.observation : {};
  const scrape = observation.scrapeInterval;
  if (typeof scrape === 'number') {
    const windowWritten = checker.valuePos.has('spec.window');
    if (typeof spec.window === 'number' && spec.window < 2 * scrape) {
      out.push(
        problem(
          posOf('spec.window'),
          'spec.window',
          `must be >= 2 × spec.observation.scrapeInterval (got ${formatDuration(spec.window)} < 2 × ${formatDuration(scrape)})`,
        ),
      );
    } else if (!windowWritten) {
      const interval = typeof spec.interval === 'number' ? spec.interval : DEFAULT_INTERVAL_SECONDS;
      const window = Math.max(DEFAULT_WINDOW_SECONDS, interval);
      if (window < 2 * scrape) {
        out.push(
          problem(
            posOf('spec.observation.scrapeInterval'),
            'spec.observation.scrapeInterval',
            `must be <= half of spec.window (got ${formatDuration(scrape)}; spec.window is ${formatDuration(window)} by default): set spec.window to at least ${formatDuration(2 * scrape)}`,
          ),
        );
      }
    }
  }

  // The target names the mirror as the route kind does: a host for a VirtualService, a Service backendRef
  // for a Gateway API route.
  // Only when one route is set: with two, that is the problem to fix first.
  const routesSet = ['virtualService', 'httpRoute', 'grpcRoute'].filter((f) =>
    checker.valuePos.has(`spec.${f}`),
  );
  const gatewayField = routesSet.length === 1 ? routesSet.find((f) => f !== 'virtualService') : undefined;
  if (
    routesSet.length === 1 &&
    routesSet[0] === 'virtualService' &&
    checker.valuePos.has('spec.target.backendRef')
  ) {
    out.push(
      problem(
        posOf('spec.target.backendRef'),
        'spec.target.backendRef',
        'is for spec.httpRoute and spec.grpcRoute; a spec.virtualService policy names its mirror target with spec.target.host',
      ),
    );
  }
  if (gatewayField !== undefined) {
    for (const field of ['host', 'subset'] as const) {
      if (!checker.valuePos.has(`spec.target.${field}`)) continue;
      out.push(
        problem(
          posOf(`spec.target.${field}`),
          `spec.target.${field}`,
          `is for spec.virtualService; a spec.${gatewayField} policy names its mirror target with spec.target.backendRef (the Service in the RequestMirror filter)`,
        ),
      );
    }
  }

  // An override for a signal without a guardrail would never run: most likely a misplaced key.
  for (const name of SIGNAL_NAMES) {
    // Keyed on presence, not validity: a broken query or guardrail still says which one the user meant.
    if (checker.valuePos.has(`spec.queries.${name}`) && !checker.valuePos.has(`spec.guardrails.${name}`)) {
      out.push(
        problem(
          posOf(`spec.queries.${name}`),
          `spec.queries.${name}`,
          `has no guardrail to feed: set spec.guardrails.${name} or remove this query`,
        ),
      );
    }
  }
  return out;
}

function num(obj: Record<string, unknown>, key: string, fallback: number): number {
  const v = obj[key];
  return typeof v === 'number' ? v : fallback;
}

function str(obj: Record<string, unknown>, key: string): string | undefined {
  const v = obj[key];
  return typeof v === 'string' ? v : undefined;
}

function rec(obj: Record<string, unknown>, key: string): Record<string, unknown> {
  const v = obj[key];
  return isRecord(v) ? v : {};
}

/** The route a checked spec names: whichever of virtualService, httpRoute, grpcRoute is set. */
function buildRoute(spec: Record<string, unknown>): RouteRef {
  for (const kind of ROUTE_KINDS) {
    const field = ROUTE_FIELDS[kind];
    if (spec[field] === undefined) continue;
    const raw = rec(spec, field);
    const rule = kind === 'VirtualService' ? raw.route : raw.rule;
    return {
      kind,
      name: str(raw, 'name') ?? '',
      namespace: str(raw, 'namespace') ?? '',
      ...((typeof rule === 'string' || typeof rule === 'number') && { rule }),
    };
  }
  return { kind: 'VirtualService', name: '', namespace: '' };
}

/** Builds the typed policy from a checked document (every required field present, every value valid). */
function buildPolicy(raw: Record<string, unknown>, file: string): MirrorPolicy {
  const metadata = rec(raw, 'metadata');
  const spec = rec(raw, 'spec');
  const route = buildRoute(spec);
  const target = rec(spec, 'target');
  const backendRaw = target.backendRef === undefined ? undefined : rec(target, 'backendRef');
  const bounds = rec(spec, 'bounds');
  const guardrailsRaw = rec(spec, 'guardrails');
  const queriesRaw = rec(spec, 'queries');
  const control = rec(spec, 'control');
  const productionRaw = spec.production === undefined ? undefined : rec(spec, 'production');
  const observationRaw = rec(spec, 'observation');
  const preset = rec(spec, 'signals').preset;
  const signalPreset = SIGNAL_PRESETS.find((p) => p === preset);

  const guardrails: Partial<Record<SignalName, number>> = {};
  const queries: Partial<Record<QueryName, string>> = {};
  for (const name of SIGNAL_NAMES) {
    const limit = guardrailsRaw[name];
    if (typeof limit === 'number') guardrails[name] = limit;
  }
  for (const name of QUERY_NAMES) {
    const query = queriesRaw[name];
    if (typeof query === 'string') queries[name] = query;
  }
  const scrapeIntervalSeconds = observationRaw.scrapeInterval;
  const propagationSeconds = observationRaw.propagation;
  const routeNamespace = route.namespace;
  const host = str(target, 'host');
  const subset = str(target, 'subset');
  const backendNamespace = backendRaw === undefined ? undefined : str(backendRaw, 'namespace');
  const backend: BackendTarget | undefined =
    backendRaw === undefined
      ? undefined
      : {
          name: str(backendRaw, 'name') ?? '',
          ...(backendNamespace !== undefined && { namespace: backendNamespace }),
          ...(typeof backendRaw.port === 'number' && { port: backendRaw.port }),
        };
  const intervalSeconds = num(spec, 'interval', DEFAULT_INTERVAL_SECONDS);
  return {
    name: str(metadata, 'name') ?? '',
    file,
    route,
    target: {
      ...(host !== undefined && { host }),
      ...(subset !== undefined && { subset }),
      ...(backend !== undefined && { backend }),
      workload: str(target, 'workload') ?? '',
      namespace: str(target, 'namespace') ?? backend?.namespace ?? routeNamespace,
    },
    bounds: { minPercent: num(bounds, 'minPercent', 0), maxPercent: num(bounds, 'maxPercent', 0) },
    guardrails,
    intervalSeconds,
    // An unset window follows a long interval, so that choosing `interval: 5m` alone stays valid.
    windowSeconds: num(spec, 'window', Math.max(DEFAULT_WINDOW_SECONDS, intervalSeconds)),
    queries,
    ...(productionRaw !== undefined && {
      production: {
        service: str(productionRaw, 'service') ?? '',
        namespace: str(productionRaw, 'namespace') ?? routeNamespace,
      },
    }),
    ...((typeof scrapeIntervalSeconds === 'number' || typeof propagationSeconds === 'number') && {
      observation: {
        ...(typeof scrapeIntervalSeconds === 'number' && { scrapeIntervalSeconds }),
        ...(typeof propagationSeconds === 'number' && { propagationSeconds }),
      },
    }),
    ...(signalPreset !== undefined && { signalPreset }),
    control: {
      hysteresis: num(control, 'hysteresis', DEFAULT_CONTROL.hysteresis),
      maxIncreaseFactor: num(control, 'maxIncreaseFactor', DEFAULT_CONTROL.maxIncreaseFactor),
      increaseStepPercent: num(control, 'increaseStepPercent', DEFAULT_CONTROL.increaseStepPercent),
      cooldownSeconds: num(control, 'cooldown', DEFAULT_CONTROL.cooldownSeconds),
      blindHoldSeconds: num(control, 'blindHold', DEFAULT_CONTROL.blindHoldSeconds),
      minChangePercent: num(control, 'minChangePercent', DEFAULT_CONTROL.minChangePercent),
      maxWritesPerHour: num(control, 'maxWritesPerHour', DEFAULT_CONTROL.maxWritesPerHour),
      breachMemorySeconds: num(control, 'breachMemory', DEFAULT_CONTROL.breachMemorySeconds),
    },
  };
}
