import { Decrypter, Encrypter, generateHybridIdentity, generateIdentity, identityToRecipient } from 'age-encryption';
import { createCipheriv, createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/cli/errors.js';
import { CHUNK_SIZE, PayloadOpener, PayloadSealer } from '../../src/snapshot/pipeline/age-stream.js';
import { bech32Decode } from '../../src/snapshot/pipeline/bech32.js';
import { decryptor, encryptor } from '../../src/snapshot/pipeline/encryption.js';
import { patternBytes, readAll } from '../helpers/streams.js';

/** Cuts `data` into pieces of the given sizes (cycled). */
function pieces(data: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    out.push(data.subarray(off, off + n));
    off += n;
  }
  return out;
}

function run(coder: PayloadSealer | PayloadOpener, chunks: Buffer[]): Buffer {
  const out: Buffer[] = [];
  for (const c of chunks) coder.update(c, (b) => out.push(b));
  coder.final((b) => out.push(b));
  return Buffer.concat(out);
}

/** The spec's chunk nonce, written out independently of the code under test. */
function nonce(counter: number, last: boolean): Buffer {
  const n = Buffer.alloc(12);
  n.writeUInt32BE(counter, 7);
  n[11] = last ? 1 : 0;
  return n;
}

function sealChunk(key: Buffer, counter: number, last: boolean, plain: Buffer): Buffer {
  const c = createCipheriv('chacha20-poly1305', key, nonce(counter, last), { authTagLength: 16 });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

describe('bech32', () => {
  it("decodes the age spec's example identity and recipient into a matching X25519 key pair", () => {
    const id = bech32Decode('AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX');
    expect(id.hrp).toBe('age-secret-key-');
    expect(id.data).toEqual(Buffer.alloc(32, 0x42));
    const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), id.data]);
    const pub = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' }).x;
    const rcpt = bech32Decode('age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj');
    expect(rcpt.hrp).toBe('age');
    expect(rcpt.data.toString('base64url')).toBe(pub);
  });

  it('rejects a changed character, mixed case and a missing separator', () => {
    expect(() => bech32Decode('age1zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwq')).toThrow(/checksum/);
    expect(() => bech32Decode('age1Zvkyg2lqzraa2lnjvqej32nkuu0ues2s82hzrye869xeexvn73equnujwj')).toThrow(/mixed case/);
    expect(() => bech32Decode('agezvkyg2lqzraa')).toThrow();
  });
});

describe('age payload STREAM', () => {
  const key = randomBytes(32);

  it.each([0, 1, 100, 65535, 65536, 65537, 2 * 65536, 3 * 1024 * 1024 + 5])('seals %i bytes into 64 KiB chunks with the spec nonces', (size) => {
    const plain = patternBytes(size, size + 1);
    const sealed = run(new PayloadSealer(key), pieces(plain, [size || 1]));
    const chunks = Math.max(1, Math.ceil(size / CHUNK_SIZE));
    expect(sealed.length).toBe(size + 16 * chunks);
    const expected: Buffer[] = [];
    for (let i = 0; i < chunks; i++) expected.push(sealChunk(key, i, i === chunks - 1, plain.subarray(i * CHUNK_SIZE, (i + 1) * CHUNK_SIZE)));
    expect(sealed.equals(Buffer.concat(expected))).toBe(true);
  });

  it.each([[[1]], [[7, 65536, 3]], [[65536]], [[65552]], [[200_000]], [[65535, 2]]])('gives the same bytes and opens again whatever the input chunking (%j)', (sizes) => {
    const plain = patternBytes(5 * 65536 + 17, 9);
    const whole = run(new PayloadSealer(key), [plain]);
    const sealed = run(new PayloadSealer(key), pieces(plain, sizes));
    expect(sealed.equals(whole)).toBe(true);
    expect(run(new PayloadOpener(key), pieces(sealed, sizes)).equals(plain)).toBe(true);
  });

  it('opens an empty payload and a payload of exactly one full chunk', () => {
    expect(run(new PayloadOpener(key), [sealChunk(key, 0, true, Buffer.alloc(0))])).toEqual(Buffer.alloc(0));
    const full = patternBytes(CHUNK_SIZE, 3);
    expect(run(new PayloadOpener(key), [sealChunk(key, 0, true, full)]).equals(full)).toBe(true);
  });

  const plain = patternBytes(3 * CHUNK_SIZE + 10, 5);
  const sealed = () => run(new PayloadSealer(key), [plain]);
  const open = (bytes: Buffer) => () => run(new PayloadOpener(key), pieces(bytes, [4096]));

  it('fails on a payload cut at a chunk boundary, inside a chunk, or missing entirely', () => {
    expect(open(sealed().subarray(0, 3 * (CHUNK_SIZE + 16)))).toThrow(IntegrityError);
    expect(open(sealed().subarray(0, 3 * (CHUNK_SIZE + 16) + 5))).toThrow(/truncated/);
    expect(open(Buffer.alloc(0))).toThrow(/empty/);
  });

  it('fails on a changed byte and on reordered chunks', () => {
    const changed = sealed();
    changed[CHUNK_SIZE + 100]! ^= 1;
    expect(open(changed)).toThrow(/chunk 1/);
    const s = sealed();
    const c = CHUNK_SIZE + 16;
    const swapped = Buffer.concat([s.subarray(c, 2 * c), s.subarray(0, c), s.subarray(2 * c)]);
    expect(open(swapped)).toThrow(IntegrityError);
  });

  it('refuses an empty final chunk after data (age never writes one)', () => {
    const full = patternBytes(CHUNK_SIZE, 4);
    const bytes = Buffer.concat([sealChunk(key, 0, false, full), sealChunk(key, 1, true, Buffer.alloc(0))]);
    expect(open(bytes)).toThrow(/empty chunk/);
  });
});

