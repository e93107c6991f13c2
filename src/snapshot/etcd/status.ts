/**
 * `snapshot status` numbers, the same as `etcdctl snapshot status` (3.4) and `etcdutl snapshot
 * status` (3.5) print for the same file:
 *  - hash: CRC-32C over, for each top-level bucket in key order, its name and then every key and
 *    value of its entries in key order (a nested bucket's entry contributes its key only);
 *  - revision: main revision of the last key of bucket `key`;
 *  - totalKey: entries of the top-level buckets (a nested bucket counts as one entry);
 *  - totalSize: tx.Size() = high water mark x page size (the 32-byte sha256 trailer excluded).
 * Like etcdutl, the file's integrity is checked in the same pass (bbolt's tx.Check rules).
 */
import { crc32c } from '@node-rs/crc32';
import { IntegrityError } from '../../cli/errors.js';
import { BoltReader, parseBucketValue, type BucketRef } from './bbolt.js';

export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
  /** Storage version recorded by etcd 3.6+ (meta bucket key storageVersion), when present. */
  version?: string;
}

export async function snapshotStatus(path: string, opts: { signal?: AbortSignal } = {}): Promise<SnapshotStatus> {
  const reader = await BoltReader.open(path);
  try {
    return await statusOf(reader, opts.signal);
  } finally {
    await reader.close();
  }
}

const KEY_BUCKET = 'key';

export async function statusOf(reader: BoltReader, signal?: AbortSignal): Promise<SnapshotStatus> {
  const checker = await reader.createChecker();
  const walk = { checker, ...(signal ? { signal } : {}) };
  const top: { name: Buffer; ref: BucketRef }[] = [];
  for await (const leaf of reader.leaves(reader.rootRef(), walk)) {
    for (let i = 0; i < leaf.count; i++) {
      const name = Buffer.from(leaf.key(i));
      if (!leaf.isBucket(i)) throw new IntegrityError(`${reader.path} is corrupt: top-level entry ${JSON.stringify(name.toString())} is not a bucket.`);
      top.push({ name, ref: parseBucketValue(Buffer.from(leaf.value(i)), JSON.stringify(name.toString())) });
    }
  }

  let hash = 0;
  let totalKey = 0;
  let revision = 0;
  const nested: { path: Buffer[]; ref: BucketRef }[] = [];
  for (const { name, ref } of top) {
    hash = crc32c(name, hash);
    const isKey = name.toString() === KEY_BUCKET;
    // Nothing below keeps a view into a leaf (nested bucket refs are copied): buffers can be recycled.
    for await (const batch of reader.leafBatches(ref, { ...walk, reuseBuffers: true })) {
      for (const leaf of batch) {
        const n = leaf.count;
        if (n === 0) continue;
        totalKey += n;
        const range = leaf.contiguousRange();
        if (range) {
          hash = crc32c(leaf.buf.subarray(range[0], range[1]), hash);
        } else {
          for (let i = 0; i < n; i++) {
            hash = crc32c(leaf.key(i), hash);
            if (leaf.isBucket(i)) nested.push({ path: [name, Buffer.from(leaf.key(i))], ref: parseBucketValue(Buffer.from(leaf.value(i)), 'nested') });
            else hash = crc32c(leaf.value(i), hash);
          }
        }
        if (isKey) {
          const k = leaf.key(n - 1);
          if (k.length >= 8) revision = k.readUInt32BE(0) * 0x1_0000_0000 + k.readUInt32BE(4);
        }
      }
    }
  }
  // Nested buckets are not part of the numbers, but their pages must be checked like the rest.
  for (const from of nested) {
    for await (const _ of reader.walkBuckets(walk, from)) {
      // checked while walked
    }
  }
  const problems = checker.finish();
  if (problems.length) {
    throw new IntegrityError(
      `${reader.path} failed the bbolt integrity check: ${checker.problemCount} problem${checker.problemCount === 1 ? '' : 's'}, first: ${problems[0]}.`,
      { hint: problems.length > 1 ? `Also: ${problems.slice(1, 5).join('; ')}${checker.problemCount > 5 ? '; ...' : ''}` : undefined },
    );
  }

  const result: SnapshotStatus = { hash: hash >>> 0, revision, totalKey, totalSize: reader.size };
  const storageVersion = await reader.get(['meta'], 'storageVersion');
  if (storageVersion) result.version = storageVersion.toString();
  return result;
}

/** Go's humanize.Bytes (SI units, as etcdctl's table prints sizes): 24576 -> "25 kB". */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.min(units.length - 1, Math.floor(Math.log(n) / Math.log(1000)));
  const v = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${units[e]}`;
}
