/**
 * JSON Schema (draft 2020-12) of the policy format, generated from the field tree in spec.ts. The committed
 * schema/mirror-policy.schema.json is this output; a test keeps the two equal.
 *
 * The schema covers what editors can check per field. Rules that span fields (minPercent <= maxPercent,
 * window >= interval, a query needs its guardrail), PromQL syntax and unique names are left to `validate`.
 */
import { DURATION_PATTERN } from './duration.js';
import { MAX_QUERY_LENGTH } from './query.js';
import type { EnumField, Field, NameField, QueryField } from './spec.js';
import { POLICY_SPEC } from './spec.js';

/** A JSON value, as the schema document is one. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/**
 * The schema of a string field held to a name rule, a PromQL template or a closed list of values: the same
 * in the JSON Schema and in the CRD's OpenAPI schema.
 */
export function stringFieldSchema(field: NameField | QueryField | EnumField): { [key: string]: Json } {
  const description = field.description;
  switch (field.kind) {
    case 'name':
      return {
        type: 'string',
        description,
        minLength: 1,
        maxLength: field.rule.maxLength,
        pattern: field.rule.pattern,
      };
    case 'query':
      return { type: 'string', description, minLength: 1, maxLength: MAX_QUERY_LENGTH };
    case 'enum':
      return {
        type: 'string',
        description,
        enum: [...field.values],
        ...(field.default === undefined ? {} : { default: field.default }),
      };
  }
}

function fieldSchema(field: Field): { [key: string]: Json } {
  const description = field.description;
  switch (field.kind) {
    case 'object': {
      const properties: { [key: string]: Json } = {};
      for (const [name, sub] of Object.entries(field.properties)) properties[name] = fieldSchema(sub);
      return {
        type: 'object',
        description,
        properties,
        ...(field.required.length > 0 ? { required: [...field.required] } : {}),
        ...(field.atLeastOne ? { minProperties: 1 } : {}),
        ...(field.exactlyOne === undefined
          ? {}
          : { oneOf: field.exactlyOne.map((key): Json => ({ required: [key] })) }),
        additionalProperties: false,
      };
    }
    case 'const':
      return { type: 'string', description, const: field.value };
    case 'name':
    case 'query':
    case 'enum':
      return stringFieldSchema(field);
    case 'number': {
      const out: { [key: string]: Json } = { type: field.integer ? 'integer' : 'number', description };
      if (field.minimum !== undefined) out.minimum = field.minimum;
      if (field.exclusiveMinimum !== undefined) out.exclusiveMinimum = field.exclusiveMinimum;
      if (field.maximum !== undefined) out.maximum = field.maximum;
      if (field.exclusiveMaximum !== undefined) out.exclusiveMaximum = field.exclusiveMaximum;
      if (field.default !== undefined) out.default = field.default;
      return out;
    }
    case 'duration':
      return {
        type: 'string',
        description: `${description} Prometheus duration, e.g. 30s, 2m, 1h30m.`,
        pattern: DURATION_PATTERN,
        ...(field.default === undefined ? {} : { default: field.default }),
      };
    case 'ruleRef':
      return {
        description,
        oneOf: [
          { type: 'string', minLength: 1, maxLength: field.rule.maxLength, pattern: field.rule.pattern },
          { type: 'integer', minimum: 0 },
        ],
      };
  }
}

/** The JSON Schema of a MirrorPolicy document. */
export function policyJsonSchema(): { [key: string]: Json } {
  const { type, description, ...rest } = fieldSchema(POLICY_SPEC);
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'MirrorPolicy',
    description: description ?? null,
    type: type ?? 'object',
    ...rest,
  };
}

/** The schema as the exact text of schema/mirror-policy.schema.json (2-space JSON, trailing newline). */
export function policyJsonSchemaText(): string {
  return `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;
}
