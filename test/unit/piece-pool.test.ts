import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { compressor, decompressor } from '../../src/snapshot/pipeline/codec.js';
import { PiecePool } from '../../src/snapshot/pipeline/piece-pool.js';

describe('PiecePool', () => {
  it('hands out pieces of its size and reuses those given back', () => {
    const pool = new PiecePool(1024);
    const a = pool.acquire();
    const b = pool.acquire();
    expect(a.length).toBe(1024);
    expect(a).not.toBe(b);
    pool.release(a);
    expect(pool.acquire()).toBe(a);
    expect(pool.acquire()).not.toBe(b);
  });

  it('ignores pieces it did not hand out, and a piece given back twice', () => {
    const pool = new PiecePool(1024);
    const a = pool.acquire();
    pool.release(Buffer.alloc(1024));
    pool.release(a.subarray(0, 1024));
    pool.release(a);
    pool.release(a);
    expect(pool.acquire()).toBe(a);
    const fresh = pool.acquire();
    expect(fresh).not.toBe(a);
  });

  it('keeps at most `keep` pieces for reuse', () => {
    const pool = new PiecePool(16, 2);
    const pieces = [pool.acquire(), pool.acquire(), pool.acquire()];
    for (const p of pieces) pool.release(p);
    const again = [pool.acquire(), pool.acquire(), pool.acquire()];
    expect(again.filter((p) => pieces.includes(p))).toHaveLength(2);
  });
});

describe('zstd compressor giving its input back', () => {
  it('reports each piece once taken in: overwriting it then does not change the output', async () => {
    const size = 256 * 1024;
    const pool = new PiecePool(size, 4);
    // Compressible but not trivial: random words repeated.
    const words = Array.from({ length: 512 }, () => randomBytes(8).toString('hex'));
    const input = Buffer.from(Array.from({ length: 400_000 }, (_, i) => words[(i * 7919) % words.length]).join(' '));
    let consumed = 0;
    let reused = 0;
    const issued = new Set<Buffer>();
    const z = compressor('zstd', 1, {
      consumed: (piece) => {
        consumed++;
        // The pool's piece is now free: scribble over it, as its next use would.
        piece.fill(0xa5);
        pool.release(piece);
      },
    });
    let off = 0;
    const source = new Readable({
      read() {
        if (off >= input.length) return void this.push(null);
        const piece = pool.acquire();
        if (issued.has(piece)) reused++;
        issued.add(piece);
        const n = input.copy(piece, 0, off, off + size);
        off += n;
        this.push(n === size ? piece : Buffer.from(piece.subarray(0, n)));
      },
    });
    const out: Buffer[] = [];
    await pipeline(source, z, decompressor('zstd'), new Writable({ write: (c: Buffer, _e, cb) => (out.push(c), cb()) }));
    expect(Buffer.concat(out).equals(input)).toBe(true);
    expect(consumed).toBe(Math.ceil(input.length / size));
    expect(reused).toBeGreaterThan(0);
  });
});
