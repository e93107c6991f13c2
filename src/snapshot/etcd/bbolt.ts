/**
 * A read-only reader of the bbolt file format (etcd's backend), in TypeScript.
 *
 * Random access on the file through one FileHandle; nothing is memory-mapped and the file is
 * never read whole. Memory stays bounded: a small LRU of single pages for lookups, and tree walks
 * that load the children of one branch page at a time, in chunks of at most CHUNK_BYTES read with
 * one call when they sit close together on disk. While a chunk is processed the next one is read
 * (the next children, or the first children of the next sibling branch), so a walk holds at most
 * about three chunks per tree level. Walks may recycle their read buffers (reuseBuffers): fresh
 * memory for every read costs more than the read itself on a warm page cache.
 *
 * Format (little-endian): page header {id u64, flags u16, count u16, overflow u32}; meta page
 * body {magic, version, pageSize, flags u32; root {pgid, sequence} u64; freelist, pgid (high
 * water mark), txid, checksum u64} with checksum = FNV-64a of the first 56 bytes; branch element
 * {pos u32, ksize u32, pgid u64}; leaf element {flags u32, pos u32, ksize u32, vsize u32}, pos
 * relative to the element; bucket value {root u64, sequence u64}, root 0 = inline page follows.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { IntegrityError, NotFoundError, UsageError } from '../../cli/errors.js';

export const BOLT_MAGIC = 0xed0cdaed;
export const BOLT_VERSION = 2;
export const PAGE_HEADER_SIZE = 16;
const ELEM_SIZE = 16;
const BUCKET_HEADER_SIZE = 16;
const META_CHECKSUM_OFFSET = 56;
export const PageFlag = { Branch: 0x01, Leaf: 0x02, Meta: 0x04, Freelist: 0x10 } as const;
const BUCKET_LEAF_FLAG = 0x01;
/** Largest read issued for one group of sibling pages. */
const CHUNK_BYTES = 8 << 20;
/** Siblings further apart than this (bytes) on disk are read separately rather than together. */
const MAX_GAP_BYTES = 256 << 10;
const CACHE_BYTES = 4 << 20;
/** Piece size of a large read (pieces are read concurrently). */
const READ_PIECE = 2 << 20;
/** Most bytes of read buffers kept for reuse by one walk with reuseBuffers. */
const POOL_BYTES = 48 << 20;

