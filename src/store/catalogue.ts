import pLimit from 'p-limit';
import { Readable } from 'node:stream';
import { NotFoundError, UsageError } from '../cli/errors.js';
import { TOOL_VERSION } from '../version.js';
import { BACKUP_KINDS, newBackupId, parseBackupId, type BackupKind } from './ids.js';
import { MANIFEST_FORMAT, MANIFEST_NAME, validateManifest, type BackupManifest, type ObjectRecord } from './manifest.js';
import type { ObjectInfo, ObjectStore, PutOptions } from './object-store.js';

/** A backup as listed: its manifest, and whether its data objects are all present at their sizes. */
export interface BackupEntry {
  manifest: BackupManifest;
  storedBytes: number;
  /** Problems found by comparing the manifest with the listing (missing or resized objects). */
  problems: string[];
}

/** Objects under an id that has no (valid) manifest. */
export interface IncompleteEntry {
  id: string;
  kind: BackupKind;
  objects: ObjectInfo[];
  /** Newest modification among its objects. */
  lastModified: Date;
  /** Set when a manifest exists but could not be read or parsed. */
  manifestError?: string;
}

export interface Listing {
  backups: BackupEntry[];
  incomplete: IncompleteEntry[];
  /** Keys under the kind prefixes that do not belong to any backup id. */
  stray: ObjectInfo[];
}

const keyOf = (kind: BackupKind, id: string, name: string) => `${kind}/${id}/${name}`;

/**
 * Backups in a store: ids, the commit rule (manifest.json last), listing, deletion.
 */
export class Catalogue {
  constructor(readonly store: ObjectStore) {}

  /** Starts a new backup; nothing is visible until commit() writes its manifest. */
  begin(kind: BackupKind, opts: { labels?: Record<string, string>; now?: Date } = {}): BackupWriter {
    const now = opts.now ?? new Date();
    return new BackupWriter(this.store, kind, newBackupId(kind, now), now, opts.labels ?? {});
  }

  async list(opts: { kind?: BackupKind } = {}): Promise<Listing> {
    const kinds = opts.kind ? [opts.kind] : [...BACKUP_KINDS];
    const groups = new Map<string, { kind: BackupKind; objects: ObjectInfo[] }>();
    const stray: ObjectInfo[] = [];
    for (const kind of kinds) {
      for await (const info of this.store.list(`${kind}/`)) {
        const parts = info.key.split('/');
        const id = parts[1] ?? '';
        if (parts.length !== 3 || parseBackupId(id)?.kind !== kind) {
          stray.push(info);
          continue;
        }
        let g = groups.get(id);
        if (!g) groups.set(id, (g = { kind, objects: [] }));
        g.objects.push(info);
      }
    }
    const limit = pLimit(8);
    const backups: BackupEntry[] = [];
    const incomplete: IncompleteEntry[] = [];
    await Promise.all(
      [...groups].map(([id, g]) =>
        limit(async () => {
          const hasManifest = g.objects.some((o) => o.key.endsWith(`/${MANIFEST_NAME}`));
          let manifestError: string | undefined;
          if (hasManifest) {
            const res = await this.readManifest(g.kind, id);
            if ('manifest' in res) {
              backups.push(entryOf(res.manifest, g.objects));
              return;
            }
            manifestError = res.error;
          }
          const lastModified = new Date(Math.max(...g.objects.map((o) => o.modified.getTime())));
          incomplete.push({ id, kind: g.kind, objects: g.objects, lastModified, ...(manifestError ? { manifestError } : {}) });
        }),
      ),
    );
    backups.sort((a, b) => (a.manifest.id < b.manifest.id ? 1 : -1));
    incomplete.sort((a, b) => (a.id < b.id ? 1 : -1));
    return { backups, incomplete, stray };
  }

  /** The manifest of a complete backup; NotFoundError when there is none. */
  async describe(id: string): Promise<BackupEntry> {
    const parsed = parseBackupId(id);
    if (!parsed) {
      throw new UsageError(`${JSON.stringify(id)} is not a backup id.`, { hint: 'Ids look like etcd-20260101T000000Z-1a2b; see `lifeboat backups list`.' });
    }
    const res = await this.readManifest(parsed.kind, id);
    if ('error' in res) {
      if (res.missing) throw new NotFoundError(`No backup ${id} in ${this.store.location}.`, { hint: 'See `lifeboat backups list`.' });
      throw new NotFoundError(`Backup ${id} has an unreadable manifest: ${res.error}.`);
    }
    const objects: ObjectInfo[] = [];
    for await (const o of this.store.list(`${parsed.kind}/${id}/`)) objects.push(o);
    return entryOf(res.manifest, objects);
  }

  /** Opens one data object of a backup for reading. */
  open(manifest: BackupManifest, name: string, opts: { signal?: AbortSignal } = {}): Promise<Readable> {
    return this.store.get(keyOf(manifest.kind, manifest.id, name), opts);
  }

