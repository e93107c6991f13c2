import { describe, expect, it } from 'vitest';
import { DEFAULT_FILTER_OPTIONS, filterPod, filterPods, type FilterOptions } from '../../src/drain/filters.js';
import { preflight, type PreflightOptions, type PreflightResult } from '../../src/drain/preflight.js';
import { parseQuantity, podRequests, resourceAmount } from '../../src/drain/quantity.js';
import { nodeTaints } from '../../src/drain/scheduling.js';
import { labelSelectorMatches, nodeSelectorMatches, untoleratedTaint } from '../../src/drain/selector.js';
import type { ClusterState, LabelSelector, Node, NodeSelectorTerm, Pod, PodAffinityTerm, PodDisruptionBudget, Taint, Toleration } from '../../src/drain/types.js';

const NOW = new Date('2026-05-01T12:00:00Z');

interface NodeOpts { labels?: Record<string, string>; cpu?: string; memory?: string; pods?: string; taints?: Taint[]; cordoned?: boolean; ready?: string }
function node(name: string, o: NodeOpts = {}): Node {
  return {
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
    spec: { ...(o.cordoned ? { unschedulable: true } : {}), ...(o.taints ? { taints: o.taints } : {}) },
    status: {
      allocatable: { cpu: o.cpu ?? '4', memory: o.memory ?? '8Gi', pods: o.pods ?? '110' },
      conditions: [{ type: 'Ready', status: o.ready ?? 'True' }],
    },
  };
}

interface PodOpts { labels?: Record<string, string>; owner?: string | null; cpu?: string; ready?: boolean; phase?: NonNullable<Pod['status']>['phase']; spec?: Partial<Pod['spec']>; meta?: Partial<Pod['metadata']> }
function pod(key: string, nodeName: string | undefined, o: PodOpts = {}): Pod {
  const [namespace = '', name = ''] = key.split('/');
  const owner = o.owner === undefined ? 'ReplicaSet' : o.owner;
  return {
    metadata: {
      name, namespace, labels: o.labels ?? { app: name.replace(/-\d+$/, '') },
      ...(owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: owner, name: `${name.replace(/-\d+$/, '')}-rs`, uid: 'u', controller: true }] } : {}),
      ...o.meta,
    },
    spec: { ...(nodeName ? { nodeName } : {}), containers: [{ name: 'c', resources: { requests: { cpu: o.cpu ?? '100m' } } }], ...o.spec },
    status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}

/** n replicas "ns/app-i" placed on the given nodes in turn. */
const replicas = (app: string, on: string[], o: PodOpts = {}) => on.map((n, i) => pod(`default/${app}-${i}`, n, o));

function pdb(name: string, selector: LabelSelector | null, s: { allowed: number; current: number; desired: number; expected: number }, spec: Partial<PodDisruptionBudget['spec']> = {}, gen = { generation: 1, observed: 1 }): PodDisruptionBudget {
  return {
    metadata: { name, namespace: 'default', generation: gen.generation },
    spec: { selector, ...spec },
    status: { observedGeneration: gen.observed, disruptionsAllowed: s.allowed, currentHealthy: s.current, desiredHealthy: s.desired, expectedPods: s.expected },
  };
}

function cluster(nodes: Node[], pods: Pod[], extra: Partial<ClusterState> = {}): ClusterState {
  return { nodes, pods, pdbs: [], pvcs: [], pvs: [], daemonSets: new Set(), namespaceLabels: new Map(), ...extra };
}

const opts = (o: Partial<PreflightOptions> = {}): PreflightOptions => ({ ...DEFAULT_FILTER_OPTIONS, disableEviction: false, now: NOW, ...o });
const kinds = (r: PreflightResult) => r.blockers.map((b) => `${b.kind} ${b.object}`);
const warnKinds = (r: PreflightResult) => r.warnings.map((w) => `${w.kind} ${w.object}`);
const hostAnti = (app: string): Partial<Pod['spec']> => ({
  affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app } }, topologyKey: 'kubernetes.io/hostname' }] } },
});

