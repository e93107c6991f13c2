import { kubeFlags } from '../../cli/kube-flags.js';
import { SchedulabilityCommand, type CordonCommandResult } from '../../cli/node-command.js';
import { dryRunFlag, nodeArgs, nodeSelectFlags } from '../../cli/node-flags.js';

export default class NodeUncordon extends SchedulabilityCommand<typeof NodeUncordon> {
  static override summary = 'Mark nodes schedulable again.';
  static override description = 'Idempotent: a node already schedulable is left alone and said so. Every named node is checked first, so an unknown name (exit 4) changes nothing.';
  static override examples = ['<%= config.bin %> node uncordon worker-1 worker-2', '<%= config.bin %> node uncordon -l node-role.kubernetes.io/worker= --dry-run server'];
  static override strict = false;
  static override args = nodeArgs;
  static override flags = { ...kubeFlags, ...nodeSelectFlags, ...dryRunFlag };

  run(): Promise<CordonCommandResult> {
    return this.setAll(false);
  }
}
