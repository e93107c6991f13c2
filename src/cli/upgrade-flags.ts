import { Flags } from '@oclif/core';
import type { KubeClient } from '../kube/client.js';
import { CommandAction, ExternalAction, splitCommand, type ActionSpec, type NodeAction } from '../upgrade/actions.js';
import { JobAction } from '../upgrade/job.js';
import { defaultJournalFile } from '../upgrade/journal.js';
import { parseDuration } from './duration.js';
import { withEnv } from './env.js';
import { UsageError } from './errors.js';

/** Where a run keeps its lock and journal: every upgrade command takes these. */
export const upgradeStateFlags = withEnv({
  namespace: Flags.string({ default: 'lifeboat-system', summary: 'Namespace of the run lock (a Lease) and the run journal (a ConfigMap); created if missing.' }),
  'journal-file': Flags.string({ summary: 'Local copy of the run journal (default: ~/.local/state/lifeboat/upgrade-<api-server>.json).' }),
});

/** What upgrades a node: exactly one of --action, --job-image, --wait-external. */
export const actionFlags = withEnv({
  action: Flags.string({
    summary: "Command run locally for each node, {node} and {version} substituted inside its arguments (no shell), e.g. 'ssh {node} sudo upgrade-node {version}'.",
    helpGroup: 'ACTION',
  }),
  shell: Flags.boolean({ summary: 'Run --action with sh -c ({node} and {version} are shell-quoted).', helpGroup: 'ACTION', dependsOn: ['action'] }),
  'job-image': Flags.string({ summary: 'Upgrade each node with a Job of this image pinned to it (one attempt; its success is the action).', helpGroup: 'ACTION' }),
  'job-command': Flags.string({ summary: "The Job container's command, split like --action ({node}, {version} substituted). Default: the image's entrypoint.", helpGroup: 'ACTION', dependsOn: ['job-image'] }),
  'job-privileged': Flags.boolean({ summary: 'Run the Job container privileged.', helpGroup: 'ACTION', dependsOn: ['job-image'] }),
  'job-host-pid': Flags.boolean({ summary: "Run the Job's pod in the host's PID namespace.", helpGroup: 'ACTION', dependsOn: ['job-image'] }),
  'wait-external': Flags.boolean({ summary: 'Upgrade nothing: wait for something else (image rollout, node replacement) to bring each node to the target.', helpGroup: 'ACTION' }),
  'action-timeout': Flags.string({ default: '30m', summary: 'Fail a node whose action takes longer.', helpGroup: 'ACTION' }),
});

export interface ActionFlagValues {
  action?: string | undefined;
  shell: boolean;
  'job-image'?: string | undefined;
  'job-command'?: string | undefined;
  'job-privileged': boolean;
  'job-host-pid': boolean;
  'wait-external': boolean;
  'action-timeout': string;
}

/** The action the flags describe, or undefined when none was given. */
export function actionSpecFromFlags(f: ActionFlagValues, namespace: string): ActionSpec | undefined {
  const given = [f.action !== undefined, f['job-image'] !== undefined, f['wait-external']].filter(Boolean).length;
  if (given > 1) throw new UsageError('Give one of --action, --job-image or --wait-external.');
  if (given === 0) return undefined;
  const timeoutMs = parseDuration(f['action-timeout'], '--action-timeout');
  if (f.action !== undefined) {
    if (!f.action.trim()) throw new UsageError('--action is empty.');
    return f.shell ? { kind: 'shell', script: f.action, timeoutMs } : { kind: 'command', argv: splitCommand(f.action), timeoutMs };
  }
  if (f['job-image'] !== undefined) {
    if (!f['job-image'].trim()) throw new UsageError('--job-image is empty.');
    return {
      kind: 'job',
      image: f['job-image'],
      command: f['job-command'] ? splitCommand(f['job-command'], '--job-command') : undefined,
      namespace,
      privileged: f['job-privileged'],
      hostPID: f['job-host-pid'],
      timeoutMs,
    };
  }
  return { kind: 'external' };
}

/** The action object, checked: a command that cannot be executed is a usage error before anything changes. */
export async function actionFor(spec: ActionSpec, client: KubeClient, runId: string): Promise<NodeAction> {
  switch (spec.kind) {
    case 'command':
    case 'shell': {
      const a = new CommandAction(spec);
      await a.check();
      return a;
    }
    case 'job':
      return new JobAction(spec, client, { runId });
    case 'external':
      return new ExternalAction();
  }
}

export function journalFileFrom(f: { 'journal-file'?: string | undefined }, server: string): string {
  return f['journal-file'] ?? defaultJournalFile(server);
}
