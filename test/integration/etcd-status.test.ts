/**
 * `etcd status` and `etcd inspect` against snapshots of real etcd 3.4 and 3.5 servers, compared
 * with what the real tools say about the same files: `etcdctl snapshot status` (3.4),
 * `etcdutl snapshot status` (3.5) and `etcdctl get "" --prefix` at the snapshot's moment.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BoltReader } from '../../src/snapshot/etcd/bbolt.js';
import { liveEntries, scanLiveKeys, summarize } from '../../src/snapshot/etcd/inspect.js';
import { snapshotStatus, type SnapshotStatus } from '../../src/snapshot/etcd/status.js';
import { runCli } from '../helpers/cli.js';
import { startEtcd, type EtcdHandle, type EtcdVersion } from '../rig/components.js';

const execFileP = promisify(execFile);
const rig = inject('rig');

/** Deterministic bytes (a small LCG), so runs are reproducible. */
function bytesOf(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

const NAMESPACES = ['default', 'kube-system', 'team-a', 'team-b'];
const json = (kind: string, ns: string | null, name: string, pad = 200) =>
  JSON.stringify({ kind, apiVersion: 'v1', metadata: { name, ...(ns ? { namespace: ns } : {}) }, data: { blob: 'x'.repeat(pad) } });
const proto = (seed: number, n: number) => Buffer.concat([Buffer.from('k8s\x00', 'latin1'), bytesOf(seed, n)]);

/** Expected object counts per resource after populate(). */
const EXPECTED_K8S: Record<string, number> = {
  configmaps: 1200,
  pods: 600 - 150,
  nodes: 8,
  namespaces: 4,
  services: 20,
  endpoints: 20,
  secrets: 300 - 40,
  'customresourcedefinitions.apiextensions.k8s.io': 1,
  'foos.example.com': 30,
};

/** A few thousand keys, overwrites, deletes, a compaction, leases, big values; returns the lease id. */
async function populate(h: EtcdHandle): Promise<bigint> {
  const client = new Etcd3({ hosts: h.endpoint });
  try {
    const run = async (ops: (() => Promise<unknown>)[]) => {
      for (let i = 0; i < ops.length; i += 64) await Promise.all(ops.slice(i, i + 64).map((op) => op()));
    };
    const ops: (() => Promise<unknown>)[] = [];
    for (let i = 0; i < 1200; i++) {
      const ns = NAMESPACES[i % 4] as string;
      ops.push(() => client.put(`/registry/configmaps/${ns}/cm-${i}`).value(json('ConfigMap', ns, `cm-${i}`, 100 + (i % 700))).exec());
    }
    for (let i = 0; i < 600; i++) ops.push(() => client.put(`/registry/pods/${NAMESPACES[i % 4]}/pod-${i}`).value(proto(i, 300 + (i % 900))).exec());
    for (let i = 0; i < 8; i++) ops.push(() => client.put(`/registry/minions/node-${i}`).value(proto(1000 + i, 2000)).exec());
    for (const ns of NAMESPACES) ops.push(() => client.put(`/registry/namespaces/${ns}`).value(proto(ns.length, 100)).exec());
    for (let i = 0; i < 20; i++) {
      ops.push(() => client.put(`/registry/services/specs/default/svc-${i}`).value(proto(2000 + i, 150)).exec());
      ops.push(() => client.put(`/registry/services/endpoints/default/svc-${i}`).value(proto(3000 + i, 150)).exec());
    }
    for (let i = 0; i < 300; i++) ops.push(() => client.put(`/registry/secrets/${NAMESPACES[i % 4]}/s-${i}`).value(Buffer.concat([Buffer.from('k8s:enc:aescbc:v1:key1:'), bytesOf(i, 64)])).exec());
    ops.push(() => client.put('/registry/apiextensions.k8s.io/customresourcedefinitions/foos.example.com').value(json('CustomResourceDefinition', null, 'foos.example.com')).exec());
    for (let i = 0; i < 30; i++) ops.push(() => client.put(`/registry/example.com/foos/team-a/foo-${i}`).value(json('Foo', 'team-a', `foo-${i}`)).exec());
    for (let i = 0; i < 12; i++) ops.push(() => client.put(`/big/value-${i}`).value(bytesOf(i, 60_000 + i * 9000)).exec()); // overflow pages
    ops.push(() => client.put(Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0xff, 0x00, 0x80])).value(Buffer.from([0, 1, 2])).exec()); // not UTF-8
    for (let i = 0; i < 400; i++) ops.push(() => client.put(`/app/settings/${String(i).padStart(4, '0')}`).value(`v${i}`).exec());
    await run(ops);

    // Overwrite some keys several times, delete others, then compact in the middle of history.
    for (let round = 0; round < 3; round++) {
      await run(Array.from({ length: 300 }, (_, i) => () => client.put(`/registry/configmaps/${NAMESPACES[i % 4]}/cm-${i}`).value(json('ConfigMap', NAMESPACES[i % 4] as string, `cm-${i}`, 50 + round)).exec()));
    }
    await run(Array.from({ length: 100 }, (_, i) => () => client.delete().key(`/registry/pods/${NAMESPACES[i % 4]}/pod-${i}`).exec()));
    const mid = await client.put('/app/marker').value('mid').exec();
    await h.ctl(['compact', mid.header.revision]);
    // After the compaction: more overwrites and deletes (these tombstones stay in the snapshot).
    await run(Array.from({ length: 50 }, (_, i) => () => client.delete().key(`/registry/pods/${NAMESPACES[(100 + i) % 4]}/pod-${100 + i}`).exec()));
    await run(Array.from({ length: 40 }, (_, i) => () => client.delete().key(`/registry/secrets/${NAMESPACES[i % 4]}/s-${i}`).exec()));
    await run(Array.from({ length: 100 }, (_, i) => () => client.put(`/app/settings/${String(i).padStart(4, '0')}`).value(`v${i}-again`).exec()));
    await client.delete().prefix('/app/settings/03').exec();
    const lease = /lease ([0-9a-f]+) granted/.exec(await h.ctl(['lease', 'grant', '3600']))?.[1];
    if (!lease) throw new Error('no lease id from etcdctl lease grant');
    for (let i = 0; i < 5; i++) await h.ctl(['put', `/leased/k${i}`, `v${i}`, '--lease', lease]);
    return BigInt(`0x${lease}`);
  } finally {
    client.close();
  }
}

