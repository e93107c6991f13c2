import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { withEnv } from '../../cli/env.js';
import { formatBytes, renderTable } from '../../cli/output.js';
import { catalogueFromFlags, storeFlags } from '../../cli/store-flags.js';
import { BACKUP_KINDS } from '../../store/ids.js';
import type { BackupManifest } from '../../store/manifest.js';

export interface ListResult {
  store: string;
  backups: { id: string; kind: string; createdAt: string; bytes: number; source: BackupManifest['source']; labels: Record<string, string>; ok: boolean; problems: string[] }[];
  incomplete: { id: string; kind: string; objects: number; lastModified: string; manifestError?: string }[];
}

export default class BackupsList extends BaseCommand<typeof BackupsList> {
  static override summary = 'List the complete backups in a store, newest first.';
  static override description =
    'A backup exists once its manifest.json is written, after all its data. Objects without a manifest (a backup still writing, or one that failed) are not listed as backups; they are counted as incomplete and collected by `backups prune` after a grace period.';
  static override examples = [
    '<%= config.bin %> backups list',
    '<%= config.bin %> backups list --kind etcd --store s3://backups/prod --s3-region eu-west-1',
    '<%= config.bin %> backups list --output json',
  ];
  static override flags = {
    ...storeFlags,
    ...withEnv({ kind: Flags.option({ options: BACKUP_KINDS, summary: 'Only backups of this kind.' })() }),
  };

  async run(): Promise<ListResult> {
    const cat = await catalogueFromFlags(this.flags, this.logger);
    const listing = await cat.list(this.flags.kind ? { kind: this.flags.kind } : {});
    for (const inc of listing.incomplete) {
      if (inc.manifestError) this.logger.warn(`backup ${inc.id} has an unreadable manifest and is not listed: ${inc.manifestError}`);
    }
    for (const b of listing.backups) {
      if (b.problems.length) this.logger.warn(`backup ${b.manifest.id} is damaged: ${b.problems.join('; ')}`);
    }
    const result: ListResult = {
      store: cat.store.location,
      backups: listing.backups.map((b) => ({
        id: b.manifest.id,
        kind: b.manifest.kind,
        createdAt: b.manifest.createdAt,
        bytes: b.storedBytes,
        source: b.manifest.source,
        labels: b.manifest.labels,
        ok: b.problems.length === 0,
        problems: b.problems,
      })),
      incomplete: listing.incomplete.map((i) => ({
        id: i.id,
        kind: i.kind,
        objects: i.objects.length,
        lastModified: i.lastModified.toISOString(),
        ...(i.manifestError ? { manifestError: i.manifestError } : {}),
      })),
    };
    this.printer.print(result, (r) => {
      if (r.backups.length === 0 && r.incomplete.length === 0) return `No backups in ${r.store}.`;
      const table = renderTable(
        ['ID', 'KIND', 'CREATED', 'SIZE', 'SOURCE', 'STATUS', 'LABELS'],
        r.backups.map((b) => [
          b.id,
          b.kind,
          b.createdAt.replace(/\.\d+Z$/, 'Z'),
          formatBytes(b.bytes),
          String(b.source.cluster ?? b.source.endpoint ?? ''),
          b.ok ? 'ok' : 'DAMAGED',
          Object.entries(b.labels).map(([k, v]) => `${k}=${v}`).join(','),
        ]),
      );
      const inc = r.incomplete.length ? `\n${r.incomplete.length} incomplete (no manifest; not restorable): ${r.incomplete.map((i) => i.id).join(', ')}\n` : '';
      return table + inc;
    });
    return result;
  }
}
