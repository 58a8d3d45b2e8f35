/**
 * The MirrorPolicy CustomResourceDefinition (`mirrorpolicies.mirror-autoscaler.io`, namespaced, v1alpha1),
 * generated from the same field tree as the validator and the JSON Schema (spec.ts), so the three cannot
 * drift apart. The committed deploy/crd/mirrorpolicies.yaml is this output; a test keeps the two equal.
 *
 * The CRD holds what an OpenAPI structural schema can: types, ranges, name patterns and lengths, durations,
 * required fields, enums; "exactly one of" and minPercent <= maxPercent as CEL rules
 * (`x-kubernetes-validations`). Unknown fields are pruned by the API server, and refused by
 * `kubectl apply` (which asks for strict field validation). Rules that need the policy's code (PromQL
 * syntax, window >= interval, a query needs its guardrail) are left to `mirror-autoscaler validate`.
 */
import { stringify } from 'yaml';
import { DURATION_PATTERN } from './duration.js';
import { type Json, stringFieldSchema } from './schema.js';
import { type Field, type ObjectField, POLICY_SPEC } from './spec.js';
import { API_VERSION, KIND } from './types.js';

export const CRD_GROUP = API_VERSION.split('/')[0] as string;
export const CRD_VERSION = API_VERSION.split('/')[1] as string;
export const CRD_PLURAL = 'mirrorpolicies';
export const CRD_NAME = `${CRD_PLURAL}.${CRD_GROUP}`;

type JsonObject = { [key: string]: Json };

/** The CEL rule for "exactly one of these keys is set". */
export function exactlyOneRule(keys: readonly string[]): { rule: string; message: string } {
  return {
    rule: `[${keys.map((k) => `has(self.${k})`).join(', ')}].filter(x, x).size() == 1`,
    message: `must set exactly one of ${keys.join(', ')}`,
  };
}

/** The CEL rule for minPercent <= maxPercent. */
export const BOUNDS_RULE = {
  rule: 'self.minPercent <= self.maxPercent',
  message: 'minPercent must be <= maxPercent',
} as const;

/** metadata.name is a DNS-1123 label: it ends up in annotation keys, metrics labels and Events. */
export const NAME_RULE = {
  rule: "self.metadata.name.size() <= 63 && self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",
  message: 'metadata.name must be a DNS-1123 label: lowercase letters, digits and "-", at most 63 characters',
} as const;

/** The CEL rule of a Gateway API rule reference: a SectionName, or an index >= 0. */
export function ruleRefRule(pattern: string): { rule: string; message: string } {
  return {
    rule: `type(self) == int ? self >= 0 : self.matches('${pattern}')`,
    message: 'must be a rule name (a DNS-1123 subdomain) or the rule index (an integer >= 0)',
  };
}

function fieldSchema(field: Field, path: string): JsonObject {
  const description = field.description;
  switch (field.kind) {
    case 'object':
      return objectSchema(field, path);
    case 'const':
      return { type: 'string', description, enum: [field.value] };
    case 'name':
    case 'query':
    case 'enum':
      return stringFieldSchema(field);
    case 'number': {
      const out: JsonObject = { type: field.integer ? 'integer' : 'number', description };
      if (field.minimum !== undefined) out.minimum = field.minimum;
      if (field.exclusiveMinimum !== undefined) {
        out.minimum = field.exclusiveMinimum;
        out.exclusiveMinimum = true;
      }
      if (field.maximum !== undefined) out.maximum = field.maximum;
      if (field.exclusiveMaximum !== undefined) {
        out.maximum = field.exclusiveMaximum;
        out.exclusiveMaximum = true;
      }
      return out;
    }
    case 'duration':
      return {
        type: 'string',
        description: `${description} Prometheus duration, e.g. 30s, 2m, 1h30m.`,
        pattern: DURATION_PATTERN,
      };
    case 'ruleRef':
      return {
        description,
        'x-kubernetes-int-or-string': true,
        'x-kubernetes-validations': [ruleRefRule(field.rule.pattern)],
      };
  }
}

function objectSchema(field: ObjectField, path: string): JsonObject {
  const properties: JsonObject = {};
  for (const [name, sub] of Object.entries(field.properties))
    properties[name] = fieldSchema(sub, `${path}.${name}`);
  const rules: Json[] = [];
  if (field.exactlyOne !== undefined) rules.push(exactlyOneRule(field.exactlyOne));
  if (path === 'spec.bounds') rules.push(BOUNDS_RULE);
  return {
    type: 'object',
    description: field.description,
    properties,
    ...(field.required.length > 0 ? { required: [...field.required] } : {}),
    ...(field.atLeastOne ? { minProperties: 1 } : {}),
    ...(rules.length > 0 ? { 'x-kubernetes-validations': rules } : {}),
  };
}

/** The `spec` schema of the CRD. */
export function crdSpecSchema(): JsonObject {
  const spec = POLICY_SPEC.properties.spec;
  if (spec?.kind !== 'object') throw new Error('the policy format has no spec object');
  return fieldSchema(spec, 'spec');
}

/** The CustomResourceDefinition, as an object. */
export function policyCrd(): JsonObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: CRD_NAME, labels: { 'app.kubernetes.io/name': 'mirror-autoscaler' } },
    spec: {
      group: CRD_GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: CRD_PLURAL,
        singular: 'mirrorpolicy',
        shortNames: ['mp'],
      },
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Workload', type: 'string', jsonPath: '.spec.target.workload' },
            { name: 'Min', type: 'number', jsonPath: '.spec.bounds.minPercent' },
            { name: 'Max', type: 'number', jsonPath: '.spec.bounds.maxPercent' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: POLICY_SPEC.description,
              required: ['spec'],
              'x-kubernetes-validations': [NAME_RULE],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: crdSpecSchema(),
                status: {
                  type: 'object',
                  description: 'Written by the controller: what it last read, decided and wrote.',
                  'x-kubernetes-preserve-unknown-fields': true,
                },
              },
            },
          },
        },
      ],
    },
  };
}

/** The CRD as the exact text of deploy/base/crd-mirrorpolicies.yaml. */
export function policyCrdText(): string {
  return `# Generated by \`mirror-autoscaler schema --crd\` from the policy format; do not edit.\n${stringify(policyCrd(), { lineWidth: 0 })}`;
}
