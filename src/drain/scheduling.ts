/**
 * Could a replacement of an evicted pod be scheduled somewhere that is not being drained?
 *
 * A small model of the scheduler's filters, in its order: cordon, taints, node selector and
 * required node affinity, pod count and resource requests, PersistentVolume node affinity,
 * required inter-pod (anti-)affinity. Placement is greedy across the whole drain: every
 * replacement placed reserves its requests on the chosen node, so ten pods that each fit alone
 * but not together are caught. The node picked is the least allocated one, as the scheduler's
 * default scoring would, so the simulation does not pack nodes tighter than the real thing.
 *
 * Scoring beyond that, preemption, topology spread constraints, host ports and volume limits
 * are not modelled: the answer is "some node passes every hard filter", not "which node".
 */
import { allocatable, formatAmount, podRequests, type ResourceAmounts } from './quantity.js';
import {
  formatTaint,
  labelSelectorMatches,
  nodeLabelsMatch,
  nodeSelectorMatches,
  untoleratedTaint,
} from './selector.js';
import {
  isPodFinished,
  podKey,
  type ClusterState,
  type Node,
  type NodeSelector,
  type PersistentVolume,
  type Pod,
  type PodAffinityTerm,
  type Taint,
} from './types.js';

export interface NodeReasons {
  node: string;
  reasons: string[];
}

export type Placement =
  | { schedulable: true; node: string }
  | {
      schedulable: false;
      /** The scheduler's FailedScheduling form: "0/5 nodes are available: 3 Insufficient cpu, ...". */
      summary: string;
      /** Why each node was refused. */
      nodes: NodeReasons[];
      fix: string;
    };

export const REASON = {
  draining: 'node(s) are being drained',
  cordoned: 'node(s) were unschedulable',
  nodeAffinity: "node(s) didn't match Pod's node affinity/selector",
  tooManyPods: 'Too many pods',
  volumeAffinity: 'node(s) had volume node affinity conflict',
  existingAntiAffinity: "node(s) didn't satisfy existing pods anti-affinity rules",
  podAffinity: "node(s) didn't match pod affinity rules",
  podAntiAffinity: "node(s) didn't match pod anti-affinity rules",
} as const;

const UNSCHEDULABLE_TAINT: Taint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' };

/**
 * The node's taints, plus the NoSchedule taints the node lifecycle controller puts on a node
 * whose Ready condition is False or Unknown, in case the snapshot was taken before it did.
 */
export function nodeTaints(node: Node): Taint[] {
  const taints = [...(node.spec.taints ?? [])];
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  const add = (key: string) => {
    if (!taints.some((t) => t.key === key && t.effect === 'NoSchedule')) taints.push({ key, effect: 'NoSchedule' });
  };
  if (ready?.status === 'False') add('node.kubernetes.io/not-ready');
  if (ready?.status === 'Unknown') add('node.kubernetes.io/unreachable');
  return taints;
}

export interface PodVolume {
  /** "namespace/name" of the claim. */
  claim: string;
  /** The bound volume, when the claim is bound and the volume is known. */
  pv?: PersistentVolume;
}

/** The PersistentVolumeClaims a pod mounts and the volumes bound to them. */
export function podVolumes(state: Pick<ClusterState, 'pvcs' | 'pvs'>, pod: Pod): PodVolume[] {
  const ns = pod.metadata.namespace ?? '';
  const out: PodVolume[] = [];
  for (const v of pod.spec.volumes ?? []) {
    const claimName = v.persistentVolumeClaim?.claimName;
    if (!claimName) continue;
    const pvc = state.pvcs.find((c) => c.metadata.name === claimName && (c.metadata.namespace ?? '') === ns);
    const pv = pvc?.spec.volumeName ? state.pvs.find((p) => p.metadata.name === pvc.spec.volumeName) : undefined;
    out.push(pv ? { claim: `${ns}/${claimName}`, pv } : { claim: `${ns}/${claimName}` });
  }
  return out;
}

interface NodeInfo {
  node: Node;
  draining: boolean;
  taints: Taint[];
  alloc: ResourceAmounts | undefined;
  requested: ResourceAmounts;
  pods: number;
}

/** A required anti-affinity term of a pod in the cluster, with the topology value of its node. */
interface AntiEntry {
  term: PodAffinityTerm;
  ownerNs: string;
  value: string | undefined;
}

interface Placed {
  pod: Pod;
  node: string;
  requests: ResourceAmounts;
  labelKeys: string[];
  anti: AntiEntry[];
}

