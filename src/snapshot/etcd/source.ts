import { stat } from 'node:fs/promises';
import { NotFoundError, UsageError } from '../../cli/errors.js';
import type { Catalogue } from '../../store/catalogue.js';
import { parseBackupId } from '../../store/ids.js';
import type { BackupManifest, ObjectRecord } from '../../store/manifest.js';
import type { DecryptionConfig } from '../pipeline/encryption.js';
import { fetchToTempFile } from '../pipeline/fetch.js';
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
  const trailer = new TrailerCheck({ required: !opts.skipHashCheck, what: `Backup ${manifest.id}` });
  const file = await fetchToTempFile(cat, manifest, rec, 'snapshot.db', opts, [trailer]);
  return { path: file.path, manifest, hasTrailer: trailer.result?.hasTrailer ?? false, cleanup: file.cleanup };
}
