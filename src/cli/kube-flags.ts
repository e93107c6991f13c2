import { Flags } from '@oclif/core';
import type { KubeClient } from '../kube/client.js';
import { withEnv } from './env.js';

/** Which cluster: kubectl's --kubeconfig and --context (KUBECONFIG works as with kubectl). */
export const kubeFlags = withEnv({
  kubeconfig: Flags.string({ summary: 'Kubeconfig file (default: KUBECONFIG, ~/.kube/config, or in-cluster).', helpGroup: 'KUBERNETES' }),
  context: Flags.string({ summary: 'Kubeconfig context to use.', helpGroup: 'KUBERNETES' }),
});

/** The client is imported on first use: the Kubernetes library costs ~0.6 s and ~125 MB to load. */
export async function kubeClientFromFlags(flags: { kubeconfig?: string | undefined; context?: string | undefined }): Promise<KubeClient> {
  const { KubeClient } = await import('../kube/client.js');
  return KubeClient.load({ kubeconfig: flags.kubeconfig, context: flags.context });
}
