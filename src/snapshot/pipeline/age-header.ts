import { createCipheriv, createHmac, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, scrypt } from 'node:crypto';
import { promisify } from 'node:util';
import { IntegrityError, UsageError } from '../../cli/errors.js';
import { bech32Decode } from './bech32.js';

/**
 * age headers (c2sp.org/age, "Header"): a version line, one stanza per recipient wrapping the
 * 16-byte file key, and an HMAC-SHA-256 of it all keyed by HKDF-SHA-256(file key, "header").
 *
 * X25519 recipients (age1...) and passphrases (scrypt) are wrapped here with node:crypto; other
 * recipient kinds that age-encryption knows (age1pq1..., age1tag1...) go through it, loaded only
 * then. Reading a header (restores, verification) is age-encryption's, loaded only when needed.
 */

export type HeaderRecipients = { recipients: string[] } | { passphrase: string };

const VERSION_LINE = 'age-encryption.org/v1\n';
const X25519_INFO = 'age-encryption.org/v1/X25519';
const SCRYPT_LABEL = 'age-encryption.org/v1/scrypt';
/** age's default scrypt work factor (2^18: ~256 MiB for a moment, by design). */
const SCRYPT_LOG_N = 18;
/** Larger than any header a handful of recipients makes; bounds what is read before giving up. */
const MAX_HEADER_SIZE = 1024 * 1024;

const scryptAsync = promisify(scrypt) as (pass: string, salt: Buffer, len: number, opts: object) => Promise<Buffer>;

interface Stanza {
  args: string[];
  body: Buffer;
}

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64').replace(/=+$/, '');
const hkdf = (ikm: Uint8Array, salt: Uint8Array, info: string) => Buffer.from(hkdfSync('sha256', ikm, salt, info, 32));

/** ChaCha20-Poly1305 under an all-zero nonce, as every native stanza wraps the file key. */
function wrapFileKey(key: Buffer, fileKey: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, Buffer.alloc(12), { authTagLength: 16 });
  return Buffer.concat([c.update(fileKey), c.final(), c.getAuthTag()]);
}

function x25519Stanza(recipient: string, fileKey: Buffer): Stanza {
  const { hrp, data: pub } = bech32Decode(recipient);
  if (hrp !== 'age' || pub.length !== 32) throw new UsageError(`${JSON.stringify(recipient)} is not an X25519 age recipient.`);
  const eph = generateKeyPairSync('x25519');
  const share = Buffer.from(eph.publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  const publicKey = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: pub.toString('base64url') }, format: 'jwk' });
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey });
  if (shared.every((b) => b === 0)) throw new UsageError(`${JSON.stringify(recipient)} is not a usable X25519 key.`);
  const wrapKey = hkdf(shared, Buffer.concat([share, pub]), X25519_INFO);
  return { args: ['X25519', b64(share)], body: wrapFileKey(wrapKey, fileKey) };
}

async function scryptStanza(passphrase: string, fileKey: Buffer): Promise<Stanza> {
  const salt = randomBytes(16);
  const n = 2 ** SCRYPT_LOG_N;
  const key = await scryptAsync(passphrase, Buffer.concat([Buffer.from(SCRYPT_LABEL), salt]), 32, { N: n, r: 8, p: 1, maxmem: 130 * n * 8 });
  return { args: ['scrypt', b64(salt), String(SCRYPT_LOG_N)], body: wrapFileKey(key, fileKey) };
}

function encodeHeader(stanzas: Stanza[], fileKey: Buffer): Buffer {
  let text = VERSION_LINE;
  for (const s of stanzas) {
    text += `-> ${s.args.join(' ')}\n`;
    const body = b64(s.body);
    // Lines of 64 columns; the last is shorter, and empty when the body fills its lines exactly.
    for (let i = 0; ; i += 64) {
      const line = body.slice(i, i + 64);
      text += `${line}\n`;
      if (line.length < 64) break;
    }
  }
  text += '---';
  const mac = createHmac('sha256', hkdf(fileKey, Buffer.alloc(0), 'header')).update(text).digest();
  return Buffer.from(`${text} ${b64(mac)}\n`);
}

const isX25519 = (r: string) => /^age1[02-9ac-hj-np-z]{58}$/.test(r);

/** A fresh file key and the header that wraps it for the recipients or passphrase. */
export async function sealHeader(to: HeaderRecipients): Promise<{ header: Buffer; fileKey: Buffer }> {
  if ('passphrase' in to) {
    const fileKey = randomBytes(16);
    return { header: encodeHeader([await scryptStanza(to.passphrase, fileKey)], fileKey), fileKey };
  }
  if (to.recipients.every(isX25519)) {
    const fileKey = randomBytes(16);
    return { header: encodeHeader(to.recipients.map((r) => x25519Stanza(r, fileKey)), fileKey), fileKey };
  }
  return sealHeaderWithAgeEncryption(to.recipients);
}

/**
 * age-encryption draws the file key itself; a recipient that adds no stanza but keeps the key it
 * is given makes that key known. The payload it encrypts (empty: its 16-byte nonce and one 16-byte
 * tag) is cut off, leaving the header.
 */
async function sealHeaderWithAgeEncryption(recipients: string[]): Promise<{ header: Buffer; fileKey: Buffer }> {
  const { Encrypter } = await import('age-encryption');
  const enc = new Encrypter();
  let fileKey: Uint8Array | undefined;
  try {
    for (const r of recipients) enc.addRecipient(r);
  } catch (err) {
    throw new UsageError(`Cannot encrypt to ${recipients.join(', ')}: ${err instanceof Error ? err.message : String(err)}.`, { cause: err });
  }
  enc.addRecipient({ wrapFileKey: (key: Uint8Array) => ((fileKey = key), []) });
  const file = await enc.encrypt(new Uint8Array(0));
  if (!fileKey) throw new Error('age-encryption did not wrap a file key');
  return { header: Buffer.from(file.subarray(0, file.length - 32)), fileKey: Buffer.from(fileKey) };
}

/**
 * The length of the header at the start of `buf` (up to and including the MAC line's newline),
 * or undefined while it is incomplete. Fails fast on bytes that are not an age file.
 */
export function headerLength(buf: Buffer): number | undefined {
  const prefix = buf.subarray(0, VERSION_LINE.length).toString('latin1');
  if (!VERSION_LINE.startsWith(prefix)) {
    const armored = prefix.startsWith('-----BEGIN');
    throw new IntegrityError(armored ? 'The backup is ASCII-armored age, which lifeboat does not write or read.' : 'The backup is not an age-encrypted file (no age header).');
  }
  // Stanza lines start with "-> " or are base64, so the first line that starts with "---" is the MAC.
  const mac = buf.indexOf('\n---');
  const end = mac < 0 ? -1 : buf.indexOf(0x0a, mac + 4);
  if (end >= 0) return end + 1;
  if (buf.length > MAX_HEADER_SIZE) throw new IntegrityError('The age header is larger than 1 MiB: not an age file lifeboat can read.');
  return undefined;
}

/** The file key from a complete header, with the first identity or passphrase that opens it. */
export async function openHeader(header: Buffer, identities: string[], passphrase: string | undefined): Promise<Buffer> {
  const { Decrypter } = await import('age-encryption');
  const dec = new Decrypter();
  for (const id of identities) dec.addIdentity(id);
  if (passphrase) dec.addPassphrase(passphrase);
  return Buffer.from(await dec.decryptHeader(header));
}
