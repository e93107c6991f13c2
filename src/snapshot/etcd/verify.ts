import { IntegrityError, LifeboatError, UsageError } from '../../cli/errors.js';
import type { Catalogue } from '../../store/catalogue.js';
import type { BackupManifest } from '../../store/manifest.js';
import type { VerifyReport } from '../../store/verify.js';
import { downloadSnapshot, snapshotRecord, type SnapshotSourceOptions } from './source.js';
import { snapshotStatus, type SnapshotStatus } from './status.js';
import { restoreTest, type RestoreTestResult } from './trial.js';

export interface EtcdPayloadCheck {
  checked: boolean;
  /** Why the payload was not checked (an encrypted backup without a key). */
  reason?: string;
  status?: SnapshotStatus;
}

export interface EtcdVerifyOptions extends SnapshotSourceOptions {
  restoreTest?: { etcd?: string | undefined; etcdutl?: string | undefined } | undefined;
}

/**
 * Beyond the stored bytes: decrypts and decompresses the snapshot into a private temporary file,
 * checking its sha256 and etcd's trailer, reads it with the bbolt reader (consistency checks and
 * status numbers), and with a restore test restores it into a throwaway etcd and compares every
 * key and value. Throws IntegrityError (exit 5) on any mismatch.
 */
export async function verifyEtcdPayload(cat: Catalogue, manifest: BackupManifest, stored: VerifyReport, opts: EtcdVerifyOptions): Promise<{ payload: EtcdPayloadCheck; restoreTest?: RestoreTestResult }> {
  const rec = snapshotRecord(manifest);
  const canDecrypt = !rec.encryption || Boolean(opts.decryption?.identities.length || opts.decryption?.passphrase);
  if (!canDecrypt) {
    if (opts.restoreTest) throw new UsageError(`Backup ${manifest.id} is encrypted; a restore test needs its key.`, { hint: 'Give --identity-file or --passphrase-file.' });
    return { payload: { checked: false, reason: 'encrypted: give --identity-file or --passphrase-file to check the snapshot inside' } };
  }
  if (!stored.ok) return { payload: { checked: false, reason: 'the stored object failed its check' } };
  const snap = await downloadSnapshot(cat, manifest, opts);
  try {
    const status = await snapshotStatus(snap.path, opts.signal ? { signal: opts.signal } : {});
    const details = manifest.details as { revision?: number };
    // An etcd nothing was ever written to reports revision 1 while its db holds no revision (0).
    const neverWritten = status.revision === 0 && details.revision === 1;
    if (typeof details.revision === 'number' && status.revision < details.revision && !neverWritten) {
      throw new IntegrityError(`Backup ${manifest.id}: the snapshot's revision ${status.revision} is older than the ${details.revision} recorded when it was taken.`);
    }
    const payload: EtcdPayloadCheck = { checked: true, status };
    if (!opts.restoreTest) return { payload };
    const test = await restoreTest(snap.path, { ...opts.restoreTest, tmpDir: opts.tmpDir, signal: opts.signal });
    if (!test.matches) {
      throw new IntegrityError(
        `Backup ${manifest.id} failed its restore test: the restored etcd has ${test.actual.keys} keys (hash ${test.actual.sha256.slice(0, 16)}), the snapshot ${test.expected.keys} (hash ${test.expected.sha256.slice(0, 16)}).`,
      );
    }
    return { payload, restoreTest: test };
  } catch (err) {
    if (err instanceof LifeboatError) throw err;
    throw new LifeboatError(`Verifying ${manifest.id} failed: ${(err as Error).message}`, { cause: err });
  } finally {
    await snap.cleanup();
  }
}
