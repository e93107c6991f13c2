import pRetry from 'p-retry';
import { PassThrough, type Readable } from 'node:stream';
import type { GetOptions, ObjectInfo, ObjectStore, PutOptions, PutResult } from './object-store.js';

export interface RetryPolicy {
  /** Retries after the first attempt. */
  retries: number;
  minDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 5, minDelayMs: 200, maxDelayMs: 10_000 };

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'EAI_AGAIN', 'ERR_STREAM_PREMATURE_CLOSE']);
const TRANSIENT_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestTimeout',
  'RequestTimeTooSkewed',
  'TimeoutError',
  'InternalError',
  'ServiceUnavailable',
]);

/** True for errors worth retrying: 5xx, 429, throttling, connection resets and timeouts (looks through `cause`). */
export function isTransient(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const x = e as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown; cause?: unknown };
    const status = x.$metadata?.httpStatusCode;
    if (status !== undefined && (status >= 500 || status === 429)) return true;
    if (x.$retryable) return true;
    if (x.code && TRANSIENT_CODES.has(x.code)) return true;
    if (x.name && TRANSIENT_NAMES.has(x.name)) return true;
    e = x.cause;
  }
  return false;
}

/** True when the backend already retried this error itself (the AWS SDK records its attempts). */
export function alreadyRetried(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const attempts = (e as { $metadata?: { attempts?: number } }).$metadata?.attempts;
    if (typeof attempts === 'number' && attempts > 1) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

const worthRetrying = (err: unknown) => isTransient(err) && !alreadyRetried(err);

/**
 * Retries a store's idempotent operations on transient errors, with exponential backoff and
 * jitter, up to a cap. Reads that break mid-stream resume from the last byte received.
 * put is passed through: its body can be read once, so the backend retries it at the level of
 * the parts it buffers (S3), or it cannot fail transiently (local directory). Errors the backend
 * already retried to its own cap are not retried again, so attempts never multiply.
 */
export class RetryingStore implements ObjectStore {
  readonly location: string;

  constructor(
    readonly inner: ObjectStore,
    private readonly policy: RetryPolicy = DEFAULT_RETRY,
    private readonly onRetry?: (op: string, err: unknown, attempt: number) => void,
  ) {
    this.location = inner.location;
  }

  private retry<T>(op: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    return pRetry(fn, {
      retries: this.policy.retries,
      minTimeout: this.policy.minDelayMs,
      maxTimeout: this.policy.maxDelayMs,
      factor: 2,
      randomize: true,
      ...(signal ? { signal } : {}),
      shouldRetry: ({ error }) => worthRetrying(error),
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        if (retriesLeft > 0 && worthRetrying(error)) this.onRetry?.(op, error, attemptNumber);
      },
    });
  }

  put(key: string, body: Readable, opts?: PutOptions): Promise<PutResult> {
    return this.inner.put(key, body, opts);
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.retry('stat', () => this.inner.stat(key));
  }

  delete(key: string): Promise<void> {
    return this.retry('delete', () => this.inner.delete(key));
  }

  cleanupIncomplete(olderThan: Date): Promise<number> {
    return this.retry('cleanup', () => this.inner.cleanupIncomplete(olderThan));
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // A listing is retried from the start only while nothing has been yielded.
    let attempt = 0;
    for (;;) {
      let yielded = false;
      try {
        for await (const info of this.inner.list(prefix)) {
          yielded = true;
          yield info;
        }
        return;
      } catch (err) {
        if (yielded || !worthRetrying(err) || attempt >= this.policy.retries) throw err;
        this.onRetry?.('list', err, ++attempt);
        await sleep(backoff(this.policy, attempt));
      }
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    const start = opts.start ?? 0;
    const first = await this.retry('get', () => this.inner.get(key, { ...opts, start }), opts.signal);
    const out = new PassThrough();
    let offset = start;
    let attempt = 0;
    const pump = (src: Readable): void => {
      src.on('data', (chunk: Buffer) => {
        offset += chunk.length;
        if (!out.write(chunk)) {
          src.pause();
          out.once('drain', () => src.resume());
        }
      });
      src.once('end', () => out.end());
      src.once('error', (err) => {
        if (out.destroyed) return;
        if (!worthRetrying(err) || attempt >= this.policy.retries) {
          out.destroy(err);
          return;
        }
        this.onRetry?.('get', err, ++attempt);
        sleep(backoff(this.policy, attempt))
          .then(() => this.retry('get', () => this.inner.get(key, { ...opts, start: offset }), opts.signal))
          .then(pump, (e: unknown) => out.destroy(e as Error));
      });
      out.once('close', () => src.destroy());
    };
    pump(first);
    return out;
  }
}

function backoff(p: RetryPolicy, attempt: number): number {
  const base = Math.min(p.maxDelayMs, p.minDelayMs * 2 ** (attempt - 1));
  return base / 2 + Math.random() * (base / 2);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
