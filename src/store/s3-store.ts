import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  paginateListObjectsV2,
  S3Client,
  type ServerSideEncryption,
} from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable, Writable } from 'node:stream';
import { pipeline as pipelineP } from 'node:stream/promises';
import { LifeboatError, NotFoundError } from '../cli/errors.js';
import { HashCounter } from './hashing.js';
import { MultipartWriter } from './multipart.js';
import { checkKey, type GetOptions, type ObjectInfo, type ObjectStore, type PutOptions, type PutResult } from './object-store.js';
import { describeS3Error, isNotFound, nameOf } from './s3-errors.js';

export interface S3StoreConfig {
  bucket: string;
  /** Key prefix inside the bucket, '' or ending in '/'. */
  prefix: string;
  endpoint?: string;
  region?: string;
  forcePathStyle?: boolean;
  /** Server-side encryption: 'AES256' or 'aws:kms' (then optionally kmsKeyId). */
  sse?: string;
  sseKmsKeyId?: string;
  /** Static credentials; when absent the AWS SDK's default credential chain is used. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Attempts per request (the SDK's retry strategy: 5xx, throttling, resets, timeouts). */
  maxAttempts?: number;
  /** A request with no bytes moving for this long fails (and is retried). */
  idleTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Parts sent at once (default 1); one more is filled meanwhile: memory is (queueSize + 1) x part size. */
  queueSize?: number;
}

const MiB = 1024 * 1024;
const MIN_PART = 5 * MiB;
const MAX_PARTS = 10_000;
/**
 * One part is sent while the next is filled, so the pipeline (etcd, zstd, age) keeps running
 * during each part's round trip. A second part in flight made a 1.1 GB snapshot into a local
 * MinIO no faster and cost 5 MiB more memory; over a slow or distant link, where the parts
 * themselves are the bottleneck, --s3-parts-in-flight raises it.
 */
const DEFAULT_QUEUE_SIZE = 1;

/** Part size so that an object of `expected` bytes (plus headroom) fits in 10,000 parts. */
export function choosePartSize(expected: number | undefined): number {
  if (!expected || expected <= 0) return 16 * MiB; // up to ~156 GiB
  const needed = Math.ceil((expected * 1.25) / (MAX_PARTS - 100));
  return Math.max(MIN_PART, Math.ceil(needed / MiB) * MiB);
}

/**
 * S3 and S3-compatible stores. Puts stream into a multipart upload through a fixed set of part
 * buffers (see MultipartWriter); a failed or aborted put aborts its multipart upload, so no parts
 * are left behind.
 */
export class S3Store implements ObjectStore {
  readonly location: string;
  readonly client: S3Client;
  private readonly cfg: S3StoreConfig;

  constructor(cfg: S3StoreConfig) {
    this.cfg = cfg;
    this.location = `s3://${cfg.bucket}/${cfg.prefix}`;
    const agentOpts = { keepAlive: true, maxSockets: 16 };
    this.client = new S3Client({
      region: cfg.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
      ...(cfg.endpoint ? { endpoint: cfg.endpoint } : {}),
      forcePathStyle: cfg.forcePathStyle ?? false,
      ...(cfg.credentials ? { credentials: cfg.credentials } : {}),
      maxAttempts: cfg.maxAttempts ?? 6,
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: new NodeHttpHandler({
        connectionTimeout: cfg.connectTimeoutMs ?? 10_000,
        socketTimeout: cfg.idleTimeoutMs ?? 60_000,
        httpAgent: new HttpAgent(agentOpts),
        httpsAgent: new HttpsAgent(agentOpts),
      }),
    });
  }

  private full(key: string): string {
    return this.cfg.prefix + checkKey(key);
  }

