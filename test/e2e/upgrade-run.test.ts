/**
 * upgrade run / resume / status / abort against the rig's control plane (v1.36.3) with kwok
 * nodes whose kubelets report v1.35.2. The "upgrade" is an action script that patches the
 * node's reported kubelet version after a delay, as a real kubelet restart at the new version
 * would. Every scenario has its own node pool, namespace (lock and journal live there too) and
 * local journal file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import type { RunJournal } from '../../src/upgrade/journal.js';
import { UNPULLABLE_IMAGE } from '../rig/kube.js';
import { runCli, type CliResult } from '../helpers/cli.js';
import {
  createIn,
  deployment,
  e2eEnv,
  isRunningReady,
  listPods,
  podDisruptionBudget,
  POOL_LABEL,
  TcpProxy,
  waitFor,
  waitPdb,
  waitPodsRunning,
  type E2eEnv,
  type KubeObject,
  type Node,
} from './helpers.js';

const ctx = inject('kube');
const CLI = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const FROM = 'v1.35.2';
const TO = 'v1.36.3';
const envs: E2eEnv[] = [];
let dir: string;
let upgradeScript: string;
let failScript: string;

beforeAll(async () => {
  expect(ctx.version).toBe(TO);
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-upgrade-'));
  // The stand-in for a real node upgrade: after UPGRADE_DELAY seconds the kubelet reports the new version.
  upgradeScript = join(dir, 'upgrade-node.sh');
  await writeFile(
    upgradeScript,
    `#!/bin/sh
set -e
echo "upgrading $1 to $2"
sleep "\${UPGRADE_DELAY:-1}"
'${ctx.bins.kubectl}' --kubeconfig '${ctx.kubeconfig}' patch node "$1" --subresource=status --type=merge -p "{\\"status\\":{\\"nodeInfo\\":{\\"kubeletVersion\\":\\"$2\\"}}}" >/dev/null
echo "$1 reports $2"
`,
  );
  failScript = join(dir, 'fail-node.sh');
  await writeFile(failScript, '#!/bin/sh\necho "kubeadm upgrade node on $1: disk full" >&2\nexit 3\n');
  await chmod(upgradeScript, 0o755);
  await chmod(failScript, 0o755);
});

afterAll(async () => {
  for (const env of envs) await env.cleanup();
  envs[0]?.kube.close();
  await rm(dir, { recursive: true, force: true });
});

interface Scenario {
  env: E2eEnv;
  ns: string;
  journalFile: string;
  nodes: string[];
  /** Flags every command of the scenario takes. */
  common: string[];
}

/** A pool of kwok nodes at v1.35.2 (first one control-plane when asked), with a Deployment under a PDB of maxUnavailable 1. */
async function scenario(name: string, workers: number, o: { controlPlane?: boolean; replicas?: number } = {}): Promise<Scenario> {
  const env = await e2eEnv(name, envs[0]?.kube);
  envs.push(env);
  const specs = [
    ...(o.controlPlane ? [{ name: 'cp', role: 'control-plane' as const, kubeletVersion: FROM }] : []),
    ...Array.from({ length: workers }, (_, i) => ({ name: `w${i + 1}`, kubeletVersion: FROM })),
  ];
  await env.createNodes(specs);
  const replicas = o.replicas ?? workers;
  if (replicas > 0) {
    await createIn(env.kube, deployment(env.namespace, 'web', replicas, { pool: env.namespace }));
    await createIn(env.kube, podDisruptionBudget(env.namespace, 'web-pdb', { app: 'web' }, { maxUnavailable: 1 }));
    await waitPodsRunning(env.kube, env.namespace, { app: 'web' }, replicas);
    await waitPdb(env.kube, env.namespace, 'web-pdb', { disruptionsAllowed: 1, currentHealthy: replicas });
  }
  const journalFile = join(dir, `${env.namespace}.json`);
  return {
    env,
    ns: env.namespace,
    journalFile,
    nodes: [...env.nodes],
    common: ['--namespace', env.namespace, '--journal-file', journalFile, '--kubeconfig', ctx.kubeconfig],
  };
}

function lifeboat(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return runCli(args, { timeoutMs: opts.timeoutMs ?? 240_000, ...(opts.env ? { env: opts.env } : {}) });
}

