#!/usr/bin/env node
// Micro-benchmark of the pieces of `lifeboat etcd snapshot`, to find where its time goes:
// receiving etcd's Snapshot stream through the etcd3 client (gRPC over HTTP/2) with different
// flow-control windows, and the pipeline stages (sha256, zstd, age, file write) on their own.
//
//   node bench/etcd-snapshot.mjs --data-dir /tmp/lb-etcd-1100 --serve &     # prints the endpoint
//   node bench/etcd-snapshot-recv.mjs --endpoint http://127.0.0.1:PORT [--runs 3] [--modes LIST]
//
// Modes (comma list, default all but the stage-only ones that need --file):
//   recv-default      etcd3 client as lifeboat configures it, bytes counted and dropped
//   recv-win-1m       same with 'grpc-node.flow_control_window' = 1 MiB
//   recv-win-8m       same with 8 MiB
//   recv-win-8m-pipe  8 MiB window, then lifeboat's stages (object->bytes, sha256 x3) to /dev/null
//   recv-default-file, recv-win-8m-file, recv-win-8m-hash-file
//                     receive (and hash once), then write to a file in --dir (default the OS temp
//                     dir) the way lifeboat's file store does (FileHandle stream, fsync at the end)
//   recv-win-8m-file-hwm1m, recv-win-8m-hash-file-hwm1m
//                     the same with a 1 MiB highWaterMark on the file stream (default 16 KiB)
//   etcdctl           `etcdctl snapshot save` (from the rig, 3.5) to a temp file, for reference
//   stage-sha256, stage-zstd3, stage-zstd1, stage-zstd3-mt1, stage-zstd3-mt2, stage-zstd3-mt1-job1m, stage-zstd1-mt1,
//   stage-age, stage-zstd3-age   (need --file SNAPSHOT):
//                     the stage alone over a file read from the page cache
// Each mode reports wall time, MB/s, process CPU (user+sys) and this process's peak RSS so far
// (run one mode per process, --modes X, to see one mode's peak).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { CompressStream } from 'zstd-napi';
import { Encrypter, generateX25519Identity, identityToRecipient } from 'age-encryption';

const { values: opt } = parseArgs({
  options: {
    endpoint: { type: 'string' },
    file: { type: 'string' },
    dir: { type: 'string' },
    runs: { type: 'string', default: '3' },
    modes: { type: 'string' },
  },
});
const MiB = 1024 * 1024;
const rig = JSON.parse(readFileSync(join(process.env.LIFEBOAT_RIG_CACHE || join(homedir(), '.cache', 'lifeboat-rig'), 'rig.json'), 'utf8'));

const sink = () => new Writable({ write: (_c, _e, cb) => cb(), writev: (_c, cb) => cb() });
class Hash extends Transform {
  h = createHash('sha256');
  _transform(c, _e, cb) {
    this.h.update(c);
    cb(null, c);
  }
}
const blobs = () =>
  new Transform({
    writableObjectMode: true,
    transform(msg, _e, cb) {
      cb(null, msg.blob?.length ? msg.blob : undefined);
    },
  });
function ageStream(recipient) {
  const enc = new Encrypter();
  enc.addRecipient(recipient);
  // As lifeboat's encryptor does: Node stream -> web stream -> age -> Node stream.
  return async function* (source) {
    const web = await enc.encrypt(Readable.toWeb(Readable.from(source)));
    for await (const c of Readable.fromWeb(web)) yield Buffer.from(c);
  };
}

function client(win) {
  return new Etcd3({
    hosts: [opt.endpoint],
    grpcOptions: { 'grpc.max_receive_message_length': 64 * MiB, ...(win ? { 'grpc-node.flow_control_window': win } : {}) },
  });
}
/** Writes like lifeboat's file store: a FileHandle write stream that fsyncs before closing. */
async function fileSink(highWaterMark) {
  const file = join(opt.dir ?? tmpdir(), `recv-bench-${process.pid}.out`);
  const handle = await open(file, 'w');
  const out = createWriteStream('', { fd: handle, flush: true, ...(highWaterMark ? { highWaterMark } : {}) });
  out.once('close', () => rmSync(file, { force: true }));
  return out;
}
async function recv(win, stages = [], sinkStream = sink()) {
  const c = client(win);
  try {
    const src = await c.maintenance.snapshot();
    let n = 0;
    const count = new Transform({
      transform(chunk, _e, cb) {
        n += chunk.length;
        cb(null, chunk);
      },
    });
    await pipeline(src, blobs(), count, ...stages, await sinkStream);
    return n;
  } finally {
    c.close();
  }
}
async function stage(...stages) {
  let n = 0;
  const src = createReadStream(opt.file, { highWaterMark: 64 * 1024 });
  src.on('data', (c) => (n += c.length));
  await pipeline(src, ...stages, sink());
  return n;
}

