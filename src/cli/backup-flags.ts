import { Flags } from '@oclif/core';
import { CODECS } from '../snapshot/pipeline/codec.js';
import { readPassphraseFile, validateRecipients, type EncryptionConfig } from '../snapshot/pipeline/encryption.js';
import { withEnv } from './env.js';
import { UsageError } from './errors.js';

/** How a new backup is written: compression, encryption, labels. Shared by every backup command. */
export const backupWriteFlags = withEnv({
  compress: Flags.option({ options: CODECS, default: 'zstd' as const, summary: 'Compression: zstd (default), gzip, or none.' })(),
  'compress-level': Flags.integer({ summary: 'Compression level (zstd default 1, up to 19; gzip default 1, up to 9).' }),
  'encrypt-to': Flags.string({ multiple: true, summary: 'Encrypt to this age recipient (repeatable).', helpGroup: 'ENCRYPTION' }),
  'passphrase-file': Flags.string({ summary: 'Encrypt with the passphrase in this file (age scrypt).', helpGroup: 'ENCRYPTION', exclusive: ['encrypt-to'] }),
  label: Flags.string({ multiple: true, summary: 'Label the backup, k=v (repeatable).' }),
});

export async function encryptionFrom(flags: { 'encrypt-to'?: string[] | undefined; 'passphrase-file'?: string | undefined }): Promise<EncryptionConfig | undefined> {
  if (flags['encrypt-to']?.length) {
    validateRecipients(flags['encrypt-to']);
    return { recipients: flags['encrypt-to'] };
  }
  if (flags['passphrase-file']) return { passphrase: await readPassphraseFile(flags['passphrase-file']) };
  return undefined;
}

export function parseLabels(items: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`Label ${JSON.stringify(item)} is not k=v.`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}