function runArgs(s: Scenario, extra: string[], common = s.common): string[] {
  return ['upgrade', 'run', '--to', TO, '-l', `${POOL_LABEL}=${s.ns}`, '--ignore-daemonsets', '--skip-snapshot', '--gate-timeout', '60s', '--wait-timeout', '60s', ...common, ...extra];
}

function journalOf(r: CliResult): RunJournal {
  try {
    const parsed = JSON.parse(r.stdout) as RunJournal & { journal?: RunJournal };
    return parsed.kind === 'UpgradeRun' ? parsed : (parsed.journal as RunJournal);
  } catch {
    throw new Error(`no JSON journal (exit ${r.code}): ${r.stdout.slice(0, 500)} ${r.stderr.slice(-3000)}`);
  }
}

async function clusterJournal(s: Scenario): Promise<RunJournal | undefined> {
  const cm = await s.env.kube.getOrUndefined<{ data?: Record<string, string> }>(`/api/v1/namespaces/${s.ns}/configmaps/lifeboat-upgrade`);
  return cm?.data?.['journal.json'] ? (JSON.parse(cm.data['journal.json']) as RunJournal) : undefined;
}

async function lease(s: Scenario): Promise<{ spec: { holderIdentity?: string } } | undefined> {
  return s.env.kube.getOrUndefined(`/apis/coordination.k8s.io/v1/namespaces/${s.ns}/leases/lifeboat-upgrade`);
}

async function nodesOf(s: Scenario): Promise<Node[]> {
  return (await s.env.kube.list<Node>('/api/v1/nodes', { labelSelector: `${POOL_LABEL}=${s.ns}` })).items;
}

const version = (n: Node) => (n.status as { nodeInfo?: { kubeletVersion?: string } } | undefined)?.nodeInfo?.kubeletVersion;

