import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { IntegrityError } from '../../cli/errors.js';
import { renderTable } from '../../cli/output.js';
import { catalogueFromFlags, storeFlags } from '../../cli/store-flags.js';
import { verifyStoredObjects, type VerifyReport } from '../../store/verify.js';

export default class BackupsVerify extends BaseCommand<typeof BackupsVerify> {
  static override summary = 'Re-read a stored backup and check every object against the sha256 and size in its manifest.';
  static override description = 'Exits 5 when any object is missing, truncated or altered.';
  static override examples = ['<%= config.bin %> backups verify etcd-20261122T040000Z-3f9a'];
  static override args = { id: Args.string({ required: true, description: 'Backup id (see `backups list`).' }) };
  static override flags = { ...storeFlags };

  async run(): Promise<VerifyReport> {
    const cat = catalogueFromFlags(this.flags, this.logger);
    const entry = await cat.describe(this.args.id);
    const report = await verifyStoredObjects(cat, entry.manifest, { signal: this.signal });
    this.printer.print(report, (r) =>
      renderTable(['OBJECT', 'RESULT', 'DETAIL'], r.objects.map((o) => [o.name, o.ok ? 'ok' : 'FAILED', o.error ?? `sha256 ${o.expected.sha256.slice(0, 16)}…`])) +
      (r.ok ? `Backup ${r.id} verified.\n` : ''),
    );
    if (!report.ok) {
      const bad = report.objects.filter((o) => !o.ok);
      throw new IntegrityError(`Backup ${report.id} failed verification: ${bad.map((o) => `${o.name} (${o.error})`).join('; ')}.`);
    }
    return report;
  }
}
