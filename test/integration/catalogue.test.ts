import { CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/store/catalogue.js';
import { applyPrune, planPrune } from '../../src/store/prune.js';
import { S3Store } from '../../src/store/s3-store.js';
import { verifyStoredObjects } from '../../src/store/verify.js';
import { failingStream, patternBytes } from '../helpers/streams.js';
import { fileFixture, openUploads, s3Fixture, type StoreFixture } from '../helpers/stores.js';

async function writeBackup(cat: Catalogue, kind: 'etcd' | 'resources', when: string, cluster = 'c1') {
  const w = cat.begin(kind, { now: new Date(when), labels: { env: 'test' } });
  await w.put(kind === 'etcd' ? 'snapshot.db' : 'resources.tar', Readable.from([patternBytes(1000 + Math.floor(Math.random() * 100))]));
  return w.commit({ source: { cluster }, details: { note: 'test' } });
}

describe.each([
  ['file', fileFixture],
  ['s3 (MinIO)', s3Fixture],
])('catalogue on %s', (_name, make) => {
  let fx: StoreFixture;
  let cat: Catalogue;
  beforeEach(async () => {
    fx = await make();
    cat = new Catalogue(fx.store);
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('a committed backup is listed with its manifest; an uncommitted one is not', async () => {
    const done = await writeBackup(cat, 'etcd', '2026-11-20T10:00:00Z');
    const pending = cat.begin('etcd');
    await pending.put('snapshot.db', Readable.from([Buffer.from('data without manifest')]));
    const listing = await cat.list();
    expect(listing.backups.map((b) => b.manifest.id)).toEqual([done.id]);
    expect(listing.backups[0]?.problems).toEqual([]);
    expect(listing.backups[0]?.manifest.objects[0]?.name).toBe('snapshot.db');
    expect(listing.incomplete.map((i) => i.id)).toEqual([pending.id]);
    await expect(cat.describe(pending.id)).rejects.toMatchObject({ exitCode: 4 });
  });

  it('a backup whose data fails to store leaves nothing listed', async () => {
    const w = cat.begin('etcd');
    await expect(w.put('snapshot.db', failingStream(patternBytes(12 * 1024 * 1024), 9 * 1024 * 1024))).rejects.toThrow();
    await w.abort();
    const listing = await cat.list();
    expect(listing.backups).toEqual([]);
    expect(listing.incomplete).toEqual([]);
    expect(await fx.leftovers()).toEqual([]);
  });

  it('a manifest that does not parse is reported, never crashes list', async () => {
    const good = await writeBackup(cat, 'etcd', '2026-11-20T10:00:00Z');
    const id = 'etcd-20261121T000000Z-dead';
    await fx.store.put(`etcd/${id}/snapshot.db`, Readable.from([Buffer.from('x')]));
    await fx.store.put(`etcd/${id}/manifest.json`, Readable.from([Buffer.from('{"format": 1, "id": ')]));
    const listing = await cat.list();
    expect(listing.backups.map((b) => b.manifest.id)).toEqual([good.id]);
    expect(listing.incomplete).toHaveLength(1);
    expect(listing.incomplete[0]?.manifestError).toMatch(/not valid JSON/);
  });

  it('a backup whose data object went missing is listed as damaged and fails verification', async () => {
    const m = await writeBackup(cat, 'resources', '2026-11-20T10:00:00Z');
    expect((await verifyStoredObjects(cat, m)).ok).toBe(true);
    await fx.store.delete(`resources/${m.id}/resources.tar`);
    const [entry] = (await cat.list()).backups;
    expect(entry?.problems).toEqual(['resources.tar is missing']);
    const report = await verifyStoredObjects(cat, m);
    expect(report.ok).toBe(false);
  });

  it('verification catches a replaced object of the same size', async () => {
    const m = await writeBackup(cat, 'etcd', '2026-11-20T10:00:00Z');
    const rec = m.objects[0]!;
    await fx.store.put(`etcd/${m.id}/${rec.name}`, Readable.from([Buffer.alloc(rec.size, 0x41)]));
    const report = await verifyStoredObjects(cat, m);
    expect(report.ok).toBe(false);
    expect(report.objects[0]?.error).toBe('sha256 mismatch');
  });

  it('delete removes the manifest first and then the data', async () => {
    const m = await writeBackup(cat, 'etcd', '2026-11-20T10:00:00Z');
    const res = await cat.delete(m.id);
    expect(res.deletedObjects).toBe(2);
    const listing = await cat.list();
    expect(listing.backups).toEqual([]);
    expect(listing.incomplete).toEqual([]);
    await expect(cat.delete(m.id)).rejects.toMatchObject({ exitCode: 4 });
  });

  it('prune applies the policy per kind and cluster, keeps the newest, and collects garbage', async () => {
    const ids: Record<string, string> = {};
    for (const day of ['15', '16', '17', '18', '19', '20']) {
      ids[`etcd-${day}`] = (await writeBackup(cat, 'etcd', `2026-11-${day}T12:00:00Z`)).id;
    }
    ids['etcd-other'] = (await writeBackup(cat, 'etcd', '2026-11-01T12:00:00Z', 'c2')).id;
    ids['res-19'] = (await writeBackup(cat, 'resources', '2026-11-19T12:00:00Z')).id;
    const orphan = cat.begin('etcd', { now: new Date('2026-11-10T00:00:00Z') });
    await orphan.put('snapshot.db', Readable.from([Buffer.from('orphan')]));

    const plan = await planPrune(cat, { policy: { last: 2 }, graceMs: 0, now: new Date(Date.now() + 2000) });
    expect(plan.report.removed.map((r) => r.id).sort()).toEqual([ids['etcd-15'], ids['etcd-16'], ids['etcd-17'], ids['etcd-18']].sort());
    expect(plan.report.kept.map((k) => k.id).sort()).toEqual([ids['etcd-19'], ids['etcd-20'], ids['etcd-other'], ids['res-19']].sort());
    expect(plan.report.garbage.map((g) => g.id)).toEqual([orphan.id]);
    // Planning deleted nothing.
    expect((await cat.list()).backups).toHaveLength(8);

    const report = await applyPrune(cat, plan);
    expect(report.dryRun).toBe(false);
    const after = await cat.list();
    expect(after.backups.map((b) => b.manifest.id).sort()).toEqual([ids['etcd-19'], ids['etcd-20'], ids['etcd-other'], ids['res-19']].sort());
    expect(after.incomplete).toEqual([]);
  });

  it('prune leaves recent incomplete backups alone (they may still be writing)', async () => {
    await writeBackup(cat, 'etcd', '2026-11-20T10:00:00Z');
    const pending = cat.begin('etcd');
    await pending.put('snapshot.db', Readable.from([Buffer.from('still writing')]));
    const plan = await planPrune(cat, { policy: { last: 1 }, graceMs: 3_600_000 });
    expect(plan.report.garbage).toEqual([]);
    await applyPrune(cat, plan);
    expect((await cat.list()).incomplete.map((i) => i.id)).toEqual([pending.id]);
  });

  it('prune never deletes damaged backups or unreadable manifests', async () => {
    const newest = await writeBackup(cat, 'etcd', '2026-11-20T10:00:00Z');
    const damaged = await writeBackup(cat, 'etcd', '2026-11-10T10:00:00Z');
    await fx.store.delete(`etcd/${damaged.id}/snapshot.db`);
    const bad = 'etcd-20261101T000000Z-beef';
    await fx.store.put(`etcd/${bad}/manifest.json`, Readable.from([Buffer.from('not json')]));
    const report = await applyPrune(cat, await planPrune(cat, { policy: { last: 1 }, graceMs: 0 }));
    expect(report.removed).toEqual([]);
    expect(report.skipped.map((s) => s.id).sort()).toEqual([bad, damaged.id].sort());
    const after = await cat.list();
    expect(after.backups.map((b) => b.manifest.id).sort()).toEqual([damaged.id, newest.id].sort());
  });
});

describe('garbage from interrupted uploads', () => {
  it('file store: stale temporary files are removed by prune, fresh ones are not', async () => {
    const fx = await fileFixture();
    try {
      const cat = new Catalogue(fx.store);
      await writeBackup(cat, 'etcd', '2026-11-20T10:00:00Z');
      const root = (fx.config as { path: string }).path;
      await mkdir(join(root, 'etcd', 'etcd-20261120T110000Z-0000'), { recursive: true });
      await writeFile(join(root, 'etcd', 'etcd-20261120T110000Z-0000', '.lifeboat-tmp-abc-snapshot.db'), 'partial');
      expect((await cat.list()).incomplete).toEqual([]); // temporary files are never listed
      const report = await applyPrune(cat, await planPrune(cat, { policy: { last: 1 }, graceMs: 3_600_000 }));
      expect(report.incompleteUploadsRemoved).toBe(0);
      const report2 = await applyPrune(cat, await planPrune(cat, { policy: { last: 1 }, graceMs: 0, now: new Date(Date.now() + 1000) }));
      expect(report2.incompleteUploadsRemoved).toBe(1);
      expect(await fx.leftovers()).toEqual([]);
    } finally {
      await fx.cleanup();
    }
  });

  it('s3 store: stale open multipart uploads are aborted by prune', async () => {
    const fx = await s3Fixture();
    try {
      const s3 = fx.store as S3Store;
      const cfg = fx.config as { bucket: string; prefix: string };
      await s3.client.send(new CreateMultipartUploadCommand({ Bucket: cfg.bucket, Key: `${cfg.prefix}etcd/etcd-20261120T110000Z-0000/snapshot.db` }));
      await s3.client.send(new PutObjectCommand({ Bucket: cfg.bucket, Key: 'outside-the-prefix', Body: 'x' }));
      const cat = new Catalogue(fx.store);
      await writeBackup(cat, 'etcd', '2026-11-20T10:00:00Z');
      const report = await applyPrune(cat, await planPrune(cat, { policy: { last: 1 }, graceMs: 0, now: new Date(Date.now() + 5000) }));
      expect(report.incompleteUploadsRemoved).toBe(1);
      expect(await openUploads(s3, cfg.bucket, cfg.prefix)).toEqual([]);
    } finally {
      await fx.cleanup();
    }
  });
});
