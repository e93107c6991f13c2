/**
 * Self-test of the fault-injection proxy used by test/integration/store-faults.test.ts, against a
 * plain node:http server (no MinIO needed).
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SLOWDOWN_BODY, startFaultProxy, type FaultProxy } from '../integration/fault-proxy.js';

const BIG = randomBytes(1024 * 1024 + 17);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Seen {
  method: string;
  url: string;
  bodyBytes: number;
  complete: boolean;
  connection: number;
}

let server: http.Server;
let target: string;
let seen: Seen[] = [];
let connections = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const rec: Seen = { method: req.method ?? '', url: req.url ?? '', bodyBytes: 0, complete: false, connection: (req.socket as unknown as { n: number }).n };
    seen.push(rec);
    req.on('data', (c: Buffer) => (rec.bodyBytes += c.length));
    req.on('error', () => undefined);
    req.on('end', () => {
      rec.complete = true;
      if (req.url?.startsWith('/big')) {
        res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': BIG.length });
        res.end(req.method === 'HEAD' ? undefined : BIG);
        return;
      }
      const body = JSON.stringify({ method: req.method, url: req.url, bodyBytes: rec.bodyBytes });
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
  });
  server.on('connection', (s) => {
    (s as unknown as { n: number }).n = ++connections;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  target = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let proxy: FaultProxy;
let agent: http.Agent;
beforeEach(async () => {
  seen = [];
  proxy = await startFaultProxy({ target });
  agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
});
afterEach(async () => {
  agent.destroy();
  await proxy.close();
});

interface Result {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  continued: boolean;
}

function request(
  method: string,
  path: string,
  opts: { body?: Buffer; headers?: Record<string, string>; timeoutMs?: number; sendBodyImmediately?: boolean } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, proxy.url);
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body) headers['Content-Length'] = opts.body.length;
    const req = http.request({ host: url.hostname, port: url.port, path: url.pathname + url.search, method, headers, agent });
    let continued = false;
    req.on('continue', () => {
      continued = true;
      if (opts.body && !opts.sendBodyImmediately) req.end(opts.body);
    });
    if (opts.timeoutMs) req.setTimeout(opts.timeoutMs, () => req.destroy(Object.assign(new Error('idle timeout'), { code: 'TIMEOUT' })));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err) => reject(Object.assign(err, { received: Buffer.concat(chunks).length })));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), continued }));
    });
    const expectContinue = (opts.headers?.['Expect'] ?? '').toLowerCase() === '100-continue';
    if (!opts.body) req.end();
    else if (!expectContinue || opts.sendBodyImmediately) req.end(opts.body);
    else req.flushHeaders();
  });
}

async function settle(): Promise<void> {
  await new Promise((r) => setTimeout(r, 50));
}

describe('fault proxy', () => {
  it('forwards requests transparently, one request per connection', async () => {
    const body = randomBytes(300_000);
    const a = await request('GET', '/hello?x=1');
    const b = await request('PUT', '/upload?partNumber=1&uploadId=u', { body });
    const c = await request('GET', '/big');
    const d = await request('HEAD', '/big');
    expect(a.status).toBe(200);
    expect(JSON.parse(a.body.toString())).toEqual({ method: 'GET', url: '/hello?x=1', bodyBytes: 0 });
    expect(JSON.parse(b.body.toString())).toEqual({ method: 'PUT', url: '/upload?partNumber=1&uploadId=u', bodyBytes: body.length });
    expect(sha(c.body)).toBe(sha(BIG));
    expect(d.status).toBe(200);
    expect(d.body.length).toBe(0);
    for (const r of [a, b, c, d]) expect(r.headers.connection).toBe('close');
    expect(new Set(seen.map((s) => s.connection)).size).toBe(4);
    expect(proxy.stats.requests).toBe(4);
    expect(proxy.stats.log.map((r) => [r.method, r.path, r.query.get('partNumber')])).toEqual([
      ['GET', '/hello', null],
      ['PUT', '/upload', '1'],
      ['GET', '/big', null],
      ['HEAD', '/big', null],
    ]);
    expect(Object.values(proxy.stats.faults).every((n) => n === 0)).toBe(true);
  });

  it('reset: the client sees ECONNRESET, the server nothing, and only matching requests are hit', async () => {
    proxy.plan([{ match: (r) => r.path === '/a', fault: 'reset', count: 2 }]);
    await expect(request('GET', '/a')).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect((await request('GET', '/b')).status).toBe(200);
    await expect(request('GET', '/a')).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect((await request('GET', '/a')).status).toBe(200);
    expect(seen.map((s) => s.url)).toEqual(['/b', '/a']);
    expect(proxy.stats.faults.reset).toBe(2);
    expect(proxy.pending()).toBe(0);
    expect(proxy.requests((r) => r.fault === 'reset').map((r) => r.seq)).toEqual([1, 3]);
  });

  it('slowdown: 503 SlowDown after draining the body, or at once with Expect: 100-continue', async () => {
    proxy.plan([{ fault: 'slowdown', count: 3 }]);
    const body = randomBytes(2 * 1024 * 1024);
    const a = await request('PUT', '/x', { body });
    expect(a.status).toBe(503);
    expect(a.headers['content-type']).toBe('application/xml');
    expect(a.headers.connection).toBe('close');
    expect(a.body.toString()).toBe(SLOWDOWN_BODY);
    const b = await request('PUT', '/x', { body, headers: { Expect: '100-continue' } });
    expect(b.status).toBe(503);
    expect(b.continued).toBe(false);
    // A client that sends the body anyway still gets the 503 (not a reset).
    const c = await request('PUT', '/x', { body, headers: { Expect: '100-continue' }, sendBodyImmediately: true });
    expect(c.status).toBe(503);
    expect(seen).toEqual([]);
    expect(proxy.stats.faults.slowdown).toBe(3);
    expect((await request('HEAD', '/big')).status).toBe(200);
  });

  it('stall: the server handles the request, the client hears nothing until its idle timeout', async () => {
    proxy.plan([{ fault: 'stall' }]);
    const t0 = Date.now();
    await expect(request('PUT', '/s', { body: randomBytes(1000), timeoutMs: 300 })).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(280);
    await settle();
    expect(seen).toMatchObject([{ method: 'PUT', url: '/s', bodyBytes: 1000, complete: true }]);
    expect(proxy.stats.faults.stall).toBe(1);
  });

  it('delay: the server handles the request at once, the client gets the whole response delayMs later', async () => {
    proxy.plan([{ fault: 'delay', delayMs: 400 }]);
    const t0 = Date.now();
    const pending = request('GET', '/big');
    await new Promise((r) => setTimeout(r, 200));
    expect(seen).toMatchObject([{ method: 'GET', url: '/big', complete: true }]);
    const res = await pending;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(380);
    expect(res.status).toBe(200);
    expect(sha(res.body)).toBe(sha(BIG));
    expect(proxy.stats.faults.delay).toBe(1);
  });

  it('reset-mid-body: the server sees a truncated body, the client a reset', async () => {
    proxy.plan([{ fault: 'reset-mid-body', afterBytes: 100_000 }]);
    await expect(request('PUT', '/m', { body: randomBytes(1_000_000) })).rejects.toMatchObject({
      code: expect.stringMatching(/^(ECONNRESET|EPIPE)$/) as unknown as string,
    });
    await settle();
    expect(seen).toHaveLength(1);
    expect(seen[0]?.complete).toBe(false);
    expect(seen[0]?.bodyBytes).toBe(100_000);
  });

  it('reset-mid-response: passes afterBytes of the body then resets; afterBytes 0 loses the whole response', async () => {
    proxy.plan([{ fault: 'reset-mid-response', afterBytes: 200 * 1024 }]);
    const err = (await request('GET', '/big').then(
      () => undefined,
      (e: unknown) => e,
    )) as { code?: string; received?: number } | undefined;
    expect(err?.code).toBe('ECONNRESET');
    expect(err?.received).toBe(200 * 1024);

    proxy.plan([{ fault: 'reset-mid-response', afterBytes: 0 }]);
    await expect(request('POST', '/complete?uploadId=1')).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(seen.map((s) => [s.url, s.complete])).toEqual([
      ['/big', true],
      ['/complete?uploadId=1', true],
    ]);
    expect(proxy.stats.faults['reset-mid-response']).toBe(2);
  });
});