const recipient = await identityToRecipient(await generateX25519Identity());
const MODES = {
  'recv-default': () => recv(undefined),
  'recv-win-1m': () => recv(1 * MiB),
  'recv-win-8m': () => recv(8 * MiB),
  'recv-win-8m-pipe': () => recv(8 * MiB, [new Hash(), new Hash(), new Hash()]),
  'recv-default-file': () => recv(undefined, [], fileSink()),
  'recv-win-8m-file': () => recv(8 * MiB, [], fileSink()),
  'recv-win-8m-hash-file': () => recv(8 * MiB, [new Hash()], fileSink()),
  'recv-win-8m-file-hwm1m': () => recv(8 * MiB, [], fileSink(MiB)),
  'recv-win-8m-hash-file-hwm1m': () => recv(8 * MiB, [new Hash()], fileSink(MiB)),
  etcdctl: () => {
    const file = join(opt.dir ?? tmpdir(), `recv-bench-${process.pid}.db`);
    const timeFile = `${file}.time`;
    const r = spawnSync('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, rig.etcd35.etcdctl, '--endpoints', opt.endpoint, 'snapshot', 'save', file], { env: { ...process.env, ETCDCTL_API: '3' } });
    if (r.status !== 0) throw new Error(String(r.stderr));
    const size = statSync(file).size;
    const [u, sy] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
    rmSync(file, { force: true });
    rmSync(timeFile, { force: true });
    return { bytes: size, childCpu: u + sy };
  },
  'stage-read': () => stage(),
  'stage-sha256': () => stage(new Hash()),
  'stage-zstd3': () => stage(new CompressStream({ compressionLevel: 3, checksumFlag: true })),
  'stage-zstd1': () => stage(new CompressStream({ compressionLevel: 1, checksumFlag: true })),
  // zstd's own worker thread(s) compress while the main thread goes on (libzstd built with ZSTD_MULTITHREAD).
  'stage-zstd3-mt1': () => stage(new CompressStream({ compressionLevel: 3, checksumFlag: true, nbWorkers: 1 })),
  'stage-zstd3-mt2': () => stage(new CompressStream({ compressionLevel: 3, checksumFlag: true, nbWorkers: 2 })),
  'stage-zstd3-mt1-job1m': () => stage(new CompressStream({ compressionLevel: 3, checksumFlag: true, nbWorkers: 1, jobSize: 1 << 20 })),
  'stage-zstd1-mt1': () => stage(new CompressStream({ compressionLevel: 1, checksumFlag: true, nbWorkers: 1 })),
  'stage-age': () => stage(ageStream(recipient)),
  'stage-zstd3-age': () => stage(new CompressStream({ compressionLevel: 3, checksumFlag: true }), ageStream(recipient)),
};
const defaults = Object.keys(MODES).filter((m) => (opt.file ? true : !m.startsWith('stage-')) && (opt.endpoint ? true : !m.startsWith('recv') && m !== 'etcdctl'));
const modes = opt.modes ? opt.modes.split(',') : defaults;
if (modes.some((m) => (m.startsWith('recv') || m === 'etcdctl') && !opt.endpoint)) throw new Error('--endpoint needed');
if (modes.some((m) => m.startsWith('stage') && !(opt.file && existsSync(opt.file)))) throw new Error('--file SNAPSHOT needed');

console.log(`${'mode'.padEnd(22)}${'wall s'.padEnd(9)}${'MB/s'.padEnd(8)}${'cpu s'.padEnd(8)}${'rss MB'.padEnd(8)}rest of machine cpu s (etcd included)`);
for (let r = 0; r < Number(opt.runs); r++) {
  for (const m of modes) {
    if (!MODES[m]) throw new Error(`unknown mode ${m}`);
    const before = process.resourceUsage();
    const busy0 = busy();
    const t0 = process.hrtime.bigint();
    const res = await MODES[m]();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const after = process.resourceUsage();
    const n = typeof res === 'number' ? res : res.bytes;
    // etcdctl is a child process: its CPU comes from /usr/bin/time, and RSS here is not its own.
    const cpu = typeof res === 'number' ? (after.userCPUTime + after.systemCPUTime - before.userCPUTime - before.systemCPUTime) / 1e6 : res.childCpu;
    const others = busy() - busy0 - cpu;
    console.log(`${m.padEnd(22)}${wall.toFixed(2).padEnd(9)}${(n / 1e6 / wall).toFixed(0).padEnd(8)}${cpu.toFixed(2).padEnd(8)}${(typeof res === 'number' ? (after.maxRSS / 1024).toFixed(0) : '-').padEnd(8)}${others.toFixed(2)}`);
  }
}

function busy() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / 100;
}
