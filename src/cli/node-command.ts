import type { Command } from '@oclif/core';
import { NodeApi, type DryRun } from '../drain/api.js';
import { cordonNodes, describeCordon, type CordonResult } from '../drain/cordon.js';
import { BaseCommand } from './base-command.js';
import { ExitCode } from './errors.js';
import { kubeClientFromFlags } from './kube-flags.js';
import { renderTable } from './output.js';

export interface CordonCommandResult {
  nodes: CordonResult[];
}

/** cordon and uncordon: resolve the nodes, set each, print the prior and new state. */
export abstract class SchedulabilityCommand<T extends typeof Command> extends BaseCommand<T> {
  protected async setAll(cordon: boolean): Promise<CordonCommandResult> {
    const f = this.flags as unknown as { kubeconfig?: string; context?: string; selector?: string; 'dry-run': DryRun };
    const client = await kubeClientFromFlags(f);
    try {
      const result = { nodes: await cordonNodes(new NodeApi(client, this.signal), this.positional, f.selector, cordon, f['dry-run']) };
      this.printer.print(result, (r) =>
        renderTable(
          ['NODE', 'BEFORE', 'AFTER', 'RESULT'],
          r.nodes.map((n) => [n.node, n.before, n.after, describeCordon(n).replace(/^node\/\S+ /, '')]),
        ),
      );
      const failed = result.nodes.filter((n) => n.error);
      if (failed.length > 0) {
        for (const n of failed) this.logger.error(describeCordon(n));
        process.exitCode = failed.length === result.nodes.length ? ExitCode.Failure : ExitCode.Partial;
      }
      return result;
    } finally {
      client.close();
    }
  }
}
