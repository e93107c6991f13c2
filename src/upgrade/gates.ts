/**
 * Waiting and checking after a node's action:
 *   waitAtTarget   the node Ready (no not-ready/unreachable taint) and its kubelet at the target;
 *   health gates   after the uncordon: the node still Ready, its DaemonSet pods Ready, and every
 *                  PodDisruptionBudget over the batch's pods that allowed a disruption before
 *                  the batch allowing one again (its pods are back): the next batch's drain must not start on a thin
 *                  margin. A gate command, if given, must exit 0.
 * Every wait polls until its deadline; an API error in between is waited out (the control plane
 * itself may be what was just upgraded).
 */
import { messageOf } from '../cli/errors.js';
import type { NodeApi } from '../drain/api.js';
import { labelSelectorMatches } from '../drain/selector.js';
import { isPodReady, type Node, type PodDisruptionBudget } from '../drain/types.js';
import { isNodeReady } from './plan.js';
import { compareVersions, parseKubeVersion } from './skew.js';
import type { SemVer } from 'semver';

export class GateError extends Error {}

export interface WaitOptions {
  timeoutMs: number;
  pollIntervalMs?: number;
  signal?: AbortSignal | undefined;
  onWaiting?: ((why: string) => void) | undefined;
}

const NOT_READY_TAINTS = new Set(['node.kubernetes.io/not-ready', 'node.kubernetes.io/unreachable']);

/** Why the node is not yet back at the target, or undefined when it is. */
export function notAtTarget(node: Node, target: SemVer): string | undefined {
  const reported = node.status?.nodeInfo?.kubeletVersion;
  const v = parseKubeVersion(reported);
  if (!v || compareVersions(v, target) !== 0) return `its kubelet reports ${reported || 'no version'}, not ${target.raw.startsWith('v') ? target.raw : `v${target.version}`}`;
  if (!isNodeReady(node)) return 'it is not Ready';
  const taint = (node.spec.taints ?? []).find((t) => NOT_READY_TAINTS.has(t.key));
  if (taint) return `it still has the ${taint.key} taint`;
  return undefined;
}

/** Polls `check` until it returns undefined (done) or the deadline passes; the last reason goes into the error. */
export async function pollUntil(what: string, check: () => Promise<string | undefined>, opts: WaitOptions): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  const interval = opts.pollIntervalMs ?? 1000;
  let last = 'not checked yet';
  let reported = '';
  for (;;) {
    if (opts.signal?.aborted) throw new GateError(`Interrupted while waiting for ${what}.`);
    try {
      const why = await check();
      if (why === undefined) return;
      last = why;
    } catch (err) {
      if (opts.signal?.aborted) throw new GateError(`Interrupted while waiting for ${what}.`);
      last = `the API server did not answer (${messageOf(err)})`;
    }
    if (last !== reported) opts.onWaiting?.(last);
    reported = last;
    if (Date.now() >= deadline) throw new GateError(`Timed out after ${Math.round(opts.timeoutMs / 1000)}s waiting for ${what}: ${last}.`);
    await sleep(Math.min(interval, Math.max(0, deadline - Date.now())), opts.signal);
  }
}

export function waitAtTarget(api: NodeApi, name: string, target: SemVer, opts: WaitOptions): Promise<void> {
  return pollUntil(`node ${name} to be Ready at ${target.raw}`, async () => notAtTarget(await api.getNode(name), target), opts);
}

/**
 * The PDBs over pods on these nodes that allow a disruption now: the ones the batch's drain will
 * spend, and that must allow one again before the next batch.
 */
export async function healthyBudgets(api: NodeApi, nodes: string[]): Promise<string[]> {
  const [pdbs, ...podLists] = await Promise.all([api.listPdbs(), ...nodes.map((n) => api.podsOnNode(n))]);
  const pods = podLists.flat();
  return pdbs
    .filter((p) => p.spec.selector && pods.some((pod) => pod.metadata.namespace === p.metadata.namespace && labelSelectorMatches(p.spec.selector!, pod.metadata.labels)))
    .filter((p) => budgetHealthy(p) === undefined)
    .map((p) => `${p.metadata.namespace ?? ''}/${p.metadata.name}`);
}

/** Why a PDB is not healthy with a disruption allowed, or undefined when it is. */
export function budgetHealthy(p: PodDisruptionBudget): string | undefined {
  const s = p.status;
  if (!s) return 'it has no status yet';
  if (s.observedGeneration !== undefined && p.metadata.generation !== undefined && s.observedGeneration < p.metadata.generation) return 'its status is not up to date';
  if ((s.currentHealthy ?? 0) < (s.desiredHealthy ?? 0)) return `${s.currentHealthy ?? 0} healthy pods, ${s.desiredHealthy ?? 0} needed`;
  if ((s.disruptionsAllowed ?? 0) < 1) return `no disruption allowed (${s.currentHealthy ?? 0} healthy of ${s.expectedPods ?? 0})`;
  return undefined;
}

export interface GateOptions extends WaitOptions {
  /** PDBs (namespace/name) that allowed a disruption before the batch. */
  budgets: string[];
}

/** The node Ready and its DaemonSet pods Ready. */
export function nodeGates(api: NodeApi, name: string, opts: WaitOptions): Promise<void> {
  return pollUntil(
    `node ${name} and its DaemonSet pods to be Ready`,
    async () => {
      const node = await api.getNode(name);
      if (!isNodeReady(node)) return `node ${name} is not Ready`;
      const pods = await api.podsOnNode(name);
      const notReady = pods.filter((p) => p.metadata.ownerReferences?.some((r) => r.controller && r.kind === 'DaemonSet') && !p.metadata.deletionTimestamp && !isPodReady(p));
      if (notReady.length > 0) return `DaemonSet pod${notReady.length > 1 ? 's' : ''} not Ready: ${notReady.map((p) => `${p.metadata.namespace}/${p.metadata.name}`).join(', ')}`;
      return undefined;
    },
    opts,
  );
}

/** Every budget in the list allowing a disruption again (one that was deleted meanwhile no longer counts). */
export function budgetGates(api: NodeApi, opts: GateOptions): Promise<void> {
  return pollUntil(
    'the PodDisruptionBudgets to be healthy again',
    async () => {
      if (opts.budgets.length === 0) return undefined;
      const wanted = new Set(opts.budgets);
      const bad: string[] = [];
      for (const p of await api.listPdbs()) {
        const key = `${p.metadata.namespace ?? ''}/${p.metadata.name}`;
        if (!wanted.has(key)) continue;
        const why = budgetHealthy(p);
        if (why) bad.push(`${key}: ${why}`);
      }
      return bad.length > 0 ? `PodDisruptionBudget ${bad.join('; ')}` : undefined;
    },
    opts,
  );
}

/** Resolves after ms, or at once when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