describe('selectors', () => {
  const labels = { app: 'web', tier: 'front' };
  it.each<[string, LabelSelector | null | undefined, Record<string, string> | undefined, boolean]>([
    ['null selects nothing', null, labels, false],
    ['undefined selects nothing', undefined, labels, false],
    ['{} selects everything', {}, labels, true],
    ['{} selects unlabelled pods', {}, undefined, true],
    ['matchLabels', { matchLabels: { app: 'web' } }, labels, true],
    ['matchLabels mismatch', { matchLabels: { app: 'db' } }, labels, false],
    ['In', { matchExpressions: [{ key: 'tier', operator: 'In', values: ['back', 'front'] }] }, labels, true],
    ['In on a missing key', { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, labels, false],
    ['NotIn on a missing key', { matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a'] }] }, labels, true],
    ['NotIn', { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] }, labels, false],
    ['Exists', { matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, labels, true],
    ['DoesNotExist', { matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, labels, false],
    ['labels AND expressions', { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }, labels, false],
  ])('label selector: %s', (_n, sel, l, want) => expect(labelSelectorMatches(sel, l)).toBe(want));

  const n = node('n1', { labels: { cores: '16', zone: 'a' } });
  it.each<[string, NodeSelectorTerm[], boolean]>([
    ['terms are ORed', [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }, { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }], true],
    ['requirements are ANDed', [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }, { key: 'gpu', operator: 'Exists' }] }], false],
    ['an empty term matches nothing', [{}], false],
    ['no terms match nothing', [], false],
    ['Gt', [{ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['8'] }] }], true],
    ['Lt', [{ matchExpressions: [{ key: 'cores', operator: 'Lt', values: ['8'] }] }], false],
    ['Gt on a non-integer label', [{ matchExpressions: [{ key: 'zone', operator: 'Gt', values: ['1'] }] }], false],
    ['matchFields metadata.name In', [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['n1'] }] }], true],
    ['matchFields metadata.name NotIn', [{ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['n1'] }] }], false],
    ['matchFields on another field', [{ matchFields: [{ key: 'spec.foo', operator: 'In', values: ['n1'] }] }], false],
  ])('node selector: %s', (_n, terms, want) => expect(nodeSelectorMatches({ nodeSelectorTerms: terms }, n)).toBe(want));

  const gpu: Taint = { key: 'gpu', value: 'yes', effect: 'NoSchedule' };
  it.each<[string, Taint[], Toleration[] | undefined, boolean]>([
    ['untolerated NoSchedule', [gpu], undefined, false],
    ['PreferNoSchedule is ignored', [{ key: 'x', effect: 'PreferNoSchedule' }], undefined, true],
    ['NoExecute must be tolerated', [{ key: 'x', effect: 'NoExecute' }], [{ key: 'x', operator: 'Exists', effect: 'NoSchedule' }], false],
    ['Exists with an empty key tolerates everything', [gpu, { key: 'x', effect: 'NoExecute' }], [{ operator: 'Exists' }], true],
    ['an empty effect matches every effect', [gpu], [{ key: 'gpu', value: 'yes' }], true],
    ['Equal compares values', [gpu], [{ key: 'gpu', operator: 'Equal', value: 'no' }], false],
    ['Exists ignores the value', [gpu], [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }], true],
  ])('taints: %s', (_n, taints, tolerations, allowed) => expect(untoleratedTaint(taints, tolerations) === undefined).toBe(allowed));

  it('adds the not-ready / unreachable NoSchedule taints a node carries when it is not Ready', () => {
    expect(nodeTaints(node('a', { ready: 'False' }))).toEqual([{ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }]);
    expect(nodeTaints(node('b', { ready: 'Unknown' }))).toEqual([{ key: 'node.kubernetes.io/unreachable', effect: 'NoSchedule' }]);
    expect(nodeTaints(node('c'))).toEqual([]);
  });
});