const labelKey = (ns: string, k: string, v: string) => `${ns}\0${k}\0${v}`;
const firstPair = (term: PodAffinityTerm) => Object.entries(term.labelSelector?.matchLabels ?? {})[0];

function bucket<K, V>(m: Map<K, Set<V>>, k: K): Set<V> {
  let s = m.get(k);
  if (!s) m.set(k, (s = new Set()));
  return s;
}

/** Does a term written by a pod in `ownerNs` select `target`? */
function termSelects(state: ClusterState, term: PodAffinityTerm, ownerNs: string, target: Pod): boolean {
  const ns = target.metadata.namespace ?? '';
  const listed = term.namespaces ?? [];
  const nsSel = term.namespaceSelector;
  // Neither a list nor a selector means the owner's own namespace.
  const inNs =
    listed.length === 0 && (nsSel === undefined || nsSel === null)
      ? ns === ownerNs
      : listed.includes(ns) || labelSelectorMatches(nsSel, state.namespaceLabels.get(ns) ?? {});
  return inNs && labelSelectorMatches(term.labelSelector, target.metadata.labels);
}

function affinityTerms(pod: Pod, kind: 'podAffinity' | 'podAntiAffinity'): PodAffinityTerm[] {
  return pod.spec.affinity?.[kind]?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
}

/**
 * The cluster as the drain changes it: pods leave drained nodes, replacements land elsewhere.
 * Works on its own copies; the ClusterState it starts from is never modified.
 */
export class PlacementSimulator {
  private readonly nodes = new Map<string, NodeInfo>();
  private readonly pods = new Map<string, Placed>();
  // Indexes that keep affinity checks proportional to the pods that can match, not to the
  // cluster: pod ids by namespace + label, and anti-affinity terms by one label they require.
  private readonly byLabel = new Map<string, Set<string>>();
  private readonly antiByLabel = new Map<string, Set<AntiEntry>>();
  private readonly antiOther = new Set<AntiEntry>();
  private replacements = 0;

  constructor(
    private readonly state: ClusterState,
    draining: Iterable<string>,
  ) {
    const drainSet = new Set(draining);
    for (const node of state.nodes) {
      this.nodes.set(node.metadata.name, {
        node,
        draining: drainSet.has(node.metadata.name),
        taints: nodeTaints(node),
        alloc: allocatable(node.status?.allocatable),
        requested: new Map(),
        pods: 0,
      });
    }
    // Finished pods hold no resources and take no part in affinity; the scheduler skips them too.
    for (const pod of state.pods) {
      if (pod.spec.nodeName && !isPodFinished(pod)) this.add(podKey(pod), pod, pod.spec.nodeName);
    }
  }

  private add(id: string, pod: Pod, nodeName: string): void {
    const requests = podRequests(pod);
    const ns = pod.metadata.namespace ?? '';
    const labelKeys = Object.entries(pod.metadata.labels ?? {}).map(([k, v]) => labelKey(ns, k, v));
    const nodeLabels = this.nodes.get(nodeName)?.node.metadata.labels ?? {};
    const anti = affinityTerms(pod, 'podAntiAffinity').map((term) => ({ term, ownerNs: ns, value: nodeLabels[term.topologyKey] }));
    this.pods.set(id, { pod, node: nodeName, requests, labelKeys, anti });
    for (const key of labelKeys) bucket(this.byLabel, key).add(id);
    for (const e of anti) {
      const pair = firstPair(e.term);
      (pair ? bucket(this.antiByLabel, `${pair[0]}\0${pair[1]}`) : this.antiOther).add(e);
    }
    const info = this.nodes.get(nodeName);
    if (!info) return;
    info.pods += 1;
    for (const [k, v] of requests) info.requested.set(k, (info.requested.get(k) ?? 0) + v);
  }

  /** The pods leave the cluster (evicted from a node being drained). */
  remove(pods: Pod[]): void {
    for (const pod of pods) {
      const id = podKey(pod);
      const placed = this.pods.get(id);
      if (!placed) continue;
      this.pods.delete(id);
      for (const key of placed.labelKeys) this.byLabel.get(key)?.delete(id);
      for (const e of placed.anti) {
        const pair = firstPair(e.term);
        (pair ? this.antiByLabel.get(`${pair[0]}\0${pair[1]}`) : this.antiOther)?.delete(e);
      }
      const info = this.nodes.get(placed.node);
      if (!info) continue;
      info.pods -= 1;
      for (const [k, v] of placed.requests) info.requested.set(k, (info.requested.get(k) ?? 0) - v);
    }
  }

