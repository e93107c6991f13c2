import { fileURLToPath } from 'node:url';
import { UsageError } from '../cli/errors.js';
import { FileStore } from './file-store.js';
import type { ObjectStore } from './object-store.js';
import { DEFAULT_RETRY, RetryingStore, type RetryPolicy } from './retry.js';
import type { S3StoreConfig } from './s3-store.js';

export const DEFAULT_STORE = './lifeboat-backups';

export type StoreConfig =
  | { kind: 'file'; path: string }
  | ({ kind: 's3' } & S3StoreConfig);

/** Options that come from flags or the environment, next to the store URL. */
export interface StoreOptions {
  s3Endpoint?: string | undefined;
  s3Region?: string | undefined;
  s3ForcePathStyle?: boolean | undefined;
  s3Sse?: string | undefined;
  s3SseKmsKeyId?: string | undefined;
  /** Parts of a multipart upload sent at once. */
  s3PartsInFlight?: number | undefined;
}

/** The most parts of one upload sent at once (--s3-parts-in-flight): each holds 5 MiB or more. */
export const MAX_S3_PARTS_IN_FLIGHT = 16;

/** Parses a store URL: a plain path, file:///abs/path, or s3://bucket/prefix. */
export function parseStoreUrl(url: string, opts: StoreOptions = {}): StoreConfig {
  const raw = url.trim();
  if (raw === '') throw new UsageError('The store URL is empty.', { hint: `Use a directory, file:///abs/path or s3://bucket/prefix.` });
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(raw)?.[1]?.toLowerCase();
  if (scheme === undefined) return { kind: 'file', path: raw };
  if (scheme === 'file') {
    try {
      return { kind: 'file', path: fileURLToPath(raw) };
    } catch (err) {
      throw new UsageError(`The store URL ${raw} is not a valid file URL.`, { cause: err, hint: 'Use file:///absolute/path or a plain path.' });
    }
  }
  if (scheme === 's3') {
    const rest = raw.slice('s3://'.length);
    const slash = rest.indexOf('/');
    const bucket = slash < 0 ? rest : rest.slice(0, slash);
    const prefixRaw = slash < 0 ? '' : rest.slice(slash + 1);
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) {
      throw new UsageError(`The store URL ${raw} does not name a valid S3 bucket (${JSON.stringify(bucket)}).`, {
        hint: 'Use s3://bucket/optional/prefix.',
      });
    }
    const parts = prefixRaw.split('/').filter((p) => p !== '');
    if (parts.some((p) => p === '.' || p === '..')) {
      throw new UsageError(`The store URL ${raw} has '.' or '..' in its prefix.`);
    }
    if (opts.s3Sse && !['AES256', 'aws:kms', 'aws:kms:dsse'].includes(opts.s3Sse)) {
      throw new UsageError(`Unknown server-side encryption ${JSON.stringify(opts.s3Sse)}.`, { hint: 'Use AES256 or aws:kms.' });
    }
    const inFlight = opts.s3PartsInFlight;
    if (inFlight !== undefined && (!Number.isInteger(inFlight) || inFlight < 1 || inFlight > MAX_S3_PARTS_IN_FLIGHT)) {
      throw new UsageError(`--s3-parts-in-flight ${inFlight} is out of range.`, { hint: `Use a whole number from 1 to ${MAX_S3_PARTS_IN_FLIGHT}.` });
    }
    return {
      kind: 's3',
      bucket,
      prefix: parts.length ? parts.join('/') + '/' : '',
      ...(opts.s3Endpoint ? { endpoint: opts.s3Endpoint } : {}),
      ...(opts.s3Region ? { region: opts.s3Region } : {}),
      ...(opts.s3ForcePathStyle !== undefined ? { forcePathStyle: opts.s3ForcePathStyle } : {}),
      ...(opts.s3Sse ? { sse: opts.s3Sse } : {}),
      ...(opts.s3SseKmsKeyId ? { sseKmsKeyId: opts.s3SseKmsKeyId } : {}),
      ...(inFlight !== undefined ? { queueSize: inFlight } : {}),
    };
  }
  throw new UsageError(`Unknown store scheme ${JSON.stringify(scheme + '://')} in ${raw}.`, {
    hint: 'Use a directory path, file:///abs/path or s3://bucket/prefix.',
  });
}

/**
 * Opens a store with the retry wrapper around it. The S3 backend (and the AWS SDK) is loaded only
 * when an s3:// store is used, which keeps start-up time and memory down for local stores.
 */
export async function openStore(
  cfg: StoreConfig,
  opts: { retry?: RetryPolicy; onRetry?: (op: string, err: unknown, attempt: number) => void } = {},
): Promise<ObjectStore> {
  const inner = cfg.kind === 'file' ? new FileStore(cfg.path) : new (await import('./s3-store.js')).S3Store(cfg);
  return new RetryingStore(inner, opts.retry ?? DEFAULT_RETRY, opts.onRetry);
}
