#!/usr/bin/env node
// Benchmark: `lifeboat node drain` against `kubectl drain` (the rig's kubectl, same version as the
// API server) on the same scenario, alternating in the same run: a node holding N pods of one
// Deployment (kwok: pods terminate at once), drained onto a second node; then the other tool
// drains them back. Reports wall time and peak RSS per run (GNU time), medians and the ratio.
//
//   npm run build && bash test/rig/build.sh
//   node bench/node-drain.mjs --pods 100 --runs 5
//
// Options: --pods N (100), --runs N per tool (5), --json FILE (results; default printed only).
// lifeboat runs with its pre-flight (the default), so its time includes reading the cluster.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { build } from 'rolldown';

const execFileP = promisify(execFile);
const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({ options: { pods: { type: 'string', default: '100' }, runs: { type: 'string', default: '5' }, json: { type: 'string' } } });
const PODS = Number(opt.pods);
const RUNS = Number(opt.runs);

// The rig's launcher is TypeScript: bundle it next to the repo's node_modules and load it.
const rigFile = join(repo, 'bench', `.kube-rig-${process.pid}.tmp.mjs`);
await build({ input: join(repo, 'test/rig/kube.ts'), platform: 'node', external: [/^node:/, /^[a-z@]/], output: { file: rigFile, format: 'esm' }, write: true });
const rig = await import(rigFile);
await rm(rigFile, { force: true });

const work = await mkdtemp(join(tmpdir(), 'lifeboat-bench-drain-'));
console.error('starting the control plane...');
const cluster = await rig.startKubeCluster();
const kubectlBin = rig.readKubeRig().bins.kubectl;
const kubectl = async (args, input) => {
  const p = execFileP(kubectlBin, ['--kubeconfig', cluster.kubeconfig, ...args], { maxBuffer: 64 << 20 });
  if (input !== undefined) p.child.stdin.end(input);
  return (await p).stdout;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs a command under GNU time; resolves with wall seconds, peak RSS (KiB) and the exit code. */
async function timed(cmd, args, env = {}) {
  const timeFile = join(work, 'time.txt');
  const t0 = process.hrtime.bigint();
  let code = 0;
  let stderr = '';
  try {
    await execFileP('/usr/bin/time', ['-f', '%M', '-o', timeFile, cmd, ...args], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 });
  } catch (err) {
    code = err.code ?? 1;
    stderr = err.stderr ?? '';
  }
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const { readFile } = await import('node:fs/promises');
  const rssKiB = Number((await readFile(timeFile, 'utf8')).trim().split('\n').pop());
  return { wall, rssKiB, code, stderr };
}

async function waitRunningOn(node) {
  for (;;) {
    const out = JSON.parse(await kubectl(['get', 'pods', '-n', 'bench', '-l', 'app=load', '-o', 'json']));
    const ok = out.items.filter((p) => p.spec.nodeName === node && p.status.phase === 'Running' && !p.metadata.deletionTimestamp);
    if (ok.length === PODS && out.items.length === PODS) return;
    await sleep(250);
  }
}

try {
  const nodes = ['bench-a', 'bench-b'];
  const nodeYaml = nodes
    .map(
      (name, i) => `apiVersion: v1
kind: Node
metadata:
  name: ${name}
  labels: { kubernetes.io/hostname: ${name}, pool: bench }
  annotations: { ${rig.KWOK_NODE_ANNOTATION}: fake, node.alpha.kubernetes.io/ttl: "0" }
spec: { podCIDR: 10.245.${i}.0/24 }
status:
  allocatable: { cpu: "64", memory: 256Gi, pods: "${PODS + 50}" }
  capacity: { cpu: "64", memory: 256Gi, pods: "${PODS + 50}" }
  nodeInfo: { kubeletVersion: ${cluster.version} }
`,
    )
    .join('---\n');
  await kubectl(['apply', '-f', '-'], nodeYaml);
  await kubectl(['create', 'namespace', 'bench']);
  await kubectl(['wait', '--for=condition=Ready', 'node/bench-a', 'node/bench-b', '--timeout=120s']);
  await kubectl(['cordon', 'bench-b']);
  await kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'load', namespace: 'bench' },
    spec: {
      replicas: PODS,
      selector: { matchLabels: { app: 'load' } },
      template: { metadata: { labels: { app: 'load' } }, spec: { nodeSelector: { pool: 'bench' }, containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10' }] } },
    },
  }));
  await waitRunningOn('bench-a');
  let from = 'bench-a';
  const results = { lifeboat: [], kubectl: [] };
  // A warm-up pair, then RUNS pairs; tools alternate, each drain moves every pod to the other node.
  for (let i = 0; i < 2 * (RUNS + 1); i++) {
    const tool = i % 2 === 0 ? 'lifeboat' : 'kubectl';
    const to = from === 'bench-a' ? 'bench-b' : 'bench-a';
    await kubectl(['uncordon', to]);
    await sleep(1000);
    const r =
      tool === 'lifeboat'
        ? await timed(process.execPath, [join(repo, 'bin/run.js'), 'node', 'drain', from, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout', '5m', '--kubeconfig', cluster.kubeconfig, '-o', 'json'])
        : await timed(kubectlBin, ['--kubeconfig', cluster.kubeconfig, 'drain', from, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=5m']);
    if (r.code !== 0) throw new Error(`${tool} drain failed (${r.code}): ${r.stderr.slice(-2000)}`);
    await waitRunningOn(to);
    if (i >= 2) results[tool].push({ wall: r.wall, rssMiB: r.rssKiB / 1024 });
    console.error(`${i < 2 ? 'warm-up ' : ''}${tool.padEnd(8)} ${from} -> ${to}: ${r.wall.toFixed(2)} s, ${(r.rssKiB / 1024).toFixed(0)} MiB`);
    from = to;
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const summary = {
    pods: PODS,
    runs: RUNS,
    kubernetes: cluster.version,
    lifeboat: { medianWall: median(results.lifeboat.map((r) => r.wall)), peakRssMiB: Math.max(...results.lifeboat.map((r) => r.rssMiB)), runs: results.lifeboat },
    kubectl: { medianWall: median(results.kubectl.map((r) => r.wall)), peakRssMiB: Math.max(...results.kubectl.map((r) => r.rssMiB)), runs: results.kubectl },
  };
  summary.ratio = summary.lifeboat.medianWall / summary.kubectl.medianWall;
  console.log(JSON.stringify(summary, null, 2));
  if (opt.json) await writeFile(opt.json, JSON.stringify(summary, null, 2));
} finally {
  await cluster.stop();
  await rm(work, { recursive: true, force: true });
}