interface CtlKv {
  key: string;
  value?: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease?: number | string;
}

function digest(pairs: [Buffer, Buffer][]): string {
  const h = createHash('sha256');
  for (const [k, v] of pairs.sort((a, b) => Buffer.compare(a[0], b[0]))) {
    h.update(`${k.length}:${v.length}:`);
    h.update(k);
    h.update(v);
  }
  return h.digest('hex');
}

async function toolStatus(bin: string, file: string): Promise<SnapshotStatus> {
  const { stdout } = await execFileP(bin, ['snapshot', 'status', file, '-w', 'json'], { env: { ...process.env, ETCDCTL_API: '3' } });
  return JSON.parse(stdout) as SnapshotStatus;
}

describe.each(['3.4', '3.5'] as EtcdVersion[])('snapshot of etcd %s', (version) => {
  let h: EtcdHandle;
  let dir: string;
  let file: string;
  let kvs: CtlKv[];
  let headerRevision: number;
  let lease: bigint;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-etcd-status-'));
    h = await startEtcd({ version });
    lease = await populate(h);
    file = join(dir, 'snapshot.db');
    await h.ctl(['snapshot', 'save', file]);
    const got = JSON.parse(await h.ctl(['get', '', '--prefix', '-w', 'json'])) as { header: { revision: number }; kvs: CtlKv[] };
    kvs = got.kvs;
    headerRevision = Number(got.header.revision);
    await h.stop();
  }, 300_000);

  afterAll(async () => {
    await h?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('status equals etcdctl 3.4 `snapshot status` and etcdutl 3.5 `snapshot status`', async () => {
    const ours = await snapshotStatus(file);
    const v34 = await toolStatus(rig.bins.etcd34.etcdctl, file);
    const v35 = await toolStatus(rig.bins.etcd35.etcdutl, file);
    expect(ours).toEqual(v34);
    expect(ours).toEqual(v35);
    expect(ours.revision).toBe(headerRevision);
    expect((await readFile(file)).length % 512).toBe(32);
  });

  it('the CLI prints the same numbers as JSON and as a table', async () => {
    const want = await toolStatus(rig.bins.etcd35.etcdutl, file);
    const j = await runCli(['etcd', 'status', file, '-o', 'json']);
    expect(j.code).toBe(0);
    expect(JSON.parse(j.stdout)).toEqual(want);
    const t = await runCli(['etcd', 'status', file]);
    expect(t.code).toBe(0);
    expect(t.stdout).toMatch(/^HASH\s+REVISION\s+TOTAL KEYS\s+TOTAL SIZE\n/);
    expect(t.stdout).toContain(want.hash.toString(16));
  });

  it('the live key set equals `etcdctl get "" --prefix` at the snapshot revision', async () => {
    const reader = await BoltReader.open(file);
    try {
      const scan = await scanLiveKeys(reader);
      expect(scan.revision).toBe(headerRevision);
      expect(scan.tombstones).toBeGreaterThan(0);
      expect(scan.live.count).toBe(kvs.length);
      for (const kv of kvs) {
        const got = scan.live.get(Buffer.from(kv.key, 'base64').toString('latin1'));
        expect(got, Buffer.from(kv.key, 'base64').toString()).toBeDefined();
        expect([got?.createRevision, got?.modRevision, got?.version]).toEqual([Number(kv.create_revision), Number(kv.mod_revision), Number(kv.version)]);
        expect(got?.lease).toBe(kv.lease ? lease : 0n); // (etcdctl's JSON number loses the low bits)
      }
      const ours: [Buffer, Buffer][] = [];
      for await (const e of liveEntries(reader, scan.live)) ours.push([Buffer.from(e.key), Buffer.from(e.value)]);
      const theirs = kvs.map((kv): [Buffer, Buffer] => [Buffer.from(kv.key, 'base64'), Buffer.from(kv.value ?? '', 'base64')]);
      expect(ours.length).toBe(theirs.length);
      expect(digest(ours)).toBe(digest(theirs));

      const report = summarize(scan, { kubernetes: true });
      expect(report.liveKeys).toBe(kvs.length);
      expect(report.bytes).toBe(theirs.reduce((n, [k, v]) => n + k.length + v.length, 0));
      const counts = Object.fromEntries(report.kubernetes?.resources.map((r) => [r.resource, r.objects]) ?? []);
      expect(counts).toEqual(EXPECTED_K8S);
      expect(report.kubernetes?.resources.find((r) => r.resource === 'nodes')?.namespaced).toBe(false);
      expect(report.kubernetes?.namespaces.find((n) => n.namespace === 'team-a')?.objects).toBe(
        kvs.filter((kv) => /^\/registry\/(?!namespaces\/).*\/team-a\//.test(Buffer.from(kv.key, 'base64').toString())).length,
      );
      expect(report.kubernetes?.encodings.encrypted).toBe(260);
    } finally {
      await reader.close();
    }
  });

  it('inspect --keys lists exactly the live keys, in key order', async () => {
    const r = await runCli(['etcd', 'inspect', file, '--keys', '-o', 'json'], { timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { liveKeys: number; keys: { key: string; modRevision: number }[] };
    const want = kvs.map((kv) => Buffer.from(kv.key, 'base64')).sort(Buffer.compare).map((k) => k.toString());
    expect(out.keys.map((k) => k.key)).toEqual(want);
    expect(out.liveKeys).toBe(want.length);
    const k8s = await runCli(['etcd', 'inspect', file, '--kubernetes', '--prefix', '/registry/']);
    expect(k8s.code).toBe(0);
    expect(k8s.stdout).toMatch(/^configmaps\s+yes\s+1200\s+4\s/m);
    expect(k8s.stdout).toMatch(/^nodes\s+no\s+8\s+-\s/m);
  });
});

/**
 * Zeroes the page that holds the root bucket's root, as named by the newer meta page (bbolt's meta
 * page: a 16-byte page header, then magic, version, pageSize, flags, root bucket {root pgid,
 * sequence}, freelist, pgid, txid): a page every reader must visit, whatever the layout.
 */
function zeroRootPage(b: Buffer): Buffer {
  const c = Buffer.from(b);
  const pageSize = b.readUInt32LE(16 + 8);
  const meta = (n: number) => ({ root: Number(b.readBigUInt64LE(n * pageSize + 32)), txid: b.readBigUInt64LE(n * pageSize + 64) });
  const m0 = meta(0);
  const m1 = meta(1);
  const root = (m1.txid > m0.txid ? m1 : m0).root;
  c.fill(0, root * pageSize, (root + 1) * pageSize);
  return c;
}

describe('damaged snapshots', () => {
  let dir: string;
  let good: Buffer;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-etcd-bad-'));
    const h = await startEtcd({ version: '3.5' });
    try {
      const client = new Etcd3({ hosts: h.endpoint });
      for (let i = 0; i < 500; i += 50) await Promise.all(Array.from({ length: 50 }, (_, j) => client.put(`/k/${i + j}`).value(bytesOf(i + j, 500)).exec()));
      client.close();
      await h.ctl(['snapshot', 'save', join(dir, 'good.db')]);
      good = await readFile(join(dir, 'good.db'));
    } finally {
      await h.stop();
    }
  }, 120_000);

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const variants: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['truncated to half', (b) => b.subarray(0, Math.floor(b.length / 2)), /truncated/],
    ['a flipped byte in both meta pages', (b) => { const c = Buffer.from(b); c[16 + 20] = (c[16 + 20] as number) ^ 0xff; c[4096 + 16 + 20] = (c[4096 + 16 + 20] as number) ^ 0xff; return c; }, /meta pages are invalid/],
    ['random bytes', (b) => bytesOf(99, b.length), /not a bbolt database/],
    ['a zeroed branch/leaf page', (b) => zeroRootPage(b), /corrupt|integrity/],
  ];

  it.each(variants)('%s: IntegrityError, exit 5', async (_name, damage, msg) => {
    const p = join(dir, 'bad.db');
    await writeFile(p, damage(good));
    await expect(snapshotStatus(p)).rejects.toThrow(msg);
    const r = await runCli(['etcd', 'status', p]);
    expect(r.code).toBe(5);
    expect(r.stderr).toMatch(/^Error: .*\n/);
    expect(r.stderr).not.toMatch(/at .*\.js/); // no stack
  });

  it('one damaged meta page: falls back to the other, like etcdutl', async () => {
    const c = Buffer.from(good);
    c[16 + 20] = (c[16 + 20] as number) ^ 0xff;
    const p = join(dir, 'meta0.db');
    await writeFile(p, c);
    expect(await snapshotStatus(p)).toEqual(await toolStatus(rig.bins.etcd35.etcdutl, p));
  });

  it('a missing file: exit 4', async () => {
    const r = await runCli(['etcd', 'status', join(dir, 'nope.db')]);
    expect(r.code).toBe(4);
    const i = await runCli(['etcd', 'inspect', join(dir, 'nope.db')]);
    expect(i.code).toBe(4);
  });
});

