import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NotFoundError } from '../../src/cli/errors.js';
import { RetryingStore } from '../../src/store/retry.js';
import { failingStream, patternBytes, readAll, sha256 } from '../helpers/streams.js';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { S3Store } from '../../src/store/s3-store.js';
import { fileFixture, minioConfig, openUploads, s3Fixture, type StoreFixture } from '../helpers/stores.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;

/** One conformance suite, run against every backend. */
describe.each([
  ['file', fileFixture],
  ['s3 (MinIO)', s3Fixture],
])('ObjectStore conformance: %s', (_name, make) => {
  let fx: StoreFixture;
  beforeEach(async () => {
    fx = await make();
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('put returns size and sha256 of the stored bytes, and get returns them', async () => {
    const data = patternBytes(3 * MiB + 123);
    const res = await fx.store.put('etcd/a/snapshot.db', Readable.from([data.subarray(0, MiB), data.subarray(MiB)]));
    expect(res).toEqual({ key: 'etcd/a/snapshot.db', size: data.length, sha256: sha256(data) });
    const back = await readAll(await fx.store.get('etcd/a/snapshot.db'));
    expect(sha256(back)).toBe(sha256(data));
  });

  it('a multipart-sized put (several parts) round-trips', async () => {
    const data = patternBytes(20 * MiB, 7);
    const res = await fx.store.put('big/object', Readable.from([data]), { expectedSize: data.length });
    expect(res.sha256).toBe(sha256(data));
    expect((await fx.store.stat('big/object'))?.size).toBe(data.length);
    expect(sha256(await readAll(await fx.store.get('big/object')))).toBe(sha256(data));
  });

  it('a put given the digest of its bytes reports that digest instead of hashing them again', async () => {
    const data = patternBytes(12 * MiB + 3, 8);
    const told = 'ab'.repeat(32);
    const res = await fx.store.put('known/object', Readable.from([data]), { expectedSize: data.length, knownSha256: () => told });
    expect(res).toEqual({ key: 'known/object', size: data.length, sha256: told });
    expect(sha256(await readAll(await fx.store.get('known/object')))).toBe(sha256(data));
  });

  it('an empty object is an object', async () => {
    const res = await fx.store.put('empty', Readable.from([]));
    expect(res.size).toBe(0);
    expect((await fx.store.stat('empty'))?.size).toBe(0);
  });

  it('get from an offset returns the tail', async () => {
    const data = patternBytes(100_000, 3);
    await fx.store.put('x/tail', Readable.from([data]));
    const tail = await readAll(await fx.store.get('x/tail', { start: 99_000 }));
    expect(tail.equals(data.subarray(99_000))).toBe(true);
  });

  it('stat describes an object, and says undefined for a missing one', async () => {
    await fx.store.put('s/one', Readable.from([Buffer.from('hello')]));
    const info = await fx.store.stat('s/one');
    expect(info?.size).toBe(5);
    expect(info?.modified.getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(await fx.store.stat('s/missing')).toBeUndefined();
  });

  it('get of a missing object is NotFoundError', async () => {
    await expect(fx.store.get('nope/nothing')).rejects.toBeInstanceOf(NotFoundError);
  });

  it('list returns exactly the keys under a prefix', async () => {
    for (const k of ['etcd/1/a', 'etcd/1/b', 'etcd/2/a', 'resources/1/a']) await fx.store.put(k, Readable.from([Buffer.from(k)]));
    const keys = async (p: string) => {
      const out: string[] = [];
      for await (const o of fx.store.list(p)) out.push(o.key);
      return out.sort();
    };
    expect(await keys('etcd/')).toEqual(['etcd/1/a', 'etcd/1/b', 'etcd/2/a']);
    expect(await keys('etcd/1/')).toEqual(['etcd/1/a', 'etcd/1/b']);
    expect(await keys('resources/')).toEqual(['resources/1/a']);
    expect(await keys('none/')).toEqual([]);
  });

  it('put replaces an existing object whole', async () => {
    await fx.store.put('r/obj', Readable.from([Buffer.from('first version, longer')]));
    await fx.store.put('r/obj', Readable.from([Buffer.from('second')]));
    expect((await readAll(await fx.store.get('r/obj'))).toString()).toBe('second');
  });

  it('delete removes an object; deleting a missing one is not an error', async () => {
    await fx.store.put('d/obj', Readable.from([Buffer.from('x')]));
    await fx.store.delete('d/obj');
    expect(await fx.store.stat('d/obj')).toBeUndefined();
    await fx.store.delete('d/obj');
  });

  it('a put whose source fails half-way leaves nothing behind', async () => {
    const data = patternBytes(24 * MiB, 11);
    const err = new Error('etcd went away');
    await expect(fx.store.put('etcd/x/snapshot.db', failingStream(data, 12 * MiB, err), { expectedSize: data.length })).rejects.toThrow(
      'etcd went away',
    );
    expect(await fx.store.stat('etcd/x/snapshot.db')).toBeUndefined();
    const listed: string[] = [];
    for await (const o of fx.store.list('')) listed.push(o.key);
    expect(listed).toEqual([]);
    expect(await fx.leftovers()).toEqual([]);
  });

  it('a put aborted by its signal leaves nothing behind', async () => {
    const ac = new AbortController();
    let sent = 0;
    const block = patternBytes(MiB, 5);
    const body = new Readable({
      read() {
        sent += block.length;
        if (sent === 10 * MiB) ac.abort();
        this.push(block);
      },
    });
    await expect(fx.store.put('etcd/y/snapshot.db', body, { signal: ac.signal })).rejects.toThrow(/abort/i);
    expect(await fx.store.stat('etcd/y/snapshot.db')).toBeUndefined();
    expect(await fx.leftovers()).toEqual([]);
  });

  it('keys that escape the store are refused', async () => {
    await expect(fx.store.put('../escape', Readable.from([Buffer.from('x')]))).rejects.toThrow(/invalid object key/);
    await expect(fx.store.get('a/../../b')).rejects.toThrow(/invalid object key/);
  });

  it('works behind the retry wrapper', async () => {
    const wrapped = new RetryingStore(fx.store);
    const data = patternBytes(2 * MiB, 9);
    await wrapped.put('w/obj', Readable.from([data]));
    expect(sha256(await readAll(await wrapped.get('w/obj', { start: 10 })))).toBe(sha256(data.subarray(10)));
    expect((await wrapped.stat('w/obj'))?.size).toBe(data.length);
  });

  it('streams a 1 GiB put with peak RSS under 150 MB', async () => {
    const { stdout } = await run(process.execPath, ['test/integration/fixtures/put-large.mjs', JSON.stringify(fx.config), 'large/1gib', '1024'], {
      maxBuffer: 1024 * 1024,
    });
    const out = JSON.parse(stdout) as { size: number; sha256: string; sourceSha256: string; maxRssMB: number };
    expect(out.size).toBe(1024 * MiB);
    expect(out.sha256).toBe(out.sourceSha256);
    expect(out.maxRssMB).toBeLessThan(150);
    expect((await fx.store.stat('large/1gib'))?.size).toBe(1024 * MiB);
    console.log(`${fx.name}: 1 GiB put peak RSS ${out.maxRssMB.toFixed(0)} MB`);
  }, 300_000);
});

describe('S3 multipart puts', () => {
  it.each([1, 3])('with %i part(s) in flight, a put of many odd-sized chunks arrives whole and in order', async (queueSize) => {
    const config = { ...minioConfig(), queueSize };
    const store = new S3Store(config);
    try {
      const data = patternBytes(33 * MiB + 11, 9);
      const chunks: Buffer[] = [];
      for (let off = 0; off < data.length; off += MiB + 7) chunks.push(data.subarray(off, off + MiB + 7));
      const res = await store.put('parallel/object', Readable.from(chunks), { expectedSize: data.length });
      expect(res).toEqual({ key: 'parallel/object', size: data.length, sha256: sha256(data) });
      expect(sha256(await readAll(await store.get('parallel/object')))).toBe(sha256(data));
      expect(await openUploads(store, config.bucket, config.prefix)).toEqual([]);
      await store.delete('parallel/object');
    } finally {
      store.destroy();
    }
  });

  // Part boundaries: below one part is a single PutObject (a plain ETag); exactly one or two
  // whole parts, and one byte more, are multipart uploads of that many parts (ETag "...-N").
  it.each([
    [5 * MiB - 1, 0],
    [5 * MiB, 1],
    [10 * MiB, 2],
    [10 * MiB + 1, 3],
  ])('a put of %i bytes in 64 KiB chunks is stored whole, in %i part(s) (0: one PutObject)', async (size, parts) => {
    const config = minioConfig();
    const store = new S3Store(config);
    try {
      const data = patternBytes(size, 5);
      const chunks: Buffer[] = [];
      for (let off = 0; off < data.length; off += 64 * 1024) chunks.push(data.subarray(off, off + 64 * 1024));
      const res = await store.put('bounds/object', Readable.from(chunks), { expectedSize: size });
      expect(res).toEqual({ key: 'bounds/object', size, sha256: sha256(data) });
      expect(sha256(await readAll(await store.get('bounds/object')))).toBe(sha256(data));
      const head = await store.client.send(new HeadObjectCommand({ Bucket: config.bucket, Key: `${config.prefix}bounds/object` }));
      expect(head.ETag).toMatch(parts === 0 ? /^"[0-9a-f]{32}"$/ : new RegExp(`^"[0-9a-f]{32}-${parts}"$`));
      expect(await openUploads(store, config.bucket, config.prefix)).toEqual([]);
      await store.delete('bounds/object');
    } finally {
      store.destroy();
    }
  });
});
