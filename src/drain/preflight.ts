/**
 * The drain pre-flight: everything that would stop draining these nodes, in this order, found
 * before anything is cordoned or evicted. It reads a ClusterState and changes nothing.
 *
 * Per node, in the drain's order:
 *   1. kubectl's filters decide which pods are evicted, skipped or refused (refusals block);
 *   2. pods leave the node; every pod a controller will recreate needs a replacement that the
 *      scheduler can place on a node that is not being drained (placement is greedy across the
 *      whole drain), and cannot follow a volume pinned to the node it leaves;
 *   3. every eviction is charged to the pod's PodDisruptionBudget the way the API server does.
 *
 * Budgets across the run: a healthy pod whose replacement becomes Ready elsewhere borrows one
 * disruption and gives it back, so it only needs disruptionsAllowed >= 1 when its turn comes
 * (the eviction loop retries 429 until then). A healthy pod that does not come back spends the
 * disruption for good. When the budget is spent while covered pods remain, the drain would
 * retry 429 until its timeout: that is a blocker, named with the budget and the pods it strands.
 * Within a node, evictions run concurrently, so pods that spend for good are charged first:
 * the pre-flight assumes the unlucky order.
 */
import { filterPods, type FilterContext, type FilterOptions, type RefusalKind } from './filters.js';
import { PlacementSimulator, podVolumes } from './scheduling.js';
import { formatLabelSelector, labelSelectorMatches, nodeSelectorMatches } from './selector.js';
import {
  controllerOf,
  isPodFinished,
  isPodReady,
  podKey,
  type ClusterState,
  type LabelSelector,
  type Pod,
  type PodDisruptionBudget,
} from './types.js';

export interface PreflightOptions extends FilterOptions {
  /** Only pods matching it are evicted (kubectl drain --pod-selector); the rest stay. */
  podSelector?: LabelSelector;
  /** Delete instead of evict: PodDisruptionBudgets no longer apply (their findings become warnings). */
  disableEviction: boolean;
  /** The clock for --skip-wait-for-delete-timeout; defaults to now. */
  now?: Date;
}

export type BlockerKind =
  | RefusalKind
  | 'multiple-pdbs'
  | 'pdb-exhausted'
  | 'pdb-insufficient'
  | 'pdb-unhealthy'
  | 'unschedulable'
  | 'local-volume';

export interface Blocker {
  /** The node whose drain would stop. */
  node: string;
  kind: BlockerKind;
  /** "pod/ns/name", "poddisruptionbudget/ns/name" or "persistentvolume/name". */
  object: string;
  message: string;
  fix: string;
  /** The pods ("ns/name") that would be stuck, when the object is not a pod. */
  pods?: string[];
}

export type WarningKind = 'pod-deleted' | 'emptydir-data-lost' | 'pod-skipped' | 'pdb-stale' | 'pdb-bypassed' | 'hostpath-volume';

export interface PreflightWarning {
  node: string;
  kind: WarningKind;
  object: string;
  message: string;
}

export interface NodePlan {
  node: string;
  /** Pods ("ns/name") the drain evicts (or deletes, with --disable-eviction). */
  evict: string[];
  skip: { pod: string; reason: string }[];
}

export interface PreflightResult {
  blockers: Blocker[];
  warnings: PreflightWarning[];
  nodes: NodePlan[];
}

const podRef = (pod: Pod) => `pod/${podKey(pod)}`;
const pdbRef = (pdb: PodDisruptionBudget) => `poddisruptionbudget/${pdb.metadata.namespace ?? ''}/${pdb.metadata.name}`;

/** The API server deletes these without consulting any budget (and without the 500 for several). */
function bypassesBudgets(pod: Pod): boolean {
  const phase = pod.status?.phase;
  return phase === 'Pending' || phase === 'Succeeded' || phase === 'Failed' || pod.metadata.deletionTimestamp !== undefined;
}

function covering(pdbs: PodDisruptionBudget[], pod: Pod): PodDisruptionBudget[] {
  const ns = pod.metadata.namespace ?? '';
  return pdbs.filter((b) => (b.metadata.namespace ?? '') === ns && labelSelectorMatches(b.spec.selector, pod.metadata.labels));
}

