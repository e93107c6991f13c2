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
import { BoltReader, fnv64a } from '../../src/snapshot/etcd/bbolt.js';
import { snapshotStatus } from '../../src/snapshot/etcd/status.js';

const PS = 4096;
type Entry = { k: string; v: Buffer | string; bucket?: boolean };

function header(buf: Buffer, id: number, flags: number, count: number, overflow: number): void {
  buf.writeBigUInt64LE(BigInt(id), 0);
  buf.writeUInt16LE(flags, 8);
  buf.writeUInt16LE(count, 10);
  buf.writeUInt32LE(overflow, 12);
}

/** A leaf page; with pad=false, exactly its bytes (an inline bucket page). */
function leaf(id: number, entries: Entry[], pad = true): Buffer {
  const data = entries.map((e) => [Buffer.from(e.k), typeof e.v === 'string' ? Buffer.from(e.v) : e.v] as const);
  const used = 16 + 16 * entries.length + data.reduce((n, [k, v]) => n + k.length + v.length, 0);
  const pages = Math.ceil(used / PS);
  const buf = Buffer.alloc(pad ? pages * PS : used);
  header(buf, id, 0x02, entries.length, pad ? pages - 1 : 0);
  let off = 16 + 16 * entries.length;
  data.forEach(([k, v], i) => {
    const e = 16 + 16 * i;
    buf.writeUInt32LE(entries[i]?.bucket ? 1 : 0, e);
    buf.writeUInt32LE(off - e, e + 4);
    buf.writeUInt32LE(k.length, e + 8);
    buf.writeUInt32LE(v.length, e + 12);
    k.copy(buf, off);
    v.copy(buf, off + k.length);
    off += k.length + v.length;
  });
  return buf;
}

function branch(id: number, children: { k: string; pgid: number }[]): Buffer {
  const buf = Buffer.alloc(PS);
  header(buf, id, 0x01, children.length, 0);
  let off = 16 + 16 * children.length;
  children.forEach((c, i) => {
    const e = 16 + 16 * i;
    buf.writeUInt32LE(off - e, e);
    buf.writeUInt32LE(c.k.length, e + 4);
    buf.writeBigUInt64LE(BigInt(c.pgid), e + 8);
    off += buf.write(c.k, off);
  });
  return buf;
}

function meta(id: number, root: number, freelist: number, hwm: number, txid: number): Buffer {
  const buf = Buffer.alloc(PS);
  header(buf, id, 0x04, 0, 0);
  const m = buf.subarray(16);
  m.writeUInt32LE(0xed0cdaed, 0);
  m.writeUInt32LE(2, 4);
  m.writeUInt32LE(PS, 8);
  m.writeBigUInt64LE(BigInt(root), 16);
  m.writeBigUInt64LE(BigInt(freelist), 32);
  m.writeBigUInt64LE(BigInt(hwm), 40);
  m.writeBigUInt64LE(BigInt(txid), 48);
  m.writeBigUInt64LE(fnv64a(m, 0, 56), 56);
  return buf;
}

function freelist(id: number, ids: number[]): Buffer {
  const buf = Buffer.alloc(PS);
  header(buf, id, 0x10, ids.length, 0);
  ids.forEach((x, i) => buf.writeBigUInt64LE(BigInt(x), 16 + 8 * i));
  return buf;
}

/** Bucket value: {root, sequence}, then the inline page when root is 0. */
function bucketValue(root: number, inline?: Buffer): Buffer {
  const head = Buffer.alloc(16);
  head.writeBigUInt64LE(BigInt(root), 0);
  return Buffer.concat([head, inline ?? Buffer.alloc(0)]);
}

const big = Buffer.alloc(6000, 0x61);
const bEntries1: Entry[] = Array.from({ length: 40 }, (_, i) => ({ k: `k${String(i).padStart(3, '0')}`, v: `value-${i}` }));
const bEntries2: Entry[] = [{ k: 'k500', v: big }, { k: 'k501', v: 'tail' }];
const inlineA = leaf(0, [{ k: 'x', v: '1' }, { k: 'y', v: '22' }], false);
const nested = leaf(0, [{ k: 'q', v: 'r' }], false);

/** pages: 0,1 meta; 2 freelist; 3 root; 4 branch of b; 5 leaf; 6-7 leaf with overflow; 8 leaf of c; 9 free. */
function build(opts: { freed?: number[]; hwm?: number; swapKeys?: boolean } = {}): Buffer {
  const hwm = opts.hwm ?? 10;
  const root = leaf(3, [
    { k: 'a', v: bucketValue(0, inlineA), bucket: true },
    { k: 'b', v: bucketValue(4), bucket: true },
    { k: 'c', v: bucketValue(8), bucket: true },
  ]);
  const first = opts.swapKeys ? [...bEntries1].reverse() : bEntries1;
  const c = leaf(8, [{ k: 'nest', v: bucketValue(0, nested), bucket: true }, { k: 'z', v: 'last' }]);
  const pages = [meta(0, 3, 2, hwm, 11), meta(1, 3, 2, hwm, 10), freelist(2, opts.freed ?? [9]), root, branch(4, [{ k: 'k000', pgid: 5 }, { k: 'k500', pgid: 6 }]), leaf(5, first), leaf(6, bEntries2), c];
  const file = Buffer.concat([...pages, Buffer.alloc(PS * (hwm - 9))]);
  return Buffer.concat([file, Buffer.alloc(32, 7)]); // + a sha256-sized trailer
}

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

  it.skipIf(!process.env['LIFEBOAT_DUMP_BBOLT'])('dumps the fixture for a cross-check with etcdutl', async () => {
    await writeFile(process.env['LIFEBOAT_DUMP_BBOLT'] as string, build());
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