  /**
   * Deletes a backup: the manifest first, so the backup stops existing at once; then its data.
   * An interruption leaves garbage for prune, never a listed backup without its data.
   */
  async delete(id: string): Promise<{ id: string; deletedObjects: number }> {
    const parsed = parseBackupId(id);
    if (!parsed) throw new UsageError(`${JSON.stringify(id)} is not a backup id.`);
    const keys: string[] = [];
    for await (const o of this.store.list(`${parsed.kind}/${id}/`)) keys.push(o.key);
    if (keys.length === 0) throw new NotFoundError(`No backup ${id} in ${this.store.location}.`);
    const manifestKey = keyOf(parsed.kind, id, MANIFEST_NAME);
    if (keys.includes(manifestKey)) await this.store.delete(manifestKey);
    const rest = keys.filter((k) => k !== manifestKey);
    const limit = pLimit(8);
    await Promise.all(rest.map((k) => limit(() => this.store.delete(k))));
    return { id, deletedObjects: keys.length };
  }

  /** Deletes the objects of an id that has no manifest. */
  async deleteIncomplete(entry: IncompleteEntry): Promise<void> {
    const limit = pLimit(8);
    await Promise.all(entry.objects.map((o) => limit(() => this.store.delete(o.key))));
  }

  private async readManifest(
    kind: BackupKind,
    id: string,
  ): Promise<{ manifest: BackupManifest } | { error: string; missing?: boolean }> {
    let text: string;
    try {
      const stream = await this.store.get(keyOf(kind, id, MANIFEST_NAME));
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const c of stream as AsyncIterable<Buffer>) {
        size += c.length;
        if (size > 16 * 1024 * 1024) return { error: 'manifest larger than 16 MiB' };
        chunks.push(c);
      }
      text = Buffer.concat(chunks).toString('utf8');
    } catch (err) {
      if (err instanceof NotFoundError) return { error: 'no manifest', missing: true };
      throw err;
    }
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return { error: `manifest is not valid JSON (${(err as Error).message})` };
    }
    const problem = validateManifest(value, id);
    return problem ? { error: problem } : { manifest: value as BackupManifest };
  }
}

function entryOf(manifest: BackupManifest, objects: ObjectInfo[]): BackupEntry {
  const byName = new Map(objects.map((o) => [o.key.slice(o.key.lastIndexOf('/') + 1), o]));
  const problems: string[] = [];
  let storedBytes = 0;
  for (const rec of manifest.objects) {
    const info = byName.get(rec.name);
    if (!info) problems.push(`${rec.name} is missing`);
    else if (info.size !== rec.size) problems.push(`${rec.name} is ${info.size} bytes, manifest says ${rec.size}`);
    storedBytes += rec.size;
  }
  return { manifest, storedBytes, problems };
}

/**
 * Writes one backup. Data objects first (put is atomic per object), the manifest last. If anything
 * fails, abort() removes what was written, and an interrupted process leaves only objects without
 * a manifest, which list ignores and prune collects.
 */
export class BackupWriter {
  readonly objects: ObjectRecord[] = [];
  private committed = false;

  constructor(
    private readonly store: ObjectStore,
    readonly kind: BackupKind,
    readonly id: string,
    readonly createdAt: Date,
    private readonly labels: Record<string, string>,
  ) {}

  key(name: string): string {
    return keyOf(this.kind, this.id, name);
  }

  /** Stores one data object; returns its record (size and sha256 of the stored bytes). */
  async put(
    name: string,
    body: Readable,
    opts: PutOptions & { describe?: () => Omit<ObjectRecord, 'name' | 'size' | 'sha256'> } = {},
  ): Promise<ObjectRecord> {
    if (name === MANIFEST_NAME || name.includes('/')) throw new Error(`invalid backup object name ${name}`);
    const { describe, ...putOpts } = opts;
    const res = await this.store.put(this.key(name), body, putOpts);
    const rec: ObjectRecord = { name, size: res.size, sha256: res.sha256, ...(describe ? describe() : {}) };
    this.objects.push(rec);
    return rec;
  }

  /** Writes manifest.json; from this moment the backup exists. */
  async commit(info: { source: BackupManifest['source']; details?: Record<string, unknown>; warnings?: string[]; finishedAt?: Date }): Promise<BackupManifest> {
    if (this.committed) throw new Error('backup already committed');
    if (this.objects.length === 0) throw new Error('a backup needs at least one data object');
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT,
      id: this.id,
      kind: this.kind,
      createdAt: this.createdAt.toISOString(),
      finishedAt: (info.finishedAt ?? new Date()).toISOString(),
      tool: { name: 'lifeboat', version: TOOL_VERSION },
      source: info.source,
      objects: this.objects,
      details: info.details ?? {},
      warnings: info.warnings ?? [],
      labels: this.labels,
    };
    const body = Buffer.from(JSON.stringify(manifest, null, 2) + '\n');
    await this.store.put(this.key(MANIFEST_NAME), Readable.from([body]), { expectedSize: body.length, contentType: 'application/json' });
    this.committed = true;
    return manifest;
  }

  /** Removes every object written so far (best effort); call when the backup cannot complete. */
  async abort(): Promise<void> {
    if (this.committed) return;
    await Promise.all(this.objects.map((o) => this.store.delete(this.key(o.name)).catch(() => undefined)));
  }
}
