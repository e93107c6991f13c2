import { pipeline, type Readable, type Transform } from 'node:stream';
import { LifeboatError } from '../../cli/errors.js';
import { describeEtcdError, type EtcdConnection, type MemberStatus } from '../../etcd/connection.js';
import { firstAnswering } from '../../etcd/h2-member.js';
import type { Catalogue } from '../../store/catalogue.js';
import type { BackupManifest } from '../../store/manifest.js';
import { CODEC_SUFFIX, compressor, type Codec } from '../pipeline/codec.js';
import { AGE_SUFFIX, encryptor, recipientFingerprints, type EncryptionConfig } from '../pipeline/encryption.js';
import { PiecePool } from '../pipeline/piece-pool.js';
import { OUTPUT_CHUNK, SnapshotStream } from './snapshot-stream.js';
import { TrailerCheck, TRAILER_SIZE } from './trailer.js';

export interface SnapshotOptions {
  connection: EtcdConnection;
  codec: Codec;
  level?: number | undefined;
  encryption?: EncryptionConfig | undefined;
  labels?: Record<string, string>;
  /** No bytes from etcd for this long fails the run (0 = never). */
  stallTimeoutMs: number;
  signal?: AbortSignal;
  /** Called as bytes arrive from etcd: received so far, and the db size etcd reported. */
  onProgress?: (received: number, expected: number) => void;
  /** Called once the serving member is known. */
  onConnected?: (status: MemberStatus) => void;
}

export interface SnapshotDetails {
  endpoint: string;
  etcdVersion: string;
  clusterId: string;
  memberId: string;
  leader: string;
  /** The member's revision from a Status call just before the snapshot started. */
  revision: number;
  /** Size of the db (without etcd's 32-byte trailer) and its sha256, as checked against the trailer. */
  dbSize: number;
  dbSha256: string;
  durationMs: number;
}

/** The snapshot object's name: snapshot.db[.zst|.gz][.age]. */
export function snapshotObjectName(codec: Codec, encrypted: boolean): string {
  return `snapshot.db${CODEC_SUFFIX[codec]}${encrypted ? AGE_SUFFIX : ''}`;
}

/**
 * Streams a snapshot from the first healthy etcd member through trailer check, compression and
 * encryption into the store, then commits the manifest. No temporary file, no whole snapshot in
 * memory. If anything fails (etcd dies, the trailer does not match, the store fails, a signal),
 * the partial object is removed and no backup exists.
 */
export async function takeSnapshot(cat: Catalogue, opts: SnapshotOptions): Promise<BackupManifest> {
  const started = Date.now();
  // Status and auth over node:http2 as well: loading etcd3 (grpc-js, protobufjs and its parsed
  // .proto files) would cost ~0.3 s and ~25 MB before the first byte.
  const { status, transport, token } = await firstAnswering(opts.connection, opts.signal);
  opts.onConnected?.(status);
  const writer = cat.begin('etcd', { labels: opts.labels ?? {} });
  const name = snapshotObjectName(opts.codec, Boolean(opts.encryption));
  let received = 0;
  let source: SnapshotStream | undefined;
  // zstd gives the received pieces back once it has taken them in, so they are reused.
  const pool = opts.codec === 'zstd' ? new PiecePool(OUTPUT_CHUNK) : undefined;
  try {
    source = new SnapshotStream(transport, {
      pool,
      token,
      windowBytes: RECEIVE_WINDOW,
      stallTimeoutMs: opts.stallTimeoutMs,
      what: `etcd (${status.endpoint})`,
      onBytes: (n) => opts.onProgress?.((received += n), status.dbSize),
    });
    const trailer = new TrailerCheck({ required: true, what: `The snapshot from ${status.endpoint}` });
    const stages = [
      source,
      trailer,
      ...(opts.codec === 'none' ? [] : [compressor(opts.codec, opts.level, pool ? { consumed: (piece) => pool.release(piece) } : {})]),
      ...(opts.encryption ? [encryptor(opts.encryption)] : []),
    ];
    // Stored as received: the trailer check's digest of the whole stream is the stored bytes' digest.
    const storedAsReceived = opts.codec === 'none' && !opts.encryption;
    let streamError: Error | undefined;
    const body = pipeline(stages as unknown as [Readable, ...Transform[]], (err) => {
      if (err) streamError ??= err;
    }) as unknown as Readable;
    const onAbort = () => source?.destroy(opts.signal?.reason instanceof Error ? opts.signal.reason : new Error('aborted'));
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await writer.put(name, body, {
        expectedSize: status.dbSize + TRAILER_SIZE,
        ...(opts.signal ? { signal: opts.signal } : {}),
        ...(storedAsReceived ? { knownSha256: () => trailer.result?.payloadSha256 ?? '' } : {}),
        describe: () => ({
          payload: { size: trailer.bytes, sha256: trailer.result?.payloadSha256 ?? '' },
          codec: opts.codec,
          ...(opts.encryption ? { encryption: { scheme: 'age' as const, recipients: recipientFingerprints(opts.encryption) } } : {}),
        }),
      });
    } catch (err) {
      throw streamFailure(streamError ?? err, status.endpoint);
    } finally {
      opts.signal?.removeEventListener('abort', onAbort);
    }
    if (streamError) throw streamFailure(streamError, status.endpoint);
    if (!trailer.result) throw new LifeboatError('The snapshot stream ended without being checked; not keeping it.');
    const details: SnapshotDetails = {
      endpoint: status.endpoint,
      etcdVersion: status.version,
      clusterId: status.clusterId,
      memberId: status.memberId,
      leader: status.leader,
      revision: status.revision,
      dbSize: trailer.bytes - TRAILER_SIZE,
      dbSha256: trailer.result.dbSha256,
      durationMs: Date.now() - started,
    };
    return await writer.commit({
      source: { cluster: status.clusterId, endpoint: status.endpoint, etcdVersion: status.version, memberId: status.memberId },
      details: { ...details },
    });
  } catch (err) {
    source?.destroy();
    await writer.abort();
    throw err;
  }
}

/**
 * The receive window of the snapshot call. etcd sends the snapshot in 32 KiB messages; a window
 * of a few MiB keeps it sending while this process is busy, where the default 64 KiB would make
 * it wait for every window update.
 */
const RECEIVE_WINDOW = 4 * 1024 * 1024;

/** Keeps lifeboat's own errors; turns gRPC/stream errors into one sentence. */
function streamFailure(err: unknown, endpoint: string): unknown {
  if (err instanceof LifeboatError) return err;
  if (err instanceof Error && err.name === 'AbortError') return err;
  const reason = describeEtcdError(err);
  const hint = reason.startsWith('permission denied') ? { hint: 'etcd sends snapshots only to a user with the root role.' } : {};
  return new LifeboatError(`The snapshot from ${endpoint} failed: ${reason}; nothing was stored.`, { cause: err, ...hint });
}
