#!/usr/bin/env node
// Benchmark: `lifeboat resources dump` and `lifeboat resources restore` on the rig's real control
// plane, against a raw paginated list and `kubectl` (the rig's, same version as the API server),
// alternating in the same run. Every run goes through GNU time (peak RSS); wall time is hrtime.
//
//   npm run build && bash test/rig/build.sh
//   node bench/resources.mjs                                   # dumps at 20k and 100k, restore of 10k
//   node bench/resources.mjs --objects 100000 --runs 5 --restore-objects 0
//   node bench/resources.mjs --serve                           # start and fill a cluster, print its kubeconfig, wait
//   node bench/resources.mjs --serve --apiserver-profiling     # the same, with the API server's /debug/pprof on
//   node bench/resources.mjs --kubeconfig FILE ...             # measure against that cluster instead
//   node bench/resources.mjs raw-list --kubeconfig FILE [--page-size 500] [--parse]   # the raw baseline alone
//   node bench/resources.mjs raw-create --kubeconfig FILE --file OBJECTS.jsonl [--concurrency 16]
//
// Dump: ConfigMaps of 1-4 KB (Helm-like labels, 1-3 data files of YAML, properties or nginx-like
// text) spread evenly over --namespaces namespaces lbd-00..; each --objects count in turn (filling
// up to it), the cases alternate, rotating the order each round:
//   lifeboat  `lifeboat resources dump --include-resources configmaps --include-namespaces <them> --store DIR` (zstd)
//   raw       this script's raw-list: GET /api/v1/configmaps?limit=<page size>&continue=..., keep-alive, the
//             body read and dropped (the continue token is taken from the list's metadata, which comes first)
//   raw-json  the same, each page parsed with JSON.parse (the least any client does with a list)
//   kubectl   `kubectl get configmaps -A --chunk-size=<page size> -o json > /dev/null`
// Restore: --restore-objects ConfigMaps in namespaces lbr-00.. are dumped once by lifeboat (with a
// label selector: only the bench's objects), and the archive is extracted for kubectl (index.json
// left out, as it is no object; uid, resourceVersion and creationTimestamp removed, as the API
// server does not create objects that name them). Before each run every one of those ConfigMaps is deleted (one
// deletecollection per namespace; the namespaces stay, empty), then:
//   lifeboat  `lifeboat resources restore ID --store DIR`
//   kubectl   `kubectl apply --server-side -R -f TREE`
//   raw       this script's raw-create: the same objects, read from one JSON-lines file, one POST each,
//             --restore-concurrency at a time (16: lifeboat's default) over keep-alive TLS, the answer parsed;
//             the least an API client can do, so kubectl's time over its time is the most any client gets here
// and the objects are counted afterwards.
//
// Options: --objects 20000,100000  --namespaces 100  --restore-objects 10000 (0: no restore)
//          --runs 3  --warmup 1  --page-size 500  --dump-cases lifeboat,raw,raw-json,kubectl
//          --dump-listing namespaces|cluster (lifeboat given the namespaces' names, which it lists one by
//          one, or the glob lbd-*, which it lists cluster-wide like the raw list)
//          --restore-cases lifeboat,kubectl,raw  --restore-concurrency 16  --lifeboat DIR/bin/run.js  --variant NAME=DIR/bin/run.js (another
//          build, bench/build-at.sh, measured as lifeboat@NAME in the same alternation)  --node-args "..." (for lifeboat,
//          e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof")  --quiet-wait S (30)  --max-noise CPUS (0.3)
//          --json FILE  --startup (also measure `node`, importing @kubernetes/client-node, `lifeboat --version`)
// Noise: before each run the script waits up to --quiet-wait seconds for two seconds in which other
// processes (not the control plane, not this script) used less than --max-noise CPUs; for every run
// it records the CPU the others used meanwhile and the load average before and after.
import { spawn } from 'node:child_process';
import { createReadStream, openSync, closeSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { loadavg, tmpdir, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const sub = process.argv[2] && !process.argv[2].startsWith('-') ? process.argv[2] : undefined;
const { values: opt } = parseArgs({
  args: process.argv.slice(sub ? 3 : 2),
  options: {
    objects: { type: 'string', default: '20000,100000' },
    namespaces: { type: 'string', default: '100' },
    'restore-objects': { type: 'string', default: '10000' },
    runs: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    'page-size': { type: 'string', default: '500' },
    'dump-listing': { type: 'string', default: 'namespaces' },
    'dump-cases': { type: 'string', default: 'lifeboat,raw,raw-json,kubectl' },
    'restore-cases': { type: 'string', default: 'lifeboat,kubectl,raw' },
    'restore-concurrency': { type: 'string', default: '16' },
    lifeboat: { type: 'string', default: join(repo, 'bin/run.js') },
    'node-args': { type: 'string', default: '' },
    variant: { type: 'string', multiple: true, default: [] },
    'quiet-wait': { type: 'string', default: '30' },
    'max-noise': { type: 'string', default: '0.3' },
    kubeconfig: { type: 'string' },
    serve: { type: 'boolean', default: false },
    'apiserver-profiling': { type: 'boolean', default: false },
    startup: { type: 'boolean', default: false },
    json: { type: 'string' },
    // raw-list
    path: { type: 'string', default: '/api/v1/configmaps' },
    parse: { type: 'boolean', default: false },
    // raw-create
    file: { type: 'string' },
    concurrency: { type: 'string', default: '16' },
  },
});
const PAGE = Number(opt['page-size']);
if (!['namespaces', 'cluster'].includes(opt['dump-listing'])) throw new Error('--dump-listing is namespaces or cluster');
const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** POSTs a ConfigMap, again after a 429 or 5xx (up to `tries` times); resolves with the answer whose status is in `ok`. */
async function postConfigMap(api, ns, name, body, { tries, ok = [201] }) {
  for (let attempt = 1; ; attempt++) {
    const r = await api.call('POST', `/api/v1/namespaces/${ns}/configmaps`, body);
    if (ok.includes(r.status)) return r;
    if (attempt >= tries || !(r.status === 429 || r.status >= 500)) throw new Error(`creating ${ns}/${name}: ${r.status} ${r.text.slice(0, 300)}`);
    await sleep(200 * attempt);
  }
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

// ---------------------------------------------------------------------------------------------
// A minimal API client: the kubeconfig's server and client certificate (or token), keep-alive
// ---------------------------------------------------------------------------------------------

async function kubeAccess(file) {
  const text = await readFile(file, 'utf8');
  let kc;
  try {
    kc = JSON.parse(text);
  } catch {
    kc = (await import('yaml')).parse(text);
  }
  const ctx = kc.contexts.find((c) => c.name === kc['current-context']).context;
  const cluster = kc.clusters.find((c) => c.name === ctx.cluster).cluster;
  const user = kc.users.find((u) => u.name === ctx.user).user;
  const data = (k) => (user[`${k}-data`] ? Buffer.from(user[`${k}-data`], 'base64') : user[k] ? readFileSync(user[k]) : undefined);
  const ca = cluster['certificate-authority-data'] ? Buffer.from(cluster['certificate-authority-data'], 'base64') : cluster['certificate-authority'] ? readFileSync(cluster['certificate-authority']) : undefined;
  const tls = cluster.server.startsWith('https:');
  const agent = tls
    ? new Agent({ keepAlive: true, maxSockets: 64, ca, cert: data('client-certificate'), key: data('client-key'), rejectUnauthorized: !cluster['insecure-skip-tls-verify'] })
    : new HttpAgent({ keepAlive: true, maxSockets: 64 });
  const headers = user.token ? { Authorization: `Bearer ${user.token}` } : {};
  const send = tls ? request : httpRequest;
  /**
   * One request; the body is handed to onData when given (streamed), else returned as text. A
   * kept-alive socket the server closed while idle (during a long run of another case) fails with
   * ECONNRESET when reused: the request is sent again on a new one.
   */
  const call = (method, path, body, extra = {}, onData, retried = false) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
      const req = send(new URL(cluster.server.replace(/\/+$/, '') + path), {
        method,
        agent,
        headers: { Accept: 'application/json', ...headers, ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}), ...extra },
      }, (res) => {
        const chunks = [];
        res.on('data', (c) => (onData ? onData(c) : chunks.push(c)));
        res.on('end', () => resolve({ status: res.statusCode, text: onData ? '' : Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('error', (err) => {
        if (!retried && req.reusedSocket && err.code === 'ECONNRESET') resolve(call(method, path, body, extra, onData, true));
        else reject(err);
      });
      req.end(payload);
    });
  const json = async (method, path, body, extra) => {
    const r = await call(method, path, body, extra);
    return { status: r.status, body: r.text ? JSON.parse(r.text) : undefined };
  };
  return { server: cluster.server, call, json, close: () => agent.destroy() };
}

// ---------------------------------------------------------------------------------------------
// raw-list: the baseline, a process of its own (run under GNU time like the others)
// ---------------------------------------------------------------------------------------------

if (sub === 'raw-list') {
  const api = await kubeAccess(opt.kubeconfig);
  let cont;
  let pages = 0;
  let bytes = 0;
  let items = 0;
  do {
    // The list's metadata (with the continue token) comes before its items: keep the first KiB.
    let head = '';
    const chunks = [];
    const path = `${opt.path}?limit=${PAGE}${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`;
    const r = await api.call('GET', path, undefined, {}, (c) => {
      bytes += c.length;
      if (opt.parse) chunks.push(c);
      else if (head.length < 1024) head += c.toString('latin1', 0, Math.min(c.length, 1024));
    });
    if (r.status !== 200) throw new Error(`GET ${path}: ${r.status}`);
    if (opt.parse) {
      const page = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      items += page.items.length;
      cont = page.metadata.continue || undefined;
    } else {
      const m = /"metadata":\{[^{}]*?"continue":"([^"]*)"/.exec(head);
      cont = m?.[1] || undefined;
    }
    pages++;
  } while (cont);
  api.close();
  console.log(JSON.stringify({ pages, bytes, ...(opt.parse ? { items } : {}) }));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// raw-create: the restore's baseline, the objects of a JSON-lines file POSTed to their collections
// ---------------------------------------------------------------------------------------------

if (sub === 'raw-create') {
  const api = await kubeAccess(opt.kubeconfig);
  const lines = readFileSync(opt.file, 'utf8').split('\n').filter(Boolean);
  let next = 0;
  await Promise.all(Array.from({ length: Number(opt.concurrency) }, async () => {
    while (next < lines.length) {
      const body = lines[next++];
      const { metadata, apiVersion, kind } = JSON.parse(body);
      if (apiVersion !== 'v1' || kind !== 'ConfigMap') throw new Error(`raw-create posts ConfigMaps only, not ${apiVersion} ${kind}`);
      JSON.parse((await postConfigMap(api, metadata.namespace, metadata.name, body, { tries: 7 })).text);
    }
  }));
  api.close();
  console.log(JSON.stringify({ created: lines.length }));
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// ConfigMaps of 1-4 KB, deterministic per (namespace, index)
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
const WORDS = ('api auth backend batch billing broker cache catalog checkout config cron data db default dns edge email events '
  + 'feature frontend gateway grafana graph search identity ingest inventory jobs kafka ledger loki metrics mongo monitor nats '
  + 'notify orders payments pipeline postgres prometheus proxy queue rabbit redis registry render report router scheduler '
  + 'session shipping sidecar storage stream sync tempo tenant thanos token tracing upload users vault web worker').split(' ');
const KEYS = ('enabled timeout retries maxConnections poolSize logLevel port host path interval threshold replicas bufferSize '
  + 'batchSize ttl region bucket endpoint username database schema topic partitions cacheSize workers concurrency '
  + 'readTimeout writeTimeout idleTimeout keepAlive compression format level rotation maxAge maxBackups').split(' ');
const TEAMS = ['platform', 'payments', 'search', 'data', 'identity', 'growth', 'infra', 'ml', 'mobile', 'security'];
const ENVS = ['prod', 'staging', 'dev', 'qa', 'perf'];

/** A ConfigMap to POST: name cm-<index>, ~1-4 KB once the API server adds its metadata. */
function configMap(ns, index, label) {
  const rand = prng((index + 1) * 7919 + [...ns].reduce((h, c) => (h * 31 + c.charCodeAt(0)) | 0, 17));
  const int = (n) => Math.floor(rand() * n);
  const pick = (a) => a[int(a.length)];
  const hex = (n) => {
    let s = '';
    while (s.length < n) s += ((rand() * 0x100000000) >>> 0).toString(16).padStart(8, '0');
    return s.slice(0, n);
  };
  const scalar = () => {
    switch (int(8)) {
      case 0: return String(int(100000));
      case 1: return pick(['true', 'false']);
      case 2: return `${pick(WORDS)}-${pick(WORDS)}.${ns}.svc.cluster.local:${pick([80, 443, 5432, 6379, 8080, 9090, 9092])}`;
      case 3: return `${int(120)}s`;
      case 4: return `"${pick(WORDS)} ${pick(WORDS)} ${pick(WORDS)}"`;
      case 5: return pick(['info', 'debug', 'warn', 'error']);
      case 6: return `https://${pick(WORDS)}.example.com/${pick(WORDS)}/v${int(4)}/${hex(6)}`;
      default: return (rand() * 100).toFixed(2);
    }
  };
  const configText = (target) => {
    const style = int(3);
    const lines = [];
    let len = 0;
    let depth = 0;
    while (len < target) {
      let line;
      if (style === 0) {
        if (depth < 3 && rand() < 0.2) line = `${'  '.repeat(depth++)}${pick(WORDS)}:`;
        else {
          if (depth > 0 && rand() < 0.15) depth--;
          line = `${'  '.repeat(depth)}${pick(KEYS)}: ${scalar()}`;
        }
      } else if (style === 1) {
        line = `${pick(WORDS)}.${pick(WORDS)}.${pick(KEYS)}=${scalar().replaceAll('"', '')}`;
      } else {
        line = rand() < 0.3
          ? `location /${pick(WORDS)}/v${int(3)}/ {\n    proxy_pass http://${pick(WORDS)}-${pick(WORDS)}:${pick([80, 8080, 3000])};\n    proxy_read_timeout ${int(300)}s;\n}`
          : `${pick(['proxy_set_header', 'add_header', 'set', 'client_max_body_size'])} ${pick(KEYS)} ${scalar()};`;
      }
      lines.push(line);
      len += line.length + 1;
    }
    return lines.join('\n');
  };
  const app = pick(WORDS);
  // The API server adds uid, resourceVersion, creationTimestamp and managedFields (~450 bytes).
  const target = 1024 + int(3072) - 700;
  const files = 1 + int(3);
  const data = {};
  for (let i = 0; i < files; i++) data[`${pick(WORDS)}.${pick(['yaml', 'properties', 'conf', 'json', 'ini'])}`] = configText(Math.max(80, target / files));
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `cm-${String(index).padStart(5, '0')}`,
      namespace: ns,
      labels: { 'lifeboat-bench': label, 'app.kubernetes.io/name': app, 'app.kubernetes.io/part-of': pick(TEAMS), 'app.kubernetes.io/managed-by': 'Helm', 'helm.sh/chart': `${app}-${int(5)}.${int(20)}.${int(10)}` },
      annotations: { 'meta.helm.sh/release-name': `${app}-${pick(ENVS)}`, 'meta.helm.sh/release-namespace': ns },
    },
    data,
  };
}

const nsNames = (prefix, n) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
const METADATA_LIST = { Accept: 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1' };

/** Bench ConfigMaps (label lifeboat-bench=LABEL) per namespace, by name. */
async function existing(api, ns, label) {
  const names = new Set();
  let cont;
  do {
    const r = await api.json('GET', `/api/v1/namespaces/${ns}/configmaps?labelSelector=lifeboat-bench%3D${label}&limit=5000${cont ? `&continue=${encodeURIComponent(cont)}` : ''}`, undefined, METADATA_LIST);
    if (r.status !== 200) throw new Error(`listing ${ns}: ${r.status}`);
    for (const o of r.body.items ?? []) names.add(o.metadata.name);
    cont = r.body.metadata.continue || undefined;
  } while (cont);
  return names;
}

/** Makes sure every namespace holds cm-00000..cm-<perNs-1> (label LABEL): many POSTs at once. */
async function fill(api, namespaces, perNs, label) {
  const todo = [];
  await Promise.all(namespaces.map(async (ns) => {
    const r = await api.json('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
    if (r.status !== 201 && r.status !== 409) throw new Error(`creating namespace ${ns}: ${r.status}`);
    const have = await existing(api, ns, label);
    for (let i = 0; i < perNs; i++) if (!have.has(`cm-${String(i).padStart(5, '0')}`)) todo.push([ns, i]);
  }));
  if (!todo.length) return;
  log(`creating ${todo.length} ConfigMaps in ${namespaces[0]}..${namespaces.at(-1)}...`);
  const t0 = Date.now();
  let next = 0;
  let done = 0;
  let bytes = 0;
  const tick = setInterval(() => log(`  ${done}/${todo.length} (${Math.round(done / ((Date.now() - t0) / 1000))}/s)`), 10_000);
  await Promise.all(Array.from({ length: 48 }, async () => {
    while (next < todo.length) {
      const [ns, i] = todo[next++];
      const body = JSON.stringify(configMap(ns, i, label));
      bytes += body.length;
      await postConfigMap(api, ns, `cm-${i}`, body, { tries: 12, ok: [201, 409] });
      done++;
    }
  }));
  clearInterval(tick);
  const s = (Date.now() - t0) / 1000;
  log(`created ${todo.length} in ${s.toFixed(1)} s (${Math.round(todo.length / s)}/s, ${Math.round(bytes / todo.length)} bytes each as sent)`);
}

// ---------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------

const HZ = 100;
function cpuBusy() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq] = f;
  return (user + nice + system + irq + softirq) / HZ;
}
function procCpu(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / HZ;
  } catch {
    return 0;
  }
}
let rigPids = {};
const ownCpu = () => procCpu(process.pid) + Object.values(rigPids).reduce((n, pid) => n + procCpu(pid), 0);

/** Waits up to --quiet-wait s for 2 s in a row in which others used < --max-noise CPUs. */
async function waitQuiet() {
  const limit = Number(opt['quiet-wait']);
  if (!(limit > 0)) return 0;
  const t0 = Date.now();
  let quiet = 0;
  while ((Date.now() - t0) / 1000 < limit && quiet < 2) {
    const a = cpuBusy() - ownCpu();
    await sleep(1000);
    const used = cpuBusy() - ownCpu() - a;
    quiet = used < Number(opt['max-noise']) ? quiet + 1 : 0;
  }
  return (Date.now() - t0) / 1000;
}

let work;
/** Runs a command under GNU time: wall (hrtime), peak RSS, CPU of the tool, of the API server + etcd, of others. */
async function timed(cmd, args, { stdout = 'pipe', env } = {}) {
  const tf = join(work, 'time.txt');
  const quietWait = await waitQuiet();
  const load1 = loadavg()[0];
  const cp0 = (rigPids['kube-apiserver'] ? procCpu(rigPids['kube-apiserver']) : 0) + (rigPids.etcd ? procCpu(rigPids.etcd) : 0);
  const busy0 = cpuBusy();
  const own0 = ownCpu();
  const outFd = stdout === 'null' ? openSync('/dev/null', 'w') : undefined;
  const t0 = process.hrtime.bigint();
  const { code, out, err } = await new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', '%e %M %U %S', '-o', tf, cmd, ...args], { stdio: ['ignore', outFd ?? 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err = (err + d).slice(-20000)));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, out, err }));
  });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (outFd !== undefined) closeSync(outFd);
  const busy = cpuBusy() - busy0;
  const own = ownCpu() - own0;
  const cp = (rigPids['kube-apiserver'] ? procCpu(rigPids['kube-apiserver']) : 0) + (rigPids.etcd ? procCpu(rigPids.etcd) : 0) - cp0;
  const [, rssKiB, user, sys] = (await readFile(tf, 'utf8')).trim().split('\n').pop().split(' ').map(Number);
  const toolCpu = user + sys;
  return {
    code, out, err, wall, rssMB: rssKiB / 1024, toolCpu, apiserverEtcdCpu: cp,
    othersCpu: Math.max(0, busy - own - toolCpu), load1Before: load1, load1After: loadavg()[0], quietWait,
  };
}

