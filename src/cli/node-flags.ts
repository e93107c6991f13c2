import { Args, Flags } from '@oclif/core';
import type { FilterOptions } from '../drain/filters.js';
import { withEnv } from './env.js';

/** Nodes by name (several) or by label selector, as kubectl cordon/drain take them. */
export const nodeArgs = { node: Args.string({ required: false, description: 'Node names (or use --selector).' }) };

export const nodeSelectFlags = withEnv({
  selector: Flags.string({ char: 'l', summary: 'Act on the nodes matching this label selector instead of named ones.' }),
});

export const dryRunFlag = withEnv({
  'dry-run': Flags.option({
    options: ['none', 'client', 'server'] as const,
    default: 'none' as const,
    summary: 'client: only print what would happen; server: send every change as a server-side dry run.',
  })(),
});

/** kubectl drain's pod filters: what a drain, and every pre-flight that predicts one, may evict. */
export const drainFilterFlags = withEnv({
  'ignore-daemonsets': Flags.boolean({ summary: 'Leave DaemonSet-managed pods where they are (they tolerate cordons).' }),
  'delete-emptydir-data': Flags.boolean({ summary: 'Evict pods with emptyDir volumes; their data is deleted.' }),
  force: Flags.boolean({ summary: 'Also delete pods no controller manages (they are gone for good).' }),
});

export function filterOptionsFromFlags(
  f: { 'ignore-daemonsets': boolean; 'delete-emptydir-data': boolean; force: boolean },
  skipWaitForDeleteTimeoutSeconds = 0,
): FilterOptions {
  return { ignoreDaemonSets: f['ignore-daemonsets'], deleteEmptyDirData: f['delete-emptydir-data'], force: f.force, skipWaitForDeleteTimeoutSeconds };
}
