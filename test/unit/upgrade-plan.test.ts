import { describe, expect, it } from 'vitest';
import { NotFoundError, UsageError } from '../../src/cli/errors.js';
import { renderUpgradePlan } from '../../src/cli/upgrade-plan-report.js';
import { DEFAULT_FILTER_OPTIONS } from '../../src/drain/filters.js';
import type { ClusterState, Node, Pod, PodDisruptionBudget } from '../../src/drain/types.js';
import { parseLabelSelector } from '../../src/kube/label-selector.js';
import { batchSize, buildPlan, parseMaxUnavailable, roleOf, type PlanOptions, type UpgradePlan } from '../../src/upgrade/plan.js';
import { checkTarget, parseKubeVersion, parseTargetVersion } from '../../src/upgrade/skew.js';

const NOW = new Date('2026-05-01T12:00:00Z');

interface NodeOpts { cp?: boolean; master?: boolean; version?: string; ready?: boolean; cordoned?: boolean; labels?: Record<string, string> }
function node(name: string, o: NodeOpts = {}): Node {
  return {
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        ...(o.cp ? { 'node-role.kubernetes.io/control-plane': '' } : {}),
        ...(o.master ? { 'node-role.kubernetes.io/master': '' } : {}),
        ...o.labels,
      },
    },
    spec: { ...(o.cordoned ? { unschedulable: true } : {}), ...(o.cp || o.master ? { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' as const }] } : {}) },
    status: {
      allocatable: { cpu: '4', memory: '8Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
      nodeInfo: { kubeletVersion: o.version ?? 'v1.35.2' },
    },
  };
}

function pod(key: string, nodeName: string, o: { owner?: string | null; nodeSelector?: Record<string, string> } = {}): Pod {
  const [namespace = '', name = ''] = key.split('/');
  const app = name.replace(/-\d+$/, '');
  const owner = o.owner === undefined ? 'ReplicaSet' : o.owner;
  return {
    metadata: { name, namespace, labels: { app }, ...(owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: owner, name: `${app}-x`, uid: 'u', controller: true }] } : {}) },
    spec: { nodeName, containers: [{ name: 'c', resources: { requests: { cpu: '100m' } } }], ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}) },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

function pdb(name: string, app: string, allowed: number, healthy: number): PodDisruptionBudget {
  return {
    metadata: { name, namespace: 'default', generation: 1 },
    spec: { selector: { matchLabels: { app } }, minAvailable: healthy - allowed },
    status: { observedGeneration: 1, disruptionsAllowed: allowed, currentHealthy: healthy, desiredHealthy: healthy - allowed, expectedPods: healthy },
  };
}

function cluster(nodes: Node[], pods: Pod[] = [], extra: Partial<ClusterState> = {}): ClusterState {
  return { nodes, pods, pdbs: [], pvcs: [], pvs: [], daemonSets: new Set(), namespaceLabels: new Map(), ...extra };
}

type Opts = Partial<Omit<PlanOptions, 'target' | 'maxUnavailable' | 'nodeSelector'>> & { to?: string; maxUnavailable?: string; selector?: string };
function plan(state: ClusterState, o: Opts = {}, apiServer = 'v1.36.3'): UpgradePlan {
  const { to = 'v1.36.3', maxUnavailable = '1', selector, ...rest } = o;
  return buildPlan(
    { apiServerVersion: apiServer, state },
    {
      ...DEFAULT_FILTER_OPTIONS,
      ignoreDaemonSets: true,
      allowNotReady: false,
      now: NOW,
      ...rest,
      target: parseTargetVersion(to),
      maxUnavailable: parseMaxUnavailable(maxUnavailable),
      nodeSelector: selector ? parseLabelSelector(selector) : undefined,
    },
  );
}

/** "1:cp-a 2:w1,w2 3:w3": the run order at a glance. */
const order = (p: UpgradePlan) => p.steps.map((s) => `${s.step}:${s.nodes.map((n) => n.node).join(',')}`).join(' ');
const rules = (p: UpgradePlan) => p.skew.map((f) => `${f.rule}${f.node ? ` ${f.node}` : ''}${f.step ? ` @${f.step}` : ''}`);

/** One control-plane node and four workers, all at v1.35.2 (the e2e's shape). */
const standard = (version = 'v1.35.2') => [node('cp-a', { cp: true, version }), ...['w1', 'w2', 'w3', 'w4'].map((n) => node(n, { version }))];

