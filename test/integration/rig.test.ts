import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, inject, it } from 'vitest';

describe('test rig', () => {
  const rig = inject('rig');

  it.each([
    ['etcd34', '3.4.'],
    ['etcd35', '3.5.'],
  ] as const)('%s answers with etcd %s*', async (key, prefix) => {
    const res = await fetch(`${rig[key].endpoint}/version`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { etcdserver: string };
    expect(body.etcdserver.startsWith(prefix)).toBe(true);
  });

  it('MinIO has the test bucket', async () => {
    const s3 = new S3Client({
      endpoint: rig.minio.endpoint,
      region: rig.minio.region,
      forcePathStyle: true,
      credentials: { accessKeyId: rig.minio.accessKey, secretAccessKey: rig.minio.secretKey },
    });
    try {
      const out = await s3.send(new HeadBucketCommand({ Bucket: rig.minio.bucket }));
      expect(out.$metadata.httpStatusCode).toBe(200);
    } finally {
      s3.destroy();
    }
  });
});
