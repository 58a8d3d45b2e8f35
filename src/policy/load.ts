/**
 * Reading policy files. Parsing lives in parse.ts; this module only finds files, enforces the size cap,
 * and checks what no single file can: duplicate names and two policies steering the same mirror.
 */
import { open, readdir, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { describeRoute } from '../mesh/route.js';
import { MAX_POLICY_BYTES, type ParsedPolicy, PolicyError, parsePolicyDetailed } from './parse.js';
import { type MirrorPolicy, type Problem, ROUTE_FIELDS } from './types.js';

/**
 * Policy files accepted in one directory. A fleet of a few thousand services fits; far more is more likely a
 * wrong mount (a whole repository) than a policy set, and would take minutes to load at every reload.
 */
export const MAX_POLICY_FILES = 10_000;

/** Total size of the policy files of one directory; a policy is a few hundred bytes, so this is generous. */
export const MAX_POLICY_DIR_BYTES = 64 * 1024 * 1024;

/** File extensions read from a policy directory (case-insensitive). */
export const POLICY_EXTENSIONS = ['.yaml', '.yml'] as const;

function errorCode(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string')
    return err.code;
  return err instanceof Error ? err.message : String(err);
}

function fileProblem(file: string, message: string): Problem {
  return { file, line: 0, col: 0, path: '', message };
}

/** Policy files read at once: enough to hide file-system latency, few enough to bound memory. */
const READ_CONCURRENCY = 16;

/** First read size: a policy is a few hundred bytes, so one read usually suffices. */
const FIRST_READ_BYTES = 16 * 1024;

/**
 * Reads a file of at most {@link MAX_POLICY_BYTES}, without reading more than the cap + 1 bytes however large
 * the file is (a device or a growing file must not exhaust memory).
 */
async function readCapped(file: string): Promise<{ text?: string; problem?: Problem }> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    // Checked before opening: opening a FIFO or a device would block or never end.
    if (!(await stat(file)).isFile()) return { problem: fileProblem(file, 'not a regular file') };
    handle = await open(file, 'r');
    // Grown on demand up to the cap + 1 byte: allocating the whole cap per file dominated loading a
    // directory of thousands of small policies. Not zero-filled: every byte used is read from the file first.
    let buf = Buffer.allocUnsafe(FIRST_READ_BYTES);
    let length = 0;
    for (;;) {
      if (length === buf.length) {
        if (buf.length > MAX_POLICY_BYTES) break;
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 4, MAX_POLICY_BYTES + 1));
        buf.copy(bigger, 0, 0, length);
        buf = bigger;
      }
      const { bytesRead } = await handle.read(buf, length, buf.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > MAX_POLICY_BYTES) {
      return {
        problem: {
          ...fileProblem(file, `file is too large (limit ${MAX_POLICY_BYTES} bytes)`),
          line: 1,
          col: 1,
        },
      };
    }
    return { text: buf.subarray(0, length).toString('utf8') };
  } catch (err) {
    return { problem: fileProblem(file, `cannot read policy file: ${errorCode(err)}`) };
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/**
 * Reads one directory entry that looks like a policy file.
 * @returns undefined when it is not a regular file (a sub-directory named `x.yaml`, a FIFO, a device).
 */
async function readCandidate(
  file: string,
): Promise<({ file: string } & Awaited<ReturnType<typeof readCapped>>) | undefined> {
  try {
    // Sub-directories (and FIFOs, devices) that happen to end in .yaml are not policy files.
    if (!(await stat(file)).isFile()) return undefined;
  } catch (err) {
    // A dangling symlink, e.g. a ConfigMap key removed mid-update.
    return { file, problem: fileProblem(file, `cannot read policy file: ${errorCode(err)}`) };
  }
  return { file, ...(await readCapped(file)) };
}

/**
 * Reads and validates one policy file.
 * @returns the policy when valid, and every problem. Never throws.
 */
export async function loadPolicyFile(file: string): Promise<{ policy?: MirrorPolicy; problems: Problem[] }> {
  const { text, problem } = await readCapped(file);
  if (text === undefined) return { problems: problem === undefined ? [] : [problem] };
  const { policy, problems } = parsePolicyDetailed(text, file);
  return policy === undefined ? { problems } : { policy, problems };
}

/**
 * Loads every `*.yaml` / `*.yml` file directly in `dir` (sorted by name; sub-directories and dot-files are
 * skipped, which also skips the `..data` links of a mounted ConfigMap while following its file links).
 * Checks each file, then that names are unique and no two policies steer the same mirror.
 * @returns the valid policies and every problem in every file. Never throws.
 */
export async function loadPolicyDir(dir: string): Promise<{ policies: MirrorPolicy[]; problems: Problem[] }> {
  let names: string[];
  try {
    const info = await stat(dir);
    if (!info.isDirectory()) return { policies: [], problems: [fileProblem(dir, 'not a directory')] };
    names = await readdir(dir);
  } catch (err) {
    const code = errorCode(err);
    const message =
      code === 'ENOENT' ? 'policy directory not found' : `cannot read policy directory: ${code}`;
    return { policies: [], problems: [fileProblem(dir, message)] };
  }
  const candidates = names
    .filter(
      (n) =>
        !n.startsWith('.') && (POLICY_EXTENSIONS as readonly string[]).includes(extname(n).toLowerCase()),
    )
    .sort();
  if (candidates.length > MAX_POLICY_FILES) {
    // Refused as a whole: loading an arbitrary part of the set would silently drop some services.
    return {
      policies: [],
      problems: [
        fileProblem(
          dir,
          `too many policy files (${candidates.length}; limit ${MAX_POLICY_FILES}); split them over several installs`,
        ),
      ],
    };
  }
  const parsed: ParsedPolicy[] = [];
  const problems: Problem[] = [];
  let files = 0;
  let bytes = 0;
  // Files are read in small concurrent batches and handled in name order, so results do not depend on timing.
  for (let start = 0; start < candidates.length; start += READ_CONCURRENCY) {
    const batch = candidates
      .slice(start, start + READ_CONCURRENCY)
      .map((name) => readCandidate(join(dir, name)));
    for (const read of await Promise.all(batch)) {
      if (read === undefined) continue;
      files++;
      if (read.problem !== undefined) problems.push(read.problem);
      if (read.text === undefined) continue;
      bytes += Buffer.byteLength(read.text, 'utf8');
      if (bytes > MAX_POLICY_DIR_BYTES) {
        problems.push(
          fileProblem(
            read.file,
            `policy files up to this one add up to more than ${MAX_POLICY_DIR_BYTES} bytes (limit for a directory); this and later files were not read`,
          ),
        );
        return { policies: [], problems };
      }
      const result = parsePolicyDetailed(read.text, read.file);
      problems.push(...result.problems);
      parsed.push(result);
    }
  }
  if (files === 0 && problems.length === 0) {
    problems.push(
      fileProblem(dir, `no policy files (${POLICY_EXTENSIONS.map((e) => `*${e}`).join(', ')}) found`),
    );
  }
  problems.push(...findConflicts(parsed));
  const clashing = new Set(problems.map((p) => p.file));
  // A policy that clashes with another is dropped with its problem; the first of a pair stays usable.
  const policies = parsed.flatMap((p) =>
    p.policy !== undefined && !clashing.has(p.policy.file) ? [p.policy] : [],
  );
  return { policies, problems };
}

/**
 * Like {@link loadPolicyDir} for callers that cannot run with a partial set (the daemon at start-up).
 * @throws PolicyError carrying every problem
 */
export async function loadPolicyDirOrThrow(dir: string): Promise<MirrorPolicy[]> {
  const { policies, problems } = await loadPolicyDir(dir);
  if (problems.length > 0) throw new PolicyError(problems);
  return policies;
}

function overlaps<T>(a: T | undefined, b: T | undefined): boolean {
  return a === undefined || b === undefined || a === b;
}

/**
 * Rules (or http routes) that may be the same one: either unset, or equal; a rule's name and an index may
 * name the same rule, which only the object can tell, so they overlap too.
 */
function rulesOverlap(a: string | number | undefined, b: string | number | undefined): boolean {
  return overlaps(a, b) || typeof a !== typeof b;
}

/** What identifies the mirror a policy steers, and how it is described in a conflict. */
function mirrorKey(p: MirrorPolicy): { key: string; what: string } {
  const route = describeRoute(p.route);
  if (p.route.kind === 'VirtualService') {
    return { key: `${route} ${p.target.host}`, what: `${route}, host ${p.target.host}` };
  }
  const b = p.target.backend;
  const backend = `${b?.namespace ?? p.route.namespace}/${b?.name}`;
  return { key: `${route} ${backend}`, what: `${route}, backendRef Service ${backend}` };
}

/**
 * Problems between files: a repeated metadata.name, and two policies that would steer the same mirror
 * (same route object and mirror target, overlapping route or rule, subset or port), which would fight each other.
 * Each problem is reported on the later file and names the earlier one.
 */
export function findConflicts(parsed: readonly ParsedPolicy[]): Problem[] {
  const out: Problem[] = [];
  // Indexed by name and by mirror, so that thousands of policies are checked in linear time.
  const byName = new Map<string, { policy: MirrorPolicy; at: string }>();
  const byMirror = new Map<string, { policy: MirrorPolicy; at: string }[]>();
  for (const { policy, anchors } of parsed) {
    if (policy === undefined || anchors === undefined) continue;
    const first = byName.get(policy.name);
    if (first !== undefined) {
      out.push({
        file: policy.file,
        ...anchors.name,
        path: 'metadata.name',
        message: `duplicate policy name ${JSON.stringify(policy.name)}; also defined in ${first.at}`,
      });
    }
    const { key, what } = mirrorKey(policy);
    const same = byMirror.get(key) ?? [];
    const rival = same.find(
      (s) =>
        rulesOverlap(s.policy.route.rule, policy.route.rule) &&
        overlaps(s.policy.target.subset, policy.target.subset) &&
        overlaps(s.policy.target.backend?.port, policy.target.backend?.port),
    );
    if (rival !== undefined) {
      const field = ROUTE_FIELDS[policy.route.kind];
      const parts = policy.route.kind === 'VirtualService' ? 'routes and subsets' : 'rules and ports';
      out.push({
        file: policy.file,
        ...anchors.route,
        path: `spec.${field}`,
        message: `steers the same mirror as policy ${JSON.stringify(rival.policy.name)} in ${rival.at} (${what}); ${parts} must not overlap`,
      });
    }
    const entry = { policy, at: `${policy.file}:${anchors.name.line}:${anchors.name.col}` };
    if (first === undefined) byName.set(policy.name, entry);
    same.push(entry);
    byMirror.set(key, same);
  }
  return out;
}
