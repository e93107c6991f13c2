import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import { FileStore } from '../../src/store/file-store.js';
import type { ObjectStore } from '../../src/store/object-store.js';
import type { StoreConfig } from '../../src/store/open.js';
import { S3Store } from '../../src/store/s3-store.js';

/** A store under test, with what the conformance suite needs to look behind its back. */
export interface StoreFixture {
  name: string;
  store: ObjectStore;
  config: StoreConfig;
  /** Leftovers of interrupted puts: temporary files or open multipart uploads. */
  leftovers(): Promise<string[]>;
  cleanup(): Promise<void>;
}

export async function fileFixture(): Promise<StoreFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'lifeboat-store-'));
  const store = new FileStore(dir);
  return {
    name: 'file',
    store,
    config: { kind: 'file', path: dir },
    async leftovers() {
      const all = await readdir(dir, { recursive: true });
      return all.filter((p) => p.includes('.lifeboat-tmp-'));
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

export function minioConfig(prefix = `t-${randomBytes(4).toString('hex')}/`): Extract<StoreConfig, { kind: 's3' }> {
  const m = inject('rig').minio;
  return {
    kind: 's3',
    bucket: m.bucket,
    prefix,
    endpoint: m.endpoint,
    region: m.region,
    forcePathStyle: true,
    credentials: { accessKeyId: m.accessKey, secretAccessKey: m.secretKey },
  };
}

export async function s3Fixture(): Promise<StoreFixture> {
  const config = minioConfig();
  const store = new S3Store(config);
  return {
    name: 's3',
    store,
    config,
    async leftovers() {
      return openUploads(store, config.bucket, config.prefix);
    },
    async cleanup() {
      for await (const o of store.list('')) await store.delete(o.key);
      store.destroy();
    },
  };
}

/** Open multipart uploads under a prefix. Lists the whole bucket: MinIO matches Prefix only against whole keys. */
export async function openUploads(store: S3Store, bucket: string, prefix: string): Promise<string[]> {
  const res = await store.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  return (res.Uploads ?? []).filter((u) => u.Key?.startsWith(prefix)).map((u) => `${u.Key} (upload ${u.UploadId})`);
}