/** One budget as the drain spends it. */
interface Ledger {
  pdb: PodDisruptionBudget;
  initial: number;
  allowed: number;
  currentHealthy: number;
  desiredHealthy: number;
  /** Pods that spend a disruption for good, and why. */
  spentBy: string[];
  stuck: { node: string; pod: string }[];
  stuckUnhealthy: { node: string; pod: string }[];
}

function ledgerFor(pdb: PodDisruptionBudget): Ledger {
  const s = pdb.status ?? {};
  const allowed = Math.max(0, s.disruptionsAllowed ?? 0);
  return { pdb, initial: allowed, allowed, currentHealthy: s.currentHealthy ?? 0, desiredHealthy: s.desiredHealthy ?? 0, spentBy: [], stuck: [], stuckUnhealthy: [] };
}

/** An evicted pod and whether something brings it back elsewhere. */
interface Departure {
  pod: Pod;
  returns: boolean;
  why?: string;
}

export function preflight(state: ClusterState, nodes: string[], opts: PreflightOptions): PreflightResult {
  const ctx: FilterContext = { daemonSetExists: (key) => state.daemonSets.has(key), now: opts.now ?? new Date() };
  const sim = new PlacementSimulator(state, nodes);
  const ledgers = new Map<PodDisruptionBudget, Ledger>();
  const staleWarned = new Set<PodDisruptionBudget>();
  const out: PreflightResult = { blockers: [], warnings: [], nodes: [] };
  const block = (b: Blocker) => out.blockers.push(b);
  const warn = (w: PreflightWarning) => out.warnings.push(w);

  for (const name of [...new Set(nodes)]) {
    const plan: NodePlan = { node: name, evict: [], skip: [] };
    out.nodes.push(plan);
    const onNode = state.pods.filter((p) => p.spec.nodeName === name);
    const selected = onNode.filter((p) => !opts.podSelector || labelSelectorMatches(opts.podSelector, p.metadata.labels));
    for (const p of onNode.filter((x) => !selected.includes(x)).sort((a, b) => podKey(a).localeCompare(podKey(b)))) {
      plan.skip.push({ pod: podKey(p), reason: `not selected by the pod selector ${formatLabelSelector(opts.podSelector)}` });
    }
    const verdicts = filterPods(selected, opts, ctx);
    for (const s of verdicts.skip) {
      plan.skip.push({ pod: podKey(s.pod), reason: s.reason });
      warn({ node: name, kind: 'pod-skipped', object: podRef(s.pod), message: `skipped: ${s.reason}` });
    }
    for (const r of verdicts.refuse) {
      block({ node: name, kind: r.kind, object: podRef(r.pod), message: `cannot be drained: ${r.reason}`, fix: r.fix });
    }

    const leaving: Pod[] = [];
    for (const { pod } of verdicts.evict) {
      plan.evict.push(podKey(pod));
      warnAboutLoss(state, name, pod, warn);
      const pdbs = bypassesBudgets(pod) ? [] : covering(state.pdbs, pod);
      if (pdbs.length > 1 && !opts.disableEviction) {
        // The eviction API answers 500 for such a pod, every time: it stays where it is.
        block({
          node: name,
          kind: 'multiple-pdbs',
          object: podRef(pod),
          message: `is covered by ${pdbs.length} PodDisruptionBudgets (${pdbs.map((b) => b.metadata.name).join(', ')}); the eviction API refuses pods with more than one`,
          fix: `change the selectors so that one budget covers it (${pdbs.map(pdbRef).join(', ')}), or drain with --disable-eviction`,
        });
        continue;
      }
      if (pdbs.length > 1) {
        warn({ node: name, kind: 'pdb-bypassed', object: podRef(pod), message: `is covered by ${pdbs.length} PodDisruptionBudgets (${pdbs.map((b) => b.metadata.name).join(', ')}); deleted without consulting them (--disable-eviction)` });
      }
      leaving.push(pod);
    }

    // The old pods are gone before their replacements are scheduled (their own anti-affinity
    // would otherwise keep the replacements out of their topology domain).
    sim.remove(leaving);
    const departures = leaving.map((pod) => depart(state, sim, name, pod, block));

    // Charge budgets: pods that spend for good first, then unhealthy ones, then borrowers.
    const order = (d: Departure) => (!isPodReady(d.pod) ? 1 : d.returns ? 2 : 0);
    for (const d of [...departures].sort((a, b) => order(a) - order(b))) {
      if (bypassesBudgets(d.pod)) continue;
      const [pdb] = covering(state.pdbs, d.pod);
      if (!pdb) continue;
      let ledger = ledgers.get(pdb);
      if (!ledger) ledgers.set(pdb, (ledger = ledgerFor(pdb)));
      const stale = (pdb.status?.observedGeneration ?? 0) < (pdb.metadata.generation ?? 0);
      if (stale && !opts.disableEviction && !staleWarned.has(pdb)) {
        staleWarned.add(pdb);
        warn({
          node: name,
          kind: 'pdb-stale',
          object: pdbRef(pdb),
          message: `status is stale (observedGeneration ${pdb.status?.observedGeneration ?? 0} < generation ${pdb.metadata.generation ?? 0}): the disruption controller has not caught up, evictions are refused until it does, and the budget read here may be out of date`,
        });
      }
      charge(ledger, name, d);
    }
  }

  // Deletes do not consult budgets: what would have blocked an eviction is only worth knowing.
  const budgetSink = opts.disableEviction
    ? (b: Blocker) => warn({ node: b.node, kind: 'pdb-bypassed', object: b.object, message: `${b.kind}: ${b.message}; deleted anyway (--disable-eviction)` })
    : block;
  for (const ledger of ledgers.values()) budgetFindings(ledger, budgetSink);
  // Budgets are judged after the whole run; list every blocker in drain order.
  const rank = new Map([...new Set(nodes)].map((n, i) => [n, i]));
  out.blockers.sort((a, b) => (rank.get(a.node) ?? 0) - (rank.get(b.node) ?? 0));
  return out;
}

