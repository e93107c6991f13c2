import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError, UsageError } from '../../cli/errors.js';
import type { Catalogue } from '../../store/catalogue.js';
import { FileWriter } from '../../store/file-writer.js';
import { HashCounter } from '../../store/hashing.js';
import type { BackupManifest, ObjectRecord } from '../../store/manifest.js';
import { decompressor } from './codec.js';
import { decryptor, type DecryptionConfig } from './encryption.js';

export interface FetchOptions {
  decryption?: DecryptionConfig | undefined;
  /** Where the private temporary file goes (default: the OS temp dir). */
  tmpDir?: string | undefined;
  signal?: AbortSignal | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
}

export interface FetchedFile {
  path: string;
  cleanup(): Promise<void>;
}

/**
 * Streams one stored object of a backup through decryption and decompression into a private
 * temporary file (0600 in a 0700 directory), checking the sha256 and size of the stored bytes and
 * of the payload against the manifest. `checks` are extra pass-through stages on the payload
 * (e.g. etcd's trailer check). Any mismatch is an IntegrityError and the file is removed.
 */
export async function fetchToTempFile(cat: Catalogue, manifest: BackupManifest, rec: ObjectRecord, fileName: string, opts: FetchOptions = {}, checks: Transform[] = []): Promise<FetchedFile> {
  if (rec.encryption && !opts.decryption?.identities.length && !opts.decryption?.passphrase) {
    throw new UsageError(`Backup ${manifest.id} is encrypted.`, { hint: 'Give --identity-file (age secret keys) or --passphrase-file.' });
  }
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), `lifeboat-${manifest.kind}-`));
  const path = join(dir, fileName);
  const cleanup = () => rm(dir, { recursive: true, force: true });
  let decompressError: Error | undefined;
  try {
    const stored = new HashCounter();
    const payload = new HashCounter();
    const out = new FileWriter(await open(path, 'wx', 0o600));
    const decompress = decompressor(rec.codec ?? 'none');
    decompress.once('error', (err) => (decompressError = err));
    stored.on('data', () => opts.onProgress?.(stored.bytes, rec.size));
    await pipeline(
      [
        await cat.open(manifest, rec.name, opts.signal ? { signal: opts.signal } : {}),
        stored,
        ...(rec.encryption ? [decryptor(opts.decryption ?? { identities: [] })] : []),
        decompress,
        payload,
        ...checks,
        out,
      ],
      opts.signal ? { signal: opts.signal } : {},
    );
    if (stored.bytes !== rec.size || stored.sha256 !== rec.sha256) {
      throw new IntegrityError(`Backup ${manifest.id}: the stored object does not match its manifest (sha256 or size differs).`);
    }
    if (rec.payload && (payload.bytes !== rec.payload.size || payload.sha256 !== rec.payload.sha256)) {
      throw new IntegrityError(`Backup ${manifest.id}: the decrypted, decompressed content does not match its manifest.`);
    }
    return { path, cleanup };
  } catch (err) {
    await cleanup();
    if (decompressError && !(err instanceof IntegrityError)) {
      throw new IntegrityError(`Backup ${manifest.id} cannot be decompressed (${rec.codec}): ${decompressError.message}.`, { cause: err });
    }
    throw err;
  }
}
