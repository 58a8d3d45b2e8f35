/**
 * The policy format, declared once. The validator (parse.ts) walks this tree to check a YAML document, and
 * the JSON Schema (schema.ts) is generated from it, so the two cannot drift apart.
 */
import {
  DEFAULT_CONTROL,
  DEFAULT_INTERVAL_SECONDS,
  DEFAULT_OBSERVATION_TIMING,
  DEFAULT_WINDOW_SECONDS,
} from '../core/defaults.js';
import { formatDuration } from './duration.js';
import {
  DNS1123_LABEL,
  DNS1123_SUBDOMAIN,
  HOSTNAME,
  ROUTE_NAME,
  SECTION_NAME,
  type StringRule,
} from './names.js';
import { PRODUCTION_QUERY_PLACEHOLDERS, type QueryPlaceholder } from './query.js';
import { API_VERSION, DEFAULT_SIGNAL_PRESET, KIND, SIGNAL_PRESETS } from './types.js';

interface FieldBase {
  readonly description: string;
}

/** A mapping with a closed set of keys. */
export interface ObjectField extends FieldBase {
  readonly kind: 'object';
  readonly properties: Readonly<Record<string, Field>>;
  readonly required: readonly string[];
  /** Refuse an empty mapping, naming the keys that could be set. */
  readonly atLeastOne?: true;
  /** Exactly one of these keys must be set (JSON Schema `oneOf` of `required`). */
  readonly exactlyOne?: readonly string[];
}

/** A string that must equal one value (apiVersion, kind). */
export interface ConstField extends FieldBase {
  readonly kind: 'const';
  readonly value: string;
}

/** A string held to a name rule. */
export interface NameField extends FieldBase {
  readonly kind: 'name';
  readonly rule: StringRule;
}

/** A finite number with optional bounds. */
export interface NumberField extends FieldBase {
  readonly kind: 'number';
  readonly integer?: true;
  readonly minimum?: number;
  readonly exclusiveMinimum?: number;
  readonly maximum?: number;
  readonly exclusiveMaximum?: number;
  /** Appended to range errors, to say what the unit is. */
  readonly hint?: string;
  readonly default?: number;
}

/** A Prometheus duration string with bounds in seconds. */
export interface DurationField extends FieldBase {
  readonly kind: 'duration';
  readonly minSeconds: number;
  readonly maxSeconds: number;
  readonly default?: string;
}

/** A PromQL template (checked by query.ts). */
export interface QueryField extends FieldBase {
  readonly kind: 'query';
  /** Placeholders it may use; default those of a signal query ({{namespace}}, {{workload}}, {{window}}). */
  readonly placeholders?: readonly QueryPlaceholder[];
}

/** A Gateway API rule: its `name` (a string held to `rule`) or its index in `spec.rules` (an integer >= 0). */
export interface RuleRefField extends FieldBase {
  readonly kind: 'ruleRef';
  readonly rule: StringRule;
}

/** A string that must be one of a closed list of values. */
export interface EnumField extends FieldBase {
  readonly kind: 'enum';
  readonly values: readonly string[];
  readonly default?: string;
}

export type Field =
  | ObjectField
  | ConstField
  | NameField
  | NumberField
  | DurationField
  | QueryField
  | RuleRefField
  | EnumField;

const HOUR = 3600;
const DAY = 24 * HOUR;

/** Upper limit of a CPU guardrail; a larger value is almost surely a percentage written as 80 instead of 0.8. */
export const MAX_CPU_UTILIZATION = 10;

