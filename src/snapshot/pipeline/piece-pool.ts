/**
 * Fixed-size Buffers handed out by a stream's source and given back by the stage that consumes
 * them, so that a long stream reuses a few pieces instead of allocating one per piece (and
 * leaving the garbage collector a snapshot's worth of dead Buffers).
 *
 * Only a stage that has copied a piece's bytes out of it, and keeps no reference to it, may give
 * it back: zstd's streaming compressor does (it takes its input into its own buffers before its
 * write returns). A piece given back that the pool did not hand out, or twice, is ignored; a
 * piece never given back is simply left to the garbage collector.
 */
export class PiecePool {
  private readonly free: Buffer[] = [];
  private readonly issued = new WeakSet<Buffer>();

  constructor(
    readonly size: number,
    /** Pieces kept for reuse at most. */
    private readonly keep = 8,
  ) {}

  acquire(): Buffer {
    const piece = this.free.pop();
    if (piece) return piece;
    const fresh = Buffer.allocUnsafeSlow(this.size);
    this.issued.add(fresh);
    return fresh;
  }

  release(piece: Buffer): void {
    if (!this.issued.has(piece) || this.free.length >= this.keep || this.free.includes(piece)) return;
    this.free.push(piece);
  }
}
