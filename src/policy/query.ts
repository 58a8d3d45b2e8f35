import { parser } from '@prometheus-io/lezer-promql';
import { formatDuration } from './duration.js';

/** Placeholders a signal query override may use; the signal layer fills them with {@link renderQuery}. */
export const QUERY_PLACEHOLDERS = ['namespace', 'workload', 'window'] as const;

/**
 * Placeholders of the production-rate override: those of the signal queries plus the primary service whose
 * traffic is mirrored (`{{service}}`, `{{serviceNamespace}}`), which only that query has a use for.
 */
export const PRODUCTION_QUERY_PLACEHOLDERS = [...QUERY_PLACEHOLDERS, 'service', 'serviceNamespace'] as const;
export type QueryPlaceholder = (typeof PRODUCTION_QUERY_PLACEHOLDERS)[number];

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
  service: 'service',
  serviceNamespace: 'namespace',
};

/** Where each string placeholder belongs, for the message about one written outside quotes. */
const EXAMPLE_MATCHER: Readonly<Record<Exclude<QueryPlaceholder, 'window'>, string>> = {
  namespace: 'namespace',
  workload: 'destination_workload',
  service: 'destination_service_name',
  serviceNamespace: 'destination_service_namespace',
};

/** Longest accepted query override; real ones are a few hundred characters, and parsing is not free. */
export const MAX_QUERY_LENGTH = 10_000;

/** A problem in a query template; `offset` is a character index into the template. */
export interface QueryProblem {
  readonly offset: number;
  readonly message: string;
}

function isPlaceholder(name: string, allowed: readonly QueryPlaceholder[]): name is QueryPlaceholder {
  return (allowed as readonly string[]).includes(name);
}

