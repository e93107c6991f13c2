import { connect as http2Connect, type ClientHttp2Session, type IncomingHttpHeaders, type SecureClientSessionOptions } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Transport } from './connection.js';

/**
 * etcd's gRPC services over node:http2, for the calls `etcd snapshot` makes (Authenticate,
 * Status, Snapshot): no gRPC library and no .proto parsing to load first.
 */

/** Names of gRPC status codes, for error messages. */
const GRPC_CODES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

/** The error a gRPC status in response headers or trailers stands for (none for OK or no status). */
export function grpcError(headers: IncomingHttpHeaders): Error | undefined {
  const status = headers['grpc-status'];
  if (status === undefined || status === '0') return undefined;
  const raw = String(headers['grpc-message'] ?? '');
  let message = raw;
  try {
    message = decodeURIComponent(raw);
  } catch {
    /* not percent-encoded after all */
  }
  return new Error(`${message || 'no message'} (gRPC ${GRPC_CODES[Number(status)] ?? `status ${String(status)}`})`);
}

/** An HTTP/2 connection to one endpoint, with TLS as the transport says; `windowBytes` sets the receive window. */
export function openSession(transport: Transport, windowBytes?: number): ClientHttp2Session {
  const url = new URL(transport.url);
  const tls = transport.tls;
  const secure: SecureClientSessionOptions = tls
    ? { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: tls.verifyServer, ...(tls.verifyServer ? {} : { checkServerIdentity: () => undefined }) }
    : {};
  const unix = url.protocol === 'unix:' || url.protocol === 'unixs:';
  const session = http2Connect(unix ? 'http://localhost' : url.origin, {
    ...secure,
    settings: { enablePush: false, ...(windowBytes ? { initialWindowSize: windowBytes } : {}) },
    ...(unix ? { createConnection: () => (url.protocol === 'unixs:' ? tlsConnect({ path: url.pathname, ...secure, ALPNProtocols: ['h2'] }) : netConnect(url.pathname)) } : {}),
  });
  if (windowBytes) session.once('connect', () => session.setLocalWindowSize(windowBytes));
  return session;
}

/** Request headers of a gRPC call to `path`, with etcd's auth token as the `token` metadata. */
export function grpcHeaders(path: string, token?: string): Record<string, string> {
  return { ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...(token ? { token } : {}) };
}

/** One uncompressed gRPC message: flag 0, big-endian length, body. */
export function grpcFrame(body: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

/**
 * A unary call on an open session: sends `request` (a serialized protobuf) and resolves with the
 * serialized response, or rejects with the call's gRPC status, a connection error, or after
 * `timeoutMs` (reported as DEADLINE_EXCEEDED).
 */
export function unaryCall(session: ClientHttp2Session, path: string, request: Buffer, opts: { token?: string | undefined; timeoutMs: number }): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const call = session.request({ ...grpcHeaders(path, opts.token), 'grpc-timeout': `${Math.max(1, Math.ceil(opts.timeoutMs))}m` });
    const chunks: Buffer[] = [];
    let failure: Error | undefined;
    let trailers: IncomingHttpHeaders | undefined;
    const timer = setTimeout(() => {
      failure ??= new Error(`no answer to ${path} within ${(opts.timeoutMs / 1000).toFixed(1)}s (DEADLINE_EXCEEDED)`);
      call.close();
    }, opts.timeoutMs);
    const onSessionError = (err: Error) => {
      failure ??= err;
      call.close();
    };
    session.once('error', onSessionError);
    call.on('response', (headers) => {
      if (headers[':status'] !== 200) failure ??= new Error(`HTTP status ${String(headers[':status'])} for ${path}`);
      else failure ??= grpcError(headers);
    });
    call.on('trailers', (headers) => (trailers = headers));
    call.on('data', (c: Buffer) => chunks.push(c));
    call.on('error', (err) => (failure ??= err));
    call.on('close', () => {
      clearTimeout(timer);
      session.off('error', onSessionError);
      if (!failure && trailers) failure = grpcError(trailers);
      if (!failure && !trailers) failure = new Error(`${path} ended without a gRPC status (HTTP/2 error ${call.rstCode ?? 0})`);
      if (failure) return reject(failure);
      const body = Buffer.concat(chunks);
      if (body.length < 5 || body[0] !== 0 || body.readUInt32BE(1) !== body.length - 5) return reject(new Error(`${path} answered with a malformed gRPC message`));
      resolve(body.subarray(5));
    });
    call.end(grpcFrame(request));
  });
}