/** Watches the Deployment's Ready pods until stopped; returns the fewest seen. */
function watchReady(s: Scenario): { stop: () => Promise<{ min: number; samples: number }> } {
  let running = true;
  let min = Infinity;
  let samples = 0;
  const loop = (async () => {
    while (running) {
      const pods = await listPods(s.env.kube, s.ns, { app: 'web' });
      const ready = pods.filter((p) => isRunningReady(p) && !p.metadata.deletionTimestamp).length;
      min = Math.min(min, ready);
      samples++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { min, samples };
    },
  };
}

describe('upgrade run', () => {
  it('upgrades a control-plane node and four workers one at a time, after a verified etcd snapshot, never below the PDB', async () => {
    const s = await scenario('upgrade-full', 4, { controlPlane: true });
    const store = join(dir, 'store-full');
    const watch = watchReady(s);
    const r = await lifeboat([
      ...runArgs(s, ['--action', `${upgradeScript} {node} {version}`, '-o', 'json']).filter((a) => a !== '--skip-snapshot'),
      '--endpoints',
      ctx.etcd.endpoint,
      '--store',
      store,
    ]);
    const seen = await watch.stop();
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const j = journalOf(r);
    expect(j.status).toBe('succeeded');

    // Control plane first, then each worker alone, each started after the one before was done.
    expect(j.steps.map((st) => st.nodes.length)).toEqual([1, 1, 1, 1, 1]);
    expect(j.steps[0]!.role).toBe('control-plane');
    expect(j.nodes.every((n) => n.phase === 'done' && !n.error)).toBe(true);
    const ordered = j.steps.map((st) => j.nodes.find((n) => n.node === st.nodes[0])!);
    for (let i = 1; i < ordered.length; i++) expect(Date.parse(ordered[i]!.startedAt!)).toBeGreaterThanOrEqual(Date.parse(ordered[i - 1]!.finishedAt!));
    // Workers had pods to evict; the control-plane node (tainted) had none.
    expect(ordered[0]!.evicted).toBe(0);
    expect(ordered.slice(1).reduce((sum, n) => sum + (n.evicted ?? 0), 0)).toBeGreaterThanOrEqual(4);

    // Every node at the target and schedulable again; the workload whole.
    for (const n of await nodesOf(s)) {
      expect(version(n)).toBe(TO);
      expect(n.spec.unschedulable ?? false).toBe(false);
    }
    await waitPodsRunning(s.env.kube, s.ns, { app: 'web' }, 4);
    // maxUnavailable 1 over 4 replicas: never fewer than 3 Ready while watching.
    expect(seen.samples).toBeGreaterThan(20);
    expect(seen.min).toBeGreaterThanOrEqual(3);

    // The snapshot was taken first, stored, verified and labelled.
    expect(j.snapshot && 'id' in j.snapshot ? j.snapshot.verified : false).toBe(true);
    const snapId = j.snapshot && 'id' in j.snapshot ? j.snapshot.id : '';
    const listed = await lifeboat(['backups', 'list', '--store', store, '-o', 'json']);
    const { backups } = JSON.parse(listed.stdout) as { backups: { id: string; ok: boolean; labels: Record<string, string> }[] };
    const b = backups.find((x) => x.id === snapId);
    expect(b?.ok).toBe(true);
    expect(b?.labels).toMatchObject({ reason: 'pre-upgrade', 'upgrade-run': j.runId, 'upgrade-target': TO });
    expect(Date.parse(j.createdAt)).toBeLessThanOrEqual(Date.parse(ordered[0]!.startedAt!));

    // Journal in the ConfigMap and the local copy agree; the lock is released.
    const cm = await clusterJournal(s);
    expect(cm?.runId).toBe(j.runId);
    expect(cm?.status).toBe('succeeded');
    const local = JSON.parse(await readFile(s.journalFile, 'utf8')) as RunJournal;
    expect(local.runId).toBe(j.runId);
    expect(local.seq).toBe(cm?.seq);
    expect(await lease(s)).toBeUndefined();

    const st = await lifeboat(['upgrade', 'status', ...s.common]);
    expect(st.code).toBe(0);
    expect(st.stdout).toContain(`${j.runId} to ${TO}: succeeded, 5/5 nodes done`);
    // Nothing left to do: a new run says so.
    const again = await lifeboat(runArgs(s, ['--action', `${upgradeScript} {node} {version}`]));
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to do|at-target/i);
  });

  it('refuses a second run while one holds the lock; after SIGKILL, resume finishes the run', async () => {
    const s = await scenario('upgrade-kill', 3);
    const child: ChildProcess = spawn(process.execPath, [CLI, ...runArgs(s, ['--action', `${upgradeScript} {node} {version}`])], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, UPGRADE_DELAY: '12' },
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      // Wait until the second node is in its action.
      await waitFor(
        'the run to reach the second node',
        async () => {
          const j = await clusterJournal(s);
          return j?.nodes[1]?.phase === 'action' ? j : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 200 },
      );

      // A concurrent run is refused by the lock, naming the holder; it changes nothing.
      const second = await lifeboat(runArgs(s, ['--action', `${upgradeScript} {node} {version}`]));
      expect(second.code, second.stderr).toBe(7);
      const holder = (await lease(s))?.spec.holderIdentity ?? '';
      expect(holder).toContain(String(child.pid));
      expect(second.stderr).toContain('holds the lock');
      expect(second.stderr).toContain(`process ${child.pid}`);
    } finally {
      child.kill('SIGKILL');
    }
    await exited;

    // The killed run left its node cordoned, its journal "running" and its lease behind.
    const after = await clusterJournal(s);
    expect(after?.status).toBe('running');
    const second = after!.nodes[1]!.node;
    expect((await s.env.kube.get<Node>(`/api/v1/nodes/${second}`)).spec.unschedulable).toBe(true);
    expect((await lease(s))?.spec.holderIdentity).toContain(String(child.pid));

    const status = await lifeboat(['upgrade', 'status', ...s.common, '-o', 'json']);
    expect(status.code).toBe(0);
    const journal = (JSON.parse(status.stdout) as { journal: RunJournal }).journal;
    expect(journal.nodes[0]!.phase).toBe('done');
    const actionPid = journal.nodes[1]!.actionPid;
    expect(actionPid).toBeGreaterThan(0);

    // The killed run's action (its own process group) still runs: resume refuses, touching nothing.
    const early = await lifeboat(['upgrade', 'resume', ...s.common]);
    expect(early.code, early.stderr.slice(-3000)).toBe(7);
    expect(early.stderr).toContain(`still running (pid ${actionPid})`);
    // It took the dead process's lock at once (and gave it back).
    expect(early.stderr).toContain('took over the lock');
    expect(await lease(s)).toBeUndefined();
    expect((await s.env.kube.get<Node>(`/api/v1/nodes/${second}`)).spec.unschedulable).toBe(true);
    await waitFor('the orphaned action to end', async () => {
      try {
        process.kill(actionPid!, 0);
        return false;
      } catch {
        return true;
      }
    }, { timeoutMs: 30_000 });

    // Resume takes over the dead process's lock at once and finishes.
    const resumed = await lifeboat(['upgrade', 'resume', ...s.common, '-o', 'json'], { env: { UPGRADE_DELAY: '1' } });
    expect(resumed.code, resumed.stderr.slice(-3000)).toBe(0);
    const j = journalOf(resumed);
    expect(j.status).toBe('succeeded');
    expect(j.history.some((h) => h.event.startsWith('resumed by'))).toBe(true);
    // That action had upgraded the node: it was not run again.
    expect(j.nodes[1]!.note).toMatch(/found Ready at v1.36.3 on resume/);
    expect(resumed.stderr).not.toContain(`upgrading ${second}`);
    for (const n of await nodesOf(s)) {
      expect(version(n)).toBe(TO);
      expect(n.spec.unschedulable ?? false).toBe(false);
    }
    expect(await lease(s)).toBeUndefined();
    expect(stderr).toContain('step 1/3');
  });

  it('stops on a failing action with the node uncordoned and the journal naming the failure; resume with a fixed action finishes', async () => {
    const s = await scenario('upgrade-fail', 2);
    const r = await lifeboat(runArgs(s, ['--action', `${failScript} {node}`, '-o', 'json']));
    expect(r.code, r.stderr.slice(-3000)).toBe(1);
    const j = journalOf(r);
    expect(j.status).toBe('failed');
    const [first, second] = j.nodes;
    expect(j.failure?.node).toBe(first!.node);
    expect(j.failure?.phase).toBe('action');
    expect(j.failure?.message).toContain('exited with code 3');
    expect(j.failure?.message).toContain('disk full');
    expect(first!.error?.phase).toBe('action');
    expect(second!.phase).toBe('pending');
    expect(r.stderr).toContain('uncordoned');
    for (const n of await nodesOf(s)) {
      expect(n.spec.unschedulable ?? false).toBe(false);
      expect(version(n)).toBe(FROM);
    }
    expect((await clusterJournal(s))?.failure?.message).toContain('disk full');
    expect(await lease(s)).toBeUndefined();

    // A new run will not replace the unfinished one.
    const fresh = await lifeboat(runArgs(s, ['--action', `${upgradeScript} {node} {version}`]));
    expect(fresh.code).toBe(7);
    expect(fresh.stderr).toContain('upgrade resume');

    const table = await lifeboat(['upgrade', 'status', ...s.common]);
    expect(table.stdout).toContain(`Stopped at node ${first!.node} (action)`);

    // From a machine without the run's local journal copy, the ConfigMap alone does not choose the command.
    const elsewhere = await lifeboat(['upgrade', 'resume', ...s.common.map((a) => (a === s.journalFile ? join(dir, 'elsewhere.json') : a))]);
    expect(elsewhere.code, elsewhere.stderr).toBe(2);
    expect(elsewhere.stderr).toContain('give its action again');
    expect(await lease(s)).toBeUndefined();

    const resumed = await lifeboat(['upgrade', 'resume', ...s.common, '--action', `${upgradeScript} {node} {version}`, '-o', 'json']);
    expect(resumed.code, resumed.stderr.slice(-3000)).toBe(0);
    expect(journalOf(resumed).nodes.every((n) => n.phase === 'done')).toBe(true);
    for (const n of await nodesOf(s)) expect(version(n)).toBe(TO);
  });

  it('a Job whose image cannot be pulled fails with the pod reason; abort drops the run; a Job that succeeds upgrades the node', async () => {
    const s = await scenario('upgrade-job', 1, { replicas: 0 });
    const node = s.nodes[0]!;
    const bad = await lifeboat(runArgs(s, ['--job-image', UNPULLABLE_IMAGE, '--action-timeout', '2m', '-o', 'json']));
    expect(bad.code, bad.stderr.slice(-3000)).toBe(1);
    const j = journalOf(bad);
    expect(j.failure?.phase).toBe('action');
    expect(j.failure?.message).toContain('ErrImagePull');
    expect(j.failure?.message).toContain(UNPULLABLE_IMAGE);
    expect((await s.env.kube.get<Node>(`/api/v1/nodes/${node}`)).spec.unschedulable ?? false).toBe(false);

    const abort = await lifeboat(['upgrade', 'abort', ...s.common, '--yes', '-o', 'json']);
    expect(abort.code, abort.stderr).toBe(0);
    expect((JSON.parse(abort.stdout) as { status: string }).status).toBe('aborted');
    expect((await clusterJournal(s))?.status).toBe('aborted');

    // A privileged Job in a namespace whose Pod Security forbids it: the controller's refusal is the reason.
    await s.env.kube.patch(`/api/v1/namespaces/${s.ns}`, { metadata: { labels: { 'pod-security.kubernetes.io/enforce': 'baseline' } } });
    const refused = await lifeboat(runArgs(s, ['--job-image', 'registry.example/node-upgrader:1', '--job-privileged', '-o', 'json']));
    await s.env.kube.patch(`/api/v1/namespaces/${s.ns}`, { metadata: { labels: { 'pod-security.kubernetes.io/enforce': null } } });
    expect(refused.code, refused.stdout + refused.stderr.slice(-3000)).toBe(1);
    expect(journalOf(refused).failure?.message).toMatch(/cannot create its pod: .*violates PodSecurity "baseline/);
    expect((await s.env.kube.get<Node>(`/api/v1/nodes/${node}`)).spec.unschedulable ?? false).toBe(false);
    const abort2 = await lifeboat(['upgrade', 'abort', ...s.common, '--yes', '-o', 'json']);
    expect(abort2.code, abort2.stderr).toBe(0);

    // A Job that completes; the "new kubelet" (this test) reports the target once it has.
    let patched = false;
    const patcher = (async () => {
      const deadline = Date.now() + 120_000;
      while (!patched && Date.now() < deadline) {
        const jobs = await s.env.kube.list<KubeObject & { status?: { succeeded?: number }; spec: { template: { spec: Record<string, unknown> } } }>(
          `/apis/batch/v1/namespaces/${s.ns}/jobs`,
          { labelSelector: `lifeboat.io/upgrade-node=${node}` },
        );
        const done = jobs.items.find((x) => x.spec.template.spec.containers && (x.status?.succeeded ?? 0) > 0 && (x.spec.template.spec.containers as { image: string }[])[0]!.image === 'registry.example/node-upgrader:1');
        if (done) {
          expect(done.spec.template.spec.nodeName).toBe(node);
          expect(done.spec.template.spec.tolerations).toEqual([{ operator: 'Exists' }]);
          expect((done.spec.template.spec.containers as { command: string[] }[])[0]!.command).toEqual(['upgrade-node', `--node=${node}`, TO]);
          await s.env.kube.patch(`/api/v1/nodes/${node}/status`, { status: { nodeInfo: { kubeletVersion: TO } } }, 'strategic');
          patched = true;
        }
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const good = await lifeboat(runArgs(s, ['--job-image', 'registry.example/node-upgrader:1', '--job-command', 'upgrade-node --node={node} {version}', '-o', 'json']));
    await patcher;
    expect(patched).toBe(true);
    expect(good.code, good.stderr.slice(-3000)).toBe(0);
    expect(journalOf(good).status).toBe('succeeded');
  });

  it('--wait-external waits for someone else to bring the node to the target', async () => {
    const s = await scenario('upgrade-ext', 1, { replicas: 0 });
    const node = s.nodes[0]!;
    const bump = (async () => {
      await waitFor('the node to be cordoned by the run', async () => (await s.env.kube.get<Node>(`/api/v1/nodes/${node}`)).spec.unschedulable === true, { timeoutMs: 60_000 });
      await new Promise((r) => setTimeout(r, 2000));
      await s.env.kube.patch(`/api/v1/nodes/${node}/status`, { status: { nodeInfo: { kubeletVersion: TO } } }, 'strategic');
    })();
    const r = await lifeboat(runArgs(s, ['--wait-external', '-o', 'json']));
    await bump;
    expect(r.code, r.stderr.slice(-3000)).toBe(0);
    const n = journalOf(r).nodes[0]!;
    expect(n.phase).toBe('done');
    expect(n.durations.wait ?? 0).toBeGreaterThanOrEqual(1.5);
  });

  it('the API server lost mid-run: the run stops resumably with the node put back; resume goes on without running the action again', async () => {
    const s = await scenario('upgrade-outage', 2);
    const [first] = s.nodes as [string, string];
    const target = new URL(s.env.kube.server);
    const proxy = new TcpProxy(target.hostname, Number(target.port));
    const port = await proxy.start();
    const cfg = parseYaml(await readFile(ctx.kubeconfig, 'utf8')) as { clusters: { cluster: { server: string } }[] };
    for (const c of cfg.clusters) c.cluster.server = `https://127.0.0.1:${port}`;
    const proxied = join(dir, `${s.ns}.kubeconfig`);
    await writeFile(proxied, stringifyYaml(cfg), { mode: 0o600 });
    const common = s.common.map((a) => (a === ctx.kubeconfig ? proxied : a));
    try {
      // The action (which reaches the API server directly) upgrades the node while lifeboat cannot reach it.
      const running = lifeboat(runArgs(s, ['--action', `${upgradeScript} {node} {version}`, '--api-retry-timeout', '5s', '-o', 'json'], common), { env: { UPGRADE_DELAY: '4' } });
      await waitFor('the first node to be in its action', async () => (await clusterJournal(s))?.nodes[0]?.phase === 'action', { timeoutMs: 120_000, intervalMs: 200 });
      await proxy.stop();
      await new Promise((r) => setTimeout(r, 15_000));
      await proxy.start(port);
      const r = await running;
      expect(r.code, r.stderr.slice(-3000)).toBe(1);
      const local = JSON.parse(await readFile(s.journalFile, 'utf8')) as RunJournal;
      expect(local.status).toBe('failed');
      expect(local.failure?.node).toBe(first);
      expect(local.failure?.message).toMatch(/Cannot save the run journal|Cannot reach the Kubernetes API server/);
      // Put back once the API server answered again; the action had done its work.
      const node = await s.env.kube.get<Node>(`/api/v1/nodes/${first}`);
      expect(node.spec.unschedulable ?? false).toBe(false);
      expect(version(node)).toBe(TO);

      const resumed = await lifeboat(['upgrade', 'resume', ...common, '-o', 'json']);
      expect(resumed.code, resumed.stderr.slice(-3000)).toBe(0);
      const j = journalOf(resumed);
      expect(j.status).toBe('succeeded');
      expect(j.nodes[0]!.attempt).toBe(1);
      expect(resumed.stderr).not.toContain(`upgrading ${first}`);
      expect(resumed.stderr).toContain(`upgrading ${s.nodes[1]}`);
      for (const n of await nodesOf(s)) expect(version(n)).toBe(TO);
    } finally {
      await proxy.stop();
    }
  });

  it('bad input: clear errors and exit codes, nothing changed', async () => {
    const s = await scenario('upgrade-bad', 1, { replicas: 0 });
    const action = ['--action', `${upgradeScript} {node} {version}`];
    const cases: [string[], number, RegExp][] = [
      [runArgs(s, action).map((a) => (a === TO ? 'v1.36' : a)), 2, /not a Kubernetes version|Invalid|version/i],
      [runArgs(s, action).map((a) => (a === TO ? 'v1.38.0' : a)), 7, /skip|minor/i],
      [runArgs(s, action).map((a) => (a === TO ? 'v1.35.0' : a)), 7, /older|downgrade/i],
      [['upgrade', 'run', '--to', TO, 'no-such-node', '--ignore-daemonsets', '--skip-snapshot', ...action, ...s.common], 4, /not found: no-such-node/],
      [runArgs(s, ['--action', '/nonexistent/upgrade {node}']), 2, /does not exist or is not executable/],
      [runArgs(s, ['--action', 'upgrade-node {node} | tee log']), 2, /shell operator/],
      [runArgs(s, []), 2, /--action, --job-image or --wait-external/],
      [runArgs(s, action).filter((a) => a !== '--skip-snapshot'), 2, /etcd snapshot first/],
    ];
    for (const [args, code, message] of cases) {
      const r = await lifeboat(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(code);
      expect(r.stdout + r.stderr).toMatch(message);
    }
    for (const n of await nodesOf(s)) {
      expect(n.spec.unschedulable ?? false).toBe(false);
      expect(version(n)).toBe(FROM);
    }
    expect(await clusterJournal(s)).toBeUndefined();
    expect(await lease(s)).toBeUndefined();
    const none = await lifeboat(['upgrade', 'status', ...s.common]);
    expect(none.code).toBe(4);
  });
});
