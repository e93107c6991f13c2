/**
 * The bbolt reader against small databases built byte by byte here (the layouts etcd rarely makes:
 * nested buckets, inline buckets, branch pages, overflow pages, a persisted freelist), and the
 * integrity checks against deliberately broken variants.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode, LifeboatError } from '../../src/cli/errors.js';
import { BoltReader } from '../../src/snapshot/etcd/bbolt.js';
import { snapshotStatus } from '../../src/snapshot/etcd/status.js';

import { bEntries1, bEntries2, build, PS } from '../helpers/bbolt-fixture.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-bbolt-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fileOf(name: string, bytes: Buffer): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, bytes);
  return p;
}

async function exitOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
  } catch (err) {
    return err instanceof LifeboatError ? err.exitCode : -1;
  }
  return undefined;
}

describe('bbolt reader on a hand-built file', () => {
  it('reads metas, buckets, entries, nested and inline buckets', async () => {
    const r = await BoltReader.open(await fileOf('ok.db', build()));
    try {
      expect(r.meta).toMatchObject({ page: 0, txid: 11, root: 3, freelist: 2, hwm: 10 });
      expect([r.pageSize, r.size, r.hasSha256Trailer]).toEqual([PS, 10 * PS, true]);
      expect(await r.buckets()).toEqual(['a', 'b', 'c']);
      const b: string[] = [];
      for await (const [k, v] of r.entries(['b'])) b.push(`${k.toString()}=${v?.length}`);
      expect(b).toEqual([...bEntries1, ...bEntries2].map((e) => `${e.k}=${e.v.length}`));
      const a: [string, string | null][] = [];
      for await (const [k, v] of r.entries(['a'])) a.push([k.toString(), v ? v.toString() : null]);
      expect(a).toEqual([['x', '1'], ['y', '22']]);
      const c: [string, string | null][] = [];
      for await (const [k, v] of r.entries(['c'])) c.push([k.toString(), v ? v.toString() : null]);
      expect(c).toEqual([['nest', null], ['z', 'last']]);
      expect((await r.get(['c', 'nest'], 'q'))?.toString()).toBe('r');
      expect((await r.get(['b'], 'k500'))?.length).toBe(6000);
      expect(await r.get(['b'], 'nope')).toBeUndefined();
      expect(await r.bucket(['nope'])).toBeUndefined();
      const paths: string[] = [];
      for await (const w of r.walkBuckets()) paths.push(w.path.map(String).join('/'));
      expect(paths).toEqual(['a', 'b', 'c', 'c/nest']);
      expect(await r.check()).toEqual([]);
    } finally {
      await r.close();
    }
  });

  it('computes status like etcdutl: names, then k and v (nested bucket: k only), top level only', async () => {
    const parts: Buffer[] = [Buffer.from('a'), Buffer.from('x1y22'), Buffer.from('b')];
    for (const e of [...bEntries1, ...bEntries2]) parts.push(Buffer.from(e.k), typeof e.v === 'string' ? Buffer.from(e.v) : e.v);
    parts.push(Buffer.from('cnestzlast'));
    const s = await snapshotStatus(await fileOf('status.db', build()));
    expect(s).toEqual({ hash: crc32c(Buffer.concat(parts)), revision: 0, totalKey: 2 + 42 + 2, totalSize: 10 * PS });
  });

  it('falls back to meta page 1 when meta 0 is damaged', async () => {
    const bytes = build();
    bytes[16 + 50] = (bytes[16 + 50] as number) ^ 0xff; // meta 0 txid
    const r = await BoltReader.open(await fileOf('meta0.db', bytes));
    expect(r.meta).toMatchObject({ page: 1, txid: 10 });
    await r.close();
  });

  it.each([
    ['both metas damaged', () => { const b = build(); b[16 + 50] = 1; b[PS + 16 + 50] = 1; return b; }, /both bbolt meta pages are invalid/],
    ['truncated', () => build().subarray(0, 7 * PS), /truncated/],
    ['random bytes', () => Buffer.alloc(5 * PS, 0x5a), /not a bbolt database/],
    ['tiny file', () => Buffer.from('hello'), /not a bbolt database/],
  ])('refuses: %s (exit 5)', async (_name, make, msg) => {
    const p = await fileOf('bad.db', make());
    await expect(snapshotStatus(p)).rejects.toThrow(msg);
    expect(await exitOf(snapshotStatus(p))).toBe(ExitCode.Integrity);
  });

  it.each([
    ['an unreachable page that is not free', { freed: [] }, /page 9: unreachable unfreed/],
    ['a reachable page marked free', { freed: [9, 5] }, /page 5: reachable freed/],
    ['keys out of order', { swapKeys: true }, /is not greater than key/],
  ])('integrity check finds %s', async (_name, opts, msg) => {
    const p = await fileOf('check.db', build(opts));
    await expect(snapshotStatus(p)).rejects.toThrow(msg);
    expect(await exitOf(snapshotStatus(p))).toBe(ExitCode.Integrity);
  });

  it('a missing file is not found (exit 4)', async () => {
    expect(await exitOf(BoltReader.open(join(dir, 'absent.db')))).toBe(ExitCode.NotFound);
  });
});
