#!/usr/bin/env node
// Benchmark: `lifeboat etcd status` / `etcd inspect` against `etcdctl snapshot status` (3.4) and
// `etcdutl snapshot status` (3.5) on a large snapshot. Wall time and peak RSS via /usr/bin/time.
//
//   node bench/etcd-status.mjs [--values 250000] [--size 4096] [--runs 3] [--keep DIR] [--snapshot FILE]
//
// Without --snapshot: starts its own etcd 3.4 (Debian, /usr/bin/etcd) with an 8 GiB quota in a
// temp dir, puts --values ConfigMap-like JSON values of --size bytes through the etcd3 client,
// saves a snapshot with etcdctl, and deletes everything at the end (unless --keep DIR).
// Needs `npm run build` first (runs bin/run.js) and the test rig for etcdutl (rig.json).
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';

const execFileP = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: opt } = parseArgs({
  options: {
    values: { type: 'string', default: '250000' },
    size: { type: 'string', default: '4096' },
    runs: { type: 'string', default: '3' },
    keep: { type: 'string' },
    snapshot: { type: 'string' },
  },
});

const rigFile = join(process.env.LIFEBOAT_RIG_CACHE || join(homedir(), '.cache', 'lifeboat-rig'), 'rig.json');
const rig = existsSync(rigFile) ? JSON.parse(readFileSync(rigFile, 'utf8')) : undefined;
const etcd = '/usr/bin/etcd';
const etcdctl = rig?.etcd34?.etcdctl ?? '/usr/bin/etcdctl';
const etcdutl = rig?.etcd35?.etcdutl;

async function waitHealthy(url) {
  for (let i = 0; i < 200; i++) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok && (await res.json()).health === 'true') return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('etcd did not become healthy');
}

async function makeSnapshot(dir) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const client = `http://127.0.0.1:${port}`;
  const peer = `http://127.0.0.1:${port + 1}`;
  const child = spawn(etcd, ['--name', 'bench', '--data-dir', join(dir, 'data'), '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `bench=${peer}`,
    '--quota-backend-bytes', '8589934592', '--log-level', 'error'], { stdio: 'ignore' });
  try {
    await waitHealthy(client);
    const c = new Etcd3({ hosts: client });
    const n = Number(opt.values);
    const size = Number(opt.size);
    const pad = 'x'.repeat(size);
    const t0 = Date.now();
    for (let i = 0; i < n; i += 256) {
      await Promise.all(Array.from({ length: Math.min(256, n - i) }, (_, j) => {
        const id = i + j;
        const ns = `ns-${id % 50}`;
        const body = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${id}`, namespace: ns, uid: `${id}` }, data: { 'config.yaml': `${id}:${pad}` } }).slice(0, size);
        return c.put(`/registry/configmaps/${ns}/cm-${id}`).value(body).exec();
      }));
    }
    c.close();
    console.error(`put ${n} values of ${size} B in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const file = join(dir, 'snapshot.db');
    await execFileP(etcdctl, ['--endpoints', client, 'snapshot', 'save', file], { env: { ...process.env, ETCDCTL_API: '3' } });
    return file;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    await rm(join(dir, 'data'), { recursive: true, force: true });
  }
}

/** Runs cmd under /usr/bin/time -v; returns wall seconds, peak RSS MiB and stdout. */
async function measure(cmd, args) {
  const { stdout, stderr } = await execFileP('/usr/bin/time', ['-v', cmd, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 1 << 30 });
  const wall = /Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)/.exec(stderr);
  const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  const seconds = (Number(wall?.[1] ?? 0) * 3600) + Number(wall?.[2] ?? 0) * 60 + Number(wall?.[3] ?? 0);
  return { seconds, rssMiB: Number(rss?.[1] ?? 0) / 1024, stdout: stdout.trim() };
}

// A work dir only when we make the snapshot ourselves; removed at the end unless --keep.
const dir = opt.snapshot ? undefined : (opt.keep ?? (await mkdtemp(join(tmpdir(), 'lifeboat-status-bench-'))));
try {
  const file = opt.snapshot ?? (await makeSnapshot(dir));
  console.log(`snapshot ${file}: ${((await stat(file)).size / 1e6).toFixed(0)} MB`);
  const tools = [
    ['etcdctl 3.4 snapshot status', etcdctl, ['snapshot', 'status', file, '-w', 'json']],
    ...(etcdutl ? [['etcdutl 3.5 snapshot status', etcdutl, ['snapshot', 'status', file, '-w', 'json']]] : []),
    ['lifeboat etcd status', process.execPath, [join(ROOT, 'bin/run.js'), 'etcd', 'status', file, '-o', 'json']],
    ['lifeboat etcd inspect -k', process.execPath, [join(ROOT, 'bin/run.js'), 'etcd', 'inspect', file, '-k', '-o', 'json']],
    ['lifeboat --version (startup)', process.execPath, [join(ROOT, 'bin/run.js'), '--version']],
  ];
  for (const [name, cmd, args] of tools) {
    const runs = [];
    for (let i = 0; i < Number(opt.runs); i++) runs.push(await measure(cmd, args));
    const secs = runs.map((r) => r.seconds.toFixed(2)).join(' ');
    const rss = runs.map((r) => r.rssMiB.toFixed(0)).join(' ');
    const out = runs[0].stdout.startsWith('{"hash"') || runs[0].stdout.startsWith('{\n  "hash"') ? JSON.stringify(JSON.parse(runs[0].stdout)) : '';
    console.log(`${name.padEnd(30)} wall s: ${secs.padEnd(18)} peak RSS MiB: ${rss.padEnd(14)} ${out}`);
  }
} finally {
  if (dir && !opt.keep) await rm(dir, { recursive: true, force: true });
}
