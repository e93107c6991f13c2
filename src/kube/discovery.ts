import pLimit from 'p-limit';
import type { GroupResource } from '../snapshot/resources/types.js';
import type { KubeClient } from './client.js';
import { KubeApiError } from './errors.js';

/** A served resource that can be listed and read: what a dump walks. */
export interface ServedResource extends GroupResource {
  version: string;
  /** "v1", "apps/v1", "example.com/v1alpha1". */
  groupVersion: string;
  verbs: string[];
  /** Subresources served with it, e.g. ["status", "scale"]. */
  subresources: string[];
}

interface APIResourceList {
  groupVersion: string;
  resources: { name: string; kind: string; namespaced: boolean; verbs: string[] }[];
}
interface APIGroupList {
  groups: { name: string; preferredVersion?: { groupVersion: string; version: string }; versions: { groupVersion: string; version: string }[] }[];
}

/**
 * Every group/version/resource the API server serves, at each group's preferred version, CRDs and
 * available aggregated APIs included; only resources with list and get, each with the names of its
 * subresources (not listed as resources themselves). An aggregated API that does not answer is
 * reported, not fatal.
 */
export async function discoverResources(client: KubeClient, opts: { signal?: AbortSignal } = {}): Promise<{ resources: ServedResource[]; warnings: string[] }> {
  const warnings: string[] = [];
  const groupVersions: string[] = [];
  const core = await client.request<{ versions: string[] }>('/api', { signal: opts.signal });
  if (core.versions.includes('v1')) groupVersions.push('v1');
  const groups = await client.request<APIGroupList>('/apis', { signal: opts.signal });
  for (const g of groups.groups) {
    const gv = g.preferredVersion?.groupVersion ?? g.versions[0]?.groupVersion;
    if (gv) groupVersions.push(gv);
  }
  const limit = pLimit(8);
  const lists = await Promise.all(
    groupVersions.map((gv) =>
      limit(async () => {
        try {
          return await client.request<APIResourceList>(gv === 'v1' ? '/api/v1' : `/apis/${gv}`, { signal: opts.signal });
        } catch (err) {
          if (err instanceof KubeApiError && (err.status === 503 || err.status === 404)) {
            warnings.push(`API group ${gv} is not available (${err.status}): its resources are not included`);
            return undefined;
          }
          throw err;
        }
      }),
    ),
  );
  const resources: ServedResource[] = [];
  for (const list of lists) {
    if (!list) continue;
    const [group, version] = list.groupVersion.includes('/') ? list.groupVersion.split('/') : ['', list.groupVersion];
    const subresources = new Map<string, string[]>();
    for (const r of list.resources) {
      const [parent, sub] = r.name.split('/');
      if (sub) subresources.set(parent!, [...(subresources.get(parent!) ?? []), sub]);
    }
    for (const r of list.resources) {
      if (r.name.includes('/') || !r.verbs.includes('list') || !r.verbs.includes('get')) continue;
      resources.push({
        group: group!,
        version: version!,
        groupVersion: list.groupVersion,
        resource: r.name,
        kind: r.kind,
        namespaced: r.namespaced,
        verbs: r.verbs,
        subresources: subresources.get(r.name) ?? [],
      });
    }
  }
  resources.sort((a, b) => (a.group + '/' + a.resource).localeCompare(b.group + '/' + b.resource));
  return { resources, warnings };
}

/** The collection path of a resource, across all namespaces or in one. */
export function collectionPath(r: Pick<ServedResource, 'groupVersion' | 'resource' | 'namespaced'>, namespace?: string): string {
  const base = r.groupVersion === 'v1' ? '/api/v1' : `/apis/${r.groupVersion}`;
  return namespace && r.namespaced ? `${base}/namespaces/${encodeURIComponent(namespace)}/${r.resource}` : `${base}/${r.resource}`;
}
