import { describe, expect, it } from 'vitest';
import { SnapshotFrameError, SnapshotFrames } from '../../src/snapshot/etcd/snapshot-frames.js';
import { patternBytes } from '../helpers/streams.js';

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

const bytesField = (field: number, data: Buffer) => Buffer.concat([varint(field * 8 + 2), varint(data.length), data]);
const varintField = (field: number, v: number) => Buffer.concat([varint(field * 8), varint(v)]);
const grpcMessage = (body: Buffer, compressed = 0) => {
  const prefix = Buffer.alloc(5);
  prefix[0] = compressed;
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
};

/** A ResponseHeader as etcd sends it: cluster_id, member_id (64-bit), revision, raft_term (all varints). */
const header = bytesField(1, Buffer.concat([varintField(1, 2 ** 63 + 2 ** 40), varintField(2, 2 ** 62 + 12345), varintField(3, 123456), varintField(4, 7)]));

/** A response body like etcd's: header and remaining_bytes on every message, a version string on the first. */
function responseBody(snapshot: Buffer, messageSize: number): Buffer {
  const messages: Buffer[] = [];
  for (let off = 0; off < snapshot.length; off += messageSize) {
    const blob = snapshot.subarray(off, off + messageSize);
    const remaining = snapshot.length - off - blob.length;
    messages.push(grpcMessage(Buffer.concat([header, varintField(2, remaining), bytesField(3, blob), ...(off === 0 ? [bytesField(4, Buffer.from('3.5.0'))] : [])])));
  }
  return Buffer.concat(messages);
}

function parse(body: Buffer, sizes: number[]): { out: Buffer; frames: SnapshotFrames; pieces: Buffer[] } {
  const frames = new SnapshotFrames();
  const pieces: Buffer[] = [];
  for (let off = 0, i = 0; off < body.length; i++) {
    const n = sizes[i % sizes.length]!;
    frames.feed(body.subarray(off, off + n), (b) => pieces.push(b));
    off += n;
  }
  return { out: Buffer.concat(pieces), frames, pieces };
}

describe('SnapshotFrames', () => {
  const snapshot = patternBytes(200_000, 3);
  const body = responseBody(snapshot, 32 * 1024);

  it.each([[[body.length]], [[16 * 1024]], [[1]], [[3, 5, 7]], [[32 * 1024 + 5]], [[100_000]]])('yields exactly the blob bytes whatever the chunking (%j)', (sizes) => {
    const { out, frames } = parse(body, sizes);
    expect(out.equals(snapshot)).toBe(true);
    expect(frames.messages).toBe(Math.ceil(snapshot.length / (32 * 1024)));
    expect(frames.atBoundary).toBe(true);
  });

  it('hands on views of the received buffers, not copies', () => {
    const { pieces } = parse(body, [body.length]);
    expect(pieces.every((p) => p.buffer === body.buffer)).toBe(true);
  });

  it('splits at every byte of prefixes, tags and lengths', () => {
    const small = responseBody(patternBytes(300, 4), 100);
    for (let cut = 1; cut < small.length; cut++) {
      const frames = new SnapshotFrames();
      const got: Buffer[] = [];
      frames.feed(small.subarray(0, cut), (b) => got.push(b));
      frames.feed(small.subarray(cut), (b) => got.push(b));
      expect(Buffer.concat(got).equals(patternBytes(300, 4))).toBe(true);
    }
  });

  it('knows a body cut inside a message from one cut between messages', () => {
    const first = responseBody(snapshot, 32 * 1024).subarray(0, grpcMessage(Buffer.alloc(0)).length);
    expect(parse(first, [first.length]).frames.atBoundary).toBe(false);
    const oneMessage = grpcMessage(Buffer.concat([header, bytesField(3, Buffer.from('abc'))]));
    expect(parse(oneMessage, [oneMessage.length]).frames.atBoundary).toBe(true);
    expect(parse(oneMessage.subarray(0, oneMessage.length - 1), [7]).frames.atBoundary).toBe(false);
  });

  it('skips ten-byte varints (uint64 values past 2^63)', () => {
    const maxUint64 = Buffer.concat([Buffer.from([2 << 3]), Buffer.alloc(9, 0xff), Buffer.from([0x01])]);
    expect(parse(grpcMessage(Buffer.concat([maxUint64, bytesField(3, Buffer.from('ok'))])), [1]).out.toString()).toBe('ok');
    expect(() => parse(grpcMessage(Buffer.concat([Buffer.from([2 << 3]), Buffer.alloc(10, 0xff), Buffer.from([0x01])])), [100])).toThrow(/too long/);
  });

  it('skips 32- and 64-bit fields and empty messages', () => {
    const fixed = Buffer.concat([Buffer.from([(9 << 3) | 1]), Buffer.alloc(8, 0xff), Buffer.from([(10 << 3) | 5]), Buffer.alloc(4, 0xee)]);
    const msg = Buffer.concat([grpcMessage(Buffer.alloc(0)), grpcMessage(Buffer.concat([fixed, bytesField(3, Buffer.from('xyz'))]))]);
    expect(parse(msg, [2]).out.toString()).toBe('xyz');
  });

  it('refuses compressed messages, unknown wire types and fields that overrun their message', () => {
    expect(() => parse(grpcMessage(bytesField(3, Buffer.from('a')), 1), [100])).toThrow(SnapshotFrameError);
    expect(() => parse(grpcMessage(Buffer.from([(3 << 3) | 3, 0])), [100])).toThrow(/wire type 3/);
    const overrun = Buffer.concat([varint((3 << 3) | 2), varint(10), Buffer.from('short')]);
    expect(() => parse(grpcMessage(overrun), [100])).toThrow(/past the end/);
    expect(() => parse(grpcMessage(Buffer.from([(2 << 3) | 0, 0x80])), [100])).toThrow(/inside a varint/);
  });
});
