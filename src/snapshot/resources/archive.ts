import yaml from 'js-yaml';
import type { GroupResource, KubeObject } from './types.js';

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

/**
 * Characters JSON.stringify leaves as they are that a YAML reader may refuse or read otherwise
 * (DEL and C1 controls are not printable for YAML, js-yaml rejects them; YAML 1.1 reads U+2028
 * and U+2029 as line breaks).
 */
const NOT_YAML_SAFE = /[\x7f-\x9f\u2028\u2029]/;
const NOT_YAML_SAFE_ALL = new RegExp(NOT_YAML_SAFE.source, 'g');

/**
 * One archive entry: the object as indented JSON, which is YAML 1.2 (a flow mapping) and which
 * kubectl reads as JSON. JSON.stringify is several times faster than a YAML dumper (measured in
 * docs/benchmarks.md) and the dump writes one entry per object.
 */
export function entryText(obj: KubeObject): string {
  const text = JSON.stringify(obj, null, 2);
  return (NOT_YAML_SAFE.test(text) ? text.replace(NOT_YAML_SAFE_ALL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`) : text) + '\n';
}

/**
 * An archive entry back: JSON (what dumps write now) with JSON.parse, anything else, such as the
 * block YAML of older dumps or a hand-made archive, with js-yaml.
 */
export function fromYaml(text: string): KubeObject {
  const v = parseEntry(text);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a Kubernetes object');
  const o = v as KubeObject;
  if (typeof o.apiVersion !== 'string' || typeof o.kind !== 'string' || typeof o.metadata?.name !== 'string') throw new Error('missing apiVersion, kind or metadata.name');
  return o;
}

function parseEntry(text: string): unknown {
  if (/^[\ufeff\s]*\{/.test(text)) {
    try {
      return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
    } catch {
      // A YAML flow mapping that is not JSON: js-yaml below.
    }
  }
  return yaml.load(text);
}
