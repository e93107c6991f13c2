import { createServer, type Http2Server, type ServerHttp2Stream } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { firstAnswering } from '../../src/etcd/h2-member.js';
import { grpcFrame, openSession, unaryCall } from '../../src/etcd/h2.js';
import { bytes, decodeFields, encodeStrings, ProtoError, uint } from '../../src/etcd/proto.js';

function varint(n: bigint): Buffer {
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return Buffer.from(out);
}
const vField = (field: number, v: bigint) => Buffer.concat([varint(BigInt(field * 8)), varint(v)]);
const bField = (field: number, data: Buffer | string) => {
  const b = Buffer.from(data);
  return Buffer.concat([varint(BigInt(field * 8 + 2)), varint(BigInt(b.length)), b]);
};

/** A StatusResponse as etcd sends it; ids past 2^63 as etcd's random member ids are. */
const header = bField(1, Buffer.concat([vField(1, 0xcdf818194e3a8c32n), vField(2, 0x8e9e05c52164694dn), vField(3, 123456n), vField(4, 7n)]));
const statusResponse = Buffer.concat([header, bField(2, '3.5.35'), vField(3, 1_157_509_120n), vField(4, 0x8e9e05c52164694dn), vField(5, 4242n), vField(6, 7n), vField(9, 1_000_000n)]);

describe('protobuf fields', () => {
  it('decodes uint64 varints exactly, strings and nested messages', () => {
    const res = decodeFields(statusResponse);
    const h = decodeFields(bytes(res, 1));
    expect(uint(h, 1).toString(16)).toBe('cdf818194e3a8c32');
    expect(uint(h, 2).toString(16)).toBe('8e9e05c52164694d');
    expect(uint(h, 3)).toBe(123456n);
    expect(bytes(res, 2).toString()).toBe('3.5.35');
    expect(uint(res, 3)).toBe(1_157_509_120n);
    expect(uint(res, 99)).toBe(0n);
    expect(bytes(res, 99).length).toBe(0);
  });

  it('encodes string fields and leaves empty ones out', () => {
    const msg = encodeStrings([[1, 'root'], [2, ''], [3, 'x'.repeat(200)]]);
    const f = decodeFields(msg);
    expect(bytes(f, 1).toString()).toBe('root');
    expect(f.has(2)).toBe(false);
    expect(bytes(f, 3).toString()).toBe('x'.repeat(200));
  });

  it('skips fixed-width fields and refuses truncated or malformed messages', () => {
    const fixed = Buffer.concat([Buffer.from([(7 << 3) | 1]), Buffer.alloc(8, 1), Buffer.from([(8 << 3) | 5]), Buffer.alloc(4, 2), bField(2, 'v')]);
    expect(bytes(decodeFields(fixed), 2).toString()).toBe('v');
    expect(() => decodeFields(bField(2, 'abc').subarray(0, 3))).toThrow(ProtoError);
    expect(() => decodeFields(Buffer.from([0x08, 0x80]))).toThrow(/inside a varint/);
    expect(() => decodeFields(Buffer.from([(1 << 3) | 3]))).toThrow(/wire type 3/);
    expect(() => decodeFields(Buffer.concat([Buffer.from([0x08]), Buffer.alloc(10, 0xff), Buffer.from([1])]))).toThrow(/too long/);
  });
});

let server: Http2Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** A stand-in for etcd's gRPC endpoint: `answer` handles each call with its path, headers and request body. */
async function serve(answer: (stream: ServerHttp2Stream, path: string, headers: Record<string, unknown>, body: Buffer) => void): Promise<string> {
  server = createServer();
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('error', () => undefined);
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => answer(stream, String(headers[':path']), { ...headers }, Buffer.concat(chunks)));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function reply(stream: ServerHttp2Stream, body: Buffer, status = '0', message?: string): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': status, ...(message ? { 'grpc-message': message } : {}) }));
  stream.end(status === '0' ? grpcFrame(body) : undefined);
}

