/**
 * upgrade plan against the rig's control plane (kube-apiserver v1.36.3) with kwok nodes whose
 * kubelets report v1.35.2, so that v1.36.3 is a real upgrade target. Every plan is checked to
 * change nothing: the pool's nodes and the namespace's pods are the same objects afterwards.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { UpgradePlan } from '../../src/upgrade/plan.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import {
  createIn,
  deployment,
  e2eEnv,
  placeOn,
  podDisruptionBudget,
  POOL_LABEL,
  waitPdb,
  waitPodsRunning,
  type E2eEnv,
  type KubeObject,
  type Node,
  type Pod,
} from './helpers.js';

const ctx = inject('kube');
let env: E2eEnv;
let pool: string;
const name = (suffix: string) => `${env.namespace}-${suffix}`;

beforeAll(async () => {
  expect(ctx.version).toBe('v1.36.3');
  env = await e2eEnv('upgrade-plan');
  pool = `${POOL_LABEL}=${env.namespace}`;
  await env.createNodes([
    { name: 'cp', role: 'control-plane', kubeletVersion: 'v1.35.2' },
    ...['w1', 'w2', 'w3', 'w4'].map((n) => ({ name: n, kubeletVersion: 'v1.35.2', labels: { tier: n === 'w1' || n === 'w2' ? 'blue' : 'green' } })),
    { name: 'w5', kubeletVersion: 'v1.36.3' },
  ]);
  // Something for the pre-flight to weigh: a Deployment spread over the workers, under a budget.
  await createIn(env.kube, deployment(env.namespace, 'web', 4, { pool: env.namespace }));
  await createIn(env.kube, podDisruptionBudget(env.namespace, 'web-pdb', { app: 'web' }, { maxUnavailable: 1 }));
  await waitPodsRunning(env.kube, env.namespace, { app: 'web' }, 4);
  await waitPdb(env.kube, env.namespace, 'web-pdb', { disruptionsAllowed: 1, currentHealthy: 4 });
});

afterAll(async () => {
  await env?.cleanup();
  env?.kube.close();
});

function lifeboat(args: string[]): Promise<CliResult> {
  return runCli([...args, '--kubeconfig', ctx.kubeconfig], { timeoutMs: 120_000 });
}

function planOf(r: CliResult): UpgradePlan {
  try {
    return JSON.parse(r.stdout) as UpgradePlan;
  } catch {
    throw new Error(`no JSON plan (exit ${r.code}): ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 2000)}`);
  }
}

/** "1:cp 2:w1,w2": the run order, with the pool prefix taken off the node names. */
const order = (p: UpgradePlan) => p.steps.map((s) => `${s.step}:${s.nodes.map((n) => n.node.slice(env.namespace.length + 1)).join(',')}`).join(' ');

/** The pool's nodes and the namespace's pods, as they are now. */
async function snapshot(): Promise<KubeObject[]> {
  const nodes = await env.kube.list<Node>('/api/v1/nodes', { labelSelector: pool });
  const pods = await env.kube.list<Pod>(`/api/v1/namespaces/${env.namespace}/pods`);
  return [...nodes.items, ...pods.items];
}

/**
 * Same objects at the same resourceVersion. kwok's simulated kubelet refreshes a node's
 * heartbeat every few minutes; a node whose only change is that heartbeat is unchanged.
 */
function expectUnchanged(before: KubeObject[], after: KubeObject[]): void {
  const key = (o: KubeObject) => `${o.kind ?? ''}/${o.metadata.namespace ?? ''}/${o.metadata.name}`;
  const withoutHeartbeat = (o: KubeObject) =>
    JSON.stringify(o, (k, v: unknown) => (k === 'resourceVersion' || k === 'lastHeartbeatTime' || k === 'managedFields' ? undefined : v));
  const was = new Map(before.map((o) => [o.metadata.name, o]));
  expect(after.map((o) => o.metadata.name).sort()).toEqual([...was.keys()].sort());
  for (const o of after) {
    const b = was.get(o.metadata.name)!;
    if (b.metadata.resourceVersion === o.metadata.resourceVersion) continue;
    expect(withoutHeartbeat(o), `${key(o)} changed`).toBe(withoutHeartbeat(b));
  }
}