describe('quantities', () => {
  it.each<[string, string, number]>([
    ['cpu', '100m', 100], ['cpu', '1.5', 1500], ['cpu', '1.1', 1100], ['cpu', '2', 2000], ['cpu', '1u', 1], ['cpu', '0.0001', 1],
    ['memory', '2Gi', 2 * 1024 ** 3], ['memory', '500M', 500_000_000], ['memory', '1e3', 1000], ['memory', '1Ki', 1024],
    ['memory', '1.5Mi', 1.5 * 1024 ** 2], ['memory', '1E', 1e18], ['memory', '128974848', 128974848], ['memory', '1E3', 1000],
    ['memory', '0.5', 1], ['nvidia.com/gpu', '2', 2],
  ])('%s %s = %d', (res, text, want) => expect(resourceAmount(res, text)).toBe(want));

  it('parses base units and rejects what the API would', () => {
    expect(parseQuantity('250m')).toBe(0.25);
    expect(parseQuantity('-1k')).toBe(-1000);
    for (const bad of ['abc', '1Gb', '', '1.2.3', 'Mi']) expect(() => parseQuantity(bad), bad).toThrow(/invalid resource quantity/);
  });

  it('computes the pod request as the scheduler does: max(sum, init peak) + overhead, sidecars add up', () => {
    const req = (cpu: string, memory = '0') => ({ requests: { cpu, memory } });
    const r = podRequests({
      spec: {
        containers: [{ name: 'a', resources: req('200m', '100Mi') }, { name: 'b', resources: req('300m') }],
        initContainers: [{ name: 'big-init', resources: req('1', '50Mi') }, { name: 'sidecar', restartPolicy: 'Always', resources: req('100m', '10Mi') }, { name: 'late-init', resources: req('950m') }],
        overhead: { cpu: '10m' },
      },
    });
    // containers 500m + sidecar 100m = 600m; init peak = max(1000m, 100m, 950m + 100m sidecar) = 1050m.
    expect(r.get('cpu')).toBe(1050 + 10);
    expect(r.get('memory')).toBe(110 * 1024 ** 2);
    expect(podRequests({ spec: { containers: [{ name: 'x' }] } }).size).toBe(0);
  });
});

describe('filters (kubectl drain semantics)', () => {
  const ctx = (dss: string[] = []) => ({ daemonSetExists: (k: string) => dss.includes(k), now: NOW });
  const f = (o: Partial<FilterOptions> = {}): FilterOptions => ({ ...DEFAULT_FILTER_OPTIONS, ...o });
  const ds = pod('kube-system/ds-1', 'n1', { owner: 'DaemonSet' }); // its DaemonSet: kube-system/ds-rs
  const empty = pod('default/cache-0', 'n1', { spec: { volumes: [{ name: 'tmp', emptyDir: {} }] } });
  const bare = pod('default/bare', 'n1', { owner: null });
  const mirror = pod('kube-system/etcd-n1', 'n1', { owner: null, meta: { annotations: { 'kubernetes.io/config.mirror': 'x' } } });
  const deleting = (ago: number) => pod('default/old-0', 'n1', { meta: { deletionTimestamp: new Date(NOW.getTime() - ago * 1000).toISOString() } });
  type Case = [string, Pod, Partial<FilterOptions>, string[], string];
  it.each<Case>([
    ['DaemonSet pod refused without --ignore-daemonsets', ds, {}, ['kube-system/ds-rs'], 'refuse daemonset'],
    ['DaemonSet pod skipped with --ignore-daemonsets', ds, { ignoreDaemonSets: true }, ['kube-system/ds-rs'], 'skip'],
    ['orphaned DaemonSet pod refused without --force', ds, { ignoreDaemonSets: true }, [], 'refuse unmanaged'],
    ['orphaned DaemonSet pod deleted with --force', ds, { force: true }, [], 'evict warn'],
    ['mirror pod skipped, even without --force', mirror, {}, [], 'skip'],
    ['emptyDir refused without --delete-emptydir-data', empty, {}, [], 'refuse emptydir'],
    ['emptyDir evicted with --delete-emptydir-data', empty, { deleteEmptyDirData: true }, [], 'evict warn'],
    ['unmanaged refused without --force', bare, {}, [], 'refuse unmanaged'],
    ['unmanaged deleted with --force', bare, { force: true }, [], 'evict warn'],
    ['finished unmanaged pod with emptyDir always evictable', pod('default/done', 'n1', { owner: null, phase: 'Succeeded', spec: { volumes: [{ name: 'x', emptyDir: {} }] } }), {}, [], 'evict'],
    ['finished DaemonSet pod always evictable', pod('kube-system/ds-2', 'n1', { owner: 'DaemonSet', phase: 'Failed' }), {}, ['kube-system/ds-rs'], 'evict'],
    ['deleting pod older than the timeout skipped', deleting(120), { skipWaitForDeleteTimeoutSeconds: 60 }, [], 'skip'],
    ['deleting pod younger than the timeout evicted', deleting(30), { skipWaitForDeleteTimeoutSeconds: 60 }, [], 'evict'],
    ['deleting pod evicted when the timeout is 0', deleting(9999), {}, [], 'evict'],
  ])('%s', (_n, p, o, dss, want) => {
    const v = filterPod(p, f(o), ctx(dss));
    const got = v.action === 'refuse' ? `refuse ${v.kind}` : v.action === 'evict' && v.warning ? 'evict warn' : v.action;
    expect(got).toBe(want);
  });

  it('partitions and sorts; warnings add up across filters', () => {
    const both = pod('default/a-bare', 'n1', { owner: null, spec: { volumes: [{ name: 'x', emptyDir: {} }] } });
    const r = filterPods([empty, bare, both, mirror], f({ force: true, deleteEmptyDirData: true }), ctx());
    expect(r.evict.map((v) => v.pod.metadata.name)).toEqual(['a-bare', 'bare', 'cache-0']);
    expect(r.evict[0]?.warning).toMatch(/emptyDir.*; not managed/);
    expect(r.skip.map((v) => v.pod.metadata.name)).toEqual(['etcd-n1']);
    expect(r.refuse).toEqual([]);
  });
});

