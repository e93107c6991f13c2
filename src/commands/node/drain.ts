import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { parseDuration } from '../../cli/duration.js';
import { withEnv } from '../../cli/env.js';
import { kubeClientFromFlags, kubeFlags } from '../../cli/kube-flags.js';
import { drainFilterFlags, dryRunFlag, filterOptionsFromFlags, nodeArgs, nodeSelectFlags } from '../../cli/node-flags.js';
import { renderDrainReport } from '../../cli/drain-report.js';
import { NodeApi } from '../../drain/api.js';
import { resolveNodes } from '../../drain/cordon.js';
import { drainNodes, exitCodeOf, type DrainEvent, type DrainReport } from '../../drain/drain.js';

export default class NodeDrain extends BaseCommand<typeof NodeDrain> {
  static override summary = 'Drain nodes one after the other, after a pre-flight that predicts every blocker; a failed drain uncordons the node again.';
  static override description = `Takes kubectl drain's flags and semantics (filters, policy/v1 evictions, PDB retries, waiting by UID), with three differences:

  * A pre-flight runs first and changes nothing: pods the filters refuse, pods under several PDBs, PDBs exhausted now or by this drain's evictions (counted across all the nodes, in order), evicted pods that could not be scheduled anywhere else, pods on local volumes. Any blocker stops the run before a node is cordoned (exit 7); --preflight-only just reports, --ignore-preflight reports and goes on.
  * Nodes are cordoned and drained one at a time, not all cordoned first.
  * If a drain fails, times out or is interrupted, the node gets back the schedulability it had (a node cordoned before stays cordoned), unless --leave-cordoned. The report lists what was evicted, what remains and why; an eviction refused by a PodDisruptionBudget names it with its healthy counts.

The pre-flight lists nodes, pods, PodDisruptionBudgets, PersistentVolumeClaims, PersistentVolumes, DaemonSets and namespaces cluster-wide, so the credentials need list on those besides what kubectl drain needs (patch nodes, create pods/eviction).

Exit codes: 0 drained; 7 blocked (pre-flight, a PDB, or pods the filters refuse) with nothing changed; 3 some nodes drained before one failed; 4 unknown node; 1 other failures; 130 interrupted.`;
  static override examples = [
    '<%= config.bin %> node drain worker-1 --ignore-daemonsets',
    '<%= config.bin %> node drain worker-1 worker-2 --ignore-daemonsets --delete-emptydir-data --timeout 15m',
    '<%= config.bin %> node drain -l pool=blue --ignore-daemonsets --preflight-only',
    '<%= config.bin %> node drain worker-3 --ignore-daemonsets --dry-run server -o json',
  ];
  static override strict = false;
  static override args = nodeArgs;
  static override flags = {
    ...kubeFlags,
    ...nodeSelectFlags,
    ...dryRunFlag,
    ...drainFilterFlags,
    ...withEnv({
      'grace-period': Flags.integer({ default: -1, summary: "Seconds each pod gets to terminate; negative: the pod's own." }),
      timeout: Flags.string({ default: '0s', summary: 'Give up on a node after this long (e.g. 10m); 0s: never.' }),
      'pod-selector': Flags.string({ summary: 'Only evict pods matching this label selector.' }),
      'skip-wait-for-delete-timeout': Flags.integer({ default: 0, min: 0, summary: 'Do not wait for pods deleted more than this many seconds ago; 0: wait for all.' }),
      'disable-eviction': Flags.boolean({ summary: 'DELETE pods instead of evicting them: PodDisruptionBudgets are bypassed.' }),
      'chunk-size': Flags.integer({ default: 500, min: 0, summary: 'Pods per list request; 0: one request.' }),
      concurrency: Flags.integer({ default: 50, min: 1, max: 500, summary: 'Eviction requests in flight at once.' }),
      'preflight-only': Flags.boolean({ summary: 'Run the pre-flight, print the blockers and change nothing.' }),
      'ignore-preflight': Flags.boolean({ summary: 'Drain even when the pre-flight finds blockers.', exclusive: ['preflight-only'] }),
      'leave-cordoned': Flags.boolean({ summary: 'Leave a node cordoned when its drain fails.' }),
      'api-retry-timeout': Flags.string({ default: '30s', summary: 'How long an unreachable or failing API server is waited out before the drain fails.' }),
    }),
  };

  async run(): Promise<DrainReport> {
    const f = this.flags;
    const timeoutMs = f.timeout.trim() === '0' ? 0 : parseDuration(f.timeout, '--timeout');
    const client = await kubeClientFromFlags(f);
    try {
      const api = new NodeApi(client, this.signal);
      const nodes = await resolveNodes(api, this.positional, f.selector);
      const report = await drainNodes(
        api,
        nodes,
        {
          ...filterOptionsFromFlags(f, f['skip-wait-for-delete-timeout']),
          podSelector: f['pod-selector'],
          gracePeriodSeconds: f['grace-period'],
          timeoutMs,
          disableEviction: f['disable-eviction'],
          chunkSize: f['chunk-size'],
          dryRun: f['dry-run'],
          concurrency: f.concurrency,
          preflight: f['preflight-only'] ? 'only' : f['ignore-preflight'] ? 'ignore' : 'run',
          leaveCordoned: f['leave-cordoned'],
          transientWindowMs: parseDuration(f['api-retry-timeout'], '--api-retry-timeout'),
        },
        { signal: this.signal, onEvent: (e) => this.logEvent(e) },
      );
      this.printer.print(report, renderDrainReport);
      if (report.failure) this.logger.error(report.failure.message);
      process.exitCode = exitCodeOf(report);
      return report;
    } finally {
      client.close();
    }
  }

  private logEvent(e: DrainEvent): void {
    switch (e.type) {
      case 'cordon':
      case 'restore':
        this.logger.info(e.message);
        break;
      case 'warning':
        this.logger.warn(e.message);
        break;
      case 'evicting':
        this.logger.info(`evicting pod ${e.pod}`);
        break;
      case 'evicted':
        this.logger.debug(`eviction of pod ${e.pod} accepted`);
        break;
      case 'gone':
        this.logger.info(`pod ${e.pod} evicted`);
        break;
      case 'blocked':
        this.logger.warn(`pod ${e.pod}: ${e.message}`);
        break;
      case 'drained':
        this.logger.info(`node/${e.node} drained (${e.evicted} pods evicted)`);
        break;
    }
  }
}
