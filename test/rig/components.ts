/**
 * Test-rig components: start and stop real etcd (3.4 and 3.5), MinIO and Pushgateway processes
 * on 127.0.0.1 with free ports and temp dirs (DESIGN.md §6).
 *
 * Binary locations come from rig.json, written by `bash test/rig/build.sh` — the single
 * source of truth. Every spawned process is SIGKILLed if this Node process exits without
 * stopping it. Set LIFEBOAT_RIG_KEEP=1 to keep temp dirs (data + logs) after stop().
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { logTail, makeTempDir, removeTempDir, spawnLogged, terminate } from './processes.js';

const execFileP = promisify(execFile);

// ---------------------------------------------------------------------------
// rig.json
// ---------------------------------------------------------------------------

export interface EtcdBins {
  etcd: string;
  etcdctl: string;
  /** Only for 3.5 (3.4 has no etcdutl). */
  etcdutl?: string;
}

export interface RigPaths {
  etcd34: { etcd: string; etcdctl: string };
  etcd35: { etcd: string; etcdutl: string; etcdctl: string };
  minio: { minio: string; mc: string };
  pushgateway: { pushgateway: string; version: string };
}

/** What global-setup provides to tests: `inject('rig')`. JSON-serialisable. */
export interface RigContext {
  etcd34: { endpoint: string; dataDir: string };
  etcd35: { endpoint: string; dataDir: string };
  minio: { endpoint: string; accessKey: string; secretKey: string; region: string; bucket: string };
  bins: RigPaths;
}

