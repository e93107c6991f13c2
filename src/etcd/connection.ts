import type { Etcd3, IOptions } from 'etcd3';
import { readFile } from 'node:fs/promises';
import { LifeboatError, NotFoundError, UsageError } from '../cli/errors.js';

/** How to reach etcd: what etcdctl's global flags say. */
export interface EtcdConnection {
  endpoints: string[];
  cacert?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  user?: string | undefined;
  password?: string | undefined;
  /** Accept any server certificate (etcdctl --insecure-skip-tls-verify); explicit only. */
  insecureSkipTlsVerify?: boolean | undefined;
  dialTimeoutMs: number;
}

export interface EtcdFlagValues {
  endpoints?: string | undefined;
  cacert?: string | undefined;
  cert?: string | undefined;
  key?: string | undefined;
  user?: string | undefined;
  password?: string | undefined;
  'dial-timeout'?: string | undefined;
  'insecure-skip-tls-verify'?: boolean | undefined;
}

export const DEFAULT_ENDPOINT = '127.0.0.1:2379';

/**
 * Flags (or LIFEBOAT_*) first, then etcdctl's ETCDCTL_* variables, then etcdctl's defaults.
 * --user takes "name" or "name:password", like etcdctl.
 */
export function etcdConnectionFrom(flags: EtcdFlagValues, env: NodeJS.ProcessEnv = process.env, parseMs: (s: string) => number): EtcdConnection {
  const pick = (flag: string | undefined, name: string) => (flag !== undefined && flag !== '' ? flag : env[`ETCDCTL_${name}`] || undefined);
  const endpoints = (pick(flags.endpoints, 'ENDPOINTS') ?? DEFAULT_ENDPOINT)
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  if (endpoints.length === 0) throw new UsageError('No etcd endpoint given.', { hint: 'Use --endpoints https://10.0.0.1:2379.' });
  let user = pick(flags.user, 'USER');
  let password = pick(flags.password, 'PASSWORD');
  if (user?.includes(':') && password === undefined) {
    const i = user.indexOf(':');
    password = user.slice(i + 1);
    user = user.slice(0, i);
  }
  const conn: EtcdConnection = {
    endpoints: endpoints.map(normaliseEndpoint),
    cacert: pick(flags.cacert, 'CACERT'),
    cert: pick(flags.cert, 'CERT'),
    key: pick(flags.key, 'KEY'),
    user,
    password,
    dialTimeoutMs: parseMs(pick(flags['dial-timeout'], 'DIAL_TIMEOUT') ?? '2s'),
    insecureSkipTlsVerify: flags['insecure-skip-tls-verify'] || env.ETCDCTL_INSECURE_SKIP_TLS_VERIFY === 'true',
  };
  if (Boolean(conn.cert) !== Boolean(conn.key)) {
    throw new UsageError('--cert and --key go together.', { hint: 'Give both the client certificate and its key, or neither.' });
  }
  return conn;
}

