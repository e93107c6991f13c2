import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { confirm } from '../../cli/confirm.js';
import { formatDuration, parseDuration } from '../../cli/duration.js';
import { withEnv } from '../../cli/env.js';
import { LifeboatError, UsageError } from '../../cli/errors.js';
import { formatBytes, renderTable } from '../../cli/output.js';
import { retentionFlags } from '../../cli/retention-flags.js';
import { catalogueFromFlags, storeFlags } from '../../cli/store-flags.js';
import { BACKUP_KINDS } from '../../store/ids.js';
import { applyPrune, planPrune, type PruneReport } from '../../store/prune.js';
import { isEmptyPolicy, type RetentionPolicy } from '../../store/retention.js';

export default class BackupsPrune extends BaseCommand<typeof BackupsPrune> {
  static override summary = 'Delete backups a retention policy does not keep, and collect garbage.';
  static override description = `Backups are grouped by kind and source cluster; within a group the newest backup is always kept, and a backup is kept if any rule keeps it:
  --keep-last N      the N newest
  --keep-hourly N    the newest of each of the last N hours that have a backup (likewise daily, weekly (ISO), monthly, yearly; UTC)
  --keep-within D    every backup within D of the group's newest backup (e.g. 7d, 36h)
Damaged backups and unreadable manifests are reported, never deleted. Objects without a manifest that have not changed for --garbage-grace, and interrupted uploads as old, are removed.`;
  static override examples = [
    '<%= config.bin %> backups prune --keep-last 3 --keep-daily 7 --keep-weekly 4 --dry-run',
    '<%= config.bin %> backups prune --kind etcd --keep-within 2d --keep-monthly 12 --yes',
  ];
  static override flags = {
    ...storeFlags,
    ...retentionFlags,
    ...withEnv({
      kind: Flags.option({ options: BACKUP_KINDS, summary: 'Only prune backups of this kind.' })(),
      'garbage-grace': Flags.string({ summary: 'Age after which objects without a manifest are garbage.', default: '24h' }),
      'dry-run': Flags.boolean({ summary: 'Show what would be deleted; delete nothing.' }),
      yes: Flags.boolean({ char: 'y', summary: 'Do not ask for confirmation (required when stdin is not a terminal).' }),
    }),
  };

  async run(): Promise<PruneReport> {
    const f = this.flags;
    const policy: RetentionPolicy = {
      ...(f['keep-last'] ? { last: f['keep-last'] } : {}),
      ...(f['keep-hourly'] ? { hourly: f['keep-hourly'] } : {}),
      ...(f['keep-daily'] ? { daily: f['keep-daily'] } : {}),
      ...(f['keep-weekly'] ? { weekly: f['keep-weekly'] } : {}),
      ...(f['keep-monthly'] ? { monthly: f['keep-monthly'] } : {}),
      ...(f['keep-yearly'] ? { yearly: f['keep-yearly'] } : {}),
      ...(f['keep-within'] ? { withinMs: parseDuration(f['keep-within'], '--keep-within') } : {}),
    };
    if (isEmptyPolicy(policy)) {
      throw new UsageError('No retention policy given, so nothing would be kept by rule.', {
        hint: 'Give at least one of --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly, --keep-within.',
      });
    }
    const graceMs = parseDuration(f['garbage-grace'], '--garbage-grace');
    const cat = await catalogueFromFlags(f, this.logger);
    const plan = await planPrune(cat, { policy, graceMs, ...(f.kind ? { kind: f.kind } : {}) });
    let report = plan.report;
    if (!f['dry-run']) {
      const { removed, garbage } = plan.report;
      if (removed.length || garbage.length) {
        const question = `Delete ${removed.length} backup(s) and ${garbage.length} incomplete one(s)?`;
        if (!(await confirm(question, { yes: f.yes, what: 'prune backups' }))) throw new LifeboatError('Nothing deleted.');
      }
      report = await applyPrune(cat, plan);
    }
    for (const s of report.skipped) this.logger.warn(`left alone: ${s.id}: ${s.reason}`);
    this.printer.print(report, (r) => {
      const verb = r.dryRun ? 'would remove' : 'removed';
      const rows = [
        ...r.kept.map((k) => [k.id, 'keep', formatBytes(k.bytes), k.reasons.join(',')]),
        ...r.removed.map((k) => [k.id, verb, formatBytes(k.bytes), '']),
        ...r.garbage.map((g) => [g.id, `${verb} (incomplete)`, formatBytes(g.bytes), `no manifest, untouched > ${formatDuration(graceMs)}`]),
      ];
      const footer = `${r.kept.length} kept, ${r.removed.length} ${verb}, ${r.garbage.length} incomplete ${verb}` + (r.dryRun ? ' (dry run: nothing deleted)' : '');
      return (rows.length ? renderTable(['ID', 'ACTION', 'SIZE', 'KEPT BY'], rows) : '') + footer + '\n';
    });
    return report;
  }
}
