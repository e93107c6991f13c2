/**
 * Node cordon/uncordon/drain against the rig's control plane with kwok nodes, and the same
 * scenarios with the rig's kubectl drain (same version as the API server) where both should agree.
 * Every scenario has its own namespace and node pool (e2eEnv), so drains never touch each other.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { DrainReport } from '../../src/drain/drain.js';
import type { CordonCommandResult } from '../../src/cli/node-command.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import {
  cordon,
  createIn,
  daemonSet,
  deployment,
  e2eEnv,
  isRunningReady,
  listPods,
  placeOn,
  podDisruptionBudget,
  serviceAccountKubeconfig,
  TcpProxy,
  waitFor,
  waitPdb,
  waitPodsRunning,
  type E2eEnv,
  type Kube,
  type KubeObject,
  type Node,
} from './helpers.js';

const ctx = inject('kube');
const CLI = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const envs: E2eEnv[] = [];
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-drain-'));
});
afterAll(async () => {
  for (const env of envs) await env.cleanup();
  envs[0]?.kube.close();
  await rm(dir, { recursive: true, force: true });
});

async function newEnv(name: string): Promise<E2eEnv> {
  const env = await e2eEnv(name, envs[0]?.kube);
  envs.push(env);
  return env;
}

function lifeboat(args: string[], kubeconfig = ctx.kubeconfig, timeoutMs = 170_000): Promise<CliResult> {
  return runCli([...args, '--kubeconfig', kubeconfig], { timeoutMs });
}

function reportOf(r: CliResult): DrainReport {
  try {
    return JSON.parse(r.stdout) as DrainReport;
  } catch {
    throw new Error(`no JSON report (exit ${r.code}): ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 2000)}`);
  }
}

/** kubectl drain; resolves with the exit code and output instead of throwing. */
async function kubectlDrain(kube: Kube, args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    return { ok: true, output: await kube.kubectl(['drain', ...args]) };
  } catch (err) {
    return { ok: false, output: (err as Error).message };
  }
}

async function unschedulable(kube: Kube, node: string): Promise<boolean> {
  return (await kube.get<Node>(`/api/v1/nodes/${node}`)).spec.unschedulable === true;
}

/** Watches a workload's Ready pods while `during` runs; resolves with the fewest seen at once. */
async function minReadyDuring(kube: Kube, ns: string, labels: Record<string, string>, during: () => Promise<void>): Promise<number> {
  let min = Number.POSITIVE_INFINITY;
  let done = false;
  const watcher = (async () => {
    while (!done) {
      const ready = (await listPods(kube, ns, labels)).filter(isRunningReady).length;
      min = Math.min(min, ready);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    await during();
  } finally {
    done = true;
    await watcher;
  }
  return min;
}

function barePod(ns: string, name: string, node: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns, labels: { app: name } },
    spec: { nodeName: node, containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] },
  };
}

