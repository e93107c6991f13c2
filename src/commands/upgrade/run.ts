import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { backupWriteFlags, encryptionFrom } from '../../cli/backup-flags.js';
import { parseDuration } from '../../cli/duration.js';
import { withEnv } from '../../cli/env.js';
import { UsageError } from '../../cli/errors.js';
import { etcdConnectionFromFlags, etcdFlags } from '../../cli/etcd-flags.js';
import { kubeClientFromFlags, kubeFlags } from '../../cli/kube-flags.js';
import { drainFilterFlags, filterOptionsFromFlags } from '../../cli/node-flags.js';
import { catalogueFromFlags, storeFlags } from '../../cli/store-flags.js';
import { actionFlags, actionFor, actionSpecFromFlags, journalFileFrom, upgradeStateFlags } from '../../cli/upgrade-flags.js';
import { renderUpgradePlan } from '../../cli/upgrade-plan-report.js';
import { upgradeProgress } from '../../cli/upgrade-progress.js';
import { renderJournal } from '../../cli/upgrade-run-report.js';
import { parseLabelSelector } from '../../kube/label-selector.js';
import { splitCommand } from '../../upgrade/actions.js';
import { parseMaxUnavailable } from '../../upgrade/plan.js';
import { startRun, type StartResult } from '../../upgrade/service.js';
import { parseTargetVersion } from '../../upgrade/skew.js';
import { preUpgradeSnapshot } from '../../upgrade/snapshot.js';

const { label: _label, ...snapshotWriteFlags } = backupWriteFlags;

export default class UpgradeRun extends BaseCommand<typeof UpgradeRun> {
  static override summary = 'Upgrade nodes to a Kubernetes version, one batch after another: snapshot, lock, cordon, drain, action, wait, uncordon, gates.';
  static override description = `Plans the run as \`upgrade plan\` does and refuses a plan with blockers (exit 7, nothing changed). Then:

  * takes a verified etcd snapshot into the store when etcd flags are given (--endpoints or ETCDCTL_ENDPOINTS); --skip-snapshot runs without one;
  * takes the run lock, a Lease in --namespace, renewed while the run works: a second run is refused naming the holder;
  * per batch (control-plane nodes one by one, then workers --max-unavailable at a time): re-runs the drain pre-flight, cordons the batch, drains each node, runs the action for each node, waits until each is Ready at the target version, uncordons what the run cordoned, and checks the gates (node and DaemonSet pods Ready, the PodDisruptionBudgets that allowed a disruption before the batch allowing one again, --gate-command);
  * writes the run journal before every step, to a ConfigMap in --namespace and to a local file.

The action is one of: --action 'CMD ARGS' run locally, {node} and {version} substituted inside the arguments without a shell (--shell to use sh -c); --job-image, a Job pinned to the node; --wait-external, waiting for something else to upgrade the node.

On a failure or an interrupt the run stops where it is, puts back the batch's schedulability (unless --leave-cordoned) and says where it stopped; \`upgrade resume\` continues, \`upgrade abort\` drops the run.

Exit codes: 0 every node upgraded; 7 blocked with nothing changed (plan blockers, the lock held by another run, an unfinished run); 3 some nodes upgraded before the run stopped; 1 the first batch failed; 2 bad arguments (a malformed version, an action that is not executable); 4 unknown node; 130 interrupted.`;
  static override examples = [
    "<%= config.bin %> upgrade run --to v1.36.3 --ignore-daemonsets --action 'ssh {node} sudo /usr/local/sbin/upgrade-kubelet {version}' --endpoints https://10.0.0.10:2379 --cacert ca.crt --cert client.crt --key client.key --store s3://backups/prod",
    '<%= config.bin %> upgrade run --to v1.36.3 --ignore-daemonsets --job-image registry.example/node-upgrader:1.36 --job-privileged --job-host-pid --skip-snapshot',
    '<%= config.bin %> upgrade run --to v1.36.3 -l pool=blue --max-unavailable 2 --ignore-daemonsets --wait-external --wait-timeout 45m --skip-snapshot',
  ];
  static override strict = false;
  static override args = { node: Args.string({ required: false, description: 'Nodes to upgrade (default: every node, or those --node-selector matches).' }) };
  static override flags = {
    ...kubeFlags,
    ...drainFilterFlags,
    ...actionFlags,
    ...upgradeStateFlags,
    ...etcdFlags,
    ...storeFlags,
    ...snapshotWriteFlags,
    ...withEnv({
      to: Flags.string({ required: true, summary: 'The Kubernetes version to upgrade to, e.g. v1.36.3.' }),
      'max-unavailable': Flags.string({ default: '1', summary: 'Workers upgraded at once: a number, or a percentage of the workers in scope (rounded down, at least 1).' }),
      'node-selector': Flags.string({ char: 'l', summary: 'Only the nodes matching this label selector (kubectl syntax).' }),
      'skip-snapshot': Flags.boolean({ summary: 'Run without taking an etcd snapshot first.' }),
      'drain-timeout': Flags.string({ default: '15m', summary: 'Give up on a node whose drain takes longer (0s: never).' }),
      'grace-period': Flags.integer({ default: -1, summary: "Seconds each evicted pod gets to terminate; negative: the pod's own." }),
      'skip-wait-for-delete-timeout': Flags.integer({ default: 0, min: 0, summary: 'Do not wait for pods deleted more than this many seconds ago; 0: wait for all.' }),
      'wait-timeout': Flags.string({ default: '20m', summary: 'How long a node gets after its action to be Ready at the target version.' }),
      'gate-timeout': Flags.string({ default: '10m', summary: 'How long the health gates get after the uncordon.' }),
      'gate-command': Flags.string({ summary: 'A local command that must exit 0 after each node ({node} and {version} substituted, no shell).' }),
      'leave-cordoned': Flags.boolean({ summary: 'When the run stops on a failure, leave its nodes cordoned.' }),
      'lock-duration': Flags.string({ default: '120s', summary: 'How long the lock outlives a holder that stops renewing it.' }),
      'api-retry-timeout': Flags.string({ default: '30s', summary: 'How long an API server that does not answer is waited out (journal writes, drains) before the run stops.' }),
    }),
  };

