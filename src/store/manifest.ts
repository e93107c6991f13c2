import type { BackupKind } from './ids.js';
import { BACKUP_KINDS } from './ids.js';

export const MANIFEST_NAME = 'manifest.json';
export const MANIFEST_FORMAT = 1;

/** One stored data object of a backup. */
export interface ObjectRecord {
  /** File name inside the backup, e.g. "snapshot.db.zst.age". */
  name: string;
  /** Bytes as stored (after compression and encryption) and their sha256. */
  size: number;
  sha256: string;
  /** The plain payload (before compression and encryption), when the writer knows it. */
  payload?: { size: number; sha256: string };
  codec?: 'zstd' | 'gzip' | 'none';
  encryption?: { scheme: 'age'; recipients: string[] };
}

/** manifest.json: written last; a backup without one does not exist. */
export interface BackupManifest {
  format: typeof MANIFEST_FORMAT;
  id: string;
  kind: BackupKind;
  createdAt: string;
  finishedAt: string;
  tool: { name: 'lifeboat'; version: string };
  /** Where the data came from: etcd endpoint and cluster id, or API server and Kubernetes version. */
  source: { cluster?: string; [k: string]: unknown };
  objects: ObjectRecord[];
  /** Kind-specific facts: etcd revision, db size, resource counts, ... */
  details: Record<string, unknown>;
  warnings: string[];
  labels: Record<string, string>;
}

/** Checks the shape of a parsed manifest; returns a reason when it is not one. */
export function validateManifest(value: unknown, expectId: string): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const m = value as Partial<BackupManifest>;
  if (m.format !== MANIFEST_FORMAT) return `unknown manifest format ${JSON.stringify(m.format)}`;
  if (m.id !== expectId) return `id ${JSON.stringify(m.id)} does not match its location ${expectId}`;
  if (!BACKUP_KINDS.includes(m.kind as BackupKind)) return `unknown kind ${JSON.stringify(m.kind)}`;
  if (typeof m.createdAt !== 'string' || Number.isNaN(Date.parse(m.createdAt))) return 'createdAt is missing or not a time';
  if (!Array.isArray(m.objects)) return 'objects is missing';
  for (const o of m.objects) {
    if (typeof o?.name !== 'string' || typeof o.size !== 'number' || !/^[0-9a-f]{64}$/.test(String(o.sha256))) {
      return 'an object record lacks name, size or sha256';
    }
  }
  return undefined;
}
