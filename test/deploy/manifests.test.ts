/**
 * The in-cluster install under deploy/ and the Dockerfile. kustomize and kubectl are not needed: a small
 * renderer below implements exactly the kustomize features the manifests use (resources, namespace,
 * images, configMapGenerator with create/replace, strategic-merge patches including `$patch: delete`) and
 * refuses any other, so it cannot silently disagree with kustomize. Rendered objects are checked against
 * the Kubernetes OpenAPI models shipped with @kubernetes/client-node (unknown fields, types, required
 * fields), the ServiceMonitor and the PrometheusRule against the Prometheus Operator fields they use, and
 * every PromQL expression in the Grafana dashboard and the alerts against the metric contract (the alerts'
 * behaviour is tested with promtool in alerts.test.ts).
 */
import { execFileSync } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parser } from '@prometheus-io/lezer-promql';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
import { REASONS } from '../../src/core/types.js';
import { DaemonMetrics } from '../../src/daemon/metrics.js';

const ROOT = resolve(import.meta.dirname, '..', '..');
const DEPLOY = join(ROOT, 'deploy');
const NAMESPACE = 'mirror-autoscaler';
const APP = 'mirror-autoscaler';
const METRICS_PORT = 9464;
const POLICIES_MOUNT = '/etc/mirror-autoscaler/policies';

type Json = Record<string, unknown>;

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A field of a parsed document, narrowed to a record; fails with the path when it is not one. */
function rec(value: unknown, what: string): Json {
  if (!isRecord(value)) throw new Error(`${what}: expected a mapping, got ${JSON.stringify(value)}`);
  return value;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`${what}: expected a list, got ${JSON.stringify(value)}`);
  return value;
}

function str(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new Error(`${what}: expected a string, got ${JSON.stringify(value)}`);
  return value;
}

function rel(path: string): string {
  return relative(ROOT, path);
}

/** Every file under `dir`, recursively, sorted. */
function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]))
    .sort();
}

/** All documents of a YAML file; a syntax error, a duplicate key or a warning is an error naming the file. */
function loadYaml(path: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(path, 'utf8'), { uniqueKeys: true });
  const out: unknown[] = [];
  for (const doc of docs) {
    const issue = doc.errors[0] ?? doc.warnings[0];
    if (issue !== undefined) throw new Error(`${rel(path)}: ${issue.message}`);
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// A minimal kustomize: just the features used under deploy/, and an error for anything else.

interface Resource extends Json {
  apiVersion: string;
  kind: string;
  metadata: Json & { name: string; namespace?: string };
}

interface Rendered {
  resources: Resource[];
  /** Every file the kustomization (and its bases) read: resources, patches, generator sources. */
  files: Set<string>;
}

const KUSTOMIZATION_FIELDS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'patches',
  'configMapGenerator',
  'images',
]);
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
]);
/** Strategic-merge keys of the lists the patches touch (from the Kubernetes API's patchMergeKey). */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
};

function asResource(doc: unknown, where: string): Resource {
  const r = rec(doc, where);
  const meta = rec(r.metadata, `${where}: metadata`);
  str(r.apiVersion, `${where}: apiVersion`);
  str(r.kind, `${where}: kind`);
  str(meta.name, `${where}: metadata.name`);
  return r as Resource;
}

function id(r: Resource): string {
  const group = r.apiVersion.includes('/') ? r.apiVersion.split('/')[0] : '';
  return `${group}/${r.kind}/${r.metadata.namespace ?? ''}/${r.metadata.name}`;
}

/** Kustomize's load restriction: a file must lie in or below the kustomization root, symlinks resolved. */
function inside(root: string, file: string, where: string): string {
  const path = resolve(root, file);
  if (!existsSync(path)) throw new Error(`${where}: ${file} does not exist`);
  const real = realpathSync(path);
  if (!real.startsWith(realpathSync(root) + sep)) {
    throw new Error(`${where}: ${file} is not in or below ${rel(root)} (kustomize refuses it)`);
  }
  return path;
}

function strategicMerge(target: unknown, patch: unknown, field: string, where: string): unknown {
  if (isRecord(target) && isRecord(patch)) {
    const out: Json = { ...target };
    for (const [key, value] of Object.entries(patch)) {
      if (key.startsWith('$')) throw new Error(`${where}: directive ${key} at ${field} is not supported`);
      if (value === null) delete out[key];
      else out[key] = key in target ? strategicMerge(target[key], value, key, where) : value;
    }
    return out;
  }
  if (Array.isArray(target) && Array.isArray(patch)) {
    const key = MERGE_KEYS[field];
    if (key === undefined) throw new Error(`${where}: no strategic-merge key known for list "${field}"`);
    const out = [...target];
    for (const item of patch) {
      const wanted = rec(item, `${where}: ${field}[]`)[key];
      const at = out.findIndex((t) => isRecord(t) && t[key] === wanted);
      if (at === -1) out.push(item);
      else out[at] = strategicMerge(out[at], item, field, where);
    }
    return out;
  }
  return patch;
}

function applyPatch(resources: Resource[], patch: Json, where: string): Resource[] {
  const target = asResource(patch, where);
  const matches = (r: Resource): boolean =>
    r.kind === target.kind &&
    r.metadata.name === target.metadata.name &&
    (target.metadata.namespace === undefined || r.metadata.namespace === target.metadata.namespace);
  const found = resources.filter(matches);
  if (found.length !== 1) {
    throw new Error(
      `${where}: patch target ${target.kind}/${target.metadata.name} matches ${found.length} resources`,
    );
  }
  const { $patch: directive, ...body } = patch;
  if (directive === 'delete') return resources.filter((r) => !matches(r));
  if (directive !== undefined) throw new Error(`${where}: $patch: ${String(directive)} is not supported`);
  return resources.map((r) => (matches(r) ? asResource(strategicMerge(r, body, '', where), where) : r));
}

