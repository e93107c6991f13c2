/**
 * The upgrade plan: which nodes go to the target version, in which order, and what would stop
 * the run, found before anything changes.
 *
 *   1. The nodes in scope: the named ones (in the order given), those --node-selector matches,
 *      or every node. Roles come from the node-role.kubernetes.io/control-plane (or the older
 *      master) label; everything else is a worker.
 *   2. Nodes already at the target (or past it: nothing is downgraded) are skipped.
 *   3. Control-plane nodes first, one per step, by name; then workers in batches of
 *      --max-unavailable (a count, or a percentage of the workers in scope, rounded down, at
 *      least one).
 *   4. The skew rules (skew.ts) for the target and after every step.
 *   5. Readiness: a NotReady node in the plan blocks it unless allowed (its return at the target
 *      could never be confirmed).
 *   6. The drain pre-flight, batch by batch in the plan's order: each batch is drained against
 *      the cluster as it is now, with every other node in service, earlier batches included
 *      (they are back by then, and the budgets they used are healthy again: a run waits for
 *      that before the next batch). Its blockers carry the step they would stop.
 *
 * buildPlan is pure (cluster data in, plan out); planUpgrade reads the cluster for it.
 */
import type { SemVer } from 'semver';
import { NotFoundError, UsageError } from '../cli/errors.js';
import type { NodeApi } from '../drain/api.js';
import type { FilterOptions } from '../drain/filters.js';
import { preflight, type Blocker, type BlockerKind } from '../drain/preflight.js';
import { formatLabelSelector, labelSelectorMatches } from '../drain/selector.js';
import type { ClusterState, LabelSelector, Node } from '../drain/types.js';
import { checkSteps, checkTarget, compareVersions, formatVersion, parseKubeVersion, type NodeRole, type SkewFinding, type SkewNode } from './skew.js';

export type { NodeRole } from './skew.js';

export const CONTROL_PLANE_LABELS = ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master'];

export type MaxUnavailable = { count: number } | { percent: number };

export interface PlanOptions extends FilterOptions {
  target: SemVer;
  maxUnavailable: MaxUnavailable;
  /** Named nodes (positional arguments); exclusive with nodeSelector. */
  nodes?: string[] | undefined;
  nodeSelector?: LabelSelector | undefined;
  /** Plan NotReady nodes instead of blocking on them. */
  allowNotReady: boolean;
  /** The pre-flight's clock; defaults to now. */
  now?: Date;
}

export interface PlanInput {
  /** gitVersion from GET /version. */
  apiServerVersion: string;
  state: ClusterState;
}

export interface PlannedNode {
  node: string;
  role: NodeRole;
  from: string;
  to: string;
  ready: boolean;
  cordoned: boolean;
  /** blocked: a skew violation or a pre-flight blocker names this node. */
  status: 'upgrade' | 'blocked';
}

export interface PlanStep {
  /** From 1, in the order the run takes them. */
  step: number;
  role: NodeRole;
  /** This step's place among the steps of its role: control-plane 1/3, workers 2/5. */
  batch: number;
  of: number;
  nodes: PlannedNode[];
}

export interface SkippedNode {
  node: string;
  role: NodeRole;
  version: string;
  reason: 'at-target' | 'newer-than-target' | 'unknown-version';
}

export type PlanBlockerKind = BlockerKind | 'not-ready';

export interface PlanBlocker extends Omit<Blocker, 'kind'> {
  kind: PlanBlockerKind;
  /** The step the run would stop at. */
  step: number;
}

export interface PlanWarning {
  kind: string;
  node?: string;
  step?: number;
  object?: string;
  message: string;
}

export interface UpgradePlan {
  outcome: 'ok' | 'blocked' | 'nothing-to-do';
  target: string;
  apiServer: string;
  /** Workers per batch. */
  maxUnavailable: number;
  steps: PlanStep[];
  skipped: SkippedNode[];
  /** Skew rules the plan would break. */
  skew: SkewFinding[];
  /** What would stop the run: NotReady nodes and the drain pre-flight's blockers. */
  blockers: PlanBlocker[];
  warnings: PlanWarning[];
}

export function roleOf(node: Node): NodeRole {
  const labels = node.metadata.labels ?? {};
  return CONTROL_PLANE_LABELS.some((l) => Object.hasOwn(labels, l)) ? 'control-plane' : 'worker';
}

