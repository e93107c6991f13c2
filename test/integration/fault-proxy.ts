/**
 * A small HTTP-aware TCP proxy (node:net only) for fault-injection tests against a real
 * S3-compatible server. It listens on 127.0.0.1:0, forwards to `target`, and injects planned
 * faults into the requests they match.
 *
 * Every TCP connection carries exactly one request: the proxy forwards each request with
 * `Connection: close` and makes sure the response says so too, so a keep-alive client opens a
 * new connection per request and a fault never touches an unrelated request. The Host header is
 * forwarded unchanged, so SigV4 signatures (made for the proxy's host:port) stay valid.
 *
 * Faults, consumed one per matching request, first matching plan entry first:
 *  - reset: the client's socket is reset (RST) right after the request headers arrive; nothing
 *    reaches the server.
 *  - slowdown: answers 503 with an S3 `SlowDown` XML error and `Connection: close`; nothing
 *    reaches the server. A Content-Length body is read and discarded first; with
 *    `Expect: 100-continue` the 503 goes out at once (the body, if the client sends it anyway, is
 *    still drained before the connection is closed).
 *  - stall: the request is forwarded (the server handles it), the response is swallowed and the
 *    client's socket is held open, so the client's idle timeout has to fire.
 *  - reset-mid-body: the request headers and the first `afterBytes` bytes of the body are
 *    forwarded, then both sides are reset (the server sees a truncated request).
 *  - reset-mid-response: the request is forwarded, the response head and the first `afterBytes`
 *    bytes of the response body are passed on, then the client's connection is closed mid-body
 *    (the client sees a premature end; Node reports `aborted`, code ECONNRESET). With
 *    `afterBytes: 0` the client gets nothing: the proxy waits until the server has sent the whole
 *    response (so the request has certainly been processed), then resets the client ("response
 *    lost").
 *  - delay: the request is forwarded (the server handles it at once); the response reaches the
 *    client whole, `delayMs` later.
 */
import net from 'node:net';

export type FaultKind = 'reset' | 'slowdown' | 'stall' | 'reset-mid-body' | 'reset-mid-response' | 'delay';

export const FAULT_KINDS: readonly FaultKind[] = ['reset', 'slowdown', 'stall', 'reset-mid-body', 'reset-mid-response', 'delay'];

/** What a fault's `match` sees of a request. */
export interface ProxiedRequest {
  method: string;
  /** Raw (percent-encoded) path, e.g. "/bucket/some/key". */
  path: string;
  query: URLSearchParams;
  /** Header names lower-cased; repeated headers joined with ", ". */
  headers: Record<string, string>;
}

export interface FaultSpec {
  /** Which requests the fault applies to; every request when absent. */
  match?: (req: ProxiedRequest) => boolean;
  fault: FaultKind;
  /** How many matching requests get the fault (default 1; Infinity for all of them). */
  count?: number;
  /** reset-mid-body: request body bytes forwarded; reset-mid-response: response body bytes passed (default 64 KiB). */
  afterBytes?: number;
  /** delay: how long the response is held back (default 500 ms). */
  delayMs?: number;
}

export interface RequestRecord extends ProxiedRequest {
  /** 1-based arrival order. */
  seq: number;
  fault?: FaultKind;
}

export interface ProxyStats {
  /** Requests seen (faulted or not). */
  requests: number;
  /** Faults injected, per kind. */
  faults: Record<FaultKind, number>;
  /** Every request seen, in arrival order. */
  log: RequestRecord[];
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** Live counters; see also requests(). */
  readonly stats: ProxyStats;
  /** Appends faults to the plan. */
  plan(faults: FaultSpec[]): void;
  /** Faults planned but not injected yet (Infinity when an unbounded entry is left). */
  pending(): number;
  /** Drops every fault not injected yet. */
  clearPlan(): void;
  /** Requests seen, optionally filtered. */
  requests(match?: (req: RequestRecord) => boolean): RequestRecord[];
  close(): Promise<void>;
}