/** Renders a kustomization directory the way `kustomize build` does, for the features listed above. */
function kustomize(dir: string): Rendered {
  const file = join(dir, 'kustomization.yaml');
  if (!existsSync(file)) throw new Error(`${rel(dir)}: no kustomization.yaml`);
  const [doc] = loadYaml(file);
  const k = rec(doc, rel(file));
  const where = rel(file);
  for (const key of Object.keys(k)) {
    if (!KUSTOMIZATION_FIELDS.has(key))
      throw new Error(`${where}: field ${key} is not supported by this renderer`);
  }
  if (k.apiVersion !== 'kustomize.config.k8s.io/v1beta1' || k.kind !== 'Kustomization') {
    throw new Error(`${where}: expected kustomize.config.k8s.io/v1beta1 Kustomization`);
  }
  const files = new Set<string>([file]);
  let resources: Resource[] = [];
  for (const [i, entry] of list(k.resources ?? [], `${where}: resources`).entries()) {
    const ref = str(entry, `${where}: resources[${i}]`);
    const path = resolve(dir, ref);
    if (!existsSync(path)) throw new Error(`${where}: resources[${i}]: ${ref} does not exist`);
    if (statSync(path).isDirectory()) {
      // A base may live outside the root: kustomize treats it as an import with its own restriction.
      const base = kustomize(path);
      resources.push(...base.resources);
      for (const f of base.files) files.add(f);
    } else {
      inside(dir, ref, `${where}: resources[${i}]`);
      files.add(path);
      resources.push(...loadYaml(path).map((d, n) => asResource(d, `${rel(path)}#${n}`)));
    }
  }
  for (const [i, entry] of list(k.configMapGenerator ?? [], `${where}: configMapGenerator`).entries()) {
    const g = rec(entry, `${where}: configMapGenerator[${i}]`);
    const at = `${where}: configMapGenerator[${i}]`;
    const options = rec(g.options ?? {}, `${at}.options`);
    // Name hashing would rename the ConfigMap and every reference to it; the manifests opt out of it on
    // purpose (hot reload), so this renderer does not implement it.
    if (options.disableNameSuffixHash !== true) throw new Error(`${at}: name hashing is not supported`);
    const data: Record<string, string> = {};
    for (const [j, source] of list(g.files, `${at}.files`).entries()) {
      const spec = str(source, `${at}.files[${j}]`);
      const [key, path] = spec.includes('=')
        ? (spec.split('=', 2) as [string, string])
        : [basename(spec), spec];
      const full = inside(dir, path, `${at}.files[${j}]`);
      if (key in data) throw new Error(`${at}: key ${key} appears twice`);
      data[key] = readFileSync(full, 'utf8');
      files.add(full);
    }
    const name = str(g.name, `${at}.name`);
    const namespace =
      typeof g.namespace === 'string'
        ? g.namespace
        : typeof k.namespace === 'string'
          ? k.namespace
          : undefined;
    const configMap: Resource = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name,
        ...(namespace === undefined ? {} : { namespace }),
        ...(options.labels === undefined ? {} : { labels: options.labels }),
        ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
      },
      data,
    };
    const existing = resources.findIndex((r) => id(r) === id(configMap));
    const behavior = g.behavior ?? 'create';
    if (behavior === 'create') {
      if (existing !== -1) throw new Error(`${at}: ConfigMap ${namespace}/${name} already exists`);
      resources.push(configMap);
    } else if (behavior === 'replace') {
      if (existing === -1) throw new Error(`${at}: no ConfigMap ${namespace}/${name} to replace`);
      resources[existing] = configMap;
    } else {
      throw new Error(`${at}: behavior ${String(behavior)} is not supported`);
    }
  }
  for (const [i, entry] of list(k.patches ?? [], `${where}: patches`).entries()) {
    const p = rec(entry, `${where}: patches[${i}]`);
    if (p.target !== undefined)
      throw new Error(`${where}: patches[${i}]: targeted patches are not supported`);
    const path = inside(dir, str(p.path, `${where}: patches[${i}].path`), `${where}: patches[${i}]`);
    files.add(path);
    const docs = loadYaml(path);
    if (docs.length !== 1) throw new Error(`${rel(path)}: a patch file holds exactly one document`);
    resources = applyPatch(resources, rec(docs[0], rel(path)), rel(path));
  }
  if (typeof k.namespace === 'string') {
    for (const r of resources) if (!CLUSTER_SCOPED.has(r.kind)) r.metadata.namespace = k.namespace;
  }
  for (const [i, entry] of list(k.images ?? [], `${where}: images`).entries()) {
    const img = rec(entry, `${where}: images[${i}]`);
    for (const container of resources.flatMap(podContainers)) {
      const image = str(container.image, 'container image');
      const [name, tag] = splitImage(image);
      if (name !== img.name) continue;
      const newName = typeof img.newName === 'string' ? img.newName : name;
      const newTag = typeof img.newTag === 'string' ? img.newTag : tag;
      container.image = newTag === undefined ? newName : `${newName}:${newTag}`;
    }
  }
  const seen = new Set<string>();
  for (const r of resources) {
    if (seen.has(id(r))) throw new Error(`${where}: ${id(r)} is defined twice`);
    seen.add(id(r));
  }
  return { resources, files };
}

function podContainers(r: Resource): Json[] {
  const spec =
    r.kind === 'Deployment' ? rec(rec(rec(r.spec, 'spec').template, 'template').spec, 'pod spec') : {};
  return [
    ...list(spec.containers ?? [], 'containers'),
    ...list(spec.initContainers ?? [], 'initContainers'),
  ].map((c) => rec(c, 'container'));
}

/** Splits `registry:5000/name:tag` into name and tag (no digest support needed here). */
function splitImage(image: string): [string, string | undefined] {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? [image.slice(0, colon), image.slice(colon + 1)] : [image, undefined];
}

function find(resources: Resource[], kind: string, name?: string, namespace?: string): Resource[] {
  return resources.filter(
    (r) =>
      r.kind === kind &&
      (name === undefined || r.metadata.name === name) &&
      (namespace === undefined || r.metadata.namespace === namespace),
  );
}

