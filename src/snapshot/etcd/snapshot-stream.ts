import { constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { Readable } from 'node:stream';
import { LifeboatError } from '../../cli/errors.js';
import type { Transport } from '../../etcd/connection.js';
import { grpcError, grpcFrame, grpcHeaders, openSession } from '../../etcd/h2.js';
import type { PiecePool } from '../pipeline/piece-pool.js';
import { SnapshotFrames } from './snapshot-frames.js';

export interface SnapshotStreamOptions {
  /** etcd's auth token, sent as the `token` metadata the way etcd's clients send it. */
  token?: string | undefined;
  /** Receive window for the call and its connection (HTTP/2 flow control). */
  windowBytes: number;
  /** No bytes from etcd for this long (while the consumer keeps up) fails the stream; 0: never. */
  stallTimeoutMs: number;
  /** Names the source in errors, e.g. "etcd (https://10.0.0.1:2379)". */
  what: string;
  /** Called with the size of each piece of the snapshot as it arrives. */
  onBytes?: ((n: number) => void) | undefined;
  /**
   * Where the 256 KiB pieces come from, when a later stage gives them back once it is done with
   * them (see PiecePool); otherwise each piece is a new Buffer.
   */
  pool?: PiecePool | undefined;
}

/**
 * etcd's messages arrive in HTTP/2 frames of at most 16 KiB, cut anywhere, so the blob pieces
 * come in all sizes down to a few bytes. Passing them on as they are would cost a write (and a
 * stream hop) each; one copy into 256 KiB pieces costs far less.
 */
export const OUTPUT_CHUNK = 256 * 1024;

/**
 * Maintenance.Snapshot over a plain HTTP/2 connection of its own: the request is an empty
 * SnapshotRequest, and the stream yields exactly the bytes of the response messages' blob fields
 * (etcd's snapshot, trailer included), in 256 KiB pieces. A non-zero gRPC status,
 * a body that stops mid-message, or a stall fails the stream.
 */
export class SnapshotStream extends Readable {
  private session: ClientHttp2Session | undefined;
  private call: ClientHttp2Stream | undefined;
  private readonly frames = new SnapshotFrames();
  private trailers: IncomingHttpHeaders | undefined;
  private waiting = false;
  private done = false;
  private last = Date.now();
  private timer: NodeJS.Timeout | undefined;
  /** Received blob bytes are gathered here and passed on in pieces of this size. */
  private stage: Buffer;
  private fill = 0;
  private readonly deliver = (b: Buffer) => {
    this.opts.onBytes?.(b.length);
    for (let off = 0; off < b.length; ) {
      const n = Math.min(OUTPUT_CHUNK - this.fill, b.length - off);
      b.copy(this.stage, this.fill, off, off + n);
      this.fill += n;
      off += n;
      if (this.fill === OUTPUT_CHUNK) {
        if (!this.push(this.stage)) this.waiting = true;
        this.stage = this.newPiece();
        this.fill = 0;
      }
    }
  };

  constructor(
    private readonly transport: Transport,
    private readonly opts: SnapshotStreamOptions,
  ) {
    super({ highWaterMark: OUTPUT_CHUNK });
    if (opts.pool && opts.pool.size !== OUTPUT_CHUNK) throw new Error(`SnapshotStream needs a pool of ${OUTPUT_CHUNK}-byte pieces`);
    this.stage = this.newPiece();
    this.start();
    this.armStallTimer(opts.stallTimeoutMs);
  }

  private newPiece(): Buffer {
    return this.opts.pool ? this.opts.pool.acquire() : Buffer.allocUnsafe(OUTPUT_CHUNK);
  }

  private start(): void {
    const session = openSession(this.transport, this.opts.windowBytes);
    this.session = session;
    session.on('error', (err) => this.destroy(err));
    const call = session.request(grpcHeaders('/etcdserverpb.Maintenance/Snapshot', this.opts.token));
    this.call = call;
    call.on('response', (headers) => {
      const status = headers[':status'];
      const err = status !== 200 ? new Error(`HTTP status ${String(status)} from ${this.opts.what}`) : grpcError(headers);
      if (err) this.destroy(err);
    });
    call.on('trailers', (headers) => (this.trailers = headers));
    call.on('data', (chunk: Buffer) => {
      this.last = Date.now();
      try {
        this.frames.feed(chunk, this.deliver);
      } catch (err) {
        this.destroy(err as Error);
        return;
      }
      if (this.waiting) call.pause();
    });
    call.on('error', (err) => this.destroy(err));
    // 'close' follows the end of the body (or a reset, or a dropped connection), with rstCode set.
    call.on('close', () => this.finish(call.rstCode));
    // An empty SnapshotRequest.
    call.end(grpcFrame(Buffer.alloc(0)));
  }

  private finish(rstCode?: number): void {
    if (this.done || this.destroyed) return;
    this.done = true;
    const cut = rstCode ? `reset the snapshot stream (HTTP/2 error ${rstCode})` : 'ended the snapshot stream without a gRPC status';
    const err = this.trailers ? grpcError(this.trailers) : new Error(`${this.opts.what} ${cut}`);
    if (err) return void this.destroy(err);
    if (!this.frames.atBoundary) return void this.destroy(new Error(`${this.opts.what} ended the snapshot stream inside a message`));
    clearTimeout(this.timer);
    if (this.fill > 0) this.push(this.stage.subarray(0, this.fill));
    this.push(null);
    this.session?.close();
  }

  override _read(): void {
    if (!this.waiting) return;
    this.waiting = false;
    this.last = Date.now();
    this.call?.resume();
  }

  private armStallTimer(delay: number): void {
    if (this.opts.stallTimeoutMs <= 0) return;
    this.timer = setTimeout(() => {
      const quiet = Date.now() - this.last;
      if (quiet < this.opts.stallTimeoutMs || this.waiting) {
        this.armStallTimer(this.waiting ? this.opts.stallTimeoutMs : this.opts.stallTimeoutMs - quiet);
        return;
      }
      const secs = Math.round(this.opts.stallTimeoutMs / 1000);
      this.destroy(new LifeboatError(`${this.opts.what} sent no data for ${secs}s; giving up.`, { hint: 'Raise --stall-timeout if the source is just slow.' }));
    }, delay);
    this.timer.unref();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    clearTimeout(this.timer);
    if (this.call && !this.call.closed) this.call.close(constants.NGHTTP2_CANCEL);
    this.session?.destroy();
    cb(err);
  }
}