  /** Finds a node for a replacement of `pod` and reserves room for it there. */
  place(pod: Pod): Placement {
    const requests = podRequests(pod);
    const affinity = this.affinityIndex(pod);
    const volumeAffinity = podVolumes(this.state, pod).flatMap(({ pv }) => (pv?.spec.nodeAffinity?.required ? [pv.spec.nodeAffinity.required] : []));
    const refused: NodeReasons[] = [];
    let best: { name: string; score: number } | undefined;
    for (const [name, info] of this.nodes) {
      const reasons = this.filter(pod, requests, volumeAffinity, affinity, info);
      if (reasons.length > 0) {
        refused.push({ node: name, reasons });
        continue;
      }
      const score = freeShare(info, requests);
      if (!best || score > best.score) best = { name, score };
    }
    if (best) {
      this.add(`${podKey(pod)}#replacement-${++this.replacements}`, { ...pod, spec: { ...pod.spec, nodeName: best.name } }, best.name);
      return { schedulable: true, node: best.name };
    }
    return { schedulable: false, summary: summarize(this.nodes.size, refused), nodes: refused, fix: this.fixFor(pod, requests, refused) };
  }

  private filter(pod: Pod, requests: ResourceAmounts, volumeAffinity: NodeSelector[], affinity: AffinityIndex, info: NodeInfo): string[] {
    const node = info.node;
    if (info.draining) return [REASON.draining];
    const tolerations = pod.spec.tolerations;
    // A cordoned node still takes pods that tolerate the unschedulable taint, as the scheduler allows.
    if (node.spec.unschedulable && untoleratedTaint([UNSCHEDULABLE_TAINT], tolerations)) return [REASON.cordoned];
    const taint = untoleratedTaint(info.taints, tolerations);
    if (taint) return [`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`];
    const required = pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution;
    if (!nodeLabelsMatch(pod.spec.nodeSelector, node) || (required && !nodeSelectorMatches(required, node))) {
      return [REASON.nodeAffinity];
    }
    const resources = insufficient(info, requests);
    if (resources.length > 0) return resources;
    if (volumeAffinity.some((required) => !nodeSelectorMatches(required, node))) return [REASON.volumeAffinity];
    return affinity.check(node);
  }

  /** Pods a term might select: those carrying one of its labels in its namespaces, when that is known. */
  private *candidates(term: PodAffinityTerm, ownerNs: string): Iterable<Placed> {
    const pair = firstPair(term);
    if (!pair || (term.namespaceSelector !== undefined && term.namespaceSelector !== null)) {
      yield* this.pods.values();
      return;
    }
    for (const ns of term.namespaces?.length ? term.namespaces : [ownerNs]) {
      for (const id of this.byLabel.get(labelKey(ns, pair[0], pair[1])) ?? []) {
        const placed = this.pods.get(id);
        if (placed) yield placed;
      }
    }
  }

  /** Everything inter-pod affinity needs, computed once per pod rather than once per node. */
  private affinityIndex(pod: Pod): AffinityIndex {
    const ns = pod.metadata.namespace ?? '';
    let anyAffinityMatch = false;
    // Per term, the topology values (zones, hostnames...) where a matching pod runs.
    const domains = (term: PodAffinityTerm, onMatch: () => void) => {
      const values = new Set<string>();
      for (const other of this.candidates(term, ns)) {
        if (!termSelects(this.state, term, ns, other.pod)) continue;
        onMatch();
        const value = this.nodes.get(other.node)?.node.metadata.labels?.[term.topologyKey];
        if (value !== undefined) values.add(value);
      }
      return { key: term.topologyKey, values };
    };
    const anti = affinityTerms(pod, 'podAntiAffinity').map((term) => domains(term, () => undefined));
    const affTerms = affinityTerms(pod, 'podAffinity');
    const aff = affTerms.map((term) => domains(term, () => (anyAffinityMatch = true)));
    // Existing pods' anti-affinity: only terms requiring a label this pod has (or no label at all) can select it.
    const forbidden: { key: string; value: string }[] = [];
    const entries = [...this.antiOther, ...Object.entries(pod.metadata.labels ?? {}).flatMap(([k, v]) => [...(this.antiByLabel.get(`${k}\0${v}`) ?? [])])];
    for (const e of entries) {
      if (e.value !== undefined && termSelects(this.state, e.term, e.ownerNs, pod)) forbidden.push({ key: e.term.topologyKey, value: e.value });
    }
    // The first pod of a group that wants to be near its own kind has nobody to be near: the
    // scheduler lets it go anywhere when no pod matches any term and it matches them all itself.
    const selfSatisfied = !anyAffinityMatch && affTerms.every((t) => termSelects(this.state, t, ns, pod));
    return {
      check(node: Node): string[] {
        // The scheduler's order: the pod's affinity, its anti-affinity, then other pods' anti-affinity.
        const labels = node.metadata.labels ?? {};
        if (!selfSatisfied && aff.some((t) => labels[t.key] === undefined || !t.values.has(labels[t.key] ?? ''))) {
          return [REASON.podAffinity];
        }
        if (anti.some((t) => labels[t.key] !== undefined && t.values.has(labels[t.key] ?? ''))) return [REASON.podAntiAffinity];
        if (forbidden.some((f) => labels[f.key] === f.value)) return [REASON.existingAntiAffinity];
        return [];
      },
    };
  }

