/**
 * The API calls cordon, drain and the pre-flight make, over the resource-agnostic KubeClient.
 * Errors stay KubeApiError (status, reason, causes) so callers can tell a PDB's 429 from the
 * rest; a missing node becomes a NotFoundError (exit 4).
 */
import { NotFoundError } from '../cli/errors.js';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError, type KubeStatus } from '../kube/errors.js';
import { listAll } from '../kube/list.js';
import type { ClusterState, Node, PersistentVolume, PersistentVolumeClaim, Pod, PodDisruptionBudget } from './types.js';

export type DryRun = 'none' | 'client' | 'server';

export class NodeApi {
  constructor(
    readonly client: KubeClient,
    private readonly signal?: AbortSignal,
  ) {}

  async getNode(name: string): Promise<Node> {
    try {
      return await this.client.request<Node>(`/api/v1/nodes/${encodeURIComponent(name)}`, { signal: this.signal });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) throw new NotFoundError(`Node ${name} not found.`, { hint: 'List nodes with `kubectl get nodes`.' });
      throw err;
    }
  }

  listNodes(labelSelector?: string): Promise<Node[]> {
    return listAll<Node>(this.client, '/api/v1/nodes', { labelSelector, signal: this.signal });
  }

  /** Sets spec.unschedulable (a strategic merge patch, as kubectl cordon sends). */
  setUnschedulable(name: string, unschedulable: boolean, dryRun: DryRun = 'none'): Promise<Node> {
    return this.client.request<Node>(`/api/v1/nodes/${encodeURIComponent(name)}`, {
      method: 'PATCH',
      query: { dryRun: dryRun === 'server' ? 'All' : undefined, fieldManager: 'lifeboat' },
      body: { spec: { unschedulable } },
      contentType: 'application/strategic-merge-patch+json',
      signal: this.signal,
    });
  }

  /** The pods bound to a node (kubectl drain's list: by spec.nodeName, in chunks). */
  podsOnNode(node: string, opts: { podSelector?: string | undefined; chunkSize?: number | undefined } = {}): Promise<Pod[]> {
    return listAll<Pod>(this.client, '/api/v1/pods', {
      fieldSelector: `spec.nodeName=${node}`,
      labelSelector: opts.podSelector,
      limit: opts.chunkSize,
      signal: this.signal,
    });
  }

  /**
   * POSTs a policy/v1 Eviction for exactly this pod (a UID precondition: a replacement with the same
   * name is never evicted by mistake). Throws KubeApiError: 404 gone, 409 replaced, 429 budget (or
   * throttled), 500 several PDBs.
   */
  async evict(pod: Pod, opts: { gracePeriodSeconds?: number | undefined; dryRun?: DryRun }): Promise<void> {
    const { namespace = '', name, uid } = pod.metadata;
    const deleteOptions = { ...deleteOptionsFor(opts), ...(uid ? { preconditions: { uid } } : {}) };
    await this.client.request(`/api/v1/namespaces/${namespace}/pods/${encodeURIComponent(name)}/eviction`, {
      method: 'POST',
      body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace }, ...(Object.keys(deleteOptions).length > 0 ? { deleteOptions } : {}) },
      signal: this.signal,
    });
  }

  /** DELETE (--disable-eviction): no PDB is consulted. The UID precondition never deletes a replacement. */
  async deletePod(pod: Pod, opts: { gracePeriodSeconds?: number | undefined; dryRun?: DryRun }): Promise<void> {
    const { namespace = '', name, uid } = pod.metadata;
    await this.client.request(`/api/v1/namespaces/${namespace}/pods/${encodeURIComponent(name)}`, {
      method: 'DELETE',
      body: { apiVersion: 'v1', kind: 'DeleteOptions', ...deleteOptionsFor(opts), ...(uid ? { preconditions: { uid } } : {}) },
      signal: this.signal,
    });
  }

  async getPod(namespace: string, name: string): Promise<Pod | undefined> {
    try {
      return await this.client.request<Pod>(`/api/v1/namespaces/${namespace}/pods/${encodeURIComponent(name)}`, { signal: this.signal });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async getPdb(namespace: string, name: string): Promise<PodDisruptionBudget | undefined> {
    try {
      return await this.client.request<PodDisruptionBudget>(`/apis/policy/v1/namespaces/${namespace}/poddisruptionbudgets/${encodeURIComponent(name)}`, { signal: this.signal });
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  listPdbs(namespace?: string): Promise<PodDisruptionBudget[]> {
    return listAll<PodDisruptionBudget>(this.client, namespace ? `/apis/policy/v1/namespaces/${namespace}/poddisruptionbudgets` : '/apis/policy/v1/poddisruptionbudgets', {
      signal: this.signal,
    });
  }

  async daemonSetExists(namespace: string, name: string): Promise<boolean> {
    try {
      await this.client.request(`/apis/apps/v1/namespaces/${namespace}/daemonsets/${encodeURIComponent(name)}`, { signal: this.signal });
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return false;
      throw err;
    }
  }

  /** Everything the pre-flight reads, listed once, in parallel. */
  async clusterState(chunkSize?: number): Promise<ClusterState> {
    const opts = { limit: chunkSize, signal: this.signal };
    const [nodes, pods, pdbs, pvcs, pvs, daemonSets, namespaces] = await Promise.all([
      listAll<Node>(this.client, '/api/v1/nodes', opts),
      listAll<Pod>(this.client, '/api/v1/pods', opts),
      listAll<PodDisruptionBudget>(this.client, '/apis/policy/v1/poddisruptionbudgets', opts),
      listAll<PersistentVolumeClaim>(this.client, '/api/v1/persistentvolumeclaims', opts),
      listAll<PersistentVolume>(this.client, '/api/v1/persistentvolumes', opts),
      listAll<{ metadata: { name: string; namespace?: string } }>(this.client, '/apis/apps/v1/daemonsets', opts),
      listAll<{ metadata: { name: string; labels?: Record<string, string> } }>(this.client, '/api/v1/namespaces', opts),
    ]);
    return {
      nodes,
      pods,
      pdbs,
      pvcs,
      pvs,
      daemonSets: new Set(daemonSets.map((d) => `${d.metadata.namespace ?? ''}/${d.metadata.name}`)),
      namespaceLabels: new Map(namespaces.map((n) => [n.metadata.name, n.metadata.labels ?? {}])),
    };
  }
}

function deleteOptionsFor(opts: { gracePeriodSeconds?: number | undefined; dryRun?: DryRun }): Record<string, unknown> | undefined {
  const o: Record<string, unknown> = {};
  if (opts.gracePeriodSeconds !== undefined && opts.gracePeriodSeconds >= 0) o.gracePeriodSeconds = opts.gracePeriodSeconds;
  if (opts.dryRun === 'server') o.dryRun = ['All'];
  return Object.keys(o).length > 0 ? o : undefined;
}

/** The PDB a 429 names: "The disruption budget web needs 3 healthy pods and has 2 currently". */
export function budgetFromStatus(status: KubeStatus | undefined): { name?: string; desired?: number; current?: number } | undefined {
  const cause = status?.details?.causes?.find((c) => c.reason === 'DisruptionBudget');
  if (!cause) return undefined;
  const m = /disruption budget (\S+) needs (\d+) healthy pods and has (\d+) currently/.exec(cause.message ?? '');
  if (!m) return {};
  return { name: m[1] as string, desired: Number(m[2]), current: Number(m[3]) };
}

/** The eviction API's answer for a pod covered by more than one PDB. */
export function isMultiplePdbError(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 500 && /more than one PodDisruptionBudget/i.test(err.message);
}

/** Eviction in a namespace being deleted: 403 with the NamespaceTerminating cause. */
export function isNamespaceTerminating(err: unknown): boolean {
  return err instanceof KubeApiError && err.status === 403 && (err.body?.details?.causes ?? []).some((c) => c.reason === 'NamespaceTerminating');
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/**
 * An answer worth waiting out during a drain: the API server unreachable or restarting (a
 * control-plane upgrade does that), or a 5xx other than the several-PDBs refusal.
 */
export function isTransientDrainError(err: unknown): boolean {
  if (err instanceof KubeApiError) return err.status >= 500 && !isMultiplePdbError(err);
  for (let e: unknown = err, depth = 0; e && depth < 3; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code && CONNECTION_CODES.has(code)) return true;
  }
  return false;
}
