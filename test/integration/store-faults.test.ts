/**
 * The S3 store under network faults: a real MinIO behind a fault-injecting TCP proxy
 * (./fault-proxy.ts). The store under test talks to the proxy; every check of what was actually
 * stored goes to MinIO directly.
 */
import { AbortMultipartUploadCommand, CreateMultipartUploadCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { LifeboatError } from '../../src/cli/errors.js';
import { Catalogue } from '../../src/store/catalogue.js';
import { RetryingStore } from '../../src/store/retry.js';
import { choosePartSize, S3Store } from '../../src/store/s3-store.js';
import { s3, startFaultProxy, type FaultProxy, type ProxiedRequest } from './fault-proxy.js';

const MiB = 1024 * 1024;
const TEST_TIMEOUT = 30_000;
const MAX_ATTEMPTS = 4; // the SDK's attempts per request, as configured below
const rig = inject('rig');

// ---------------------------------------------------------------------------
// Deterministic data
// ---------------------------------------------------------------------------

/** xorshift32 bytes in odd-sized chunks (so chunk and part boundaries never line up). */
function* pattern(size: number, seed: number): Generator<Buffer> {
  let x = seed >>> 0 || 1;
  const chunk = MiB + 4096 + 12;
  for (let left = size; left > 0; ) {
    const n = Math.min(chunk, left);
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) {
      x = (x ^ (x << 13)) >>> 0;
      x = (x ^ (x >>> 17)) >>> 0;
      x = (x ^ (x << 5)) >>> 0;
      words[i] = x;
    }
    yield Buffer.from(words.buffer, 0, n);
    left -= n;
  }
}

const source = (size: number, seed: number): Readable => Readable.from(pattern(size, seed));

function patternSha(size: number, seed: number): string {
  const h = createHash('sha256');
  for (const b of pattern(size, seed)) h.update(b);
  return h.digest('hex');
}

async function digest(stream: Readable): Promise<{ size: number; sha256: string }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    h.update(c);
    size += c.length;
  }
  return { size, sha256: h.digest('hex') };
}

// ---------------------------------------------------------------------------
// Per-test stores: `store` goes through the proxy, `direct` straight to MinIO
// ---------------------------------------------------------------------------

let proxy: FaultProxy;
let prefix: string;
let inner: S3Store;
let store: RetryingStore;
let direct: S3Store;
const extraStores: S3Store[] = [];

function s3Config(endpoint: string, secret = rig.minio.secretKey, accessKey = rig.minio.accessKey) {
  return {
    bucket: rig.minio.bucket,
    prefix,
    endpoint,
    region: rig.minio.region,
    forcePathStyle: true,
    credentials: { accessKeyId: accessKey, secretAccessKey: secret },
    idleTimeoutMs: 1500,
    maxAttempts: MAX_ATTEMPTS,
  };
}

const policy = { retries: 4, minDelayMs: 50, maxDelayMs: 500 };

beforeEach(async () => {
  proxy = await startFaultProxy({ target: rig.minio.endpoint });
  prefix = `faults/${randomBytes(6).toString('hex')}/`;
  inner = new S3Store(s3Config(proxy.url));
  store = new RetryingStore(inner, policy);
  direct = new S3Store(s3Config(rig.minio.endpoint));
});

afterEach(async () => {
  inner.destroy();
  for (const s of extraStores.splice(0)) s.destroy();
  await proxy.close();
  // Leave the bucket clean (after the assertions, so a leak still fails its test).
  for await (const o of direct.list('')) await direct.delete(o.key);
  await direct.cleanupIncomplete(new Date(Date.now() + 3_600_000));
  direct.destroy();
});

/**
 * Multipart uploads MinIO still has open under the test prefix (optionally for one key), as keys.
 * Lists without `Prefix` and filters here: MinIO only honours a Prefix that is a whole key.
 */
async function openUploads(key?: string): Promise<string[]> {
  const want = prefix + (key ?? '');
  const out: string[] = [];
  let keyMarker: string | undefined;
  let uploadIdMarker: string | undefined;
  for (;;) {
    const res = await direct.client.send(
      new ListMultipartUploadsCommand({
        Bucket: rig.minio.bucket,
        ...(keyMarker ? { KeyMarker: keyMarker } : {}),
        ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
      }),
    );
    for (const u of res.Uploads ?? []) {
      if (u.Key && (key === undefined ? u.Key.startsWith(want) : u.Key === want)) out.push(u.Key.slice(prefix.length));
    }
    if (!res.IsTruncated) return out;
    keyMarker = res.NextKeyMarker;
    uploadIdMarker = res.NextUploadIdMarker;
  }
}

