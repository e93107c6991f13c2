import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { IntegrityError } from '../../src/cli/errors.js';
import { TrailerCheck } from '../../src/snapshot/etcd/trailer.js';
import { patternBytes } from '../helpers/streams.js';

/** A snapshot-shaped byte string: db bytes (a multiple of 4 KiB) + sha256(db). */
function snapshotBytes(dbSize = 64 * 1024): Buffer {
  const db = patternBytes(dbSize, 42);
  return Buffer.concat([db, createHash('sha256').update(db).digest()]);
}

/** Feeds `data` in chunks of the given sizes (cycled) and returns what passed through. */
async function run(data: Buffer, chunkSizes: number[], required = true): Promise<{ out: Buffer; check: TrailerCheck }> {
  const chunks: Buffer[] = [];
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = chunkSizes[i % chunkSizes.length]!;
    chunks.push(data.subarray(off, off + n));
    off += n;
  }
  const check = new TrailerCheck({ required });
  const got: Buffer[] = [];
  await pipeline(Readable.from(chunks), check, new Writable({ write: (c: Buffer, _e, cb) => (got.push(c), cb()) }));
  return { out: Buffer.concat(got), check };
}

describe('TrailerCheck', () => {
  const snap = snapshotBytes();

  it.each([[[32 * 1024]], [[1]], [[31, 33, 7]], [[100_000]], [[32]], [[5, 32 * 1024]]])('accepts a good snapshot in chunks of %j and passes it unchanged', async (sizes) => {
    const { out, check } = await run(snap, sizes);
    expect(out.equals(snap)).toBe(true);
    expect(check.result).toEqual({
      hasTrailer: true,
      dbSha256: createHash('sha256').update(snap.subarray(0, snap.length - 32)).digest('hex'),
      payloadSha256: createHash('sha256').update(snap).digest('hex'),
    });
    expect(check.bytes).toBe(snap.length);
  });

  it('rejects a flipped byte anywhere', async () => {
    for (const at of [0, 4096, snap.length - 33, snap.length - 1]) {
      const bad = Buffer.from(snap);
      bad[at] = bad[at]! ^ 0x01;
      await expect(run(bad, [32 * 1024])).rejects.toBeInstanceOf(IntegrityError);
    }
  });

  it('rejects a truncated stream', async () => {
    await expect(run(snap.subarray(0, snap.length - 1000), [32 * 1024])).rejects.toThrow(/no valid etcd sha256 trailer/);
    await expect(run(snap.subarray(0, 10), [4])).rejects.toThrow(/truncated or not an etcd snapshot/);
  });

  it('a db without trailer is refused unless the check is not required', async () => {
    const db = snap.subarray(0, snap.length - 32);
    await expect(run(db, [32 * 1024])).rejects.toMatchObject({ exitCode: 5, hint: expect.stringContaining('--skip-hash-check') });
    const { check } = await run(db, [32 * 1024], false);
    expect(check.result?.hasTrailer).toBe(false);
  });
});