/** "10.0.0.1:2379" -> "http://10.0.0.1:2379"; TLS material makes the default scheme https. */
function normaliseEndpoint(e: string): string {
  if (/^(https?|unixs?):\/\//.test(e)) return e;
  if (/^[a-z]+:\/\//i.test(e)) throw new UsageError(`Unsupported etcd endpoint ${JSON.stringify(e)}.`, { hint: 'Use host:port, http://host:port or https://host:port.' });
  return `http://${e}`;
}

function isTls(conn: EtcdConnection, endpoint: string): boolean {
  return endpoint.startsWith('https://') || Boolean(conn.cacert || conn.cert || conn.insecureSkipTlsVerify);
}

async function readPem(path: string, what: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch {
    throw new NotFoundError(`Cannot read ${what} ${path}.`);
  }
}

/** How to reach one endpoint: its URL (https:// whenever TLS is in use) and the TLS material. */
export interface Transport {
  url: string;
  tls?: { ca?: Buffer | undefined; cert?: Buffer | undefined; key?: Buffer | undefined; verifyServer: boolean } | undefined;
}

export async function transportFor(conn: EtcdConnection, endpoint: string): Promise<Transport> {
  if (!isTls(conn, endpoint)) return { url: endpoint };
  return {
    url: endpoint.replace(/^http:\/\//, 'https://'),
    tls: {
      ca: conn.cacert ? await readPem(conn.cacert, 'CA certificate') : undefined,
      cert: conn.cert ? await readPem(conn.cert, 'client certificate') : undefined,
      key: conn.key ? await readPem(conn.key, 'client key') : undefined,
      verifyServer: !conn.insecureSkipTlsVerify,
    },
  };
}

/** A client bound to one endpoint (no silent fail-over mid-operation). */
export async function clientFor(conn: EtcdConnection, endpoint: string): Promise<Etcd3> {
  // etcd3 parses its .proto files as it loads (~0.3 s, ~25 MB): only commands that talk to etcd pay.
  const [{ Etcd3 }, grpc] = await Promise.all([import('etcd3'), import('@grpc/grpc-js')]);
  const { url, tls } = await transportFor(conn, endpoint);
  const opts: IOptions = {
    hosts: [url],
    dialTimeout: conn.dialTimeoutMs,
    // Allow headroom for large range responses (snapshots are received outside etcd3).
    grpcOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
  };
  if (tls) {
    opts.credentials = {
      rootCertificate: tls.ca ?? (undefined as unknown as Buffer),
      ...(tls.cert ? { certChain: tls.cert } : {}),
      ...(tls.key ? { privateKey: tls.key } : {}),
    };
  }
  if (conn.user) opts.auth = { username: conn.user, password: conn.password ?? '' };
  return tls && !tls.verifyServer ? withoutServerVerification(grpc, () => new Etcd3(opts)) : new Etcd3(opts);
}

/**
 * etcd3 builds its channel credentials with grpc's createSsl(root, key, cert) while the client is
 * constructed; for --insecure-skip-tls-verify that one call gets verify options that accept any
 * server certificate.
 */
function withoutServerVerification<T>(grpc: typeof import('@grpc/grpc-js'), make: () => T): T {
  const creds = grpc.credentials as { createSsl: typeof grpc.credentials.createSsl };
  const original = creds.createSsl;
  creds.createSsl = (root, key, cert) => original(root, key, cert, { rejectUnauthorized: false, checkServerIdentity: () => undefined });
  try {
    return make();
  } finally {
    creds.createSsl = original;
  }
}

export interface MemberStatus {
  endpoint: string;
  version: string;
  dbSize: number;
  revision: number;
  memberId: string;
  clusterId: string;
  leader: string;
  raftIndex: string;
}

/**
 * Tries the endpoints in order and returns the first that answers Status, with its client.
 * Fails with one sentence listing why each endpoint failed.
 */
export async function firstHealthy(conn: EtcdConnection, signal?: AbortSignal): Promise<{ client: Etcd3; status: MemberStatus }> {
  const failures: string[] = [];
  for (const endpoint of conn.endpoints) {
    if (signal?.aborted) throw signal.reason;
    const client = await clientFor(conn, endpoint);
    try {
      const s = await abortable(client.maintenance.status({ deadline: new Date(Date.now() + conn.dialTimeoutMs + 3000) }), signal);
      return {
        client,
        status: {
          endpoint,
          version: s.version,
          dbSize: Number(s.dbSize),
          revision: Number(s.header.revision),
          memberId: hexId(s.header.member_id),
          clusterId: hexId(s.header.cluster_id),
          leader: hexId(s.leader),
          raftIndex: s.raftIndex,
        },
      };
    } catch (err) {
      client.close();
      if (signal?.aborted) throw signal.reason;
      failures.push(`${endpoint}: ${describeEtcdError(err)}`);
    }
  }
  throw new LifeboatError(`No etcd endpoint answered: ${failures.join('; ')}.`, {
    hint: 'Check --endpoints, the TLS files (--cacert --cert --key) and that etcd is running.',
  });
}

/** etcd ids are uint64 decimal strings; etcdctl prints them in hex. */
export function hexId(id: string | undefined): string {
  if (!id) return '';
  return BigInt(id).toString(16);
}

export function describeEtcdError(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  if (/permission denied/i.test(msg)) return `permission denied (${msg})`;
  if (/authentication failed|invalid auth token|user name is empty/i.test(msg)) return `authentication failed (${msg})`;
  if (/ECONNREFUSED|No connection established|UNAVAILABLE|deadline|DEADLINE_EXCEEDED/i.test(msg)) return `unreachable (${msg.split('\n')[0]})`;
  return msg.split('\n')[0] ?? msg;
}

/** Rejects with the signal's reason as soon as it fires, whatever the promise is doing. */
export function abortable<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => (signal.removeEventListener('abort', onAbort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', onAbort), reject(e)),
    );
  });
}
