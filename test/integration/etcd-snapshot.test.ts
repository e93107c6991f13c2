import { GetObjectCommand } from '@aws-sdk/client-s3';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { InterruptedError } from '../../src/cli/errors.js';
import { decryptor } from '../../src/snapshot/pipeline/encryption.js';
import { decompressor } from '../../src/snapshot/pipeline/codec.js';
import { takeSnapshot } from '../../src/snapshot/etcd/save.js';
import { Catalogue } from '../../src/store/catalogue.js';
import { FileStore } from '../../src/store/file-store.js';
import type { BackupManifest } from '../../src/store/manifest.js';
import { S3Store } from '../../src/store/s3-store.js';
import { genTlsCerts, startEtcd, type EtcdHandle } from '../rig/components.js';
import { runCli } from '../helpers/cli.js';
import { fillEtcd } from '../helpers/etcd.js';
import { readAll, sha256 } from '../helpers/streams.js';
import { minioConfig } from '../helpers/stores.js';

const run = promisify(execFile);

async function fileSha256(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c as Buffer);
  return h.digest('hex');
}

/** `etcdctl snapshot status -w json` (3.4) or `etcdutl snapshot status -w json` (3.5). */
async function toolStatus(version: '3.4' | '3.5', file: string): Promise<{ revision: number; totalKey: number }> {
  const bins = inject('rig').bins;
  const { stdout } =
    version === '3.4'
      ? await run(bins.etcd34.etcdctl, ['snapshot', 'status', file, '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } })
      : await run(bins.etcd35.etcdutl, ['snapshot', 'status', file, '-w', 'json']);
  return JSON.parse(stdout) as { revision: number; totalKey: number };
}

function tmp(prefix: string) {
  return mkdtemp(join(tmpdir(), prefix));
}

describe.each(['3.4', '3.5'] as const)('etcd snapshot from etcd %s', (version) => {
  let etcd: EtcdHandle;
  let dir: string;
  beforeAll(async () => {
    etcd = await startEtcd({ version });
    dir = await tmp('lifeboat-snap-');
    await fillEtcd(etcd.endpoint, { count: 1500 });
  });
  afterAll(async () => {
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([
    ['zstd', ['zstd', '-d', '-q', '-c']],
    ['gzip', ['gzip', '-d', '-c']],
    ['none', ['cat']],
  ] as const)('with %s: stored, listed, and opens with the standard tool into a file etcd accepts', async (codec, tool) => {
    const store = join(dir, codec);
    const r = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--compress', codec, '-o', 'json', '--label', 'case=interop']);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout) as BackupManifest;
    const obj = m.objects[0]!;
    expect(obj.name).toBe({ zstd: 'snapshot.db.zst', gzip: 'snapshot.db.gz', none: 'snapshot.db' }[codec]);
    expect(m.labels).toEqual({ case: 'interop' });
    expect(m.source.endpoint).toBe(etcd.endpoint);
    expect(String(m.source.etcdVersion)).toMatch(new RegExp(`^${version.replace('.', '\\.')}\\.`));

    const stored = join(store, 'etcd', m.id, obj.name);
    expect(await fileSha256(stored)).toBe(obj.sha256);
    const plain = join(dir, `${codec}.db`);
    const [cmd, ...args] = tool;
    await run('bash', ['-c', `${cmd} ${args.join(' ')} "$1" > "$2"`, 'x', stored, plain]);
    expect(await fileSha256(plain)).toBe(obj.payload?.sha256);
    const details = m.details as { revision: number; dbSize: number; dbSha256: string };
    const bytes = await readFile(plain);
    expect(bytes.length).toBe(details.dbSize + 32); // etcd's trailer is kept, as etcdctl keeps it
    expect(sha256(bytes.subarray(0, bytes.length - 32))).toBe(details.dbSha256);
    const status = await toolStatus(version, plain);
    expect(status.revision).toBe(details.revision);
    expect(status.totalKey).toBeGreaterThan(1500);

    const list = await runCli(['backups', 'list', '--store', store, '-o', 'json']);
    expect((JSON.parse(list.stdout) as { backups: { id: string }[] }).backups.map((b) => b.id)).toEqual([m.id]);
    expect((await runCli(['backups', 'verify', m.id, '--store', store])).code).toBe(0);
  });

  it('an etcd nothing was ever written to: the snapshot verifies, and its status matches the tool', async () => {
    const empty = await startEtcd({ version });
    try {
      const store = join(dir, 'empty');
      const r = await runCli(['etcd', 'snapshot', '--endpoints', empty.endpoint, '--store', store, '-o', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const m = JSON.parse(r.stdout) as BackupManifest;
      const v = await runCli(['backups', 'verify', m.id, '--store', store, '-o', 'json']);
      expect(v.code, v.stderr).toBe(0);
      const ours = (JSON.parse(v.stdout) as { payload: { status: { revision: number; totalKey: number } } }).payload.status;
      const plain = join(dir, 'empty.db');
      await run('bash', ['-c', 'zstd -d -q -c "$1" > "$2"', 'x', join(store, 'etcd', m.id, m.objects[0]!.name), plain]);
      const tool = await toolStatus(version, plain);
      expect(ours.revision).toBe(tool.revision);
      expect(ours.totalKey).toBe(tool.totalKey);
    } finally {
      await empty.stop();
    }
  });

  it('etcd killed mid-stream: the run fails and nothing is listed or left behind', async () => {
    const victim = await startEtcd({ version });
    try {
      await fillEtcd(victim.endpoint, { count: 2500, valueSize: 16 * 1024 });
      const storeDir = await tmp('lifeboat-kill-');
      const cat = new Catalogue(new FileStore(storeDir));
      let killed = false;
      await expect(
        takeSnapshot(cat, {
          connection: { endpoints: [victim.endpoint], dialTimeoutMs: 2000 },
          codec: 'zstd',
          stallTimeoutMs: 10_000,
          onProgress: () => {
            if (!killed) {
              killed = true;
              process.kill(victim.pid, 'SIGKILL');
            }
          },
        }),
      ).rejects.toThrow(/snapshot from .* failed|no valid etcd sha256 trailer|truncated/);
      const listing = await cat.list();
      expect(listing.backups).toEqual([]);
      expect(listing.incomplete).toEqual([]);
      await rm(storeDir, { recursive: true, force: true });
    } finally {
      await victim.stop();
    }
  });
});

describe('etcd snapshot: encryption, S3, TLS, endpoints and bad input', () => {
  let etcd: EtcdHandle;
  let dir: string;
  beforeAll(async () => {
    etcd = await startEtcd({ version: '3.5' });
    dir = await tmp('lifeboat-snap2-');
    await fillEtcd(etcd.endpoint, { count: 800 });
  });
  afterAll(async () => {
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('zstd + age into MinIO opens with `age -d | zstd -d`, and the result restores with etcdutl', async () => {
    const idFile = join(dir, 'age.key');
    await run('age-keygen', ['-o', idFile]);
    const recipient = (await run('age-keygen', ['-y', idFile])).stdout.trim();
    const m = inject('rig').minio;
    const cfg = minioConfig();
    const r = await runCli(
      ['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', `s3://${cfg.bucket}/${cfg.prefix}`, '--s3-endpoint', m.endpoint, '--s3-force-path-style', '--encrypt-to', recipient, '-o', 'json'],
      { env: { AWS_ACCESS_KEY_ID: m.accessKey, AWS_SECRET_ACCESS_KEY: m.secretKey, AWS_REGION: m.region, LIFEBOAT_S3_PARTS_IN_FLIGHT: '2' } },
    );
    expect(r.code, r.stderr).toBe(0);
    const manifest = JSON.parse(r.stdout) as BackupManifest;
    const obj = manifest.objects[0]!;
    expect(obj.name).toBe('snapshot.db.zst.age');
    expect(obj.encryption?.recipients).toEqual([expect.stringMatching(/^X25519:[0-9a-f]{16}$/)]);
    expect(JSON.stringify(manifest)).not.toContain(recipient);

    const s3 = new S3Store(cfg);
    const res = await s3.client.send(new GetObjectCommand({ Bucket: cfg.bucket, Key: `${cfg.prefix}etcd/${manifest.id}/${obj.name}` }));
    const enc = join(dir, 'snap.zst.age');
    await writeFile(enc, await readAll(res.Body as Readable));
    s3.destroy();
    const plain = join(dir, 'from-age.db');
    await run('bash', ['-c', 'age -d -i "$1" "$2" | zstd -d -q > "$3"', 'x', idFile, enc, plain]);
    expect(await fileSha256(plain)).toBe(obj.payload?.sha256);
    const restored = join(dir, 'restored');
    await run(inject('rig').bins.etcd35.etcdutl, ['snapshot', 'restore', plain, '--data-dir', restored]);
    const st = await toolStatus('3.5', plain);
    expect(st.revision).toBe((manifest.details as { revision: number }).revision);
  });

  it('--s3-parts-in-flight outside 1-16 is a usage error, before etcd is asked for anything', async () => {
    const cfg = minioConfig();
    for (const n of ['0', '17']) {
      const r = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', `s3://${cfg.bucket}/${cfg.prefix}`, '--s3-parts-in-flight', n]);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/s3-parts-in-flight/);
    }
  });

  it('a passphrase-encrypted snapshot decrypts with the passphrase and not without it', async () => {
    const passFile = join(dir, 'pass.txt');
    await writeFile(passFile, 'correct horse battery staple\n');
    const store = join(dir, 'pass-store');
    const r = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--passphrase-file', passFile, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const m = JSON.parse(r.stdout) as BackupManifest;
    const obj = m.objects[0]!;
    expect(obj.encryption?.recipients).toEqual(['scrypt']);
    const file = join(store, 'etcd', m.id, obj.name);
    const plain = await readAll(createReadStream(file).pipe(decryptor({ identities: [], passphrase: 'correct horse battery staple' })).pipe(decompressor('zstd')));
    expect(sha256(plain)).toBe(obj.payload?.sha256);
    await expect(pipeline(createReadStream(file), decryptor({ identities: [], passphrase: 'wrong' }), decompressor('zstd'), async function* (s) {
      for await (const _ of s) yield _;
    })).rejects.toMatchObject({ exitCode: 5 });
  });

  it.each(['3.4', '3.5'] as const)('TLS with client certificates (etcd %s): flags and ETCDCTL_* both work; no certificate is refused', async (version) => {
    const pki = join(dir, `pki-${version}`);
    await mkdir(pki, { recursive: true });
    const certs = await genTlsCerts(pki);
    const secure = await startEtcd({
      version,
      tls: { caFile: certs.caFile, certFile: certs.certFile, keyFile: certs.keyFile, clientCertAuth: true, clientCertFile: certs.clientCertFile, clientKeyFile: certs.clientKeyFile },
    });
    try {
      const store = join(dir, `tls-store-${version}`);
      const viaFlags = await runCli(['etcd', 'snapshot', '--endpoints', secure.endpoint, '--cacert', certs.caFile, '--cert', certs.clientCertFile, '--key', certs.clientKeyFile, '--store', store]);
      expect(viaFlags.code, viaFlags.stderr).toBe(0);
      const viaEnv = await runCli(['etcd', 'snapshot', '--store', store], {
        env: { ETCDCTL_ENDPOINTS: secure.endpoint, ETCDCTL_CACERT: certs.caFile, ETCDCTL_CERT: certs.clientCertFile, ETCDCTL_KEY: certs.clientKeyFile },
      });
      expect(viaEnv.code, viaEnv.stderr).toBe(0);
      const noCert = await runCli(['etcd', 'snapshot', '--endpoints', secure.endpoint, '--cacert', certs.caFile, '--store', store, '--dial-timeout', '1s']);
      expect(noCert.code).toBe(1);
      expect(noCert.stderr).toContain('No etcd endpoint answered');
      const clientOnly = ['--endpoints', secure.endpoint, '--cert', certs.clientCertFile, '--key', certs.clientKeyFile, '--store', store, '--dial-timeout', '1s'];
      const unknownCa = await runCli(['etcd', 'snapshot', ...clientOnly]);
      expect(unknownCa.code).toBe(1);
      const insecure = await runCli(['etcd', 'snapshot', ...clientOnly, '--insecure-skip-tls-verify']);
      expect(insecure.code, insecure.stderr).toBe(0);
      const list = await runCli(['backups', 'list', '--store', store, '-o', 'json']);
      expect((JSON.parse(list.stdout) as { backups: unknown[] }).backups).toHaveLength(3);
    } finally {
      await secure.stop();
    }
  });

  it.each(['3.4', '3.5'] as const)('etcd %s with auth enabled: --user name:password works; a wrong password or a user who is not root is one clear sentence', async (version) => {
    const secured = await startEtcd({ version });
    try {
      await secured.ctl(['user', 'add', 'root:s3cret']);
      await secured.ctl(['user', 'grant-role', 'root', 'root']);
      await secured.ctl(['user', 'add', 'reader:r3ad']);
      await secured.ctl(['role', 'add', 'registry-reader']);
      await secured.ctl(['role', 'grant-permission', 'registry-reader', '--prefix=true', 'read', '/registry/']);
      await secured.ctl(['user', 'grant-role', 'reader', 'registry-reader']);
      await secured.ctl(['auth', 'enable']);
      const store = join(dir, `auth-store-${version}`);
      const ok = await runCli(['etcd', 'snapshot', '--endpoints', secured.endpoint, '--user', 'root:s3cret', '--store', store]);
      expect(ok.code, ok.stderr).toBe(0);
      const split = await runCli(['etcd', 'snapshot', '--endpoints', secured.endpoint, '--store', store], { env: { ETCDCTL_USER: 'root', ETCDCTL_PASSWORD: 's3cret' } });
      expect(split.code, split.stderr).toBe(0);
      const wrong = await runCli(['etcd', 'snapshot', '--endpoints', secured.endpoint, '--user', 'root:nope', '--store', store]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toContain('authentication failed');
      expect(wrong.stderr).not.toMatch(/\n\s+at /);
      const none = await runCli(['etcd', 'snapshot', '--endpoints', secured.endpoint, '--store', store]);
      expect(none.code).toBe(1);
      // etcd answers a snapshot only to root: the refusal is etcd's own words, in one sentence.
      const reader = await runCli(['etcd', 'snapshot', '--endpoints', secured.endpoint, '--user', 'reader:r3ad', '--store', store]);
      expect(reader.code).toBe(1);
      expect(reader.stderr).toMatch(/The snapshot from \S+ failed: permission denied \(.*permission denied.*\(gRPC \w+\)\); nothing was stored\./);
      expect(reader.stderr).toContain('only to a user with the root role');
      expect(reader.stderr).not.toMatch(/\n\s+at /);
      const list = await runCli(['backups', 'list', '--store', store, '-o', 'json']);
      expect((JSON.parse(list.stdout) as { backups: unknown[] }).backups).toHaveLength(2);
    } finally {
      await secured.stop();
    }
  });

  it('takes the snapshot without loading the etcd3 client (Status, auth and Snapshot go over node:http2)', async () => {
    const probe = `import { createRequire } from 'node:module';
    process.on('exit', () => {
      const names = new Set();
      for (const p of Object.keys(createRequire(process.argv[1]).cache)) {
        const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(p);
        if (m) names.add(m[1]);
      }
      process.stderr.write('LOADED=' + JSON.stringify([...names]) + '\\n');
    });`;
    const r = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', join(dir, 'no-etcd3'), '--compress', 'none'], {
      env: { NODE_OPTIONS: `--import=data:text/javascript,${encodeURIComponent(probe)}` },
    });
    expect(r.code, r.stderr).toBe(0);
    const loaded = JSON.parse(/LOADED=(.*)/.exec(r.stderr)?.[1] ?? 'null') as string[];
    expect(loaded).toContain('@oclif/core');
    expect(loaded.filter((p) => ['etcd3', '@grpc/grpc-js', 'protobufjs'].includes(p))).toEqual([]);
  });

  it('uses the first endpoint that answers and records it', async () => {
    const srv = createServer();
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    const dead = `http://127.0.0.1:${(srv.address() as { port: number }).port}`;
    await new Promise<void>((res) => srv.close(() => res()));
    const store = join(dir, 'multi');
    const r = await runCli(['etcd', 'snapshot', '--endpoints', `${dead},${etcd.endpoint}`, '--dial-timeout', '1s', '--store', store, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as BackupManifest).source.endpoint).toBe(etcd.endpoint);
    const none = await runCli(['etcd', 'snapshot', '--endpoints', dead, '--dial-timeout', '1s', '--store', store]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/No etcd endpoint answered: http:\/\/127\.0\.0\.1:\d+: unreachable/);
    expect(none.stderr).not.toMatch(/\n\s+at /);
  });

  it('a stalled stream fails after the stall timeout and leaves nothing', async () => {
    const slow = await startEtcd({ version: '3.5' });
    try {
      await fillEtcd(slow.endpoint, { count: 2500, valueSize: 16 * 1024 });
      const storeDir = await tmp('lifeboat-stall-');
      const cat = new Catalogue(new FileStore(storeDir));
      let stopped = false;
      const started = Date.now();
      await expect(
        takeSnapshot(cat, {
          connection: { endpoints: [slow.endpoint], dialTimeoutMs: 2000 },
          codec: 'zstd',
          stallTimeoutMs: 1500,
          onProgress: () => {
            if (!stopped) {
              stopped = true;
              process.kill(slow.pid, 'SIGSTOP');
            }
          },
        }),
      ).rejects.toThrow(/sent no data for 2s|sent no data for 1s/);
      expect(Date.now() - started).toBeLessThan(15_000);
      expect((await cat.list()).incomplete).toEqual([]);
      await rm(storeDir, { recursive: true, force: true });
    } finally {
      process.kill(slow.pid, 'SIGCONT');
      await slow.stop();
    }
  });

  it('SIGINT while connecting exits 130 and stores nothing', async () => {
    const slow = await startEtcd({ version: '3.5' });
    try {
      const store = join(dir, 'sigint');
      process.kill(slow.pid, 'SIGSTOP');
      const { spawn } = await import('node:child_process');
      const child = spawn(process.execPath, ['bin/run.js', 'etcd', 'snapshot', '--endpoints', slow.endpoint, '--store', store, '--dial-timeout', '20s', '--debug'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      const connecting = new Promise<void>((res) =>
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (stderr.includes('connecting to etcd')) res();
        }),
      );
      await connecting;
      await new Promise((res) => setTimeout(res, 300));
      const sent = Date.now();
      child.kill('SIGINT');
      const code = await new Promise<number | null>((res) => child.on('close', res));
      expect(code).toBe(130);
      expect(Date.now() - sent).toBeLessThan(5000);
      expect(stderr).toContain('SIGINT');
      const list = await runCli(['backups', 'list', '--store', store, '-o', 'json']);
      expect(JSON.parse(list.stdout)).toMatchObject({ backups: [], incomplete: [] });
    } finally {
      process.kill(slow.pid, 'SIGCONT');
      await slow.stop();
    }
  });

  it('an interrupt mid-stream stops the snapshot with exit code 130 and stores nothing', async () => {
    const big = await startEtcd({ version: '3.5' });
    try {
      await fillEtcd(big.endpoint, { count: 2500, valueSize: 16 * 1024 });
      const storeDir = await tmp('lifeboat-int-');
      const cat = new Catalogue(new FileStore(storeDir));
      const ac = new AbortController();
      await expect(
        takeSnapshot(cat, {
          connection: { endpoints: [big.endpoint], dialTimeoutMs: 2000 },
          codec: 'zstd',
          stallTimeoutMs: 10_000,
          signal: ac.signal,
          onProgress: () => {
            if (!ac.signal.aborted) {
              process.kill(big.pid, 'SIGSTOP');
              ac.abort(new InterruptedError());
            }
          },
        }),
      ).rejects.toMatchObject({ exitCode: 130 });
      const listing = await cat.list();
      expect(listing.backups).toEqual([]);
      expect(listing.incomplete).toEqual([]);
      await rm(storeDir, { recursive: true, force: true });
    } finally {
      process.kill(big.pid, 'SIGCONT');
      await big.stop();
    }
  });

  it('bad flags are usage errors (exit 2)', async () => {
    const store = join(dir, 'bad');
    for (const args of [
      ['--compress', 'lz4'],
      ['--encrypt-to', 'not-a-recipient'],
      ['--cert', '/tmp/x.crt'],
      ['--label', 'novalue'],
      ['--stall-timeout', 'soon'],
      ['--compress-level', '23'],
      ['--compress', 'gzip', '--compress-level', '10'],
      ['--compress', 'none', '--compress-level', '3'],
    ]) {
      const r = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, ...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      if (args.includes('--compress-level')) expect(r.stderr).toMatch(/--compress-level \d+ (is not a (zstd|gzip) level|has no meaning with --compress none)/);
    }
    const missing = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--passphrase-file', '/nonexistent/pass']);
    expect(missing.code).toBe(4);
  });
});