/** Same rule as build.sh: ${LIFEBOAT_RIG_CACHE:-$HOME/.cache/lifeboat-rig}. */
export function rigCacheDir(): string {
  const fromEnv = process.env['LIFEBOAT_RIG_CACHE'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.cache', 'lifeboat-rig');
}

export function readRig(): RigPaths {
  const file = join(rigCacheDir(), 'rig.json');
  const hint = 'run `bash test/rig/build.sh` (or `npm run rig`) first';
  let rig: RigPaths;
  try {
    rig = JSON.parse(readFileSync(file, 'utf8')) as RigPaths;
  } catch (err) {
    throw new Error(`test rig not built: cannot read ${file} (${(err as Error).message}); ${hint}`);
  }
  const paths = [rig.etcd34?.etcd, rig.etcd34?.etcdctl, rig.etcd35?.etcd, rig.etcd35?.etcdutl, rig.etcd35?.etcdctl, rig.minio?.minio, rig.minio?.mc, rig.pushgateway?.pushgateway];
  for (const p of paths) {
    if (typeof p !== 'string' || !existsSync(p)) {
      throw new Error(`test rig incomplete: ${file} lists missing binary ${String(p)}; ${hint}`);
    }
  }
  return rig;
}

// ---------------------------------------------------------------------------
// Process bookkeeping
// ---------------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------
// Ports, HTTP probes
// ---------------------------------------------------------------------------

/** A TCP port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close((err) => (err ? reject(err) : port > 0 ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

interface ProbeTls {
  ca: string;
  cert?: string;
  key?: string;
}

/** GET url; resolves with status and body, never rejects (status 0 on connection errors). */
function probe(url: string, tls?: ProbeTls): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const u = new URL(url);
    const options = { method: 'GET', timeout: 2000, ...(u.protocol === 'https:' && tls ? tls : {}) };
    const req = (u.protocol === 'https:' ? httpsRequest : httpRequest)(u, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

/** Polls `ready` until true; fails early if the process exits, or after timeoutMs. */
async function waitUntil(what: string, child: ChildProcess, logFile: string, ready: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${what} exited (${child.exitCode ?? child.signalCode}) before becoming healthy; log ${logFile}:\n${await logTail(logFile)}`);
    }
    if (await ready()) return;
    if (Date.now() > deadline) {
      throw new Error(`${what} not healthy after ${timeoutMs / 1000}s; log ${logFile}:\n${await logTail(logFile)}`);
    }
    await sleep(100);
  }
}

// ---------------------------------------------------------------------------
// etcd
// ---------------------------------------------------------------------------

export type EtcdVersion = '3.4' | '3.5';

export interface EtcdTlsOptions {
  caFile: string;
  /** Server certificate and key (SAN 127.0.0.1). */
  certFile: string;
  keyFile: string;
  /** Require clients to present a certificate signed by caFile. */
  clientCertAuth?: boolean;
  /** Client certificate for the rig's own health checks and ctl(); defaults to certFile/keyFile. */
  clientCertFile?: string;
  clientKeyFile?: string;
}

export interface StartEtcdOptions {
  version: EtcdVersion;
  tls?: EtcdTlsOptions;
  name?: string;
  /** Start on an existing data dir (e.g. a restored one); it is left in place on stop. */
  dataDir?: string;
  clientPort?: number;
  peerPort?: number;
  /** name=peerURL,... for a member of a multi-member cluster (default: this member alone). */
  initialCluster?: string;
  initialClusterToken?: string;
}

export interface EtcdHandle {
  /** Client URL, e.g. http://127.0.0.1:40123 (https:// with tls). */
  endpoint: string;
  /** The URL etcd listens on and advertises for clients (same as endpoint). */
  clientUrl: string;
  peerUrl: string;
  name: string;
  dataDir: string;
  logFile: string;
  version: EtcdVersion;
  bins: EtcdBins;
  tls?: EtcdTlsOptions;
  pid: number;
  /** Runs this version's etcdctl (API v3) against this member; resolves with stdout. */
  ctl(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startEtcd(opts: StartEtcdOptions): Promise<EtcdHandle> {
  const rig = readRig();
  const bins: EtcdBins = opts.version === '3.4' ? { ...rig.etcd34 } : { ...rig.etcd35 };
  const name = opts.name ?? `lifeboat-${opts.version.replace('.', '')}`;
  const dir = await makeTempDir(`etcd${opts.version.replace('.', '')}`);
  const dataDir = opts.dataDir ?? join(dir, 'data');
  const logFile = join(dir, 'etcd.log');
  const [freeClient, freePeer] = await freePorts(2);
  const clientPort = opts.clientPort ?? freeClient!;
  const peerPort = opts.peerPort ?? freePeer!;
  const scheme = opts.tls ? 'https' : 'http';
  const clientUrl = `${scheme}://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const tls = opts.tls;

  const args = [
    '--name', name,
    '--data-dir', dataDir,
    '--listen-client-urls', clientUrl,
    '--advertise-client-urls', clientUrl,
    '--listen-peer-urls', peerUrl,
    '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', opts.initialCluster ?? `${name}=${peerUrl}`,
    '--initial-cluster-state', 'new',
    '--initial-cluster-token', opts.initialClusterToken ?? `lifeboat-${randomBytes(4).toString('hex')}`,
    '--logger', 'zap',
    '--log-outputs', 'stderr',
  ];
  if (tls) {
    args.push('--cert-file', tls.certFile, '--key-file', tls.keyFile, '--trusted-ca-file', tls.caFile);
    if (tls.clientCertAuth) args.push('--client-cert-auth');
  }
  // Keep the child's environment free of ETCD_* / ETCDCTL_* leaking in from the caller.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^ETCD(CTL)?_/.test(k)) env[k] = v;

  const child = spawnLogged(bins.etcd, args, logFile, env, dir);
  const probeTls: ProbeTls | undefined = tls
    ? {
        ca: await readFile(tls.caFile, 'utf8'),
        cert: await readFile(tls.clientCertFile ?? tls.certFile, 'utf8'),
        key: await readFile(tls.clientKeyFile ?? tls.keyFile, 'utf8'),
      }
    : undefined;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await terminate(child);
      await removeTempDir(dir);
    })());

  try {
    await waitUntil(`etcd ${opts.version} (${clientUrl})`, child, logFile, async () => {
      const res = await probe(`${clientUrl}/health`, probeTls);
      if (res.status !== 200) return false;
      try {
        return (JSON.parse(res.body) as { health?: unknown }).health === 'true';
      } catch {
        return false;
      }
    });
  } catch (err) {
    await stop();
    throw err;
  }

  const ctl = async (ctlArgs: string[]): Promise<string> => {
    const tlsArgs = tls
      ? ['--cacert', tls.caFile, '--cert', tls.clientCertFile ?? tls.certFile, '--key', tls.clientKeyFile ?? tls.keyFile]
      : [];
    const { stdout } = await execFileP(bins.etcdctl, ['--endpoints', clientUrl, ...tlsArgs, ...ctlArgs], {
      env: { ...env, ETCDCTL_API: '3' },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  };

  return {
    endpoint: clientUrl,
    clientUrl,
    peerUrl,
    name,
    dataDir,
    logFile,
    version: opts.version,
    bins,
    ...(tls ? { tls } : {}),
    pid: child.pid ?? -1,
    ctl,
    stop,
  };
}

// ---------------------------------------------------------------------------
// MinIO
// ---------------------------------------------------------------------------

export interface MinioHandle {
  /** S3 endpoint, http://127.0.0.1:PORT (use forcePathStyle). */
  endpoint: string;
  accessKey: string;
  secretKey: string;
  region: string;
  dataDir: string;
  logFile: string;
  pid: number;
  createBucket(name: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startMinio(): Promise<MinioHandle> {
  const rig = readRig();
  const dir = await makeTempDir('minio');
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'minio.log');
  const [port, consolePort] = await freePorts(2);
  const endpoint = `http://127.0.0.1:${port}`;
  const accessKey = `lifeboat-${randomBytes(4).toString('hex')}`;
  const secretKey = randomBytes(18).toString('base64url');
  const region = 'us-east-1';

  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(MINIO|MC|AWS)_/.test(k)) env[k] = v;
  Object.assign(env, {
    MINIO_ROOT_USER: accessKey,
    MINIO_ROOT_PASSWORD: secretKey,
    MINIO_REGION: region,
    MINIO_BROWSER: 'off',
    MINIO_UPDATE: 'off',
    MINIO_CALLHOME_ENABLE: 'off',
    // Tolerate a data dir on the root disk and skip hardware checks meant for production.
    MINIO_CI_CD: 'on',
  });

  const args = [
    'server', dataDir,
    '--address', `127.0.0.1:${port}`,
    '--console-address', `127.0.0.1:${consolePort}`,
    '--certs-dir', join(dir, 'certs'),
    '--quiet',
  ];
  const child = spawnLogged(rig.minio.minio, args, logFile, env, dir);

  let s3: S3Client | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      s3?.destroy();
      await terminate(child);
      await removeTempDir(dir);
    })());

  try {
    await waitUntil(`minio (${endpoint})`, child, logFile, async () => {
      const live = await probe(`${endpoint}/minio/health/live`);
      return live.status === 200 && (await probe(`${endpoint}/minio/health/ready`)).status === 200;
    });
  } catch (err) {
    await stop();
    throw err;
  }

  const createBucket = async (name: string): Promise<void> => {
    s3 ??= new S3Client({
      endpoint,
      region,
      forcePathStyle: true,
      credentials: { accessKeyId: accessKey, secretAccessKey: secretKey },
    });
    await s3.send(new CreateBucketCommand({ Bucket: name }));
  };

  return { endpoint, accessKey, secretKey, region, dataDir, logFile, pid: child.pid ?? -1, createBucket, stop };
}