describe('versions', () => {
  it.each(['v1.36.3', '1.36.3', ' v1.36.3 ', 'v1.36.3+k3s1', 'v1.37.0-rc.1'])('%j is a target', (text) => {
    expect(parseTargetVersion(text).major).toBe(1);
  });

  it.each(['1.36', 'v1', 'latest', '', 'v1.36.x', 'kwok-v0.7.0'])('%j is a usage error', (text) => {
    expect(() => parseTargetVersion(text)).toThrow(UsageError);
    expect(() => parseTargetVersion(text)).toThrow(/full Kubernetes version such as v1.36.3/);
  });
});

describe('skew rules for the target', () => {
  it.each<[string, string, string, RegExp | undefined]>([
    ['same version', 'v1.36.3', 'v1.36.3', undefined],
    ['a patch release', 'v1.36.3', 'v1.36.4', undefined],
    ['the next minor', 'v1.36.3', 'v1.37.0', undefined],
    ['a release candidate of the next minor', 'v1.36.3', 'v1.37.0-rc.1', undefined],
    ['the release after its candidate', 'v1.37.0-rc.1', 'v1.37.0', undefined],
    ['build metadata is not a version', 'v1.36.3+k3s1', 'v1.36.3', undefined],
    ['one minor skipped', 'v1.36.3', 'v1.38.0', /^minor-skipped: The target v1.38.0 skips minor version v1.37: .* Upgrade to v1.37.x first, then plan v1.38.0.$/],
    ['two minors skipped', 'v1.36.3', 'v1.39.1', /skips minor versions v1.37 to v1.38/],
    ['an older minor', 'v1.36.3', 'v1.34.0', /^downgrade: The target v1.34.0 is older than the API server \(v1.36.3\): downgrades are refused/],
    ['an older patch', 'v1.36.3', 'v1.36.2', /^downgrade:/],
    ['a new major', 'v1.36.3', 'v2.0.0', /^major-version: .* Upgrade to v1.37.x next.$/],
  ])('%s: %s -> %s', (_name, api, to, want) => {
    const findings = checkTarget(parseKubeVersion(api)!, parseTargetVersion(to));
    if (!want) expect(findings).toEqual([]);
    else expect(findings.map((f) => `${f.rule}: ${f.message} ${f.fix}`)).toEqual([expect.stringMatching(want)]);
  });

  it('a refused target plans nothing and blocks', () => {
    const p = plan(cluster(standard()), { to: 'v1.38.0' });
    expect(p.outcome).toBe('blocked');
    expect(rules(p)).toEqual(['minor-skipped']);
    expect(p.steps).toEqual([]);
    expect(renderUpgradePlan(p)).toMatch(/SKEW: 1 violation\(s\); nothing was changed[\s\S]*minor-skipped/);
  });

  it('an API server version that does not parse blocks', () => {
    const p = plan(cluster(standard()), {}, 'unknown');
    expect(rules(p)).toEqual(['unknown-version']);
    expect(p.outcome).toBe('blocked');
  });
});

