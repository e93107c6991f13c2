import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import type { Catalogue } from '../../src/store/catalogue.js';

async function tarOf(entries: [string, string][]): Promise<Buffer> {
  const tar = tarPack();
  for (const [name, text] of entries) tar.entry({ name }, text);
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const c of tar as unknown as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

/** A small, valid resource-dump tar: `count` ConfigMaps in namespace `ns` and a matching index.json. */
export async function tinyDumpTar(count = 2, ns = 'demo'): Promise<Buffer> {
  const entries: [string, string][] = [];
  for (let i = 0; i < count; i++) {
    entries.push([`core/configmaps/${ns}/cm-${i}.yaml`, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: ${ns}\ndata:\n  i: "${i}"\n`]);
  }
  entries.push(['index.json', JSON.stringify({ format: 1, resources: [{ resource: 'configmaps', groupVersion: 'v1', kind: 'ConfigMap', namespaced: true, objects: count, listResourceVersion: '1' }] })]);
  return tarOf(entries);
}

/**
 * A resource-dump tar of the given `<group>/<resource>/<namespace or _cluster>/<name>.yaml`
 * entries, with an index.json that counts them written last, as lifeboat writes it.
 */
export async function dumpTar(entries: [string, string][]): Promise<Buffer> {
  const counts = new Map<string, number>();
  for (const [name] of entries) {
    const [group, resource] = name.split('/');
    const gr = group === 'core' ? resource! : `${resource}.${group}`;
    counts.set(gr, (counts.get(gr) ?? 0) + 1);
  }
  const index = { format: 1, resources: [...counts].map(([resource, objects]) => ({ resource, objects })), failed: [], warnings: [] };
  return tarOf([...entries, ['index.json', JSON.stringify(index)]]);
}

/** Byte offset of each entry's header in a tar, by name. */
export function tarEntryOffsets(tar: Buffer): Map<string, number> {
  const out = new Map<string, number>();
  for (let at = 0; at + 512 <= tar.length; ) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const name = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
    out.set(name, at);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** Stores `bytes` as an uncompressed resource dump whose manifest hashes match them; returns its id. */
export async function storeDumpTar(cat: Catalogue, bytes: Buffer): Promise<string> {
  const w = cat.begin('resources');
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await w.put('resources.tar', Readable.from([bytes]), { describe: () => ({ codec: 'none' as const, payload: { size: bytes.length, sha256 } }) });
  return (await w.commit({ source: { cluster: 'test' } })).id;
}