describe('preflight: filters, plan and warnings', () => {
  it('turns refusals into blockers named after the flag that would allow them', () => {
    const s = cluster([node('n1'), node('n2')], [pod('kube-system/ds-1', 'n1', { owner: 'DaemonSet' }), pod('default/cache-0', 'n1', { spec: { volumes: [{ name: 'tmp', emptyDir: {} }] } }), pod('default/bare', 'n1', { owner: null })], { daemonSets: new Set(['kube-system/ds-rs']) });
    const r = preflight(s, ['n1'], opts());
    expect(kinds(r)).toEqual(['unmanaged pod/default/bare', 'emptydir pod/default/cache-0', 'daemonset pod/kube-system/ds-1']);
    expect(r.blockers.map((b) => b.fix)).toEqual(['drain with --force (the pod is lost)', 'drain with --delete-emptydir-data', 'drain with --ignore-daemonsets']);
    const ok = preflight(s, ['n1'], opts({ force: true, deleteEmptyDirData: true, ignoreDaemonSets: true }));
    expect(ok.blockers).toEqual([]);
    expect(ok.nodes).toEqual([{ node: 'n1', evict: ['default/bare', 'default/cache-0'], skip: [{ pod: 'kube-system/ds-1', reason: expect.stringMatching(/DaemonSet/) }] }]);
    expect(warnKinds(ok)).toEqual(['pod-skipped pod/kube-system/ds-1', 'pod-deleted pod/default/bare', 'emptydir-data-lost pod/default/cache-0']);
  });

  it('leaves pods outside --pod-selector alone, refusals included', () => {
    const s = cluster([node('n1'), node('n2')], [pod('default/bare', 'n1', { owner: null }), pod('default/web-0', 'n1')]);
    const r = preflight(s, ['n1'], opts({ podSelector: { matchLabels: { app: 'web' } } }));
    expect(r.blockers).toEqual([]);
    expect(r.nodes[0]).toEqual({ node: 'n1', evict: ['default/web-0'], skip: [{ pod: 'default/bare', reason: 'not selected by the pod selector app=web' }] });
  });

  it('does not crash on unknown nodes, returns JSON-safe data and leaves the state untouched', () => {
    const s = cluster([node('n1'), node('n2')], replicas('web', ['n1', 'n2']), { pdbs: [pdb('web', { matchLabels: { app: 'web' } }, { allowed: 1, current: 2, desired: 1, expected: 2 })] });
    const before = structuredClone(s);
    const r = preflight(s, ['nope', 'n1'], opts());
    expect(r.nodes.map((n) => n.node)).toEqual(['nope', 'n1']);
    expect(r.nodes[0]).toEqual({ node: 'nope', evict: [], skip: [] });
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    expect(s).toEqual(before);
  });
});

