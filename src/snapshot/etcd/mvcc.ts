/**
 * etcd's MVCC encoding in the `key` bucket, decoded by hand (no protobuf library):
 *  - bucket keys are revisions: 8-byte big-endian main, '_', 8-byte big-endian sub, and a
 *    trailing 't' for a tombstone (a delete);
 *  - values are mvccpb.KeyValue {1 key bytes, 2 create_revision, 3 mod_revision, 4 version,
 *    5 value bytes, 6 lease} (int64 fields as varints).
 * The meta bucket stores finishedCompactRev / scheduledCompactRev as the 17-byte revision form.
 */

export interface Revision {
  main: number;
  sub: number;
  tombstone: boolean;
}

const TOMBSTONE = 0x74; // 't'
const SEPARATOR = 0x5f; // '_'

function u64be(buf: Uint8Array, off: number): number {
  return ((buf[off] as number) * 0x1000000 + (((buf[off + 1] as number) << 16) | ((buf[off + 2] as number) << 8) | (buf[off + 3] as number))) * 0x1_0000_0000 +
    ((buf[off + 4] as number) * 0x1000000 + (((buf[off + 5] as number) << 16) | ((buf[off + 6] as number) << 8) | (buf[off + 7] as number)));
}

/** Parses a revision key (17 bytes, or 18 with the tombstone mark); null when malformed. */
export function parseRevKey(buf: Uint8Array, start = 0, end = buf.length): Revision | null {
  const len = end - start;
  if (len !== 17 && len !== 18) return null;
  if (buf[start + 8] !== SEPARATOR) return null;
  if (len === 18 && buf[start + 17] !== TOMBSTONE) return null;
  return { main: u64be(buf, start), sub: u64be(buf, start + 9), tombstone: len === 18 };
}

/** Main revision of a revision key without allocating (the first 8 bytes, big-endian). */
export function revKeyMain(buf: Uint8Array, start = 0): number {
  return u64be(buf, start);
}

/** True when the revision key at [start, end) carries the tombstone mark. */
export function isTombstoneKey(buf: Uint8Array, start: number, end: number): boolean {
  return end - start === 18 && buf[end - 1] === TOMBSTONE;
}

/** Builds a revision key (tests, lookups). */
export function formatRevKey(main: number, sub: number, tombstone = false): Buffer {
  const b = Buffer.alloc(tombstone ? 18 : 17);
  b.writeUInt32BE(Math.floor(main / 0x1_0000_0000), 0);
  b.writeUInt32BE(main >>> 0, 4);
  b[8] = SEPARATOR;
  b.writeUInt32BE(Math.floor(sub / 0x1_0000_0000), 9);
  b.writeUInt32BE(sub >>> 0, 13);
  if (tombstone) b[17] = TOMBSTONE;
  return b;
}

export class ProtoError extends Error {}

/** A cursor over protobuf wire format in buf[pos, end). */
export class ProtoReader {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  /** Unsigned varint as a number (exact up to 2^53; int64 fields of etcd stay far below). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError('truncated varint');
      const b = this.buf[this.pos++] as number;
      result += (b & 0x7f) * mul;
      if (b < 0x80) return result;
      mul *= 128;
    }
    throw new ProtoError('varint longer than 10 bytes');
  }

  /** Varint as a signed 64-bit bigint (lease ids use all 64 bits). */
  varintBig(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError('truncated varint');
      const b = this.buf[this.pos++] as number;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return BigInt.asIntN(64, result);
      shift += 7n;
    }
    throw new ProtoError('varint longer than 10 bytes');
  }

  /** Length-delimited field: returns its [start, end) and moves past it. */
  bytes(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) throw new ProtoError('length-delimited field overruns its message');
    this.pos = start + len;
    return [start, start + len];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.pos += 8;
        break;
      case 2:
        this.bytes();
        return;
      case 5:
        this.pos += 4;
        break;
      default:
        throw new ProtoError(`unsupported wire type ${wireType}`);
    }
    if (this.pos > this.end) throw new ProtoError('fixed-size field overruns its message');
  }
}

/** mvccpb.KeyValue, as offsets into the buffer it was decoded from (reused between calls). */
export interface KeyValueFields {
  keyStart: number;
  keyEnd: number;
  createRevision: number;
  modRevision: number;
  version: number;
  valueStart: number;
  valueEnd: number;
  /** 0n when the key has no lease. */
  lease: bigint;
}

export function emptyKeyValue(): KeyValueFields {
  return { keyStart: 0, keyEnd: 0, createRevision: 0, modRevision: 0, version: 0, valueStart: 0, valueEnd: 0, lease: 0n };
}

/** Decodes mvccpb.KeyValue in buf[start, end) into out (throws ProtoError when malformed). */
export function decodeKeyValue(buf: Uint8Array, start: number, end: number, out: KeyValueFields = emptyKeyValue()): KeyValueFields {
  out.keyStart = out.keyEnd = out.valueStart = out.valueEnd = start;
  out.createRevision = out.modRevision = out.version = 0;
  out.lease = 0n;
  const r = new ProtoReader(buf, start, end);
  while (r.pos < end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (field === 1 && wire === 2) [out.keyStart, out.keyEnd] = r.bytes();
    else if (field === 2 && wire === 0) out.createRevision = r.varint();
    else if (field === 3 && wire === 0) out.modRevision = r.varint();
    else if (field === 4 && wire === 0) out.version = r.varint();
    else if (field === 5 && wire === 2) [out.valueStart, out.valueEnd] = r.bytes();
    else if (field === 6 && wire === 0) out.lease = r.varintBig();
    else r.skip(wire);
  }
  return out;
}

/** Varint encoding (tests and fixtures). */
export function encodeVarint(n: number | bigint): Buffer {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

/** Encodes mvccpb.KeyValue the way etcd does (zero fields omitted); for tests and fixtures. */
export function encodeKeyValue(kv: { key: Uint8Array; createRevision?: number; modRevision?: number; version?: number; value?: Uint8Array; lease?: bigint | number }): Buffer {
  const parts: Uint8Array[] = [];
  const bytesField = (f: number, b: Uint8Array | undefined) => {
    if (b && b.length) parts.push(encodeVarint(f * 8 + 2), encodeVarint(b.length), b);
  };
  const intField = (f: number, n: number | bigint | undefined) => {
    if (n !== undefined && BigInt(n) !== 0n) parts.push(encodeVarint(f * 8), encodeVarint(n));
  };
  bytesField(1, kv.key);
  intField(2, kv.createRevision);
  intField(3, kv.modRevision);
  intField(4, kv.version);
  bytesField(5, kv.value);
  intField(6, kv.lease);
  return Buffer.concat(parts);
}
