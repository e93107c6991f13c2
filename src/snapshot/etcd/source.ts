import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { IntegrityError, NotFoundError, UsageError } from '../../cli/errors.js';
import type { Catalogue } from '../../store/catalogue.js';
import { HashCounter } from '../../store/hashing.js';
import { parseBackupId } from '../../store/ids.js';
import type { BackupManifest, ObjectRecord } from '../../store/manifest.js';
import { decompressor } from '../pipeline/codec.js';
import { decryptor, type DecryptionConfig } from '../pipeline/encryption.js';
import { TrailerCheck } from './trailer.js';

/** A snapshot as a local file, ready for random access or for etcdutl. */
export interface SnapshotFile {
  path: string;
  /** Set when the snapshot came from a stored backup. */
  manifest?: BackupManifest;
  /** Whether the file ends with etcd's sha256 trailer (checked). */
  hasTrailer: boolean;
  /** Removes the private temporary copy, if one was made. */
  cleanup(): Promise<void>;
}

export interface SnapshotSourceOptions {
  /** Needed for backup ids. */
  catalogue?: Catalogue | (() => Promise<Catalogue>);
  decryption?: DecryptionConfig;
  /** Where a stored backup is downloaded to (default: the OS temp dir). */
  tmpDir?: string;
  /** Accept a db without etcd's trailer (a file copied from a data dir). */
  skipHashCheck?: boolean;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

export function snapshotRecord(manifest: BackupManifest): ObjectRecord {
  const rec = manifest.objects.find((o) => o.name.startsWith('snapshot.db'));
  if (manifest.kind !== 'etcd' || !rec) throw new UsageError(`Backup ${manifest.id} is not an etcd snapshot.`);
  return rec;
}

/**
 * Resolves a backup id or a file path to a local snapshot file. A stored backup is streamed from
 * the store through decryption and decompression into a private temporary file (0600 in a 0700
 * directory), checking the sha256 of the stored bytes, of the payload, and etcd's trailer on the
 * way; any mismatch is an IntegrityError and the file is removed.
 */
export async function openSnapshot(arg: string, opts: SnapshotSourceOptions = {}): Promise<SnapshotFile> {
  if (parseBackupId(arg)) {
    if (parseBackupId(arg)?.kind !== 'etcd') throw new UsageError(`Backup ${arg} is not an etcd snapshot.`);
    const cat = typeof opts.catalogue === 'function' ? await opts.catalogue() : opts.catalogue;
    if (!cat) throw new UsageError(`${arg} is a backup id but no store was given.`);
    return downloadSnapshot(cat, (await cat.describe(arg)).manifest, opts);
  }
  const st = await stat(arg).catch(() => undefined);
  if (!st) throw new NotFoundError(`No snapshot file or backup ${arg}.`, { hint: 'Give a file path or a backup id from `lifeboat backups list`.' });
  if (!st.isFile()) throw new UsageError(`${arg} is not a file.`);
  return { path: arg, hasTrailer: st.size % 512 === 32, cleanup: async () => undefined };
}

export async function downloadSnapshot(cat: Catalogue, manifest: BackupManifest, opts: SnapshotSourceOptions = {}): Promise<SnapshotFile> {
  const rec = snapshotRecord(manifest);
  if (rec.encryption && !opts.decryption?.identities.length && !opts.decryption?.passphrase) {
    throw new UsageError(`Backup ${manifest.id} is encrypted.`, { hint: 'Give --identity-file (age secret keys) or --passphrase-file.' });
  }
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'lifeboat-snapshot-'));
  const path = join(dir, 'snapshot.db');
  const cleanup = () => rm(dir, { recursive: true, force: true });
  let decompressError: Error | undefined;
  try {
    const stored = new HashCounter();
    const payload = new HashCounter();
    const trailer = new TrailerCheck({ required: !opts.skipHashCheck, what: `Backup ${manifest.id}` });
    const out = createWriteStream('', { fd: await open(path, 'wx', 0o600), flush: true });
    const decompress = decompressor(rec.codec ?? 'none');
    decompress.once('error', (err) => (decompressError = err));
    const total = rec.size;
    stored.on('data', () => opts.onProgress?.(stored.bytes, total));
    await pipeline(
      [
        await cat.open(manifest, rec.name, opts.signal ? { signal: opts.signal } : {}),
        stored,
        ...(rec.encryption ? [decryptor(opts.decryption ?? { identities: [] })] : []),
        decompress,
        payload,
        trailer,
        out,
      ],
      opts.signal ? { signal: opts.signal } : {},
    );
    if (stored.bytes !== rec.size || stored.sha256 !== rec.sha256) {
      throw new IntegrityError(`Backup ${manifest.id}: the stored object does not match its manifest (sha256 or size differs).`);
    }
    if (rec.payload && (payload.bytes !== rec.payload.size || payload.sha256 !== rec.payload.sha256)) {
      throw new IntegrityError(`Backup ${manifest.id}: the decrypted, decompressed snapshot does not match its manifest.`);
    }
    return { path, manifest, hasTrailer: trailer.result?.hasTrailer ?? false, cleanup };
  } catch (err) {
    await cleanup();
    if (decompressError && !(err instanceof IntegrityError)) {
      throw new IntegrityError(`Backup ${manifest.id} cannot be decompressed (${rec.codec}): ${decompressError.message}.`, { cause: err });
    }
    throw err;
  }
}