describe('etcd status and inspect of stored backups', () => {
  it('give the same numbers for a backup id (downloaded, decrypted, decompressed) as for the plain file', async () => {
    const etcd = await startEtcd({ version: '3.5' });
    const work = await mkdtemp(join(tmpdir(), 'lifeboat-status-id-'));
    try {
      const client = new Etcd3({ hosts: etcd.endpoint });
      await Promise.all(Array.from({ length: 300 }, (_, i) => client.put(`/registry/configmaps/team-a/cm-${i}`).value(json('ConfigMap', 'team-a', `cm-${i}`))));
      client.close();
      const key = join(work, 'age.key');
      await execFileP('age-keygen', ['-o', key]);
      const recipient = (await execFileP('age-keygen', ['-y', key])).stdout.trim();
      const store = join(work, 'store');
      const snap = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--encrypt-to', recipient, '-o', 'json']);
      expect(snap.code, snap.stderr).toBe(0);
      const id = (JSON.parse(snap.stdout) as { id: string }).id;
      const plain = join(work, 'plain.db');
      await execFileP(rig.bins.etcd35.etcdctl, ['--endpoints', etcd.endpoint, 'snapshot', 'save', plain]);

      const byId = await runCli(['etcd', 'status', id, '--store', store, '--identity-file', key, '-o', 'json']);
      expect(byId.code, byId.stderr).toBe(0);
      expect(JSON.parse(byId.stdout)).toEqual(await toolStatus(rig.bins.etcd35.etcdutl, plain));
      const inspect = await runCli(['etcd', 'inspect', id, '--store', store, '--identity-file', key, '--kubernetes', '-o', 'json']);
      expect(inspect.code, inspect.stderr).toBe(0);
      expect(JSON.stringify(JSON.parse(inspect.stdout))).toContain('"configmaps"');
      const noKey = await runCli(['etcd', 'status', id, '--store', store]);
      expect(noKey.code).toBe(2);
    } finally {
      await etcd.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('the hand-built bbolt fixture', () => {
  it('gets the same status from etcdutl 3.5, etcdctl 3.4 and lifeboat', async () => {
    const { build } = await import('../helpers/bbolt-fixture.js');
    const work = await mkdtemp(join(tmpdir(), 'lifeboat-fixture-'));
    try {
      const file = join(work, 'fixture.db');
      await writeFile(file, build());
      const ours = await snapshotStatus(file);
      expect(await toolStatus(rig.bins.etcd35.etcdutl, file)).toEqual(ours);
      expect(await toolStatus(rig.bins.etcd34.etcdctl, file)).toEqual(ours);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