const nodeArgs = opt['node-args'] ? opt['node-args'].split(/\s+/).filter(Boolean) : [];
const lifeboat = (args) => [process.execPath, [...nodeArgs, opt.lifeboat, ...args]];
// --variant NAME=DIR/bin/run.js [node args]: another build (bench/build-at.sh) as extra cases lifeboat@NAME.
const variants = Object.fromEntries(opt.variant.map((v) => {
  const [name, rest] = [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)];
  const [run, ...args] = rest.split(/\s+/).filter(Boolean);
  return [name, (a) => [process.execPath, [...args, run, ...a]]];
}));
/** The cases lifeboat and lifeboat@NAME, each with its command builder. */
const lifeboats = { lifeboat, ...Object.fromEntries(Object.entries(variants).map(([n, f]) => [`lifeboat@${n}`, f])) };

/** The listed cases, each lifeboat variant after lifeboat. */
function withVariants(list) {
  return list.split(',').filter(Boolean).flatMap((c) => (c === 'lifeboat' ? Object.keys(lifeboats) : [c]));
}

function summarise(results, baseline) {
  const rows = [];
  const base = results[baseline] ? median(results[baseline].map((r) => r.wall)) : undefined;
  for (const [name, runs] of Object.entries(results)) {
    if (!runs.length) continue;
    const walls = runs.map((r) => r.wall);
    const row = {
      case: name,
      medianWall: median(walls),
      minWall: Math.min(...walls),
      maxWall: Math.max(...walls),
      ratio: base ? median(walls) / base : undefined,
      medianRssMB: median(runs.map((r) => r.rssMB)),
      maxRssMB: Math.max(...runs.map((r) => r.rssMB)),
      medianToolCpu: median(runs.map((r) => r.toolCpu)),
      medianApiserverEtcdCpu: median(runs.map((r) => r.apiserverEtcdCpu)),
      medianOthersCpu: median(runs.map((r) => r.othersCpu)),
      walls,
    };
    rows.push(row);
  }
  return rows;
}