describe('node drain', () => {
  it('a Deployment under a PDB of maxUnavailable 1 drains one pod at a time and comes back Running elsewhere; kubectl drain agrees', async () => {
    const env = await newEnv('drain-one');
    const { kube, namespace: ns } = env;
    const [w1, w2] = (await env.createNodes([{ name: 'w1' }, { name: 'w2' }])).map((n) => n.metadata.name) as [string, string];
    await placeOn(
      env,
      w1,
      async () => void (await createIn(kube, deployment(ns, 'web', 3, { pool: ns }))),
      () => waitPodsRunning(kube, ns, { app: 'web' }, 3),
    );
    await createIn(kube, podDisruptionBudget(ns, 'web-pdb', { app: 'web' }, { maxUnavailable: 1 }));
    await waitPdb(kube, ns, 'web-pdb', { disruptionsAllowed: 1, currentHealthy: 3 });
    const before = await listPods(kube, ns, { app: 'web' });
    expect(before.every((p) => p.spec.nodeName === w1)).toBe(true);

    let res!: CliResult;
    const min = await minReadyDuring(kube, ns, { app: 'web' }, async () => {
      res = await lifeboat(['node', 'drain', w1, '--ignore-daemonsets', '--timeout', '2m', '-o', 'json']);
    });
    expect(res.code, res.stderr).toBe(0);
    const report = reportOf(res);
    expect(report.outcome).toBe('drained');
    expect(report.preflight?.blockers).toEqual([]);
    expect(report.nodes[0]).toMatchObject({ node: w1, before: 'schedulable', after: 'cordoned', outcome: 'drained' });
    expect(report.nodes[0]!.evicted.map((e) => e.uid).sort()).toEqual(before.map((p) => p.metadata.uid).sort());
    expect(report.nodes[0]!.evicted.every((e) => e.goneAt)).toBe(true);
    // One at a time: never fewer than 3 - maxUnavailable Ready pods.
    expect(min).toBeGreaterThanOrEqual(2);
    const after = await waitPodsRunning(kube, ns, { app: 'web' }, 3);
    expect(after.every((p) => p.spec.nodeName === w2)).toBe(true);
    expect(await unschedulable(kube, w1)).toBe(true);

    // kubectl drains the other way just the same.
    await cordon(kube, w1, false);
    await waitPdb(kube, ns, 'web-pdb', { disruptionsAllowed: 1, currentHealthy: 3 });
    let kd!: { ok: boolean; output: string };
    const kmin = await minReadyDuring(kube, ns, { app: 'web' }, async () => {
      kd = await kubectlDrain(kube, [w2, '--ignore-daemonsets', '--timeout=2m']);
    });
    expect(kd.ok, kd.output).toBe(true);
    expect(kmin).toBeGreaterThanOrEqual(2);
    expect((await waitPodsRunning(kube, ns, { app: 'web' }, 3)).every((p) => p.spec.nodeName === w1)).toBe(true);
  });

  it('a PDB with minAvailable = replicas: the pre-flight names it and nothing is cordoned; --ignore-preflight --timeout fails naming it and uncordons; kubectl fails too', async () => {
    const env = await newEnv('drain-pdb');
    const { kube, namespace: ns } = env;
    const [w1] = (await env.createNodes([{ name: 'w1' }, { name: 'w2' }])).map((n) => n.metadata.name) as [string, string];
    await placeOn(
      env,
      w1,
      async () => void (await createIn(kube, deployment(ns, 'db', 2, { pool: ns }))),
      () => waitPodsRunning(kube, ns, { app: 'db' }, 2),
    );
    await createIn(kube, podDisruptionBudget(ns, 'db-pdb', { app: 'db' }, { minAvailable: 2 }));
    await waitPdb(kube, ns, 'db-pdb', { disruptionsAllowed: 0, currentHealthy: 2 });
    const uids = (await listPods(kube, ns, { app: 'db' })).map((p) => p.metadata.uid).sort();

    const only = await lifeboat(['node', 'drain', w1, '--ignore-daemonsets', '--preflight-only', '-o', 'json']);
    expect(only.code, only.stderr).toBe(7);
    const pf = reportOf(only).preflight!;
    expect(pf.blockers).toContainEqual(expect.objectContaining({ node: w1, object: `poddisruptionbudget/${ns}/db-pdb` }));
    expect(await unschedulable(kube, w1)).toBe(false);

    const blocked = await lifeboat(['node', 'drain', w1, '--ignore-daemonsets']);
    expect(blocked.code).toBe(7);
    expect(blocked.stdout).toContain(`poddisruptionbudget/${ns}/db-pdb`);
    expect(blocked.stdout).toMatch(/nothing was changed/);
    expect(await unschedulable(kube, w1)).toBe(false);

    const forced = await lifeboat(['node', 'drain', w1, '--ignore-daemonsets', '--ignore-preflight', '--timeout', '6s', '-o', 'json']);
    expect(forced.code, forced.stderr).toBe(7);
    const fr = reportOf(forced);
    expect(fr.outcome).toBe('failed');
    expect(fr.failure?.message).toMatch(new RegExp(`PodDisruptionBudget ${ns}/db-pdb allows no disruptions \\(currentHealthy 2, desiredHealthy 2`));
    expect(fr.nodes[0]).toMatchObject({ before: 'schedulable', after: 'schedulable', outcome: 'failed' });
    expect(fr.nodes[0]!.remaining).toHaveLength(2);
    expect(fr.nodes[0]!.remaining[0]!.pdb?.name).toBe(`${ns}/db-pdb`);
    expect(forced.stderr).toMatch(/uncordoned: it was schedulable before the drain/);
    expect(await unschedulable(kube, w1)).toBe(false);
    expect((await listPods(kube, ns, { app: 'db' })).map((p) => p.metadata.uid).sort()).toEqual(uids);

    // Left cordoned on request: something changed, so not 7 ("nothing changed") but 1.
    const left = await lifeboat(['node', 'drain', w1, '--ignore-daemonsets', '--ignore-preflight', '--timeout', '3s', '--leave-cordoned']);
    expect(left.code).toBe(1);
    expect(await unschedulable(kube, w1)).toBe(true);
    await cordon(kube, w1, false);

    // kubectl drain fails as well, and (unlike lifeboat) leaves the node cordoned.
    const kd = await kubectlDrain(kube, [w1, '--ignore-daemonsets', '--timeout=6s']);
    expect(kd.ok).toBe(false);
    expect(kd.output).toMatch(/disruption budget/i);
    expect(await unschedulable(kube, w1)).toBe(true);
    await cordon(kube, w1, false);
  });

  it('unmanaged and DaemonSet pods: refused without --force / --ignore-daemonsets, handled with them; kubectl agrees', async () => {
    const env = await newEnv('drain-filters');
    const { kube, namespace: ns } = env;
    const [w1, w2] = (await env.createNodes([{ name: 'w1' }, { name: 'w2' }])).map((n) => n.metadata.name) as [string, string];
    await createIn(kube, daemonSet(ns, 'agent', { pool: ns }));
    await waitPodsRunning(kube, ns, { app: 'agent' }, 2);
    await kube.create(`/api/v1/namespaces/${ns}/pods`, barePod(ns, 'loner', w1));
    await kube.create(`/api/v1/namespaces/${ns}/pods`, barePod(ns, 'loner2', w2));
    await waitPodsRunning(kube, ns, { app: 'loner' }, 1);
    const agentOn = async (node: string) => (await listPods(kube, ns, { app: 'agent' })).find((p) => p.spec.nodeName === node)!;

    const plain = await lifeboat(['node', 'drain', w1, '-o', 'json']);
    expect(plain.code).toBe(7);
    const kinds = reportOf(plain).preflight!.blockers.map((b) => `${b.kind} ${b.object}`);
    expect(kinds).toContain(`unmanaged pod/${ns}/loner`);
    expect(kinds).toContain(`daemonset pod/${ns}/${(await agentOn(w1)).metadata.name}`);
    expect(await unschedulable(kube, w1)).toBe(false);
    const kPlain = await kubectlDrain(kube, [w1]);
    expect(kPlain.ok).toBe(false);
    expect(kPlain.output).toMatch(/DaemonSet-managed Pods/);
    expect(kPlain.output).toMatch(new RegExp(`${ns}/loner`));
    await cordon(kube, w1, false);

    const withDs = await lifeboat(['node', 'drain', w1, '--ignore-daemonsets', '-o', 'json']);
    expect(withDs.code).toBe(7);
    expect(reportOf(withDs).preflight!.blockers.map((b) => `${b.kind} ${b.object}`)).toEqual([`unmanaged pod/${ns}/loner`]);
    const kWithDs = await kubectlDrain(kube, [w1, '--ignore-daemonsets']);
    expect(kWithDs.ok).toBe(false);
    expect(kWithDs.output).toMatch(/declare no controller/);
    await cordon(kube, w1, false);

    const forced = await lifeboat(['node', 'drain', w1, '--ignore-daemonsets', '--force', '-o', 'json']);
    expect(forced.code, forced.stderr).toBe(0);
    const fr = reportOf(forced).nodes[0]!;
    expect(fr.evicted.map((e) => e.pod)).toEqual([`${ns}/loner`]);
    expect(fr.skipped.map((s) => s.pod)).toEqual([`${ns}/${(await agentOn(w1)).metadata.name}`]);
    expect(fr.warnings.join('\n')).toMatch(/loner: not managed by a controller; deleted for good/);
    expect(await kube.getOrUndefined(`/api/v1/namespaces/${ns}/pods/loner`)).toBeUndefined();
    expect(isRunningReady(await agentOn(w1))).toBe(true);

    const kForced = await kubectlDrain(kube, [w2, '--ignore-daemonsets', '--force']);
    expect(kForced.ok, kForced.output).toBe(true);
    expect(await kube.getOrUndefined(`/api/v1/namespaces/${ns}/pods/loner2`)).toBeUndefined();
    expect(isRunningReady(await agentOn(w2))).toBe(true);
  });

  it('the pre-flight reports a pod under two PDBs and a pod only the drained node can take; the eviction API agrees about the two PDBs', async () => {
    const env = await newEnv('drain-predict');
    const { kube, namespace: ns } = env;
    const [w1] = (await env.createNodes([{ name: 'w1', labels: { disk: 'ssd' } }, { name: 'w2' }])).map((n) => n.metadata.name) as [string, string];
    const pinned = deployment(ns, 'pinned', 1, { pool: ns });
    (pinned.spec as { template: { spec: { nodeSelector: Record<string, string> } } }).template.spec.nodeSelector.disk = 'ssd';
    await placeOn(
      env,
      w1,
      async () => {
        await createIn(kube, pinned);
        await createIn(kube, deployment(ns, 'shared', 1, { pool: ns }));
      },
      async () => {
        await waitPodsRunning(kube, ns, { app: 'pinned' }, 1);
        await waitPodsRunning(kube, ns, { app: 'shared' }, 1);
      },
    );
    await createIn(kube, podDisruptionBudget(ns, 'p1', { app: 'shared' }, { maxUnavailable: 1 }));
    await createIn(kube, podDisruptionBudget(ns, 'p2', { app: 'shared' }, { maxUnavailable: 1 }));
    await waitPdb(kube, ns, 'p1', { disruptionsAllowed: 1 });
    await waitPdb(kube, ns, 'p2', { disruptionsAllowed: 1 });
    const [shared] = await listPods(kube, ns, { app: 'shared' });
    const [pin] = await listPods(kube, ns, { app: 'pinned' });

    const res = await lifeboat(['node', 'drain', w1, '--ignore-daemonsets', '--preflight-only', '-o', 'json']);
    expect(res.code, res.stderr).toBe(7);
    const blockers = reportOf(res).preflight!.blockers;
    const multi = blockers.find((b) => b.kind === 'multiple-pdbs');
    expect(multi?.object).toBe(`pod/${ns}/${shared!.metadata.name}`);
    expect(multi?.message).toMatch(/p1/);
    expect(multi?.message).toMatch(/p2/);
    const unsched = blockers.find((b) => b.kind === 'unschedulable');
    expect(unsched?.object).toBe(`pod/${ns}/${pin!.metadata.name}`);
    expect(unsched?.message).toMatch(/nodeSelector|affinity/i);

    // Draining anyway: the eviction API refuses the pod with two PDBs, and the drain names both.
    const forced = await lifeboat(['node', 'drain', w1, '--ignore-daemonsets', '--ignore-preflight', '--timeout', '20s', '-o', 'json']);
    expect(forced.code).toBe(1);
    const fr = reportOf(forced);
    expect(fr.failure?.message).toMatch(new RegExp(`more than one PodDisruptionBudget \\(${ns}/p1, ${ns}/p2\\)`));
    expect(await unschedulable(kube, w1)).toBe(false);
    const kd = await kubectlDrain(kube, [w1, '--ignore-daemonsets', '--timeout=20s']);
    expect(kd.ok).toBe(false);
    expect(kd.output).toMatch(/more than one PodDisruptionBudget/);
    await cordon(kube, w1, false);
  });
});

