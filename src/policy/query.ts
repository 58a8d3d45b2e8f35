import { parser } from '@prometheus-io/lezer-promql';
import { formatDuration } from './duration.js';

/** Placeholders a query override may use; the signal layer fills them with {@link renderQuery}. */
export const QUERY_PLACEHOLDERS = ['namespace', 'workload', 'window'] as const;
export type QueryPlaceholder = (typeof QUERY_PLACEHOLDERS)[number];

/** `{{name}}`, with optional spaces inside the braces as in Helm and Go templates. */
const PLACEHOLDER_RE = /\{\{\s*([^{}]*?)\s*\}\}/g;

/**
 * Values substituted before parsing: valid in both places a placeholder can sit (inside a label-matcher
 * string, or as a range duration), and free of characters that could mask a syntax error.
 */
const PARSE_PROBE_VALUES: Readonly<Record<QueryPlaceholder, string>> = {
  namespace: 'namespace',
  workload: 'workload',
  window: '2m',
};

/** Longest accepted query override; real ones are a few hundred characters, and parsing is not free. */
export const MAX_QUERY_LENGTH = 10_000;

/** A problem in a query template; `offset` is a character index into the template. */
export interface QueryProblem {
  readonly offset: number;
  readonly message: string;
}

function isPlaceholder(name: string): name is QueryPlaceholder {
  return (QUERY_PLACEHOLDERS as readonly string[]).includes(name);
}

/** The template with placeholders replaced, and a map from output offsets back to template offsets. */
function substitute(
  template: string,
  values: Readonly<Record<QueryPlaceholder, string>>,
): { text: string; toTemplate: (offset: number) => number; unknown: QueryProblem[] } {
  const unknown: QueryProblem[] = [];
  // Each segment: where it starts in the output, where it starts in the template, whether it is a placeholder.
  const segments: { out: number; tpl: number; placeholder: boolean }[] = [];
  let text = '';
  let last = 0;
  for (const m of template.matchAll(PLACEHOLDER_RE)) {
    const start = m.index;
    const name = m[1] ?? '';
    segments.push({ out: text.length, tpl: last, placeholder: false });
    text += template.slice(last, start);
    segments.push({ out: text.length, tpl: start, placeholder: true });
    if (isPlaceholder(name)) {
      text += values[name];
    } else {
      unknown.push({
        offset: start,
        message: `unknown placeholder ${truncate(m[0], 40)}; use {{namespace}}, {{workload}} or {{window}}`,
      });
      // A neutral token keeps the parse going so that syntax errors elsewhere are reported too.
      text += 'x';
    }
    last = start + m[0].length;
  }
  segments.push({ out: text.length, tpl: last, placeholder: false });
  text += template.slice(last);
  const toTemplate = (offset: number): number => {
    let seg = segments[0] ?? { out: 0, tpl: 0, placeholder: false };
    for (const s of segments) if (s.out <= offset) seg = s;
    return seg.placeholder ? seg.tpl : seg.tpl + (offset - seg.out);
  };
  return { text, toTemplate, unknown };
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/**
 * Checks a query override: every placeholder is known and the query, with placeholders filled, parses as
 * PromQL (the Prometheus project's own Lezer grammar; the first error node is reported).
 * @returns problems, empty when the template is usable.
 */
export function checkQueryTemplate(template: string): QueryProblem[] {
  if (template.trim().length === 0) return [{ offset: 0, message: 'must not be empty' }];
  if (template.length > MAX_QUERY_LENGTH) {
    return [
      { offset: 0, message: `must be at most ${MAX_QUERY_LENGTH} characters (got ${template.length})` },
    ];
  }
  const { text, toTemplate, unknown } = substitute(template, PARSE_PROBE_VALUES);
  const problems = [...unknown];
  let errorAt: number | undefined;
  parser.parse(text).iterate({
    enter(node) {
      if (errorAt !== undefined) return false;
      if (node.type.isError) {
        errorAt = node.from;
        return false;
      }
      return true;
    },
  });
  if (errorAt !== undefined) {
    const at = toTemplate(errorAt);
    const rest = template.slice(at).replace(/\s+/g, ' ').trimEnd();
    const near = rest.length === 0 ? 'at the end of the query' : `near ${JSON.stringify(truncate(rest, 30))}`;
    problems.push({
      offset: at,
      message: `is not valid PromQL: syntax error at character ${at + 1}, ${near}`,
    });
  }
  return problems;
}

/** The values a query template is rendered with. */
export interface QueryVars {
  readonly namespace: string;
  readonly workload: string;
  /** Rate window in seconds; rendered as a Prometheus duration such as `2m`. */
  readonly windowSeconds: number;
}

/**
 * Fills a validated query template. Namespace and workload are inserted verbatim: the policy loader has
 * already held them to DNS-1123 rules, so they cannot break out of a label matcher.
 * @throws Error when the template names a placeholder that {@link checkQueryTemplate} would have refused.
 */
export function renderQuery(template: string, vars: QueryVars): string {
  const values: Record<QueryPlaceholder, string> = {
    namespace: vars.namespace,
    workload: vars.workload,
    window: formatDuration(vars.windowSeconds),
  };
  return template.replace(PLACEHOLDER_RE, (whole, name: string) => {
    if (!isPlaceholder(name)) throw new Error(`query template: unknown placeholder ${whole}`);
    return values[name];
  });
}
