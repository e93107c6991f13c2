import { Etcd3 } from 'etcd3';
import { patternBytes } from './streams.js';

/**
 * Fills etcd with Kubernetes-like keys: JSON ConfigMaps and protobuf-looking Secrets under
 * /registry, spread over namespaces; returns how many keys were written.
 */
export async function fillEtcd(endpoint: string, opts: { count: number; valueSize?: number; prefix?: string; client?: Etcd3 } = { count: 100 }): Promise<number> {
  const client = opts.client ?? new Etcd3({ hosts: [endpoint] });
  const size = opts.valueSize ?? 512;
  const filler = patternBytes(size, 99).toString('base64').slice(0, size);
  try {
    const batch = 64;
    for (let i = 0; i < opts.count; i += batch) {
      const puts = [];
      for (let j = i; j < Math.min(opts.count, i + batch); j++) {
        const ns = `ns-${j % 10}`;
        if (j % 3 === 0) {
          const value = Buffer.concat([Buffer.from('k8s\u0000\n\u0002v1\u0012\u0006Secret'), Buffer.from(filler)]);
          puts.push(client.put(`${opts.prefix ?? '/registry'}/secrets/${ns}/secret-${j}`).value(value));
        } else {
          const value = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${j}`, namespace: ns }, data: { payload: filler } });
          puts.push(client.put(`${opts.prefix ?? '/registry'}/configmaps/${ns}/cm-${j}`).value(value));
        }
      }
      await Promise.all(puts);
    }
    return opts.count;
  } finally {
    if (!opts.client) client.close();
  }
}

/** Every key and value (base64) in an etcd, for comparing two of them. */
export async function dumpEtcd(endpoint: string): Promise<Map<string, string>> {
  const client = new Etcd3({ hosts: [endpoint] });
  try {
    const all = await client.getAll().prefix('').buffers();
    return new Map(Object.entries(all).map(([k, v]) => [k, v.toString('base64')]));
  } finally {
    client.close();
  }
}

export async function currentRevision(endpoint: string): Promise<number> {
  const client = new Etcd3({ hosts: [endpoint] });
  try {
    return Number((await client.maintenance.status()).header.revision);
  } finally {
    client.close();
  }
}