  private fixFor(pod: Pod, requests: ResourceAmounts, refused: NodeReasons[]): string {
    const reasons = new Set(refused.flatMap((r) => r.reasons));
    const fixes: string[] = [];
    if (reasons.has(REASON.cordoned)) fixes.push('uncordon a node');
    if ([...reasons].some((r) => r.startsWith('Insufficient') || r === REASON.tooManyPods)) {
      const asks = [...requests].filter(([, v]) => v > 0).map(([k, v]) => `${k} ${formatAmount(k, v)}`);
      fixes.push(`add capacity or lower the pod's requests${asks.length > 0 ? ` (${asks.join(', ')})` : ''}`);
    }
    if (reasons.has(REASON.nodeAffinity)) {
      const pairs = Object.entries(pod.spec.nodeSelector ?? {}).map(([k, v]) => `${k}=${v}`);
      fixes.push(pairs.length > 0 ? `relax nodeSelector ${pairs.join(',')} or label another node` : 'relax the node affinity or label another node');
    }
    const taints = new Set<string>();
    for (const r of refused) {
      const info = this.nodes.get(r.node);
      const t = info && r.reasons[0]?.startsWith('node(s) had untolerated taint') ? untoleratedTaint(info.taints, pod.spec.tolerations) : undefined;
      if (t) taints.add(formatTaint(t));
    }
    if (taints.size > 0) fixes.push(`tolerate or remove the taint ${[...taints].join(', ')}`);
    if (reasons.has(REASON.volumeAffinity)) fixes.push("bring up a node that its PersistentVolume's node affinity allows");
    if (reasons.has(REASON.podAntiAffinity) || reasons.has(REASON.existingAntiAffinity)) {
      const keys = [...new Set(affinityTerms(pod, 'podAntiAffinity').map((t) => t.topologyKey))];
      fixes.push(`add a node in a new topology domain${keys.length > 0 ? ` (${keys.join(', ')})` : ''} or relax the pod anti-affinity`);
    }
    if (reasons.has(REASON.podAffinity)) fixes.push('relax the pod affinity or make room next to the pods it must join');
    if (fixes.length === 0) fixes.push('add a node');
    return fixes.join('; ');
  }
}

interface AffinityIndex {
  check(node: Node): string[];
}

function insufficient(info: NodeInfo, requests: ResourceAmounts): string[] {
  // A node that reports no allocatable at all cannot be judged: let it through rather than invent limits.
  if (!info.alloc) return [];
  const out: string[] = [];
  // The kubelet always reports "pods"; where it is missing (hand-built state) the count is not limited.
  const maxPods = info.alloc.get('pods');
  if (maxPods !== undefined && info.pods + 1 > maxPods) out.push(REASON.tooManyPods);
  for (const [name, want] of requests) {
    if (want <= 0 || name === 'pods') continue;
    const free = (info.alloc.get(name) ?? 0) - (info.requested.get(name) ?? 0);
    if (want > free) out.push(`Insufficient ${name}`);
  }
  return out;
}

/** Share of cpu and memory left after placing: higher is emptier (LeastAllocated scoring). */
function freeShare(info: NodeInfo, requests: ResourceAmounts): number {
  const shares: number[] = [];
  for (const r of ['cpu', 'memory']) {
    const cap = info.alloc?.get(r);
    if (!cap) continue;
    shares.push((cap - (info.requested.get(r) ?? 0) - (requests.get(r) ?? 0)) / cap);
  }
  return shares.length > 0 ? shares.reduce((a, b) => a + b, 0) / shares.length : 0;
}

function summarize(total: number, refused: NodeReasons[]): string {
  const counts = new Map<string, number>();
  for (const r of refused) for (const reason of r.reasons) counts.set(reason, (counts.get(reason) ?? 0) + 1);
  const parts = [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([reason, n]) => `${n} ${reason}`);
  return `0/${total} nodes are available${parts.length > 0 ? `: ${parts.join(', ')}` : ''}.`;
}