describe('skew rules step by step', () => {
  it.each<[string, Node[], Opts, string, string[]]>([
    ['control plane and workers to the next minor', standard('v1.36.3'), { to: 'v1.37.0' }, 'v1.36.3', []],
    [
      'workers ahead of a control plane left out',
      standard('v1.36.3'),
      { to: 'v1.37.0', selector: '!node-role.kubernetes.io/control-plane', maxUnavailable: '2' },
      'v1.36.3',
      ['kubelet-newer-than-apiserver w1 @1', 'kubelet-newer-than-apiserver w2 @1', 'kubelet-newer-than-apiserver w3 @2', 'kubelet-newer-than-apiserver w4 @2'],
    ],
    ['workers to a patch release without the control plane', standard('v1.36.3'), { to: 'v1.36.4', nodes: ['w1'] }, 'v1.36.3', []],
    ['no control-plane node registered', [node('w1', { version: 'v1.36.3' })], { to: 'v1.37.0' }, 'v1.36.3', ['kubelet-newer-than-apiserver w1 @1']],
    [
      'a worker left out falls 4 minors behind',
      [node('cp-a', { cp: true, version: 'v1.36.3' }), node('w1', { version: 'v1.33.5' }), node('w2', { version: 'v1.36.3' })],
      { to: 'v1.37.0', nodes: ['cp-a', 'w2'] },
      'v1.36.3',
      ['kubelet-too-old w1 @1'],
    ],
    [
      'a worker planned late falls 4 minors behind until its step',
      [node('cp-a', { cp: true, version: 'v1.36.3' }), node('w1', { version: 'v1.33.5' })],
      { to: 'v1.37.0' },
      'v1.36.3',
      ['kubelet-too-old w1 @1'],
    ],
    ['a worker 3 minors behind is fine', [node('cp-a', { cp: true, version: 'v1.36.3' }), node('w1', { version: 'v1.34.0' })], { to: 'v1.37.0', nodes: ['cp-a'] }, 'v1.36.3', []],
    ['the master label counts as control plane', [node('m', { master: true, version: 'v1.36.3' }), node('w1', { version: 'v1.36.3' })], { to: 'v1.37.0' }, 'v1.36.3', []],
    [
      'a control-plane node already at the target counts as upgraded',
      [node('cp-a', { cp: true, version: 'v1.37.0' }), node('cp-b', { cp: true, version: 'v1.36.3' }), node('w1', { version: 'v1.36.3' })],
      { to: 'v1.37.0' },
      'v1.36.3',
      [],
    ],
    ['a kubelet that does not parse, in scope', [node('cp-a', { cp: true }), node('w1', { version: 'kwok' })], {}, 'v1.36.3', ['unknown-version w1']],
    ['a kubelet that does not parse, out of scope', [node('cp-a', { cp: true }), node('w1', { version: 'kwok' })], { nodes: ['cp-a'] }, 'v1.36.3', []],
  ])('%s', (_name, nodes, o, api, want) => {
    expect(rules(plan(cluster(nodes), o, api))).toEqual(want);
  });

  it('names the control-plane nodes left out and what to do', () => {
    const p = plan(cluster(standard('v1.36.3')), { to: 'v1.37.0', nodes: ['w1'] });
    expect(p.skew[0]?.message).toBe('Node w1 would run kubelet v1.37.0 from step 1 while the API server on cp-a (not in this plan) is still at v1.36.3: a kubelet must never be newer than the API server.');
    expect(p.skew[0]?.fix).toMatch(/add cp-a to the plan \(control-plane nodes go first\)/);
  });

  it('says how long a planned node is too far behind, and to upgrade it first', () => {
    const p = plan(cluster([node('cp-a', { cp: true, version: 'v1.36.3' }), node('w0', { version: 'v1.36.3' }), node('w1', { version: 'v1.33.5' })]), { to: 'v1.37.0' });
    expect(order(p)).toBe('1:cp-a 2:w0 3:w1');
    expect(p.skew[0]?.message).toMatch(/^Node w1 runs kubelet v1.33.5: once the API server is at v1.37.0 \(step 1\) it is 4 minor versions behind, until its own upgrade at step 3; at most 3/);
    expect(p.skew[0]?.fix).toBe('Upgrade w1 to v1.36.x (the API server\'s version now) first, then plan v1.37.0.');
  });

  it('warns about a cluster outside the policy already, without blocking what does not make it worse', () => {
    const p = plan(cluster([node('cp-a', { cp: true, version: 'v1.36.3' }), node('old', { version: 'v1.32.0' }), node('new', { version: 'v1.37.1' }), node('w1')]), { nodes: ['w1'] });
    expect(p.skew).toEqual([]);
    expect(p.outcome).toBe('ok');
    expect(p.warnings.map((w) => `${w.kind} ${w.node}`)).toEqual(['kubelet-too-old old', 'kubelet-newer-than-apiserver new']);
  });
});

