import { randomBytes } from 'node:crypto';

export const BACKUP_KINDS = ['etcd', 'resources'] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];

const ID_RE = /^(etcd|resources)-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z-([0-9a-f]{4})$/;

/** `<kind>-<UTC yyyymmddThhmmssZ>-<4 hex>`: sorts by time as a string. */
export function newBackupId(kind: BackupKind, now: Date = new Date(), rand: string = randomBytes(2).toString('hex')): string {
  const stamp = now.toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '');
  return `${kind}-${stamp}-${rand}`;
}

export function parseBackupId(id: string): { kind: BackupKind; time: Date } | undefined {
  const m = ID_RE.exec(id);
  if (!m) return undefined;
  const [, kind, y, mo, d, h, mi, s] = m;
  const time = new Date(`${y}-${mo}-${d}T${h}:${mi}:${s}Z`);
  if (Number.isNaN(time.getTime())) return undefined;
  return { kind: kind as BackupKind, time };
}
