import type { BackupKind } from './ids.js';
import type { BackupEntry, Catalogue, IncompleteEntry } from './catalogue.js';
import { applyRetention, type RetentionPolicy } from './retention.js';

export interface PruneOptions {
  policy: RetentionPolicy;
  /** Objects without a manifest are garbage once untouched for this long (a backup may still be writing). */
  graceMs: number;
  kind?: BackupKind;
  now?: Date;
}

export interface PruneItem {
  id: string;
  kind: BackupKind;
  createdAt: string;
  bytes: number;
  reasons: string[];
}

export interface PruneReport {
  dryRun: boolean;
  kept: PruneItem[];
  removed: PruneItem[];
  /** Ids without a manifest, older than the grace period: removed (or would be). */
  garbage: { id: string; kind: BackupKind; objects: number; bytes: number; lastModified: string }[];
  /** Backups left alone because they are damaged or their manifest is unreadable: for a person to look at. */
  skipped: { id: string; reason: string }[];
  /** Temporary files or open multipart uploads removed. */
  incompleteUploadsRemoved: number;
}

/** A prune decided but not yet carried out: what a person confirms is exactly what is deleted. */
export interface PrunePlan {
  report: PruneReport;
  incomplete: IncompleteEntry[];
  cutoff: Date;
}

/** Decides what a retention policy removes and what is garbage. Deletes nothing. */
export async function planPrune(cat: Catalogue, opts: PruneOptions): Promise<PrunePlan> {
  const now = opts.now ?? new Date();
  const listing = await cat.list(opts.kind ? { kind: opts.kind } : {});
  const skipped: PruneReport['skipped'] = [];
  const healthy: BackupEntry[] = [];
  for (const b of listing.backups) {
    if (b.problems.length) skipped.push({ id: b.manifest.id, reason: `damaged: ${b.problems.join('; ')}` });
    else healthy.push(b);
  }
  const decisions = applyRetention(
    healthy.map((b) => ({
      id: b.manifest.id,
      group: `${b.manifest.kind}\u0000${b.manifest.source.cluster ?? ''}`,
      time: new Date(b.manifest.createdAt),
      entry: b,
    })),
    opts.policy,
  );
  const item = (b: BackupEntry, reasons: string[]): PruneItem => ({
    id: b.manifest.id,
    kind: b.manifest.kind,
    createdAt: b.manifest.createdAt,
    bytes: b.storedBytes,
    reasons,
  });
  const kept = decisions.filter((d) => d.keep).map((d) => item(d.item.entry, d.reasons));
  const removed = decisions.filter((d) => !d.keep).map((d) => item(d.item.entry, []));

  const cutoff = now.getTime() - opts.graceMs;
  const garbage: PruneReport['garbage'] = [];
  for (const inc of listing.incomplete) {
    if (inc.manifestError) {
      skipped.push({ id: inc.id, reason: `unreadable manifest: ${inc.manifestError}` });
      continue;
    }
    if (inc.lastModified.getTime() >= cutoff) continue;
    garbage.push({
      id: inc.id,
      kind: inc.kind,
      objects: inc.objects.length,
      bytes: inc.objects.reduce((n, o) => n + o.size, 0),
      lastModified: inc.lastModified.toISOString(),
    });
  }

  kept.sort((a, b) => (a.id < b.id ? 1 : -1));
  removed.sort((a, b) => (a.id < b.id ? 1 : -1));
  const garbageIds = new Set(garbage.map((g) => g.id));
  return {
    report: { dryRun: true, kept, removed, garbage, skipped, incompleteUploadsRemoved: 0 },
    incomplete: listing.incomplete.filter((i) => garbageIds.has(i.id)),
    cutoff: new Date(cutoff),
  };
}

/** Carries out a plan: deletes the removed backups, the garbage, and stale interrupted uploads. */
export async function applyPrune(cat: Catalogue, plan: PrunePlan): Promise<PruneReport> {
  for (const r of plan.report.removed) await cat.delete(r.id);
  for (const inc of plan.incomplete) await cat.deleteIncomplete(inc);
  const incompleteUploadsRemoved = await cat.store.cleanupIncomplete(plan.cutoff);
  return { ...plan.report, dryRun: false, incompleteUploadsRemoved };
}