const control: ObjectField = {
  kind: 'object',
  description: 'Tuning of the control law. Every field is optional; defaults suit most services.',
  required: [],
  properties: {
    hysteresis: {
      kind: 'number',
      description:
        'Hold band: while every guardrail is between (1 - hysteresis) and 100 % of its limit, the percentage holds.',
      minimum: 0,
      exclusiveMaximum: 1,
      default: DEFAULT_CONTROL.hysteresis,
    },
    maxIncreaseFactor: {
      kind: 'number',
      description:
        'Largest multiplicative raise per cycle (1.5 = at most +50 %); 1 means additive steps only.',
      minimum: 1,
      maximum: 10,
      default: DEFAULT_CONTROL.maxIncreaseFactor,
    },
    increaseStepPercent: {
      kind: 'number',
      description:
        'Additive raise per cycle in percentage points; also the first step from 0 % (cold start).',
      exclusiveMinimum: 0,
      maximum: 100,
      default: DEFAULT_CONTROL.increaseStepPercent,
    },
    cooldown: {
      kind: 'duration',
      description:
        'No increase for this long after a decrease, while rate windows flush; 0s derives it from window and interval.',
      minSeconds: 0,
      maxSeconds: DAY,
      default: formatDuration(DEFAULT_CONTROL.cooldownSeconds),
    },
    blindHold: {
      kind: 'duration',
      description: 'After this long without usable data the percentage decays toward minPercent.',
      minSeconds: 0,
      maxSeconds: DAY,
      default: formatDuration(DEFAULT_CONTROL.blindHoldSeconds),
    },
    minChangePercent: {
      kind: 'number',
      description: 'Changes smaller than this many percentage points are not written.',
      minimum: 0,
      maximum: 100,
      default: DEFAULT_CONTROL.minChangePercent,
    },
    maxWritesPerHour: {
      kind: 'number',
      description: 'Upper bound on route writes per rolling hour; decreases for a breach always go through.',
      integer: true,
      minimum: 1,
      maximum: 3600,
      default: DEFAULT_CONTROL.maxWritesPerHour,
    },
    breachMemory: {
      kind: 'duration',
      description: 'How long the percentage at the last breach is remembered (raises slow down near it).',
      minSeconds: 0,
      maxSeconds: 7 * DAY,
      default: formatDuration(DEFAULT_CONTROL.breachMemorySeconds),
    },
  },
};

const queryField = (signal: string): QueryField => ({
  kind: 'query',
  description: `PromQL returning one number for ${signal}, replacing the built-in query. Placeholders: {{namespace}}, {{workload}}, {{window}}.`,
});

/** Longest scrape interval a policy may declare; slower scrapes cannot feed a controller that acts in minutes. */
export const MAX_SCRAPE_INTERVAL_SECONDS = 5 * 60;
/** Longest route propagation a policy may declare. */
export const MAX_PROPAGATION_SECONDS = 5 * 60;

const observation: ObjectField = {
  kind: 'object',
  description:
    'How the signals are observed: the dead time between a write and the readings that show it. Both optional; the scrape interval is otherwise learned from the samples in Prometheus.',
  required: [],
  properties: {
    scrapeInterval: {
      kind: 'duration',
      description:
        "Seconds between two samples of the mirror target's series; overrides the interval learned from Prometheus. spec.window must be at least twice as long.",
      minSeconds: 1,
      maxSeconds: MAX_SCRAPE_INTERVAL_SECONDS,
    },
    propagation: {
      kind: 'duration',
      description: 'Time from a route write until the proxies mirror at the new percentage.',
      minSeconds: 0,
      maxSeconds: MAX_PROPAGATION_SECONDS,
      default: formatDuration(DEFAULT_OBSERVATION_TIMING.propagationSeconds),
    },
  },
};

const production: ObjectField = {
  kind: 'object',
  description:
    "The primary service whose traffic is mirrored; its request rate lets the percentage follow production. Default: the managed route's primary destination (VirtualService) or backendRef (Gateway API rule) with the largest weight.",
  required: ['service'],
  properties: {
    service: {
      kind: 'name',
      rule: DNS1123_LABEL,
      description: 'Kubernetes Service name of the primary (Istio destination_service_name).',
    },
    namespace: {
      kind: 'name',
      rule: DNS1123_LABEL,
      description: "Namespace of the primary service; defaults to the route's namespace.",
    },
  },
};

