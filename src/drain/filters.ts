/**
 * Which pods a drain evicts, skips or refuses: kubectl drain's filter pipeline, in kubectl's
 * order, as data in and data out.
 *
 *   1. already deleting   skipped when deleted longer ago than --skip-wait-for-delete-timeout
 *   2. DaemonSet          refused, or skipped with --ignore-daemonsets (orphans evicted with --force)
 *   3. mirror (static)    skipped: the kubelet owns them
 *   4. emptyDir           refused, or evicted with --delete-emptydir-data (the data is lost)
 *   5. unreplicated       refused, or deleted for good with --force
 *
 * Finished pods (Succeeded/Failed) pass every filter: evicting them loses nothing.
 */
import { controllerOf, isPodFinished, podKey, type Pod } from './types.js';

export interface FilterOptions {
  ignoreDaemonSets: boolean;
  deleteEmptyDirData: boolean;
  force: boolean;
  /** Pods deleted longer ago than this are skipped; 0 never skips. */
  skipWaitForDeleteTimeoutSeconds: number;
}

export const DEFAULT_FILTER_OPTIONS: FilterOptions = {
  ignoreDaemonSets: false,
  deleteEmptyDirData: false,
  force: false,
  skipWaitForDeleteTimeoutSeconds: 0,
};

/** Why a pod is refused: the flag that would let the drain go on. */
export type RefusalKind = 'daemonset' | 'emptydir' | 'unmanaged';

export interface FilterContext {
  /** Does the DaemonSet "namespace/name" exist? */
  daemonSetExists(key: string): boolean;
  now: Date;
}

export interface PodVerdictEvict {
  action: 'evict';
  pod: Pod;
  /** Something the operator should know: data lost, pod not recreated. */
  warning?: string;
}
export interface PodVerdictSkip {
  action: 'skip';
  pod: Pod;
  reason: string;
}
export interface PodVerdictRefuse {
  action: 'refuse';
  pod: Pod;
  kind: RefusalKind;
  reason: string;
  fix: string;
}
export type PodVerdict = PodVerdictEvict | PodVerdictSkip | PodVerdictRefuse;

export interface FilterResult {
  evict: PodVerdictEvict[];
  skip: PodVerdictSkip[];
  refuse: PodVerdictRefuse[];
}

type Filter = (pod: Pod, o: FilterOptions, ctx: FilterContext) => PodVerdict | undefined;

const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

const alreadyDeleting: Filter = (pod, o, ctx) => {
  const ts = pod.metadata.deletionTimestamp;
  if (!ts || o.skipWaitForDeleteTimeoutSeconds <= 0) return undefined;
  const ageSeconds = (ctx.now.getTime() - Date.parse(ts)) / 1000;
  return ageSeconds > o.skipWaitForDeleteTimeoutSeconds
    ? { action: 'skip', pod, reason: `being deleted for ${Math.floor(ageSeconds)}s (over --skip-wait-for-delete-timeout)` }
    : undefined;
};

const daemonSet: Filter = (pod, o, ctx) => {
  const ref = controllerOf(pod.metadata);
  if (ref?.kind !== 'DaemonSet' || isPodFinished(pod)) return undefined;
  const key = `${pod.metadata.namespace ?? ''}/${ref.name}`;
  if (!ctx.daemonSetExists(key)) {
    return o.force
      ? { action: 'evict', pod, warning: `its DaemonSet ${key} is gone; deleted for good (--force)` }
      : { action: 'refuse', pod, kind: 'unmanaged', reason: `its DaemonSet ${key} no longer exists`, fix: 'delete the pod, or drain with --force' };
  }
  return o.ignoreDaemonSets
    ? { action: 'skip', pod, reason: `DaemonSet-managed (${ref.name}); ignored (--ignore-daemonsets)` }
    : { action: 'refuse', pod, kind: 'daemonset', reason: `managed by DaemonSet ${ref.name}`, fix: 'drain with --ignore-daemonsets' };
};

const mirror: Filter = (pod) =>
  pod.metadata.annotations?.[MIRROR_ANNOTATION] !== undefined ? { action: 'skip', pod, reason: 'static (mirror) pod: the kubelet owns it' } : undefined;

const emptyDir: Filter = (pod, o) => {
  if (isPodFinished(pod) || !(pod.spec.volumes ?? []).some((v) => v.emptyDir !== undefined)) return undefined;
  return o.deleteEmptyDirData
    ? { action: 'evict', pod, warning: 'its emptyDir data is deleted (--delete-emptydir-data)' }
    : { action: 'refuse', pod, kind: 'emptydir', reason: 'uses emptyDir storage (its data is lost when evicted)', fix: 'drain with --delete-emptydir-data' };
};

const unreplicated: Filter = (pod, o) => {
  if (isPodFinished(pod) || controllerOf(pod.metadata) !== undefined) return undefined;
  return o.force
    ? { action: 'evict', pod, warning: 'not managed by a controller; deleted for good (--force)' }
    : { action: 'refuse', pod, kind: 'unmanaged', reason: 'not managed by a controller (ReplicaSet, StatefulSet, Job, DaemonSet): nothing recreates it', fix: 'drain with --force (the pod is lost)' };
};

/** kubectl's order: the first filter that skips or refuses a pod decides; warnings add up. */
const PIPELINE: Filter[] = [alreadyDeleting, daemonSet, mirror, emptyDir, unreplicated];

export function filterPod(pod: Pod, o: FilterOptions, ctx: FilterContext): PodVerdict {
  const warnings: string[] = [];
  for (const f of PIPELINE) {
    const v = f(pod, o, ctx);
    if (!v) continue;
    if (v.action !== 'evict') return v;
    if (v.warning) warnings.push(v.warning);
  }
  return warnings.length > 0 ? { action: 'evict', pod, warning: warnings.join('; ') } : { action: 'evict', pod };
}

export function filterPods(pods: Pod[], o: FilterOptions, ctx: FilterContext): FilterResult {
  const out: FilterResult = { evict: [], skip: [], refuse: [] };
  for (const pod of [...pods].sort((a, b) => podKey(a).localeCompare(podKey(b)))) {
    const v = filterPod(pod, o, ctx);
    if (v.action === 'evict') out.evict.push(v);
    else if (v.action === 'skip') out.skip.push(v);
    else out.refuse.push(v);
  }
  return out;
}
