/**
 * Evicting a node's pods and waiting for them to go, with kubectl drain's semantics:
 *   - policy/v1 Evictions (or DELETEs with --disable-eviction), a bounded number in flight;
 *   - 404: the pod is already gone; 429: a PodDisruptionBudget (named, with its counts) or the
 *     API server's throttling refused it: retried with backoff until the deadline;
 *   - 500 for a pod under several PDBs, and every other error, stop the drain;
 *   - a pod is gone when no pod with its UID is left on the node (a StatefulSet's replacement
 *     keeps the name, never the UID).
 * Waiting lists the node's pods once per poll instead of reading every pod.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { messageOf } from '../cli/errors.js';
import { KubeApiError } from '../kube/errors.js';
import { budgetFromStatus, isMultiplePdbError, isNamespaceTerminating, isTransientDrainError, type DryRun, type NodeApi } from './api.js';
import { labelSelectorMatches } from './selector.js';
import { podKey, type Pod, type PodDisruptionBudget } from './types.js';

export interface EvictConfig {
  /** Seconds; negative: each pod's own terminationGracePeriodSeconds. */
  gracePeriodSeconds: number;
  disableEviction: boolean;
  /** 'server': every request is a server-side dry run and nothing is waited for. */
  dryRun: Exclude<DryRun, 'client'>;
  /** Eviction requests in flight at once. */
  concurrency: number;
  /** Epoch ms after which the drain of this node gives up; undefined: never. */
  deadline: number | undefined;
  /** Pods deleted longer ago than this count as gone; 0: wait for them. */
  skipWaitForDeleteTimeoutSeconds: number;
  pollIntervalMs: number;
  chunkSize: number;
  /** How long an unreachable or failing API server (connection errors, 5xx) is waited out. */
  transientWindowMs: number;
}

export interface EvictionRecord {
  pod: string;
  uid: string;
  /** Eviction accepted (or DELETE sent). */
  evictedAt: string;
  /** The pod left the node; absent in a server dry run. */
  goneAt?: string;
}

export interface BudgetInfo {
  name: string;
  currentHealthy?: number | undefined;
  desiredHealthy?: number | undefined;
  expectedPods?: number | undefined;
  disruptionsAllowed?: number | undefined;
}

export interface StuckPod {
  pod: string;
  reason: string;
  pdb?: BudgetInfo;
}

export type EvictEvent =
  | { type: 'evicting'; pod: string }
  | { type: 'evicted'; pod: string }
  | { type: 'gone'; pod: string; afterMs: number }
  | { type: 'blocked'; pod: string; message: string; pdb?: BudgetInfo };

export type FailureKind = 'pdb' | 'timeout' | 'error' | 'interrupted';

export interface EvictOutcome {
  evicted: EvictionRecord[];
  /** Pods that were to be evicted and are still on the node, with the reason. */
  stuck: StuckPod[];
  failure?: { kind: FailureKind; message: string; cause?: unknown };
}

class DrainStopped extends Error {}