/** Warnings for pods whose loss is permanent or whose data stays behind. */
function warnAboutLoss(state: ClusterState, node: string, pod: Pod, warn: (w: PreflightWarning) => void): void {
  if (isPodFinished(pod)) return;
  const ref = controllerOf(pod.metadata);
  const orphaned = ref?.kind === 'DaemonSet' && !state.daemonSets.has(`${pod.metadata.namespace ?? ''}/${ref.name}`);
  if (!ref || orphaned) {
    warn({ node, kind: 'pod-deleted', object: podRef(pod), message: orphaned ? `its DaemonSet ${ref?.name} is gone: deleted for good (--force)` : 'no controller recreates it: deleted for good (--force)' });
  }
  const emptyDirs = (pod.spec.volumes ?? []).filter((v) => v.emptyDir !== undefined).map((v) => v.name);
  if (emptyDirs.length > 0) {
    warn({ node, kind: 'emptydir-data-lost', object: podRef(pod), message: `emptyDir data is lost (${emptyDirs.join(', ')}) (--delete-emptydir-data)` });
  }
  for (const { claim, pv } of podVolumes(state, pod)) {
    if (pv?.spec.hostPath && !pv.spec.nodeAffinity?.required) {
      warn({ node, kind: 'hostpath-volume', object: `persistentvolume/${pv.metadata.name}`, message: `hostPath volume ${pv.spec.hostPath.path} (claim ${claim}) has no node affinity: the replacement may start elsewhere without this node's data` });
    }
  }
}

/** Where the pod goes: a replacement placed elsewhere, or nowhere (and why that blocks). */
function depart(state: ClusterState, sim: PlacementSimulator, node: string, pod: Pod, block: (b: Blocker) => void): Departure {
  const ref = controllerOf(pod.metadata);
  // Finished pods are not replaced; pods already being deleted had their replacement made
  // when deletion began; pods without a (live) controller are deleted for good.
  if (isPodFinished(pod) || pod.metadata.deletionTimestamp !== undefined) return { pod, returns: true };
  if (!ref || ref.kind === 'DaemonSet') return { pod, returns: false, why: 'not recreated' };

  const here = state.nodes.find((n) => n.metadata.name === node);
  for (const { claim, pv } of podVolumes(state, pod)) {
    const required = pv?.spec.nodeAffinity?.required;
    if (!pv || !required || !here || !nodeSelectorMatches(required, here)) continue;
    if (state.nodes.some((n) => n.metadata.name !== node && nodeSelectorMatches(required, n))) continue;
    block({
      node,
      kind: 'local-volume',
      object: `persistentvolume/${pv.metadata.name}`,
      message: `pod ${podKey(pod)} uses claim ${claim}, bound to ${pv.spec.local ? 'local ' : ''}volume ${pv.metadata.name} that only ${node} can mount: its replacement stays Pending until ${node} is back`,
      fix: `accept that ${podKey(pod)} is down until ${node} is uncordoned (leave it out with --pod-selector), or move its data to a volume not tied to ${node}`,
      pods: [podKey(pod)],
    });
    return { pod, returns: false, why: `its volume ${pv.metadata.name} is pinned to ${node}` };
  }

  const placed = sim.place(pod);
  if (placed.schedulable) return { pod, returns: true };
  block({
    node,
    kind: 'unschedulable',
    object: podRef(pod),
    message: `no node can take its replacement: ${placed.summary}`,
    fix: placed.fix,
    pods: [podKey(pod)],
  });
  return { pod, returns: false, why: 'its replacement cannot be scheduled' };
}

