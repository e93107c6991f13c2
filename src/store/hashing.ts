import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** A pass-through stream that counts bytes and computes their sha256 in the same pass. */
export class HashCounter extends Transform {
  private readonly hash: Hash = createHash('sha256');
  bytes = 0;
  private digestHex: string | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }

  /** Hex sha256 of everything that passed; only valid once the stream has ended. */
  get sha256(): string {
    this.digestHex ??= this.hash.digest('hex');
    return this.digestHex;
  }
}
