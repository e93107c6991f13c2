import picomatch from 'picomatch';
import { UsageError } from '../../cli/errors.js';
import { grName, type GroupResource, type KubeObject } from './types.js';

/** Which resources and namespaces a dump (or restore) covers. Configuration as data. */
export interface ResourceFilterConfig {
  includeNamespaces: string[];
  excludeNamespaces: string[];
  /** resource.group names (or plain names for the core group), globs allowed. */
  includeResources: string[];
  excludeResources: string[];
  /** auto: cluster-scoped resources only when no namespace is singled out. */
  includeClusterResources: 'auto' | 'true' | 'false';
}

export const EXCLUDE_LABEL = 'lifeboat.io/exclude';

/**
 * Skipped unless asked for by name: events (history, not state), nodes (belong to the machines),
 * and what is never restored because the cluster recreates it (Velero's list).
 */
export const SKIPPED_BY_DEFAULT = ['events', 'events.events.k8s.io', 'nodes', 'csinodes.storage.k8s.io', 'volumeattachments.storage.k8s.io', 'componentstatuses'];

/** Namespaced resources skipped in particular namespaces: node heartbeats. */
const SKIPPED_IN_NAMESPACE: Record<string, string[]> = { 'leases.coordination.k8s.io': ['kube-node-lease'] };

export const DEFAULT_FILTER: ResourceFilterConfig = {
  includeNamespaces: [],
  excludeNamespaces: [],
  includeResources: [],
  excludeResources: [],
  includeClusterResources: 'auto',
};

function matcher(patterns: string[]): (name: string) => boolean {
  if (patterns.length === 0) return () => false;
  const m = picomatch(patterns, { dot: true, nocase: true });
  return (name) => m(name);
}

export interface CompiledFilter {
  config: ResourceFilterConfig;
  /** Whether a resource is dumped at all, and why not. */
  resource(gr: GroupResource): { selected: boolean; reason?: string };
  /** Whether objects of a namespace are dumped (namespaced resources). */
  namespace(ns: string): boolean;
  /**
   * The namespaces to list one by one, when --include-namespaces names them outright (no glob):
   * credentials bound only in those namespaces can then dump them. Undefined: list cluster-wide.
   */
  listNamespaces(): string[] | undefined;
  /** Whether one object is dumped, given its resource. */
  object(gr: GroupResource, obj: KubeObject): boolean;
}

export function compileFilter(config: ResourceFilterConfig): CompiledFilter {
  for (const p of [...config.includeResources, ...config.excludeResources]) {
    if (p.trim() === '' || /[/\s]/.test(p)) throw new UsageError(`Invalid resource pattern ${JSON.stringify(p)}.`, { hint: 'Use resource.group names such as deployments.apps, configmaps, *.example.com.' });
  }
  const incRes = matcher(config.includeResources);
  const excRes = matcher(config.excludeResources);
  const incNs = matcher(config.includeNamespaces);
  const excNs = matcher(config.excludeNamespaces);
  const allNamespaces = config.includeNamespaces.length === 0 || config.includeNamespaces.includes('*');
  const named = (gr: GroupResource) => grName(gr);
  const explicitlyIncluded = (gr: GroupResource) => config.includeResources.some((p) => p.toLowerCase() === named(gr).toLowerCase() || p.toLowerCase() === gr.resource.toLowerCase());

  const resource: CompiledFilter['resource'] = (gr) => {
    const name = named(gr);
    const byName = (m: (n: string) => boolean) => m(name) || (gr.group === '' && m(gr.resource));
    if (byName(excRes)) return { selected: false, reason: 'excluded by --exclude-resources' };
    if (config.includeResources.length && !byName(incRes)) return { selected: false, reason: 'not in --include-resources' };
    if (SKIPPED_BY_DEFAULT.includes(name) && !explicitlyIncluded(gr)) return { selected: false, reason: 'skipped by default (name it in --include-resources to dump it)' };
    // Namespace objects go with their contents, whatever the cluster-scoped setting.
    if (!gr.namespaced && !(gr.group === '' && gr.resource === 'namespaces')) {
      if (config.includeClusterResources === 'false') return { selected: false, reason: 'cluster-scoped (--include-cluster-resources false)' };
      if (config.includeClusterResources === 'auto' && !allNamespaces && !explicitlyIncluded(gr)) {
        return { selected: false, reason: 'cluster-scoped, and only some namespaces are dumped' };
      }
    }
    return { selected: true };
  };
  // Globs are matched once per namespace, not once per object.
  const namespaces = new Map<string, boolean>();
  const namespace: CompiledFilter['namespace'] = (ns) => {
    let ok = namespaces.get(ns);
    if (ok === undefined) namespaces.set(ns, (ok = (allNamespaces || incNs(ns)) && !excNs(ns)));
    return ok;
  };
  const object: CompiledFilter['object'] = (gr, obj) => {
    if (obj.metadata.labels?.[EXCLUDE_LABEL] === 'true') return false;
    const ns = obj.metadata.namespace;
    if (gr.namespaced) {
      if (!ns || !namespace(ns)) return false;
      if (SKIPPED_IN_NAMESPACE[grName(gr)]?.includes(ns)) return false;
    } else if (gr.group === '' && gr.resource === 'namespaces') {
      // A Namespace object goes with its contents.
      return namespace(obj.metadata.name);
    }
    return true;
  };
  const literal = config.includeNamespaces.length > 0 && !allNamespaces && config.includeNamespaces.every((p) => !/[*?[\]{}()!+@]/.test(p));
  const listNamespaces = () => (literal ? [...new Set(config.includeNamespaces)].filter((ns) => !excNs(ns)).sort() : undefined);
  return { config, resource, namespace, object, listNamespaces };
}