export async function evictPods(
  api: NodeApi,
  node: string,
  pods: Pod[],
  cfg: EvictConfig,
  opts: { signal?: AbortSignal | undefined; onEvent?: ((e: EvictEvent) => void) | undefined } = {},
): Promise<EvictOutcome> {
  const emit = opts.onEvent ?? (() => undefined);
  if (pods.length === 0) return { evicted: [], stuck: [], ...(opts.signal?.aborted ? { failure: { kind: 'interrupted' as const, message: 'Interrupted.' } } : {}) };
  const stop = new AbortController();
  const onOuterAbort = (): void => fail('interrupted', 'Interrupted.');
  opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
  const limit = pLimit(cfg.concurrency);
  const records = new Map<string, EvictionRecord>();
  const waiting = new Map<string, { pod: Pod; since: number }>();
  const blockedBy = new Map<string, StuckPod>();
  const pdbCache = new Map<string, { at: number; pdb: PodDisruptionBudget | undefined }>();
  let failure: EvictOutcome['failure'];
  if (opts.signal?.aborted) onOuterAbort();

  function fail(kind: FailureKind, message: string, cause?: unknown): void {
    if (failure) return;
    failure = { kind, message, ...(cause === undefined ? {} : { cause }) };
    stop.abort(new DrainStopped(message));
  }
  const pastDeadline = (): boolean => cfg.deadline !== undefined && Date.now() > cfg.deadline;
  const pause = async (ms: number): Promise<void> => {
    await sleep(ms, undefined, { signal: stop.signal }).catch(() => undefined);
  };

  async function evictOne(pod: Pod): Promise<void> {
    const key = podKey(pod);
    let attempt = 0;
    let lastReported = 0;
    let transientSince: number | undefined;
    emit({ type: 'evicting', pod: key });
    for (;;) {
      if (stop.signal.aborted) return;
      try {
        const call = cfg.disableEviction ? api.deletePod.bind(api) : api.evict.bind(api);
        // A request still queued when the drain stops is never sent.
        const sent = await limit(async () => {
          if (stop.signal.aborted) return false;
          await call(pod, { gracePeriodSeconds: cfg.gracePeriodSeconds, dryRun: cfg.dryRun });
          return true;
        });
        if (!sent) return;
        break;
      } catch (err) {
        if (stop.signal.aborted) return;
        if (err instanceof KubeApiError && (err.status === 404 || err.status === 409)) {
          // Gone already, or (409 on the UID precondition) replaced by a pod of the same name.
          const now = new Date().toISOString();
          records.set(key, { pod: key, uid: pod.metadata.uid ?? '', evictedAt: now, goneAt: now });
          emit({ type: 'gone', pod: key, afterMs: 0 });
          return;
        }
        if (err instanceof KubeApiError && err.status === 429) {
          transientSince = undefined;
          const stuck = await describeRefusal(api, pod, err, pdbCache);
          blockedBy.set(key, stuck);
          if (cfg.dryRun === 'server') return; // a dry run reports the refusal instead of waiting
          if (pastDeadline()) return fail(stuck.pdb ? 'pdb' : 'timeout', `Timed out evicting pod ${key}: ${stuck.reason}.`);
          if (attempt === 0 || Date.now() - lastReported > 30_000) {
            lastReported = Date.now();
            emit({ type: 'blocked', pod: key, message: `${stuck.reason}; retrying${cfg.deadline ? '' : ' (no --timeout: until interrupted)'}`, ...(stuck.pdb ? { pdb: stuck.pdb } : {}) });
          }
          await pause(Math.min(5000, 500 * 1.5 ** attempt++));
          continue;
        }
        if (isNamespaceTerminating(err)) {
          // Eviction is refused in a namespace being deleted: the namespace controller deletes the
          // pod; once it is being deleted (or gone, or replaced), wait for it like any evicted pod.
          transientSince = undefined;
          const live = await api.getPod(pod.metadata.namespace ?? '', pod.metadata.name).catch(() => pod);
          if (!live || live.metadata.uid !== pod.metadata.uid || live.metadata.deletionTimestamp) break;
          if (pastDeadline()) return fail('timeout', `Timed out evicting pod ${key}: its namespace is being deleted.`);
          await pause(1000);
          continue;
        }
        if (isTransientDrainError(err)) {
          if (transientSince === undefined) emit({ type: 'blocked', pod: key, message: `${messageOf(err)}; retrying for up to ${Math.round(cfg.transientWindowMs / 1000)}s` });
          transientSince ??= Date.now();
          if (Date.now() - transientSince > cfg.transientWindowMs || pastDeadline()) {
            return fail('error', `Cannot ${cfg.disableEviction ? 'delete' : 'evict'} pod ${key}: ${messageOf(err)} (for ${Math.round((Date.now() - transientSince) / 1000)}s)`, err);
          }
          await pause(Math.min(2000, 250 * 2 ** attempt++));
          continue;
        }
        if (isMultiplePdbError(err)) {
          const pdbs = await coveringPdbs(api, pod).catch(() => [] as string[]);
          return fail('error', `Cannot evict pod ${key}: it is covered by more than one PodDisruptionBudget${pdbs.length ? ` (${pdbs.join(', ')})` : ''}, which the eviction API refuses.`, err);
        }
        return fail('error', `Cannot ${cfg.disableEviction ? 'delete' : 'evict'} pod ${key}: ${messageOf(err)}`, err);
      }
    }
    blockedBy.delete(key);
    records.set(key, { pod: key, uid: pod.metadata.uid ?? '', evictedAt: new Date().toISOString() });
    emit({ type: 'evicted', pod: key });
    if (cfg.dryRun !== 'server') waiting.set(pod.metadata.uid ?? key, { pod, since: Date.now() });
  }

  let evictionsDone = false;
  let listFailingSince: number | undefined;
  async function waitGone(): Promise<void> {
    while (!stop.signal.aborted && (!evictionsDone || waiting.size > 0)) {
      await pause(cfg.pollIntervalMs);
      if (stop.signal.aborted || waiting.size === 0) continue;
      let present: Map<string, Pod>;
      try {
        present = new Map((await api.podsOnNode(node, { chunkSize: cfg.chunkSize })).map((p) => [p.metadata.uid ?? podKey(p), p]));
        listFailingSince = undefined;
      } catch (err) {
        listFailingSince ??= Date.now();
        if (isTransientDrainError(err) && Date.now() - listFailingSince <= cfg.transientWindowMs) continue;
        return fail('error', `Cannot list the pods on node ${node}: ${messageOf(err)}`, err);
      }
      const now = Date.now();
      for (const [uid, w] of waiting) {
        const live = present.get(uid);
        const deletedFor = live?.metadata.deletionTimestamp ? (now - Date.parse(live.metadata.deletionTimestamp)) / 1000 : 0;
        if (live && !(cfg.skipWaitForDeleteTimeoutSeconds > 0 && deletedFor > cfg.skipWaitForDeleteTimeoutSeconds)) continue;
        waiting.delete(uid);
        const key = podKey(w.pod);
        const rec = records.get(key);
        if (rec) rec.goneAt = new Date(now).toISOString();
        emit({ type: 'gone', pod: key, afterMs: now - w.since });
      }
      if (waiting.size > 0 && pastDeadline()) {
        return fail('timeout', `Timed out waiting for ${waiting.size} evicted pod(s) to terminate: ${[...waiting.values()].map((w) => podKey(w.pod)).slice(0, 5).join(', ')}.`);
      }
    }
  }

  const waiter = waitGone();
  try {
    await Promise.all(pods.map((p) => evictOne(p).catch((err: unknown) => fail('error', `Cannot evict pod ${podKey(p)}: ${messageOf(err)}`, err))));
    evictionsDone = true;
    await waiter;
  } finally {
    evictionsDone = true;
    opts.signal?.removeEventListener('abort', onOuterAbort);
    if (!stop.signal.aborted) stop.abort(new DrainStopped('done'));
    await waiter.catch(() => undefined);
  }

  const stuck: StuckPod[] = [];
  for (const p of pods) {
    const key = podKey(p);
    const rec = records.get(key);
    if (rec?.goneAt || (rec && cfg.dryRun === 'server')) continue;
    const blocked = blockedBy.get(key);
    if (blocked) stuck.push(blocked);
    else if (rec) stuck.push({ pod: key, reason: 'eviction accepted; still terminating' });
    else stuck.push({ pod: key, reason: failure ? 'not evicted: the drain stopped first' : 'not evicted' });
  }
  return { evicted: [...records.values()], stuck, ...(failure ? { failure } : {}) };
}

