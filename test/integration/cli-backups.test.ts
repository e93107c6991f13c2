import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { Catalogue } from '../../src/store/catalogue.js';
import { FileStore } from '../../src/store/file-store.js';
import { S3Store } from '../../src/store/s3-store.js';
import { runCli } from '../helpers/cli.js';
import { tinyDumpTar } from '../helpers/archive.js';
import { patternBytes } from '../helpers/streams.js';
import { minioConfig } from '../helpers/stores.js';

/** A backup through the catalogue: a resource dump holds a real (tiny) archive, so verify can read it. */
async function seed(cat: Catalogue, when: string, kind: 'etcd' | 'resources' = 'etcd') {
  const w = cat.begin(kind, { now: new Date(when) });
  const body = kind === 'resources' ? await tinyDumpTar(2 + (Date.parse(when) % 3)) : patternBytes(4096, Date.parse(when) % 1000);
  await w.put(kind === 'etcd' ? 'snapshot.db' : 'resources.tar', Readable.from([body]), { describe: () => ({ codec: 'none' as const }) });
  return w.commit({ source: { cluster: 'test', endpoint: 'https://127.0.0.1:2379' } });
}

describe('backups commands on a local directory', () => {
  let dir: string;
  let cat: Catalogue;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-cli-'));
    cat = new Catalogue(new FileStore(dir));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('list says so when the store is empty', async () => {
    const r = await runCli(['backups', 'list', '--store', dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('No backups in file://');
  });

  it('list shows committed backups as a table and as JSON; the store comes from LIFEBOAT_STORE too', async () => {
    const a = await seed(cat, '2026-11-20T10:00:00Z');
    const b = await seed(cat, '2026-11-21T10:00:00Z', 'resources');
    const table = await runCli(['backups', 'list', '--store', dir]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ID\s+KIND\s+CREATED/);
    expect(table.stdout.indexOf(b.id)).toBeLessThan(table.stdout.indexOf(a.id)); // newest first
    const json = await runCli(['backups', 'list', '-o', 'json'], { env: { LIFEBOAT_STORE: `file://${dir}` } });
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout) as { backups: { id: string; ok: boolean }[] };
    expect(parsed.backups.map((x) => x.id)).toEqual([b.id, a.id]);
    expect(parsed.backups.every((x) => x.ok)).toBe(true);
    const yaml = await runCli(['backups', 'list', '--store', dir, '--output', 'yaml', '--kind', 'etcd']);
    expect(yaml.stdout).toContain(`id: ${a.id}`);
    expect(yaml.stdout).not.toContain(b.id);
  });

  it('a manifest that does not parse is a warning on stderr (JSON lines without a TTY), not a crash', async () => {
    const good = await seed(cat, '2026-11-20T10:00:00Z');
    await writeFile(join(dir, 'etcd', good.id, 'manifest.json'), '{ broken');
    await seed(cat, '2026-11-21T10:00:00Z');
    const r = await runCli(['backups', 'list', '--store', dir, '-o', 'json']);
    expect(r.code).toBe(0);
    const warning = r.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; msg: string });
    expect(warning).toEqual([expect.objectContaining({ level: 'warn', msg: expect.stringContaining(`${good.id} has an unreadable manifest`) })]);
    expect((JSON.parse(r.stdout) as { backups: unknown[] }).backups).toHaveLength(1);
  });

  it('describe shows a manifest, and exits 4 for an unknown id and 2 for something that is not an id', async () => {
    const m = await seed(cat, '2026-11-20T10:00:00Z');
    const ok = await runCli(['backups', 'describe', m.id, '--store', dir]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(m.objects[0]!.sha256);
    const missing = await runCli(['backups', 'describe', 'etcd-20200101T000000Z-0000', '--store', dir]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toContain('No backup etcd-20200101T000000Z-0000');
    expect(missing.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const bad = await runCli(['backups', 'describe', 'latest', '--store', dir]);
    expect(bad.code).toBe(2);
  });

  it('verify exits 0 for an intact backup and 5 when a stored byte changed', async () => {
    const m = await seed(cat, '2026-11-20T10:00:00Z', 'resources');
    const ok = await runCli(['backups', 'verify', m.id, '--store', dir]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/archive\s+ok\s+\d+ entries, \d+ objects of 1 resources parse/);
    const file = join(dir, 'resources', m.id, 'resources.tar');
    const bytes = Buffer.from(await (await import('node:fs/promises')).readFile(file));
    bytes[100] = bytes[100]! ^ 0xff;
    await writeFile(file, bytes);
    const r = await runCli(['backups', 'verify', m.id, '--store', dir]);
    expect(r.code).toBe(5);
    expect(r.stderr).toContain('sha256 mismatch');
  });

  it('verify reads a dump archive through: a tar that is not one, or an index that does not match, exits 5', async () => {
    const put = async (body: Buffer) => {
      const w = cat.begin('resources');
      await w.put('resources.tar', Readable.from([body]), { describe: () => ({ codec: 'none' as const }) });
      return (await w.commit({ source: { cluster: 'test' } })).id;
    };
    const notTar = await put(patternBytes(5000, 3));
    const r1 = await runCli(['backups', 'verify', notTar, '--store', dir]);
    expect(r1.code).toBe(5);
    const good = await tinyDumpTar(2);
    const lying = Buffer.from(good.toString('latin1').replace('"objects":2', '"objects":3'), 'latin1');
    expect(lying.length).toBe(good.length);
    const r2 = await runCli(['backups', 'verify', await put(lying), '--store', dir]);
    expect(r2.code).toBe(5);
    expect(r2.stderr).toContain('index.json says 3, archive has 2');
  });

  it('delete refuses without --yes when nobody can confirm, and deletes with it', async () => {
    const m = await seed(cat, '2026-11-20T10:00:00Z');
    const refused = await runCli(['backups', 'delete', m.id, '--store', dir]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('without --yes');
    expect((await cat.list()).backups).toHaveLength(1);
    const typo = await runCli(['backups', 'delete', m.id, 'etcd-20200101T000000Z-0000', '--store', dir, '--yes']);
    expect(typo.code).toBe(4);
    expect((await cat.list()).backups).toHaveLength(1); // a typo deletes nothing
    const done = await runCli(['backups', 'delete', m.id, '--store', dir, '--yes', '-o', 'json']);
    expect(done.code).toBe(0);
    expect(JSON.parse(done.stdout)).toEqual({ deleted: [{ id: m.id, deletedObjects: 2 }] });
    expect((await cat.list()).backups).toHaveLength(0);
  });

  it('prune: needs a policy, previews with --dry-run, needs --yes, then deletes', async () => {
    const ids = [];
    for (const d of ['17', '18', '19', '20']) ids.push((await seed(cat, `2026-11-${d}T10:00:00Z`)).id);
    const noPolicy = await runCli(['backups', 'prune', '--store', dir]);
    expect(noPolicy.code).toBe(2);
    expect(noPolicy.stderr).toContain('No retention policy');
    const dry = await runCli(['backups', 'prune', '--store', dir, '--keep-last', '2', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain('would remove');
    expect(dry.stdout).toContain('dry run: nothing deleted');
    expect((await cat.list()).backups).toHaveLength(4);
    const refused = await runCli(['backups', 'prune', '--store', dir, '--keep-last', '2']);
    expect(refused.code).toBe(2);
    expect((await cat.list()).backups).toHaveLength(4);
    const done = await runCli(['backups', 'prune', '--store', dir, '--keep-last', '2', '--yes', '-o', 'json']);
    expect(done.code).toBe(0);
    const report = JSON.parse(done.stdout) as { removed: { id: string }[]; kept: { id: string }[] };
    expect(report.removed.map((r) => r.id).sort()).toEqual([ids[0], ids[1]].sort());
    expect((await cat.list()).backups.map((b) => b.manifest.id).sort()).toEqual([ids[2], ids[3]].sort());
    const badDuration = await runCli(['backups', 'prune', '--store', dir, '--keep-within', 'a week']);
    expect(badDuration.code).toBe(2);
    expect(badDuration.stderr).toContain('Invalid --keep-within');
  });

  it('bad store input: unknown scheme is a usage error; a path through a file is one clear sentence', async () => {
    const scheme = await runCli(['backups', 'list', '--store', 'gs://bucket/x']);
    expect(scheme.code).toBe(2);
    expect(scheme.stderr).toContain('Unknown store scheme "gs://"');
    await writeFile(join(dir, 'a-file'), 'x');
    const through = await runCli(['backups', 'list', '--store', join(dir, 'a-file', 'sub')]);
    expect(through.code).toBe(1);
    expect(through.stderr).toMatch(/^Error: .*not a directory/);
    expect(through.stderr).not.toMatch(/\n\s+at /);
    const flag = await runCli(['backups', 'list', '--no-such-flag']);
    expect(flag.code).toBe(2);
  });
});

describe('backups commands on S3 (MinIO)', () => {
  const m = () => inject('rig').minio;
  const env = () => ({ AWS_ACCESS_KEY_ID: m().accessKey, AWS_SECRET_ACCESS_KEY: m().secretKey, AWS_REGION: m().region });

  it('lists, describes and verifies backups in a bucket prefix', async () => {
    const cfg = minioConfig();
    const store = new S3Store(cfg);
    const cat = new Catalogue(store);
    const b = await seed(cat, '2026-11-20T10:00:00Z', 'resources');
    const url = `s3://${cfg.bucket}/${cfg.prefix}`;
    const common = ['--store', url, '--s3-endpoint', m().endpoint, '--s3-force-path-style'];
    const list = await runCli(['backups', 'list', ...common, '-o', 'json'], { env: env() });
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as { backups: { id: string }[] }).backups.map((x) => x.id)).toEqual([b.id]);
    const viaEnv = await runCli(['backups', 'verify', b.id], {
      env: { ...env(), LIFEBOAT_STORE: url, LIFEBOAT_S3_ENDPOINT: m().endpoint, LIFEBOAT_S3_FORCE_PATH_STYLE: 'true' },
    });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toContain(`Backup ${b.id} verified.`);
    await cat.delete(b.id);
    store.destroy();
  });

  it('a missing bucket exits 4 naming the bucket', async () => {
    const r = await runCli(['backups', 'list', '--store', 's3://no-such-bucket-here/x', '--s3-endpoint', m().endpoint, '--s3-force-path-style'], {
      env: env(),
    });
    expect(r.code).toBe(4);
    expect(r.stderr).toContain('Bucket no-such-bucket-here does not exist');
  });

  it('wrong credentials exit 1 saying the credentials were rejected', async () => {
    const r = await runCli(['backups', 'list', '--store', `s3://${m().bucket}/x`, '--s3-endpoint', m().endpoint, '--s3-force-path-style'], {
      env: { ...env(), AWS_SECRET_ACCESS_KEY: 'wrong-secret-key' },
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('S3 credentials were rejected');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('an unreachable endpoint exits 1 saying it cannot be reached', async () => {
    const srv = createServer();
    await new Promise<void>((res) => srv.listen(0, '127.0.0.1', res));
    const port = (srv.address() as { port: number }).port;
    await new Promise<void>((res) => srv.close(() => res()));
    const started = Date.now();
    const r = await runCli(['backups', 'list', '--store', 's3://some-bucket/x', '--s3-endpoint', `http://127.0.0.1:${port}`, '--s3-force-path-style'], {
      env: env(),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Cannot reach the S3 endpoint');
    expect(Date.now() - started).toBeLessThan(30_000); // retries are capped, not multiplied
  });
});
