import type { Catalogue } from '../../store/catalogue.js';
import type { BackupManifest } from '../../store/manifest.js';
import type { VerifyReport } from '../../store/verify.js';
import { fetchToTempFile, type FetchOptions } from '../pipeline/fetch.js';
import { readArchive } from './reader.js';

export interface DumpPayloadCheck {
  checked: boolean;
  reason?: string;
  entries?: number;
  objects?: number;
  resources?: number;
}

/**
 * Beyond the stored bytes: decrypts and decompresses the archive into a private temporary file
 * (checking the payload's sha256), reads the tar through, parses every entry as a Kubernetes
 * object, and compares the counts with index.json (readArchive). Throws IntegrityError on a
 * broken archive.
 */
export async function verifyDumpPayload(cat: Catalogue, manifest: BackupManifest, stored: VerifyReport, opts: FetchOptions): Promise<{ payload: DumpPayloadCheck }> {
  const rec = manifest.objects.find((o) => o.name.startsWith('resources.tar'));
  if (!rec) return { payload: { checked: false, reason: 'no archive object' } };
  if (rec.encryption && !opts.decryption?.identities.length && !opts.decryption?.passphrase) {
    return { payload: { checked: false, reason: 'encrypted: give --identity-file or --passphrase-file to check the archive inside' } };
  }
  if (!stored.ok) return { payload: { checked: false, reason: 'the stored object failed its check' } };
  const file = await fetchToTempFile(cat, manifest, rec, 'resources.tar', opts);
  try {
    const archive = await readArchive(file.path, { tmpDir: opts.tmpDir });
    try {
      const objects = archive.resources.reduce((n, r) => n + r.count, 0);
      return { payload: { checked: true, entries: archive.entries, objects, resources: archive.resources.length } };
    } finally {
      await archive.cleanup();
    }
  } finally {
    await file.cleanup();
  }
}
