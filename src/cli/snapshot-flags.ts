import { Flags } from '@oclif/core';
import { readIdentityFile, readPassphraseFile } from '../snapshot/pipeline/encryption.js';
import type { SnapshotSourceOptions } from '../snapshot/etcd/source.js';
import { withEnv } from './env.js';
import type { Logger } from './log.js';
import { catalogueFromFlags, storeFlags, type StoreFlagValues } from './store-flags.js';

/** Flags for commands that read a snapshot given as a backup id or a file. */
export const snapshotSourceFlags = {
  ...storeFlags,
  ...withEnv({
    'identity-file': Flags.string({ multiple: true, summary: 'age identity file to decrypt the backup (repeatable).', helpGroup: 'ENCRYPTION' }),
    'passphrase-file': Flags.string({ summary: 'File holding the passphrase the backup was encrypted with.', helpGroup: 'ENCRYPTION' }),
    'tmp-dir': Flags.string({ summary: 'Where a stored backup is unpacked before use (needs the db size free; default: the OS temp dir).' }),
  }),
};

export interface SnapshotSourceFlagValues extends StoreFlagValues {
  'identity-file'?: string[] | undefined;
  'passphrase-file'?: string | undefined;
  'tmp-dir'?: string | undefined;
}

export async function snapshotSourceFrom(flags: SnapshotSourceFlagValues, logger: Logger, signal: AbortSignal): Promise<SnapshotSourceOptions> {
  const identities: string[] = [];
  for (const file of flags['identity-file'] ?? []) identities.push(...(await readIdentityFile(file)));
  const passphrase = flags['passphrase-file'] ? await readPassphraseFile(flags['passphrase-file']) : undefined;
  return {
    catalogue: () => catalogueFromFlags(flags, logger),
    decryption: { identities, ...(passphrase ? { passphrase } : {}) },
    ...(flags['tmp-dir'] ? { tmpDir: flags['tmp-dir'] } : {}),
    signal,
  };
}