export function isNodeReady(node: Node): boolean {
  return node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** "2" or "25%" (of the workers in scope). */
export function parseMaxUnavailable(text: string): MaxUnavailable {
  const s = text.trim();
  const m = /^(\d+)(%?)$/.exec(s);
  const n = m ? Number(m[1]) : NaN;
  if (!m || n < 1 || (m[2] === '%' && n > 100)) {
    throw new UsageError(`Invalid --max-unavailable ${JSON.stringify(text)}: give a number of workers (at least 1) or a percentage (1% to 100%).`, {
      hint: 'E.g. --max-unavailable 2 or --max-unavailable 25%.',
    });
  }
  return m[2] === '%' ? { percent: n } : { count: n };
}

/** Workers per batch: a percentage rounds down, and a batch is never empty. */
export function batchSize(m: MaxUnavailable, workers: number): number {
  if ('count' in m) return m.count;
  return Math.max(1, Math.floor((workers * m.percent) / 100));
}

/** The nodes in scope, checked: every named node must exist, and a selector must match one. */
export function selectNodes(all: Node[], opts: Pick<PlanOptions, 'nodes' | 'nodeSelector'>): Node[] {
  const names = [...new Set(opts.nodes ?? [])];
  if (names.length > 0 && opts.nodeSelector) throw new UsageError('Name the nodes or give --node-selector, not both.');
  if (names.length > 0) {
    const byName = new Map(all.map((n) => [n.metadata.name, n]));
    const missing = names.filter((n) => !byName.has(n));
    if (missing.length > 0) {
      throw new NotFoundError(`Node${missing.length > 1 ? 's' : ''} not found: ${missing.join(', ')}.`, { hint: 'List nodes with `kubectl get nodes`.' });
    }
    return names.map((n) => byName.get(n) as Node);
  }
  const byNameOrder = (a: Node, b: Node) => a.metadata.name.localeCompare(b.metadata.name);
  if (opts.nodeSelector) {
    const sel = opts.nodeSelector;
    const matched = all.filter((n) => labelSelectorMatches(sel, n.metadata.labels)).sort(byNameOrder);
    if (matched.length === 0) throw new NotFoundError(`No node matches the selector ${formatLabelSelector(sel)}.`);
    return matched;
  }
  return [...all].sort(byNameOrder);
}

/** Control-plane nodes one per step (by name), then workers in batches, in scope order. */
export function orderSteps(nodes: { node: Node; role: NodeRole }[], perBatch: number): { role: NodeRole; nodes: Node[] }[] {
  const cp = nodes.filter((n) => n.role === 'control-plane').map((n) => n.node).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  const workers = nodes.filter((n) => n.role === 'worker').map((n) => n.node);
  const steps: { role: NodeRole; nodes: Node[] }[] = cp.map((n) => ({ role: 'control-plane', nodes: [n] }));
  for (let i = 0; i < workers.length; i += perBatch) steps.push({ role: 'worker', nodes: workers.slice(i, i + perBatch) });
  return steps;
}

export function buildPlan(input: PlanInput, opts: PlanOptions): UpgradePlan {
  const { state } = input;
  const target = opts.target;
  const to = formatVersion(target);
  const scope = selectNodes(state.nodes, opts);
  const workersInScope = scope.filter((n) => roleOf(n) === 'worker').length;
  const plan: UpgradePlan = {
    outcome: 'ok',
    target: to,
    apiServer: input.apiServerVersion,
    maxUnavailable: batchSize(opts.maxUnavailable, workersInScope),
    steps: [],
    skipped: [],
    skew: [],
    blockers: [],
    warnings: [],
  };

  const apiServer = parseKubeVersion(input.apiServerVersion);
  if (!apiServer) {
    plan.skew.push({
      rule: 'unknown-version',
      message: `The API server reports version ${JSON.stringify(input.apiServerVersion)}, which is not a Kubernetes version: no skew rule can be checked.`,
      fix: 'Check `kubectl version`; the plan needs the API server\'s vX.Y.Z.',
    });
    return finish(plan);
  }
  plan.apiServer = formatVersion(apiServer);
  plan.skew.push(...checkTarget(apiServer, target));
  if (plan.skew.length > 0) return finish(plan);

  // Which nodes in scope need the upgrade.
  const toUpgrade: { node: Node; role: NodeRole }[] = [];
  for (const node of scope) {
    const role = roleOf(node);
    const reported = node.status?.nodeInfo?.kubeletVersion ?? '';
    const version = parseKubeVersion(reported);
    const skip = (reason: SkippedNode['reason']) => plan.skipped.push({ node: node.metadata.name, role, version: reported, reason });
    if (!version) skip('unknown-version');
    else if (compareVersions(version, target) === 0) skip('at-target');
    else if (compareVersions(version, target) > 0) {
      skip('newer-than-target');
      plan.warnings.push({ kind: 'newer-than-target', node: node.metadata.name, message: `node ${node.metadata.name} runs kubelet ${reported}, newer than the target ${to}: left as it is (nodes are never downgraded)` });
    } else toUpgrade.push({ node, role });
  }

  const ordered = orderSteps(toUpgrade, plan.maxUnavailable);
  const stepOf = new Map<string, number>();
  const counts = { 'control-plane': ordered.filter((s) => s.role === 'control-plane').length, worker: ordered.filter((s) => s.role === 'worker').length };
  const seen = { 'control-plane': 0, worker: 0 };
  for (const [i, s] of ordered.entries()) {
    for (const n of s.nodes) stepOf.set(n.metadata.name, i + 1);
    plan.steps.push({
      step: i + 1,
      role: s.role,
      batch: ++seen[s.role],
      of: counts[s.role],
      nodes: s.nodes.map((n) => ({
        node: n.metadata.name,
        role: s.role,
        from: n.status?.nodeInfo?.kubeletVersion ?? '',
        to,
        ready: isNodeReady(n),
        cordoned: n.spec.unschedulable === true,
        status: 'upgrade',
      })),
    });
  }

  // Skew after every step, over the whole cluster.
  const inScope = new Set(scope.map((n) => n.metadata.name));
  const skewNodes: SkewNode[] = state.nodes.map((n) => ({
    name: n.metadata.name,
    role: roleOf(n),
    version: parseKubeVersion(n.status?.nodeInfo?.kubeletVersion),
    reported: n.status?.nodeInfo?.kubeletVersion,
    step: stepOf.get(n.metadata.name),
    inScope: inScope.has(n.metadata.name),
  }));
  const skew = checkSteps({ apiServer, target, nodes: skewNodes, steps: plan.steps.length });
  plan.skew.push(...skew.violations);
  for (const w of skew.warnings) plan.warnings.push({ kind: w.rule, ...(w.node ? { node: w.node } : {}), message: `${w.message} ${w.fix}` });

  for (const s of plan.steps) {
    for (const n of s.nodes) {
      if (n.cordoned) plan.warnings.push({ kind: 'cordoned', node: n.node, step: s.step, message: `node ${n.node} is cordoned already: a run leaves it cordoned after its upgrade` });
      if (n.ready) continue;
      const why = `node ${n.node} is NotReady: its drain cannot be relied on, and its return at ${to} could never be confirmed`;
      if (opts.allowNotReady) {
        plan.warnings.push({ kind: 'not-ready', node: n.node, step: s.step, message: `${why} (planned anyway: --allow-not-ready)` });
      } else {
        plan.blockers.push({ step: s.step, node: n.node, kind: 'not-ready', object: `node/${n.node}`, message: `is NotReady: its drain cannot be relied on, and its return at ${to} could never be confirmed`, fix: 'bring it back to Ready, leave it out of the plan, or plan with --allow-not-ready' });
      }
    }
    const pf = preflight(
      state,
      s.nodes.map((n) => n.node),
      { ignoreDaemonSets: opts.ignoreDaemonSets, deleteEmptyDirData: opts.deleteEmptyDirData, force: opts.force, skipWaitForDeleteTimeoutSeconds: opts.skipWaitForDeleteTimeoutSeconds, disableEviction: false, ...(opts.now ? { now: opts.now } : {}) },
    );
    for (const b of pf.blockers) plan.blockers.push({ ...b, step: s.step });
    for (const w of pf.warnings) plan.warnings.push({ kind: w.kind, node: w.node, step: s.step, object: w.object, message: w.message });
  }
  return finish(plan);
}

/** Marks the nodes something blocks, and settles the outcome. */
function finish(plan: UpgradePlan): UpgradePlan {
  const blocked = new Set([...plan.skew.map((f) => f.node), ...plan.blockers.map((b) => b.node)]);
  for (const s of plan.steps) for (const n of s.nodes) if (blocked.has(n.node)) n.status = 'blocked';
  if (plan.skew.length > 0 || plan.blockers.length > 0) plan.outcome = 'blocked';
  else if (plan.steps.length === 0) plan.outcome = 'nothing-to-do';
  return plan;
}

/** Reads what buildPlan needs: the API server's version and the pre-flight's cluster state. */
export async function readPlanInput(api: NodeApi, signal?: AbortSignal): Promise<PlanInput> {
  const [version, state] = await Promise.all([api.client.request<{ gitVersion?: string }>('/version', { signal }), api.clusterState()]);
  return { apiServerVersion: version.gitVersion ?? '', state };
}

export async function planUpgrade(api: NodeApi, opts: PlanOptions, signal?: AbortSignal): Promise<UpgradePlan> {
  return buildPlan(await readPlanInput(api, signal), opts);
}
