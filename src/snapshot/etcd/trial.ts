import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findExecutable, freePort, startLocalEtcd } from '../../etcd/local.js';
import { BoltReader } from './bbolt.js';
import { liveEntries, scanLiveKeys } from './inspect.js';
import { restorePhysical } from './restore.js';

/** Key count and an order-independent hash of every live key and value. */
export interface ContentDigest {
  keys: number;
  sha256: string;
}

const MOD = 1n << 256n;

/** Accumulates entries in any order: the sum (mod 2^256) of sha256(len(key) || key || value). */
export class ContentHasher {
  private sum = 0n;
  keys = 0;

  add(key: Uint8Array, value: Uint8Array): void {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(key.length);
    const h = createHash('sha256').update(len).update(key).update(value).digest('hex');
    this.sum = (this.sum + BigInt(`0x${h}`)) % MOD;
    this.keys++;
  }

  digest(): ContentDigest {
    return { keys: this.keys, sha256: this.sum.toString(16).padStart(64, '0') };
  }
}

/** The live key/values of a snapshot file, as the TypeScript reader sees them. */
export async function snapshotDigest(path: string, signal?: AbortSignal): Promise<ContentDigest & { revision: number }> {
  const reader = await BoltReader.open(path);
  try {
    const scan = await scanLiveKeys(reader, signal ? { signal } : {});
    const h = new ContentHasher();
    for await (const e of liveEntries(reader, scan.live, signal ? { signal } : {})) h.add(e.key, e.value);
    return { ...h.digest(), revision: scan.revision };
  } finally {
    await reader.close();
  }
}

/** Every key/value of a running etcd, read in pages. */
export async function etcdDigest(endpoint: string, pageSize = 1000): Promise<ContentDigest> {
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({ hosts: [endpoint] });
  const h = new ContentHasher();
  try {
    let key = Buffer.from([0]);
    for (;;) {
      const res = await client.kv.range({ key, range_end: Buffer.from([0]), limit: String(pageSize) });
      for (const kv of res.kvs) h.add(kv.key, kv.value);
      if (!res.more || res.kvs.length === 0) break;
      key = Buffer.concat([res.kvs[res.kvs.length - 1]!.key, Buffer.from([0])]);
    }
    return h.digest();
  } finally {
    client.close();
  }
}

export interface RestoreTestResult {
  expected: ContentDigest;
  actual: ContentDigest;
  matches: boolean;
  tool: string;
  etcd: string;
  durationMs: number;
}

/**
 * Restores a snapshot into a throwaway data dir, starts etcd on it on free ports, and compares
 * its keys and values with the snapshot as the TypeScript reader reads it.
 */
export async function restoreTest(snapshotPath: string, opts: { etcd?: string | undefined; etcdutl?: string | undefined; tmpDir?: string | undefined; signal?: AbortSignal | undefined }): Promise<RestoreTestResult> {
  const started = Date.now();
  const etcdBin = await findExecutable('etcd', opts.etcd);
  const expected = await snapshotDigest(snapshotPath, opts.signal);
  const work = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'lifeboat-restore-test-'));
  try {
    const [clientPort, peerPort] = [await freePort(), await freePort()];
    const peer = `http://127.0.0.1:${peerPort}`;
    const restored = await restorePhysical({
      snapshotPath,
      dataDir: join(work, 'data'),
      name: 'restore-test',
      initialCluster: `restore-test=${peer}`,
      initialAdvertisePeerUrls: peer,
      bumpRevision: 0,
      skipHashCheck: false,
      tool: opts.etcdutl,
    });
    const etcd = await startLocalEtcd({ bin: etcdBin, dataDir: join(work, 'data'), name: 'restore-test', clientPort, peerPort });
    try {
      const actual = await etcdDigest(etcd.endpoint);
      return {
        expected: { keys: expected.keys, sha256: expected.sha256 },
        actual,
        matches: actual.keys === expected.keys && actual.sha256 === expected.sha256,
        tool: `${restored.tool.kind} ${restored.tool.version}`,
        etcd: etcdBin,
        durationMs: Date.now() - started,
      };
    } finally {
      await etcd.stop();
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
