import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { confirm } from '../../cli/confirm.js';
import { withEnv } from '../../cli/env.js';
import { ExitCode } from '../../cli/errors.js';
import { kubeClientFromFlags, kubeFlags } from '../../cli/kube-flags.js';
import { journalFileFrom, upgradeStateFlags } from '../../cli/upgrade-flags.js';
import { runEventLogger } from '../../cli/upgrade-run-report.js';
import { abortRun, runStatus, type AbortResult } from '../../upgrade/service.js';

export default class UpgradeAbort extends BaseCommand<typeof UpgradeAbort> {
  static override summary = 'Drop an unfinished upgrade run: uncordon the nodes it cordoned, mark its journal aborted and release its lock.';
  static override description = `Nodes the run found cordoned stay cordoned. A node whose action had started may be half-upgraded: abort says so; check it before putting load on it.

A run whose lock is still being renewed is refused (stop that process first: Ctrl-C puts its nodes back); --force breaks the lock of a run known to be dead on another machine. Asks for confirmation; --yes when stdin is not a terminal.

Exit codes: 0 aborted; 7 the run is alive; 4 no run; 3 some nodes could not be uncordoned.`;
  static override examples = ['<%= config.bin %> upgrade abort', '<%= config.bin %> upgrade abort --yes --force'];
  static override flags = {
    ...kubeFlags,
    ...upgradeStateFlags,
    ...withEnv({
      yes: Flags.boolean({ char: 'y', summary: 'Do not ask for confirmation.' }),
      force: Flags.boolean({ summary: 'Break the lock even though its holder renewed it recently.' }),
    }),
  };

  async run(): Promise<AbortResult | undefined> {
    const f = this.flags;
    const client = await kubeClientFromFlags(f);
    try {
      const ctx = { client, namespace: f.namespace, journalFile: journalFileFrom(f, client.server), emit: runEventLogger(this.logger) };
      const s = await runStatus(ctx);
      const cordoned = s.journal.nodes.filter((n) => n.cordonedByRun).map((n) => n.node);
      const ok = await confirm(`Abort upgrade run ${s.journal.runId} (${s.journal.status})${cordoned.length ? ` and uncordon ${cordoned.join(', ')}` : ''}?`, { yes: f.yes, what: 'abort the upgrade run' });
      if (!ok) {
        this.logger.info('Nothing changed.');
        return undefined;
      }
      const r = await abortRun(ctx, { force: f.force });
      this.printer.print(r, (x) =>
        [
          `Upgrade run ${x.runId}: ${x.status}.`,
          x.uncordoned.length ? `  uncordoned: ${x.uncordoned.join(', ')}` : '  no node to uncordon',
          ...x.leftCordoned.map((l) => `  NOT uncordoned: ${l.node}: ${l.reason}`),
          x.lockReleased ? `  lock released (was held by ${x.lockReleased})` : '  no lock was held',
        ].join('\n'),
      );
      if (r.leftCordoned.length > 0) process.exitCode = ExitCode.Partial;
      return r;
    } finally {
      client.close();
    }
  }
}
