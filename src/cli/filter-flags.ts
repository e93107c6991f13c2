import { Flags } from '@oclif/core';
import { compileFilter, type CompiledFilter } from '../snapshot/resources/filters.js';
import { withEnv } from './env.js';

const list = (summary: string) => Flags.string({ multiple: true, delimiter: ',', summary, helpGroup: 'FILTERS' });

/** Which namespaces and resources a dump or a restore covers; the same flags for both. */
export const resourceFilterFlags = withEnv({
  'include-namespaces': list('Only these namespaces (globs, comma-separated).'),
  'exclude-namespaces': list('Leave out these namespaces (globs).'),
  'include-resources': list('Only these resources, as resource.group (globs; core resources by plain name).'),
  'exclude-resources': list('Leave out these resources (globs).'),
  'include-cluster-resources': Flags.option({
    options: ['auto', 'true', 'false'] as const,
    default: 'auto' as const,
    summary: 'Cluster-scoped resources: auto = only when all namespaces are included.',
    helpGroup: 'FILTERS',
  })(),
});

export function filterFromFlags(f: {
  'include-namespaces'?: string[] | undefined;
  'exclude-namespaces'?: string[] | undefined;
  'include-resources'?: string[] | undefined;
  'exclude-resources'?: string[] | undefined;
  'include-cluster-resources': 'auto' | 'true' | 'false';
}): CompiledFilter {
  return compileFilter({
    includeNamespaces: f['include-namespaces'] ?? [],
    excludeNamespaces: f['exclude-namespaces'] ?? [],
    includeResources: f['include-resources'] ?? [],
    excludeResources: f['exclude-resources'] ?? [],
    includeClusterResources: f['include-cluster-resources'],
  });
}