describe('encryptor and decryptor', () => {
  const through = (data: Buffer, stage: Transform) => readAll(Readable.from(pieces(data, [10_000])).pipe(stage));

  it('age-encryption opens what lifeboat writes to X25519 recipients, and the reverse', async () => {
    const [a, b] = [await generateIdentity(), await generateIdentity()];
    const plain = patternBytes(300_000, 11);
    const ours = await through(plain, encryptor({ recipients: [await identityToRecipient(a), await identityToRecipient(b)] }));
    for (const id of [a, b]) {
      const d = new Decrypter();
      d.addIdentity(id);
      expect(Buffer.from(await d.decrypt(ours)).equals(plain)).toBe(true);
    }
    const e = new Encrypter();
    e.addRecipient(await identityToRecipient(b));
    const theirs = Buffer.from(await e.encrypt(plain));
    expect((await through(theirs, decryptor({ identities: [b] }))).equals(plain)).toBe(true);
  });

  it('post-quantum recipients go through age-encryption and open again', async () => {
    const id = await generateHybridIdentity();
    const plain = patternBytes(70_000, 12);
    const enc = await through(plain, encryptor({ recipients: [await identityToRecipient(id)] }));
    expect(enc.subarray(0, 40).toString()).toContain('-> mlkem768x25519');
    expect((await through(enc, decryptor({ identities: [id] }))).equals(plain)).toBe(true);
  });

  it('a wrong identity, a changed byte and a cut file fail with exit 5', async () => {
    const id = await generateIdentity();
    const enc = await through(patternBytes(200_000, 13), encryptor({ recipients: [await identityToRecipient(id)] }));
    const fails = (bytes: Buffer, ids: string[]) => pipeline(Readable.from([bytes]), decryptor({ identities: ids }), async function* (s) {
      for await (const _ of s) yield _;
    });
    await expect(fails(enc, [await generateIdentity()])).rejects.toMatchObject({ exitCode: 5, message: /no identity matched/ });
    const changed = Buffer.from(enc);
    changed[changed.length - 1000]! ^= 1;
    await expect(fails(changed, [id])).rejects.toMatchObject({ exitCode: 5 });
    await expect(fails(enc.subarray(0, enc.length - 20), [id])).rejects.toMatchObject({ exitCode: 5 });
    await expect(fails(enc.subarray(0, 50), [id])).rejects.toMatchObject({ exitCode: 5, message: /age header/ });
    await expect(fails(Buffer.from('PK\x03\x04 not age at all'), [id])).rejects.toMatchObject({ exitCode: 5, message: /not an age/ });
  });
});
