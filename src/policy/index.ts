/** Policy files: format, validation, loading and JSON Schema. The daemon and the CLI share this module. */
export { formatDuration, parseDuration } from './duration.js';
export {
  findConflicts,
  loadPolicyDir,
  loadPolicyDirOrThrow,
  loadPolicyFile,
  MAX_POLICY_DIR_BYTES,
  MAX_POLICY_FILES,
  POLICY_EXTENSIONS,
} from './load.js';
export {
  formatProblem,
  MAX_ALIASES,
  MAX_EXPANDED_NODES,
  MAX_POLICY_BYTES,
  MAX_PROBLEMS,
  type ParsedPolicy,
  type PolicyAnchors,
  PolicyError,
  type Position,
  parsePolicy,
  parsePolicyDetailed,
} from './parse.js';
export { checkQueryTemplate, QUERY_PLACEHOLDERS, type QueryVars, renderQuery } from './query.js';
export { policyJsonSchema, policyJsonSchemaText } from './schema.js';
export {
  API_VERSION,
  DEFAULT_SIGNAL_PRESET,
  KIND,
  type MirrorPolicy,
  type Problem,
  SIGNAL_PRESETS,
  type SignalPreset,
} from './types.js';
