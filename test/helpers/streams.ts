import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';

/** Deterministic pseudo-random bytes (xorshift), so tests can regenerate and compare content. */
export function patternBytes(size: number, seed = 1): Buffer {
  const buf = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

export function sha256(buf: Buffer | string): string {
  return createHash('sha256').update(buf).digest('hex');
}

/** A stream of `data` in chunks that fails with `error` after `failAfter` bytes. */
export function failingStream(data: Buffer, failAfter: number, error = new Error('source failed half-way')): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= failAfter) {
        this.destroy(error);
        return;
      }
      const end = Math.min(failAfter, offset + 256 * 1024);
      this.push(data.subarray(offset, end));
      offset = end;
    },
  });
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