/** Runs the CLI between two snapshots and checks that it changed nothing. */
async function planChangingNothing(args: string[]): Promise<CliResult> {
  const before = await snapshot();
  const res = await lifeboat(args);
  expectUnchanged(before, await snapshot());
  return res;
}

describe('upgrade plan', () => {
  it('orders the control plane first, then workers two at a time, skipping the node already at the target', async () => {
    const res = await planChangingNothing(['upgrade', 'plan', '--to', 'v1.36.3', '--max-unavailable', '2', '-l', pool, '--ignore-daemonsets', '-o', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const p = planOf(res);
    expect(p.outcome).toBe('ok');
    expect(p.apiServer).toBe('v1.36.3');
    expect(order(p)).toBe('1:cp 2:w1,w2 3:w3,w4');
    expect(p.steps.map((s) => `${s.role} ${s.batch}/${s.of}`)).toEqual(['control-plane 1/1', 'worker 1/2', 'worker 2/2']);
    expect(p.steps.flatMap((s) => s.nodes.map((n) => `${n.from}->${n.to} ${n.status}`))).toEqual(Array(5).fill('v1.35.2->v1.36.3 upgrade'));
    expect(p.skipped).toEqual([{ node: name('w5'), role: 'worker', version: 'v1.36.3', reason: 'at-target' }]);
    expect(p.skew).toEqual([]);
    expect(p.blockers).toEqual([]);
  });

  it('prints the plan as a table', async () => {
    const res = await lifeboat(['upgrade', 'plan', '--to', 'v1.36.3', '--max-unavailable', '2', '-l', pool, '--ignore-daemonsets']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^STEP\s+BATCH\s+NODE\s+ROLE\s+KUBELET\s+STATUS$/m);
    expect(res.stdout).toMatch(new RegExp(`^1\\s+control-plane 1/1\\s+${name('cp')}\\s+control-plane\\s+v1.35.2 -> v1.36.3\\s+upgrade$`, 'm'));
    expect(res.stdout).toMatch(new RegExp(`^3\\s+workers 2/2\\s+${name('w4')}\\s+worker\\s+v1.35.2 -> v1.36.3\\s+upgrade$`, 'm'));
    expect(res.stdout).toMatch(new RegExp(`^-\\s+-\\s+${name('w5')}\\s+worker\\s+v1.36.3\\s+skipped: already at the target$`, 'm'));
    expect(res.stdout).toMatch(/PRE-FLIGHT: no blockers/);
    expect(res.stdout).toMatch(/OK: 3 step\(s\), 5 node\(s\) to upgrade; nothing was changed/);
  });

  it('refuses a target that skips a minor version, naming the rule (exit 7)', async () => {
    const res = await planChangingNothing(['upgrade', 'plan', '--to', 'v1.38.0', '-l', pool, '-o', 'json']);
    expect(res.code, res.stderr).toBe(7);
    const p = planOf(res);
    expect(p.outcome).toBe('blocked');
    expect(p.skew.map((f) => f.rule)).toEqual(['minor-skipped']);
    expect(p.skew[0]?.message).toMatch(/The target v1.38.0 skips minor version v1.37: the API server is at v1.36.3/);
    expect(p.skew[0]?.fix).toMatch(/Upgrade to v1.37.x first/);
    expect(p.steps).toEqual([]);
  });

  it('refuses a downgrade (exit 7)', async () => {
    const res = await lifeboat(['upgrade', 'plan', '--to', 'v1.34.0', '-l', pool]);
    expect(res.code, res.stderr).toBe(7);
    expect(res.stdout).toMatch(/downgrade\s+-\s+The target v1.34.0 is older than the API server \(v1.36.3\): downgrades are refused/);
    expect(res.stdout).toMatch(/BLOCKED: 1 skew violation\(s\), 0 blocker\(s\); nothing was changed/);
  });

  it('--node-selector and named nodes limit the plan; workers may not pass a control plane left behind', async () => {
    const blue = planOf(await lifeboat(['upgrade', 'plan', '--to', 'v1.36.3', '-l', `${pool},tier=blue`, '--ignore-daemonsets', '-o', 'json']));
    expect(order(blue)).toBe('1:w1 2:w2');
    expect(blue.outcome).toBe('ok');

    const named = planOf(await lifeboat(['upgrade', 'plan', '--to', 'v1.36.3', name('w3'), name('cp'), '--ignore-daemonsets', '-o', 'json']));
    expect(order(named)).toBe('1:cp 2:w3');

    // One minor up: the whole pool can go (control plane first), its workers alone cannot.
    const next = await lifeboat(['upgrade', 'plan', '--to', 'v1.37.0', '--max-unavailable', '50%', '-l', pool, '--ignore-daemonsets', '-o', 'json']);
    expect(next.code, next.stderr).toBe(0);
    expect(order(planOf(next))).toBe('1:cp 2:w1,w2 3:w3,w4 4:w5');
    const workers = await lifeboat(['upgrade', 'plan', '--to', 'v1.37.0', '-l', `${pool},tier=blue`, '--ignore-daemonsets', '-o', 'json']);
    expect(workers.code, workers.stderr).toBe(7);
    const skew = planOf(workers).skew;
    expect(skew.map((f) => `${f.rule} ${f.node}`)).toEqual([`kubelet-newer-than-apiserver ${name('w1')}`, `kubelet-newer-than-apiserver ${name('w2')}`]);
    expect(skew[0]?.message).toContain(`the API server on ${name('cp')} (not in this plan) is still at v1.36.3`);
  });

  it('an unknown node is exit 4, and nothing is planned', async () => {
    const res = await lifeboat(['upgrade', 'plan', '--to', 'v1.36.3', name('w1'), name('nope')]);
    expect(res.code, res.stderr).toBe(4);
    expect(res.stderr).toContain(`Node not found: ${name('nope')}.`);
    expect(res.stdout).toBe('');
  });

  it('a malformed version is exit 2', async () => {
    const res = await lifeboat(['upgrade', 'plan', '--to', '1.36', '-l', pool]);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/Invalid target version "1.36": give a full Kubernetes version such as v1.36.3/);
  });

  it('a PDB with minAvailable = replicas on one worker blocks its batch, named (exit 7)', async () => {
    const w3 = name('w3');
    await placeOn(
      env,
      w3,
      async () => void (await createIn(env.kube, deployment(env.namespace, 'db', 2, { pool: env.namespace }))),
      () => waitPodsRunning(env.kube, env.namespace, { app: 'db' }, 2),
    );
    await createIn(env.kube, podDisruptionBudget(env.namespace, 'db-pdb', { app: 'db' }, { minAvailable: 2 }));
    await waitPdb(env.kube, env.namespace, 'db-pdb', { disruptionsAllowed: 0, currentHealthy: 2 });

    const res = await planChangingNothing(['upgrade', 'plan', '--to', 'v1.36.3', '--max-unavailable', '2', '-l', pool, '--ignore-daemonsets', '-o', 'json']);
    expect(res.code, res.stderr).toBe(7);
    const p = planOf(res);
    expect(p.outcome).toBe('blocked');
    expect(p.blockers.map((b) => `${b.step} ${b.node} ${b.kind} ${b.object}`)).toEqual([`3 ${w3} pdb-exhausted poddisruptionbudget/${env.namespace}/db-pdb`]);
    expect(p.steps[2]?.nodes.map((n) => n.status)).toEqual(['blocked', 'upgrade']);

    const table = await lifeboat(['upgrade', 'plan', '--to', 'v1.36.3', '--max-unavailable', '2', '-l', pool, '--ignore-daemonsets']);
    expect(table.code).toBe(7);
    expect(table.stdout).toMatch(new RegExp(`^3\\s+${w3}\\s+pdb-exhausted\\s+poddisruptionbudget/${env.namespace}/db-pdb\\s+allows no disruption now`, 'm'));
  });

  it('a NotReady node blocks unless --allow-not-ready', async () => {
    await env.createNodes([{ name: 'dead', kubeletVersion: 'v1.35.2', managed: false }]);
    const dead = name('dead');
    const res = await lifeboat(['upgrade', 'plan', '--to', 'v1.36.3', dead, '-o', 'json']);
    expect(res.code, res.stderr).toBe(7);
    expect(planOf(res).blockers.map((b) => `${b.step} ${b.kind} ${b.object}`)).toEqual([`1 not-ready node/${dead}`]);
    const allowed = await lifeboat(['upgrade', 'plan', '--to', 'v1.36.3', dead, '--allow-not-ready', '-o', 'json']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(planOf(allowed).warnings.map((w) => w.kind)).toContain('not-ready');
  });
});
