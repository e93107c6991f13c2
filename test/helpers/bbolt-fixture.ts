/**
 * A small bbolt database built byte by byte: the layouts etcd rarely makes (nested buckets, inline
 * buckets, branch pages, overflow pages, a persisted freelist). Used by the reader's unit tests and
 * cross-checked against etcdutl in the integration tests.
 */
import { fnv64a } from '../../src/snapshot/etcd/bbolt.js';

export const PS = 4096;
export type Entry = { k: string; v: Buffer | string; bucket?: boolean };

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
export const bEntries1: Entry[] = Array.from({ length: 40 }, (_, i) => ({ k: `k${String(i).padStart(3, '0')}`, v: `value-${i}` }));
export const bEntries2: Entry[] = [{ k: 'k500', v: big }, { k: 'k501', v: 'tail' }];
const inlineA = leaf(0, [{ k: 'x', v: '1' }, { k: 'y', v: '22' }], false);
const nested = leaf(0, [{ k: 'q', v: 'r' }], false);

/** pages: 0,1 meta; 2 freelist; 3 root; 4 branch of b; 5 leaf; 6-7 leaf with overflow; 8 leaf of c; 9 free. */
export function build(opts: { freed?: number[]; hwm?: number; swapKeys?: boolean } = {}): Buffer {
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
