import { kubeFlags } from '../../cli/kube-flags.js';
import { SchedulabilityCommand, type CordonCommandResult } from '../../cli/node-command.js';
import { dryRunFlag, nodeArgs, nodeSelectFlags } from '../../cli/node-flags.js';

export default class NodeCordon extends SchedulabilityCommand<typeof NodeCordon> {
  static override summary = 'Mark nodes unschedulable; pods already there keep running.';
  static override description = 'Idempotent: a node already cordoned is left alone and said so. Every named node is checked first, so an unknown name (exit 4) changes nothing.';
  static override examples = ['<%= config.bin %> node cordon worker-1 worker-2', '<%= config.bin %> node cordon -l node-role.kubernetes.io/worker= --dry-run server'];
  static override strict = false;
  static override args = nodeArgs;
  static override flags = { ...kubeFlags, ...nodeSelectFlags, ...dryRunFlag };

  run(): Promise<CordonCommandResult> {
    return this.setAll(true);
  }
}