/** `spec.httpRoute` / `spec.grpcRoute`: a Gateway API route and the rule whose mirror filter is managed. */
const gatewayRoute = (kind: 'HTTPRoute' | 'GRPCRoute'): ObjectField => ({
  kind: 'object',
  description: `The Gateway API ${kind} (gateway.networking.k8s.io) whose RequestMirror filter percentage is managed.`,
  required: ['name', 'namespace'],
  properties: {
    name: { kind: 'name', rule: DNS1123_SUBDOMAIN, description: `${kind} name.` },
    namespace: { kind: 'name', rule: DNS1123_LABEL, description: `${kind} namespace.` },
    rule: {
      kind: 'ruleRef',
      rule: SECTION_NAME,
      description:
        'The rule: its name (spec.rules[].name) or its index in spec.rules; omitted = the one rule whose RequestMirror filter copies to target.backendRef.',
    },
  },
});

const signals: ObjectField = {
  kind: 'object',
  description:
    'Where the request signals (error rate, p99 latency, request and production rates) are read from.',
  required: [],
  properties: {
    preset: {
      kind: 'enum',
      values: SIGNAL_PRESETS,
      default: DEFAULT_SIGNAL_PRESET,
      description:
        'Metric family of the built-in queries. istio: Istio sidecar metrics (istio_requests_total, istio_request_duration_milliseconds) with reporter="destination". ' +
        'istio-ambient: the same metrics from waypoint proxies, reporter="waypoint" (ztunnel reports TCP only); the target\'s namespace or service must use a waypoint (istio.io/use-waypoint). ' +
        'otel: OpenTelemetry HTTP server metrics (http.server.request.duration, exported as http_server_request_duration_seconds_bucket/_count with label http_response_status_code), ' +
        'selected by the resource attributes k8s.namespace.name and k8s.deployment.name, which must be promoted to the labels k8s_namespace_name and k8s_deployment_name ' +
        "(Prometheus otlp.promote_resource_attributes, or resource_to_telemetry_conversion in the Collector's Prometheus exporters); under otel the primary's production rate is read from the Deployment named like spec.production.service. " +
        "CPU always comes from cAdvisor and kube-state-metrics; spec.queries overrides replace the preset's query for their signal.",
    },
  },
};

