import pLimit from 'p-limit';
import pRetry from 'p-retry';
import { pipeline, Readable, type Transform } from 'node:stream';
import { pack as tarPack, type Pack } from 'tar-stream';
import { LifeboatError } from '../../cli/errors.js';
import type { KubeClient } from '../../kube/client.js';
import { KubeApiError } from '../../kube/errors.js';
import { collectionPath, discoverResources, type ServedResource } from '../../kube/discovery.js';
import type { Catalogue } from '../../store/catalogue.js';
import { HashCounter } from '../../store/hashing.js';
import type { BackupManifest } from '../../store/manifest.js';
import { CODEC_SUFFIX, compressor, type Codec } from '../pipeline/codec.js';
import { AGE_SUFFIX, encryptor, recipientFingerprints, type EncryptionConfig } from '../pipeline/encryption.js';
import { archivePath, entryText, forArchive, INDEX_NAME } from './archive.js';
import type { CompiledFilter, ResourceFilterConfig } from './filters.js';
import { grName, type KubeObject } from './types.js';

export interface DumpOptions {
  client: KubeClient;
  filter: CompiledFilter;
  /** Label selector applied to every list. */
  selector?: string | undefined;
  codec: Codec;
  level?: number | undefined;
  encryption?: EncryptionConfig | undefined;
  labels?: Record<string, string>;
  /** Resources listed at once. */
  concurrency?: number;
  /** Objects per list page. */
  pageSize?: number;
  signal?: AbortSignal;
  onProgress?: (p: DumpProgress) => void;
}

export interface DumpProgress {
  resourcesDone: number;
  resourcesTotal: number;
  objects: number;
  bytes: number;
}

export interface ResourceCount {
  resource: string;
  groupVersion: string;
  kind: string;
  namespaced: boolean;
  objects: number;
  /** resourceVersion of the (last) list: the point in time the objects come from. */
  listResourceVersion: string;
}

/** index.json inside the archive, and the manifest's details. */
export interface DumpIndex {
  format: 1;
  createdAt: string;
  server: string;
  kubernetesVersion: string;
  resources: ResourceCount[];
  skipped: { resource: string; reason: string }[];
  /** Resources that could not be listed (RBAC, errors): the dump is partial. */
  failed: { resource: string; reason: string }[];
  warnings: string[];
  filter: ResourceFilterConfig;
  selector?: string;
  objects: number;
}

export interface DumpResult {
  manifest: BackupManifest;
  index: DumpIndex;
  /** Some resources could not be listed (see index.failed): exit 3. */
  partial: boolean;
}

export function archiveObjectName(codec: Codec, encrypted: boolean): string {
  return `resources.tar${CODEC_SUFFIX[codec]}${encrypted ? AGE_SUFFIX : ''}`;
}

/** A list seen out of key order while skipping the keys written before a restart. */
class OutOfOrder extends Error {}

const transient = (err: unknown) => err instanceof KubeApiError && (err.status === 429 || err.status >= 500);

/**
 * Dumps every selected served resource into one tar of YAML files, streamed through compression
 * and encryption into the store, with index.json last. Lists are paginated; several resources
 * are listed at once; 429/5xx are retried; an expired continue token restarts that resource
 * (skipping objects already written: see dumpOne). A resource the credentials may not list is recorded as
 * failed and the dump is partial; any other failure removes what was written.
 */
