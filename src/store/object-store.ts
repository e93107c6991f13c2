import type { Readable } from 'node:stream';

/** Options for ObjectStore.put. */
export interface PutOptions {
  /** Expected number of bytes, if known: lets a backend size multipart uploads. */
  expectedSize?: number;
  contentType?: string;
  signal?: AbortSignal;
  /**
   * The sha256 (hex) of exactly the body's bytes, when the caller already computes it as they
   * pass (read once the body has ended): the store then reports it instead of hashing them again.
   */
  knownSha256?: () => string;
}

/** What a completed put stored: size and sha256 (hex) of the bytes as stored. */
export interface PutResult {
  key: string;
  size: number;
  sha256: string;
}

export interface ObjectInfo {
  key: string;
  size: number;
  modified: Date;
}

/**
 * One interface for every storage backend. Keys are '/'-separated relative paths
 * ("etcd/<id>/manifest.json"); the backend maps them under its own root or prefix.
 *
 * put is all-or-nothing: the object becomes visible under `key` only once every byte is durably
 * stored. If the body stream errors, the signal aborts, or the backend fails, nothing is left
 * under `key` (nor a temporary file or an open multipart upload).
 */
export interface ObjectStore {
  /** Human-readable location, e.g. "file:///var/backups" or "s3://bucket/prefix". */
  readonly location: string;
  put(key: string, body: Readable, opts?: PutOptions): Promise<PutResult>;
  /**
   * Opens the object for reading, from byte `start` (default 0) to the end.
   * Throws NotFoundError when it does not exist.
   */
  get(key: string, opts?: GetOptions): Promise<Readable>;
  /** Size and time of an object, or undefined when it does not exist. */
  stat(key: string): Promise<ObjectInfo | undefined>;
  /** Every object whose key starts with `prefix`, in no particular order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Deletes an object; deleting a missing object is not an error. */
  delete(key: string): Promise<void>;
  /**
   * Removes what interrupted puts left behind and started before `olderThan` (temporary files,
   * open multipart uploads). Returns how many were removed.
   */
  cleanupIncomplete(olderThan: Date): Promise<number>;
}

export interface GetOptions {
  signal?: AbortSignal;
  start?: number;
}

/** Rejects keys that could escape the store's root. */
export function checkKey(key: string): string {
  if (
    key.length === 0 ||
    key.startsWith('/') ||
    key.includes('\\') ||
    key.includes('\0') ||
    key.split('/').some((part) => part === '' || part === '.' || part === '..')
  ) {
    throw new Error(`invalid object key ${JSON.stringify(key)}`);
  }
  return key;
}
