import { createServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { SnapshotStream } from '../../src/snapshot/etcd/snapshot-stream.js';
import { patternBytes, readAll } from '../helpers/streams.js';

/** One SnapshotResponse message carrying `blob`, gRPC-framed. */
function message(blob: Buffer): Buffer {
  const len: number[] = [];
  for (let n = blob.length; ; n = Math.floor(n / 128)) {
    if (n < 128) {
      len.push(n);
      break;
    }
    len.push((n % 128) | 0x80);
  }
  const body = Buffer.concat([Buffer.from([0x1a, ...len]), blob]);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

let server: Http2Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** A stand-in for etcd's Maintenance service: `handle` answers each call; requests are recorded. */
async function serve(handle: (stream: ServerHttp2Stream) => void): Promise<{ url: string; requests: Record<string, unknown>[] }> {
  const requests: Record<string, unknown>[] = [];
  server = createServer();
  server.on('stream', (stream, headers) => {
    requests.push({ ...headers });
    stream.on('error', () => undefined); // the reset case closes the server side with an error code
    stream.resume();
    stream.once('end', () => handle(stream));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

const open = (url: string, token?: string) => new SnapshotStream({ url }, { token, windowBytes: 1 << 20, stallTimeoutMs: 0, what: 'etcd (test)' });

describe('SnapshotStream', () => {
  it('calls Maintenance.Snapshot with the auth token and yields the blob bytes', async () => {
    const snap = patternBytes(300_000, 5);
    const { url, requests } = await serve((s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      for (let off = 0; off < snap.length; off += 32 * 1024) s.write(message(snap.subarray(off, off + 32 * 1024)));
      s.end();
    });
    expect((await readAll(open(url, 'tok-123'))).equals(snap)).toBe(true);
    expect(requests[0]).toMatchObject({ ':method': 'POST', ':path': '/etcdserverpb.Maintenance/Snapshot', 'content-type': 'application/grpc', token: 'tok-123' });
  });

  it('fails with the gRPC status and message of an error after some data', async () => {
    const { url } = await serve((s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '14', 'grpc-message': 'etcdserver:%20leader%20changed' }));
      s.end(message(Buffer.from('partial')));
    });
    await expect(readAll(open(url))).rejects.toThrow('etcdserver: leader changed (gRPC UNAVAILABLE)');
  });

  it('fails on an error answered before any data (trailers only)', async () => {
    const { url } = await serve((s) => s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'invalid auth token' }, { endStream: true }));
    await expect(readAll(open(url))).rejects.toThrow('invalid auth token (gRPC UNAUTHENTICATED)');
  });

  it('fails when the body ends without a status, inside a message, or with a reset', async () => {
    const whole = message(patternBytes(1000, 6));
    const noStatus = await serve((s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.end(whole);
    });
    await expect(readAll(open(noStatus.url))).rejects.toThrow(/without a gRPC status/);
    await new Promise<void>((r) => server!.close(() => r()));

    const cut = await serve((s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      s.on('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.end(whole.subarray(0, 600));
    });
    await expect(readAll(open(cut.url))).rejects.toThrow(/inside a message/);
    await new Promise<void>((r) => server!.close(() => r()));

    const reset = await serve((s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.write(whole, () => s.close(2));
    });
    await expect(readAll(open(reset.url))).rejects.toThrow(/NGHTTP2_INTERNAL_ERROR|reset the snapshot stream|without a gRPC status/);
  });

  it('a stream that stops sending fails after the stall timeout', async () => {
    const { url } = await serve((s) => {
      s.respond({ ':status': 200, 'content-type': 'application/grpc' });
      s.write(message(Buffer.from('first')));
    });
    const stream = new SnapshotStream({ url }, { windowBytes: 1 << 20, stallTimeoutMs: 1000, what: 'etcd (test)' });
    await expect(readAll(stream)).rejects.toThrow('etcd (test) sent no data for 1s; giving up.');
  });
});
