#!/usr/bin/env node
// Benchmark: `lifeboat etcd snapshot` against `etcdctl snapshot save` on a large etcd db filled
// with Kubernetes-like values (JSON ConfigMaps, protobuf-looking Secrets). Runs the cases
// alternately in the same process, N runs each, and reports wall time and peak RSS per run
// (via /usr/bin/time), the ratio to etcdctl, and the CPU other processes used meanwhile (noise).
//
//   npm run build                                    # lifeboat's dist/ (or pass --lifeboat)
//   node bench/etcd-snapshot.mjs --size-mb 1100 --runs 5
//   node bench/etcd-snapshot.mjs --size-mb 1100 --data-dir /tmp/lb-etcd-1100   # fill once, reuse
//
// Options:
//   --size-mb N        fill until etcd reports a db of at least N MiB (default 1100)
//   --runs N           measured runs per case (default 5), after --warmup runs (default 1)
//   --etcd 3.5|3.4     etcd from the test rig (3.5, default) or Debian's /usr/bin/etcd (3.4)
//   --cases LIST       comma list of: etcdctl,none,zstd-age-s3,zstd,gzip (default the first four)
//   --data-dir DIR     keep the filled etcd data in DIR; if DIR already holds a filled db of the
//                      same etcd version, reuse it instead of filling (saves the fill time)
//   --work DIR         parent for the temp dir (default the OS temp dir; needs ~3x the db size free)
//   --lifeboat FILE    the lifeboat entry to run (default <repo>/bin/run.js)
//   --variant "NAME=FILE [ENV=VALUE...] [NODE-ARGS]"  also run every lifeboat case with another
//                      lifeboat entry (a patched build, say), environment and/or node arguments as
//                      case@NAME, alternating with the others (repeatable),
//                      e.g. --variant "semi=bin/run.js --max-semi-space-size=2"
//   --node-args=S      extra node arguments for lifeboat runs, space-separated
//                      (e.g. --node-args="--cpu-prof --cpu-prof-dir=/tmp/prof")
//   --quiet-wait S     before each run, wait up to S seconds (default 120; 0: don't) until other
//                      processes use less than --max-noise of a CPU for 2 s in a row
//   --max-noise F      a run during which other processes used more than F CPUs on average
//                      (default 0.15) is noisy: re-run up to --retries times (default 3), then kept
//                      and flagged; discarded runs are listed in the JSON
//   --no-sync          do not run `sync` after removing the previous run's output, as every
//                      invocation in docs/benchmarks.md before J did (a run could then pay for
//                      committing its predecessor's deletion)
//   --json FILE        write results here (default <--work>/etcd-snapshot-<time>.json, printed)
//   --fill-only        fill (and keep with --data-dir), then stop
//   --serve            fill or reuse, then keep etcd running and print its endpoint until killed
//                      (for experiments such as bench/etcd-snapshot-recv.mjs)
//
// Needs the test rig (`bash test/rig/build.sh`: etcd 3.5, MinIO) and GNU time at /usr/bin/time.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { cpus, homedir, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';

// The SDK warns about Node 20 on import unless told not to (lifeboat's bin/run.js does the same).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { S3Client, CreateBucketCommand, ListObjectsV2Command, DeleteObjectsCommand } = await import('@aws-sdk/client-s3');

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: opt } = parseArgs({
  options: {
    'size-mb': { type: 'string', default: '1100' },
    runs: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    etcd: { type: 'string', default: '3.5' },
    cases: { type: 'string', default: 'etcdctl,none,zstd-age-s3,zstd' },
    'data-dir': { type: 'string' },
    work: { type: 'string', default: tmpdir() },
    lifeboat: { type: 'string', default: join(ROOT, 'bin', 'run.js') },
    variant: { type: 'string', multiple: true, default: [] },
    'node-args': { type: 'string', default: '' },
    json: { type: 'string' },
    'fill-only': { type: 'boolean', default: false },
    serve: { type: 'boolean', default: false },
    'quiet-wait': { type: 'string', default: '120' },
    'max-noise': { type: 'string', default: '0.15' },
    retries: { type: 'string', default: '3' },
    seed: { type: 'string', default: '1' },
    'no-sync': { type: 'boolean', default: false },
  },
});

const MiB = 1024 * 1024;
const TARGETS = { none: 1.05, 'zstd-age-s3': 1.15, rssMB: 128 };
const rigFile = join(process.env.LIFEBOAT_RIG_CACHE || join(homedir(), '.cache', 'lifeboat-rig'), 'rig.json');
if (!existsSync(rigFile)) throw new Error(`no test rig at ${rigFile}: run bash test/rig/build.sh`);
const rig = JSON.parse(readFileSync(rigFile, 'utf8'));
if (!['3.4', '3.5'].includes(opt.etcd)) throw new Error('--etcd is 3.4 or 3.5');
const bins = opt.etcd === '3.4' ? rig.etcd34 : rig.etcd35;
if (!existsSync('/usr/bin/time')) throw new Error('needs GNU time at /usr/bin/time (apt-get install time)');
if (!existsSync(opt.lifeboat)) throw new Error(`no ${opt.lifeboat}: run npm run build, or pass --lifeboat`);

