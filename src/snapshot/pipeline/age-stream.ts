import { createCipheriv, createDecipheriv, hkdfSync } from 'node:crypto';
import { IntegrityError } from '../../cli/errors.js';

/**
 * age's payload encryption (c2sp.org/age, "Payload"): the payload key is HKDF-SHA-256 of the file
 * key with the 16-byte nonce that starts the payload as salt and "payload" as info; the plaintext
 * is cut into 64 KiB chunks, each sealed with ChaCha20-Poly1305 under a 12-byte nonce made of an
 * 11-byte big-endian chunk counter and a last-chunk flag (0x01 on the final chunk). The final
 * chunk may be shorter than 64 KiB, and is empty only when the whole payload is.
 *
 * Both directions hold back one complete chunk until more bytes arrive, since only the end of the
 * input tells whether it was the final one. Chunks that arrive whole inside a larger input buffer
 * are sealed or opened in place, without a copy.
 */

export const PAYLOAD_NONCE_SIZE = 16;
export const CHUNK_SIZE = 64 * 1024;
const TAG_SIZE = 16;
const SEALED_CHUNK_SIZE = CHUNK_SIZE + TAG_SIZE;
/** 2^48 chunks (16 EiB) keeps the counter within a safe integer; age allows 2^88. */
const MAX_CHUNKS = 2 ** 48;

export function payloadKey(fileKey: Uint8Array, nonce: Uint8Array): Buffer {
  return Buffer.from(hkdfSync('sha256', fileKey, nonce, 'payload', 32));
}

function chunkNonce(counter: number, last: boolean): Buffer {
  if (counter >= MAX_CHUNKS) throw new IntegrityError('The age payload has too many chunks.');
  const nonce = Buffer.alloc(12);
  nonce.writeUIntBE(counter, 5, 6);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

type Emit = (chunk: Buffer) => void;

/** Cuts a byte stream into fixed-size pieces, keeping the latest complete piece back. */
abstract class Chunker {
  private stage: Buffer;
  private fill = 0;
  private held: Buffer | undefined;
  protected counter = 0;

  constructor(private readonly size: number) {
    this.stage = Buffer.allocUnsafe(size);
  }

  protected abstract process(piece: Buffer, last: boolean, emit: Emit): void;

  update(chunk: Buffer, emit: Emit): void {
    let off = 0;
    while (off < chunk.length) {
      if (this.held) {
        // More bytes follow, so the piece held back was not the final one.
        const piece = this.held;
        this.held = undefined;
        this.process(piece, false, emit);
        this.counter++;
      }
      if (this.fill === 0 && chunk.length - off >= this.size) {
        this.held = chunk.subarray(off, off + this.size);
        off += this.size;
        continue;
      }
      const n = Math.min(this.size - this.fill, chunk.length - off);
      chunk.copy(this.stage, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill === this.size) {
        // The stage is processed (and so free again) before any later byte is copied into it.
        this.held = this.stage;
        this.fill = 0;
      }
    }
  }

  final(emit: Emit): void {
    const piece = this.held ?? this.stage.subarray(0, this.fill);
    this.held = undefined;
    this.fill = 0;
    this.process(piece, true, emit);
    this.counter++;
    this.stage = Buffer.alloc(0);
  }
}

/** Encrypts a payload: plaintext in, sealed chunks out. */
export class PayloadSealer extends Chunker {
  constructor(private readonly key: Buffer) {
    super(CHUNK_SIZE);
  }

  protected process(plain: Buffer, last: boolean, emit: Emit): void {
    const cipher = createCipheriv('chacha20-poly1305', this.key, chunkNonce(this.counter, last), { authTagLength: TAG_SIZE });
    emit(cipher.update(plain));
    cipher.final();
    emit(cipher.getAuthTag());
  }
}

/** Decrypts a payload: sealed chunks in, plaintext out; anything altered, cut or reordered fails. */
export class PayloadOpener extends Chunker {
  constructor(private readonly key: Buffer) {
    super(SEALED_CHUNK_SIZE);
  }

  protected process(sealed: Buffer, last: boolean, emit: Emit): void {
    if (sealed.length < TAG_SIZE) {
      throw new IntegrityError(sealed.length === 0 && this.counter === 0 ? 'The age payload is empty: the file is truncated.' : 'The age payload ends inside a chunk: the file is truncated.');
    }
    if (last && sealed.length === TAG_SIZE && this.counter > 0) {
      throw new IntegrityError('The age payload ends with an empty chunk, which age does not produce.');
    }
    const decipher = createDecipheriv('chacha20-poly1305', this.key, chunkNonce(this.counter, last), { authTagLength: TAG_SIZE });
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE));
    try {
      decipher.final();
    } catch (err) {
      throw new IntegrityError(
        last ? 'The age payload failed authentication at its final chunk: altered or truncated.' : `The age payload failed authentication at chunk ${this.counter}: altered or truncated.`,
        { cause: err },
      );
    }
    emit(plain);
  }
}