export async function dumpResources(cat: Catalogue, opts: DumpOptions): Promise<DumpResult> {
  const { client, filter } = opts;
  const createdAt = new Date();
  const version = await client.request<{ gitVersion: string }>('/version', { signal: opts.signal });
  const discovery = await discoverResources(client, { signal: opts.signal });
  const selected: ServedResource[] = [];
  const skipped: DumpIndex['skipped'] = [];
  for (const r of discovery.resources) {
    const d = filter.resource(r);
    if (d.selected) selected.push(r);
    else skipped.push({ resource: grName(r), reason: d.reason ?? 'filtered' });
  }

  const writer = cat.begin('resources', { labels: opts.labels ?? {} });
  const tar: Pack = tarPack();
  const payload = new HashCounter();
  // tar-stream's pack is a streamx stream; iterate it into a Node stream for the pipeline.
  const stages: (Readable | Transform)[] = [Readable.from(tar as unknown as AsyncIterable<Buffer>), payload, compressor(opts.codec, opts.level), ...(opts.encryption ? [encryptor(opts.encryption)] : [])];
  let streamError: Error | undefined;
  const body = pipeline(stages as unknown as [Readable, ...Transform[]], (err) => {
    if (err) streamError ??= err;
  }) as unknown as Readable;
  const name = archiveObjectName(opts.codec, Boolean(opts.encryption));
  const stored = writer.put(name, body, {
    ...(opts.signal ? { signal: opts.signal } : {}),
    describe: () => ({
      payload: { size: payload.bytes, sha256: payload.sha256 },
      codec: opts.codec,
      ...(opts.encryption ? { encryption: { scheme: 'age' as const, recipients: recipientFingerprints(opts.encryption) } } : {}),
    }),
  });
  // If the store fails, stop producing.
  let storeFailed: unknown;
  stored.catch((err: unknown) => {
    storeFailed = err;
    tar.destroy(err instanceof Error ? err : new Error(String(err)));
  });

  let objects = 0;
  /**
   * Queues one entry; its body is copied into the tar at once (tar-stream makes a Buffer of a
   * string body), so the object's text is garbage as soon as this returns. Entries are not awaited
   * one by one: `flushed` waits for the last one queued.
   */
  let last: Promise<void> | undefined;
  const append = (path: string, text: string): void => {
    if (storeFailed) throw storeFailed;
    try {
      last = new Promise<void>((resolve, reject) => {
        tar.entry({ name: path, mtime: createdAt, mode: 0o600 }, text, (err) => (err ? reject(err) : resolve()));
      });
    } catch (err) {
      // The tar was destroyed: say why.
      throw storeFailed ?? streamError ?? err;
    }
    // Awaited by flushed(), unless an earlier failure ends the dump first.
    last.catch(() => undefined);
  };
  /**
   * Resolves when every entry queued so far is in the tar stream: when the stages downstream fall
   * behind, tar-stream holds the entries back, and so this holds back the next page.
   */
  const flushed = async (): Promise<void> => {
    try {
      await last;
    } catch (err) {
      throw storeFailed ?? streamError ?? err;
    }
  };

  const counts: ResourceCount[] = [];
  const failed: DumpIndex['failed'] = [];
  let done = 0;
  const progress = () => opts.onProgress?.({ resourcesDone: done, resourcesTotal: selected.length, objects, bytes: payload.bytes });
  const pageSize = opts.pageSize ?? 500;

  /**
   * One resource, page by page. If its continue token expires (410), the list starts again and
   * skips what was written, without remembering every object: the API server lists in key order
   * (namespace/name, as etcd and its watch cache hold them), so everything up to the highest key
   * written was listed, and the new list resumes after it (what was created meanwhile before that
   * key is left out, as the API server's own inconsistent continuation would). Skipping relies on
   * that order, so it is checked in every pass: a list seen out of order before the restart is
   * written again whole; one seen out of order while skipping is started once more and written
   * whole. Either way an object may be written twice, never left out.
   */
  const listInto = async (r: ServedResource, path: string, tally: { written: number; listRv: string }): Promise<void> => {
    /** The highest key written so far. */
    let lastKey: string | undefined;
    let inOrder = true;
    let skipping = false;
    for (let restart = 0; ; restart++) {
      const fetchPage = (cont: string | undefined) => {
        const p = pRetry(
          () =>
            client.request<{ metadata?: { continue?: string; resourceVersion?: string }; items: KubeObject[] | null }>(path, {
              query: { limit: pageSize, continue: cont, labelSelector: opts.selector },
              signal: opts.signal,
            }),
          { retries: 5, minTimeout: 200, maxTimeout: 5000, shouldRetry: ({ error }) => transient(error), ...(opts.signal ? { signal: opts.signal } : {}) },
        );
        // Awaited below, unless writing the previous page fails first.
        p.catch(() => undefined);
        return p;
      };
      try {
        /** The previous key of this pass. */
        let prev: string | undefined;
        let next = fetchPage(undefined);
        for (;;) {
          const page = await next;
          const cont = page.metadata?.continue || undefined;
          // The API server prepares the next page while this one is written.
          if (cont) next = fetchPage(cont);
          tally.listRv = page.metadata?.resourceVersion ?? tally.listRv;
          for (const item of page.items ?? []) {
            const key = `${item.metadata.namespace ?? ''}/${item.metadata.name}`;
            if (prev !== undefined && key <= prev) {
              inOrder = false;
              if (skipping) throw new OutOfOrder();
            }
            prev = key;
            if (skipping && key <= lastKey!) continue;
            if (lastKey === undefined || key > lastKey) lastKey = key;
            if (!filter.object(r, item)) continue;
            append(archivePath(r, r.namespaced ? item.metadata.namespace : undefined, item.metadata.name), entryText(forArchive(item, r.groupVersion, r.kind)));
            objects++;
            tally.written++;
          }
          await flushed();
          progress();
          if (!cont) break;
        }
        break;
      } catch (err) {
        // Objects up to lastKey may have been skipped in this pass, not only ones written before.
        if (err instanceof OutOfOrder) {
          skipping = false;
          continue;
        }
        // 410 Gone: the continue token expired (the list took longer than etcd keeps history).
        if (err instanceof KubeApiError && err.status === 410 && restart < 3) {
          skipping = inOrder && lastKey !== undefined;
          continue;
        }
        throw err;
      }
    }
  };

  const listed = filter.listNamespaces();
  /**
   * One resource: one list cluster-wide, or one per namespace named in --include-namespaces (and
   * those Namespace objects read one by one). Its count goes into the index even when a later
   * list fails, so the index always counts what the archive holds.
   */
  const dumpOne = async (r: ServedResource): Promise<void> => {
    const tally = { written: 0, listRv: '' };
    let ok = false;
    try {
      if (listed && r.group === '' && r.resource === 'namespaces') {
        for (const ns of listed) {
          const obj = await client.request<KubeObject>(`/api/v1/namespaces/${encodeURIComponent(ns)}`, { signal: opts.signal }).catch((err: unknown) => {
            if (err instanceof KubeApiError && err.status === 404) return undefined;
            throw err;
          });
          if (!obj || !filter.object(r, obj)) continue;
          append(archivePath(r, undefined, obj.metadata.name), entryText(forArchive(obj, r.groupVersion, r.kind)));
          objects++;
          tally.written++;
          if (typeof obj.metadata.resourceVersion === 'string') tally.listRv = obj.metadata.resourceVersion;
        }
        await flushed();
      } else if (listed && r.namespaced) {
        for (const ns of listed) await listInto(r, collectionPath(r, ns), tally);
      } else {
        await listInto(r, collectionPath(r), tally);
      }
      ok = true;
    } finally {
      if (ok || tally.written > 0) {
        counts.push({ resource: grName(r), groupVersion: r.groupVersion, kind: r.kind, namespaced: r.namespaced, objects: tally.written, listResourceVersion: tally.listRv });
      }
    }
  };



  const limit = pLimit(opts.concurrency ?? 4);
  try {
    await Promise.all(
      selected.map((r) =>
        limit(async () => {
          try {
            await dumpOne(r);
          } catch (err) {
            if (err instanceof KubeApiError && (err.status === 403 || err.status === 404 || err.status === 405)) {
              failed.push({ resource: grName(r), reason: `${err.status} ${err.reason}: ${err.message}` });
            } else throw err;
          } finally {
            done++;
            progress();
          }
        }),
      ),
    );
    counts.sort((a, b) => a.resource.localeCompare(b.resource));
    failed.sort((a, b) => a.resource.localeCompare(b.resource));
    const index: DumpIndex = {
      format: 1,
      createdAt: createdAt.toISOString(),
      server: client.server,
      kubernetesVersion: version.gitVersion,
      resources: counts,
      skipped,
      failed,
      warnings: [...discovery.warnings, ...failed.map((f) => `could not list ${f.resource}: ${f.reason}`)],
      filter: filter.config,
      ...(opts.selector ? { selector: opts.selector } : {}),
      objects,
    };
    append(INDEX_NAME, JSON.stringify(index, null, 2) + '\n');
    await flushed();
    tar.finalize();
    await stored;
    if (streamError) throw streamError;
    const manifest = await writer.commit({
      source: { cluster: client.server, server: client.server, kubernetesVersion: version.gitVersion },
      details: { objects, resources: counts.length, failed: failed.length, counts: Object.fromEntries(counts.map((c) => [c.resource, c.objects])) },
      warnings: index.warnings,
    });
    return { manifest, index, partial: failed.length > 0 };
  } catch (err) {
    tar.destroy();
    await stored.catch(() => undefined);
    await writer.abort();
    if (err instanceof LifeboatError || (err instanceof Error && err.name === 'AbortError')) throw err;
    if (err instanceof KubeApiError) throw new LifeboatError(`The dump failed: ${err.status} ${err.reason}: ${err.message}; nothing was stored.`, { cause: err });
    throw err;
  }
}
