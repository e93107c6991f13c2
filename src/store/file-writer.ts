import type { FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

export interface FileWriterOptions {
  /** Start writing the file's dirty pages back after this many bytes (default 32 MiB). */
  syncEvery?: number;
  /** Hold writes while this many bytes are written but not yet on disk (default 4 x syncEvery). */
  maxUnsynced?: number;
}

const DEFAULT_SYNC_EVERY = 32 * 1024 * 1024;

/**
 * Writes a stream to an open file and makes it durable: at the end the file is fsynced, then
 * closed (the writer owns the handle; it is closed whatever happens).
 *
 * On the way it flushes the file to disk every `syncEvery` bytes (an fdatasync in the background,
 * one at a time), so the disk writes overlap the stream instead of all waiting for the final
 * fsync, and the dirty page cache this file holds stays bounded. That matters for a multi-GB
 * backup: written whole and fsynced once, the final fsync alone takes a tenth of the run, and
 * a CronJob's pod is charged for every dirty page against its memory limit. When the disk falls
 * `maxUnsynced` bytes behind, writes wait for it.
 *
 * A failed background flush fails the stream: the kernel may report a writeback error only once,
 * so it must not be dropped for the final fsync to find.
 */
export class FileWriter extends Writable {
  bytesWritten = 0;
  private readonly syncEvery: number;
  private readonly maxUnsynced: number;
  /** Bytes written when the latest flush started, and those the latest finished flush covered. */
  private flushStartedAt = 0;
  private flushedTo = 0;
  private syncing: Promise<void> | undefined;
  private syncError: Error | undefined;

  constructor(
    private readonly handle: FileHandle,
    opts: FileWriterOptions = {},
  ) {
    super({ highWaterMark: 1024 * 1024 });
    this.syncEvery = opts.syncEvery ?? DEFAULT_SYNC_EVERY;
    this.maxUnsynced = opts.maxUnsynced ?? 4 * this.syncEvery;
    if (!(this.syncEvery > 0) || !(this.maxUnsynced >= this.syncEvery)) throw new Error('FileWriter needs 0 < syncEvery <= maxUnsynced');
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.writeAll([chunk]).then(() => cb(), cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (error?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk)).then(() => cb(), cb);
  }

  private async writeAll(buffers: Buffer[]): Promise<void> {
    if (this.syncError) throw this.syncError;
    let left = buffers.filter((b) => b.length > 0);
    while (left.length) {
      const { bytesWritten } = await this.handle.writev(left, this.bytesWritten);
      this.bytesWritten += bytesWritten;
      left = skip(left, bytesWritten);
    }
    if (this.bytesWritten - this.flushStartedAt >= this.syncEvery && !this.syncing) this.startSync();
    // The disk is behind: wait for the flush in flight, then start the next.
    while (this.bytesWritten - this.flushedTo >= this.maxUnsynced && !this.syncError) {
      if (!this.syncing) this.startSync();
      await this.syncing;
    }
    if (this.syncError) throw this.syncError;
  }

  private startSync(): void {
    const covered = this.bytesWritten;
    this.flushStartedAt = covered;
    this.syncing = this.handle.datasync().then(
      () => {
        this.flushedTo = covered;
        this.syncing = undefined;
      },
      (err: Error) => {
        this.syncError ??= err;
        this.syncing = undefined;
      },
    );
  }

  override _final(cb: (error?: Error | null) => void): void {
    (async () => {
      await this.syncing;
      if (this.syncError) throw this.syncError;
      await this.handle.sync();
    })().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    (async () => {
      await this.syncing;
      await this.handle.close();
    })().then(
      () => cb(err),
      (closeErr: Error) => cb(err ?? closeErr),
    );
  }
}

/** The buffers that remain after the first `n` bytes of `buffers`. */
function skip(buffers: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < buffers.length && n >= buffers[i]!.length) n -= buffers[i++]!.length;
  const rest = buffers.slice(i);
  if (n > 0 && rest.length) rest[0] = rest[0]!.subarray(n);
  return rest;
}
