import { pack as tarPack } from 'tar-stream';

/** A small, valid resource-dump tar: `count` ConfigMaps in namespace `ns` and a matching index.json. */
export async function tinyDumpTar(count = 2, ns = 'demo'): Promise<Buffer> {
  const tar = tarPack();
  for (let i = 0; i < count; i++) {
    tar.entry({ name: `core/configmaps/${ns}/cm-${i}.yaml` }, `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: ${ns}\ndata:\n  i: "${i}"\n`);
  }
  tar.entry({ name: 'index.json' }, JSON.stringify({ format: 1, resources: [{ resource: 'configmaps', groupVersion: 'v1', kind: 'ConfigMap', namespaced: true, objects: count, listResourceVersion: '1' }] }));
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const c of tar as unknown as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}
