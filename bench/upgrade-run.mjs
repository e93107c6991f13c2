#!/usr/bin/env node
// Benchmark: the orchestration overhead of `lifeboat upgrade run` per node, beyond the drain, the
// action and the wait for readiness (issue target: at most 5 s per node). A pool of kwok worker
// nodes at v1.35.2 with a Deployment spread over them under a PDB (maxUnavailable 1); the action
// patches the node's kubelet version at once (kubectl), so it costs about one kubectl call.
//
//   npm run build && bash test/rig/build.sh
//   node bench/upgrade-run.mjs --nodes 4 --runs 3
//
// For each run: wall time and peak RSS of the CLI (GNU time), and from the run's journal the
// seconds each node spent per phase. Overhead per node = (wall time of the run - the sum over
// nodes of drain + action + wait) / nodes: start-up, plan, lock, pre-flights, cordons, journal
// writes, uncordons and gates. Between runs the nodes are set back to v1.35.2.
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { build } from 'rolldown';

const execFileP = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({ options: { nodes: { type: 'string', default: '4' }, runs: { type: 'string', default: '3' }, json: { type: 'string' } } });
const NODES = Number(opt.nodes);
const RUNS = Number(opt.runs);
const FROM = 'v1.35.2';

const rigFile = join(repo, 'bench', `.kube-rig-${process.pid}.tmp.mjs`);
await build({ input: join(repo, 'test/rig/kube.ts'), platform: 'node', external: [/^node:/, /^[a-z@]/], output: { file: rigFile, format: 'esm' }, write: true });
const rig = await import(rigFile);
await rm(rigFile, { force: true });

const work = await mkdtemp(join(tmpdir(), 'lifeboat-bench-upgrade-'));
console.error('starting the control plane...');
const cluster = await rig.startKubeCluster();
const TO = cluster.version;
const kubectlBin = rig.readKubeRig().bins.kubectl;
const kubectl = async (args, input) => {
  const p = execFileP(kubectlBin, ['--kubeconfig', cluster.kubeconfig, ...args], { maxBuffer: 64 << 20 });
  if (input !== undefined) p.child.stdin.end(input);
  return (await p).stdout;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const names = Array.from({ length: NODES }, (_, i) => `bench-w${i + 1}`);

async function setVersion(node, version) {
  await kubectl(['patch', 'node', node, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { nodeInfo: { kubeletVersion: version } } })]);
}

async function waitHealthy() {
  for (;;) {
    const pdb = JSON.parse(await kubectl(['get', 'pdb', '-n', 'bench', 'load', '-o', 'json']));
    if ((pdb.status?.currentHealthy ?? 0) === 2 * NODES && (pdb.status?.disruptionsAllowed ?? 0) >= 1) return;
    await sleep(250);
  }
}

try {
  const nodeYaml = names
    .map(
      (name, i) => `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: { kubernetes.io/hostname: ${name}, pool: bench, node-role.kubernetes.io/worker: "" }
  annotations: { ${rig.KWOK_NODE_ANNOTATION}: fake, node.alpha.kubernetes.io/ttl: "0" }
spec: { podCIDR: 10.245.${i}.0/24 }
status:
  allocatable: { cpu: "16", memory: 64Gi, pods: "110" }
  capacity: { cpu: "16", memory: 64Gi, pods: "110" }
  nodeInfo: { kubeletVersion: ${FROM} }
`,
    )
    .join('---\n');
  await kubectl(['apply', '-f', '-'], nodeYaml);
  await kubectl(['create', 'namespace', 'bench']);
  await kubectl(['wait', '--for=condition=Ready', ...names.map((n) => `node/${n}`), '--timeout=120s']);
  await kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'load', namespace: 'bench' },
    spec: {
      replicas: 2 * NODES,
      selector: { matchLabels: { app: 'load' } },
      template: {
        metadata: { labels: { app: 'load' } },
        spec: {
          nodeSelector: { pool: 'bench' },
          topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: { app: 'load' } } }],
          containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }],
        },
      },
    },
  }));
  await kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'load', namespace: 'bench' }, spec: { maxUnavailable: 1, selector: { matchLabels: { app: 'load' } } } }));
  await waitHealthy();

  const action = join(work, 'upgrade.sh');
  await writeFile(action, `#!/bin/sh\nexec '${kubectlBin}' --kubeconfig '${cluster.kubeconfig}' patch node "$1" --subresource=status --type=merge -p "{\\"status\\":{\\"nodeInfo\\":{\\"kubeletVersion\\":\\"$2\\"}}}"\n`);
  await chmod(action, 0o755);

  const runs = [];
  for (let r = 0; r < RUNS; r++) {
    for (const n of names) await setVersion(n, FROM);
    await waitHealthy();
    const timeFile = join(work, 'time.txt');
    const t0 = process.hrtime.bigint();
    let out;
    try {
      out = await execFileP(
        '/usr/bin/time',
        ['-f', '%M', '-o', timeFile, process.execPath, join(repo, 'bin/run.js'), 'upgrade', 'run', '--to', TO, '-l', 'pool=bench', '--ignore-daemonsets', '--skip-snapshot',
          '--action', `${action} {node} {version}`, '--namespace', 'bench', '--journal-file', join(work, 'journal.json'), '--kubeconfig', cluster.kubeconfig, '-o', 'json'],
        { maxBuffer: 64 << 20 },
      );
    } catch (err) {
      throw new Error(`upgrade run failed (${err.code}): ${String(err.stderr).slice(-3000)}`);
    }
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const rssMiB = Number((await readFile(timeFile, 'utf8')).trim().split('\n').pop()) / 1024;
    const j = JSON.parse(out.stdout);
    if (j.status !== 'succeeded') throw new Error(`run ${j.runId} ${j.status}`);
    const sum = (phase) => j.nodes.reduce((s, n) => s + (n.durations[phase] ?? 0), 0);
    const work_ = { drain: sum('drain'), action: sum('action'), wait: sum('wait') };
    const inJournal = { cordon: sum('cordon'), uncordon: sum('uncordon'), gates: sum('gates') };
    const overheadPerNode = (wall - work_.drain - work_.action - work_.wait) / NODES;
    runs.push({ wall, rssMiB, ...work_, ...inJournal, overheadPerNode });
    console.error(
      `run ${r + 1}: ${wall.toFixed(2)} s, ${rssMiB.toFixed(0)} MiB; drain ${work_.drain.toFixed(1)} s, action ${work_.action.toFixed(1)} s, wait ${work_.wait.toFixed(1)} s; cordon ${inJournal.cordon.toFixed(1)} s, uncordon ${inJournal.uncordon.toFixed(1)} s, gates ${inJournal.gates.toFixed(1)} s; overhead ${overheadPerNode.toFixed(2)} s/node`,
    );
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const summary = {
    nodes: NODES,
    runCount: RUNS,
    kubernetes: TO,
    medianWall: median(runs.map((r) => r.wall)),
    medianOverheadPerNode: median(runs.map((r) => r.overheadPerNode)),
    maxOverheadPerNode: Math.max(...runs.map((r) => r.overheadPerNode)),
    peakRssMiB: Math.max(...runs.map((r) => r.rssMiB)),
    runs,
  };
  console.log(JSON.stringify(summary, null, 2));
  if (opt.json) await writeFile(opt.json, JSON.stringify(summary, null, 2));
} finally {
  await cluster.stop();
  await rm(work, { recursive: true, force: true });
}