/** The API server's view of one eviction against the budget, then the simulation's. */
function charge(l: Ledger, node: string, d: Departure): void {
  const key = podKey(d.pod);
  if (!isPodReady(d.pod)) {
    if (l.pdb.spec.unhealthyPodEvictionPolicy === 'AlwaysAllow') return;
    // IfHealthyBudget: an unready pod goes freely while the application is not disrupted;
    // otherwise it needs a disruption like any other, and gives it back (it was not counted).
    if (l.currentHealthy >= l.desiredHealthy && l.desiredHealthy > 0) return;
    if (l.allowed < 1) l.stuckUnhealthy.push({ node, pod: key });
    return;
  }
  if (l.allowed < 1) {
    l.stuck.push({ node, pod: key });
    return;
  }
  if (!d.returns) {
    l.allowed -= 1;
    l.currentHealthy -= 1;
    l.spentBy.push(`${key} (${d.why ?? 'not recreated'})`);
  }
}

function budgetFindings(l: Ledger, block: (b: Blocker) => void): void {
  const { pdb } = l;
  const s = pdb.status ?? {};
  const counts = `currentHealthy ${s.currentHealthy ?? 0}, desiredHealthy ${s.desiredHealthy ?? 0}, expectedPods ${s.expectedPods ?? 0}`;
  const spec = pdb.spec.minAvailable !== undefined ? `minAvailable ${pdb.spec.minAvailable}` : `maxUnavailable ${pdb.spec.maxUnavailable ?? '?'}`;
  const names = (xs: { pod: string }[]) => xs.map((x) => x.pod);
  if (l.stuck.length > 0 && l.initial === 0) {
    block({
      node: l.stuck[0]?.node ?? '',
      kind: 'pdb-exhausted',
      object: pdbRef(pdb),
      message: `allows no disruption now (disruptionsAllowed 0: ${counts}; ${spec}); evicting ${names(l.stuck).join(', ')} would be refused until it does`,
      fix: `scale the workload up or lower ${spec} so that disruptionsAllowed is at least 1, or drain with --disable-eviction (ignores the budget)`,
      pods: names(l.stuck),
    });
  } else if (l.stuck.length > 0) {
    block({
      node: l.stuck[0]?.node ?? '',
      kind: 'pdb-insufficient',
      object: pdbRef(pdb),
      message: `allows ${l.initial} disruption(s) (${counts}; ${spec}), spent for good by ${l.spentBy.join(', ')}; then ${names(l.stuck).join(', ')} cannot be evicted`,
      fix: `make room so the replacements can be scheduled, drain fewer nodes at once, raise the budget, or drain with --disable-eviction`,
      pods: names(l.stuck),
    });
  }
  if (l.stuckUnhealthy.length > 0) {
    block({
      node: l.stuckUnhealthy[0]?.node ?? '',
      kind: 'pdb-unhealthy',
      object: pdbRef(pdb),
      message: `${names(l.stuckUnhealthy).join(', ')} not Ready, and the budget is below its goal (${counts}): with unhealthyPodEvictionPolicy IfHealthyBudget (the default) such pods can only be evicted while disruptionsAllowed >= 1`,
      fix: 'set spec.unhealthyPodEvictionPolicy: AlwaysAllow on the budget, get the pods Ready, or drain with --disable-eviction',
      pods: names(l.stuckUnhealthy),
    });
  }
}
