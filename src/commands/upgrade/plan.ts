import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { withEnv } from '../../cli/env.js';
import { ExitCode } from '../../cli/errors.js';
import { kubeClientFromFlags, kubeFlags } from '../../cli/kube-flags.js';
import { drainFilterFlags, filterOptionsFromFlags } from '../../cli/node-flags.js';
import { renderUpgradePlan } from '../../cli/upgrade-plan-report.js';
import { NodeApi } from '../../drain/api.js';
import { parseLabelSelector } from '../../kube/label-selector.js';
import { parseMaxUnavailable, planUpgrade, type UpgradePlan } from '../../upgrade/plan.js';
import { parseTargetVersion } from '../../upgrade/skew.js';

export default class UpgradePlanCommand extends BaseCommand<typeof UpgradePlanCommand> {
  static override summary = 'Plan a rolling upgrade to a Kubernetes version: the order, the skew checks and the drain pre-flight of every batch. Changes nothing.';
  static override description = `Reads the nodes (roles, kubelet versions, readiness) and the API server's version, then:

  * refuses a target that is older than the API server, skips a minor version, or would leave a kubelet newer than the API server or more than three minor versions behind it after any step;
  * orders the nodes: control-plane nodes one at a time (by name), then workers in batches of --max-unavailable; nodes already at the target are skipped;
  * blocks on NotReady nodes (unless --allow-not-ready);
  * runs the drain pre-flight for every batch in that order, with the drain filter flags given, and lists what would stop each one.

Exit codes: 0 the plan can run (or there is nothing to do); 7 blocked (a skew violation, a NotReady node or a pre-flight blocker); 2 bad arguments (a malformed version); 4 unknown node.`;
  static override examples = [
    '<%= config.bin %> upgrade plan --to v1.36.3 --ignore-daemonsets',
    '<%= config.bin %> upgrade plan --to v1.37.0 --max-unavailable 25% --node-selector pool=blue --ignore-daemonsets --delete-emptydir-data',
    '<%= config.bin %> upgrade plan --to v1.36.3 worker-1 worker-2 -o json',
  ];
  static override strict = false;
  static override args = { node: Args.string({ required: false, description: 'Nodes to upgrade (default: every node, or those --node-selector matches).' }) };
  static override flags = {
    ...kubeFlags,
    ...drainFilterFlags,
    ...withEnv({
      to: Flags.string({ required: true, summary: 'The Kubernetes version to upgrade to, e.g. v1.36.3.' }),
      'max-unavailable': Flags.string({ default: '1', summary: 'Workers upgraded at once: a number, or a percentage of the workers in scope (rounded down, at least 1).' }),
      'node-selector': Flags.string({ char: 'l', summary: 'Only the nodes matching this label selector (kubectl syntax).' }),
      'allow-not-ready': Flags.boolean({ summary: 'Plan NotReady nodes instead of blocking on them.' }),
    }),
  };

  async run(): Promise<UpgradePlan> {
    const f = this.flags;
    // Arguments first: a typo is exit 2 before the cluster is asked anything.
    const target = parseTargetVersion(f.to);
    const maxUnavailable = parseMaxUnavailable(f['max-unavailable']);
    const nodeSelector = f['node-selector'] ? parseLabelSelector(f['node-selector']) : undefined;
    const client = await kubeClientFromFlags(f);
    try {
      const plan = await planUpgrade(
        new NodeApi(client, this.signal),
        { ...filterOptionsFromFlags(f), target, maxUnavailable, nodes: this.positional, nodeSelector, allowNotReady: f['allow-not-ready'] },
        this.signal,
      );
      this.printer.print(plan, renderUpgradePlan);
      process.exitCode = plan.outcome === 'blocked' ? ExitCode.Blocked : ExitCode.Success;
      return plan;
    } finally {
      client.close();
    }
  }
}