// ---------------------------------------------------------------------------
// Pushgateway
// ---------------------------------------------------------------------------

/** Basic-auth credentials the rig's Pushgateway requires when started with `basicAuth: true`. */
export const PUSHGATEWAY_BASIC_AUTH = {
  user: 'lifeboat',
  password: 'lifeboat-rig-secret',
  /** bcrypt (cost 4) of the password, as the Pushgateway's web config wants it. */
  bcrypt: '$2a$04$gGlobuQFJEyesJzYloah8.arc1anG84wSU99Nkh0LVxut7u7B/vZ.',
};

export interface PushgatewayHandle {
  /** Base URL, http://127.0.0.1:PORT (no credentials). */
  url: string;
  /** The same with the basic-auth user and password in it, when started with basicAuth. */
  urlWithAuth: string;
  logFile: string;
  pid: number;
  /** GET /metrics: the text exposition format, the way Prometheus would scrape it. */
  scrape(): Promise<string>;
  stop(): Promise<void>;
}

/** Starts the Pushgateway (in memory, no persistence file), optionally behind basic auth. */
export async function startPushgateway(opts: { basicAuth?: boolean } = {}): Promise<PushgatewayHandle> {
  const rig = readRig();
  const dir = await makeTempDir('pushgateway');
  const logFile = join(dir, 'pushgateway.log');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [`--web.listen-address=127.0.0.1:${port}`, '--log.level=debug'];
  const auth = PUSHGATEWAY_BASIC_AUTH;
  if (opts.basicAuth) {
    const config = join(dir, 'web.yml');
    await writeFile(config, `basic_auth_users:\n  ${auth.user}: '${auth.bcrypt}'\n`);
    args.push(`--web.config.file=${config}`);
  }
  const child = spawnLogged(rig.pushgateway.pushgateway, args, logFile, { ...process.env }, dir);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await terminate(child);
      await removeTempDir(dir);
    })());

  const authHeader = `Basic ${Buffer.from(`${auth.user}:${auth.password}`).toString('base64')}`;
  const get = async (path: string): Promise<Response> =>
    fetch(`${url}${path}`, { headers: opts.basicAuth ? { authorization: authHeader } : {}, signal: AbortSignal.timeout(5000) });
  try {
    await waitUntil(`pushgateway (${url})`, child, logFile, async () => (await get('/-/ready').catch(() => undefined))?.status === 200);
  } catch (err) {
    await stop();
    throw err;
  }
  const scrape = async (): Promise<string> => {
    const res = await get('/metrics');
    if (res.status !== 200) throw new Error(`pushgateway GET /metrics: HTTP ${res.status}`);
    return res.text();
  };
  const urlWithAuth = opts.basicAuth ? `http://${auth.user}:${auth.password}@127.0.0.1:${port}` : url;
  return { url, urlWithAuth, logFile, pid: child.pid ?? -1, scrape, stop };
}

