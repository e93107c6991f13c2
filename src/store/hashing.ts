import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/**
 * A pass-through stream that counts bytes and computes their sha256 in the same pass
 * (`hash: false`: only counts them, for a caller that has their digest already).
 */
export class HashCounter extends Transform {
  private readonly hash: Hash | undefined;
  bytes = 0;
  private digestHex: string | undefined;

  constructor(opts: { hash?: boolean } = {}) {
    super();
    this.hash = opts.hash === false ? undefined : createHash('sha256');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash?.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  /** Hex sha256 of everything that passed; only valid once the stream has ended. */
  get sha256(): string {
    if (!this.hash) throw new Error('HashCounter: sha256 asked of a counter made without hashing');
    this.digestHex ??= this.hash.digest('hex');
    return this.digestHex;
  }
}