export const SLOWDOWN_BODY =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

const MAX_HEAD = 64 * 1024;
const CRLFCRLF = Buffer.from('\r\n\r\n');
const DEFAULT_AFTER_BYTES = 64 * 1024;

interface Head {
  /** Request line or status line. */
  first: string;
  /** Raw header lines [name, value], in order. */
  fields: [string, string][];
}

function parseHead(buf: Buffer): Head {
  const lines = buf.toString('latin1').split('\r\n');
  const first = lines.shift() ?? '';
  const fields: [string, string][] = [];
  for (const line of lines) {
    if (line === '') continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return { first, fields };
}

function headerMap(fields: [string, string][]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of fields) {
    const k = name.toLowerCase();
    out[k] = out[k] === undefined ? value : `${out[k]}, ${value}`;
  }
  return out;
}

/** The head with hop-by-hop connection headers replaced by `Connection: close`. */
function serializeClose(head: Head): Buffer {
  const keep = head.fields.filter(([n]) => !['connection', 'keep-alive', 'proxy-connection'].includes(n.toLowerCase()));
  const lines = [head.first, ...keep.map(([n, v]) => `${n}: ${v}`), 'Connection: close', '', ''];
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

function hardReset(sock: net.Socket): void {
  if (sock.destroyed) return;
  try {
    sock.resetAndDestroy();
  } catch {
    sock.destroy();
  }
}

export async function startFaultProxy(opts: { target: string }): Promise<FaultProxy> {
  const target = new URL(opts.target);
  if (target.protocol !== 'http:') throw new Error(`fault proxy: only http targets are supported, got ${opts.target}`);
  const targetHost = target.hostname;
  const targetPort = Number(target.port || 80);

  const plan: { spec: FaultSpec; left: number }[] = [];
  const stats: ProxyStats = {
    requests: 0,
    faults: Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>,
    log: [],
  };
  const sockets = new Set<net.Socket>();
  const track = (s: net.Socket): net.Socket => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    return s;
  };

  const takeFault = (req: ProxiedRequest): FaultSpec | undefined => {
    for (const entry of plan) {
      if (entry.left <= 0) continue;
      if (entry.spec.match && !entry.spec.match(req)) continue;
      entry.left--;
      return entry.spec;
    }
    return undefined;
  };

  const handle = (client: net.Socket): void => {
    track(client);
    client.on('error', () => undefined);
    let headBuf: Buffer = Buffer.alloc(0);
    let onBody: ((chunk: Buffer) => void) | undefined;

    const onData = (chunk: Buffer): void => {
      if (onBody) {
        onBody(chunk);
        return;
      }
      headBuf = headBuf.length ? Buffer.concat([headBuf, chunk]) : chunk;
      const end = headBuf.indexOf(CRLFCRLF);
      if (end < 0) {
        if (headBuf.length > MAX_HEAD) hardReset(client);
        return;
      }
      const head = parseHead(headBuf.subarray(0, end));
      const rest = headBuf.subarray(end + CRLFCRLF.length);
      headBuf = Buffer.alloc(0);
      onBody = startRequest(client, head);
      if (rest.length) onBody(rest);
    };
    client.on('data', onData);
  };

  /** Decides what to do with one request; returns the handler for its body bytes. */
  const startRequest = (client: net.Socket, head: Head): ((chunk: Buffer) => void) => {
    const [method = '', rawTarget = '/'] = head.first.split(' ');
    const url = new URL(rawTarget, 'http://proxy.invalid');
    const headers = headerMap(head.fields);
    const req: ProxiedRequest = { method: method.toUpperCase(), path: url.pathname, query: url.searchParams, headers };
    const spec = takeFault(req);
    stats.requests++;
    const record: RequestRecord = { ...req, seq: stats.requests, ...(spec ? { fault: spec.fault } : {}) };
    stats.log.push(record);
    if (spec) stats.faults[spec.fault]++;
    const contentLength = headers['content-length'] !== undefined ? Number(headers['content-length']) : undefined;
    const chunked = /\bchunked\b/i.test(headers['transfer-encoding'] ?? '');
    const bodyLength = contentLength ?? (chunked ? undefined : 0);

    switch (spec?.fault) {
      case 'reset':
        hardReset(client);
        return () => undefined;
      case 'slowdown':
        return slowDown(client, req, headers, bodyLength);
      case 'reset-mid-body':
        return forward(client, head, { midBody: spec.afterBytes ?? DEFAULT_AFTER_BYTES });
      case 'stall':
        return forward(client, head, { stall: true });
      case 'reset-mid-response':
        return forward(client, head, { midResponse: spec.afterBytes ?? DEFAULT_AFTER_BYTES });
      case 'delay':
        return forward(client, head, { delayMs: spec.delayMs ?? 500 });
      default:
        return forward(client, head, {});
    }
  };

  const slowDown = (
    client: net.Socket,
    req: ProxiedRequest,
    headers: Record<string, string>,
    bodyLength: number | undefined,
  ): ((chunk: Buffer) => void) => {
    const body = req.method === 'HEAD' ? '' : SLOWDOWN_BODY;
    const response = Buffer.from(
      [
        'HTTP/1.1 503 Slow Down',
        'Content-Type: application/xml',
        `Content-Length: ${Buffer.byteLength(SLOWDOWN_BODY)}`,
        'Connection: close',
        '',
        body,
      ].join('\r\n'),
      'latin1',
    );
    let answered = false;
    const answer = (): void => {
      if (answered || client.destroyed) return;
      answered = true;
      client.write(response);
    };
    let received = 0;
    const drained = (): void => {
      answer();
      if (!client.destroyed) client.end();
    };
    const expectContinue = (headers['expect'] ?? '').toLowerCase() === '100-continue';
    if (expectContinue || bodyLength === undefined) answer();
    if (bodyLength === undefined) {
      // Unknown length (chunked): answered already; close once the client stops sending.
      const timer = setTimeout(() => drained(), 2_000);
      client.once('end', () => {
        clearTimeout(timer);
        drained();
      });
      client.once('close', () => clearTimeout(timer));
      return () => undefined;
    }
    if (bodyLength === 0) drained();
    return (chunk) => {
      received += chunk.length;
      if (received >= bodyLength) drained();
    };
  };

  const forward = (
    client: net.Socket,
    head: Head,
    mode: { stall?: boolean; midBody?: number; midResponse?: number; delayMs?: number },
  ): ((chunk: Buffer) => void) => {
    // delay: every response event is handled delayMs late, in order.
    const later = (fn: () => void): void => {
      if (mode.delayMs) setTimeout(fn, mode.delayMs);
      else fn();
    };
    const upstream = track(net.connect({ host: targetHost, port: targetPort }));
    upstream.on('error', () => hardReset(client));
    client.once('close', () => upstream.destroy());
    upstream.write(serializeClose(head));

    // Response direction: parse heads (1xx ones are passed through), then pass body bytes.
    let respHead: Buffer = Buffer.alloc(0);
    let inBody = false;
    let bodySent = 0;
    let cut = false;
    const toClient = (chunk: Buffer): void => {
      if (client.destroyed || chunk.length === 0) return;
      if (!client.write(chunk)) {
        upstream.pause();
        client.once('drain', () => upstream.resume());
      }
    };
    const passBody = (chunk: Buffer): void => {
      if (cut) return;
      if (mode.stall) return;
      if (mode.midResponse !== undefined && mode.midResponse > 0) {
        const room = mode.midResponse - bodySent;
        if (chunk.length >= room) {
          toClient(chunk.subarray(0, room));
          bodySent += room;
          cut = true;
          // Close after the bytes written so far (FIN, not RST: an RST would make the client's
          // kernel drop data it has not read yet, so the cut would land at a random offset).
          // The client sees the connection end mid-body: Node reports `aborted` (ECONNRESET).
          client.end(() => client.destroy());
          upstream.destroy();
          return;
        }
      }
      if (mode.midResponse === 0) return; // swallowed; reset once the server is done
      bodySent += chunk.length;
      toClient(chunk);
    };
    upstream.on('data', (chunk: Buffer) => later(() => onResponseData(chunk)));
    const onResponseData = (chunk: Buffer): void => {
      if (inBody) {
        passBody(chunk);
        return;
      }
      respHead = respHead.length ? Buffer.concat([respHead, chunk]) : chunk;
      for (;;) {
        const end = respHead.indexOf(CRLFCRLF);
        if (end < 0) {
          if (respHead.length > MAX_HEAD) {
            hardReset(client);
            upstream.destroy();
          }
          return;
        }
        const parsed = parseHead(respHead.subarray(0, end));
        const rest = respHead.subarray(end + CRLFCRLF.length);
        const status = Number(parsed.first.split(' ')[1]);
        if (status >= 100 && status < 200) {
          // Interim response (100 Continue): pass it on as is, then look for the final head.
          if (!mode.stall && mode.midResponse !== 0) toClient(respHead.subarray(0, end + CRLFCRLF.length));
          respHead = rest;
          continue;
        }
        inBody = true;
        respHead = Buffer.alloc(0);
        if (!mode.stall && mode.midResponse !== 0) toClient(serializeClose(parsed));
        passBody(rest);
        return;
      }
    };
    upstream.on('end', () => later(onResponseEnd));
    const onResponseEnd = (): void => {
      if (mode.stall) return; // hold the client until it gives up
      if (mode.midResponse === 0) {
        hardReset(client);
        return;
      }
      if (!cut && !client.destroyed) client.end();
    };

    // Request direction.
    let sent = 0;
    return (chunk) => {
      if (upstream.destroyed) return;
      if (mode.midBody !== undefined) {
        const room = mode.midBody - sent;
        if (chunk.length >= room) {
          upstream.write(chunk.subarray(0, room), () => upstream.destroy());
          sent += room;
          hardReset(client);
          return;
        }
      }
      sent += chunk.length;
      if (!upstream.write(chunk)) {
        client.pause();
        upstream.once('drain', () => client.resume());
      }
    };
  };

  const server = net.createServer({ allowHalfOpen: true }, handle);
  server.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fault proxy: no TCP address');
  const port = address.port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    stats,
    plan(faults) {
      for (const spec of faults) plan.push({ spec, left: spec.count ?? 1 });
    },
    pending() {
      return plan.reduce((n, e) => n + e.left, 0);
    },
    clearPlan() {
      plan.length = 0;
    },
    requests(match) {
      return match ? stats.log.filter(match) : [...stats.log];
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** Matchers for S3 operations (path-style requests). */
export const s3 = {
  createMultipartUpload: (r: ProxiedRequest): boolean => r.method === 'POST' && r.query.has('uploads'),
  uploadPart: (r: ProxiedRequest): boolean => r.method === 'PUT' && r.query.has('uploadId') && r.query.has('partNumber'),
  completeMultipartUpload: (r: ProxiedRequest): boolean => r.method === 'POST' && r.query.has('uploadId'),
  abortMultipartUpload: (r: ProxiedRequest): boolean => r.method === 'DELETE' && r.query.has('uploadId'),
  putObject: (r: ProxiedRequest): boolean => r.method === 'PUT' && !r.query.has('uploadId'),
  getObject: (r: ProxiedRequest): boolean => r.method === 'GET' && !r.query.has('list-type') && !r.query.has('uploads'),
  headObject: (r: ProxiedRequest): boolean => r.method === 'HEAD',
  listObjects: (r: ProxiedRequest): boolean => r.method === 'GET' && r.query.has('list-type'),
  deleteObject: (r: ProxiedRequest): boolean => r.method === 'DELETE' && !r.query.has('uploadId'),
  partNumber: (r: ProxiedRequest): number => Number(r.query.get('partNumber') ?? NaN),
};
