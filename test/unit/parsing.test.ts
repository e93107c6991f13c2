import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration } from '../../src/cli/duration.js';
import { ExitCode, LifeboatError } from '../../src/cli/errors.js';
import { newBackupId, parseBackupId } from '../../src/store/ids.js';
import { validateManifest } from '../../src/store/manifest.js';
import { checkKey } from '../../src/store/object-store.js';
import { parseStoreUrl } from '../../src/store/open.js';
import { choosePartSize } from '../../src/store/s3-store.js';
import { envName } from '../../src/cli/env.js';

function exitCodeOf(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof LifeboatError ? err.exitCode : -1;
  }
  return undefined;
}

describe('durations', () => {
  it.each([
    ['90s', 90_000],
    ['15m', 900_000],
    ['12h', 43_200_000],
    ['7d', 604_800_000],
    ['2w', 1_209_600_000],
    ['1d12h', 129_600_000],
    ['250ms', 250],
  ])('%s = %i ms', (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(['', '7', 'd', '7days', '-1h', '1h 30m', '1.5'])('rejects %j as a usage error', (text) => {
    expect(exitCodeOf(() => parseDuration(text))).toBe(ExitCode.Usage);
  });

  it('formats', () => {
    expect(formatDuration(129_600_000)).toBe('1d12h');
    expect(formatDuration(61_000)).toBe('1m1s');
    expect(formatDuration(0)).toBe('0ms');
  });
});

describe('backup ids', () => {
  it('encode kind and UTC time and sort by time', () => {
    const a = newBackupId('etcd', new Date('2026-11-22T04:05:06.789Z'), '0a1b');
    expect(a).toBe('etcd-20261122T040506Z-0a1b');
    expect(parseBackupId(a)).toEqual({ kind: 'etcd', time: new Date('2026-11-22T04:05:06Z') });
    const b = newBackupId('etcd', new Date('2026-11-22T04:05:07Z'), '0000');
    expect(a < b).toBe(true);
  });

  it.each(['etcd-20261122T040506Z', 'foo-20261122T040506Z-0a1b', 'etcd-20261322T040506Z-0a1b', 'etcd-20261122T040506Z-XYZW', '../etcd'])(
    'rejects %s',
    (id) => expect(parseBackupId(id)).toBeUndefined(),
  );
});

describe('store URLs', () => {
  it('plain paths and file URLs are directories', () => {
    expect(parseStoreUrl('./lifeboat-backups')).toEqual({ kind: 'file', path: './lifeboat-backups' });
    expect(parseStoreUrl('/var/backups')).toEqual({ kind: 'file', path: '/var/backups' });
    expect(parseStoreUrl('file:///var/backups/x')).toEqual({ kind: 'file', path: '/var/backups/x' });
  });

  it('s3 URLs name a bucket and a normalised prefix', () => {
    expect(parseStoreUrl('s3://my-bucket')).toMatchObject({ kind: 's3', bucket: 'my-bucket', prefix: '' });
    expect(parseStoreUrl('s3://my-bucket/a/b/', { s3Endpoint: 'http://127.0.0.1:9000', s3ForcePathStyle: true })).toMatchObject({
      kind: 's3',
      bucket: 'my-bucket',
      prefix: 'a/b/',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
    });
  });

  it.each(['ftp://host/x', 'gs://bucket', 's3://', 's3://Bad_Bucket/x', 's3://bucket/../x', ''])('%j is a usage error', (url) => {
    expect(exitCodeOf(() => parseStoreUrl(url))).toBe(ExitCode.Usage);
  });

  it('rejects unknown server-side encryption', () => {
    expect(exitCodeOf(() => parseStoreUrl('s3://bucket', { s3Sse: 'rot13' }))).toBe(ExitCode.Usage);
  });

  it('takes the parts in flight of an S3 upload, from 1 to 16', () => {
    expect(parseStoreUrl('s3://bucket', { s3PartsInFlight: 4 })).toMatchObject({ kind: 's3', queueSize: 4 });
    expect(parseStoreUrl('s3://bucket')).not.toHaveProperty('queueSize');
    for (const n of [0, 17, 1.5]) expect(exitCodeOf(() => parseStoreUrl('s3://bucket', { s3PartsInFlight: n }))).toBe(ExitCode.Usage);
  });
});

describe('object keys', () => {
  it.each(['../x', 'a/../b', '/abs', 'a//b', 'a/./b', '', 'a\\b'])('rejects %j', (key) => {
    expect(() => checkKey(key)).toThrow(/invalid object key/);
  });
  it('accepts layout keys', () => {
    expect(checkKey('etcd/etcd-20261122T040506Z-0a1b/snapshot.db.zst')).toBe('etcd/etcd-20261122T040506Z-0a1b/snapshot.db.zst');
  });
});

describe('multipart part size', () => {
  const MiB = 1024 * 1024;
  it('is at least 5 MiB and keeps any expected size under 10,000 parts with headroom', () => {
    expect(choosePartSize(undefined)).toBe(16 * MiB);
    expect(choosePartSize(1024)).toBe(5 * MiB);
    for (const size of [1, 80 * 1024 * MiB, 200 * 1024 * MiB, 5 * 1024 * 1024 * MiB]) {
      const part = choosePartSize(size);
      expect(part).toBeGreaterThanOrEqual(5 * MiB);
      expect(Math.ceil((size * 1.25) / part)).toBeLessThan(10_000);
    }
  });
});

describe('manifest validation', () => {
  const good = {
    format: 1,
    id: 'etcd-20261122T040506Z-0a1b',
    kind: 'etcd',
    createdAt: '2026-11-22T04:05:06.000Z',
    objects: [{ name: 'snapshot.db', size: 10, sha256: 'a'.repeat(64) }],
  };
  it('accepts a well-formed manifest', () => expect(validateManifest(good, good.id)).toBeUndefined());
  it.each([
    ['an array', [], 'not a JSON object'],
    ['another format', { ...good, format: 2 }, 'unknown manifest format'],
    ['a moved manifest', { ...good, id: 'etcd-20261122T040507Z-0a1b' }, 'does not match'],
    ['a bad hash', { ...good, objects: [{ name: 'x', size: 1, sha256: 'zz' }] }, 'lacks'],
    ['no createdAt', { ...good, createdAt: 'yesterday' }, 'createdAt'],
  ])('rejects %s', (_name, value, reason) => {
    expect(validateManifest(value, good.id)).toContain(reason);
  });
});

describe('environment names', () => {
  it('maps flags to LIFEBOAT_*', () => {
    expect(envName('s3-force-path-style')).toBe('LIFEBOAT_S3_FORCE_PATH_STYLE');
    expect(envName('store')).toBe('LIFEBOAT_STORE');
  });
});