// ---------------------------------------------------------------------------
// TLS material
// ---------------------------------------------------------------------------

export interface TlsCerts {
  caFile: string;
  /** Server certificate: SAN IP:127.0.0.1, DNS:localhost; usable as a client cert too. */
  certFile: string;
  keyFile: string;
  /** Client certificate (CN=lifeboat-client). */
  clientCertFile: string;
  clientKeyFile: string;
}

const OPENSSL_CONFIG = `
[req]
distinguished_name = dn
prompt = no

[dn]
CN = unused

[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid

[client_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/** Generates a throwaway CA, server cert and client cert in dir with the openssl CLI. */
export async function genTlsCerts(dir: string): Promise<TlsCerts> {
  const f = (name: string): string => join(dir, name);
  const openssl = async (args: string[]): Promise<void> => {
    try {
      await execFileP('openssl', args, { cwd: dir });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
    }
  };
  const cnf = f('openssl.cnf');
  await writeFile(cnf, OPENSSL_CONFIG);
  const genKey = async (file: string): Promise<void> => {
    await openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file]);
    await chmod(file, 0o600);
  };
  const days = '7';

  await genKey(f('ca.key'));
  await openssl(['req', '-config', cnf, '-new', '-x509', '-key', f('ca.key'), '-out', f('ca.crt'), '-days', days,
    '-subj', '/CN=lifeboat-test-ca', '-extensions', 'ca_ext']);

  const issue = async (base: string, cn: string, ext: string): Promise<void> => {
    await genKey(f(`${base}.key`));
    await openssl(['req', '-config', cnf, '-new', '-key', f(`${base}.key`), '-out', f(`${base}.csr`), '-subj', `/CN=${cn}`]);
    await openssl(['x509', '-req', '-in', f(`${base}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-out', f(`${base}.crt`), '-days', days, '-extfile', cnf, '-extensions', ext]);
  };
  await issue('server', 'localhost', 'server_ext');
  await issue('client', 'lifeboat-client', 'client_ext');

  return {
    caFile: f('ca.crt'),
    certFile: f('server.crt'),
    keyFile: f('server.key'),
    clientCertFile: f('client.crt'),
    clientKeyFile: f('client.key'),
  };
}