const forKey =
  (key: string, op: (r: ProxiedRequest) => boolean) =>
  (r: ProxiedRequest): boolean =>
    op(r) && decodeURIComponent(r.path) === `/${rig.minio.bucket}/${prefix}${key}`;

const part = (n: number) => (r: ProxiedRequest) => s3.uploadPart(r) && s3.partNumber(r) === n;

/** How many UploadPart requests the proxy saw, per part number. */
function partAttempts(): Record<number, number> {
  const out: Record<number, number> = {};
  for (const r of proxy.requests(s3.uploadPart)) out[s3.partNumber(r)] = (out[s3.partNumber(r)] ?? 0) + 1;
  return out;
}

// ---------------------------------------------------------------------------

describe('S3 store under network faults (MinIO behind a fault proxy)', () => {
  it('(self-check) openUploads() sees an open multipart upload', async () => {
    const created = await direct.client.send(
      new CreateMultipartUploadCommand({ Bucket: rig.minio.bucket, Key: `${prefix}probe/open.bin` }),
    );
    expect(await openUploads()).toEqual(['probe/open.bin']);
    expect(await openUploads('probe/open.bin')).toEqual(['probe/open.bin']);
    expect(await openUploads('probe/other.bin')).toEqual([]);
    await direct.client.send(
      new AbortMultipartUploadCommand({ Bucket: rig.minio.bucket, Key: `${prefix}probe/open.bin`, UploadId: created.UploadId }),
    );
    expect(await openUploads()).toEqual([]);
  });

  it(
    'a multipart put survives resets, SlowDown, a stalled part and a cut part body, and stores every byte',
    async () => {
      const SIZE = 40 * MiB;
      const parts = Math.ceil(SIZE / choosePartSize(SIZE));
      expect(parts).toBeGreaterThanOrEqual(5);
      proxy.plan([
        { match: part(1), fault: 'reset', count: 1 },
        { match: part(2), fault: 'reset', count: 2 },
        { match: part(3), fault: 'slowdown', count: 2 },
        { match: part(4), fault: 'stall', count: 1 },
        { match: part(5), fault: 'reset-mid-body', afterBytes: 1 * MiB, count: 1 },
      ]);

      const t0 = Date.now();
      const res = await store.put('big/object.bin', source(SIZE, 1), { expectedSize: SIZE });
      const elapsed = Date.now() - t0;

      const expected = patternSha(SIZE, 1);
      expect(res).toEqual({ key: 'big/object.bin', size: SIZE, sha256: expected });
      // Every planned fault was injected, and each part took exactly the attempts it was made to.
      expect(proxy.pending()).toBe(0);
      expect(proxy.stats.faults).toEqual({ reset: 3, slowdown: 2, stall: 1, 'reset-mid-body': 1, 'reset-mid-response': 0, delay: 0 });
      const faultFree = Object.fromEntries(Array.from({ length: parts - 5 }, (_, i) => [i + 6, 1]));
      expect(partAttempts()).toEqual({ 1: 2, 2: 3, 3: 3, 4: 2, 5: 2, ...faultFree });
      expect(proxy.requests(s3.createMultipartUpload)).toHaveLength(1);
      expect(proxy.requests(s3.completeMultipartUpload)).toHaveLength(1);
      // The stalled part cost one idle timeout (1.5 s), not a hang.
      expect(elapsed).toBeGreaterThanOrEqual(1400);

      // What MinIO holds, read directly.
      expect(await direct.stat('big/object.bin')).toMatchObject({ size: SIZE });
      expect(await digest(await direct.get('big/object.bin'))).toEqual({ size: SIZE, sha256: expected });
      expect(await openUploads()).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'faults on CreateMultipartUpload and CompleteMultipartUpload (before they reach the server) are retried',
    async () => {
      const SIZE = 24 * MiB;
      proxy.plan([
        { match: s3.createMultipartUpload, fault: 'reset', count: 1 },
        { match: s3.createMultipartUpload, fault: 'slowdown', count: 2 },
        { match: s3.completeMultipartUpload, fault: 'slowdown', count: 1 },
        { match: s3.completeMultipartUpload, fault: 'reset', count: 2 },
      ]);
      const res = await store.put('mpu/edges.bin', source(SIZE, 2), { expectedSize: SIZE });
      const expected = patternSha(SIZE, 2);
      expect(res.sha256).toBe(expected);
      expect(proxy.pending()).toBe(0);
      expect(proxy.requests(s3.createMultipartUpload)).toHaveLength(4);
      expect(proxy.requests(s3.completeMultipartUpload)).toHaveLength(4);
      expect(await digest(await direct.get('mpu/edges.bin'))).toEqual({ size: SIZE, sha256: expected });
      expect(await openUploads()).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'a put whose source fails while its multipart upload is being created aborts that upload once it exists',
    async () => {
      // MinIO creates the upload at once; its answer reaches lifeboat 800 ms later, after the
      // source has failed. The upload must still be found and aborted, not left open.
      proxy.plan([{ match: s3.createMultipartUpload, fault: 'delay', delayMs: 800 }]);
      const failing = async function* () {
        yield* pattern(6 * MiB, 4);
        await new Promise((r) => setTimeout(r, 100));
        throw new Error('etcd went away');
      };
      await expect(inner.put('race/object.bin', Readable.from(failing()), { expectedSize: 64 * MiB })).rejects.toThrow(/etcd went away/);
      expect(proxy.stats.faults.delay).toBe(1);
      expect(proxy.requests(s3.createMultipartUpload)).toHaveLength(1);
      expect(proxy.requests(s3.abortMultipartUpload)).toHaveLength(1);
      expect(await openUploads()).toEqual([]);
      expect(await direct.stat('race/object.bin')).toBeUndefined();
    },
    TEST_TIMEOUT,
  );

  it(
    'faults beyond the retry budget: the put fails with one clear sentence and leaves nothing behind',
    async () => {
      const SIZE = 24 * MiB;
      const catalogue = new Catalogue(store);
      const writer = catalogue.begin('etcd');
      // A small object first (a single PutObject), as a real backup would have.
      await writer.put('meta.json', Readable.from([Buffer.from('{"hello":"world"}\n')]));
      expect(await direct.stat(writer.key('meta.json'))).toBeDefined();

      proxy.plan([{ match: s3.uploadPart, fault: 'reset', count: Infinity }]);
      const err: unknown = await writer.put('snapshot.db', source(SIZE, 3), { expectedSize: SIZE }).then(
        () => undefined,
        (e: unknown) => e,
      );
      await writer.abort(); // what production code does when a backup cannot complete

      expect(err).toBeInstanceOf(LifeboatError);
      const message = (err as Error).message;
      expect(message).not.toContain('\n');
      expect(message).not.toMatch(/\bat .*\.(js|ts):\d+/);
      expect(message).toMatch(/^[A-Z].*\.$/);
      expect(message.length).toBeLessThan(300);
      expect(message).toContain(writer.key('snapshot.db'));
      expect(message).toMatch(/ECONNRESET|EPIPE/);

      // The SDK made all its attempts at the part that failed; the part in flight beside it was
      // cancelled then (at most as many attempts), and the upload was aborted on the server.
      const attempts = Object.values(partAttempts());
      expect(attempts.length).toBeGreaterThanOrEqual(1);
      expect(Math.max(...attempts)).toBe(MAX_ATTEMPTS);
      for (const n of attempts) expect(n).toBeLessThanOrEqual(MAX_ATTEMPTS);
      expect(proxy.requests(s3.createMultipartUpload)).toHaveLength(1); // an upload did exist...
      expect(proxy.requests(s3.abortMultipartUpload).length).toBeGreaterThanOrEqual(1); // ...and was aborted

      // Nothing partial anywhere, read directly from MinIO.
      expect(await direct.stat(writer.key('snapshot.db'))).toBeUndefined();
      expect(await direct.stat(writer.key('meta.json'))).toBeUndefined();
      expect(await openUploads(writer.key('snapshot.db'))).toEqual([]);
      expect(await openUploads()).toEqual([]);
      const listing = await new Catalogue(direct).list();
      expect(listing).toEqual({ backups: [], incomplete: [], stray: [] });
    },
    TEST_TIMEOUT,
  );

  it(
    'a GET cut mid-response resumes with Range requests and yields the exact object',
    async () => {
      const SIZE = 20 * MiB;
      const expected = patternSha(SIZE, 4);
      await direct.put('read/me.bin', source(SIZE, 4), { expectedSize: SIZE });

      const getMe = forKey('read/me.bin', s3.getObject);
      const ranged = (r: ProxiedRequest) => getMe(r) && r.headers['range'] !== undefined;
      proxy.plan([
        { match: getMe, fault: 'reset-mid-response', afterBytes: 3 * MiB, count: 1 },
        { match: ranged, fault: 'reset-mid-response', afterBytes: 2 * MiB, count: 1 },
        { match: ranged, fault: 'slowdown', count: 1 },
      ]);
      const retried: string[] = [];
      const watched = new RetryingStore(inner, policy, (op) => retried.push(op));

      expect(await digest(await watched.get('read/me.bin'))).toEqual({ size: SIZE, sha256: expected });

      expect(proxy.pending()).toBe(0);
      const gets = proxy.requests(getMe);
      expect(gets.map((r) => r.fault)).toEqual(['reset-mid-response', 'reset-mid-response', 'slowdown', undefined]);
      expect(gets[0]?.headers['range']).toBeUndefined();
      const starts = gets.slice(1).map((r) => Number(/^bytes=(\d+)-$/.exec(r.headers['range'] ?? '')?.[1]));
      // Resumed after the bytes already read (at most what the proxy let through), never from 0.
      expect(starts[0]).toBeGreaterThan(0);
      expect(starts[0]).toBeLessThanOrEqual(3 * MiB);
      expect(starts[1]).toBeGreaterThan(starts[0] ?? Infinity);
      expect(starts[1]).toBeLessThanOrEqual(5 * MiB);
      expect(starts[2]).toBe(starts[1]); // the SlowDown was retried by the SDK with the same Range
      expect(retried).toEqual(['get', 'get']);
    },
    TEST_TIMEOUT,
  );

  it(
    'stat, list and delete succeed through resets and SlowDowns',
    async () => {
      for (const k of ['keep/a.txt', 'keep/b.txt', 'gone.txt']) {
        await direct.put(k, Readable.from([Buffer.from(`content of ${k}`)]));
      }
      const retried: string[] = [];
      const watched = new RetryingStore(inner, policy, (op) => retried.push(op));

      proxy.plan([
        { match: s3.headObject, fault: 'reset', count: 2 },
        { match: s3.headObject, fault: 'slowdown', count: 1 },
      ]);
      expect(await watched.stat('keep/a.txt')).toMatchObject({ key: 'keep/a.txt', size: 'content of keep/a.txt'.length });
      expect(proxy.requests(s3.headObject)).toHaveLength(4);

      proxy.plan([
        { match: s3.listObjects, fault: 'slowdown', count: 2 },
        { match: s3.listObjects, fault: 'reset', count: 1 },
      ]);
      const keys: string[] = [];
      for await (const o of watched.list('keep/')) keys.push(o.key);
      expect(keys.sort()).toEqual(['keep/a.txt', 'keep/b.txt']);
      expect(proxy.requests(s3.listObjects)).toHaveLength(4);

      proxy.plan([
        { match: s3.deleteObject, fault: 'reset', count: 2 },
        { match: s3.deleteObject, fault: 'slowdown', count: 1 },
      ]);
      await watched.delete('gone.txt');
      expect(proxy.requests(s3.deleteObject)).toHaveLength(4);

      expect(proxy.pending()).toBe(0);
      expect(proxy.stats.faults).toMatchObject({ reset: 5, slowdown: 4 });
      expect(retried).toEqual([]); // the SDK's own attempts absorbed every fault
      expect(await direct.stat('gone.txt')).toBeUndefined();
      expect(await direct.stat('keep/b.txt')).toBeDefined();
    },
    TEST_TIMEOUT,
  );

  it(
    'a fault that outlasts the SDK attempts fails with one clear sentence, without multiplying attempts',
    async () => {
      await direct.put('a.txt', Readable.from([Buffer.from('a')]));
      const retried: string[] = [];
      const watched = new RetryingStore(inner, policy, (op) => retried.push(op));

      proxy.plan([{ match: s3.headObject, fault: 'reset', count: MAX_ATTEMPTS }]);
      const err = await watched.stat('a.txt').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LifeboatError);
      expect((err as Error).message).toBe(
        `Cannot reach the S3 endpoint at ${proxy.url} to stat a.txt in bucket ${rig.minio.bucket}: ECONNRESET.`,
      );
      // RetryingStore does not retry what the SDK already retried to its cap (src/store/retry.ts alreadyRetried).
      expect(proxy.requests(s3.headObject)).toHaveLength(MAX_ATTEMPTS);
      expect(retried).toEqual([]);

      proxy.plan([{ match: s3.listObjects, fault: 'slowdown', count: MAX_ATTEMPTS }]);
      const listErr = await (async () => {
        for await (const _ of watched.list('')) void _;
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(listErr).toBeInstanceOf(LifeboatError);
      expect((listErr as Error).message).toMatch(/^S3 failed to list bucket .*\(SlowDown, HTTP 503\)\.$/);
      expect(proxy.requests(s3.listObjects)).toHaveLength(MAX_ATTEMPTS);
      expect(retried).toEqual([]);

      // Once the faults stop, the same store works again.
      expect(await watched.stat('a.txt')).toMatchObject({ size: 1 });
    },
    TEST_TIMEOUT,
  );

  it(
    'a lost CompleteMultipartUpload response: the retry gets NoSuchUpload, and the object, read back intact, counts as stored',
    async () => {
      // CompleteMultipartUpload is not idempotent on MinIO: when its response is lost after the
      // server completed the upload, the SDK's retry gets NoSuchUpload. S3Store then reads the
      // key back and keeps it only if it holds exactly the bytes sent.
      const SIZE = 16 * MiB;
      proxy.plan([{ match: s3.completeMultipartUpload, fault: 'reset-mid-response', afterBytes: 0, count: 1 }]);
      const res = await store.put('mpu/lost.bin', source(SIZE, 5), { expectedSize: SIZE });
      expect(res).toEqual({ key: 'mpu/lost.bin', size: SIZE, sha256: patternSha(SIZE, 5) });
      expect(proxy.requests(s3.completeMultipartUpload).map((r) => r.fault)).toEqual(['reset-mid-response', undefined]);
      expect(await digest(await direct.get('mpu/lost.bin'))).toEqual({ size: SIZE, sha256: patternSha(SIZE, 5) });
      expect(await openUploads()).toEqual([]);
    },
    TEST_TIMEOUT,
  );

  it(
    'rejected credentials are not retried and are reported as a credentials problem',
    async () => {
      const badSecret = new S3Store(s3Config(proxy.url, 'not-the-secret-key'));
      const badKeyId = new S3Store(s3Config(proxy.url, rig.minio.secretKey, 'NOSUCHACCESSKEY'));
      extraStores.push(badSecret, badKeyId);
      const retried: string[] = [];
      const wrongSecret = new RetryingStore(badSecret, policy, (op) => retried.push(op));
      const wrongKeyId = new RetryingStore(badKeyId, policy, (op) => retried.push(op));

      const failure = async (p: Promise<unknown>): Promise<Error> => {
        const before = proxy.stats.requests;
        const err = await p.then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(LifeboatError);
        expect(proxy.stats.requests - before).toBe(1); // one request: neither the SDK nor RetryingStore retried
        return err as Error;
      };

      const put = await failure(wrongSecret.put('x.txt', Readable.from([Buffer.from('x')])));
      expect(put.message).toMatch(/credentials were rejected.*SignatureDoesNotMatch/);
      const list = await failure(
        (async () => {
          for await (const _ of wrongSecret.list('')) void _;
        })(),
      );
      expect(list.message).toMatch(/credentials were rejected.*SignatureDoesNotMatch/);
      const keyId = await failure(wrongKeyId.put('x.txt', Readable.from([Buffer.from('x')])));
      expect(keyId.message).toMatch(/credentials were rejected.*InvalidAccessKeyId/);
      const get = await failure(wrongSecret.get('x.txt'));
      expect(get.message).toMatch(/credentials were rejected.*SignatureDoesNotMatch/);
      // A HEAD response has no body, so the error code is lost: stat says it may be either.
      const stat = await failure(wrongSecret.stat('x.txt'));
      expect(stat.message).toBe(`Access denied or credentials rejected trying to stat x.txt in bucket ${rig.minio.bucket} at ${proxy.url}.`);
      expect((stat as LifeboatError).hint).toContain('AWS_SECRET_ACCESS_KEY');
      expect(retried).toEqual([]);
      expect(await direct.stat('x.txt')).toBeUndefined();
    },
    TEST_TIMEOUT,
  );
});
