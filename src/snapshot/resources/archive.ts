import yaml from 'js-yaml';
import type { GroupResource, KubeObject } from './types.js';
import { emitYaml } from './yaml-emit.js';

export const INDEX_NAME = 'index.json';

/** `<group>/<resource>/<namespace or _cluster>/<name>.yaml`; the core group is "core". */
export function archivePath(gr: Pick<GroupResource, 'group' | 'resource'>, namespace: string | undefined, name: string): string {
  return `${gr.group || 'core'}/${gr.resource}/${namespace ?? '_cluster'}/${name}.yaml`;
}

/** Parses an archive path back; undefined for anything that is not one (index.json, junk). */
export function parseArchivePath(path: string): { group: string; resource: string; namespace: string | undefined; name: string } | undefined {
  const m = /^([^/]+)\/([^/]+)\/([^/]+)\/([^/]+)\.yaml$/.exec(path);
  if (!m) return undefined;
  const [, group, resource, ns, name] = m;
  return { group: group === 'core' ? '' : group!, resource: resource!, namespace: ns === '_cluster' ? undefined : ns, name: name! };
}

/** Rejects entry names that could escape an extraction directory. */
export function safeEntryName(name: string): boolean {
  return !(name.startsWith('/') || name.includes('\\') || name.includes('\0') || name.split('/').some((p) => p === '..' || p === '.' || p === ''));
}

/** The object as served, minus managedFields (which restore never needs), with its type set. */
export function forArchive(obj: KubeObject, apiVersion: string, kind: string): KubeObject {
  const { managedFields: _managedFields, ...metadata } = obj.metadata;
  const { apiVersion: _a, kind: _k, metadata: _m, ...rest } = obj;
  // apiVersion and kind first, as kubectl writes them.
  return { apiVersion, kind, metadata, ...rest };
}

/** One object as YAML (emitYaml; js-yaml for the rare object it leaves alone). */
export function toYaml(obj: KubeObject): string {
  return emitYaml(obj) ?? yaml.dump(obj, { lineWidth: -1, noRefs: true, sortKeys: false });
}

export function fromYaml(text: string): KubeObject {
  const v = yaml.load(text);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a Kubernetes object');
  const o = v as KubeObject;
  if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') throw new Error('missing apiVersion, kind or metadata.name');
  return o;
}