/** The whole MirrorPolicy document. */
export const POLICY_SPEC: ObjectField = {
  kind: 'object',
  description:
    'A MirrorPolicy: keeps the mirror percentage of one route (Istio VirtualService, Gateway API HTTPRoute or GRPCRoute) as high as its mirror target can safely take.',
  required: ['apiVersion', 'kind', 'metadata', 'spec'],
  properties: {
    apiVersion: { kind: 'const', value: API_VERSION, description: 'Version of the policy format.' },
    kind: { kind: 'const', value: KIND, description: 'Always MirrorPolicy.' },
    metadata: {
      kind: 'object',
      description: 'Identity of the policy.',
      required: ['name'],
      properties: {
        name: {
          kind: 'name',
          rule: DNS1123_LABEL,
          description: 'Policy name, unique across all policy files; used in logs, metrics and events.',
        },
      },
    },
    spec: {
      kind: 'object',
      description: 'What to control and within which limits.',
      required: ['target', 'bounds', 'guardrails'],
      exactlyOne: ['virtualService', 'httpRoute', 'grpcRoute'],
      properties: {
        virtualService: {
          kind: 'object',
          description:
            'The Istio VirtualService whose mirror percentage is managed (one of virtualService, httpRoute, grpcRoute).',
          required: ['name', 'namespace'],
          properties: {
            name: { kind: 'name', rule: DNS1123_SUBDOMAIN, description: 'VirtualService name.' },
            namespace: { kind: 'name', rule: DNS1123_LABEL, description: 'VirtualService namespace.' },
            route: {
              kind: 'name',
              rule: ROUTE_NAME,
              description: 'Name of the http route; omitted = every http route that mirrors to target.host.',
            },
          },
        },
        httpRoute: gatewayRoute('HTTPRoute'),
        grpcRoute: gatewayRoute('GRPCRoute'),
        target: {
          kind: 'object',
          description:
            'The mirror target (shadow service) whose health bounds the percentage: host for a VirtualService, backendRef for an HTTPRoute or GRPCRoute.',
          required: ['workload'],
          exactlyOne: ['host', 'backendRef'],
          properties: {
            host: {
              kind: 'name',
              rule: HOSTNAME,
              description:
                'VirtualService: mirror destination host exactly as written in the VirtualService.',
            },
            subset: {
              kind: 'name',
              rule: DNS1123_LABEL,
              description: 'VirtualService: mirror destination subset, when the route mirrors to a subset.',
            },
            backendRef: {
              kind: 'object',
              description:
                "HTTPRoute / GRPCRoute: the Service the RequestMirror filter's backendRef names (kind Service).",
              required: ['name'],
              properties: {
                name: { kind: 'name', rule: DNS1123_LABEL, description: 'Service name.' },
                namespace: {
                  kind: 'name',
                  rule: DNS1123_LABEL,
                  description: "Service namespace; defaults to the route's namespace, as in the filter.",
                },
                port: {
                  kind: 'number',
                  integer: true,
                  minimum: 1,
                  maximum: 65535,
                  description: "Service port; when set, the filter's backendRef.port must equal it.",
                },
              },
            },
            workload: {
              kind: 'name',
              rule: DNS1123_SUBDOMAIN,
              description: 'Istio destination_workload of the mirror target (usually its Deployment name).',
            },
            namespace: {
              kind: 'name',
              rule: DNS1123_LABEL,
              description:
                "Namespace of the mirror target workload; defaults to target.backendRef.namespace, else the route's namespace.",
            },
          },
        },
        bounds: {
          kind: 'object',
          description: 'The percentage never leaves [minPercent, maxPercent].',
          required: ['minPercent', 'maxPercent'],
          properties: {
            minPercent: {
              kind: 'number',
              description: 'Lowest mirror percentage (0-100, decimals allowed).',
              minimum: 0,
              maximum: 100,
            },
            maxPercent: {
              kind: 'number',
              description: 'Highest mirror percentage (0-100, decimals allowed), at least minPercent.',
              minimum: 0,
              maximum: 100,
            },
          },
        },
        guardrails: {
          kind: 'object',
          description: 'Limits on the mirror target; at least one. A breach of any cuts the percentage.',
          required: [],
          atLeastOne: true,
          properties: {
            cpuUtilization: {
              kind: 'number',
              description:
                'CPU used / CPU requested, as a ratio (0.8 = 80 %); may exceed 1 when limits allow.',
              exclusiveMinimum: 0,
              maximum: MAX_CPU_UTILIZATION,
              hint: 'a ratio of requested CPU: 0.8 means 80 %',
            },
            errorRate: {
              kind: 'number',
              description: 'Share of 5xx responses, as a ratio (0.01 = 1 %).',
              exclusiveMinimum: 0,
              maximum: 1,
              hint: 'a ratio: 0.01 means 1 %',
            },
            latencyP99Ms: {
              kind: 'number',
              description: 'p99 request latency in milliseconds.',
              exclusiveMinimum: 0,
            },
          },
        },
        interval: {
          kind: 'duration',
          description: 'How often the policy is evaluated.',
          minSeconds: 1,
          maxSeconds: HOUR,
          default: formatDuration(DEFAULT_INTERVAL_SECONDS),
        },
        window: {
          kind: 'duration',
          description:
            'PromQL rate window ({{window}}); at least the interval, so that no sample goes unseen.',
          minSeconds: 1,
          maxSeconds: HOUR,
          default: formatDuration(DEFAULT_WINDOW_SECONDS),
        },
        queries: {
          kind: 'object',
          description:
            'PromQL overrides of the built-in queries; each signal query needs the matching guardrail.',
          required: [],
          properties: {
            cpuUtilization: queryField('CPU utilisation (ratio)'),
            errorRate: queryField('the error rate (ratio)'),
            latencyP99Ms: queryField('p99 latency in milliseconds'),
            productionRate: {
              kind: 'query',
              description:
                'PromQL returning one number: production requests/s of the mirrored route (primary side, mirrored copies not counted), replacing the built-in query. Placeholders: {{namespace}}, {{workload}}, {{window}}, {{service}}, {{serviceNamespace}}.',
              placeholders: PRODUCTION_QUERY_PLACEHOLDERS,
            },
          },
        },
        production,
        observation,
        signals,
        control,
      },
    },
  },
};
