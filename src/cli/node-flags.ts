import { Args, Flags } from '@oclif/core';
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