/** The sentence for a 429: the PDB's name and counts from the answer, or from reading the PDB. */
async function describeRefusal(api: NodeApi, pod: Pod, err: KubeApiError, cache: Map<string, { at: number; pdb: PodDisruptionBudget | undefined }>): Promise<StuckPod> {
  const key = podKey(pod);
  const ns = pod.metadata.namespace ?? '';
  const budget = budgetFromStatus(err.body);
  if (!budget) return { pod: key, reason: `the API server is throttling requests (429: ${err.message})` };
  const name = budget.name ?? (await coveringPdbs(api, pod).catch(() => []))[0]?.split('/')[1];
  if (!name) return { pod: key, reason: `a PodDisruptionBudget allows no disruptions (${err.message})` };
  // Many pods retrying against one budget read it once every few seconds, not once per attempt.
  const cached = cache.get(`${ns}/${name}`);
  let pdb = cached && Date.now() - cached.at < 5000 ? cached.pdb : undefined;
  if (!cached || Date.now() - cached.at >= 5000) {
    pdb = await api.getPdb(ns, name).catch(() => undefined);
    cache.set(`${ns}/${name}`, { at: Date.now(), pdb });
  }
  const info: BudgetInfo = {
    name: `${ns}/${name}`,
    currentHealthy: pdb?.status?.currentHealthy ?? budget.current,
    desiredHealthy: pdb?.status?.desiredHealthy ?? budget.desired,
    expectedPods: pdb?.status?.expectedPods,
    disruptionsAllowed: pdb?.status?.disruptionsAllowed,
  };
  const counts = [`currentHealthy ${info.currentHealthy ?? '?'}`, `desiredHealthy ${info.desiredHealthy ?? '?'}`, ...(info.expectedPods !== undefined ? [`expectedPods ${info.expectedPods}`] : [])];
  return { pod: key, reason: `PodDisruptionBudget ${info.name} allows no disruptions (${counts.join(', ')})`, pdb: info };
}

/** "namespace/name" of every PDB in the pod's namespace whose selector matches it. */
async function coveringPdbs(api: NodeApi, pod: Pod): Promise<string[]> {
  const ns = pod.metadata.namespace ?? '';
  return (await api.listPdbs(ns)).filter((p) => labelSelectorMatches(p.spec.selector, pod.metadata.labels ?? {})).map((p) => `${ns}/${p.metadata.name}`);
}