  private fail(err: unknown, action: string, key?: string): never {
    throw describeS3Error(err, { action, bucket: this.cfg.bucket, key, endpoint: this.cfg.endpoint });
  }

  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<PutResult> {
    // Hashes the bytes on their way into the upload, unless the caller already knows their digest.
    const writer = new MultipartWriter({
      client: this.client,
      partSize: choosePartSize(opts.expectedSize),
      queueSize: this.cfg.queueSize ?? DEFAULT_QUEUE_SIZE,
      hash: !opts.knownSha256,
      target: {
        Bucket: this.cfg.bucket,
        Key: this.full(key),
        ContentType: opts.contentType ?? 'application/octet-stream',
        ...(this.cfg.sse ? { ServerSideEncryption: this.cfg.sse as ServerSideEncryption } : {}),
        ...(this.cfg.sseKmsKeyId ? { SSEKMSKeyId: this.cfg.sseKmsKeyId } : {}),
      },
    });
    const sha256 = () => (opts.knownSha256 ? opts.knownSha256() : writer.sha256);
    try {
      await pipelineP(body, writer, opts.signal ? { signal: opts.signal } : {});
    } catch (err) {
      // The writer aborts its multipart upload as it closes, which may take a round trip or two
      // after the pipeline has failed: report the failure only once nothing is left open.
      if (!writer.closed) await new Promise<void>((resolve) => writer.once('close', () => resolve()));
      if (nameOf(err) === 'NoSuchUpload' && writer.allReceived && (await this.completedDespite(key, { size: writer.bytes, sha256: sha256() }))) {
        return { key, size: writer.bytes, sha256: sha256() };
      }
      if (err instanceof Error && err.name === 'AbortError') throw err;
      this.fail(err, 'upload', key);
    }
    return { key, size: writer.bytes, sha256: sha256() };
  }

  /**
   * CompleteMultipartUpload is not idempotent: when its response is lost after the service
   * completed the upload, the SDK's retry gets NoSuchUpload. The object is then kept only if it
   * reads back with exactly the bytes sent; anything else under the key is removed.
   */
  private async completedDespite(key: string, sent: { size: number; sha256: string }): Promise<boolean> {
    try {
      const info = await this.stat(key);
      if (!info) return false;
      if (info.size === sent.size) {
        const check = new HashCounter();
        await pipelineP(await this.get(key), check, new Writable({ write: (_c, _e, cb) => cb() }));
        if (check.sha256 === sent.sha256) return true;
      }
      await this.delete(key);
    } catch {
      // Could not prove the object intact: report the original failure.
    }
    return false;
  }

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.cfg.bucket,
          Key: this.full(key),
          ...(opts.start ? { Range: `bytes=${opts.start}-` } : {}),
        }),
        opts.signal ? { abortSignal: opts.signal } : {},
      );
      if (!(res.Body instanceof Readable)) throw new Error('S3 GetObject returned no stream body');
      return res.Body;
    } catch (err) {
      if (isNotFound(err)) throw new NotFoundError(`No object ${key} in ${this.location}.`);
      this.fail(err, 'download', key);
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.cfg.bucket, Key: this.full(key) }));
      return { key, size: res.ContentLength ?? 0, modified: res.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      this.fail(err, 'stat', key);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const pages = paginateListObjectsV2(
      { client: this.client, pageSize: 1000 },
      { Bucket: this.cfg.bucket, Prefix: this.cfg.prefix + prefix },
    );
    try {
      for await (const page of pages) {
        for (const obj of page.Contents ?? []) {
          if (!obj.Key) continue;
          yield {
            key: obj.Key.slice(this.cfg.prefix.length),
            size: obj.Size ?? 0,
            modified: obj.LastModified ?? new Date(0),
          };
        }
      }
    } catch (err) {
      if (err instanceof LifeboatError) throw err;
      this.fail(err, 'list');
    }
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.cfg.bucket, Key: this.full(key) }));
    } catch (err) {
      if (isNotFound(err)) return;
      this.fail(err, 'delete', key);
    }
  }

  /** Aborts multipart uploads under the prefix started before `olderThan` (left by a crash). */
  async cleanupIncomplete(olderThan: Date): Promise<number> {
    let removed = 0;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    try {
      for (;;) {
        // No Prefix: MinIO only matches a prefix equal to a whole key, so filter here instead.
        const res = await this.client.send(
          new ListMultipartUploadsCommand({
            Bucket: this.cfg.bucket,
            ...(keyMarker ? { KeyMarker: keyMarker } : {}),
            ...(uploadIdMarker ? { UploadIdMarker: uploadIdMarker } : {}),
          }),
        );
        for (const u of res.Uploads ?? []) {
          if (u.Key?.startsWith(this.cfg.prefix) && u.UploadId && u.Initiated && u.Initiated < olderThan) {
            await this.client.send(
              new AbortMultipartUploadCommand({ Bucket: this.cfg.bucket, Key: u.Key, UploadId: u.UploadId }),
            );
            removed++;
          }
        }
        if (!res.IsTruncated) break;
        keyMarker = res.NextKeyMarker;
        uploadIdMarker = res.NextUploadIdMarker;
      }
    } catch (err) {
      this.fail(err, 'clean up incomplete uploads in');
    }
    return removed;
  }

  destroy(): void {
    this.client.destroy();
  }
}
