import { Flags } from '@oclif/core';
import { Catalogue } from '../store/catalogue.js';
import { DEFAULT_STORE, MAX_S3_PARTS_IN_FLIGHT, openStore, parseStoreUrl } from '../store/open.js';
import { withEnv } from './env.js';
import type { Logger } from './log.js';

/** Flags naming the backup store, shared by every command that reads or writes backups. */
export const storeFlags = withEnv({
  store: Flags.string({
    summary: 'Where backups live: a directory, file:///abs/path, or s3://bucket/prefix.',
    default: DEFAULT_STORE,
    helpGroup: 'STORE',
  }),
  's3-endpoint': Flags.string({ summary: 'S3 endpoint URL for S3-compatible services (MinIO, Ceph, ...).', helpGroup: 'STORE' }),
  's3-region': Flags.string({ summary: 'S3 region (default: AWS_REGION, else us-east-1).', helpGroup: 'STORE' }),
  's3-force-path-style': Flags.boolean({ summary: 'Address buckets by path, not by host name (MinIO).', helpGroup: 'STORE' }),
  's3-sse': Flags.string({ summary: 'Server-side encryption for stored objects: AES256 or aws:kms.', helpGroup: 'STORE' }),
  's3-sse-kms-key-id': Flags.string({ summary: 'KMS key for --s3-sse aws:kms.', helpGroup: 'STORE' }),
  's3-parts-in-flight': Flags.integer({
    summary: 'Parts of an upload sent at once (default 1; one more is filled meanwhile).',
    description: 'Each part is 5 MiB or more and held in memory while it is sent: raise this on a slow or distant link, at the cost of a part of memory each.',
    min: 1,
    max: MAX_S3_PARTS_IN_FLIGHT,
    helpGroup: 'STORE',
  }),
});

export interface StoreFlagValues {
  store: string;
  's3-endpoint'?: string | undefined;
  's3-region'?: string | undefined;
  's3-force-path-style'?: boolean | undefined;
  's3-sse'?: string | undefined;
  's3-sse-kms-key-id'?: string | undefined;
  's3-parts-in-flight'?: number | undefined;
}

export async function catalogueFromFlags(flags: StoreFlagValues, logger?: Logger): Promise<Catalogue> {
  const cfg = parseStoreUrl(flags.store, {
    s3Endpoint: flags['s3-endpoint'],
    s3Region: flags['s3-region'],
    s3ForcePathStyle: flags['s3-force-path-style'] || undefined,
    s3Sse: flags['s3-sse'],
    s3SseKmsKeyId: flags['s3-sse-kms-key-id'],
    s3PartsInFlight: flags['s3-parts-in-flight'],
  });
  const store = await openStore(cfg, {
    onRetry: (op, err, attempt) => logger?.warn(`store ${op} failed, retrying`, { attempt, error: err instanceof Error ? err.message : String(err) }),
  });
  return new Catalogue(store);
}