/** FNV-64a (the meta page checksum) of buf[start, end). */
export function fnv64a(buf: Uint8Array, start = 0, end = buf.length): bigint {
  let h = 0xcbf29ce484222325n;
  for (let i = start; i < end; i++) h = ((h ^ BigInt(buf[i] as number)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

/** Byte-wise comparison of a[as, ae) and b[bs, be) (cheaper than Buffer.compare for short keys). */
export function compareBytes(a: Uint8Array, as: number, ae: number, b: Uint8Array, bs: number, be: number): number {
  const n = Math.min(ae - as, be - bs);
  for (let i = 0; i < n; i++) {
    const d = (a[as + i] as number) - (b[bs + i] as number);
    if (d !== 0) return d;
  }
  return ae - as - (be - bs);
}

/** u64 LE as a number (exact below 2^53; page ids and txids never get near that). */
function u64(buf: Buffer, off: number): number {
  return buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 0x1_0000_0000;
}

export interface BoltMeta {
  /** Which meta page (0 or 1) this is. */
  page: 0 | 1;
  pageSize: number;
  flags: number;
  /** Root page of the root bucket (whose entries are the top-level buckets). */
  root: number;
  /** Freelist page, or null when the freelist is not persisted (NoFreelistSync). */
  freelist: number | null;
  /** High water mark: pages [0, hwm) are the database. */
  hwm: number;
  txid: number;
}

/** Parses the meta body at buf[off..]; returns the meta or why it is invalid. */
export function parseMeta(buf: Buffer, off: number, page: 0 | 1): BoltMeta | string {
  if (buf.length < off + META_CHECKSUM_OFFSET + 8) return 'too short';
  if (buf.readUInt32LE(off) !== BOLT_MAGIC) return 'bad magic';
  if (buf.readUInt32LE(off + 4) !== BOLT_VERSION) return `unsupported version ${buf.readUInt32LE(off + 4)}`;
  const sum = buf.readBigUInt64LE(off + META_CHECKSUM_OFFSET);
  if (fnv64a(buf, off, off + META_CHECKSUM_OFFSET) !== sum) return 'checksum mismatch';
  const noFreelist = buf.readUInt32LE(off + 32) === 0xffffffff && buf.readUInt32LE(off + 36) === 0xffffffff;
  return {
    page,
    pageSize: buf.readUInt32LE(off + 8),
    flags: buf.readUInt32LE(off + 12),
    root: u64(buf, off + 16),
    freelist: noFreelist ? null : u64(buf, off + 32),
    hwm: u64(buf, off + 40),
    txid: u64(buf, off + 48),
  };
}

/** Read accessors for one leaf page (or inline bucket page); no allocation unless key()/value(). */
export class Leaf {
  constructor(
    readonly buf: Buffer,
    readonly pgid: number,
  ) {}
  get count(): number {
    return this.buf.readUInt16LE(10);
  }
  isBucket(i: number): boolean {
    return (this.buf.readUInt32LE(PAGE_HEADER_SIZE + i * ELEM_SIZE) & BUCKET_LEAF_FLAG) !== 0;
  }
  keyStart(i: number): number {
    const e = PAGE_HEADER_SIZE + i * ELEM_SIZE;
    return e + this.buf.readUInt32LE(e + 4);
  }
  keyEnd(i: number): number {
    return this.keyStart(i) + this.buf.readUInt32LE(PAGE_HEADER_SIZE + i * ELEM_SIZE + 8);
  }
  valueEnd(i: number): number {
    return this.keyEnd(i) + this.buf.readUInt32LE(PAGE_HEADER_SIZE + i * ELEM_SIZE + 12);
  }
  key(i: number): Buffer {
    return this.buf.subarray(this.keyStart(i), this.keyEnd(i));
  }
  /** Raw value bytes (for a nested bucket: its 16-byte header and inline page). */
  value(i: number): Buffer {
    return this.buf.subarray(this.keyEnd(i), this.valueEnd(i));
  }
  /**
   * bbolt writes key1 value1 key2 value2 ... back to back; when this page is laid out that way and
   * holds no nested buckets, returns [start, end) of that run (to hash it in one call), else null.
   */
  contiguousRange(): [number, number] | null {
    const n = this.count;
    if (n === 0) return null;
    const start = this.keyStart(0);
    let end = start;
    for (let i = 0; i < n; i++) {
      if (this.isBucket(i) || this.keyStart(i) !== end) return null;
      end = this.valueEnd(i);
    }
    return [start, end];
  }
}

/** Where a bucket's tree lives: a root page, or an inline page inside its parent's value. */
export interface BucketRef {
  root: number;
  inline: Buffer | null;
}

/** bucket value -> BucketRef. */
export function parseBucketValue(value: Buffer, what: string): BucketRef {
  if (value.length < BUCKET_HEADER_SIZE) throw new IntegrityError(`Bucket ${what} has a ${value.length}-byte header (want 16); the database is corrupt.`);
  const root = u64(value, 0);
  if (root !== 0) return { root, inline: null };
  const inline = value.subarray(BUCKET_HEADER_SIZE);
  if (inline.length < PAGE_HEADER_SIZE) throw new IntegrityError(`Inline bucket ${what} is truncated; the database is corrupt.`);
  return { root: 0, inline };
}

export interface WalkOptions {
  /** Integrity bookkeeping (reachability, ordering), as bbolt's tx.Check does. */
  checker?: BoltChecker;
  signal?: AbortSignal;
  /**
   * Recycle read buffers: a leaf (and every key/value view into it) is then valid only until the
   * walk is resumed after the batch that holds it. Much faster on big files (no fresh memory per
   * read); for consumers that copy what they keep.
   */
  reuseBuffers?: boolean;
}

interface WalkState {
  checker: BoltChecker | undefined;
  signal: AbortSignal | undefined;
  pool: BufferPool | undefined;
}

/** Pages read together, and the pooled buffers that hold them (released after use). */
interface Chunk {
  pages: Buffer[];
  slabs: Buffer[];
}

/** Read buffers in power-of-two size classes, kept for reuse up to a total size. */
class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooled = 0;
  constructor(private readonly maxBytes: number) {}

  /** A buffer of exactly len bytes (a view of a pooled slab); give() the slab back. */
  take(len: number): { buf: Buffer; slab: Buffer | null } {
    let cls = 64 << 10;
    while (cls < len) cls *= 2;
    if (cls > CHUNK_BYTES) return { buf: Buffer.allocUnsafe(len), slab: null };
    const slab = this.free.get(cls)?.pop();
    if (slab) this.pooled -= cls;
    const s = slab ?? Buffer.allocUnsafeSlow(cls);
    return { buf: s.subarray(0, len), slab: s };
  }

  give(slab: Buffer): void {
    if (this.pooled + slab.length > this.maxBytes) return;
    const list = this.free.get(slab.length) ?? [];
    list.push(slab);
    this.free.set(slab.length, list);
    this.pooled += slab.length;
  }
}

/** Integrity checks in the spirit of bbolt's tx.Check, gathered during walks. */
export class BoltChecker {
  readonly problems: string[] = [];
  problemCount = 0;
  private readonly reachable: Uint8Array;
  private readonly freed: Uint8Array;
  private readonly hasFreelist: boolean;

  constructor(
    private readonly hwm: number,
    freedIds: Iterable<number> | null,
    freelistPage: { pgid: number; overflow: number } | null,
  ) {
    this.reachable = new Uint8Array(Math.ceil(hwm / 8) + 1);
    this.freed = new Uint8Array(Math.ceil(hwm / 8) + 1);
    this.hasFreelist = freedIds !== null;
    for (const id of freedIds ?? []) {
      if (id >= hwm) this.problem(`page ${id}: freed page beyond the high water mark ${hwm}`);
      else if (this.isSet(this.freed, id)) this.problem(`page ${id}: already freed`);
      else this.set(this.freed, id);
    }
    this.set(this.reachable, 0);
    this.set(this.reachable, 1);
    if (freelistPage) for (let i = 0; i <= freelistPage.overflow; i++) this.set(this.reachable, freelistPage.pgid + i);
  }

  problem(text: string): void {
    this.problemCount++;
    if (this.problems.length < 20) this.problems.push(text);
  }

  /** A tree page was reached: pgid with `overflow` extra pages, of the given type. */
  visitPage(pgid: number, headerId: number, flags: number, overflow: number): void {
    if (headerId !== pgid) this.problem(`page ${pgid}: header names page ${headerId}`);
    for (let i = 0; i <= overflow; i++) {
      const id = pgid + i;
      if (id >= this.hwm) continue;
      if (this.isSet(this.reachable, id)) this.problem(`page ${id}: multiple references`);
      this.set(this.reachable, id);
    }
    if (pgid < this.hwm && this.isSet(this.freed, pgid)) this.problem(`page ${pgid}: reachable freed`);
    else if ((flags & (PageFlag.Branch | PageFlag.Leaf)) === 0) this.problem(`page ${pgid}: invalid type 0x${flags.toString(16)}`);
  }

  /** Checks that keys [start, end) of page elements are strictly increasing within [lo, hi). */
  keyOrder(buf: Buffer, pgid: number, starts: ArrayLike<number>, ends: ArrayLike<number>, n: number, lo: Buffer | null, hi: Buffer | null): void {
    if (n === 0) return;
    if (lo && compareBytes(lo, 0, lo.length, buf, starts[0] as number, ends[0] as number) > 0) this.problem(`page ${pgid}: first key sorts before its parent's key`);
    for (let i = 1; i < n; i++) {
      if (compareBytes(buf, starts[i - 1] as number, ends[i - 1] as number, buf, starts[i] as number, ends[i] as number) >= 0) this.problem(`page ${pgid}: key ${i} is not greater than key ${i - 1}`);
    }
    // Keys within the page increase, so the last one bounds them all.
    if (hi && compareBytes(hi, 0, hi.length, buf, starts[n - 1] as number, ends[n - 1] as number) <= 0) this.problem(`page ${pgid}: key ${n - 1} does not sort before the next key of its parent`);
  }

  /** After every bucket was walked: every page below the high water mark is reachable or free. */
  finish(): string[] {
    if (this.hasFreelist) {
      for (let id = 0; id < this.hwm; id++) {
        if (!this.isSet(this.reachable, id) && !this.isSet(this.freed, id)) this.problem(`page ${id}: unreachable unfreed`);
      }
    }
    return this.problems;
  }

  private isSet(bits: Uint8Array, id: number): boolean {
    return ((bits[id >>> 3] as number) & (1 << (id & 7))) !== 0;
  }
  private set(bits: Uint8Array, id: number): void {
    bits[id >>> 3] = (bits[id >>> 3] as number) | (1 << (id & 7));
  }
}

export class BoltReader {
  private readonly cache = new Map<number, Buffer>();
  private cacheBytes = 0;
  /** Pages a leaf usually spans, learnt while walking; sizes the tail of coalesced reads. */
  private typicalOverflow = 0;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly fileSize: number,
    readonly meta: BoltMeta,
  ) {}

  get pageSize(): number {
    return this.meta.pageSize;
  }
  /** tx.Size(): high water mark x page size (what `snapshot status` reports as total size). */
  get size(): number {
    return this.meta.hwm * this.meta.pageSize;
  }
  /** The file ends with the 32-byte sha256 that `etcdctl snapshot save` appends. */
  get hasSha256Trailer(): boolean {
    return this.fileSize === this.size + 32;
  }

  static async open(path: string): Promise<BoltReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new NotFoundError(`Snapshot file ${path} does not exist.`);
      if (code === 'EISDIR') throw new UsageError(`${path} is a directory, not a snapshot file.`);
      throw err;
    }
    try {
      const st = await fh.stat();
      const fileSize = st.size;
      if (st.isDirectory()) throw new UsageError(`${path} is a directory, not a snapshot file.`);
      const meta = await readMeta(fh, path, fileSize);
      if (meta.hwm < 2 || meta.root < 2 || meta.root >= meta.hwm) {
        throw new IntegrityError(`${path} is corrupt: its meta page points at root page ${meta.root} of ${meta.hwm}.`);
      }
      if (meta.hwm * meta.pageSize > fileSize) {
        throw new IntegrityError(`${path} is truncated: the database needs ${meta.hwm * meta.pageSize} bytes (${meta.hwm} pages) but the file has ${fileSize}.`);
      }
      return new BoltReader(path, fh, fileSize, meta);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.fh.close();
  }

  /** The root bucket (its entries are the top-level buckets). */
  rootRef(): BucketRef {
    return { root: this.meta.root, inline: null };
  }

  /** Names of the top-level buckets, in key order. */
  async buckets(): Promise<string[]> {
    const names: string[] = [];
    for await (const [k] of this.entriesOf(this.rootRef())) names.push(k.toString());
    return names;
  }

  /** The bucket at path (names from the top), or undefined when any level is missing. */
  async bucket(path: readonly (string | Buffer)[]): Promise<BucketRef | undefined> {
    let ref = this.rootRef();
    for (const part of path) {
      const name = typeof part === 'string' ? Buffer.from(part) : part;
      const found = await this.lookup(ref, name);
      if (!found || !found.bucket) return undefined;
      ref = parseBucketValue(found.value, JSON.stringify(name.toString()));
    }
    return ref;
  }

  /** The value of key in the bucket at path (null for a nested bucket), or undefined. */
  async get(path: readonly (string | Buffer)[], key: string | Buffer): Promise<Buffer | null | undefined> {
    const ref = await this.bucket(path);
    if (!ref) return undefined;
    const found = await this.lookup(ref, typeof key === 'string' ? Buffer.from(key) : key);
    return found ? (found.bucket ? null : found.value) : undefined;
  }

  /** k/v of the bucket at path in key order; v is null for nested buckets. */
  async *entries(path: readonly (string | Buffer)[], opts: WalkOptions = {}): AsyncGenerator<[Buffer, Buffer | null]> {
    const ref = await this.bucket(path);
    if (!ref) throw new NotFoundError(`Bucket ${path.map(String).join('/')} does not exist in ${this.path}.`);
    yield* this.entriesOf(ref, opts);
  }

  async *entriesOf(ref: BucketRef, opts: WalkOptions = {}): AsyncGenerator<[Buffer, Buffer | null]> {
    for await (const leaf of this.leaves(ref, opts)) {
      for (let i = 0, n = leaf.count; i < n; i++) yield [leaf.key(i), leaf.isBucket(i) ? null : leaf.value(i)];
    }
  }

  /**
   * Every bucket below `from` (default: the root), depth first in key order: its path of names and
   * where its tree is. Each bucket's tree is walked once (with opts.checker, checked once).
   */
  async *walkBuckets(opts: WalkOptions = {}, from: { path: Buffer[]; ref: BucketRef } = { path: [], ref: this.rootRef() }): AsyncGenerator<{ path: Buffer[]; ref: BucketRef }> {
    const stack = [from];
    while (stack.length) {
      const { path, ref } = stack.pop() as { path: Buffer[]; ref: BucketRef };
      const children: { path: Buffer[]; ref: BucketRef }[] = [];
      for await (const leaf of this.leaves(ref, opts)) {
        for (let i = 0; i < leaf.count; i++) {
          if (!leaf.isBucket(i)) continue;
          const name = Buffer.from(leaf.key(i));
          children.push({ path: [...path, name], ref: parseBucketValue(Buffer.from(leaf.value(i)), JSON.stringify(name.toString())) });
        }
      }
      if (path !== from.path) yield { path, ref };
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i] as { path: Buffer[]; ref: BucketRef });
    }
  }

  /** A checker primed with the freelist; pass it to walks of every bucket, then call finish(). */
  async createChecker(): Promise<BoltChecker> {
    const { freelist, hwm } = this.meta;
    if (freelist === null) return new BoltChecker(hwm, null, null);
    if (freelist < 2 || freelist >= hwm) throw new IntegrityError(`${this.path} is corrupt: its freelist page ${freelist} lies outside the database (${hwm} pages).`);
    const page = await this.page(freelist);
    const flags = page.readUInt16LE(8);
    if ((flags & PageFlag.Freelist) === 0) throw new IntegrityError(`${this.path} is corrupt: page ${freelist} should hold the freelist but has type 0x${flags.toString(16)}.`);
    let count = page.readUInt16LE(10);
    let off = PAGE_HEADER_SIZE;
    if (count === 0xffff) {
      count = u64(page, off);
      off += 8;
    }
    if (off + count * 8 > page.length) throw new IntegrityError(`${this.path} is corrupt: the freelist on page ${freelist} overruns its page.`);
    const ids = (function* () {
      for (let i = 0; i < count; i++) yield u64(page, off + i * 8);
    })();
    return new BoltChecker(hwm, ids, { pgid: freelist, overflow: page.readUInt32LE(12) });
  }

  /** Full integrity check (every bucket, nested too); returns the problems found (empty = ok). */
  async check(opts: { signal?: AbortSignal } = {}): Promise<string[]> {
    const checker = await this.createChecker();
    // walkBuckets walks the root bucket's tree and every nested bucket's tree exactly once.
    for await (const _ of this.walkBuckets({ ...opts, checker })) {
      // pages are checked as they are reached
    }
    return checker.finish();
  }

  /**
   * Leaf pages of a bucket's tree, in key order. A nested bucket inside is not descended into
   * (its entry carries the bucket flag). Each Leaf's buffer stays valid after the next one.
   */
  async *leaves(ref: BucketRef, opts: WalkOptions = {}): AsyncGenerator<Leaf> {
    for await (const batch of this.leafBatches(ref, opts)) yield* batch;
  }

  /** Same as leaves(), a chunk of siblings at a time (cheaper for tight loops). */
  async *leafBatches(ref: BucketRef, opts: WalkOptions = {}): AsyncGenerator<Leaf[]> {
    const state: WalkState = { checker: opts.checker, signal: opts.signal, pool: opts.reuseBuffers ? new BufferPool(POOL_BYTES) : undefined };
    if (ref.inline) {
      this.validatePage(ref.inline, 0, state, null, null, true);
      yield [new Leaf(ref.inline, 0)];
      return;
    }
    const root = await this.page(ref.root, false);
    yield* this.walk(root, ref.root, state, null, null);
  }

  /**
   * Depth-first walk under a page. While one group of siblings is processed, the next group is
   * being read: the next chunk of this page's children, and the first chunk of the next sibling
   * branch (so reads also run ahead across branch boundaries).
   */
  private async *walk(buf: Buffer, pgid: number, state: WalkState, lo: Buffer | null, hi: Buffer | null, preloaded?: Promise<Chunk>): AsyncGenerator<Leaf[]> {
    const flags = this.validatePage(buf, pgid, state, lo, hi, false);
    if (flags & PageFlag.Leaf) {
      yield [new Leaf(buf, pgid)];
      return;
    }
    const n = buf.readUInt16LE(10);
    const children = childIds(buf);
    // Key bounds of each child, only needed for the ordering checks.
    const keyAt = (i: number): Buffer | null => {
      if (!state.checker) return null;
      if (i >= n) return hi;
      const e = PAGE_HEADER_SIZE + i * ELEM_SIZE;
      const s = e + buf.readUInt32LE(e);
      return buf.subarray(s, s + buf.readUInt32LE(e + 4));
    };
    let next = preloaded ?? this.loadChunk(children, 0, state);
    for (let from = 0; from < n; ) {
      state.signal?.throwIfAborted();
      const chunk = await next;
      const pages = chunk.pages;
      const end = from + pages.length;
      if (end < n) next = this.loadChunk(children, end, state);
      let batch: Leaf[] = [];
      let carried: Promise<Chunk> | undefined;
      for (let j = 0; j < pages.length; j++) {
        const i = from + j;
        const child = pages[j] as Buffer;
        const id = children[i] as number;
        if (child.readUInt16LE(8) & PageFlag.Leaf) {
          this.validatePage(child, id, state, keyAt(i), keyAt(i + 1), false);
          batch.push(new Leaf(child, id));
        } else {
          if (batch.length) yield batch;
          batch = [];
          const sibling = pages[j + 1];
          const ahead = sibling && sibling.readUInt16LE(8) & PageFlag.Branch ? this.loadChunk(childIds(sibling), 0, state) : undefined;
          yield* this.walk(child, id, state, keyAt(i), keyAt(i + 1), carried);
          carried = ahead;
        }
      }
      if (batch.length) yield batch;
      // Everything in this chunk has been handed out and come back: its buffers can be reused.
      if (state.pool) for (const slab of chunk.slabs) state.pool.give(slab);
      from = end;
    }
  }

  /** Reads the children ids[from..] that fit in one chunk. */
  private loadChunk(ids: number[], from: number, state: WalkState): Promise<Chunk> {
    const perChild = (this.typicalOverflow + 1) * this.pageSize;
    const chunk = Math.max(1, Math.min(256, Math.floor(CHUNK_BYTES / perChild)));
    const p = this.loadMany(ids.slice(from, from + chunk), state.pool);
    p.catch(() => undefined); // awaited later; never an unhandled rejection if the walk stops early
    return p;
  }

  /** Checks a page's header and element bounds (and, with a checker, its keys); returns its flags. */
  private validatePage(buf: Buffer, pgid: number, state: WalkState, lo: Buffer | null, hi: Buffer | null, inline: boolean): number {
    const flags = buf.readUInt16LE(8);
    const n = buf.readUInt16LE(10);
    const where = inline ? 'an inline bucket page' : `page ${pgid}`;
    const isLeaf = (flags & PageFlag.Leaf) !== 0;
    if (!isLeaf && (flags & PageFlag.Branch) === 0) throw new IntegrityError(`${this.path} is corrupt: ${where} should be a branch or leaf page but has type 0x${flags.toString(16)}.`);
    if (inline && !isLeaf) throw new IntegrityError(`${this.path} is corrupt: ${where} is not a leaf page.`);
    if (!isLeaf && n === 0) throw new IntegrityError(`${this.path} is corrupt: branch ${where} has no elements.`);
    if (PAGE_HEADER_SIZE + n * ELEM_SIZE > buf.length) throw new IntegrityError(`${this.path} is corrupt: ${where} has ${n} elements, more than fit.`);
    const starts = new Array<number>(n);
    const ends = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const e = PAGE_HEADER_SIZE + i * ELEM_SIZE;
      const ks = e + (isLeaf ? buf.readUInt32LE(e + 4) : buf.readUInt32LE(e));
      const ke = ks + (isLeaf ? buf.readUInt32LE(e + 8) : buf.readUInt32LE(e + 4));
      const ve = isLeaf ? ke + buf.readUInt32LE(e + 12) : ke;
      if (ve > buf.length) throw new IntegrityError(`${this.path} is corrupt: element ${i} of ${where} points past the end of the page.`);
      if (!isLeaf) {
        const child = u64(buf, e + 8);
        if (child < 2 || child >= this.meta.hwm) throw new IntegrityError(`${this.path} is corrupt: ${where} points at page ${child}, outside the database (${this.meta.hwm} pages).`);
      }
      starts[i] = ks;
      ends[i] = ke;
    }
    const c = state.checker;
    if (c) {
      if (!inline) c.visitPage(pgid, u64(buf, 0), flags, buf.readUInt32LE(12));
      c.keyOrder(buf, pgid, starts, ends, n, lo, hi);
    }
    return flags;
  }

  /** One page with its overflow pages; cached when `cache` (lookups), not for bulk walks. */
  private async page(pgid: number, cache = true): Promise<Buffer> {
    const hit = this.cache.get(pgid);
    if (hit) {
      this.cache.delete(pgid);
      this.cache.set(pgid, hit);
      return hit;
    }
    this.assertInDb(pgid, 0);
    const ps = this.pageSize;
    let buf = await this.readAt(pgid * ps, ps);
    const overflow = buf.readUInt32LE(12);
    if (overflow > 0) {
      this.assertInDb(pgid, overflow);
      const full = Buffer.allocUnsafe((overflow + 1) * ps);
      buf.copy(full);
      await this.readInto(full, ps, pgid * ps + ps);
      buf = full;
    }
    if (cache && buf.length <= CACHE_BYTES / 4) {
      this.cache.set(pgid, buf);
      this.cacheBytes += buf.length;
      for (const [id, b] of this.cache) {
        if (this.cacheBytes <= CACHE_BYTES) break;
        this.cache.delete(id);
        this.cacheBytes -= b.length;
      }
    }
    return buf;
  }

  /**
   * Reads several pages (with their overflow), returned in the order asked. Pages close together
   * on disk are read with one call; a page whose overflow runs past its read is completed apart.
   */
  private async loadMany(pgids: number[], pool: BufferPool | undefined): Promise<Chunk> {
    const ps = this.pageSize;
    const order = pgids.map((_, i) => i).sort((a, b) => (pgids[a] as number) - (pgids[b] as number));
    const out = new Array<Buffer>(pgids.length);
    const maxGap = Math.max(1, Math.floor(MAX_GAP_BYTES / ps));
    const tail = this.typicalOverflow + 1;
    const runs: number[][] = [];
    let run: number[] = [];
    for (const idx of order) {
      const id = pgids[idx] as number;
      this.assertInDb(id, 0);
      const first = run.length ? (pgids[run[0] as number] as number) : id;
      const last = run.length ? (pgids[run[run.length - 1] as number] as number) : id;
      if (run.length && (id - last > maxGap || (id + tail - first) * ps > CHUNK_BYTES)) {
        runs.push(run);
        run = [];
      }
      run.push(idx);
    }
    if (run.length) runs.push(run);
    let overflowSum = 0;
    const slabs: Buffer[] = [];
    await Promise.all(
      runs.map(async (r) => {
        const start = pgids[r[0] as number] as number;
        const end = Math.min(this.meta.hwm, (pgids[r[r.length - 1] as number] as number) + tail);
        const { buf, slab } = pool ? pool.take((end - start) * ps) : { buf: Buffer.allocUnsafe((end - start) * ps), slab: null };
        if (slab) slabs.push(slab);
        await this.readSpread(buf, start * ps);
        for (const idx of r) {
          const id = pgids[idx] as number;
          const off = (id - start) * ps;
          const overflow = buf.readUInt32LE(off + 12);
          overflowSum += overflow;
          if (id + overflow < end) out[idx] = buf.subarray(off, off + (overflow + 1) * ps);
          else out[idx] = await this.page(id, false);
        }
      }),
    );
    this.typicalOverflow = Math.min(64, Math.round(overflowSum / Math.max(1, pgids.length)));
    return { pages: out, slabs };
  }

  private assertInDb(pgid: number, overflow: number): void {
    if (pgid + overflow >= this.meta.hwm) {
      throw new IntegrityError(`${this.path} is corrupt: page ${pgid + overflow} lies beyond the end of the database (${this.meta.hwm} pages).`);
    }
  }

  private async readAt(pos: number, len: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(len);
    await this.readInto(buf, 0, pos);
    return buf;
  }

  /** Fills buf from pos; large reads are split so the thread pool copies the pieces in parallel. */
  private async readSpread(buf: Buffer, pos: number): Promise<void> {
    const parts: Promise<void>[] = [];
    for (let off = 0; off < buf.length; off += READ_PIECE) parts.push(this.readInto(buf.subarray(off, Math.min(buf.length, off + READ_PIECE)), 0, pos + off));
    await Promise.all(parts);
  }

  private async readInto(buf: Buffer, off: number, pos: number): Promise<void> {
    while (off < buf.length) {
      const { bytesRead } = await this.fh.read(buf, off, buf.length - off, pos);
      if (bytesRead === 0) throw new IntegrityError(`${this.path} is truncated: it ends at byte ${pos} inside the database.`);
      off += bytesRead;
      pos += bytesRead;
    }
  }

  /** Binary search down the tree of ref for key. */
  private async lookup(ref: BucketRef, key: Buffer): Promise<{ value: Buffer; bucket: boolean } | undefined> {
    let buf = ref.inline ?? (await this.page(ref.root));
    let pgid = ref.root;
    for (let depth = 0; depth < 64; depth++) {
      const flags = this.validatePage(buf, pgid, { checker: undefined, signal: undefined, pool: undefined }, null, null, ref.inline !== null);
      const n = buf.readUInt16LE(10);
      if (flags & PageFlag.Leaf) {
        const leaf = new Leaf(buf, pgid);
        let a = 0;
        let b = n;
        while (a < b) {
          const m = (a + b) >>> 1;
          if (buf.compare(key, 0, key.length, leaf.keyStart(m), leaf.keyEnd(m)) < 0) a = m + 1;
          else b = m;
        }
        if (a < n && buf.compare(key, 0, key.length, leaf.keyStart(a), leaf.keyEnd(a)) === 0) return { value: leaf.value(a), bucket: leaf.isBucket(a) };
        return undefined;
      }
      // Branch: the last element whose key <= key (or the first).
      let a = 0;
      let b = n;
      while (a < b) {
        const m = (a + b) >>> 1;
        const e = PAGE_HEADER_SIZE + m * ELEM_SIZE;
        const s = e + buf.readUInt32LE(e);
        if (buf.compare(key, 0, key.length, s, s + buf.readUInt32LE(e + 4)) <= 0) a = m + 1;
        else b = m;
      }
      const i = Math.max(0, a - 1);
      pgid = u64(buf, PAGE_HEADER_SIZE + i * ELEM_SIZE + 8);
      buf = await this.page(pgid);
    }
    throw new IntegrityError(`${this.path} is corrupt: a bucket tree is deeper than 64 levels.`);
  }
}