describe('gRPC calls over node:http2', () => {
  it('authenticates, then asks Status with the token, and reads the member status', async () => {
    const seen: { path: string; token: unknown; body: Buffer }[] = [];
    const url = await serve((stream, path, headers, body) => {
      seen.push({ path, token: headers.token, body });
      if (path === '/etcdserverpb.Auth/Authenticate') reply(stream, Buffer.concat([header, bField(2, 'tok.42')]));
      else reply(stream, statusResponse);
    });
    const m = await firstAnswering({ endpoints: [url], user: 'root', password: 's3cret', dialTimeoutMs: 1000 });
    expect(m.token).toBe('tok.42');
    expect(m.transport.url).toBe(url);
    expect(m.status).toEqual({
      endpoint: url,
      version: '3.5.35',
      dbSize: 1_157_509_120,
      revision: 123456,
      memberId: '8e9e05c52164694d',
      clusterId: 'cdf818194e3a8c32',
      leader: '8e9e05c52164694d',
      raftIndex: '4242',
    });
    expect(seen.map((s) => s.path)).toEqual(['/etcdserverpb.Auth/Authenticate', '/etcdserverpb.Maintenance/Status']);
    const auth = decodeFields(seen[0]!.body.subarray(5));
    expect([bytes(auth, 1).toString(), bytes(auth, 2).toString()]).toEqual(['root', 's3cret']);
    expect(seen[1]!.token).toBe('tok.42');
    expect(seen[1]!.body.equals(grpcFrame(Buffer.alloc(0)))).toBe(true);
  });

  it('a user given to an etcd without auth gets no token and no error', async () => {
    const url = await serve((stream, path) => {
      if (path === '/etcdserverpb.Auth/Authenticate') reply(stream, Buffer.alloc(0), '9', 'etcdserver:%20authentication%20is%20not%20enabled');
      else reply(stream, statusResponse);
    });
    const m = await firstAnswering({ endpoints: [url], user: 'root', password: 'x', dialTimeoutMs: 1000 });
    expect(m.token).toBeUndefined();
    expect(m.status.version).toBe('3.5.35');
  });

  it('skips endpoints that refuse or fail, and names why each failed when none answers', async () => {
    const url = await serve((stream, path) => {
      if (path === '/etcdserverpb.Auth/Authenticate') reply(stream, Buffer.alloc(0), '3', 'etcdserver:%20authentication%20failed,%20invalid%20user%20ID%20or%20password');
      else reply(stream, statusResponse);
    });
    const refused = 'http://127.0.0.1:1';
    const ok = await firstAnswering({ endpoints: [refused, url], dialTimeoutMs: 1000 });
    expect(ok.status.endpoint).toBe(url);
    await expect(firstAnswering({ endpoints: [refused, url], user: 'root', password: 'nope', dialTimeoutMs: 1000 })).rejects.toThrow(
      /^No etcd endpoint answered: http:\/\/127\.0\.0\.1:1: unreachable \(.*ECONNREFUSED.*\); http:\/\/127\.0\.0\.1:\d+: authentication failed \(etcdserver: authentication failed, invalid user ID or password \(gRPC INVALID_ARGUMENT\)\)\.$/,
    );
  });

  it('a member that does not answer times out as unreachable; an abort ends the wait at once', async () => {
    const url = await serve(() => undefined);
    const started = Date.now();
    await expect(firstAnswering({ endpoints: [url], dialTimeoutMs: 0 })).rejects.toThrow(/unreachable \(no answer to \/etcdserverpb\.Maintenance\/Status within 3\.0s \(DEADLINE_EXCEEDED\)\)/);
    expect(Date.now() - started).toBeLessThan(6000);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('interrupted')), 200);
    await expect(firstAnswering({ endpoints: [url], dialTimeoutMs: 20_000 }, ac.signal)).rejects.toThrow('interrupted');
  });

  it('a response without a gRPC status, or with a malformed message, is an error', async () => {
    const url = await serve((stream, path) => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
      stream.end(path.endsWith('Status') ? Buffer.from([0, 0, 0, 0, 9, 1]) : undefined);
    });
    const session = openSession({ url });
    session.on('error', () => undefined);
    try {
      await expect(unaryCall(session, '/etcdserverpb.Maintenance/Status', Buffer.alloc(0), { timeoutMs: 2000 })).rejects.toThrow(/without a gRPC status/);
    } finally {
      session.destroy();
    }
  });
});