describe('preflight: scheduling replacements', () => {
  it('places replacements greedily: ten pods that fit alone but not together', () => {
    const busy = pod('default/other', 'n2', { cpu: '1' }); // n2: 4 cpu, 1 used, room for 6 x 500m
    const s = cluster([node('n1'), node('n2')], [...replicas('web', Array(10).fill('n1'), { cpu: '500m' }), busy]);
    const r = preflight(s, ['n1'], opts());
    expect(r.blockers.map((b) => b.kind)).toEqual(Array(4).fill('unschedulable'));
    expect(r.blockers[0]?.message).toBe('no node can take its replacement: 0/2 nodes are available: 1 Insufficient cpu, 1 node(s) are being drained.');
    expect(r.blockers[0]?.fix).toMatch(/add capacity or lower the pod's requests \(cpu 500m\)/);
    // Any one of them alone fits.
    expect(preflight(cluster(s.nodes, [...replicas('web', ['n1'], { cpu: '500m' }), busy]), ['n1'], opts()).blockers).toEqual([]);
  });

  it('hostname anti-affinity: 3 replicas on 3 nodes, drain one -> nowhere to go; a 4th node fixes it', () => {
    const pods = replicas('web', ['n1', 'n2', 'n3'], { spec: hostAnti('web') });
    const r = preflight(cluster([node('n1'), node('n2'), node('n3')], pods), ['n1'], opts());
    expect(kinds(r)).toEqual(['unschedulable pod/default/web-0']);
    expect(r.blockers[0]?.message).toMatch(/0\/3 nodes are available: 2 node\(s\) didn't match pod anti-affinity rules, 1 node\(s\) are being drained/);
    expect(r.blockers[0]?.fix).toMatch(/kubernetes.io\/hostname/);
    expect(preflight(cluster([node('n1'), node('n2'), node('n3'), node('n4')], pods), ['n1'], opts()).blockers).toEqual([]);
    // Two drained nodes, one spare: the first replacement takes it, the second has nowhere to go.
    expect(kinds(preflight(cluster([node('n1'), node('n2'), node('n3'), node('n4')], pods), ['n1', 'n2'], opts()))).toEqual(['unschedulable pod/default/web-1']);
  });

  it("respects existing pods' anti-affinity against the replacement", () => {
    const loner = pod('default/loner', 'n2', { spec: { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'web' } }, topologyKey: 'kubernetes.io/hostname' }] } } } });
    const r = preflight(cluster([node('n1'), node('n2')], [pod('default/web-0', 'n1'), loner]), ['n1'], opts());
    expect(r.blockers[0]?.message).toMatch(/1 node\(s\) didn't satisfy existing pods anti-affinity rules/);
  });

  it('zone anti-affinity: the evicted pod no longer holds its zone; terms can name other namespaces', () => {
    const zoneAnti = (term: Partial<PodAffinityTerm>): Partial<Pod['spec']> => ({ affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'zone', ...term }] } } });
    const nodes = [node('n1', { labels: { zone: 'a' } }), node('n2', { labels: { zone: 'a' } }), node('n3', { labels: { zone: 'b' } })];
    const same = zoneAnti({ labelSelector: { matchLabels: { app: 'web' } } });
    expect(preflight(cluster(nodes, [pod('default/web-0', 'n1', { spec: same }), pod('default/web-1', 'n3', { spec: same })]), ['n1'], opts()).blockers).toEqual([]);
    // Against pods of another namespace, listed by name: "batch" runs in zone a, so only zone b is left.
    const other = zoneAnti({ labelSelector: { matchLabels: { app: 'etl' } }, namespaces: ['batch'] });
    const r = preflight(cluster(nodes, [pod('default/web-0', 'n1', { spec: other }), pod('batch/etl-0', 'n2'), pod('default/etl-0', 'n3', { cpu: '4' })]), ['n1'], opts());
    expect(r.blockers[0]?.message).toMatch(/1 Insufficient cpu, 1 node\(s\) are being drained, 1 node\(s\) didn't match pod anti-affinity rules/);
    // An existing pod's expression-only term keeps the replacement out of its zone.
    const guard = pod('ops/guard', 'n3', { spec: zoneAnti({ labelSelector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web'] }] }, namespaceSelector: {} }) });
    expect(preflight(cluster(nodes, [pod('default/web-0', 'n1'), guard], {}), ['n1', 'n2'], opts()).blockers[0]?.message).toMatch(/0\/3 nodes are available: 2 node\(s\) are being drained, 1 node\(s\) didn't satisfy existing pods anti-affinity rules\./);
  });

  it('pod affinity follows the pods it must join, across namespaces chosen by a namespaceSelector', () => {
    const term: PodAffinityTerm = { labelSelector: { matchLabels: { app: 'db' } }, namespaceSelector: { matchLabels: { team: 'data' } }, topologyKey: 'zone' };
    const nodes = [node('n1', { labels: { zone: 'a' } }), node('n2', { labels: { zone: 'a' } }), node('n3', { labels: { zone: 'b' } })];
    const pods = [pod('default/app-0', 'n1', { spec: { affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } } } }), pod('data/db-0', 'n3')];
    const ns = (team: string) => ({ namespaceLabels: new Map([['data', { team }]]) });
    expect(preflight(cluster(nodes, pods, ns('data')), ['n1'], opts()).blockers).toEqual([]);
    const r = preflight(cluster(nodes, pods, ns('other')), ['n1'], opts());
    // No pod matches the term anywhere and app-0 does not match it itself: nowhere qualifies.
    expect(r.blockers[0]?.message).toMatch(/2 node\(s\) didn't match pod affinity rules/);
    const cordonedB = [nodes[0]!, nodes[1]!, node('n3', { labels: { zone: 'b' }, cordoned: true })];
    expect(preflight(cluster(cordonedB, pods, ns('data')), ['n1'], opts()).blockers[0]?.message).toMatch(/0\/3 nodes are available: 1 node\(s\) are being drained, 1 node\(s\) didn't match pod affinity rules, 1 node\(s\) were unschedulable\./);
  });

  type Case = [string, Node[], Partial<Pod['spec']>, RegExp | null, RegExp?];
  it.each<Case>([
    ['nodeSelector', [node('n2'), node('n3')], { nodeSelector: { disk: 'ssd' } }, /2 node\(s\) didn't match Pod's node affinity\/selector/, /relax nodeSelector disk=ssd/],
    ['nodeSelector satisfied', [node('n2', { labels: { disk: 'ssd' } })], { nodeSelector: { disk: 'ssd' } }, null],
    ['required node affinity Gt', [node('n2', { labels: { cores: '4' } })], { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'cores', operator: 'Gt', values: ['8'] }] }] } } } }, /didn't match Pod's node affinity/],
    ['untolerated taint', [node('n2', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] })], {}, /1 node\(s\) had untolerated taint \{dedicated: gpu\}/, /tolerate or remove the taint dedicated=gpu:NoSchedule/],
    ['tolerated taint', [node('n2', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] })], { tolerations: [{ key: 'dedicated', operator: 'Exists' }] }, null],
    ['not-ready node', [node('n2', { ready: 'False' })], {}, /untolerated taint \{node.kubernetes.io\/not-ready: \}/],
    ['cordoned node', [node('n2', { cordoned: true })], {}, /1 node\(s\) were unschedulable/, /uncordon a node/],
    ['cordoned node, unschedulable taint tolerated', [node('n2', { cordoned: true })], { tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists' }] }, null],
    ['pod count', [node('n2', { pods: '0' })], {}, /1 Too many pods/],
    ['memory', [node('n2', { memory: '1Gi' })], { containers: [{ name: 'c', resources: { requests: { memory: '2Gi' } } }] }, /1 Insufficient memory/, /memory 2Gi/],
    ['extended resource the node lacks', [node('n2')], { containers: [{ name: 'c', resources: { requests: { 'nvidia.com/gpu': '1' } } }] }, /1 Insufficient nvidia.com\/gpu/],
    ['no other node', [], {}, /0\/1 nodes are available: 1 node\(s\) are being drained\./, /add a node/],
  ])('%s', (_n, others, spec, message, fix) => {
    const r = preflight(cluster([node('n1'), ...others], [pod('default/web-0', 'n1', { spec })]), ['n1'], opts());
    if (message === null) return expect(r.blockers).toEqual([]);
    expect(kinds(r)).toEqual(['unschedulable pod/default/web-0']);
    expect(r.blockers[0]?.message).toMatch(message);
    if (fix) expect(r.blockers[0]?.fix).toMatch(fix);
  });

  it('follows PersistentVolume node affinity; a volume only the drained node can mount blocks as local-volume', () => {
    const zoneA = (name: string, only?: string) => ({
      metadata: { name },
      spec: { ...(only ? { local: { path: '/mnt/disk' } } : {}), nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: only ? [{ key: 'kubernetes.io/hostname', operator: 'In' as const, values: [only] }] : [{ key: 'zone', operator: 'In' as const, values: ['a'] }] }] } } },
    });
    const claim = { metadata: { name: 'data-db-0', namespace: 'default' }, spec: { volumeName: 'pv-1' } };
    const db = pod('default/db-0', 'n1', { owner: 'StatefulSet', spec: { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-db-0' } }] } });
    const nodes = [node('n1', { labels: { zone: 'a' } }), node('n2', { labels: { zone: 'a' } }), node('n3', { labels: { zone: 'b' } })];
    expect(preflight(cluster(nodes, [db], { pvcs: [claim], pvs: [zoneA('pv-1')] }), ['n1'], opts()).blockers).toEqual([]);
    const zoneDrained = preflight(cluster(nodes, [db], { pvcs: [claim], pvs: [zoneA('pv-1')] }), ['n1', 'n2'], opts());
    expect(zoneDrained.blockers[0]?.message).toMatch(/1 node\(s\) had volume node affinity conflict/);
    const local = preflight(cluster(nodes, [db], { pvcs: [claim], pvs: [zoneA('pv-1', 'n1')] }), ['n1'], opts());
    expect(kinds(local)).toEqual(['local-volume persistentvolume/pv-1']);
    expect(local.blockers[0]?.message).toMatch(/db-0 uses claim default\/data-db-0, bound to local volume pv-1 that only n1 can mount/);
  });
});