function one(resources: Resource[], kind: string, name?: string, namespace?: string): Resource {
  const found = find(resources, kind, name, namespace);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name ?? ''}, found ${found.length}`);
  return found[0] as Resource;
}

// ---------------------------------------------------------------------------------------------------------
// Validation against the Kubernetes OpenAPI models generated into @kubernetes/client-node.

interface Attribute {
  baseName: string;
  type: string;
  format: string;
}

const MODELS_DIR = join(
  dirname(createRequire(import.meta.url).resolve('@kubernetes/client-node')),
  'gen',
  'models',
);
const PRIMITIVES = new Set(['string', 'number', 'boolean', 'Date', 'V1MicroTime', 'IntOrString', 'any']);

function model(name: string): { attributes: Attribute[]; required: Set<string> } | undefined {
  const cls: unknown = (k8s as Record<string, unknown>)[name];
  if (typeof cls !== 'function' || !('getAttributeTypeMap' in cls)) return undefined;
  const getMap = cls.getAttributeTypeMap;
  if (typeof getMap !== 'function') return undefined;
  const attributes = (getMap as () => unknown[])().map((a) => rec(a, name) as unknown as Attribute);
  // Required fields are the non-optional properties of the generated declaration (`'name': string;`).
  const declaration = readFileSync(join(MODELS_DIR, `${name}.d.ts`), 'utf8');
  const required = new Set([...declaration.matchAll(/^\s+'(\w+)': /gm)].map((m) => m[1] as string));
  return { attributes, required };
}

function checkValue(value: unknown, type: string, format: string, path: string, problems: string[]): void {
  const array = /^Array<(.+)>$/.exec(type);
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (array !== null) {
    if (!Array.isArray(value)) problems.push(`${path}: expected a list`);
    else
      for (const [i, v] of value.entries()) checkValue(v, array[1] as string, '', `${path}[${i}]`, problems);
  } else if (map !== null) {
    if (!isRecord(value)) problems.push(`${path}: expected a mapping`);
    else
      for (const [k, v] of Object.entries(value))
        checkValue(v, map[1] as string, '', `${path}.${k}`, problems);
  } else if (PRIMITIVES.has(type)) {
    const ok =
      type === 'any' ||
      (type === 'number' &&
        typeof value === 'number' &&
        (!format.startsWith('int') || Number.isInteger(value))) ||
      (type === 'boolean' && typeof value === 'boolean') ||
      (type === 'IntOrString' && (typeof value === 'string' || Number.isInteger(value))) ||
      (['string', 'Date', 'V1MicroTime'].includes(type) && typeof value === 'string');
    if (!ok)
      problems.push(`${path}: expected ${type}${format ? ` (${format})` : ''}, got ${JSON.stringify(value)}`);
  } else {
    checkModel(value, type, path, problems);
  }
}

function checkModel(value: unknown, name: string, path: string, problems: string[]): void {
  const m = model(name);
  if (m === undefined) {
    problems.push(`${path}: no model ${name}`);
    return;
  }
  if (!isRecord(value)) {
    problems.push(`${path}: expected a ${name} mapping`);
    return;
  }
  const byName = new Map(m.attributes.map((a) => [a.baseName, a]));
  for (const [key, v] of Object.entries(value)) {
    const a = byName.get(key);
    if (a === undefined) problems.push(`${path}.${key}: unknown field of ${name}`);
    else checkValue(v, a.type, a.format, `${path}.${key}`, problems);
  }
  for (const key of m.required) if (!(key in value)) problems.push(`${path}.${key}: required by ${name}`);
}

/**
 * Problems of a built-in Kubernetes object against its API model (`apps/v1` Deployment → V1Deployment),
 * or undefined when the kind has no model (custom resources).
 */
function validateKubernetes(r: Resource): string[] | undefined {
  const version = r.apiVersion.split('/').at(-1) ?? '';
  const name = `${version.charAt(0).toUpperCase()}${version.slice(1)}${r.kind}`;
  if (model(name) === undefined) return undefined;
  const problems: string[] = [];
  checkModel(r, name, `${r.kind}/${r.metadata.name}`, problems);
  return problems;
}

/** The monitoring.coreos.com/v1 ServiceMonitor fields this repository uses, from the operator's API. */
const SERVICE_MONITOR_SPEC = new Set([
  'endpoints',
  'selector',
  'namespaceSelector',
  'jobLabel',
  'targetLabels',
  'podTargetLabels',
  'sampleLimit',
]);
const SERVICE_MONITOR_ENDPOINT = new Set([
  'port',
  'targetPort',
  'path',
  'scheme',
  'interval',
  'scrapeTimeout',
  'honorLabels',
  'relabelings',
  'metricRelabelings',
]);

function validateServiceMonitor(r: Resource): string[] {
  const problems: string[] = [];
  const spec = rec(r.spec, 'ServiceMonitor spec');
  for (const key of Object.keys(spec))
    if (!SERVICE_MONITOR_SPEC.has(key)) problems.push(`spec.${key}: unknown`);
  if (!isRecord(spec.selector)) problems.push('spec.selector: required');
  const endpoints = Array.isArray(spec.endpoints) ? spec.endpoints : [];
  if (endpoints.length === 0) problems.push('spec.endpoints: at least one');
  endpoints.forEach((e, i) => {
    for (const key of Object.keys(rec(e, 'endpoint'))) {
      if (!SERVICE_MONITOR_ENDPOINT.has(key)) problems.push(`spec.endpoints[${i}].${key}: unknown`);
    }
  });
  return problems;
}

/** The monitoring.coreos.com/v1 PrometheusRule fields: spec.groups of Prometheus rule groups. */
const RULE_GROUP_FIELDS = new Set(['name', 'interval', 'rules']);
const ALERT_RULE_FIELDS = new Set(['alert', 'expr', 'for', 'labels', 'annotations']);

function validatePrometheusRule(r: Resource): string[] {
  const problems: string[] = [];
  const spec = rec(r.spec, 'PrometheusRule spec');
  for (const key of Object.keys(spec)) if (key !== 'groups') problems.push(`spec.${key}: unknown`);
  const groups = Array.isArray(spec.groups) ? spec.groups : [];
  if (groups.length === 0) problems.push('spec.groups: at least one');
  groups.forEach((g, i) => {
    const group = rec(g, `spec.groups[${i}]`);
    for (const key of Object.keys(group))
      if (!RULE_GROUP_FIELDS.has(key)) problems.push(`spec.groups[${i}].${key}: unknown`);
    if (typeof group.name !== 'string') problems.push(`spec.groups[${i}].name: required`);
    list(group.rules, `spec.groups[${i}].rules`).forEach((x, j) => {
      const rule = rec(x, `spec.groups[${i}].rules[${j}]`);
      for (const key of Object.keys(rule))
        if (!ALERT_RULE_FIELDS.has(key)) problems.push(`spec.groups[${i}].rules[${j}].${key}: unknown`);
      if (typeof rule.alert !== 'string' || typeof rule.expr !== 'string')
        problems.push(`spec.groups[${i}].rules[${j}]: alert and expr are required strings`);
    });
  });
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// RBAC as a set of (group, resource, resourceName, verb) grants.

function grants(role: Resource): string[] {
  return list(role.rules, `${role.kind}/${role.metadata.name} rules`)
    .flatMap((entry) => {
      const rule = rec(entry, 'rule');
      if (rule.nonResourceURLs !== undefined)
        return [`nonResourceURLs ${JSON.stringify(rule.nonResourceURLs)}`];
      const names = rule.resourceNames === undefined ? ['(any)'] : list(rule.resourceNames, 'resourceNames');
      return list(rule.apiGroups, 'apiGroups').flatMap((g) =>
        list(rule.resources, 'resources').flatMap((res) =>
          names.flatMap((n) =>
            list(rule.verbs, 'verbs').map((v) => `${String(g)}|${String(res)}|${String(n)}|${String(v)}`),
          ),
        ),
      );
    })
    .sort();
}

const VIRTUAL_SERVICE_AND_EVENT_GRANTS = [
  '|events|(any)|create',
  '|events|(any)|patch',
  'gateway.networking.k8s.io|grpcroutes|(any)|get',
  'gateway.networking.k8s.io|grpcroutes|(any)|list',
  'gateway.networking.k8s.io|grpcroutes|(any)|patch',
  'gateway.networking.k8s.io|httproutes|(any)|get',
  'gateway.networking.k8s.io|httproutes|(any)|list',
  'gateway.networking.k8s.io|httproutes|(any)|patch',
  'networking.istio.io|virtualservices|(any)|get',
  'networking.istio.io|virtualservices|(any)|list',
  'networking.istio.io|virtualservices|(any)|patch',
].sort();
const LEASE_GRANTS = [
  'coordination.k8s.io|leases|(any)|create',
  'coordination.k8s.io|leases|mirror-autoscaler|get',
  'coordination.k8s.io|leases|mirror-autoscaler|update',
].sort();

/** Grants that least privilege forbids anywhere: wildcards, secrets, configmaps, escalation verbs. */
function forbiddenGrants(all: string[]): string[] {
  return all.filter((g) => {
    const [group, resource, , verb] = g.split('|');
    return (
      g.startsWith('nonResourceURLs') ||
      g.includes('*|') ||
      group === '*' ||
      resource === '*' ||
      verb === '*' ||
      resource === 'secrets' ||
      resource === 'configmaps' ||
      ['escalate', 'bind', 'impersonate', 'delete', 'deletecollection'].includes(verb ?? '')
    );
  });
}

/** Each binding in the render, as "Kind/role -> namespace of the binding" for the daemon's ServiceAccount. */
function bindings(resources: Resource[]): string[] {
  return resources
    .filter((r) => r.kind === 'RoleBinding' || r.kind === 'ClusterRoleBinding')
    .map((b) => {
      const ref = rec(b.roleRef, 'roleRef');
      const subjects = list(b.subjects, 'subjects').map((s) => rec(s, 'subject'));
      expect(subjects, `${b.kind}/${b.metadata.name} subjects`).toEqual([
        { kind: 'ServiceAccount', name: APP, namespace: NAMESPACE },
      ]);
      const roleNamespace = ref.kind === 'Role' ? b.metadata.namespace : undefined;
      expect(
        find(resources, str(ref.kind, 'roleRef.kind'), str(ref.name, 'roleRef.name'), roleNamespace),
      ).toHaveLength(1);
      return `${b.kind}:${String(ref.kind)}/${String(ref.name)}@${b.metadata.namespace ?? '(cluster)'}`;
    })
    .sort();
}

// ---------------------------------------------------------------------------------------------------------
// The metric contract and the dashboard's PromQL.

const HISTOGRAMS = ['mirror_autoscaler_cycle_duration_seconds'];
/** Metric → its labels, from the shared metric contract. */
const CONTRACT: Record<string, string[]> = {
  mirror_autoscaler_mirror_percent: ['policy', 'route_kind', 'route'],
  mirror_autoscaler_proposed_percent: ['policy', 'route_kind', 'route'],
  mirror_autoscaler_signal_value: ['policy', 'signal'],
  mirror_autoscaler_guardrail_limit: ['policy', 'signal'],
  mirror_autoscaler_scrape_interval_seconds: ['policy', 'source'],
  mirror_autoscaler_production_rps: ['policy'],
  mirror_autoscaler_decisions_total: ['policy', 'action', 'reason'],
  mirror_autoscaler_writes_total: ['policy', 'result'],
  mirror_autoscaler_cycle_duration_seconds: ['le'],
  mirror_autoscaler_prometheus_queries_total: ['kind', 'result'],
  mirror_autoscaler_kubernetes_requests_errors_total: ['verb', 'code'],
  mirror_autoscaler_policies: ['state'],
  mirror_autoscaler_leader: [],
  mirror_autoscaler_last_cycle_timestamp_seconds: [],
  mirror_autoscaler_route_overridden_total: ['policy', 'manager'],
  mirror_autoscaler_paused: ['policy', 'source'],
};
/**
 * Contract metrics the alerts may use before the daemon's registry exports them: the registry check accepts
 * their absence (and, once exported, checks them like any other), and the dashboard need not show them yet.
 * Empty while every contract metric is exported.
 */
const ANNOUNCED = new Set<string>();
/** Label values the contract fixes (a matcher on any other value is a typo). */
const CONTRACT_VALUES: Record<string, string[]> = {
  signal: ['cpuUtilization', 'errorRate', 'latencyP99Ms'],
  result: ['ok', 'conflict', 'error', 'refused'],
  state: ['loaded', 'invalid'],
  kind: ['batch', 'override'],
  action: ['increase', 'decrease', 'hold'],
  reason: [...REASONS],
};
/** Label values fixed per metric, where one label name means different things on different metrics. */
const METRIC_VALUES: Record<string, Record<string, string[]>> = {
  mirror_autoscaler_scrape_interval_seconds: { source: ['policy', 'learned', 'default'] },
  mirror_autoscaler_paused: { source: ['annotation', 'brake', 'flagger', 'argo-rollouts'] },
};
/** Labels Prometheus adds to every scraped series (target labels from the ServiceMonitor). */
const TARGET_LABELS = ['instance', 'job', 'pod', 'namespace', 'service', 'container', 'endpoint'];

function contractName(metric: string): string | undefined {
  if (metric in CONTRACT) return HISTOGRAMS.includes(metric) ? undefined : metric;
  const base = metric.replace(/_(bucket|sum|count)$/, '');
  return HISTOGRAMS.includes(base) ? base : undefined;
}

/** Grafana's interval variables are not PromQL; give them a duration so the query parses. */
function grafanaToPromQL(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)/g, '5m');
}

interface Selector {
  metric: string | undefined;
  matchers: { label: string; op: string; value: string }[];
}

/** Parses a PromQL expression; returns its selectors, or throws at the first syntax error. */
function selectors(expr: string): Selector[] {
  const out: Selector[] = [];
  let error: number | undefined;
  let current: Selector | undefined;
  let label = '';
  let op = '';
  parser.parse(expr).iterate({
    enter(node) {
      if (node.type.isError) error ??= node.from;
      const text = expr.slice(node.from, node.to);
      if (node.name === 'VectorSelector') {
        current = { metric: undefined, matchers: [] };
        out.push(current);
      } else if (node.name === 'Identifier' && current !== undefined && current.metric === undefined) {
        current.metric = text;
      } else if (node.name === 'LabelName' && current !== undefined) {
        label = text;
      } else if (node.name === 'MatchOp' && current !== undefined) {
        op = text;
      } else if (node.name === 'StringLiteral' && current !== undefined) {
        current.matchers.push({ label, op, value: JSON.parse(text.replace(/^'|'$/g, '"')) as string });
      }
    },
    leave(node) {
      if (node.name === 'VectorSelector') current = undefined;
    },
  });
  if (error !== undefined) throw new Error(`not valid PromQL at ${error}: ${expr}`);
  return out;
}

/** Problems with a dashboard expression against the metric contract. */
function contractProblems(expr: string): string[] {
  const problems: string[] = [];
  for (const s of selectors(grafanaToPromQL(expr))) {
    if (s.metric === undefined) {
      problems.push(`a selector without a metric name in ${expr}`);
      continue;
    }
    const name = contractName(s.metric);
    if (name === undefined) {
      problems.push(`${s.metric} is not a contract metric`);
      continue;
    }
    for (const m of s.matchers) {
      if (!(CONTRACT[name] ?? []).includes(m.label) && !TARGET_LABELS.includes(m.label)) {
        problems.push(`${s.metric}: label ${m.label} is not in the contract`);
      }
      const allowed = METRIC_VALUES[name]?.[m.label] ?? CONTRACT_VALUES[m.label];
      const values = m.op === '=~' || m.op === '!~' ? m.value.split('|') : [m.value];
      for (const v of values) {
        if (allowed !== undefined && !allowed.includes(v))
          problems.push(`${s.metric}: ${m.label}="${v}" is not a contract value`);
      }
    }
  }
  return problems;
}

interface DashboardQuery {
  where: string;
  expr: string;
}

function dashboardQueries(dashboard: Json): DashboardQuery[] {
  const out: DashboardQuery[] = [];
  const visit = (panel: Json): void => {
    for (const [i, t] of list(panel.targets ?? [], 'targets').entries()) {
      out.push({
        where: `panel "${String(panel.title)}" target ${i}`,
        expr: str(rec(t, 'target').expr, 'expr'),
      });
    }
    for (const inner of list(panel.panels ?? [], 'panels')) visit(rec(inner, 'panel'));
  };
  for (const p of list(dashboard.panels, 'dashboard.panels')) visit(rec(p, 'panel'));
  return out;
}

/** The metrics named by `label_values(metric, label)` template variables. */
function templateMetrics(dashboard: Json): string[] {
  const vars = list(rec(dashboard.templating, 'templating').list, 'templating.list').map((v) =>
    rec(v, 'variable'),
  );
  return vars
    .filter((v) => v.type === 'query')
    .map((v) => {
      const q = isRecord(v.query) ? str(v.query.query, 'variable query') : str(v.query, 'variable query');
      const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(q.trim());
      if (m === null) throw new Error(`variable ${String(v.name)}: unexpected query ${q}`);
      return m[1] as string;
    });
}

// ---------------------------------------------------------------------------------------------------------

const KUSTOMIZATIONS = [
  { name: 'base', dir: join(DEPLOY, 'base') },
  { name: 'namespaced overlay', dir: join(DEPLOY, 'overlays', 'namespaced') },
  { name: 'monitoring', dir: join(DEPLOY, 'monitoring') },
];
const base = kustomize(join(DEPLOY, 'base'));
const namespaced = kustomize(join(DEPLOY, 'overlays', 'namespaced'));
const monitoring = kustomize(join(DEPLOY, 'monitoring'));

/** The daemon's Deployment, typed (its schema is checked in the "kustomizations" tests). */
function deploymentOf(r: Rendered): k8s.V1Deployment {
  return one(r.resources, 'Deployment', APP, NAMESPACE) as unknown as k8s.V1Deployment;
}

function containerOf(d: k8s.V1Deployment): k8s.V1Container {
  const c = d.spec?.template.spec?.containers.find((x) => x.name === APP);
  if (c === undefined) throw new Error(`Deployment has no container ${APP}`);
  return c;
}

function envOf(c: k8s.V1Container, name: string): k8s.V1EnvVar | undefined {
  return c.env?.find((e) => e.name === name);
}

describe('deploy/ files', () => {
  const yamlFiles = walk(DEPLOY).filter((f) => /\.ya?ml$/.test(f));

  it('has the kustomizations, the dashboard and the policy copies', () => {
    expect(yamlFiles.length).toBeGreaterThan(10);
    expect(existsSync(join(DEPLOY, 'monitoring', 'grafana-dashboard.json'))).toBe(true);
    expect(existsSync(join(DEPLOY, 'base', 'policies', 'README.md'))).toBe(true);
  });

  it.each(yamlFiles.map((f) => ({ name: rel(f), file: f })))(
    '$name parses; every document names apiVersion, kind and metadata.name',
    ({ file }) => {
      const docs = loadYaml(file);
      expect(docs.length).toBeGreaterThan(0);
      for (const [i, doc] of docs.entries()) {
        const r = rec(doc, `${rel(file)}#${i}`);
        expect(typeof r.apiVersion, `${rel(file)}#${i} apiVersion`).toBe('string');
        expect(typeof r.kind, `${rel(file)}#${i} kind`).toBe('string');
        if (basename(file) === 'kustomization.yaml') {
          expect(r.kind).toBe('Kustomization');
        } else {
          expect(typeof rec(r.metadata, 'metadata').name, `${rel(file)}#${i} metadata.name`).toBe('string');
        }
      }
    },
  );

  it('every manifest, patch and generator source under deploy/ is used by a kustomization', () => {
    const used = new Set([...base.files, ...namespaced.files, ...monitoring.files]);
    const unused = walk(DEPLOY).filter((f) => !f.endsWith('.md') && !used.has(f));
    expect(unused.map(rel)).toEqual([]);
  });

  it('the policy copies are identical to policies/, and each generator lists every copy in its directory', () => {
    for (const dir of [
      join(DEPLOY, 'base', 'policies'),
      join(DEPLOY, 'overlays', 'namespaced', 'policies'),
    ]) {
      const copies = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
      expect(copies.length).toBeGreaterThan(0);
      for (const f of copies) {
        expect(readFileSync(join(dir, f), 'utf8'), `${rel(join(dir, f))} differs from policies/${f}`).toBe(
          readFileSync(join(ROOT, 'policies', f), 'utf8'),
        );
      }
    }
    const baseKeys = Object.keys(
      rec(one(base.resources, 'ConfigMap', 'mirror-autoscaler-policies').data, 'data'),
    );
    expect(baseKeys.sort()).toEqual(
      readdirSync(join(ROOT, 'policies'))
        .filter((f) => f.endsWith('.yaml'))
        .sort(),
    );
    const overlayKeys = Object.keys(
      rec(one(namespaced.resources, 'ConfigMap', 'mirror-autoscaler-policies').data, 'data'),
    );
    expect(overlayKeys.sort()).toEqual(
      readdirSync(join(DEPLOY, 'overlays', 'namespaced', 'policies'))
        .filter((f) => f.endsWith('.yaml'))
        .sort(),
    );
  });
});

