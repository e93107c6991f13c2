import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { Writable } from 'node:stream';
import { ByteDigest } from './hashing.js';

const STOPPED = 'The upload was stopped before it finished.';

export interface MultipartTarget {
  Bucket: string;
  Key: string;
  ContentType: string;
  ServerSideEncryption?: ServerSideEncryption;
  SSEKMSKeyId?: string;
}

export interface MultipartWriterOptions {
  client: S3Client;
  target: MultipartTarget;
  /** Bytes per part (all but the last); S3 wants at least 5 MiB. */
  partSize: number;
  /** Parts sent at once. One more part is filled meanwhile, so memory is (queueSize + 1) x partSize. */
  queueSize: number;
  /** sha256 of the bytes written, available as `sha256` after the end (false: only count them). */
  hash: boolean;
}

/**
 * A writable stream that stores what is written to it as one S3 object: a PutObject if it all
 * fits in one part, else a multipart upload with up to `queueSize` parts in flight.
 *
 * Parts are gathered in a fixed set of `queueSize + 1` buffers, allocated once and reused: each
 * written chunk is copied once into the part being filled, and a buffer is filled again only
 * after its UploadPart has returned. A stream of any length thus holds the same few buffers, and
 * leaves no part-sized garbage behind for the garbage collector. Writes wait (backpressure) while
 * every buffer is in flight.
 *
 * A failed part, a failed completion or `destroy()` aborts the parts in flight and the multipart
 * upload, so no parts are left behind; the error is the stream's.
 */
export class MultipartWriter extends Writable {
  /** True once every byte has been received and the completion has started. */
  allReceived = false;
  private readonly digest: ByteDigest;
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private current: Buffer | undefined;
  private fill = 0;
  private partNumber = 0;
  private readonly parts: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private creating: Promise<string> | undefined;
  private readonly aborter = new AbortController();
  private wake: (() => void) | undefined;

  constructor(private readonly opts: MultipartWriterOptions) {
    super({ highWaterMark: 256 * 1024 });
    this.digest = new ByteDigest({ hash: opts.hash });
  }

  /** Bytes written so far. */
  get bytes(): number {
    return this.digest.bytes;
  }

  /** Hex sha256 of everything written; only valid once the stream has finished. */
  get sha256(): string {
    return this.digest.sha256;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.digest.update(chunk);
    this.take(chunk, 0, cb);
  }

  private take(chunk: Buffer, from: number, cb: (err?: Error | null) => void): void {
    let off = from;
    while (off < chunk.length) {
      if (!this.current) {
        const buf = this.free.pop() ?? (this.allocated <= this.opts.queueSize ? this.allocate() : undefined);
        if (!buf) {
          // Every buffer is in flight: go on when one comes back.
          this.wake = () => this.take(chunk, off, cb);
          return;
        }
        this.current = buf;
        this.fill = 0;
      }
      const n = Math.min(this.opts.partSize - this.fill, chunk.length - off);
      chunk.copy(this.current, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill === this.opts.partSize) this.sendPart();
    }
    cb();
  }

  private allocate(): Buffer {
    this.allocated++;
    return Buffer.allocUnsafeSlow(this.opts.partSize);
  }

  private createUpload(): Promise<string> {
    // Not cancelled with the rest: a create cancelled after the service acted on it would leave an
    // upload whose id is unknown here, so it could not be aborted. _destroy waits for it instead.
    this.creating ??= this.opts.client
      .send(new CreateMultipartUploadCommand({ ...this.opts.target }))
      .then((res) => {
        if (!res.UploadId) throw new Error('S3 returned no UploadId for CreateMultipartUpload');
        return res.UploadId;
      });
    return this.creating;
  }

  private sendPart(): void {
    const buf = this.current!;
    const size = this.fill;
    const partNumber = ++this.partNumber;
    this.current = undefined;
    this.fill = 0;
    const { Bucket, Key } = this.opts.target;
    const sent = this.createUpload()
      .then((UploadId) =>
        this.opts.client.send(
          new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: partNumber, Body: buf.subarray(0, size), ContentLength: size }),
          { abortSignal: this.aborter.signal },
        ),
      )
      .then((res) => {
        if (!res.ETag) throw new Error(`S3 returned no ETag for part ${partNumber}`);
        this.parts.push({ ETag: res.ETag, PartNumber: partNumber });
        // Only now, with the part stored, may the buffer be filled again.
        this.free.push(buf);
      })
      .catch((err: unknown) => {
        this.destroy(err instanceof Error ? err : new Error(String(err)));
      })
      .finally(() => {
        this.inFlight.delete(sent);
        const wake = this.wake;
        this.wake = undefined;
        wake?.();
      });
    this.inFlight.add(sent);
  }

  private async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.allReceived = true;
    void this.finish().then(() => cb(), cb);
  }

  private async finish(): Promise<void> {
    const { Bucket, Key } = this.opts.target;
    if (this.partNumber === 0) {
      // Everything fits in one part: a single PutObject.
      const body = this.current ? this.current.subarray(0, this.fill) : Buffer.alloc(0);
      await this.opts.client.send(new PutObjectCommand({ ...this.opts.target, Body: body, ContentLength: body.length }), {
        abortSignal: this.aborter.signal,
      });
      this.release();
      return;
    }
    if (this.fill > 0) this.sendPart();
    await this.settle();
    // A part that failed meanwhile has destroyed the stream: no completion then.
    if (this.destroyed) throw this.errored ?? new Error(STOPPED);
    const Parts = [...this.parts].sort((a, b) => a.PartNumber! - b.PartNumber!);
    const UploadId = await this.createUpload();
    await this.opts.client.send(
      new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts } }),
      { abortSignal: this.aborter.signal },
    );
    this.release();
  }

  private release(): void {
    this.current = undefined;
    this.free.length = 0;
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.wake = undefined;
    // Destroyed after it finished (autoDestroy): the object is stored, nothing to abort.
    if (this.writableFinished) {
      cb(err);
      return;
    }
    this.aborter.abort();
    void (async () => {
      await this.settle();
      // A multipart upload started but not completed is aborted, so no parts are left behind.
      if (this.creating) {
        const UploadId = await this.creating.catch(() => undefined);
        if (UploadId) {
          const { Bucket, Key } = this.opts.target;
          await this.opts.client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
        }
      }
      this.release();
    })().then(() => cb(err));
  }
}
