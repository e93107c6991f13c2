import { Transform, type TransformCallback } from 'node:stream';
import { LifeboatError } from '../../cli/errors.js';

/**
 * Fails the stream when no bytes arrive for `ms` (a stalled source), rather than waiting forever.
 * Time spent held back by a slow consumer (bytes still buffered here) does not count.
 */
export class StallGuard extends Transform {
  private timer: NodeJS.Timeout | undefined;
  /** When the last chunk arrived; the timer checks it rather than being re-armed per chunk. */
  private last = Date.now();

  constructor(
    private readonly ms: number,
    private readonly what: string,
  ) {
    super();
    this.arm(ms);
  }

  private arm(delay: number): void {
    if (this.ms <= 0) return;
    this.timer = setTimeout(() => {
      const quiet = Date.now() - this.last;
      if (quiet < this.ms || this.readableLength > 0 || this.writableLength > 0) {
        this.arm(quiet < this.ms ? this.ms - quiet : this.ms);
        return;
      }
      this.destroy(new LifeboatError(`${this.what} sent no data for ${Math.round(this.ms / 1000)}s; giving up.`, { hint: 'Raise --stall-timeout if the source is just slow.' }));
    }, delay);
    this.timer.unref();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.last = Date.now();
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
