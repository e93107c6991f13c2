import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { LifeboatError, NotFoundError } from '../cli/errors.js';
import { FileWriter } from './file-writer.js';
import { HashCounter } from './hashing.js';
import { checkKey, type GetOptions, type ObjectInfo, type ObjectStore, type PutOptions, type PutResult } from './object-store.js';

const TMP_MARK = '.lifeboat-tmp-';

/**
 * A local directory. Writes go to a temporary file in the target directory, are fsynced, then
 * renamed into place (and the directory fsynced), so a reader sees the whole object or nothing.
 * Files are created 0600 and directories 0700: backups hold secrets.
 */
export class FileStore implements ObjectStore {
  readonly root: string;
  readonly location: string;

  constructor(root: string) {
    this.root = path.resolve(root);
    this.location = pathToFileURL(this.root).href;
  }

  private pathOf(key: string): string {
    return path.join(this.root, ...checkKey(key).split('/'));
  }

  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<PutResult> {
    const final = this.pathOf(key);
    const dir = path.dirname(final);
    await this.fsCall('create directory', dir, () => fs.mkdir(dir, { recursive: true, mode: 0o700 }));
    const tmp = path.join(dir, `${TMP_MARK}${randomBytes(6).toString('hex')}-${path.basename(final)}`);
    const handle = await this.fsCall('write to', dir, () => fs.open(tmp, 'wx', 0o600));
    const counter = opts.knownSha256 ? undefined : new HashCounter();
    let out;
    try {
      // The writer owns the handle: it fsyncs and closes it before the pipeline resolves.
      out = new FileWriter(handle);
      await pipeline([body, ...(counter ? [counter] : []), out], opts.signal ? { signal: opts.signal } : {});
      await fs.rename(tmp, final);
      await syncDir(dir);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fs.rm(tmp, { force: true }).catch(() => undefined);
      if (isErrno(err) && (err.code === 'ENOSPC' || err.code === 'EACCES' || err.code === 'EROFS')) {
        throw new LifeboatError(`Cannot write ${final}: ${err.code === 'ENOSPC' ? 'no space left on device' : 'permission denied'}.`, {
          cause: err,
        });
      }
      throw err;
    }
    return { key, size: out.bytesWritten, sha256: counter ? counter.sha256 : opts.knownSha256!() };
  }

  async get(key: string, opts: GetOptions = {}): Promise<Readable> {
    const file = this.pathOf(key);
    const handle = await fs.open(file, 'r').catch((err: unknown) => {
      if (isErrno(err) && err.code === 'ENOENT') throw new NotFoundError(`No object ${key} in ${this.location}.`);
      throw err;
    });
    return createReadStream('', { fd: handle, start: opts.start ?? 0 });
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const st = await fs.stat(this.pathOf(key));
      return st.isFile() ? { key, size: st.size, modified: st.mtime } : undefined;
    } catch (err) {
      if (isErrno(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for await (const entry of this.walk(this.root, '')) {
      if (entry.key.startsWith(prefix) && !path.basename(entry.key).startsWith(TMP_MARK)) yield entry;
    }
  }

  async delete(key: string): Promise<void> {
    const file = this.pathOf(key);
    await fs.rm(file, { force: true });
    // Remove directories left empty, up to (not including) the root.
    let dir = path.dirname(file);
    while (dir.startsWith(this.root + path.sep)) {
      try {
        await fs.rmdir(dir);
      } catch {
        break;
      }
      dir = path.dirname(dir);
    }
  }

  async cleanupIncomplete(olderThan: Date): Promise<number> {
    let removed = 0;
    for await (const entry of this.walk(this.root, '')) {
      if (path.basename(entry.key).startsWith(TMP_MARK) && entry.modified < olderThan) {
        await fs.rm(this.pathOf(entry.key), { force: true });
        removed++;
      }
    }
    return removed;
  }

  private async *walk(dir: string, rel: string): AsyncIterable<ObjectInfo> {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isErrno(err) && err.code === 'ENOENT') return;
      if (isErrno(err) && err.code === 'EACCES') {
        throw new LifeboatError(`Cannot read ${dir}: permission denied.`, { cause: err });
      }
      if (isErrno(err) && err.code === 'ENOTDIR') {
        throw new LifeboatError(`Store path ${dir} is not a directory.`, { cause: err });
      }
      throw err;
    }
    for (const e of entries) {
      const key = rel ? `${rel}/${e.name}` : e.name;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) yield* this.walk(full, key);
      else if (e.isFile()) {
        const st = await fs.stat(full).catch(() => undefined);
        if (st) yield { key, size: st.size, modified: st.mtime };
      }
    }
  }

  private async fsCall<T>(what: string, where: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (isErrno(err) && (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS')) {
        throw new LifeboatError(`Cannot ${what} ${where}: permission denied.`, {
          cause: err,
          hint: 'Choose a writable directory with --store or LIFEBOAT_STORE.',
        });
      }
      if (isErrno(err) && (err.code === 'ENOTDIR' || err.code === 'EEXIST')) {
        throw new LifeboatError(`Cannot ${what} ${where}: a file is in the way.`, { cause: err });
      }
      throw err;
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const h = await fs.open(dir, 'r');
  try {
    await h.sync();
  } finally {
    await h.close();
  }
}

export function isErrno(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}