  async run(): Promise<StartResult> {
    const f = this.flags;
    // Arguments first: a typo is exit 2 before the cluster is asked anything.
    const target = parseTargetVersion(f.to);
    const maxUnavailable = parseMaxUnavailable(f['max-unavailable']);
    const nodeSelector = f['node-selector'] ? parseLabelSelector(f['node-selector']) : undefined;
    const actionSpec = actionSpecFromFlags(f, f.namespace);
    if (!actionSpec) throw new UsageError('Say how a node is upgraded: --action, --job-image or --wait-external.');
    const gateCommand = f['gate-command'] ? splitCommand(f['gate-command'], '--gate-command') : undefined;
    const etcdGiven = Boolean(f.endpoints || process.env.ETCDCTL_ENDPOINTS);
    if (!etcdGiven && !f['skip-snapshot']) {
      throw new UsageError('An upgrade run takes a verified etcd snapshot first: give the etcd flags (--endpoints, --cacert, --cert, --key) and --store, or --skip-snapshot.');
    }
    if (etcdGiven && f['skip-snapshot']) throw new UsageError('--skip-snapshot and etcd flags contradict each other: give one.');
    const encryption = etcdGiven ? await encryptionFrom(f) : undefined;
    const lockSeconds = Math.ceil(parseDuration(f['lock-duration'], '--lock-duration') / 1000);
    const drainTimeout = f['drain-timeout'].trim() === '0' ? 0 : parseDuration(f['drain-timeout'], '--drain-timeout');
    const settings = {
      action: actionSpec,
      drain: { ...filterOptionsFromFlags(f, f['skip-wait-for-delete-timeout']), gracePeriodSeconds: f['grace-period'], timeoutMs: drainTimeout },
      waitTimeoutMs: parseDuration(f['wait-timeout'], '--wait-timeout'),
      gateTimeoutMs: parseDuration(f['gate-timeout'], '--gate-timeout'),
      gateCommand,
      leaveCordoned: f['leave-cordoned'],
    };
    const client = await kubeClientFromFlags(f);
    const progress = upgradeProgress(this.logger);
    try {
      const result = await startRun(
        { client, namespace: f.namespace, journalFile: journalFileFrom(f, client.server), lockDurationSeconds: lockSeconds, apiRetryTimeoutMs: parseDuration(f['api-retry-timeout'], '--api-retry-timeout'), signal: this.signal, emit: progress.onEvent },
        {
          plan: { ...filterOptionsFromFlags(f), target, maxUnavailable, nodes: this.positional, nodeSelector, allowNotReady: false },
          settings,
          action: (runId) => actionFor(actionSpec, client, runId),
          snapshot: etcdGiven
            ? async (runId) =>
                preUpgradeSnapshot(await catalogueFromFlags(f, this.logger), {
                  connection: etcdConnectionFromFlags(f),
                  codec: f.compress,
                  level: f['compress-level'],
                  encryption,
                  runId,
                  target: `v${target.version}`,
                  signal: this.signal,
                  onConnected: (endpoint) => this.logger.info(`snapshotting etcd at ${endpoint}`),
                })
            : { skipped: '--skip-snapshot' },
        },
      );
      progress.stop();
      if (result.kind === 'run') {
        this.printer.print(result.journal, (j) => renderJournal(j));
        if (result.journal.failure && result.journal.status !== 'succeeded') this.logger.error(result.journal.failure.message);
      } else {
        this.printer.print(result.plan, renderUpgradePlan);
        if (result.kind === 'plan-blocked') this.logger.error('The plan has blockers: nothing was changed.');
      }
      process.exitCode = result.exitCode;
      return result;
    } finally {
      progress.stop();
      client.close();
    }
  }
}
