// `npm run demo`: the main job on the embedded default. Starts a throwaway etcd, writes sample
// Kubernetes-like data, snapshots it into the local-directory store (./lifeboat-backups), shows
// the backup, restores it into a new data dir, starts etcd on that and checks every key matches.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';
import { freePort, startLocalEtcd } from '../dist/etcd/local.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const bin = join(root, 'bin', 'run.js');
const store = process.env.LIFEBOAT_STORE || './lifeboat-backups';
const etcdBin = process.env.LIFEBOAT_DEMO_ETCD || '/usr/bin/etcd';
const started = [];

/** A local etcd member with a client for the demo's reads and writes. */
async function startEtcd(dataDir, peerPort) {
  const etcd = await startLocalEtcd({ bin: etcdBin, dataDir, name: 'default', clientPort: await freePort(), peerPort: peerPort ?? (await freePort()) });
  started.push(etcd);
  const client = new Etcd3({ hosts: [etcd.endpoint] });
  return { url: etcd.endpoint, client, stop: async () => (client.close(), await etcd.stop()) };
}

function lifeboat(...args) {
  console.log(`\n$ lifeboat ${args.join(' ')}`);
  return execFileSync(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
}

const work = await mkdtemp(join(tmpdir(), 'lifeboat-demo-'));
try {
  console.log(`Starting a throwaway etcd (${etcdBin}) in ${work} ...`);
  const etcd = await startEtcd(join(work, 'etcd-data'));
  let written = 0;
  for (let ns = 0; ns < 5; ns++) {
    await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const name = `app-config-${i}`;
        const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: `team-${ns}` }, data: { 'settings.yaml': `replicas: ${i % 5 + 1}\nlevel: info\n` } };
        written++;
        return etcd.client.put(`/registry/configmaps/team-${ns}/${name}`).value(JSON.stringify(cm));
      }),
    );
  }
  console.log(`Wrote ${written} ConfigMaps under /registry/configmaps/.`);

  const out = lifeboat('etcd', 'snapshot', '--endpoints', etcd.url, '--store', store, '--label', 'source=demo', '-o', 'json');
  const manifest = JSON.parse(out);
  console.log(`stored ${manifest.id}: ${manifest.objects[0].name}, ${manifest.objects[0].size} bytes (db ${manifest.details.dbSize} bytes, revision ${manifest.details.revision})`);
  process.stdout.write(lifeboat('backups', 'list', '--store', store));
  process.stdout.write(lifeboat('backups', 'verify', manifest.id, '--store', store, '--restore-test'));
  process.stdout.write(lifeboat('etcd', 'status', manifest.id, '--store', store));
  process.stdout.write(lifeboat('etcd', 'inspect', manifest.id, '--store', store, '--kubernetes'));

  const restored = join(work, 'restored-data');
  const peer = await freePort();
  process.stdout.write(
    lifeboat('etcd', 'restore', manifest.id, '--store', store, '--data-dir', restored,
      '--initial-cluster', `default=http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`),
  );

  console.log('\nStarting etcd on the restored data dir and comparing every key ...');
  const original = await etcd.client.getAll().prefix('').strings();
  await etcd.stop();
  const again = await startEtcd(restored, peer);
  const back = await again.client.getAll().prefix('').strings();
  await again.stop();
  const same = Object.keys(original).length === Object.keys(back).length && Object.entries(original).every(([k, v]) => back[k] === v);
  console.log(same ? `OK: all ${Object.keys(back).length} keys and values match.` : 'MISMATCH: the restored etcd differs from the original.');
  process.exitCode = same ? 0 : 1;
  console.log(`\nThe backup stays in ${store}; try: npx lifeboat backups describe ${manifest.id} --store ${store}`);
} finally {
  await Promise.all(started.map((e) => e.stop()));
  await rm(work, { recursive: true, force: true });
}
