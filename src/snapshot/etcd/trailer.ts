import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../../cli/errors.js';

export const TRAILER_SIZE = 32;

/**
 * Passes an etcd snapshot through unchanged while checking etcd's trailer: the last 32 bytes
 * must be the sha256 of everything before them. A stream that ends early or whose trailer does
 * not match fails (in flush, before the end reaches the store, so nothing is committed).
 * With `required: false` a stream without a valid trailer passes (files copied from a data dir).
 */
export class TrailerCheck extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private tail: Buffer = Buffer.alloc(0);
  bytes = 0;
  /** After the end: whether a valid trailer was found, and the db's sha256 (hex). */
  result: { hasTrailer: boolean; dbSha256: string; payloadSha256: string } | undefined;

  constructor(private readonly opts: { required: boolean; what?: string } = { required: true }) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    // Hash everything except the last 32 bytes seen so far.
    if (chunk.length >= TRAILER_SIZE) {
      if (this.tail.length) this.hash.update(this.tail);
      this.hash.update(chunk.subarray(0, chunk.length - TRAILER_SIZE));
      this.tail = Buffer.from(chunk.subarray(chunk.length - TRAILER_SIZE));
    } else {
      const joined = Buffer.concat([this.tail, chunk]);
      const cut = Math.max(0, joined.length - TRAILER_SIZE);
      if (cut) this.hash.update(joined.subarray(0, cut));
      this.tail = Buffer.from(joined.subarray(cut));
    }
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const what = this.opts.what ?? 'The snapshot';
    if (this.tail.length < TRAILER_SIZE) {
      cb(new IntegrityError(`${what} is only ${this.bytes} bytes: truncated or not an etcd snapshot.`));
      return;
    }
    // One pass for both digests: the db's (without the trailer) and the whole stream's.
    const whole = this.hash.copy().update(this.tail).digest('hex');
    const digest = this.hash.digest();
    const hasTrailer = digest.equals(this.tail);
    if (!hasTrailer && this.opts.required) {
      const aligned = (this.bytes - TRAILER_SIZE) % 512 === 0;
      cb(
        new IntegrityError(
          aligned
            ? `${what} failed etcd's sha256 check: its content does not match its trailer.`
            : `${what} has no valid etcd sha256 trailer (${this.bytes} bytes): truncated, altered, or copied from a data dir.`,
          { hint: 'A db file copied from a data dir has no trailer; pass --skip-hash-check to accept it.' },
        ),
      );
      return;
    }
    this.result = { hasTrailer, dbSha256: hasTrailer ? digest.toString('hex') : '', payloadSha256: whole };
    cb();
  }
}