/** A Markdown table; speedup: the baseline's time over the case's instead of the ratio. */
function table(title, rows, baseline, { speedup = false } = {}) {
  const f = (x, d = 2) => (x === undefined ? '' : x.toFixed(d));
  const lines = [
    `\n### ${title}\n`,
    `| case | wall median s | runs s | ${speedup ? `${baseline} ÷ case` : `ratio to ${baseline}`} | peak RSS median MB | max MB | tool CPU s | API server + etcd CPU s | others' CPU s |`,
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.case} | ${f(r.medianWall)} | ${r.walls.map((w) => f(w)).join(', ')} | ${f(speedup ? 1 / r.ratio : r.ratio)} | ${f(r.medianRssMB, 0)} | ${f(r.maxRssMB, 0)} | ${f(r.medianToolCpu, 1)} | ${f(r.medianApiserverEtcdCpu, 1)} | ${f(r.medianOthersCpu, 1)} |`),
  ];
  return lines.join('\n');
}

/**
 * Extracts the object entries of a lifeboat resources.tar.zst into DIR (index.json left out), for
 * kubectl: without the uid, resourceVersion and creationTimestamp the archive keeps (lifeboat's
 * restore strips them; kubectl would send them, and the API server refuses to create an object
 * whose uid or resourceVersion is given). The same objects go to JSONL, one per line, for raw-create.
 */
async function extractTree(archive, dir, jsonl) {
  const { DecompressStream } = await import('zstd-napi');
  const { extract } = await import('tar-stream');
  const { parse, stringify } = await import('yaml');
  const ex = extract();
  const input = createReadStream(archive).pipe(new DecompressStream());
  input.pipe(ex);
  let n = 0;
  const lines = [];
  for await (const entry of ex) {
    const chunks = [];
    for await (const c of entry) chunks.push(c);
    if (entry.header.type !== 'file' || entry.header.name === 'index.json') continue;
    const file = join(dir, entry.header.name);
    const obj = parse(Buffer.concat(chunks).toString('utf8'));
    for (const k of ['uid', 'resourceVersion', 'creationTimestamp']) delete obj.metadata[k];
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, stringify(obj));
    lines.push(JSON.stringify(obj));
    n++;
  }
  await writeFile(jsonl, lines.join('\n') + '\n');
  return n;
}

async function countLabelled(api, namespaces, label) {
  let n = 0;
  for (const ns of namespaces) n += (await existing(api, ns, label)).size;
  return n;
}

async function main() {
  work = await mkdtemp(join(tmpdir(), 'lifeboat-bench-resources-'));
  let cluster;
  let kubeconfig = opt.kubeconfig;
  let kubectlBin;
  let version;
  const { build } = await import('rolldown');
  const rigFile = join(repo, 'bench', `.kube-rig-${process.pid}.tmp.mjs`);
  await build({ input: join(repo, 'test/rig/kube.ts'), platform: 'node', external: [/^node:/, /^[a-z@]/], output: { file: rigFile, format: 'esm' }, write: true });
  const rig = await import(rigFile);
  await rm(rigFile, { force: true });
  kubectlBin = rig.readKubeRig().bins.kubectl;
  if (kubeconfig) {
    // A cluster started by --serve: its processes, to tell their CPU from others'.
    try {
      rigPids = JSON.parse(await readFile(join(dirname(kubeconfig), 'bench-pids.json'), 'utf8'));
    } catch {
      rigPids = {};
    }
  } else {
    log('starting the control plane...');
    // --apiserver-profiling: /debug/pprof on the API server (the rig turns it off), to see where its CPU goes.
    cluster = await rig.startKubeCluster(opt['apiserver-profiling'] ? { extraArgs: { apiserver: ['--profiling=true'] } } : {});
    kubeconfig = cluster.kubeconfig;
    rigPids = cluster.pids;
    version = cluster.version;
  }
  const stopAll = async () => {
    await cluster?.stop();
    await rm(work, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  const api = await kubeAccess(kubeconfig);
  version ??= (await api.json('GET', '/version')).body.gitVersion;
  const RUNS = Number(opt.runs);
  const WARMUP = Number(opt.warmup);
  const NS = Number(opt.namespaces);
  const report = {
    date: new Date().toISOString(), kubernetes: version, node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model,
    pageSize: PAGE, runs: RUNS, warmup: WARMUP, lifeboat: opt.lifeboat, nodeArgs, loadBefore: loadavg(), dump: [], restore: undefined, startup: undefined,
  };
  try {
    const dumpNs = nsNames('lbd', NS);
    const scales = opt.objects ? opt.objects.split(',').filter(Boolean).map(Number).sort((a, b) => a - b) : [];
    const restoreObjects = Number(opt['restore-objects']);
    const restoreNs = nsNames('lbr', Math.min(NS, Math.max(1, Math.ceil(restoreObjects / 100))));

    if (opt.serve) {
      if (scales.length) await fill(api, dumpNs, Math.ceil(scales.at(-1) / NS), 'dump');
      if (restoreObjects) await fill(api, restoreNs, Math.ceil(restoreObjects / restoreNs.length), 'restore');
      await writeFile(join(dirname(kubeconfig), 'bench-pids.json'), JSON.stringify(rigPids));
      console.log(kubeconfig);
      log(`serving; kubectl: ${kubectlBin}; Ctrl-C stops the cluster`);
      await new Promise(() => {});
    }

    if (opt.startup) {
      const cases = {
        node: () => [process.execPath, ['-e', '0']],
        'import-client-node': () => [process.execPath, ['--input-type=module', '-e', "await import('@kubernetes/client-node')"]],
        'lifeboat-version': () => lifeboat(['--version']),
      };
      const results = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
      for (let i = 0; i < RUNS + WARMUP; i++) {
        for (const [name, mk] of Object.entries(cases)) {
          const [cmd, args] = mk();
          const r = await timed(cmd, args);
          if (r.code !== 0) throw new Error(`${name} failed: ${r.err.slice(-2000)}`);
          if (i >= WARMUP) results[name].push(r);
        }
      }
      report.startup = summarise(results, 'node');
      console.log(table('start-up', report.startup, 'node'));
    }

    for (const total of scales) {
      const perNs = Math.ceil(total / NS);
      await fill(api, dumpNs, perNs, 'dump');
      const present = await countLabelled(api, dumpNs, 'dump');
      if (present < perNs * NS) throw new Error(`expected ${perNs * NS} bench ConfigMaps, found ${present}`);
      // More than this scale (left from a larger fill): the dump covers only as many namespaces as needed.
      if (present > perNs * NS) log(`note: ${present} bench ConfigMaps present; the dump covers them all`);
      const cases = withVariants(opt['dump-cases']);
      const store = join(work, 'dump-store');
      // namespaces: the names, which lifeboat lists one by one; cluster: a glob, so lifeboat lists
      // all ConfigMaps cluster-wide (as raw and kubectl do) and keeps those of the bench's namespaces.
      const nsArg = opt['dump-listing'] === 'cluster' ? 'lbd-*' : dumpNs.join(',');
      const dumpArgs = () => ['resources', 'dump', '--kubeconfig', kubeconfig, '--include-resources', 'configmaps', '--include-namespaces', nsArg, '--page-size', String(PAGE), '--store', store, '-o', 'json'];
      const make = {
        ...Object.fromEntries(Object.entries(lifeboats).map(([n, f]) => [n, () => f(dumpArgs())])),
        raw: () => [process.execPath, [fileURLToPath(import.meta.url), 'raw-list', '--kubeconfig', kubeconfig, '--page-size', String(PAGE)]],
        'raw-json': () => [process.execPath, [fileURLToPath(import.meta.url), 'raw-list', '--kubeconfig', kubeconfig, '--page-size', String(PAGE), '--parse']],
        kubectl: () => [kubectlBin, ['--kubeconfig', kubeconfig, 'get', 'configmaps', '-A', `--chunk-size=${PAGE}`, '-o', 'json']],
      };
      const results = Object.fromEntries(cases.map((c) => [c, []]));
      for (let round = 0; round < RUNS + WARMUP; round++) {
        const order = cases.map((_, i) => cases[(i + round) % cases.length]);
        for (const c of order) {
          const [cmd, args] = make[c]();
          const r = await timed(cmd, args, { stdout: c === 'kubectl' ? 'null' : 'pipe' });
          if (r.code !== 0) throw new Error(`${c} failed (${r.code}): ${r.err.slice(-3000)}`);
          let detail = '';
          if (c.startsWith('lifeboat')) {
            const res = JSON.parse(r.out);
            // Plus each namespace's kube-root-ca.crt.
            if (res.index.objects < present || res.index.objects > present + NS) throw new Error(`lifeboat dumped ${res.index.objects} objects, expected ${present} (+ ${NS} kube-root-ca.crt)`);
            r.storedBytes = res.manifest.objects[0].size;
            r.payloadBytes = res.manifest.objects[0].payload?.size;
            detail = `, ${res.index.objects} objects, tar ${(r.payloadBytes / 1048576).toFixed(0)} MiB -> ${(r.storedBytes / 1048576).toFixed(1)} MiB`;
            await rm(store, { recursive: true, force: true });
          } else if (c.startsWith('raw')) {
            const res = JSON.parse(r.out);
            r.listBytes = res.bytes;
            detail = `, ${res.pages} pages, ${(res.bytes / 1048576).toFixed(0)} MiB${res.items !== undefined ? `, ${res.items} items` : ''}`;
          }
          if (round >= WARMUP) results[c].push(r);
          log(`${total} ${round < WARMUP ? 'warm-up ' : ''}${c.padEnd(8)} ${r.wall.toFixed(2)} s, ${r.rssMB.toFixed(0)} MB, cpu ${r.toolCpu.toFixed(1)} s, apiserver+etcd ${r.apiserverEtcdCpu.toFixed(1)} s, others ${r.othersCpu.toFixed(1)} s, load ${r.load1Before.toFixed(1)}->${r.load1After.toFixed(1)}${detail}`);
          for (const k of ['out', 'err']) delete r[k];
        }
      }
      const rows = summarise(results, cases.includes('raw') ? 'raw' : cases[0]);
      report.dump.push({ objects: present, namespaces: NS, rows, runs: results });
      console.log(table(`dump, ${present} ConfigMaps in ${NS} namespaces, page size ${PAGE}`, rows, 'raw'));
    }

    if (restoreObjects > 0) {
      const perNs = Math.ceil(restoreObjects / restoreNs.length);
      await fill(api, restoreNs, perNs, 'restore');
      const n = perNs * restoreNs.length;
      const store = join(work, 'restore-store');
      log('dumping the restore set...');
      const d = await timed(...lifeboat(['resources', 'dump', '--kubeconfig', kubeconfig, '--include-resources', 'configmaps', '--include-namespaces', restoreNs.join(','), '--selector', 'lifeboat-bench=restore', '--store', store, '-o', 'json']));
      if (d.code !== 0) throw new Error(`dump failed: ${d.err.slice(-3000)}`);
      const dumped = JSON.parse(d.out);
      if (dumped.index.objects !== n) throw new Error(`dumped ${dumped.index.objects}, expected ${n}`);
      const id = dumped.manifest.id;
      const tree = join(work, 'tree');
      const jsonl = join(work, 'objects.jsonl');
      const entries = await extractTree(join(store, 'resources', id, dumped.manifest.objects[0].name), tree, jsonl);
      log(`archive ${id}: ${entries} objects, extracted to ${tree} (${(await readdir(join(tree, 'core', 'configmaps'))).length} namespace dirs)`);
      const reset = async () => {
        await Promise.all(restoreNs.map(async (ns) => {
          const r = await api.call('DELETE', `/api/v1/namespaces/${ns}/configmaps?labelSelector=lifeboat-bench%3Drestore`);
          if (r.status !== 200) throw new Error(`deletecollection in ${ns}: ${r.status} ${r.text.slice(0, 300)}`);
        }));
        const left = await countLabelled(api, restoreNs, 'restore');
        if (left !== 0) throw new Error(`${left} ConfigMaps left after deletecollection`);
      };
      const cases = withVariants(opt['restore-cases']);
      const make = {
        ...Object.fromEntries(Object.entries(lifeboats).map(([n, f]) => [n, () => f(['resources', 'restore', id, '--kubeconfig', kubeconfig, '--store', store, '--concurrency', opt['restore-concurrency'], '-o', 'json'])])),
        kubectl: () => [kubectlBin, ['--kubeconfig', kubeconfig, 'apply', '--server-side', '-R', '-f', tree]],
        raw: () => [process.execPath, [fileURLToPath(import.meta.url), 'raw-create', '--kubeconfig', kubeconfig, '--file', jsonl, '--concurrency', opt['restore-concurrency']]],
      };
      const results = Object.fromEntries(cases.map((c) => [c, []]));
      for (let round = 0; round < RUNS + WARMUP; round++) {
        const order = cases.map((_, i) => cases[(i + round) % cases.length]);
        for (const c of order) {
          await reset();
          const [cmd, args] = make[c]();
          const r = await timed(cmd, args, { stdout: c === 'kubectl' ? 'null' : 'pipe' });
          if (r.code !== 0) throw new Error(`${c} failed (${r.code}): ${r.err.slice(-3000)}`);
          const restored = await countLabelled(api, restoreNs, 'restore');
          if (restored !== n) throw new Error(`${c}: ${restored} objects after the restore, expected ${n}`);
          if (c.startsWith('lifeboat')) {
            const rep = JSON.parse(r.out);
            if (rep.counts.created !== n) throw new Error(`lifeboat created ${rep.counts.created}, expected ${n}`);
          }
          if (round >= WARMUP) results[c].push(r);
          log(`restore ${round < WARMUP ? 'warm-up ' : ''}${c.padEnd(8)} ${r.wall.toFixed(2)} s, ${r.rssMB.toFixed(0)} MB, cpu ${r.toolCpu.toFixed(1)} s, apiserver+etcd ${r.apiserverEtcdCpu.toFixed(1)} s, others ${r.othersCpu.toFixed(1)} s, load ${r.load1Before.toFixed(1)}->${r.load1After.toFixed(1)}`);
          for (const k of ['out', 'err']) delete r[k];
        }
      }
      const rows = summarise(results, 'kubectl');
      report.restore = { objects: n, namespaces: restoreNs.length, rows, runs: results };
      console.log(table(`restore, ${n} ConfigMaps into ${restoreNs.length} emptied namespaces`, rows, 'kubectl', { speedup: true }));
    }
    report.loadAfter = loadavg();
    console.log(`\nload average before ${report.loadBefore.map((x) => x.toFixed(2)).join(' ')}, after ${report.loadAfter.map((x) => x.toFixed(2)).join(' ')}`);
    if (opt.json) await writeFile(opt.json, JSON.stringify(report, null, 2));
  } finally {
    api.close();
    await stopAll();
  }
}

await main();
