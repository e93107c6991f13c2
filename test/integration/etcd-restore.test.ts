import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BackupManifest } from '../../src/store/manifest.js';
import { freePort, startEtcd, type EtcdHandle } from '../rig/components.js';
import { runCli } from '../helpers/cli.js';
import { currentRevision, dumpEtcd, fillEtcd } from '../helpers/etcd.js';

const run = promisify(execFile);

describe('etcd restore into a new data dir', () => {
  let source: EtcdHandle;
  let dir: string;
  let store: string;
  let original: Map<string, string>;
  let originalRevision: number;
  let plain: BackupManifest;
  let encrypted: BackupManifest;
  let idFile: string;
  const etcdutl = () => inject('rig').bins.etcd35.etcdutl;

  beforeAll(async () => {
    source = await startEtcd({ version: '3.5' });
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-restore-'));
    store = join(dir, 'store');
    await fillEtcd(source.endpoint, { count: 1200 });
    // Some history: overwrites and deletes, so the live set differs from the key history.
    await source.ctl(['put', '/registry/configmaps/ns-1/cm-1', 'overwritten']);
    await source.ctl(['del', '/registry/configmaps/ns-2/cm-2']);
    const lease = (await source.ctl(['lease', 'grant', '3600'])).match(/lease ([0-9a-f]+) granted/)?.[1];
    expect(lease).toBeTruthy();
    await source.ctl(['put', '/registry/masterleases/127.0.0.1', 'leased', '--lease', lease!]);
    original = await dumpEtcd(source.endpoint);
    originalRevision = await currentRevision(source.endpoint);
    const a = await runCli(['etcd', 'snapshot', '--endpoints', source.endpoint, '--store', store, '-o', 'json']);
    expect(a.code, a.stderr).toBe(0);
    plain = JSON.parse(a.stdout) as BackupManifest;
    idFile = join(dir, 'age.key');
    await run('age-keygen', ['-o', idFile]);
    const recipient = (await run('age-keygen', ['-y', idFile])).stdout.trim();
    const b = await runCli(['etcd', 'snapshot', '--endpoints', source.endpoint, '--store', store, '--encrypt-to', recipient, '-o', 'json']);
    expect(b.code, b.stderr).toBe(0);
    encrypted = JSON.parse(b.stdout) as BackupManifest;
  });
  afterAll(async () => {
    await source.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function startOn(dataDir: string, peerPort: number, version: '3.4' | '3.5' = '3.5') {
    return startEtcd({ version, dataDir, peerPort, name: 'default', initialCluster: `default=http://127.0.0.1:${peerPort}` });
  }

  it('with etcdutl: every key and value comes back, and the revision is bumped and compacted', async () => {
    const dataDir = join(dir, 'dd-etcdutl');
    const peerPort = await freePort();
    const r = await runCli([
      'etcd', 'restore', plain.id, '--store', store, '--data-dir', dataDir, '--etcdutl', etcdutl(),
      '--initial-cluster', `default=http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`, '-o', 'json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { bumpRevision: number; tool: { kind: string }; nextSteps: string[] };
    expect(res.tool.kind).toBe('etcdutl');
    expect(res.bumpRevision).toBe(1_000_000_000);
    expect(res.nextSteps.join('\n')).toMatch(/kubeadm.*hostPath/);
    const etcd = await startOn(dataDir, peerPort);
    try {
      expect(await dumpEtcd(etcd.endpoint)).toEqual(original);
      expect(await currentRevision(etcd.endpoint)).toBeGreaterThanOrEqual(originalRevision + 1_000_000_000);
      // Compacted at the bumped revision: reading an older revision is refused.
      await expect(etcd.ctl(['get', '/registry', '--prefix', '--rev', String(originalRevision)])).rejects.toThrow(/compacted/);
    } finally {
      await etcd.stop();
    }
  });

  it('with etcdctl 3.4: keys come back; the revision cannot be bumped and the warning says so', async () => {
    const dataDir = join(dir, 'dd-etcdctl');
    const peerPort = await freePort();
    const r = await runCli([
      'etcd', 'restore', plain.id, '--store', store, '--data-dir', dataDir, '--etcdutl', inject('rig').bins.etcd34.etcdctl,
      '--initial-cluster', `default=http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('cannot bump the revision');
    const etcd = await startOn(dataDir, peerPort, '3.4');
    try {
      expect(await dumpEtcd(etcd.endpoint)).toEqual(original);
      expect(await currentRevision(etcd.endpoint)).toBe(originalRevision);
    } finally {
      await etcd.stop();
    }
  });

  it('three members restored from one encrypted snapshot form a healthy cluster with the same keys', async () => {
    const names = ['m1', 'm2', 'm3'];
    // Six distinct ports chosen up front: free ports picked one at a time may repeat once released.
    const ports = new Set<number>();
    while (ports.size < 6) ports.add(await freePort());
    const [peers, clients] = [[...ports].slice(0, 3), [...ports].slice(3)];
    const initialCluster = names.map((n, i) => `${n}=http://127.0.0.1:${peers[i]}`).join(',');
    for (const [i, name] of names.entries()) {
      const r = await runCli([
        'etcd', 'restore', encrypted.id, '--store', store, '--identity-file', idFile, '--etcdutl', etcdutl(),
        '--data-dir', join(dir, `dd-${name}`), '--name', name, '--initial-cluster', initialCluster,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${peers[i]}`, '--initial-cluster-token', 'restored',
      ]);
      expect(r.code, r.stderr).toBe(0);
    }
    const members = await Promise.all(
      names.map((name, i) => startEtcd({ version: '3.5', name, dataDir: join(dir, `dd-${name}`), peerPort: peers[i]!, clientPort: clients[i]!, initialCluster, initialClusterToken: 'restored' })),
    );
    try {
      for (const m of members) expect(await dumpEtcd(m.endpoint)).toEqual(original);
      const list = await members[0]!.ctl(['member', 'list', '-w', 'json']);
      expect((JSON.parse(list) as { members: unknown[] }).members).toHaveLength(3);
    } finally {
      await Promise.all(members.map((m) => m.stop()));
    }
  });

  it('a data dir that exists and is not empty is refused (exit 6) and left untouched, before anything is downloaded', async () => {
    const dataDir = join(dir, 'occupied');
    await mkdir(dataDir, { recursive: true });
    await writeFile(join(dataDir, 'precious'), 'do not touch');
    const r = await runCli(['etcd', 'restore', plain.id, '--store', store, '--data-dir', dataDir, '--etcdutl', etcdutl()]);
    expect(r.code).toBe(6);
    expect(r.stderr).toContain('exists and is not empty');
    expect(await readFile(join(dataDir, 'precious'), 'utf8')).toBe('do not touch');
  });

  it('bad input: unknown id (4), encrypted without identity (2), wrong identity (5), altered backup (5); no data dir appears', async () => {
    const dataDir = join(dir, 'never');
    const unknown = await runCli(['etcd', 'restore', 'etcd-20200101T000000Z-0000', '--store', store, '--data-dir', dataDir]);
    expect(unknown.code).toBe(4);
    const noId = await runCli(['etcd', 'restore', encrypted.id, '--store', store, '--data-dir', dataDir, '--etcdutl', etcdutl()]);
    expect(noId.code).toBe(2);
    expect(noId.stderr).toContain('is encrypted');
    const otherKey = join(dir, 'other.key');
    await run('age-keygen', ['-o', otherKey]);
    const wrongId = await runCli(['etcd', 'restore', encrypted.id, '--store', store, '--identity-file', otherKey, '--data-dir', dataDir, '--etcdutl', etcdutl()]);
    expect(wrongId.code).toBe(5);
    expect(wrongId.stderr).toContain('Cannot decrypt');

    // Flip one byte of a copy of the plain backup's stored object.
    const copy = join(dir, 'store-copy');
    await cp(store, copy, { recursive: true });
    const obj = join(copy, 'etcd', plain.id, plain.objects[0]!.name);
    const bytes = await readFile(obj);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x20;
    await writeFile(obj, bytes);
    const altered = await runCli(['etcd', 'restore', plain.id, '--store', copy, '--data-dir', dataDir, '--etcdutl', etcdutl()]);
    expect(altered.code, altered.stderr).toBe(5);
    await expect(readFile(join(dataDir, 'member'))).rejects.toThrow();
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(dir)).filter((n) => n.startsWith('never'))).toEqual([]);
  });

  it('a db copied from a data dir needs --skip-hash-check', async () => {
    const copied = join(dir, 'copied.db');
    await cp(join(source.dataDir, 'member', 'snap', 'db'), copied);
    const dataDir = join(dir, 'from-copy');
    const refused = await runCli(['etcd', 'restore', copied, '--data-dir', dataDir, '--etcdutl', etcdutl()]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('--skip-hash-check');
    const ok = await runCli(['etcd', 'restore', copied, '--data-dir', dataDir, '--etcdutl', etcdutl(), '--skip-hash-check']);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('--into writes every live key into an empty running etcd (3.4 here), refuses a non-empty one, and --force overwrites', async () => {
    const target = await startEtcd({ version: '3.4' });
    try {
      const r = await runCli(['etcd', 'restore', encrypted.id, '--store', store, '--identity-file', idFile, '--into', target.endpoint, '-o', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const res = JSON.parse(r.stdout) as { mode: string; keys: number; leasesDropped: number; snapshotRevision: number };
      expect(res).toMatchObject({ mode: 'into', keys: original.size, leasesDropped: 1 });
      expect(r.stderr).toContain('written without one');
      expect(await dumpEtcd(target.endpoint)).toEqual(original);

      await target.ctl(['put', '/registry/configmaps/ns-1/cm-1', 'changed on the target']);
      const again = await runCli(['etcd', 'restore', plain.id, '--store', store, '--into', target.endpoint]);
      expect(again.code).toBe(6);
      expect(again.stderr).toContain(`already has ${original.size} key(s)`);
      expect((await dumpEtcd(target.endpoint)).get('/registry/configmaps/ns-1/cm-1')).toBe(Buffer.from('changed on the target').toString('base64'));
      const forced = await runCli(['etcd', 'restore', plain.id, '--store', store, '--into', target.endpoint, '--force']);
      expect(forced.code, forced.stderr).toBe(0);
      expect(await dumpEtcd(target.endpoint)).toEqual(original);
    } finally {
      await target.stop();
    }
  });

  it('--into with --prefix writes only the keys under it', async () => {
    const target = await startEtcd({ version: '3.5' });
    try {
      const r = await runCli(['etcd', 'restore', plain.id, '--store', store, '--into', target.endpoint, '--prefix', '/registry/secrets/', '-o', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const expected = new Map([...original].filter(([k]) => k.startsWith('/registry/secrets/')));
      expect(expected.size).toBeGreaterThan(100);
      expect(await dumpEtcd(target.endpoint)).toEqual(expected);
      const both = await runCli(['etcd', 'restore', plain.id, '--store', store, '--into', target.endpoint, '--data-dir', join(dir, 'x')]);
      expect(both.code).toBe(2);
    } finally {
      await target.stop();
    }
  });
});

describe('backups verify for etcd snapshots', () => {
  let etcd: EtcdHandle;
  let dir: string;
  let store: string;
  let idFile: string;
  let encrypted: BackupManifest;
  beforeAll(async () => {
    etcd = await startEtcd({ version: '3.5' });
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-verify-'));
    store = join(dir, 'store');
    await fillEtcd(etcd.endpoint, { count: 600 });
    idFile = join(dir, 'age.key');
    await run('age-keygen', ['-o', idFile]);
    const recipient = (await run('age-keygen', ['-y', idFile])).stdout.trim();
    const r = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--encrypt-to', recipient, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    encrypted = JSON.parse(r.stdout) as BackupManifest;
  });
  afterAll(async () => {
    await etcd.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const bins = () => {
    const b = inject('rig').bins.etcd35;
    return ['--etcd', b.etcd, '--etcdutl', b.etcdutl];
  };

  it('--restore-test restores into a throwaway etcd and every key and value matches', async () => {
    const r = await runCli(['backups', 'verify', encrypted.id, '--store', store, '--identity-file', idFile, '--restore-test', ...bins(), '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as { ok: boolean; payload: { checked: boolean; status: { totalKey: number } }; restoreTest: { matches: boolean; actual: { keys: number }; expected: { keys: number } } };
    expect(res.ok).toBe(true);
    expect(res.payload.checked).toBe(true);
    expect(res.restoreTest.matches).toBe(true);
    expect(res.restoreTest.actual.keys).toBe(600);
    expect(res.restoreTest.expected.keys).toBe(600);
  });

  it('without the key, only the stored bytes are checked (and said so); a restore test needs the key', async () => {
    const r = await runCli(['backups', 'verify', encrypted.id, '--store', store]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('snapshot inside not checked');
    const t = await runCli(['backups', 'verify', encrypted.id, '--store', store, '--restore-test', ...bins()]);
    expect(t.code).toBe(2);
  });

  it('a snapshot whose content was altered before encryption fails the payload check (exit 5)', async () => {
    // Re-encrypt a modified payload under the same name, and fix the stored hash in the manifest:
    // only the payload hash and etcd's trailer can catch it.
    const copy = join(dir, 'tampered');
    await cp(store, copy, { recursive: true });
    const objPath = join(copy, 'etcd', encrypted.id, encrypted.objects[0]!.name);
    const plainPath = join(dir, 'plain.db');
    await run('bash', ['-c', 'age -d -i "$1" "$2" | zstd -d -q > "$3"', 'x', idFile, objPath, plainPath]);
    const bytes = await readFile(plainPath);
    bytes[8192 + 100] = bytes[8192 + 100]! ^ 0x01;
    await writeFile(plainPath, bytes);
    const recipient = (await run('age-keygen', ['-y', idFile])).stdout.trim();
    await run('bash', ['-c', 'zstd -q -c "$1" | age -e -r "$2" > "$3"', 'x', plainPath, recipient, objPath]);
    const manifestPath = join(copy, 'etcd', encrypted.id, 'manifest.json');
    const m = JSON.parse(await readFile(manifestPath, 'utf8')) as BackupManifest;
    const { createHash } = await import('node:crypto');
    const stored = await readFile(objPath);
    m.objects[0]!.size = stored.length;
    m.objects[0]!.sha256 = createHash('sha256').update(stored).digest('hex');
    await writeFile(manifestPath, JSON.stringify(m));
    const r = await runCli(['backups', 'verify', encrypted.id, '--store', copy, '--identity-file', idFile]);
    expect(r.code, r.stderr).toBe(5);
    expect(r.stderr).toMatch(/does not match its manifest|trailer/);
  });
});