describe('order and batches', () => {
  it('control-plane nodes one at a time by name, then workers in batches of --max-unavailable', () => {
    const nodes = [node('w3'), node('cp-b', { cp: true }), node('w1'), node('cp-a', { cp: true }), node('w2'), node('w4'), node('w5')];
    const p = plan(cluster(nodes), { maxUnavailable: '2' });
    expect(order(p)).toBe('1:cp-a 2:cp-b 3:w1,w2 4:w3,w4 5:w5');
    expect(p.steps.map((s) => `${s.role} ${s.batch}/${s.of}`)).toEqual(['control-plane 1/2', 'control-plane 2/2', 'worker 1/3', 'worker 2/3', 'worker 3/3']);
    expect(p.steps[2]?.nodes[0]).toEqual({ node: 'w1', role: 'worker', from: 'v1.35.2', to: 'v1.36.3', ready: true, cordoned: false, status: 'upgrade' });
    expect(p.outcome).toBe('ok');
  });

  it('skips nodes at the target and leaves newer ones alone', () => {
    const p = plan(cluster([node('cp-a', { cp: true }), node('w1', { version: 'v1.36.3' }), node('w2'), node('w3', { version: 'v1.36.4' })]), {});
    expect(order(p)).toBe('1:cp-a 2:w2');
    expect(p.skipped).toEqual([
      { node: 'w1', role: 'worker', version: 'v1.36.3', reason: 'at-target' },
      { node: 'w3', role: 'worker', version: 'v1.36.4', reason: 'newer-than-target' },
    ]);
    expect(p.warnings.map((w) => w.kind)).toContain('newer-than-target');
    expect(renderUpgradePlan(p)).toMatch(/w1\s+worker\s+v1.36.3\s+skipped: already at the target/);
  });

  it('nothing to do when every node in scope runs the target', () => {
    const p = plan(cluster(standard('v1.36.3')), {});
    expect(p.outcome).toBe('nothing-to-do');
    expect(p.steps).toEqual([]);
    expect(p.skipped).toHaveLength(5);
    expect(renderUpgradePlan(p)).toMatch(/Nothing to do: every node in scope already runs v1.36.3/);
  });

  it.each<[string, number, number]>([
    ['1', 5, 1],
    ['3', 5, 3],
    ['25%', 8, 2],
    ['30%', 8, 2],
    ['10%', 5, 1],
    ['100%', 3, 3],
    ['50%', 0, 1],
  ])('--max-unavailable %s of %d workers: %d per batch', (text, workers, want) => {
    expect(batchSize(parseMaxUnavailable(text), workers)).toBe(want);
  });

  it.each(['0', '0%', '101%', 'abc', '-1', '1.5', '2 %', ''])('--max-unavailable %j is a usage error', (text) => {
    expect(() => parseMaxUnavailable(text)).toThrow(UsageError);
  });

  it('a percentage counts the workers in scope, those at the target included', () => {
    const nodes = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8'].map((n, i) => node(n, { version: i < 4 ? 'v1.36.3' : 'v1.35.2' }));
    const p = plan(cluster(nodes), { maxUnavailable: '50%' });
    expect(p.maxUnavailable).toBe(4);
    expect(order(p)).toBe('1:w5,w6,w7,w8');
  });
});

describe('scope', () => {
  const nodes = [node('cp-a', { cp: true, labels: { pool: 'a' } }), node('w1', { labels: { pool: 'a' } }), node('w2', { labels: { pool: 'b' } }), node('w3', { labels: { pool: 'a' } })];

  it('--node-selector limits the plan', () => {
    expect(order(plan(cluster(nodes), { selector: 'pool=a', maxUnavailable: '2' }))).toBe('1:cp-a 2:w1,w3');
    expect(order(plan(cluster(nodes), { selector: 'pool in (b)' }))).toBe('1:w2');
  });

  it('named nodes: control plane first, workers in the order given', () => {
    expect(order(plan(cluster(nodes), { nodes: ['w3', 'w1', 'cp-a', 'w3'] }))).toBe('1:cp-a 2:w3 3:w1');
  });

  it('an unknown node is not found (exit 4) and named', () => {
    expect(() => plan(cluster(nodes), { nodes: ['w1', 'nope', 'gone'] })).toThrow(NotFoundError);
    expect(() => plan(cluster(nodes), { nodes: ['w1', 'nope', 'gone'] })).toThrow('Nodes not found: nope, gone.');
  });

  it('a selector that matches nothing is not found; names and a selector together are a usage error', () => {
    expect(() => plan(cluster(nodes), { selector: 'pool=z' })).toThrow(/No node matches the selector pool in \(z\)/);
    expect(() => plan(cluster(nodes), { selector: 'pool=a', nodes: ['w1'] })).toThrow(UsageError);
  });

  it('roles come from the control-plane and master labels', () => {
    expect([node('a', { cp: true }), node('b', { master: true }), node('c')].map(roleOf)).toEqual(['control-plane', 'control-plane', 'worker']);
  });
});