describe('kustomizations', () => {
  it.each(KUSTOMIZATIONS)('$name renders and every object validates against its API schema', ({ dir }) => {
    const { resources } = kustomize(dir);
    expect(resources.length).toBeGreaterThan(0);
    for (const r of resources) {
      if (r.kind === 'ServiceMonitor') {
        expect(r.apiVersion).toBe('monitoring.coreos.com/v1');
        expect(validateServiceMonitor(r), id(r)).toEqual([]);
      } else if (r.kind === 'PrometheusRule') {
        expect(r.apiVersion).toBe('monitoring.coreos.com/v1');
        expect(validatePrometheusRule(r), id(r)).toEqual([]);
      } else {
        expect(validateKubernetes(r), `${id(r)} has no Kubernetes model`).toEqual([]);
      }
      if (!CLUSTER_SCOPED.has(r.kind))
        expect(r.metadata.namespace, `${id(r)} namespace`).toBeTypeOf('string');
    }
  });

  it('the base installs everything into the mirror-autoscaler namespace', () => {
    const kinds = base.resources.map((r) => `${r.kind}/${r.metadata.name}`).sort();
    expect(kinds).toEqual([
      'ClusterRole/mirror-autoscaler',
      'ClusterRoleBinding/mirror-autoscaler',
      'ConfigMap/mirror-autoscaler-policies',
      'CustomResourceDefinition/mirrorpolicies.mirror-autoscaler.io',
      'Deployment/mirror-autoscaler',
      'Namespace/mirror-autoscaler',
      'NetworkPolicy/mirror-autoscaler',
      'PodDisruptionBudget/mirror-autoscaler',
      'Role/mirror-autoscaler-leader-election',
      'RoleBinding/mirror-autoscaler-leader-election',
      'Service/mirror-autoscaler',
      'ServiceAccount/mirror-autoscaler',
    ]);
    for (const r of base.resources) {
      if (!CLUSTER_SCOPED.has(r.kind)) expect(r.metadata.namespace, id(r)).toBe(NAMESPACE);
    }
  });

  it('the namespace enforces the restricted Pod Security Standard', () => {
    const ns = one(base.resources, 'Namespace', NAMESPACE);
    expect(rec(ns.metadata.labels, 'labels')['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });
});

describe('RBAC', () => {
  it('base: a ClusterRole for VirtualServices and Events, a Role for the one Lease, nothing else', () => {
    const roles = base.resources.filter((r) => r.kind === 'Role' || r.kind === 'ClusterRole');
    expect(
      roles.map((r) => `${r.kind}/${r.metadata.name}@${r.metadata.namespace ?? '(cluster)'}`).sort(),
    ).toEqual([
      'ClusterRole/mirror-autoscaler@(cluster)',
      `Role/mirror-autoscaler-leader-election@${NAMESPACE}`,
    ]);
    expect(grants(one(base.resources, 'ClusterRole', APP))).toEqual(VIRTUAL_SERVICE_AND_EVENT_GRANTS);
    expect(grants(one(base.resources, 'Role', 'mirror-autoscaler-leader-election', NAMESPACE))).toEqual(
      LEASE_GRANTS,
    );
    expect(forbiddenGrants(roles.flatMap(grants))).toEqual([]);
    expect(bindings(base.resources)).toEqual([
      'ClusterRoleBinding:ClusterRole/mirror-autoscaler@(cluster)',
      `RoleBinding:Role/mirror-autoscaler-leader-election@${NAMESPACE}`,
    ]);
  });

  it('namespaced overlay: no cluster-wide grant; VirtualServices and Events in the one application namespace', () => {
    expect(find(namespaced.resources, 'ClusterRole')).toEqual([]);
    expect(find(namespaced.resources, 'ClusterRoleBinding')).toEqual([]);
    const appRole = one(namespaced.resources, 'Role', APP);
    const appNamespace = str(appRole.metadata.namespace, 'Role namespace');
    expect(appNamespace).not.toBe(NAMESPACE);
    expect(grants(appRole)).toEqual(VIRTUAL_SERVICE_AND_EVENT_GRANTS);
    expect(grants(one(namespaced.resources, 'Role', 'mirror-autoscaler-leader-election', NAMESPACE))).toEqual(
      LEASE_GRANTS,
    );
    const roles = namespaced.resources.filter((r) => r.kind === 'Role' || r.kind === 'ClusterRole');
    expect(forbiddenGrants(roles.flatMap(grants))).toEqual([]);
    expect(bindings(namespaced.resources)).toEqual([
      `RoleBinding:Role/mirror-autoscaler-leader-election@${NAMESPACE}`,
      `RoleBinding:Role/mirror-autoscaler@${appNamespace}`,
    ]);
    // The daemon is told the same namespace, and every policy it gets manages a VirtualService there.
    expect(envOf(containerOf(deploymentOf(namespaced)), 'MIRROR_AUTOSCALER_NAMESPACE')?.value).toBe(
      appNamespace,
    );
    const policies = rec(one(namespaced.resources, 'ConfigMap', 'mirror-autoscaler-policies').data, 'data');
    for (const [file, text] of Object.entries(policies)) {
      for (const doc of parseAllDocuments(str(text, file))) {
        const vs = rec(
          rec(rec(doc.toJS(), file).spec, `${file} spec`).virtualService,
          `${file} virtualService`,
        );
        expect(vs.namespace, `${file}: spec.virtualService.namespace`).toBe(appNamespace);
      }
    }
  });

  it('the lease Role names the Lease the daemon is told to use', () => {
    for (const r of [base, namespaced]) {
      const leaseName = envOf(containerOf(deploymentOf(r)), 'LEASE_NAME')?.value;
      expect(leaseName).toBe('mirror-autoscaler');
      expect(grants(one(r.resources, 'Role', 'mirror-autoscaler-leader-election'))).toContain(
        `coordination.k8s.io|leases|${leaseName}|update`,
      );
      expect(envOf(containerOf(deploymentOf(r)), 'LEASE_NAMESPACE')?.valueFrom?.fieldRef?.fieldPath).toBe(
        'metadata.namespace',
      );
    }
  });

  it.each([
    { name: 'a wildcard verb', rule: { apiGroups: [''], resources: ['pods'], verbs: ['*'] } },
    { name: 'a wildcard resource', rule: { apiGroups: ['apps'], resources: ['*'], verbs: ['get'] } },
    { name: 'reading secrets', rule: { apiGroups: [''], resources: ['secrets'], verbs: ['get'] } },
    { name: 'reading configmaps', rule: { apiGroups: [''], resources: ['configmaps'], verbs: ['list'] } },
    { name: 'a non-resource URL', rule: { nonResourceURLs: ['/metrics'], verbs: ['get'] } },
  ])('the least-privilege check rejects $name', ({ rule }) => {
    const role = asResource(
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'x' }, rules: [rule] },
      'fixture',
    );
    expect(forbiddenGrants(grants(role))).toHaveLength(1);
  });
});

describe('Deployment', () => {
  const d = deploymentOf(base);
  const pod = d.spec?.template.spec;
  const c = containerOf(d);
  const podLabels = d.spec?.template.metadata?.labels ?? {};

  it('runs two replicas, selected by the pod labels, spread over nodes', () => {
    expect(d.spec?.replicas).toBe(2);
    expect(d.spec?.selector.matchLabels).toEqual({
      'app.kubernetes.io/name': APP,
      'app.kubernetes.io/component': 'controller',
    });
    for (const [k, v] of Object.entries(d.spec?.selector.matchLabels ?? {})) expect(podLabels[k]).toBe(v);
    const spread = pod?.topologySpreadConstraints?.find((t) => t.topologyKey === 'kubernetes.io/hostname');
    expect(spread?.maxSkew).toBe(1);
    expect(spread?.labelSelector?.matchLabels).toEqual(d.spec?.selector.matchLabels);
    expect(pod?.terminationGracePeriodSeconds).toBe(30);
  });

  it('has no Istio sidecar', () => {
    expect(podLabels['sidecar.istio.io/inject']).toBe('false');
  });

  it('runs as a non-root user, read-only, without privileges or capabilities', () => {
    expect(pod?.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      runAsUser: 10001,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(c.securityContext?.capabilities?.add).toBeUndefined();
    expect(c.securityContext?.privileged).not.toBe(true);
    expect(pod?.hostNetwork).toBeUndefined();
    expect(pod?.hostPID).toBeUndefined();
    expect(pod?.automountServiceAccountToken).toBe(true);
    expect(pod?.serviceAccountName).toBe(APP);
    expect(one(base.resources, 'ServiceAccount', APP)).toBeDefined();
  });

  it('probes /healthz and /readyz on the named metrics port', () => {
    const port = c.ports?.find((p) => p.name === 'http-metrics');
    expect(port?.containerPort).toBe(METRICS_PORT);
    expect(c.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', port: 'http-metrics' });
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/readyz', port: 'http-metrics' });
    expect(envOf(c, 'METRICS_PORT')?.value).toBe(String(METRICS_PORT));
  });

  it('sets requests and limits, requests not above limits', () => {
    const quantity = (q: string | undefined): number => {
      const m = /^(\d+(?:\.\d+)?)(m|Mi|Gi)?$/.exec(q ?? '');
      if (m === null) throw new Error(`unexpected quantity ${q}`);
      const scale: Record<string, number> = { m: 0.001, Mi: 2 ** 20, Gi: 2 ** 30 };
      return Number(m[1]) * (m[2] === undefined ? 1 : (scale[m[2]] ?? Number.NaN));
    };
    for (const r of ['cpu', 'memory']) {
      const request = quantity(c.resources?.requests?.[r]);
      const limit = quantity(c.resources?.limits?.[r]);
      expect(request, r).toBeGreaterThan(0);
      expect(request, r).toBeLessThanOrEqual(limit);
    }
  });

  it('reads the policies from the ConfigMap mounted read-only at the path passed to run', () => {
    expect(c.args).toEqual(['run', '--policies', POLICIES_MOUNT]);
    // `plan` run with kubectl exec finds them too.
    expect(envOf(c, 'MIRROR_AUTOSCALER_POLICIES')?.value).toBe(POLICIES_MOUNT);
    const mount = c.volumeMounts?.find((m) => m.mountPath === POLICIES_MOUNT);
    expect(mount?.readOnly).toBe(true);
    // A subPath mount would never see ConfigMap updates, which hot reload relies on.
    expect(mount?.subPath).toBeUndefined();
    const volume = pod?.volumes?.find((v) => v.name === mount?.name);
    expect(volume?.configMap?.name).toBe('mirror-autoscaler-policies');
    expect(find(base.resources, 'ConfigMap', 'mirror-autoscaler-policies', NAMESPACE)).toHaveLength(1);
  });

  it('is configured through the documented environment variables', () => {
    expect(envOf(c, 'PROMETHEUS_URL')?.value).toMatch(/^https?:\/\/[a-z0-9.-]+(:\d+)?$/);
    expect(envOf(c, 'MIRROR_AUTOSCALER_DRY_RUN')?.value).toMatch(/^(true|false)$/);
    expect(envOf(c, 'LOG_LEVEL')?.value).toBe('info');
    for (const name of ['LEASE_DURATION', 'LEASE_RENEW_DEADLINE', 'LEASE_RETRY_PERIOD']) {
      expect(envOf(c, name)?.value, name).toMatch(/^\d+s$/);
    }
    const seconds = (name: string): number => Number.parseInt(envOf(c, name)?.value ?? '', 10);
    // The leader must give up (renew deadline) before another replica may take the lease (duration).
    expect(seconds('LEASE_RENEW_DEADLINE')).toBeLessThan(seconds('LEASE_DURATION'));
    expect(seconds('LEASE_RETRY_PERIOD')).toBeLessThan(seconds('LEASE_RENEW_DEADLINE'));
    expect(envOf(c, 'MIRROR_AUTOSCALER_NAMESPACE')).toBeUndefined();
  });

  it('uses a pinned image tag, the package version', () => {
    const version = str(
      rec(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')), 'package.json').version,
      'version',
    );
    for (const r of [base, namespaced]) {
      const [, tag] = splitImage(containerOf(deploymentOf(r)).image ?? '');
      expect(tag).toBe(version);
    }
  });
});

describe('PodDisruptionBudget, Service, NetworkPolicy', () => {
  const podLabels = deploymentOf(base).spec?.template.metadata?.labels ?? {};
  const matchesPods = (labels: Record<string, string> | undefined): boolean =>
    labels !== undefined &&
    Object.keys(labels).length > 0 &&
    Object.entries(labels).every(([k, v]) => podLabels[k] === v);

  it('the PodDisruptionBudget keeps one replica', () => {
    const pdb = one(
      base.resources,
      'PodDisruptionBudget',
      APP,
      NAMESPACE,
    ) as unknown as k8s.V1PodDisruptionBudget;
    expect(pdb.spec?.minAvailable).toBe(1);
    expect(matchesPods(pdb.spec?.selector?.matchLabels)).toBe(true);
  });

  it('the Service exposes the metrics port as http-metrics', () => {
    const svc = one(base.resources, 'Service', APP, NAMESPACE) as unknown as k8s.V1Service;
    expect(svc.spec?.ports).toEqual([
      { name: 'http-metrics', port: METRICS_PORT, targetPort: 'http-metrics', protocol: 'TCP' },
    ]);
    expect(matchesPods(svc.spec?.selector)).toBe(true);
  });

  it('the NetworkPolicy admits only the metrics port and lets out only DNS, the API server and Prometheus', () => {
    const np = one(base.resources, 'NetworkPolicy', APP, NAMESPACE) as unknown as k8s.V1NetworkPolicy;
    expect(matchesPods(np.spec?.podSelector?.matchLabels)).toBe(true);
    expect(np.spec?.policyTypes?.sort()).toEqual(['Egress', 'Ingress']);
    const ports = (rules: { ports?: k8s.V1NetworkPolicyPort[] }[] | undefined): string[] =>
      (rules ?? []).flatMap((r) => {
        // A rule without ports allows every port.
        if (r.ports === undefined || r.ports.length === 0) return ['any port'];
        return r.ports.map((p) => `${String(p.port)}/${p.protocol ?? 'TCP'}`);
      });
    expect(ports(np.spec?.ingress)).toEqual([`${METRICS_PORT}/TCP`]);
    expect(ports(np.spec?.egress).sort()).toEqual(['443/TCP', '53/TCP', '53/UDP', '6443/TCP', '9090/TCP']);
    const namespaceOf = (port: string): (string | undefined)[] | undefined =>
      np.spec?.egress
        ?.find((r) => r.ports?.some((p) => `${String(p.port)}/${p.protocol ?? 'TCP'}` === port))
        ?.to?.map((peer) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name']);
    expect(namespaceOf('53/UDP')).toEqual(['kube-system']);
    expect(namespaceOf('53/TCP')).toEqual(['kube-system']);
    expect(namespaceOf('9090/TCP')).toEqual(['monitoring']);
  });
});

describe('monitoring', () => {
  it('the ServiceMonitor selects the Service by its labels and scrapes its named port', () => {
    const sm = one(monitoring.resources, 'ServiceMonitor', APP);
    const svc = one(base.resources, 'Service', APP, NAMESPACE) as unknown as k8s.V1Service;
    const spec = rec(sm.spec, 'ServiceMonitor spec');
    const matchLabels = rec(rec(spec.selector, 'selector').matchLabels, 'matchLabels');
    expect(Object.keys(matchLabels).length).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(matchLabels)) expect(svc.metadata?.labels?.[k], k).toBe(v);
    expect(rec(spec.namespaceSelector, 'namespaceSelector').matchNames).toContain(svc.metadata?.namespace);
    const endpoints = list(spec.endpoints, 'endpoints').map((e) => rec(e, 'endpoint'));
    expect(endpoints.map((e) => e.port)).toEqual(['http-metrics']);
    expect(svc.spec?.ports?.map((p) => p.name)).toContain('http-metrics');
    expect(endpoints[0]?.path).toBe('/metrics');
  });

  it('the ServiceMonitor check rejects a misspelled field', () => {
    const sm = one(monitoring.resources, 'ServiceMonitor', APP);
    const bad = { ...sm, spec: { ...rec(sm.spec, 'spec'), endpoint: [] } } as Resource;
    expect(validateServiceMonitor(bad)).toContain('spec.endpoint: unknown');
  });

  it('the dashboard ConfigMap carries the JSON for the Grafana sidecar', () => {
    const cm = one(monitoring.resources, 'ConfigMap', 'mirror-autoscaler-dashboard');
    expect(rec(cm.metadata.labels, 'labels').grafana_dashboard).toBe('1');
    const json = str(rec(cm.data, 'data')['mirror-autoscaler.json'], 'dashboard data');
    expect(json).toBe(readFileSync(join(DEPLOY, 'monitoring', 'grafana-dashboard.json'), 'utf8'));
  });
});

describe('Grafana dashboard', () => {
  const dashboard = rec(
    JSON.parse(readFileSync(join(DEPLOY, 'monitoring', 'grafana-dashboard.json'), 'utf8')),
    'dashboard',
  );
  const queries = dashboardQueries(dashboard);

  it('parses, has a stable uid and unique panel ids that fit the 24-column grid', () => {
    expect(dashboard.uid).toBe('mirror-autoscaler');
    const panels = list(dashboard.panels, 'panels').map((p) => rec(p, 'panel'));
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of panels) {
      const g = rec(p.gridPos, `panel ${String(p.title)} gridPos`);
      expect(Number(g.x) + Number(g.w), String(p.title)).toBeLessThanOrEqual(24);
    }
    expect(queries.length).toBeGreaterThan(10);
  });

  it.each(queries.map((q) => ({ name: q.where, expr: q.expr })))(
    '$name uses only contract metrics and labels',
    ({ expr }) => {
      expect(contractProblems(expr)).toEqual([]);
    },
  );

  it('covers every metric of the contract (announced ones once the daemon exports them)', async () => {
    const exported = new Set(
      (await new DaemonMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((m) => m.name),
    );
    const used = new Set(
      queries.flatMap((q) => selectors(grafanaToPromQL(q.expr)).map((s) => contractName(s.metric ?? ''))),
    );
    expect(
      Object.keys(CONTRACT).filter((m) => !used.has(m) && (!ANNOUNCED.has(m) || exported.has(m))),
    ).toEqual([]);
  });

  it('the contract is what the daemon exports (announced metrics may still be missing)', async () => {
    const metrics = await new DaemonMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON();
    const names = metrics.map((m) => m.name);
    expect(names.sort()).toEqual(
      Object.keys(CONTRACT)
        .filter((m) => !ANNOUNCED.has(m) || names.includes(m))
        .sort(),
    );
    const histograms = metrics.filter((m) => String(m.type) === 'histogram').map((m) => m.name);
    expect(histograms).toEqual(HISTOGRAMS);
  });

  it('template variables query contract metrics', () => {
    const metrics = templateMetrics(dashboard);
    expect(metrics.length).toBeGreaterThan(0);
    for (const m of metrics) expect(contractName(m), m).toBeDefined();
  });

  it('every expression is accepted by promtool', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dashboard-rules-'));
    try {
      const rules = {
        groups: [
          {
            name: 'dashboard',
            rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: grafanaToPromQL(q.expr) })),
          },
        ],
      };
      const file = join(dir, 'rules.yaml');
      writeFileSync(file, stringify(rules));
      const out = execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8', timeout: 20_000 });
      expect(out).toContain(`${queries.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    {
      name: 'an unknown metric',
      expr: 'rate(mirror_autoscaler_write_total[5m])',
      problem: 'not a contract metric',
    },
    { name: 'a foreign metric', expr: 'up', problem: 'not a contract metric' },
    {
      name: 'a misspelled signal',
      expr: 'mirror_autoscaler_signal_value{signal="cpu"}',
      problem: 'not a contract value',
    },
    {
      name: 'a misspelled reason',
      expr: 'mirror_autoscaler_decisions_total{reason=~"NoData|Blind"}',
      problem: 'reason="Blind" is not a contract value',
    },
    {
      name: "another metric's value of a shared label name",
      expr: 'mirror_autoscaler_paused{source="learned"}',
      problem: 'source="learned" is not a contract value',
    },
    {
      name: 'a label outside the contract',
      expr: 'mirror_autoscaler_leader{policy="x"}',
      problem: 'not in the contract',
    },
    {
      name: 'a bare histogram name',
      expr: 'mirror_autoscaler_cycle_duration_seconds',
      problem: 'not a contract metric',
    },
  ])('the contract check rejects $name', ({ expr, problem }) => {
    expect(contractProblems(expr).join('\n')).toContain(problem);
  });

  it('the PromQL check rejects a syntax error', () => {
    expect(() => selectors('sum(rate(mirror_autoscaler_writes_total[5m])')).toThrow(/not valid PromQL/);
  });
});

describe('alerts', () => {
  const rule = one(monitoring.resources, 'PrometheusRule', APP, NAMESPACE);
  const alerts = list(rec(rule.spec, 'spec').groups, 'groups').flatMap((g) =>
    list(rec(g, 'group').rules, 'rules').map((r) => rec(r, 'rule')),
  );

  it('the PrometheusRule carries the ServiceMonitor labels, in its namespace', () => {
    const sm = one(monitoring.resources, 'ServiceMonitor', APP);
    expect(rule.metadata.labels).toEqual(sm.metadata.labels);
    expect(rule.metadata.namespace).toBe(sm.metadata.namespace);
  });

  it.each(alerts.map((a) => ({ name: str(a.alert, 'alert'), expr: str(a.expr, 'expr') })))(
    '$name uses only contract metrics and labels',
    ({ expr }) => {
      expect(contractProblems(expr)).toEqual([]);
    },
  );

  it('uses every announced metric (they are in the contract for the alerts)', () => {
    const used = new Set(alerts.flatMap((a) => selectors(str(a.expr, 'expr')).map((s) => s.metric)));
    expect([...ANNOUNCED].filter((m) => !used.has(m))).toEqual([]);
  });

  it('the PrometheusRule check rejects a misspelled field', () => {
    const bad = { ...rule, spec: { group: [] } } as Resource;
    expect(validatePrometheusRule(bad)).toContain('spec.group: unknown');
  });
});

describe('schema validation', () => {
  it.each([
    {
      name: 'a misspelled probe field',
      edit: (c: Json) => Object.assign(c, { readinesProbe: c.readinessProbe }),
      problem: 'readinesProbe: unknown field of V1Container',
    },
    {
      name: 'a port given as a word where a number is required',
      edit: (c: Json) => Object.assign(c, { ports: [{ name: 'http-metrics', containerPort: 'http' }] }),
      problem: 'containerPort: expected number',
    },
    {
      name: 'a container without a name',
      edit: (c: Json) => Object.assign(c, { name: undefined }),
      problem: 'name: expected string',
    },
  ])('rejects $name', ({ edit, problem }) => {
    const d = structuredClone(one(base.resources, 'Deployment', APP));
    const pod = rec(rec(rec(d.spec, 'spec').template, 'template').spec, 'pod');
    edit(rec(list(pod.containers, 'containers')[0], 'container'));
    expect((validateKubernetes(d) ?? []).join('\n')).toContain(problem);
  });

  it('rejects a missing required field', () => {
    const role = asResource(
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'x' },
        rules: [{ apiGroups: [''] }],
      },
      'fixture',
    );
    expect(validateKubernetes(role)).toContain('Role/x.rules[0].verbs: required by V1PolicyRule');
  });
});

describe('the kustomize renderer', () => {
  const fixture = (files: Record<string, string>, links: Record<string, string>): string => {
    const dir = mkdtempSync(join(tmpdir(), 'kustomize-'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    for (const [name, target] of Object.entries(links)) symlinkSync(target, join(dir, name));
    return dir;
  };

  it.each([
    {
      name: 'a missing resource file',
      files: {
        'kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [nope.yaml]\n',
      },
      links: {},
      error: 'nope.yaml does not exist',
    },
    {
      // The reason the base keeps copies of policies/ rather than symlinks to them.
      name: 'a generator file symlinked from outside the root',
      files: {
        'kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nconfigMapGenerator:\n  - name: p\n    files: [checkout.yaml]\n    options: {disableNameSuffixHash: true}\n',
      },
      links: { 'checkout.yaml': join(ROOT, 'policies', 'checkout.yaml') },
      error: 'is not in or below',
    },
    {
      name: 'a patch with no target',
      files: {
        'kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\npatches: [{path: p.yaml}]\n',
        'p.yaml': '$patch: delete\napiVersion: v1\nkind: Service\nmetadata: {name: gone}\n',
      },
      links: {},
      error: 'matches 0 resources',
    },
    {
      name: 'a field the renderer does not implement',
      files: {
        'kustomization.yaml':
          'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamePrefix: x-\n',
      },
      links: {},
      error: 'field namePrefix is not supported',
    },
  ])('refuses $name', ({ files, links, error }) => {
    const dir = fixture(files, links);
    try {
      expect(() => kustomize(dir)).toThrow(error);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Dockerfile', () => {
  const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));

  /** The image each FROM uses, with ARG defaults substituted, and the stage names. */
  function stages(): { image: string; name: string | undefined }[] {
    const args = new Map<string, string>();
    const out: { image: string; name: string | undefined }[] = [];
    for (const line of lines) {
      const arg = /^ARG\s+(\w+)=(\S+)$/i.exec(line);
      if (arg !== null && out.length === 0) args.set(arg[1] as string, arg[2] as string);
      const from = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(line);
      if (from !== null) {
        const image = (from[1] as string).replace(
          /\$\{?(\w+)\}?/g,
          (_, v: string) => args.get(v) ?? `<unset ${v}>`,
        );
        out.push({ image, name: from[2] });
      }
    }
    return out;
  }

  it('is multi-stage on a pinned Node.js LTS image, never latest', () => {
    const all = stages();
    expect(all.length).toBeGreaterThanOrEqual(2);
    const names = new Set(all.map((s) => s.name));
    for (const { image } of all) {
      if (names.has(image)) continue;
      const [name, tag] = splitImage(image);
      expect(name).toMatch(/(^|\/)node$|distroless\/nodejs/);
      expect(tag, image).toBeDefined();
      expect(tag).not.toMatch(/latest/);
      // An even major version is an LTS line; 20 is past its end of life.
      const major = Number(/^(\d+)/.exec(tag ?? '')?.[1] ?? Number.NaN);
      expect(major % 2, image).toBe(0);
      expect(major).toBeGreaterThanOrEqual(22);
    }
    expect(text).not.toMatch(/:latest\b/);
  });

  it('builds without running the prepare script, then drops dev dependencies', () => {
    expect(lines.some((l) => /^RUN npm ci\b.*--ignore-scripts/.test(l))).toBe(true);
    expect(lines.some((l) => /npm run build/.test(l))).toBe(true);
    expect(lines.some((l) => /npm prune --omit=dev/.test(l))).toBe(true);
  });

  it('runs the CLI as a numeric non-root user in the final stage', () => {
    const finalStage = lines.slice(lines.findLastIndex((l) => /^FROM\s/i.test(l)));
    const user = finalStage.filter((l) => /^USER\s/i.test(l)).at(-1);
    const uid = Number(/^USER\s+(\d+)/i.exec(user ?? '')?.[1] ?? Number.NaN);
    expect(uid).toBe(10001);
    expect(finalStage).toContain('ENTRYPOINT ["node", "dist/cli/main.js"]');
    expect(finalStage).toContain('CMD ["run"]');
    expect(finalStage.some((l) => /^COPY --from=build .*dist/.test(l))).toBe(true);
  });

  it('.dockerignore keeps dependencies and build output of the host out of the context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim());
    expect(ignored).toEqual(expect.arrayContaining(['node_modules', 'dist', '.git']));
    expect(ignored).not.toContain('src');
    expect(ignored).not.toContain('package-lock.json');
  });
});