/** `{{a}}, {{b}} or {{c}}`. */
function placeholderList(allowed: readonly QueryPlaceholder[]): string {
  const names = allowed.map((p) => `{{${p}}}`);
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

/** The template with placeholders replaced, and a map from output offsets back to template offsets. */
/** Where a known placeholder landed in the substituted text. */
interface Placed {
  readonly name: QueryPlaceholder;
  /** Offset in the template, for messages. */
  readonly tpl: number;
  /** Span in the substituted text. */
  readonly from: number;
  readonly to: number;
}

function substitute(
  template: string,
  values: Readonly<Record<QueryPlaceholder, string>>,
  allowed: readonly QueryPlaceholder[],
): { text: string; toTemplate: (offset: number) => number; unknown: QueryProblem[]; placed: Placed[] } {
  const unknown: QueryProblem[] = [];
  const placed: Placed[] = [];
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
    if (isPlaceholder(name, allowed)) {
      placed.push({ name, tpl: start, from: text.length, to: text.length + values[name].length });
      text += values[name];
    } else {
      unknown.push({
        offset: start,
        message: `unknown placeholder ${truncate(m[0], 40)}; use ${placeholderList(allowed)}`,
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
  return { text, toTemplate, unknown, placed };
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/**
 * Functions that make up a value when the data is missing. A query that answers "0" or "1" for a target
 * with no series hides blindness from the controller, which would then raise instead of holding.
 */
const FABRICATING_FUNCTIONS: Readonly<Record<string, string>> = {
  Vector: 'vector()',
  Absent: 'absent()',
  AbsentOverTime: 'absent_over_time()',
};

/** Node spans of the parsed query that the semantic rules look at. */
interface Scan {
  errorAt?: number;
  selectors: number;
  strings: { from: number; to: number }[];
  durations: { from: number; to: number }[];
  /** Rule violations: where (offset in the substituted text) and what. */
  refused: { at: number; message: string }[];
}

function scan(text: string): Scan {
  const out: Scan = { selectors: 0, strings: [], durations: [], refused: [] };
  parser.parse(text).iterate({
    enter(node) {
      if (out.errorAt !== undefined) return false;
      if (node.type.isError) {
        out.errorAt = node.from;
        return false;
      }
      const span = { from: node.from, to: node.to };
      switch (node.type.name) {
        case 'VectorSelector':
          out.selectors++;
          break;
        case 'StringLiteral':
          out.strings.push(span);
          break;
        case 'DurationExpr':
        case 'OffsetDurationExpr':
          out.durations.push(span);
          break;
        case 'At':
          out.refused.push({
            at: node.from,
            message:
              'must not use the @ modifier: it pins the query to a fixed time, so old data would look current',
          });
          break;
        case 'Offset':
          out.refused.push({
            at: node.from,
            message: 'must not use offset: the controller must judge the data of now, not of another time',
          });
          break;
        case 'SubqueryExpr':
          out.refused.push({
            at: node.from,
            message:
              'must not use a subquery: its cost grows with range/resolution and runs for every policy every interval; use a range vector such as rate(x[{{window}}])',
          });
          break;
        default: {
          const fn = FABRICATING_FUNCTIONS[node.type.name];
          if (fn !== undefined) {
            out.refused.push({
              at: node.from,
              message: `must not use ${fn}: it makes up a value when series are missing, which hides missing data (missing data must hold the percentage)`,
            });
          }
        }
      }
      return true;
    },
  });
  return out;
}

const within = (spans: readonly { from: number; to: number }[], p: Placed): boolean =>
  spans.some((s) => s.from <= p.from && p.to <= s.to);

/**
 * Checks a query override: every placeholder is known and the query, with placeholders filled, parses as
 * PromQL (the Prometheus project's own Lezer grammar; the first error node is reported). A query that parses
 * must also be safe to run unattended: it reads at least one series; `{{namespace}}` and `{{workload}}` sit
 * inside quoted strings (a value outside quotes would be read as PromQL: `{{workload}}_total` with workload
 * `a-b` is `a - b_total`) and `{{window}}` inside a range or a string; and it uses no construct that hides
 * missing or old data (`vector()`, `absent()`, `@`, `offset`) or has unbounded cost (subqueries).
 * @param allowed the placeholders the template may use: those of a signal query unless told otherwise
 *   ({@link PRODUCTION_QUERY_PLACEHOLDERS} for the production-rate override).
 * @returns problems, empty when the template is usable.
 */
export function checkQueryTemplate(
  template: string,
  allowed: readonly QueryPlaceholder[] = QUERY_PLACEHOLDERS,
): QueryProblem[] {
  if (template.trim().length === 0) return [{ offset: 0, message: 'must not be empty' }];
  if (template.length > MAX_QUERY_LENGTH) {
    return [
      { offset: 0, message: `must be at most ${MAX_QUERY_LENGTH} characters (got ${template.length})` },
    ];
  }
  const { text, toTemplate, unknown, placed } = substitute(template, PARSE_PROBE_VALUES, allowed);
  const problems = [...unknown];
  const found = scan(text);
  if (found.errorAt !== undefined) {
    const at = toTemplate(found.errorAt);
    const rest = template.slice(at).replace(/\s+/g, ' ').trimEnd();
    const near = rest.length === 0 ? 'at the end of the query' : `near ${JSON.stringify(truncate(rest, 30))}`;
    problems.push({
      offset: at,
      message: `is not valid PromQL: syntax error at character ${at + 1}, ${near}`,
    });
    // Rules about meaning are only checked on a query that parses: on a broken one they would be noise.
    return problems;
  }
  for (const p of placed) {
    const ok = within(found.strings, p) || (p.name === 'window' && within(found.durations, p));
    if (!ok) {
      const where =
        p.name === 'window'
          ? 'inside a range such as [{{window}}] or a quoted string'
          : `inside a quoted label value such as ${EXAMPLE_MATCHER[p.name]}="{{${p.name}}}"`;
      problems.push({
        offset: p.tpl,
        message: `placeholder {{${p.name}}} must sit ${where}; elsewhere its value would be read as PromQL`,
      });
    }
  }
  for (const r of found.refused) problems.push({ offset: toTemplate(r.at), message: r.message });
  if (found.selectors === 0) {
    problems.push({
      offset: 0,
      message:
        'must read at least one series: a PromQL query made of constants only would report the same value whatever the target does',
    });
  }
  return problems.sort((a, b) => a.offset - b.offset);
}

/** The values a query template is rendered with. */
export interface QueryVars {
  readonly namespace: string;
  readonly workload: string;
  /** Rate window in seconds; rendered as a Prometheus duration such as `2m`. */
  readonly windowSeconds: number;
  /** The primary service of the mirrored route (production-rate override only). */
  readonly service?: string;
  readonly serviceNamespace?: string;
}

/**
 * Fills a validated query template. Namespace and workload are inserted verbatim: the policy loader has
 * already held them to DNS-1123 rules, so they cannot break out of a label matcher.
 * @throws Error when the template names a placeholder that {@link checkQueryTemplate} would have refused.
 */
export function renderQuery(template: string, vars: QueryVars): string {
  const values: Record<QueryPlaceholder, string | undefined> = {
    namespace: vars.namespace,
    workload: vars.workload,
    window: formatDuration(vars.windowSeconds),
    service: vars.service,
    serviceNamespace: vars.serviceNamespace,
  };
  return template.replace(PLACEHOLDER_RE, (whole, name: string) => {
    if (!isPlaceholder(name, PRODUCTION_QUERY_PLACEHOLDERS))
      throw new Error(`query template: unknown placeholder ${whole}`);
    const value = values[name];
    if (value === undefined) throw new Error(`query template: no value for ${whole}`);
    return value;
  });
}
