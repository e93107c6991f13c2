/**
 * The little protobuf that etcd's Authenticate and Status calls need: string fields out, and
 * varint, length-delimited and fixed fields in (anything else in a message is skipped).
 */

export class ProtoError extends Error {}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** A message of string fields (field number, value); empty strings are left out, as proto3 does. */
export function encodeStrings(fields: [number, string][]): Buffer {
  const parts: Buffer[] = [];
  for (const [n, s] of fields) {
    if (!s) continue;
    const bytes = Buffer.from(s, 'utf8');
    parts.push(Buffer.from([...varint(n * 8 + 2), ...varint(bytes.length)]), bytes);
  }
  return Buffer.concat(parts);
}

/** A decoded message: each field number's values, varints as bigint (uint64), the rest as bytes. */
export type Fields = Map<number, (bigint | Buffer)[]>;

export function decodeFields(buf: Buffer): Fields {
  const fields: Fields = new Map();
  let i = 0;
  const readVarint = (): bigint => {
    let v = 0n;
    for (let shift = 0n; ; shift += 7n) {
      if (i >= buf.length) throw new ProtoError('a protobuf message ends inside a varint');
      if (shift > 63n) throw new ProtoError('a varint in a protobuf message is too long');
      const b = buf[i++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
  };
  const take = (n: number): Buffer => {
    if (i + n > buf.length) throw new ProtoError('a field runs past the end of its protobuf message');
    const out = buf.subarray(i, i + n);
    i += n;
    return out;
  };
  while (i < buf.length) {
    const tag = readVarint();
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    let value: bigint | Buffer;
    if (wire === 0) value = readVarint();
    else if (wire === 2) value = take(Number(readVarint()));
    else if (wire === 1) value = take(8);
    else if (wire === 5) value = take(4);
    else throw new ProtoError(`unexpected protobuf wire type ${wire}`);
    const list = fields.get(field);
    if (list) list.push(value);
    else fields.set(field, [value]);
  }
  return fields;
}

/** The last value of a varint field (proto3: absent = 0). */
export function uint(fields: Fields, n: number): bigint {
  const v = fields.get(n)?.at(-1);
  return typeof v === 'bigint' ? v : 0n;
}

/** The last value of a length-delimited field (absent = empty). */
export function bytes(fields: Fields, n: number): Buffer {
  const v = fields.get(n)?.at(-1);
  return Buffer.isBuffer(v) ? v : Buffer.alloc(0);
}
