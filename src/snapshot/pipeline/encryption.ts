import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError, LifeboatError, NotFoundError, UsageError } from '../../cli/errors.js';
import { headerLength, openHeader, sealHeader } from './age-header.js';
import { PAYLOAD_NONCE_SIZE, PayloadOpener, PayloadSealer, payloadKey } from './age-stream.js';

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

/**
 * An age-encrypting stream (binary format, opens with `age -d`): the header, the payload nonce,
 * then the payload sealed chunk by chunk with node:crypto's ChaCha20-Poly1305.
 */
export function encryptor(cfg: EncryptionConfig): Transform {
  if (!('passphrase' in cfg)) validateRecipients(cfg.recipients);
  return new AgeEncrypt(cfg);
}

/** An age-decrypting stream; a wrong identity or passphrase, or altered bytes, fail with exit 5. */
export function decryptor(cfg: DecryptionConfig): Transform {
  return new AgeDecrypt(cfg);
}

class AgeEncrypt extends Transform {
  /** Wrapping the file key starts at once (scrypt takes a moment) and is awaited at the first byte. */
  private readonly ready: Promise<{ header: Buffer; fileKey: Buffer }>;
  private sealer: PayloadSealer | undefined;
  private readonly pushOut = (b: Buffer) => void this.push(b);

  constructor(cfg: EncryptionConfig) {
    super();
    this.ready = sealHeader(cfg);
    this.ready.catch(() => undefined);
  }

  private async start(): Promise<PayloadSealer> {
    const { header, fileKey } = await this.ready;
    const nonce = randomBytes(PAYLOAD_NONCE_SIZE);
    this.push(header);
    this.push(nonce);
    this.sealer = new PayloadSealer(payloadKey(fileKey, nonce));
    return this.sealer;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.sealer) {
      this.sealer.update(chunk, this.pushOut);
      cb();
      return;
    }
    this.start().then((s) => (s.update(chunk, this.pushOut), cb()), cb);
  }

  override _flush(cb: TransformCallback): void {
    (this.sealer ? Promise.resolve(this.sealer) : this.start()).then((s) => (s.final(this.pushOut), cb()), cb);
  }
}

class AgeDecrypt extends Transform {
  private head: Buffer = Buffer.alloc(0);
  private opener: PayloadOpener | undefined;
  private readonly pushOut = (b: Buffer) => void this.push(b);

  constructor(private readonly cfg: DecryptionConfig) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      if (this.opener) {
        this.opener.update(chunk, this.pushOut);
        cb();
        return;
      }
      this.head = this.head.length ? Buffer.concat([this.head, chunk]) : chunk;
      const size = headerLength(this.head);
      if (size === undefined || this.head.length < size + PAYLOAD_NONCE_SIZE) {
        cb();
        return;
      }
      const head = this.head;
      this.head = Buffer.alloc(0);
      openHeader(head.subarray(0, size), this.cfg.identities, this.cfg.passphrase).then((fileKey) => {
        try {
          this.opener = new PayloadOpener(payloadKey(fileKey, head.subarray(size, size + PAYLOAD_NONCE_SIZE)));
          this.opener.update(head.subarray(size + PAYLOAD_NONCE_SIZE), this.pushOut);
          cb();
        } catch (err) {
          cb(decryptionError(err));
        }
      }, (err: unknown) => cb(decryptionError(err)));
    } catch (err) {
      cb(decryptionError(err));
    }
  }

  override _flush(cb: TransformCallback): void {
    if (!this.opener) {
      cb(new IntegrityError('The backup ends inside its age header: truncated or not age-encrypted.'));
      return;
    }
    try {
      this.opener.final(this.pushOut);
      cb();
    } catch (err) {
      cb(decryptionError(err));
    }
  }
}

function decryptionError(err: unknown): Error {
  if (err instanceof LifeboatError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  if (/no identity matched|incorrect passphrase|failed to decrypt|invalid|unexpected|mac|tag|stanza|work factor/i.test(msg)) {
    return new IntegrityError(`Cannot decrypt the backup: ${msg}.`, {
      cause: err,
      hint: 'Check --identity-file or --passphrase-file; a changed byte in an encrypted backup also fails here.',
    });
  }
  return err instanceof Error ? err : new Error(msg);
}
