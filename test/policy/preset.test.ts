import { describe, expect, it } from 'vitest';
import { formatProblem, parsePolicy } from '../../src/policy/parse.js';
import { policyJsonSchema } from '../../src/policy/schema.js';
import { SIGNAL_PRESETS } from '../../src/policy/types.js';
import { BASE, edit } from './fixtures.js';

const F = 'policies/checkout.yaml';
// BASE ends at line 18; the appended block starts on line 19.
const withPreset = (value: string): string => edit([], `  signals:\n    preset: ${value}\n`);

describe('spec.signals.preset', () => {
  it('is absent from a policy that does not set it (istio by default)', () => {
    const { policy, problems } = parsePolicy(BASE, F);
    expect(problems).toEqual([]);
    expect(policy?.signalPreset).toBeUndefined();
  });

  for (const preset of SIGNAL_PRESETS) {
    it(`accepts ${preset}`, () => {
      const { policy, problems } = parsePolicy(withPreset(preset), F);
      expect(problems).toEqual([]);
      expect(policy?.signalPreset).toBe(preset);
    });
  }

  const rows: readonly { name: string; value: string; want: string }[] = [
    {
      name: 'an unknown value lists the allowed ones',
      value: 'linkerd',
      want: `${F}:20:13: spec.signals.preset: must be one of "istio", "istio-ambient", "otel" (got "linkerd")`,
    },
    {
      name: 'a near miss gets a suggestion',
      value: 'istio-ambiant',
      want: `${F}:20:13: spec.signals.preset: must be one of "istio", "istio-ambient", "otel" (got "istio-ambiant"); did you mean "istio-ambient"?`,
    },
    {
      name: 'case matters, with a suggestion',
      value: 'OTel',
      want: `${F}:20:13: spec.signals.preset: must be one of "istio", "istio-ambient", "otel" (got "OTel"); did you mean "otel"?`,
    },
    {
      name: 'a number is not a preset',
      value: '3',
      want: `${F}:20:13: spec.signals.preset: must be a string (got 3)`,
    },
    {
      name: 'an empty value',
      value: '""',
      want: `${F}:20:13: spec.signals.preset: must not be empty`,
    },
  ];
  for (const row of rows) {
    it(row.name, () => {
      const { policy, problems } = parsePolicy(withPreset(row.value), F);
      expect(policy).toBeUndefined();
      expect(problems.map(formatProblem)).toEqual([row.want]);
    });
  }

  it('refuses unknown keys under spec.signals with a suggestion', () => {
    const { problems } = parsePolicy(edit([], '  signals:\n    presett: otel\n'), F);
    expect(problems.map(formatProblem)).toEqual([
      `${F}:20:5: spec.signals.presett: unknown field (did you mean preset?)`,
    ]);
  });

  it('appears in the JSON Schema as an enum with its default', () => {
    const spec = (policyJsonSchema().properties as Record<string, { properties: Record<string, unknown> }>)
      .spec;
    const signals = spec?.properties.signals as { properties: { preset: Record<string, unknown> } };
    expect(signals.properties.preset).toMatchObject({
      type: 'string',
      enum: ['istio', 'istio-ambient', 'otel'],
      default: 'istio',
    });
    expect(signals.properties.preset.description).toMatch(/k8s_namespace_name/);
  });
});
