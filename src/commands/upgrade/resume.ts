import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { parseDuration } from '../../cli/duration.js';
import { withEnv } from '../../cli/env.js';
import { kubeClientFromFlags, kubeFlags } from '../../cli/kube-flags.js';
import { actionFlags, actionFor, actionSpecFromFlags, journalFileFrom, upgradeStateFlags } from '../../cli/upgrade-flags.js';
import { upgradeProgress } from '../../cli/upgrade-progress.js';
import { renderJournal } from '../../cli/upgrade-run-report.js';
import { splitCommand } from '../../upgrade/actions.js';
import { resumeRun, type ResumeResult } from '../../upgrade/service.js';

export default class UpgradeResume extends BaseCommand<typeof UpgradeResume> {
  static override summary = 'Continue an upgrade run that failed, was interrupted or whose process died, from its journal.';
  static override description = `Reads the run journal (the ConfigMap, or the local copy when it is newer), takes the lock (a lock held by this run's dead process on this host is taken over at once; one held elsewhere only once it expires), and goes on with the first node not done. Each node's real state is checked first: a node already Ready at the target only gets its uncordon and gates; any other node starts again from its cordon (cordon and drain are idempotent).

The drain settings and timeouts are the run's own. The action and gate command are the run's own when the local journal copy (written by the machine that started the run) has them; otherwise they must be given again: what runs on this machine never comes from the ConfigMap alone. --action, --job-image or --wait-external replace the action (e.g. after fixing a script path).

An action cut short by a crash is run again (actions must be safe to repeat, as \`kubeadm upgrade node\` is), unless its process is still running on this host (refused) or it is a Job (the same Job is followed).

Exit codes as \`upgrade run\`; 4 when there is no run journal.`;
  static override examples = ['<%= config.bin %> upgrade resume', "<%= config.bin %> upgrade resume --action '/usr/local/bin/upgrade-node {node} {version}'"];
  static override flags = {
    ...kubeFlags,
    ...actionFlags,
    ...upgradeStateFlags,
    ...withEnv({
      'gate-command': Flags.string({ summary: 'Replaces the run\'s gate command ({node} and {version} substituted, no shell).' }),
      'lock-duration': Flags.string({ default: '120s', summary: 'How long the lock outlives a holder that stops renewing it.' }),
      'api-retry-timeout': Flags.string({ default: '30s', summary: 'How long an API server that does not answer is waited out (journal writes, drains) before the run stops.' }),
    }),
  };

  async run(): Promise<ResumeResult> {
    const f = this.flags;
    const given = actionSpecFromFlags(f, f.namespace);
    const client = await kubeClientFromFlags(f);
    const progress = upgradeProgress(this.logger);
    try {
      const result = await resumeRun(
        {
          client,
          namespace: f.namespace,
          journalFile: journalFileFrom(f, client.server),
          lockDurationSeconds: Math.ceil(parseDuration(f['lock-duration'], '--lock-duration') / 1000),
          apiRetryTimeoutMs: parseDuration(f['api-retry-timeout'], '--api-retry-timeout'),
          signal: this.signal,
          emit: progress.onEvent,
        },
        { actionSpec: given, gateCommand: f['gate-command'] ? splitCommand(f['gate-command'], '--gate-command') : undefined, action: (spec, runId) => actionFor(spec, client, runId) },
      );
      progress.stop();
      if (result.kind === 'finished') this.logger.info(`Run ${result.journal.runId} is ${result.journal.status}: nothing to resume.`);
      this.printer.print(result.journal, (j) => renderJournal(j));
      if (result.journal.failure && result.journal.status !== 'succeeded' && result.kind === 'run') this.logger.error(result.journal.failure.message);
      process.exitCode = result.exitCode;
      return result;
    } finally {
      progress.stop();
      client.close();
    }
  }
}