const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Kubernetes-like values (deterministic for a seed)
// ---------------------------------------------------------------------------------------------

function prng(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = prng(Number(opt.seed));
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const hex = (n) => {
  let s = '';
  while (s.length < n) s += ((rand() * 0x100000000) >>> 0).toString(16).padStart(8, '0');
  return s.slice(0, n);
};
const uuid = () => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;

const WORDS = ('api auth backend batch billing broker cache catalog checkout config cron data db default dns edge email events '
  + 'feature frontend gateway grafana graph search identity ingest inventory jobs kafka ledger loki metrics mongo monitor nats '
  + 'notify orders payments pipeline postgres prometheus proxy queue rabbit redis registry render report router scheduler '
  + 'session shipping sidecar storage stream sync tempo tenant thanos token tracing upload users vault web worker').split(' ');
const KEYS = ('enabled timeout retries maxConnections poolSize logLevel port host path interval threshold replicas bufferSize '
  + 'batchSize ttl region bucket endpoint username database schema topic partitions cacheSize workers concurrency '
  + 'readTimeout writeTimeout idleTimeout keepAlive compression format level rotation maxAge maxBackups').split(' ');
const TEAMS = ['platform', 'payments', 'search', 'data', 'identity', 'growth', 'infra', 'ml', 'mobile', 'security'];
const ENVS = ['prod', 'staging', 'dev', 'qa', 'perf'];
const NAMESPACES = Array.from({ length: 100 }, (_, i) => (i < 6 ? ['default', 'kube-system', 'kube-public', 'monitoring', 'ingress-nginx', 'cert-manager'][i] : `${TEAMS[i % 10]}-${WORDS[(i * 7) % WORDS.length]}-${ENVS[i % 5]}`));

function scalar() {
  switch (int(8)) {
    case 0: return String(int(100000));
    case 1: return pick(['true', 'false']);
    case 2: return `${pick(WORDS)}-${pick(WORDS)}.${pick(NAMESPACES)}.svc.cluster.local:${pick([80, 443, 5432, 6379, 8080, 9090, 9092])}`;
    case 3: return `${int(120)}s`;
    case 4: return `"${pick(WORDS)} ${pick(WORDS)} ${pick(WORDS)}"`;
    case 5: return `${pick(['info', 'debug', 'warn', 'error'])}`;
    case 6: return `https://${pick(WORDS)}.example.com/${pick(WORDS)}/v${int(4)}/${hex(6)}`;
    default: return `${(rand() * 100).toFixed(2)}`;
  }
}

function configText(target) {
  const style = int(3);
  const lines = [];
  let len = 0;
  let depth = 0;
  while (len < target) {
    let line;
    if (style === 0) {
      // YAML
      if (depth < 3 && rand() < 0.2) line = `${'  '.repeat(depth++)}${pick(WORDS)}:`;
      else {
        if (depth > 0 && rand() < 0.15) depth--;
        line = `${'  '.repeat(depth)}${pick(KEYS)}: ${scalar()}`;
      }
    } else if (style === 1) {
      // Java properties
      line = `${pick(WORDS)}.${pick(WORDS)}.${pick(KEYS)}=${scalar().replaceAll('"', '')}`;
    } else {
      // nginx-ish
      line = rand() < 0.3
        ? `location /${pick(WORDS)}/v${int(3)}/ {\n    proxy_pass http://${pick(WORDS)}-${pick(WORDS)}:${pick([80, 8080, 3000])};\n    proxy_read_timeout ${int(300)}s;\n}`
        : `${pick(['proxy_set_header', 'add_header', 'set', 'map_hash_bucket_size', 'client_max_body_size'])} ${pick(KEYS)} ${scalar()};`;
    }
    lines.push(line);
    len += line.length + 1;
  }
  return lines.join('\n');
}

let serial = 0;
const timestamp = () => new Date(Date.UTC(2024, int(12), 1 + int(28), int(24), int(60), int(60))).toISOString().replace('.000', '');

/** A ConfigMap as the API server stores it (JSON), 1-4 KB. */
function configMap(ns) {
  const name = `${pick(WORDS)}-${pick(WORDS)}-config-${(serial++).toString(36)}`;
  const app = pick(WORDS);
  const target = 1024 + int(3072);
  const files = 1 + int(3);
  const meta = {
    name,
    namespace: ns,
    uid: uuid(),
    resourceVersion: String(100000 + serial * 3),
    creationTimestamp: timestamp(),
    labels: { 'app.kubernetes.io/name': app, 'app.kubernetes.io/part-of': pick(TEAMS), 'app.kubernetes.io/managed-by': 'Helm', 'helm.sh/chart': `${app}-${int(5)}.${int(20)}.${int(10)}` },
    annotations: { 'meta.helm.sh/release-name': `${app}-${pick(ENVS)}`, 'meta.helm.sh/release-namespace': ns },
    managedFields: [{ manager: 'helm', operation: 'Update', apiVersion: 'v1', time: timestamp(), fieldsType: 'FieldsV1', fieldsV1: { 'f:data': {}, 'f:metadata': { 'f:labels': {}, 'f:annotations': {} } } }],
  };
  const head = JSON.stringify(meta).length + 60;
  const data = {};
  for (let i = 0; i < files; i++) {
    data[`${pick(WORDS)}.${pick(['yaml', 'properties', 'conf', 'json', 'ini'])}`] = configText(Math.max(100, (target - head) / files));
  }
  return { key: `/registry/configmaps/${ns}/${name}`, value: Buffer.from(JSON.stringify({ kind: 'ConfigMap', apiVersion: 'v1', metadata: meta, data })) };
}

// Minimal protobuf encoding, enough to look like what the API server writes for core types.
function varint(n) {
  const out = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
const field = (num, bytes) => {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(String(bytes));
  return Buffer.concat([Buffer.from([(num << 3) | 2]), varint(b.length), b]);
};
const mapEntry = (num, k, v) => field(num, Buffer.concat([field(1, k), field(2, v)]));

// Certificates from the same CA share issuer, OIDs and extensions: DER-ish bytes that are part
// shared boilerplate, part key material.
const CA_BOILER = Buffer.from(`0\x82\x05\x06\x06\t*\x86H\x86\xf7\r\x01\x01\x0b\x05\x000X1\x0b0\t\x06\x03U\x04\x06\x13\x02US1\x130\x11\x06\x03U\x04\n\x13\nKubernetes1\x130\x11\x06\x03U\x04\x03\x13\nkubernetes0\x1e\x17\r240101000000Z\x17\r340101000000Z`, 'latin1');
function pem(kind, bytes) {
  const parts = [];
  let n = 0;
  while (n < bytes) {
    const chunk = rand() < 0.35 ? CA_BOILER.subarray(int(40), 40 + int(CA_BOILER.length - 40)) : Buffer.from(hex(2 * (16 + int(48))), 'hex');
    parts.push(chunk);
    n += chunk.length;
  }
  const b64 = Buffer.concat(parts).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${kind}-----\n${b64}\n-----END ${kind}-----\n`;
}
const b64url = (s) => Buffer.from(s).toString('base64url');

/** A Secret as the API server stores it: 'k8s\0' + protobuf Unknown{TypeMeta, raw Secret}. */
function secret(ns) {
  const app = pick(WORDS);
  const kind = int(10);
  let type;
  const data = [];
  let name;
  if (kind < 4) {
    type = 'kubernetes.io/tls';
    name = `${app}-${pick(WORDS)}-tls-${(serial++).toString(36)}`;
    data.push(['tls.crt', pem('CERTIFICATE', 700 + int(600))], ['ca.crt', pem('CERTIFICATE', 600 + int(300))], ['tls.key', pem('RSA PRIVATE KEY', 900 + int(300))]);
  } else if (kind < 7) {
    type = 'kubernetes.io/service-account-token';
    name = `${app}-token-${hex(5)}`;
    serial++;
    const payload = JSON.stringify({ iss: 'kubernetes/serviceaccount', 'kubernetes.io/serviceaccount/namespace': ns, 'kubernetes.io/serviceaccount/secret.name': name, 'kubernetes.io/serviceaccount/service-account.name': app, 'kubernetes.io/serviceaccount/service-account.uid': uuid(), sub: `system:serviceaccount:${ns}:${app}` });
    data.push(['token', `${b64url('{"alg":"RS256","kid":"' + hex(43) + '"}')}.${b64url(payload)}.${Buffer.from(hex(512), 'hex').toString('base64url')}`], ['namespace', ns], ['ca.crt', pem('CERTIFICATE', 600 + int(200))]);
  } else {
    type = kind === 9 ? 'kubernetes.io/dockerconfigjson' : 'Opaque';
    name = `${app}-${pick(['credentials', 'db', 'env', 'secrets', 'pull'])}-${(serial++).toString(36)}`;
    if (kind === 9) {
      data.push(['.dockerconfigjson', JSON.stringify({ auths: { [`registry.${pick(WORDS)}.example.com`]: { username: app, password: hex(40), auth: Buffer.from(`${app}:${hex(40)}`).toString('base64') } } })]);
    } else {
      for (let i = 0, n = 3 + int(8); i < n; i++) data.push([`${pick(KEYS).toUpperCase()}_${pick(WORDS).toUpperCase()}`, rand() < 0.5 ? hex(16 + int(48)) : scalar()]);
      if (rand() < 0.5) data.push(['application.yaml', configText(400 + int(1200))]);
    }
  }
  const labels = Buffer.concat([mapEntry(11, 'app.kubernetes.io/name', app), mapEntry(11, 'app.kubernetes.io/part-of', pick(TEAMS))]);
  const meta = Buffer.concat([
    field(1, name), field(3, ns), field(5, uuid()), field(6, String(100000 + serial * 3)),
    field(8, Buffer.concat([Buffer.from([0x08]), varint(1704067200 + int(31536000))])), labels,
    field(17, Buffer.concat([field(1, 'kubectl-client-side-apply'), field(2, 'Update'), field(3, 'v1'), field(6, 'FieldsV1')])),
  ]);
  const secretMsg = Buffer.concat([field(1, meta), ...data.map(([k, v]) => mapEntry(2, k, v)), field(3, type)]);
  const unknown = Buffer.concat([field(1, Buffer.concat([field(1, 'v1'), field(2, 'Secret')])), field(2, secretMsg), field(3, ''), field(4, '')]);
  return { key: `/registry/secrets/${ns}/${name}`, value: Buffer.concat([Buffer.from('k8s\x00', 'latin1'), unknown]) };
}

const nextValue = () => (rand() < 0.7 ? configMap(pick(NAMESPACES)) : secret(pick(NAMESPACES)));

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

const children = new Set();
let workDir; // removed on exit, however the script ends
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});
let onSignal = () => process.exit(130);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => onSignal());

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

function startProcess(bin, args, env, logFile) {
  const out = logFile ? ['ignore', 'ignore', 'pipe'] : 'ignore';
  const child = spawn(bin, args, { stdio: out, env });
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (logFile) {
    let tail = '';
    child.stderr.on('data', (d) => (tail = (tail + d).slice(-4000)));
    child.logTail = () => tail;
  }
  return child;
}

async function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}

async function waitFor(what, child, ok, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited ${child.exitCode}: ${child.logTail?.() ?? ''}`);
    try {
      if (await ok()) return;
    } catch {
      // not yet
    }
    await sleep(200);
  }
  throw new Error(`${what} not ready after ${timeoutMs / 1000}s: ${child.logTail?.() ?? ''}`);
}

