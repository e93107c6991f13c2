import { BaseCommand } from '../../cli/base-command.js';
import { kubeClientFromFlags, kubeFlags } from '../../cli/kube-flags.js';
import { journalFileFrom, upgradeStateFlags } from '../../cli/upgrade-flags.js';
import { renderJournal } from '../../cli/upgrade-run-report.js';
import type { RunJournal } from '../../upgrade/journal.js';
import { runStatus } from '../../upgrade/service.js';

export default class UpgradeStatus extends BaseCommand<typeof UpgradeStatus> {
  static override summary = 'Show the last upgrade run: each node\'s step, phase, time and outcome, and who holds the lock.';
  static override description = 'Reads the run journal from its ConfigMap (or the local copy, when the cluster cannot be read or the copy is newer). Changes nothing. Exit 4 when there is no run.';
  static override examples = ['<%= config.bin %> upgrade status', '<%= config.bin %> upgrade status -o json'];
  static override flags = { ...kubeFlags, ...upgradeStateFlags };

  async run(): Promise<{ journal: RunJournal }> {
    const f = this.flags;
    const client = await kubeClientFromFlags(f);
    try {
      const s = await runStatus({ client, namespace: f.namespace, journalFile: journalFileFrom(f, client.server) });
      this.printer.print(s, (x) => renderJournal(x.journal, { source: x.source, lock: x.lock }));
      return s;
    } finally {
      client.close();
    }
  }
}
