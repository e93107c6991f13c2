import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Counts bytes and computes their sha256 as they pass (`hash: false`: only counts them). */
export class ByteDigest {
  private readonly hash: Hash | undefined;
  bytes = 0;
  private digestHex: string | undefined;

  constructor(opts: { hash?: boolean } = {}) {
    this.hash = opts.hash === false ? undefined : createHash('sha256');
  }

  update(chunk: Buffer): void {
    this.hash?.update(chunk);
    this.bytes += chunk.length;
  }

  /** Hex sha256 of everything passed; only valid once the last bytes have. */
  get sha256(): string {
    if (!this.hash) throw new Error('sha256 asked of a digest made without hashing');
    this.digestHex ??= this.hash.digest('hex');
    return this.digestHex;
  }
}

/**
 * A pass-through stream that counts bytes and computes their sha256 in the same pass
 * (`hash: false`: only counts them, for a caller that has their digest already).
 */
export class HashCounter extends Transform {
  private readonly digest: ByteDigest;

  constructor(opts: { hash?: boolean } = {}) {
    super();
    this.digest = new ByteDigest(opts);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.digest.update(chunk);
    cb(null, chunk);
  }

  get bytes(): number {
    return this.digest.bytes;
  }

  /** Hex sha256 of everything that passed; only valid once the stream has ended. */
  get sha256(): string {
    return this.digest.sha256;
  }
}