async function startEtcd(dataDir, meta) {
  const clientPort = await freePort();
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${meta.peerPort}`;
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^ETCD(CTL)?_/.test(k)));
  const args = ['--name', 'bench', '--data-dir', dataDir, '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `bench=${peer}`,
    '--initial-cluster-token', meta.token, '--quota-backend-bytes', String(8 * 1024 * MiB), '--log-level', 'warn'];
  if (opt.etcd === '3.5') args.push('--logger', 'zap');
  const child = startProcess(bins.etcd, args, env, true);
  await waitFor('etcd', child, async () => (await (await fetch(`${client}/health`)).json()).health === 'true');
  return { child, endpoint: client };
}

async function startMinio(dir) {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const creds = { accessKeyId: `bench-${randomBytes(4).toString('hex')}`, secretAccessKey: randomBytes(18).toString('base64url') };
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(MINIO|MC|AWS)_/.test(k)));
  Object.assign(env, { MINIO_ROOT_USER: creds.accessKeyId, MINIO_ROOT_PASSWORD: creds.secretAccessKey, MINIO_BROWSER: 'off', MINIO_UPDATE: 'off', MINIO_CALLHOME_ENABLE: 'off', MINIO_CI_CD: 'on' });
  const child = startProcess(rig.minio.minio, ['server', join(dir, 'data'), '--address', `127.0.0.1:${port}`, '--console-address', `127.0.0.1:${await freePort()}`, '--certs-dir', join(dir, 'certs'), '--quiet'], env, true);
  await waitFor('minio', child, async () => (await fetch(`${endpoint}/minio/health/ready`)).ok);
  const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: creds });
  await s3.send(new CreateBucketCommand({ Bucket: 'bench' }));
  return { child, endpoint, creds, s3 };
}

async function emptyBucket(s3) {
  for (;;) {
    const res = await s3.send(new ListObjectsV2Command({ Bucket: 'bench' }));
    const keys = (res.Contents ?? []).map((o) => ({ Key: o.Key }));
    if (!keys.length) return;
    await s3.send(new DeleteObjectsCommand({ Bucket: 'bench', Delete: { Objects: keys } }));
  }
}

// ---------------------------------------------------------------------------------------------
// Fill
// ---------------------------------------------------------------------------------------------

async function status(endpoint) {
  const c = new Etcd3({ hosts: endpoint });
  try {
    const s = await c.maintenance.status();
    const keys = await c.getAll().prefix('/registry/').count();
    return { version: s.version, dbSize: Number(s.dbSize), dbSizeInUse: Number(s.dbSizeInUse ?? 0), revision: Number(s.header.revision), keys };
  } finally {
    c.close();
  }
}

async function fill(endpoint, targetBytes) {
  const client = new Etcd3({ hosts: endpoint, grpcOptions: { 'grpc.max_send_message_length': 16 * MiB } });
  const started = Date.now();
  let putBytes = 0;
  let puts = 0;
  let dbSize = 0;
  let done = false;
  let lastLog = 0;
  const worker = async () => {
    while (!done) {
      const success = [];
      let bytes = 0;
      // etcd's defaults: 128 operations and 1.5 MiB per request.
      while (success.length < 128 && bytes < 1024 * 1024) {
        const { key, value } = nextValue();
        success.push({ request_put: { key: Buffer.from(key), value } });
        bytes += key.length + value.length;
      }
      await client.kv.txn({ compare: [], success, failure: [] });
      putBytes += bytes;
      puts += success.length;
    }
  };
  const watcher = async () => {
    while (!done) {
      await sleep(500);
      dbSize = Number((await client.maintenance.status()).dbSize);
      if (Date.now() - lastLog > 10_000) {
        lastLog = Date.now();
        log(`fill: ${puts} keys, ${(putBytes / MiB).toFixed(0)} MiB of values, db ${(dbSize / MiB).toFixed(0)} MiB, ${((putBytes / MiB) / ((Date.now() - started) / 1000)).toFixed(1)} MiB/s`);
      }
      if (dbSize >= targetBytes) done = true;
    }
  };
  await Promise.all([watcher(), ...Array.from({ length: 6 }, worker)]);
  client.close();
  const seconds = (Date.now() - started) / 1000;
  log(`fill done: ${puts} keys, ${(putBytes / MiB).toFixed(0)} MiB of keys+values in ${seconds.toFixed(1)} s (${(putBytes / MiB / seconds).toFixed(1)} MiB/s)`);
  return { seconds, puts, putBytes };
}

// ---------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------

const HZ = 100; // USER_HZ on Linux
/** Machine-wide CPU seconds from /proc/stat. */
function cpuTotals() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , iowait, irq, softirq, steal] = f;
  return { user: (user + nice) / HZ, system: system / HZ, irq: (irq + softirq) / HZ, steal: steal / HZ, iowait: iowait / HZ };
}
/** A process's user and system CPU seconds (all threads). */
function procCpu(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { user: Number(f[11]) / HZ, system: Number(f[12]) / HZ };
  } catch {
    return { user: 0, system: 0 };
  }
}
const sub = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - b[k]]));

/**
 * Waits (up to --quiet-wait seconds) until other processes have used less than --max-noise of
 * one CPU for two consecutive seconds: others run tests on this machine too. Returns seconds waited.
 */
async function waitQuiet() {
  const limit = Number(opt['quiet-wait']);
  if (!(limit > 0)) return 0;
  const started = Date.now();
  let quiet = 0;
  while ((Date.now() - started) / 1000 < limit) {
    const a = cpuTotals();
    await sleep(1000);
    const b = cpuTotals();
    const used = b.user - a.user + (b.system - a.system);
    quiet = used < Number(opt['max-noise']) ? quiet + 1 : 0;
    if (quiet >= 2) break;
  }
  return (Date.now() - started) / 1000;
}

function run(cmd, args, env) {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-8000)));
    child.once('error', rej);
    child.once('exit', (code) => {
      children.delete(child);
      res({ code, out, err });
    });
  });
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const baseCases = opt.cases.split(',').map((s) => s.trim()).filter(Boolean);
  for (const c of baseCases) if (!['etcdctl', 'none', 'zstd-age-s3', 'zstd', 'gzip'].includes(c)) throw new Error(`unknown case ${c}`);
  const variants = opt.variant.map((v) => {
    const i = v.indexOf('=');
    const [file, ...rest] = v.slice(i + 1).split(' ').filter(Boolean);
    if (i <= 0 || !file || !existsSync(file)) throw new Error(`--variant ${v}: want NAME=FILE [ENV=VALUE...] [NODE-ARGS] (FILE an existing bin/run.js)`);
    const isEnv = (a) => /^[A-Z_][A-Z0-9_]*=/.test(a);
    const env = Object.fromEntries(rest.filter(isEnv).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
    return { name: v.slice(0, i), entry: resolve(file), env, nodeArgs: rest.filter((a) => !isEnv(a)) };
  });
  const cases = [...baseCases];
  for (const v of variants) for (const c of baseCases) if (c !== 'etcdctl') cases.push(`${c}@${v.name}`);
  const targetBytes = Number(opt['size-mb']) * MiB;
  const work = (workDir = await mkdtemp(join(resolve(opt.work), 'lifeboat-snapbench-')));
  log(`work dir ${work}`);
  const dataDir = opt['data-dir'] ? resolve(opt['data-dir']) : join(work, 'etcd');
  const metaFile = join(dataDir, 'bench-meta.json');
  let meta = existsSync(metaFile) ? JSON.parse(await readFile(metaFile, 'utf8')) : undefined;
  if (meta && meta.etcd !== opt.etcd) throw new Error(`${dataDir} holds an etcd ${meta.etcd} db; pass --etcd ${meta.etcd} or another --data-dir`);
  if (meta && !meta.filled) throw new Error(`${dataDir} holds an unfinished fill; remove it`);
  let etcd;
  let minio;
  try {
    let fillStats = meta?.fill;
    if (!meta) {
      await mkdir(dataDir, { recursive: true });
      meta = { etcd: opt.etcd, peerPort: await freePort(), token: `bench-${randomBytes(4).toString('hex')}`, filled: false };
      await writeFile(metaFile, JSON.stringify(meta));
      etcd = await startEtcd(join(dataDir, 'etcd'), meta);
      log(`etcd ${opt.etcd} at ${etcd.endpoint}; filling to ${opt['size-mb']} MiB`);
      fillStats = await fill(etcd.endpoint, targetBytes);
      meta = { ...meta, filled: true, fill: fillStats };
      await writeFile(metaFile, JSON.stringify(meta));
    } else {
      etcd = await startEtcd(join(dataDir, 'etcd'), meta);
      log(`reusing the filled db in ${dataDir}; etcd ${opt.etcd} at ${etcd.endpoint}`);
    }
    const st = await status(etcd.endpoint);
    log(`etcd ${st.version}: db ${(st.dbSize / MiB).toFixed(1)} MiB (${(st.dbSize / 1e9).toFixed(3)} GB), in use ${(st.dbSizeInUse / MiB).toFixed(1)} MiB, ${st.keys} keys, revision ${st.revision}`);
    if (st.dbSize < targetBytes) log(`WARNING: db is smaller than --size-mb ${opt['size-mb']}`);
    if (opt['fill-only']) return;
    if (opt.serve) {
      console.log(etcd.endpoint);
      await new Promise((r) => (onSignal = r));
      return;
    }

    if (baseCases.includes('zstd-age-s3')) minio = await startMinio(join(work, 'minio'));
    const identity = await generateX25519Identity();
    const recipient = await identityToRecipient(identity);
    const storeDir = join(work, 'store');
    const ctlFile = join(work, 'etcdctl.db');
    const timeFile = join(work, 'time.txt');
    const baseEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' };
    for (const k of Object.keys(baseEnv)) if (/^(ETCDCTL_|LIFEBOAT_|AWS_ACCESS|AWS_SECRET|AWS_SESSION|AWS_PROFILE)/.test(k)) delete baseEnv[k];
    const lifeboatEnv = baseEnv;
    const nodeArgs = opt['node-args'].split(' ').filter(Boolean);
    const lifeboatCases = (entry, nodeArgs) => {
      const lb = (extra) => [...nodeArgs, entry, 'etcd', 'snapshot', '--endpoints', etcd.endpoint, '--output', 'json', ...extra];
      return {
        none: { cmd: process.execPath, args: lb(['--compress', 'none', '--store', storeDir]), env: lifeboatEnv },
        zstd: { cmd: process.execPath, args: lb(['--compress', 'zstd', '--store', storeDir]), env: lifeboatEnv },
        gzip: { cmd: process.execPath, args: lb(['--compress', 'gzip', '--store', storeDir]), env: lifeboatEnv },
        'zstd-age-s3': minio && {
          cmd: process.execPath,
          args: lb(['--compress', 'zstd', '--encrypt-to', recipient, '--store', 's3://bench/snapshots', '--s3-endpoint', minio.endpoint, '--s3-force-path-style']),
          env: { ...lifeboatEnv, AWS_ACCESS_KEY_ID: minio.creds.accessKeyId, AWS_SECRET_ACCESS_KEY: minio.creds.secretAccessKey, AWS_REGION: 'us-east-1' },
        },
      };
    };
    const defs = {
      etcdctl: { cmd: bins.etcdctl, args: ['--endpoints', etcd.endpoint, 'snapshot', 'save', ctlFile], env: { ...baseEnv, ETCDCTL_API: '3' } },
      ...lifeboatCases(opt.lifeboat, nodeArgs),
    };
    for (const v of variants) {
      for (const [c, d] of Object.entries(lifeboatCases(v.entry, [...nodeArgs, ...v.nodeArgs]))) defs[`${c}@${v.name}`] = d && { ...d, env: { ...d.env, ...v.env } };
    }
    const cleanup = async () => {
      await rm(storeDir, { recursive: true, force: true });
      await rm(ctlFile, { force: true });
      if (minio) await emptyBucket(minio.s3);
    };

    // Startup cost of the CLI alone, for the analysis (not part of the targets).
    const startup = [];
    for (let i = 0; i < 3; i++) {
      const t0 = process.hrtime.bigint();
      const r = await run(process.execPath, [opt.lifeboat, '--version'], lifeboatEnv);
      if (r.code !== 0) throw new Error(`lifeboat --version failed: ${r.err}`);
      startup.push(Number(process.hrtime.bigint() - t0) / 1e9);
    }
    log(`lifeboat --version: ${startup.map((s) => s.toFixed(2)).join(' ')} s`);

    const results = [];
    const discarded = [];
    const maxNoise = Number(opt['max-noise']);
    const retries = Number(opt.retries);
    const warm = Number(opt.warmup);
    const runs = Number(opt.runs);
    let ctlSize;
    const measureOnce = async (name, round) => {
      const d = defs[name];
      await cleanup();
      // The previous run's 1.1 GB file was just deleted: without a sync, its freed blocks (and, on
      // a filesystem mounted with `discard`, their discards) wait in the journal for the next
      // commit, which the next run's fsync may force, so a run could pay for its predecessor.
      if (!opt['no-sync']) await run('sync', [], baseEnv);
      const quietWait = await waitQuiet();
      const cpu0 = cpuTotals();
      const self0 = process.cpuUsage();
      const etcd0 = procCpu(etcd.child.pid);
      const minio0 = minio ? procCpu(minio.child.pid) : { user: 0, system: 0 };
      const load1 = loadavg()[0];
      const t0 = process.hrtime.bigint();
      const r = await run('/usr/bin/time', ['-f', '%e %M %U %S', '-o', timeFile, '--', d.cmd, ...d.args], d.env);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const cpu1 = cpuTotals();
      if (r.code !== 0) throw new Error(`${name} failed (${r.code}): ${r.err}\n${r.out}`);
      const [, maxKB, user, sys] = (await readFile(timeFile, 'utf8')).trim().split('\n').pop().split(' ').map(Number);
      const etcdD = sub(procCpu(etcd.child.pid), etcd0);
      const minioD = minio ? sub(procCpu(minio.child.pid), minio0) : { user: 0, system: 0 };
      // What the machine spent besides the tool, etcd, MinIO and this script: user time of other
      // processes (concurrent tests: noise), kernel time outside these processes (writeback,
      // kworkers), interrupts (loopback networking runs in softirq) and steal (the hypervisor).
      const m = sub(cpu1, cpu0);
      const self = process.cpuUsage(self0);
      const otherCpu = Math.max(0, m.user - user - etcdD.user - minioD.user - self.user / 1e6);
      const otherSys = Math.max(0, m.system - sys - etcdD.system - minioD.system - self.system / 1e6);
      // Snapshots of an idle db differ run to run (bbolt's meta pages carry the txid), so compare
      // sizes: lifeboat's payload must be exactly as long as etcdctl's file.
      let stored;
      let payloadSize;
      if (name === 'etcdctl') {
        stored = payloadSize = ctlSize = statSync(ctlFile).size;
      } else {
        const manifest = JSON.parse(r.out);
        stored = manifest.objects[0].size;
        payloadSize = manifest.objects[0].payload?.size;
      }
      const rec = {
        round, case: name, wall, peakRssMB: maxKB / 1024, userCpu: user, sysCpu: sys,
        etcdCpu: etcdD.user + etcdD.system, minioCpu: minioD.user + minioD.system,
        otherCpu, otherSys, irq: m.irq, steal: m.steal, iowait: m.iowait, load1, quietWait,
        stored, payloadSize, warmup: round < 0, noisy: otherCpu > maxNoise * wall,
      };
      if (ctlSize !== undefined && payloadSize !== ctlSize) rec.mismatch = `payload of ${payloadSize} bytes, etcdctl's file ${ctlSize}`;
      log(`${round < 0 ? 'warmup' : `round ${round + 1}/${runs}`} ${name.padEnd(14)} ${wall.toFixed(2)} s  ${rec.peakRssMB.toFixed(0)} MB  cpu ${(user + sys).toFixed(2)} s  etcd ${rec.etcdCpu.toFixed(2)} s  others ${otherCpu.toFixed(2)} s (kernel ${otherSys.toFixed(2)} irq ${m.irq.toFixed(2)} steal ${m.steal.toFixed(2)})  stored ${(stored / MiB).toFixed(1)} MiB${rec.mismatch ? '  ' + rec.mismatch : ''}${rec.noisy ? '  NOISY' : ''}`);
      return rec;
    };

    for (let round = -warm; round < runs; round++) {
      // Rotate the order each round so no case always follows the same one.
      const order = cases.map((_, i) => cases[(i + Math.max(0, round)) % cases.length]);
      for (const name of order) {
        for (let attempt = 1; ; attempt++) {
          const rec = await measureOnce(name, round);
          rec.attempt = attempt;
          if (rec.noisy && attempt <= retries) {
            discarded.push(rec);
            continue;
          }
          results.push(rec);
          break;
        }
      }
    }
    await cleanup();

    // Summary.
    const measured = results.filter((r) => !r.warmup);
    const byCase = (c) => measured.filter((r) => r.case === c);
    const base = cases.includes('etcdctl') ? median(byCase('etcdctl').map((r) => r.wall)) : undefined;
    const summary = {};
    for (const c of cases) {
      const rs = byCase(c);
      const walls = rs.map((r) => r.wall);
      // Paired ratio: each run against etcdctl's run in the same round (less sensitive to drift).
      const paired = base === undefined ? [] : rs.map((r) => r.wall / byCase('etcdctl').find((e) => e.round === r.round).wall);
      summary[c] = {
        runs: rs.length,
        wallMedian: median(walls), wallMin: Math.min(...walls), wallMax: Math.max(...walls),
        ratio: base ? median(walls) / base : undefined,
        pairedRatioMedian: paired.length ? median(paired) : undefined,
        rssMedianMB: median(rs.map((r) => r.peakRssMB)), rssMaxMB: Math.max(...rs.map((r) => r.peakRssMB)),
        cpuMedian: median(rs.map((r) => r.userCpu + r.sysCpu)),
        etcdCpuMedian: median(rs.map((r) => r.etcdCpu)),
        otherCpuMedian: median(rs.map((r) => r.otherCpu)), otherCpuMax: Math.max(...rs.map((r) => r.otherCpu)),
        otherSysMedian: median(rs.map((r) => r.otherSys)), irqMedian: median(rs.map((r) => r.irq)), stealMedian: median(rs.map((r) => r.steal)),
        storedMiB: median(rs.map((r) => r.stored)) / MiB,
        throughputMiBs: st.dbSize / MiB / median(walls),
      };
    }
    const verdicts = {};
    if (summary.none?.ratio) verdicts['none local <= 1.05x etcdctl'] = summary.none.ratio <= TARGETS.none;
    if (summary['zstd-age-s3']?.ratio) verdicts['zstd+age to MinIO <= 1.15x etcdctl'] = summary['zstd-age-s3'].ratio <= TARGETS['zstd-age-s3'];
    for (const c of baseCases.filter((x) => x !== 'etcdctl')) verdicts[`${c} peak RSS <= 128 MB`] = summary[c].rssMaxMB <= TARGETS.rssMB;

    const pad = (s, n) => String(s).padEnd(n);
    const f2 = (x) => (x === undefined ? '-' : x.toFixed(2));
    console.log(`\netcd ${st.version}, db ${(st.dbSize / MiB).toFixed(0)} MiB (${(st.dbSize / 1e9).toFixed(2)} GB), ${st.keys} keys; ${runs} runs per case, alternating; ${cpus().length} CPUs`);
    const w = Math.max(13, ...cases.map((c) => c.length + 2));
    console.log(`${pad('case', w)}${pad('wall med', 10)}${pad('min', 8)}${pad('max', 8)}${pad('ratio', 7)}${pad('paired', 8)}${pad('RSS med', 9)}${pad('RSS max', 9)}${pad('cpu s', 7)}${pad('etcd s', 8)}${pad('others s', 10)}${pad('steal s', 9)}stored MiB`);
    for (const c of cases) {
      const s = summary[c];
      console.log(`${pad(c, w)}${pad(f2(s.wallMedian), 10)}${pad(f2(s.wallMin), 8)}${pad(f2(s.wallMax), 8)}${pad(f2(s.ratio), 7)}${pad(f2(s.pairedRatioMedian), 8)}${pad(s.rssMedianMB.toFixed(0), 9)}${pad(s.rssMaxMB.toFixed(0), 9)}${pad(f2(s.cpuMedian), 7)}${pad(f2(s.etcdCpuMedian), 8)}${pad(f2(s.otherCpuMedian), 10)}${pad(f2(s.stealMedian), 9)}${s.storedMiB.toFixed(1)}`);
    }
    console.log('\nMarkdown:\n');
    console.log('| case | wall median s | min | max | ratio to etcdctl (medians) | median paired ratio | peak RSS median MB | max MB | CPU s (user+sys) | etcd CPU s | other processes user CPU s | steal s | stored MiB |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const c of cases) {
      const s = summary[c];
      console.log(`| ${c} | ${f2(s.wallMedian)} | ${f2(s.wallMin)} | ${f2(s.wallMax)} | ${f2(s.ratio)} | ${f2(s.pairedRatioMedian)} | ${s.rssMedianMB.toFixed(0)} | ${s.rssMaxMB.toFixed(0)} | ${f2(s.cpuMedian)} | ${f2(s.etcdCpuMedian)} | ${f2(s.otherCpuMedian)} | ${f2(s.stealMedian)} | ${s.storedMiB.toFixed(1)} |`);
    }
    console.log('');
    for (const [k, v] of Object.entries(verdicts)) console.log(`${v ? 'MET   ' : 'MISSED'} ${k}`);
    const noisyKept = measured.filter((r) => r.noisy).length;
    console.log(`${discarded.length} noisy runs re-run; ${noisyKept} kept although noisy (other processes > ${maxNoise} CPU)`);
    const mismatches = measured.filter((r) => r.mismatch);
    if (mismatches.length) console.log(`WARNING: ${mismatches.length} lifeboat runs stored a payload whose size differs from etcdctl's file`);

    const out = {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memGiB: +(totalmem() / 1024 ** 3).toFixed(1), node: process.version },
      etcd: { ...st, binary: bins.etcd, etcdctl: bins.etcdctl },
      fill: fillStats,
      lifeboat: opt.lifeboat,
      variants,
      nodeArgs: opt['node-args'],
      lifeboatStartupSeconds: startup,
      options: opt,
      summary,
      verdicts,
      runs: results,
      discarded,
    };
    const jsonFile = opt.json ?? join(resolve(opt.work), `etcd-snapshot-${out.date.replace(/[:.]/g, '-')}.json`);
    await writeFile(jsonFile, JSON.stringify(out, null, 2));
    console.log(`results: ${jsonFile}`);
  } finally {
    await stopProcess(etcd?.child);
    await stopProcess(minio?.child);
    minio?.s3.destroy();
    await rm(work, { recursive: true, force: true });
    if (!opt['data-dir']) log('removed the filled db (pass --data-dir to keep it)');
  }
}

await main();
