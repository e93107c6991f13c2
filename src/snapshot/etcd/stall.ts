import { Transform, type TransformCallback } from 'node:stream';
import { LifeboatError } from '../../cli/errors.js';

/**
 * Fails the stream when no bytes arrive for `ms` (a stalled source), rather than waiting forever.
 * Time spent held back by a slow consumer (bytes still buffered here) does not count.
 */
export class StallGuard extends Transform {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly what: string,
  ) {
    super();
    this.arm();
  }

  private arm(): void {
    if (this.ms <= 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.readableLength > 0 || this.writableLength > 0) {
        this.arm();
        return;
      }
      this.destroy(new LifeboatError(`${this.what} sent no data for ${Math.round(this.ms / 1000)}s; giving up.`, { hint: 'Raise --stall-timeout if the source is just slow.' }));
    }, this.ms);
    this.timer.unref();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.arm();
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    clearTimeout(this.timer);
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    clearTimeout(this.timer);
    cb(err);
  }
}
