import pLimit from 'p-limit';
import { LifeboatError, UnsafeTargetError } from '../../cli/errors.js';
import { firstHealthy, type EtcdConnection, type MemberStatus } from '../../etcd/connection.js';
import { BoltReader } from './bbolt.js';
import { liveEntries, scanLiveKeys } from './inspect.js';

export interface LogicalRestoreOptions {
  snapshotPath: string;
  connection: EtcdConnection;
  /** Only keys starting with this prefix. */
  prefix?: string | undefined;
  /** Write even when the target already has keys (under the prefix). */
  force: boolean;
  /** Keys per transaction (etcd's --max-txn-ops defaults to 128). */
  batchKeys?: number;
  /** Bytes per transaction (etcd's --max-request-bytes defaults to 1.5 MiB). */
  batchBytes?: number;
  concurrency?: number;
  signal?: AbortSignal;
  onProgress?: (written: number, total: number) => void;
}

export interface LogicalRestoreResult {
  endpoint: string;
  etcdVersion: string;
  snapshotRevision: number;
  keys: number;
  bytes: number;
  /** Keys that were attached to a lease in the snapshot: written without it (leases do not carry over). */
  leasesDropped: number;
  existingKeysBefore: number;
  durationMs: number;
}

/**
 * Writes every key/value live at the snapshot's revision into a running etcd with batched
 * transactions (values as they were; revisions are the target's own). Refuses a target that
 * already holds keys under the prefix unless `force`. A failure part-way says how many keys were
 * written: a logical restore is not atomic across transactions.
 */
export async function restoreLogical(opts: LogicalRestoreOptions): Promise<LogicalRestoreResult> {
  const started = Date.now();
  const reader = await BoltReader.open(opts.snapshotPath);
  let status: MemberStatus | undefined;
  try {
    const scan = await scanLiveKeys(reader, { prefix: opts.prefix, signal: opts.signal });
    const total = scan.live.count;
    let leasesDropped = 0;
    for (const k of scan.live) if (k.lease !== 0n) leasesDropped++;

    const conn = await firstHealthy(opts.connection, opts.signal);
    status = conn.status;
    const client = conn.client;
    try {
      const prefix = Buffer.from(opts.prefix ?? '');
      const existing = Number(
        (
          await client.kv.range({
            key: prefix.length ? prefix : Buffer.from([0]),
            range_end: prefix.length ? prefixEnd(prefix) : Buffer.from([0]),
            count_only: true,
          })
        ).count,
      );
      if (existing > 0 && !opts.force) {
        throw new UnsafeTargetError(`The target etcd ${status.endpoint} already has ${existing} key(s)${opts.prefix ? ` under ${opts.prefix}` : ''}; refusing to write into it.`, {
          hint: 'Restore into an empty etcd (or prefix), or pass --force to overwrite keys that exist.',
        });
      }
      const maxKeys = opts.batchKeys ?? 128;
      const maxBytes = opts.batchBytes ?? 1024 * 1024;
      const limit = pLimit(opts.concurrency ?? 4);
      const inflight: Promise<void>[] = [];
      let written = 0;
      let bytes = 0;
      let failure: unknown;
      let batch: { key: Buffer; value: Buffer }[] = [];
      let batchSize = 0;
      const flush = () => {
        const ops = batch;
        batch = [];
        batchSize = 0;
        const p = limit(async () => {
          if (failure) return;
          try {
            await client.kv.txn({ compare: [], success: ops.map((o) => ({ request_put: { key: o.key, value: o.value } })), failure: [] });
            written += ops.length;
            opts.onProgress?.(written, total);
          } catch (err) {
            failure ??= err;
          }
        });
        inflight.push(p);
      };
      for await (const e of liveEntries(reader, scan.live, opts.signal ? { signal: opts.signal } : {})) {
        if (failure) break;
        const size = e.key.length + e.value.length + 16;
        if (batch.length > 0 && (batch.length >= maxKeys || batchSize + size > maxBytes)) flush();
        // The reader reuses its buffers: copy what is kept past this iteration.
        batch.push({ key: Buffer.from(e.key), value: Buffer.from(e.value) });
        batchSize += size;
        bytes += e.value.length;
        // Bounded memory: at most a few batches queued behind the ones being written.
        if (inflight.length >= 8) await Promise.all(inflight.splice(0, 4));
      }
      if (batch.length && !failure) flush();
      await Promise.all(inflight);
      if (opts.signal?.aborted) failure ??= opts.signal.reason;
      if (failure) {
        const msg = failure instanceof Error ? failure.message.split('\n')[0] : String(failure);
        throw new LifeboatError(`Restore into ${status.endpoint} failed after ${written} of ${total} keys were written: ${msg}. The target now holds a partial restore.`, {
          cause: failure,
          hint: 'Fix the cause and run again with --force (keys are written whole; running again overwrites them).',
        });
      }
      return {
        endpoint: status.endpoint,
        etcdVersion: status.version,
        snapshotRevision: scan.revision,
        keys: written,
        bytes,
        leasesDropped,
        existingKeysBefore: existing,
        durationMs: Date.now() - started,
      };
    } finally {
      client.close();
    }
  } finally {
    await reader.close();
  }
}

/** The smallest key greater than every key with this prefix (etcd's range_end for a prefix). */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