describe('preflight: disruption budgets', () => {
  const web = { matchLabels: { app: 'web' } };
  const three = (on: string[], o: PodOpts = {}) => replicas('web', on, o);

  it('maxUnavailable 1 over 3 replicas on 2 drained nodes with room elsewhere is not a blocker', () => {
    const s = cluster([node('n1'), node('n2'), node('n3')], three(['n1', 'n1', 'n2']), { pdbs: [pdb('web', web, { allowed: 1, current: 3, desired: 2, expected: 3 }, { maxUnavailable: 1 })] });
    const r = preflight(s, ['n1', 'n2'], opts());
    expect(r.blockers).toEqual([]);
    expect(r.nodes.map((n) => n.evict)).toEqual([['default/web-0', 'default/web-1'], ['default/web-2']]);
  });

  it('minAvailable == replicas blocks now, naming the budget and its counts', () => {
    const s = cluster([node('n1'), node('n2'), node('n3')], three(['n1', 'n2', 'n3']), { pdbs: [pdb('web', web, { allowed: 0, current: 3, desired: 3, expected: 3 }, { minAvailable: 3 })] });
    const r = preflight(s, ['n1'], opts());
    expect(kinds(r)).toEqual(['pdb-exhausted poddisruptionbudget/default/web']);
    expect(r.blockers[0]).toMatchObject({ node: 'n1', pods: ['default/web-0'] });
    expect(r.blockers[0]?.message).toMatch(/currentHealthy 3, desiredHealthy 3, expectedPods 3; minAvailable 3/);
    // Deletes ignore budgets: the finding stays as a warning.
    const del = preflight(s, ['n1'], opts({ disableEviction: true }));
    expect(del.blockers).toEqual([]);
    expect(warnKinds(del)).toEqual(['pdb-bypassed poddisruptionbudget/default/web']);
  });

  it('pods that do not come back spend the budget for good: pdb-insufficient names the stranded pods', () => {
    // Bare pods deleted with --force: the first spends the only disruption, the second is stuck.
    const s = cluster([node('n1'), node('n2'), node('n3')], [...three(['n1', 'n2', 'n3'], { owner: null })], { pdbs: [pdb('web', web, { allowed: 1, current: 3, desired: 2, expected: 3 })] });
    const r = preflight(s, ['n1', 'n2'], opts({ force: true }));
    expect(kinds(r)).toEqual(['pdb-insufficient poddisruptionbudget/default/web']);
    expect(r.blockers[0]).toMatchObject({ node: 'n2', pods: ['default/web-1'] });
    expect(r.blockers[0]?.message).toMatch(/spent for good by default\/web-0 \(not recreated\)/);
    // Unschedulable replacements spend it too (anti-affinity: the spare node takes only one).
    const anti = cluster([node('n1'), node('n2'), node('n3'), node('n4')], three(['n1', 'n2', 'n3'], { spec: hostAnti('web') }), { pdbs: [pdb('web', web, { allowed: 1, current: 3, desired: 2, expected: 3 })] });
    const r2 = preflight(anti, ['n1', 'n2', 'n3'], opts());
    expect(kinds(r2)).toEqual(['unschedulable pod/default/web-1', 'unschedulable pod/default/web-2', 'pdb-insufficient poddisruptionbudget/default/web']);
    expect(r2.blockers[2]).toMatchObject({ node: 'n3', pods: ['default/web-2'] });
    expect(r2.blockers[2]?.message).toMatch(/spent for good by default\/web-1 \(its replacement cannot be scheduled\)/);
  });

  it('a pod covered by two budgets cannot be evicted; Pending pods bypass budgets', () => {
    const pdbs = [pdb('a', web, { allowed: 1, current: 1, desired: 0, expected: 1 }), pdb('b', {}, { allowed: 1, current: 1, desired: 0, expected: 1 })];
    const r = preflight(cluster([node('n1'), node('n2')], [pod('default/web-0', 'n1')], { pdbs }), ['n1'], opts());
    expect(kinds(r)).toEqual(['multiple-pdbs pod/default/web-0']);
    expect(r.blockers[0]?.message).toMatch(/2 PodDisruptionBudgets \(a, b\)/);
    expect(preflight(cluster([node('n1'), node('n2')], [pod('default/web-0', 'n1', { phase: 'Pending', ready: false })], { pdbs }), ['n1'], opts()).blockers).toEqual([]);
    expect(warnKinds(preflight(cluster([node('n1'), node('n2')], [pod('default/web-0', 'n1')], { pdbs }), ['n1'], opts({ disableEviction: true })))).toEqual(['pdb-bypassed pod/default/web-0']);
  });

  it('a null budget selector covers nothing', () => {
    const s = cluster([node('n1'), node('n2')], [pod('default/web-0', 'n1')], { pdbs: [pdb('none', null, { allowed: 0, current: 0, desired: 0, expected: 0 })] });
    expect(preflight(s, ['n1'], opts()).blockers).toEqual([]);
  });

  type Case = [string, PodDisruptionBudget['spec']['unhealthyPodEvictionPolicy'], { current: number; desired: number }, string[]];
  it.each<Case>([
    ['IfHealthyBudget below its goal refuses an unready pod', 'IfHealthyBudget', { current: 1, desired: 2 }, ['pdb-unhealthy poddisruptionbudget/default/web']],
    ['the default policy is IfHealthyBudget', undefined, { current: 1, desired: 2 }, ['pdb-unhealthy poddisruptionbudget/default/web']],
    ['IfHealthyBudget at its goal lets an unready pod go', 'IfHealthyBudget', { current: 2, desired: 2 }, []],
    ['AlwaysAllow lets an unready pod go', 'AlwaysAllow', { current: 1, desired: 2 }, []],
  ])('%s', (_n, policy, st, want) => {
    const pods = [pod('default/web-0', 'n1', { ready: false }), pod('default/web-1', 'n2'), pod('default/web-2', 'n3')];
    const spec = policy ? { minAvailable: 2, unhealthyPodEvictionPolicy: policy } : { minAvailable: 2 };
    const s = cluster([node('n1'), node('n2'), node('n3'), node('n4')], pods, { pdbs: [pdb('web', web, { allowed: 0, ...st, expected: 3 }, spec)] });
    expect(kinds(preflight(s, ['n1'], opts()))).toEqual(want);
  });

  it('warns about a stale budget status', () => {
    const s = cluster([node('n1'), node('n2')], [pod('default/web-0', 'n1')], { pdbs: [pdb('web', web, { allowed: 1, current: 1, desired: 0, expected: 1 }, {}, { generation: 3, observed: 2 })] });
    const r = preflight(s, ['n1'], opts());
    expect(r.blockers).toEqual([]);
    expect(warnKinds(r)).toEqual(['pdb-stale poddisruptionbudget/default/web']);
    expect(r.warnings[0]?.message).toMatch(/observedGeneration 2 < generation 3/);
  });
});
