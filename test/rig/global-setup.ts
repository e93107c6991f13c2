/**
 * Vitest globalSetup for the `integration` project: starts etcd 3.4, etcd 3.5 and MinIO
 * once for the whole run and provides their coordinates as `inject('rig')`.
 * Binaries come from rig.json (`bash test/rig/build.sh`).
 */
import type { TestProject } from 'vitest/node';
import { readRig, startEtcd, startMinio, type EtcdHandle, type MinioHandle, type RigContext } from './components.js';

export const TEST_BUCKET = 'lifeboat-test';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const bins = readRig();
  const results = await Promise.allSettled([startEtcd({ version: '3.4' }), startEtcd({ version: '3.5' }), startMinio()]);
  const handles = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const teardown = async (): Promise<void> => {
    await Promise.allSettled(handles.map((h) => h.stop()));
  };
  const failed = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
  if (failed.length > 0) {
    await teardown();
    throw failed.length === 1 ? failed[0] : new AggregateError(failed, 'test rig failed to start');
  }
  const [etcd34, etcd35, minio] = handles as [EtcdHandle, EtcdHandle, MinioHandle];

  try {
    await minio.createBucket(TEST_BUCKET);
  } catch (err) {
    await teardown();
    throw err;
  }

  const rig: RigContext = {
    etcd34: { endpoint: etcd34.endpoint, dataDir: etcd34.dataDir },
    etcd35: { endpoint: etcd35.endpoint, dataDir: etcd35.dataDir },
    minio: {
      endpoint: minio.endpoint,
      accessKey: minio.accessKey,
      secretKey: minio.secretKey,
      region: minio.region,
      bucket: TEST_BUCKET,
    },
    bins,
  };
  project.provide('rig', rig);
  return teardown;
}
