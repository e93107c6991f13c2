import { randomBytes } from 'node:crypto';
import { mkdtemp, open, readFile, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileWriter } from '../../src/store/file-writer.js';

/** Chunks of uneven sizes, so writes straddle the flush steps. */
function chunks(total: number): Buffer[] {
  const out: Buffer[] = [];
  for (let left = total, i = 0; left > 0; i++) {
    const n = Math.min(left, 1000 + ((i * 7919) % 30_000));
    out.push(randomBytes(n));
    left -= n;
  }
  return out;
}

/**
 * Wraps a real file handle's writev, datasync and sync to record what reached the file, what
 * was flushed and when, and optionally to slow or fail the flushes.
 */
function instrument(handle: FileHandle, opts: { flushDelayMs?: number; failFlush?: number } = {}) {
  const rec = { written: 0, flushes: 0, syncs: 0, synced: 0, maxBehind: 0, closed: false };
  const writev = handle.writev.bind(handle);
  const datasync = handle.datasync.bind(handle);
  const sync = handle.sync.bind(handle);
  const close = handle.close.bind(handle);
  handle.writev = (async (buffers: Buffer[], position?: number) => {
    const r = await writev(buffers, position);
    rec.written += r.bytesWritten;
    rec.maxBehind = Math.max(rec.maxBehind, rec.written - rec.synced);
    return r;
  }) as FileHandle['writev'];
  handle.datasync = async () => {
    const covered = rec.written;
    rec.flushes++;
    if (opts.flushDelayMs) await new Promise((r) => setTimeout(r, opts.flushDelayMs));
    if (rec.flushes === opts.failFlush) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
    await datasync();
    rec.synced = Math.max(rec.synced, covered);
  };
  handle.sync = async () => {
    rec.syncs++;
    await sync();
    rec.synced = rec.written;
  };
  handle.close = async () => {
    rec.closed = true;
    await close();
  };
  return rec;
}

describe('FileWriter', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-file-writer-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the stream byte for byte, flushes along the way, fsyncs once at the end and closes the file', async () => {
    const data = chunks(8 * 1024 * 1024);
    const file = join(dir, 'out');
    const handle = await open(file, 'wx');
    const rec = instrument(handle);
    const writer = new FileWriter(handle, { syncEvery: 256 * 1024 });
    await pipeline(Readable.from(data), writer);
    const total = data.reduce((n, b) => n + b.length, 0);
    expect(writer.bytesWritten).toBe(total);
    expect((await readFile(file)).equals(Buffer.concat(data))).toBe(true);
    // At most one flush per 256 KiB step; writes come in batches of up to the writer's 1 MiB
    // buffer, and a step passed while a flush is in flight starts none, so fewer than 32.
    expect(rec.flushes).toBeGreaterThanOrEqual(4);
    expect(rec.flushes).toBeLessThanOrEqual(32);
    expect(rec.syncs).toBe(1);
    expect(rec.closed).toBe(true);
  });

  it('holds writes while the disk is more than maxUnsynced behind', async () => {
    const data = chunks(4 * 1024 * 1024);
    const handle = await open(join(dir, 'out'), 'wx');
    const rec = instrument(handle, { flushDelayMs: 20 });
    await pipeline(Readable.from(data), new FileWriter(handle, { syncEvery: 64 * 1024, maxUnsynced: 256 * 1024 }));
    const largestWrite = 1024 * 1024; // the writer's buffer: what one writev can add at once
    expect(rec.maxBehind).toBeLessThan(256 * 1024 + largestWrite);
    // Without the hold, 20 ms flushes would have let most of the 4 MiB get ahead.
    expect(rec.maxBehind).toBeLessThan(2 * 1024 * 1024);
    expect(rec.flushes).toBeGreaterThan(3);
  });

  it('a failed background flush fails the stream (the error is not left for the final fsync) and closes the file', async () => {
    const data = chunks(2 * 1024 * 1024);
    const handle = await open(join(dir, 'out'), 'wx');
    const rec = instrument(handle, { failFlush: 2 });
    await expect(pipeline(Readable.from(data), new FileWriter(handle, { syncEvery: 128 * 1024 }))).rejects.toThrow(/EIO/);
    expect(rec.syncs).toBe(0);
    expect(rec.closed).toBe(true);
  });

  it('a source that fails half-way fails the pipeline and closes the file without the final fsync', async () => {
    const handle = await open(join(dir, 'out'), 'wx');
    const rec = instrument(handle);
    async function* failing() {
      yield randomBytes(100_000);
      yield randomBytes(100_000);
      throw new Error('source died');
    }
    await expect(pipeline(Readable.from(failing()), new FileWriter(handle, { syncEvery: 64 * 1024 }))).rejects.toThrow('source died');
    expect(rec.syncs).toBe(0);
    expect(rec.closed).toBe(true);
  });

  it('refuses settings where the hold would come before the first flush', async () => {
    const handle = await open(join(dir, 'out'), 'wx');
    try {
      expect(() => new FileWriter(handle, { syncEvery: 1024, maxUnsynced: 512 })).toThrow(/syncEvery/);
      expect(() => new FileWriter(handle, { syncEvery: 0 })).toThrow(/syncEvery/);
    } finally {
      await handle.close();
    }
  });
});
