import { Decrypter, Encrypter } from 'age-encryption';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Duplex, Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { IntegrityError, NotFoundError, UsageError } from '../../cli/errors.js';

/** How to encrypt: age recipients (public keys), or a passphrase (age's scrypt recipient). */
export type EncryptionConfig = { recipients: string[] } | { passphrase: string };

/** How to decrypt: age identities (secret keys) and/or a passphrase. */
export interface DecryptionConfig {
  identities: string[];
  passphrase?: string;
}

export const AGE_SUFFIX = '.age';

/** What the manifest records: fingerprints of recipients, never keys. */
export function recipientFingerprints(cfg: EncryptionConfig): string[] {
  if ('passphrase' in cfg) return ['scrypt'];
  return cfg.recipients.map((r) => `${r.startsWith('age1') ? 'X25519' : 'recipient'}:${createHash('sha256').update(r).digest('hex').slice(0, 16)}`);
}

export function validateRecipients(recipients: string[]): void {
  for (const r of recipients) {
    if (!/^age1[02-9ac-hj-np-z]{58}$/.test(r) && !/^age1[a-z0-9]+1[02-9ac-hj-np-z]+$/.test(r)) {
      throw new UsageError(`${JSON.stringify(r)} is not an age recipient.`, { hint: 'Recipients look like age1... (see `age-keygen -y`).' });
    }
  }
}

/** Reads a passphrase file (first line, without the newline). */
export async function readPassphraseFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new NotFoundError(`Cannot read passphrase file ${path}.`);
  }
  const pass = text.split(/\r?\n/)[0] ?? '';
  if (pass === '') throw new UsageError(`Passphrase file ${path} is empty.`);
  return pass;
}

/** Reads age identities (AGE-SECRET-KEY-1...) from an identity file, ignoring comments. */
export async function readIdentityFile(path: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new NotFoundError(`Cannot read identity file ${path}.`);
  }
  const ids = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.startsWith('AGE-SECRET-KEY-'));
  if (ids.length === 0) throw new UsageError(`No age identity (AGE-SECRET-KEY-...) in ${path}.`);
  return ids;
}

/** An age-encrypting stream (binary format, opens with `age -d`). */
export function encryptor(cfg: EncryptionConfig): Duplex {
  const enc = new Encrypter();
  if ('passphrase' in cfg) enc.setPassphrase(cfg.passphrase);
  else {
    validateRecipients(cfg.recipients);
    for (const r of cfg.recipients) enc.addRecipient(r);
  }
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    const web = await enc.encrypt(Readable.toWeb(Readable.from(source)) as unknown as ReadableStream<Uint8Array>);
    for await (const chunk of Readable.fromWeb(web as unknown as WebReadableStream<Uint8Array>)) yield Buffer.from(chunk as Uint8Array);
  });
}

/** An age-decrypting stream; a wrong identity or passphrase, or altered bytes, fail with exit 5. */
export function decryptor(cfg: DecryptionConfig): Duplex {
  const dec = new Decrypter();
  for (const id of cfg.identities) dec.addIdentity(id);
  if (cfg.passphrase) dec.addPassphrase(cfg.passphrase);
  return Duplex.from(async function* (source: AsyncIterable<Buffer>) {
    let web;
    try {
      web = await dec.decrypt(Readable.toWeb(Readable.from(source)) as unknown as ReadableStream<Uint8Array>);
      for await (const chunk of Readable.fromWeb(web as unknown as WebReadableStream<Uint8Array>)) yield Buffer.from(chunk as Uint8Array);
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      if (/no identity matched|incorrect passphrase|failed to decrypt|invalid|unexpected|mac|tag/i.test(msg)) {
        throw new IntegrityError(`Cannot decrypt the backup: ${msg}.`, {
          cause: err,
          hint: 'Check --identity-file or --passphrase-file; a changed byte in an encrypted backup also fails here.',
        });
      }
      throw err;
    }
  });
}