describe('node drain options', () => {
  it('dry runs change nothing; --pod-selector evicts only matching pods; --disable-eviction deletes past a PDB', async () => {
    const env = await newEnv('drain-opts');
    const { kube, namespace: ns } = env;
    const [w1, w2] = (await env.createNodes([{ name: 'w1' }, { name: 'w2' }])).map((n) => n.metadata.name) as [string, string];
    await placeOn(
      env,
      w1,
      async () => {
        await createIn(kube, deployment(ns, 'a', 2, { pool: ns }));
        await createIn(kube, deployment(ns, 'b', 1, { pool: ns }));
      },
      async () => {
        await waitPodsRunning(kube, ns, { app: 'a' }, 2);
        await waitPodsRunning(kube, ns, { app: 'b' }, 1);
      },
    );
    await createIn(kube, podDisruptionBudget(ns, 'b-pdb', { app: 'b' }, { minAvailable: 1 }));
    await waitPdb(kube, ns, 'b-pdb', { disruptionsAllowed: 0 });
    const snapshot = async () => (await listPods(kube, ns)).map((p) => `${p.metadata.uid}@${p.spec.nodeName}`).sort();
    const before = await snapshot();

    const client = await lifeboat(['node', 'drain', w1, '--dry-run', 'client', '--pod-selector', 'app=a', '-o', 'json']);
    expect(client.code, client.stderr).toBe(0);
    const cr = reportOf(client);
    expect(cr.outcome).toBe('dry-run');
    expect(cr.nodes[0]!.evicted.map((e) => e.pod).sort()).toEqual((await listPods(kube, ns, { app: 'a' })).map((p) => `${ns}/${p.metadata.name}`).sort());

    const server = await lifeboat(['node', 'drain', w1, '--dry-run', 'server', '--ignore-preflight', '-o', 'json']);
    expect(server.code, server.stderr).toBe(7);
    const sr = reportOf(server);
    expect(sr.outcome).toBe('dry-run');
    expect(sr.nodes[0]!.evicted).toHaveLength(2);
    expect(sr.nodes[0]!.remaining.map((r) => r.pdb?.name)).toEqual([`${ns}/b-pdb`]);
    expect(await snapshot()).toEqual(before);
    expect(await unschedulable(kube, w1)).toBe(false);

    const selected = await lifeboat(['node', 'drain', w1, '--pod-selector', 'app=a', '-o', 'json']);
    expect(selected.code, selected.stderr).toBe(0);
    expect(reportOf(selected).nodes[0]!.evicted).toHaveLength(2);
    expect((await waitPodsRunning(kube, ns, { app: 'a' }, 2)).every((p) => p.spec.nodeName === w2)).toBe(true);
    const [b] = await listPods(kube, ns, { app: 'b' });
    expect(b!.spec.nodeName).toBe(w1);

    const deleted = await lifeboat(['node', 'drain', w1, '--disable-eviction', '-o', 'json']);
    expect(deleted.code, deleted.stderr).toBe(0);
    const dr = reportOf(deleted);
    expect(dr.preflight?.warnings.map((w) => w.kind)).toContain('pdb-bypassed');
    expect(dr.nodes[0]!.evicted.map((e) => e.uid)).toEqual([b!.metadata.uid]);
    const [b2] = await waitPodsRunning(kube, ns, { app: 'b' }, 1);
    expect(b2!.spec.nodeName).toBe(w2);
  });

  it('several nodes are cordoned and drained one after the other, not all cordoned first', async () => {
    const env = await newEnv('drain-seq');
    const { kube, namespace: ns } = env;
    const [w1, w2, w3] = (await env.createNodes([{ name: 'w1' }, { name: 'w2' }, { name: 'w3' }])).map((n) => n.metadata.name) as [string, string, string];
    await placeOn(
      env,
      w1,
      async () => void (await createIn(kube, deployment(ns, 'one', 2, { pool: ns }))),
      () => waitPodsRunning(kube, ns, { app: 'one' }, 2),
    );
    await placeOn(
      env,
      w2,
      async () => void (await createIn(kube, deployment(ns, 'two', 2, { pool: ns }))),
      () => waitPodsRunning(kube, ns, { app: 'two' }, 2),
    );
    // w2 must still be schedulable while w1 drains: watch it.
    let w2CordonedDuringW1 = false;
    let w1Done = false;
    const res = await (async () => {
      const run = lifeboat(['node', 'drain', w1, w2, '-o', 'json']);
      let finished = false;
      void run.finally(() => (finished = true));
      while (!finished) {
        const [n1, n2] = await Promise.all([kube.get<Node>(`/api/v1/nodes/${w1}`), kube.get<Node>(`/api/v1/nodes/${w2}`)]);
        const onW1 = (await listPods(kube, ns)).filter((p) => p.spec.nodeName === w1 && !p.metadata.deletionTimestamp).length;
        if (n1.spec.unschedulable && onW1 === 0) w1Done = true;
        if (!w1Done && n1.spec.unschedulable && n2.spec.unschedulable) w2CordonedDuringW1 = true;
        await new Promise((r) => setTimeout(r, 100));
      }
      return run;
    })();
    expect(res.code, res.stderr).toBe(0);
    expect(w2CordonedDuringW1).toBe(false);
    const report = reportOf(res);
    expect(report.nodes.map((n) => [n.node, n.outcome, n.after])).toEqual([
      [w1, 'drained', 'cordoned'],
      [w2, 'drained', 'cordoned'],
    ]);
    const order = res.stderr.split('\n').filter((l) => /cordoned|drained/.test(l)).map((l) => (JSON.parse(l) as { msg: string }).msg.replace(/ \(.*$/, ''));
    expect(order).toEqual([`node/${w1} cordoned`, `node/${w1} drained`, `node/${w2} cordoned`, `node/${w2} drained`]);
    const pods = [...(await waitPodsRunning(kube, ns, { app: 'one' }, 2)), ...(await waitPodsRunning(kube, ns, { app: 'two' }, 2))];
    expect(pods.every((p) => p.spec.nodeName === w3)).toBe(true);
  });

  it('SIGINT during a drain: exit 130 and the node is schedulable again', async () => {
    const env = await newEnv('drain-int');
    const { kube, namespace: ns } = env;
    const [w1] = (await env.createNodes([{ name: 'w1' }, { name: 'w2' }])).map((n) => n.metadata.name) as [string, string];
    await placeOn(
      env,
      w1,
      async () => void (await createIn(kube, deployment(ns, 'c', 1, { pool: ns }))),
      () => waitPodsRunning(kube, ns, { app: 'c' }, 1),
    );
    await createIn(kube, podDisruptionBudget(ns, 'c-pdb', { app: 'c' }, { minAvailable: 1 }));
    await waitPdb(kube, ns, 'c-pdb', { disruptionsAllowed: 0 });
    const child = spawn(process.execPath, [CLI, 'node', 'drain', w1, '--ignore-preflight', '--kubeconfig', ctx.kubeconfig], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await waitFor('the drain to be waiting on the PDB', async () => /allows no disruptions/.test(stderr), { timeoutMs: 60_000 });
    expect(await unschedulable(kube, w1)).toBe(true);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/uncordoned: it was schedulable before the drain/);
    expect(await unschedulable(kube, w1)).toBe(false);
  });
});

describe('node cordon, uncordon and bad input', () => {
  it('cordon and uncordon are idempotent and print the prior and new state; an unknown node changes nothing (exit 4)', async () => {
    const env = await newEnv('cordon');
    const { kube } = env;
    const [a, b] = (await env.createNodes([{ name: 'a' }, { name: 'b' }])).map((n) => n.metadata.name) as [string, string];
    const first = await lifeboat(['node', 'cordon', a, '-o', 'json']);
    expect(first.code, first.stderr).toBe(0);
    expect((JSON.parse(first.stdout) as CordonCommandResult).nodes).toEqual([{ node: a, before: 'schedulable', after: 'cordoned', changed: true, dryRun: false }]);
    const again = await lifeboat(['node', 'cordon', a]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/already cordoned/);

    const unknown = await lifeboat(['node', 'cordon', b, `${b}-nope`]);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toMatch(new RegExp(`not found: ${b}-nope\\. Nothing was changed`));
    expect(await unschedulable(kube, b)).toBe(false);
    const drainUnknown = await lifeboat(['node', 'drain', `${b}-nope`, b]);
    expect(drainUnknown.code).toBe(4);
    expect(await unschedulable(kube, b)).toBe(false);

    const bySelector = await lifeboat(['node', 'uncordon', '-l', `lifeboat.test/pool=${env.namespace}`, '-o', 'json']);
    expect(bySelector.code).toBe(0);
    const states = (JSON.parse(bySelector.stdout) as CordonCommandResult).nodes.map((n) => [n.node, n.before, n.after, n.changed]);
    expect(states).toEqual([
      [a, 'cordoned', 'schedulable', true],
      [b, 'schedulable', 'schedulable', false],
    ]);
    const dry = await lifeboat(['node', 'cordon', a, '--dry-run', 'server']);
    expect(dry.code).toBe(0);
    expect(await unschedulable(kube, a)).toBe(false);
  });

  it('cordon of several nodes where one may not be changed: the others are, the table says which, exit 3', async () => {
    const env = await newEnv('cordon-partial');
    const { kube, namespace: ns } = env;
    const [a, b] = (await env.createNodes([{ name: 'a' }, { name: 'b' }])).map((n) => n.metadata.name) as [string, string];
    const user = await restrictedUser(
      kube,
      ns,
      'cordoner',
      [
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list'] },
        { apiGroups: [''], resources: ['nodes'], verbs: ['patch'], resourceNames: [a] },
      ],
      { resource: 'nodes', verb: 'list' },
    );
    try {
      const kubeconfig = user.kubeconfig;
      const res = await lifeboat(['node', 'cordon', a, b, '-o', 'json'], kubeconfig);
      expect(res.code, res.stderr).toBe(3);
      const nodes = (JSON.parse(res.stdout) as CordonCommandResult).nodes;
      expect(nodes[0]).toMatchObject({ node: a, after: 'cordoned', changed: true });
      expect(nodes[1]).toMatchObject({ node: b, after: 'schedulable', changed: false });
      expect(nodes[1]!.error).toMatch(/forbidden/);
      expect(await unschedulable(kube, a)).toBe(true);
      expect(await unschedulable(kube, b)).toBe(false);
    } finally {
      await user.cleanup();
    }
  });

  it('a node cordoned before the drain stays cordoned, and the output says so', async () => {
    const env = await newEnv('precordoned');
    const { kube, namespace: ns } = env;
    const [w1] = (await env.createNodes([{ name: 'w1' }, { name: 'w2' }])).map((n) => n.metadata.name) as [string, string];
    await placeOn(
      env,
      w1,
      async () => void (await createIn(kube, deployment(ns, 'app', 1, { pool: ns }))),
      () => waitPodsRunning(kube, ns, { app: 'app' }, 1),
    );
    await createIn(kube, podDisruptionBudget(ns, 'app-pdb', { app: 'app' }, { minAvailable: 1 }));
    await waitPdb(kube, ns, 'app-pdb', { disruptionsAllowed: 0 });
    await cordon(kube, w1);
    const failed = await lifeboat(['node', 'drain', w1, '--ignore-preflight', '--timeout', '3s', '-o', 'json']);
    expect(failed.code).toBe(7);
    expect(reportOf(failed).nodes[0]).toMatchObject({ before: 'cordoned', after: 'cordoned' });
    expect(failed.stderr).toMatch(/was cordoned before this drain; it stays cordoned/);
    expect(await unschedulable(kube, w1)).toBe(true);

    await kube.delete(`/apis/policy/v1/namespaces/${ns}/poddisruptionbudgets/app-pdb`);
    const ok = await lifeboat(['node', 'drain', w1, '-o', 'json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(reportOf(ok).nodes[0]).toMatchObject({ before: 'cordoned', after: 'cordoned', outcome: 'drained' });
  });

  it('without RBAC for evictions the drain fails with the API server’s reason and the node is schedulable again', async () => {
    const env = await newEnv('rbac');
    const { kube, namespace: ns } = env;
    const [w1] = (await env.createNodes([{ name: 'w1' }, { name: 'w2' }])).map((n) => n.metadata.name) as [string, string];
    await placeOn(
      env,
      w1,
      async () => void (await createIn(kube, deployment(ns, 'app', 1, { pool: ns }))),
      () => waitPodsRunning(kube, ns, { app: 'app' }, 1),
    );
    const user = await restrictedUser(
      kube,
      ns,
      'drainer',
      [
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'patch'] },
        { apiGroups: [''], resources: ['pods', 'persistentvolumeclaims', 'persistentvolumes', 'namespaces'], verbs: ['get', 'list'] },
        { apiGroups: ['apps'], resources: ['daemonsets'], verbs: ['get', 'list'] },
        { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['get', 'list'] },
      ],
      { resource: 'nodes', verb: 'patch' },
    );
    try {
      const kubeconfig = user.kubeconfig;
      const res = await lifeboat(['node', 'drain', w1, '-o', 'json'], kubeconfig);
      expect(res.code).toBe(1);
      expect(reportOf(res).failure?.message).toMatch(/Cannot evict pod .*forbidden.*pods\/eviction/);
      expect(await unschedulable(kube, w1)).toBe(false);
      expect(await listPods(kube, ns, { app: 'app' })).toHaveLength(1);
    } finally {
      await user.cleanup();
    }
  });

  it('the API server unreachable mid-drain: the drain fails saying so, and the node is uncordoned once it answers again', async () => {
    const env = await newEnv('unreachable');
    const { kube, namespace: ns } = env;
    const [w1] = (await env.createNodes([{ name: 'w1' }, { name: 'w2' }])).map((n) => n.metadata.name) as [string, string];
    await placeOn(
      env,
      w1,
      async () => void (await createIn(kube, deployment(ns, 'app', 1, { pool: ns }))),
      () => waitPodsRunning(kube, ns, { app: 'app' }, 1),
    );
    await createIn(kube, podDisruptionBudget(ns, 'app-pdb', { app: 'app' }, { minAvailable: 1 }));
    await waitPdb(kube, ns, 'app-pdb', { disruptionsAllowed: 0 });

    const target = new URL(kube.server);
    const proxy = new TcpProxy(target.hostname, Number(target.port));
    const port = await proxy.start();
    const cfg = parseYaml(await readFile(ctx.kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
    for (const c of cfg.clusters) c.cluster.server = `https://127.0.0.1:${port}`;
    const kubeconfig = join(dir, 'proxied.kubeconfig');
    await writeFile(kubeconfig, stringifyYaml(cfg), { mode: 0o600 });

    // The drain waits on the PDB (no --timeout); the API server goes away, then comes back.
    const running = lifeboat(['node', 'drain', w1, '--ignore-preflight', '--api-retry-timeout', '3s', '-o', 'json'], kubeconfig);
    await waitFor('the drain to cordon the node', () => unschedulable(kube, w1), { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 1500));
    await proxy.stop();
    await new Promise((r) => setTimeout(r, 15_000));
    await proxy.start(port);
    const res = await running;
    await proxy.stop();
    expect(res.code).toBe(1);
    const report = reportOf(res);
    expect(report.failure?.message).toMatch(/Cannot reach the Kubernetes API server/);
    expect(report.nodes[0]).toMatchObject({ before: 'schedulable', after: 'schedulable', outcome: 'failed' });
    expect(await unschedulable(kube, w1)).toBe(false);
  });
});

/**
 * A ServiceAccount in `ns` bound to a new ClusterRole with `rules`; resolves with a kubeconfig for
 * it (once RBAC lets it `ready`) and a function that deletes the cluster-scoped objects.
 */
async function restrictedUser(
  kube: Kube,
  ns: string,
  name: string,
  rules: unknown[],
  ready: { resource: string; verb: string },
): Promise<{ kubeconfig: string; cleanup: () => Promise<void> }> {
  const role = `lifeboat-e2e-${name}-${randomBytes(3).toString('hex')}`;
  const cleanup = async () => {
    await kube.delete(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${role}`);
    await kube.delete(`/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${role}`);
  };
  try {
    await kube.create('/apis/rbac.authorization.k8s.io/v1/clusterroles', { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: role }, rules });
    await kube.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name } });
    await kube.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name, namespace: ns }],
    });
    return { kubeconfig: await serviceAccountKubeconfig(kube, ns, name, join(dir, `${name}-${ns}.kubeconfig`), ready), cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