/** Child page ids of a branch page (bounds-checked; element validation happens when it is walked). */
function childIds(buf: Buffer): number[] {
  const n = Math.min(buf.readUInt16LE(10), Math.floor((buf.length - PAGE_HEADER_SIZE) / ELEM_SIZE));
  const ids = new Array<number>(n);
  for (let i = 0; i < n; i++) ids[i] = u64(buf, PAGE_HEADER_SIZE + i * ELEM_SIZE + 8);
  return ids;
}

async function readMeta(fh: FileHandle, path: string, fileSize: number): Promise<BoltMeta> {
  const what = `${path} is not a bbolt database (etcd snapshot)`;
  if (fileSize < 1024) throw new IntegrityError(`${what}: it is only ${fileSize} bytes long.`);
  const head = Buffer.alloc(Math.min(fileSize, 4096));
  await fh.read(head, 0, head.length, 0);
  const m0 = parseMeta(head, PAGE_HEADER_SIZE, 0);
  let m1: BoltMeta | string = 'not found';
  const sizes = typeof m0 === 'string' ? [4096, 8192, 16384, 32768, 65536, 1024, 2048] : [m0.pageSize];
  for (const ps of sizes) {
    if (ps < 1024 || ps + PAGE_HEADER_SIZE + 64 > fileSize) continue;
    const buf = Buffer.alloc(PAGE_HEADER_SIZE + 64);
    await fh.read(buf, 0, buf.length, ps);
    const m = parseMeta(buf, PAGE_HEADER_SIZE, 1);
    if (typeof m !== 'string' && m.pageSize === ps) {
      m1 = m;
      break;
    }
    // Keep the most telling reason: anything beats "no magic here".
    if (m1 === 'not found' || m1 === 'bad magic') m1 = typeof m === 'string' ? m : `page size ${m.pageSize} does not match its offset ${ps}`;
  }
  const valid = [m0, m1].filter((m): m is BoltMeta => typeof m !== 'string').sort((a, b) => b.txid - a.txid);
  const meta = valid[0];
  if (!meta) {
    if (m0 === 'bad magic' && (m1 === 'bad magic' || m1 === 'not found')) throw new IntegrityError(`${what}: no meta page has the bbolt magic number.`);
    throw new IntegrityError(`${path} is corrupt: both bbolt meta pages are invalid (page 0: ${m0 as string}; page 1: ${m1 as string}).`);
  }
  if (meta.pageSize < 1024 || meta.pageSize > 1 << 20) throw new IntegrityError(`${path} is corrupt: its meta page gives an impossible page size ${meta.pageSize}.`);
  return meta;
}