describe('readiness', () => {
  const nodes = [node('cp-a', { cp: true }), node('w1', { ready: false }), node('w2', { cordoned: true })];

  it('a NotReady node blocks the plan at its step', () => {
    const p = plan(cluster(nodes), {});
    expect(p.outcome).toBe('blocked');
    expect(p.blockers.map((b) => `${b.step} ${b.kind} ${b.object}`)).toEqual(['2 not-ready node/w1']);
    expect(p.steps[1]?.nodes[0]?.status).toBe('blocked');
    expect(p.warnings.map((w) => `${w.kind} ${w.node}`)).toContain('cordoned w2');
  });

  it('--allow-not-ready plans it with a warning', () => {
    const p = plan(cluster(nodes), { allowNotReady: true });
    expect(p.outcome).toBe('ok');
    expect(p.warnings.map((w) => `${w.kind} ${w.node}`)).toContain('not-ready w1');
    expect(renderUpgradePlan(p)).toMatch(/w1\s+worker\s+v1.35.2 -> v1.36.3\s+upgrade \(not ready\)/);
  });
});

describe('drain pre-flight per batch', () => {
  it('judges each batch with the others in service: one pod per worker moves to a neighbour', () => {
    const nodes = standard();
    const pods = ['w1', 'w2', 'w3', 'w4'].map((w, i) => pod(`default/web-${i}`, w));
    expect(plan(cluster(nodes, pods), {}).blockers).toEqual([]);
  });

  it('a PDB with minAvailable = replicas blocks the batch that drains its pods, named', () => {
    const nodes = standard();
    const pods = [pod('default/db-0', 'w2'), pod('default/db-1', 'w2')];
    const p = plan(cluster(nodes, pods, { pdbs: [pdb('db-pdb', 'db', 0, 2)] }), { maxUnavailable: '2' });
    expect(p.outcome).toBe('blocked');
    expect(p.blockers.map((b) => `${b.step} ${b.node} ${b.kind} ${b.object}`)).toEqual(['2 w2 pdb-exhausted poddisruptionbudget/default/db-pdb']);
    expect(p.steps.map((s) => s.nodes.map((n) => `${n.node}:${n.status}`).join(','))).toEqual(['cp-a:upgrade', 'w1:upgrade,w2:blocked', 'w3:upgrade,w4:upgrade']);
    expect(renderUpgradePlan(p)).toMatch(/STEP\s+NODE\s+BLOCKER\s+OBJECT[\s\S]*2\s+w2\s+pdb-exhausted\s+poddisruptionbudget\/default\/db-pdb/);
  });

  it('bigger batches can strand pods that one-at-a-time would not', () => {
    const nodes = [node('w1', { labels: { zone: 'a' } }), node('w2', { labels: { zone: 'a' } }), node('w3', { labels: { zone: 'b' } })];
    const pods = [pod('default/api-0', 'w1', { nodeSelector: { zone: 'a' } })];
    expect(plan(cluster(nodes, pods), { maxUnavailable: '1' }).blockers).toEqual([]);
    const p = plan(cluster(nodes, pods), { maxUnavailable: '2' });
    expect(p.blockers.map((b) => `${b.step} ${b.kind} ${b.object}`)).toEqual(['1 unschedulable pod/default/api-0']);
  });

  it('uses the drain filter flags', () => {
    const nodes = [node('w1'), node('w2')];
    const pods = [pod('default/agent-0', 'w1', { owner: 'DaemonSet' })];
    const daemonSets = new Set(['default/agent-x']);
    expect(plan(cluster(nodes, pods, { daemonSets }), { ignoreDaemonSets: false }).blockers.map((b) => b.kind)).toEqual(['daemonset']);
    expect(plan(cluster(nodes, pods, { daemonSets }), { ignoreDaemonSets: true }).blockers).toEqual([]);
    const bare = [pod('default/bare-0', 'w2', { owner: null })];
    expect(plan(cluster(nodes, bare), {}).blockers.map((b) => `${b.step} ${b.kind}`)).toEqual(['2 unmanaged']);
    expect(plan(cluster(nodes, bare), { force: true }).blockers).toEqual([]);
  });
});
