import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import type { RestoreReport } from '../../src/snapshot/resources/apply.js';
import type { DumpIndex, DumpResult } from '../../src/snapshot/resources/dump.js';
import { Catalogue } from '../../src/store/catalogue.js';
import { FileStore } from '../../src/store/file-store.js';
import type { BackupManifest } from '../../src/store/manifest.js';
import { dumpTar, storeDumpTar, tarEntryOffsets } from '../helpers/archive.js';
import { runCli } from '../helpers/cli.js';
import { condition, crd, createCrd, e2eEnv, serviceAccountKubeconfig, waitFor, type Condition, type E2eEnv, type KubeObject } from './helpers.js';

const run = promisify(execFile);

describe('resources dump and restore with bad input against a real API server', () => {
  let env: E2eEnv;
  let ns: string;
  let dir: string;
  let store: string;
  let kubeconfig: string;
  const cleanups: (() => Promise<unknown>)[] = [];
  const cli = (args: string[], config = kubeconfig) => runCli([...args, '--kubeconfig', config, '--store', store], { timeoutMs: 170_000 });
  const configMap = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { name } });
  const cmPath = (name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;

  beforeAll(async () => {
    env = await e2eEnv('badin');
    ns = env.namespace;
    kubeconfig = inject('kube').kubeconfig;
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-badin-'));
    store = join(dir, 'store');
  });

  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await env?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('RBAC forbids listing secrets: the dump exits 3, says PARTIAL, names secrets in index.json and keeps what it could read', async () => {
    const k = env.kube;
    await k.create(`/api/v1/namespaces/${ns}/configmaps`, configMap('visible'));
    await k.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hidden' }, stringData: { password: 'hunter2' } });
    await k.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'dumper' } });
    // May list config maps and namespaces, not secrets (discovery is open to every authenticated user).
    const role = `lifeboat-e2e-dumper-${ns}`;
    await k.create('/apis/rbac.authorization.k8s.io/v1/clusterroles', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: role },
      rules: [{ apiGroups: [''], resources: ['configmaps', 'namespaces'], verbs: ['get', 'list'] }],
    });
    cleanups.push(() => k.delete(`/apis/rbac.authorization.k8s.io/v1/clusterroles/${role}`));
    await k.create('/apis/rbac.authorization.k8s.io/v1/clusterrolebindings', {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRoleBinding',
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: 'dumper', namespace: ns }],
    });
    cleanups.push(() => k.delete(`/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${role}`));
    const saConfig = await serviceAccountKubeconfig(k, ns, 'dumper', join(dir, 'dumper.kubeconfig'), { resource: 'configmaps', verb: 'list' });
    const denied = await k.create<{ status: { allowed: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: `system:serviceaccount:${ns}:dumper`, groups: ['system:serviceaccounts', 'system:authenticated'], resourceAttributes: { resource: 'secrets', verb: 'list' } },
    });
    expect(denied.status.allowed).toBe(false);

    const r = await cli(['resources', 'dump', '--include-namespaces', ns, '--include-resources', 'configmaps,secrets,namespaces'], saConfig);
    expect(r.code, r.stderr).toBe(3);
    expect(r.stdout).toMatch(/PARTIAL: could not list secrets\b/);
    expect(r.stderr).toMatch(/could not list secrets: 403 Forbidden/);
    const id = /Dump (resources-\S+):/.exec(r.stdout)?.[1];
    expect(id, r.stdout).toBeDefined();

    // The archive as stored: index.json names the forbidden resource, the readable objects are there.
    const backupDir = join(store, 'resources', id!);
    const manifest = JSON.parse(await readFile(join(backupDir, 'manifest.json'), 'utf8')) as BackupManifest;
    const extracted = join(dir, 'rbac-extracted');
    await mkdir(extracted);
    await run('bash', ['-c', 'zstd -d -q -c "$1" | tar -x -C "$2"', 'x', join(backupDir, manifest.objects[0]!.name), extracted]);
    const index = JSON.parse(await readFile(join(extracted, 'index.json'), 'utf8')) as DumpIndex;
    expect(index.failed).toEqual([{ resource: 'secrets', reason: expect.stringMatching(/^403 Forbidden: .*secrets/) }]);
    expect(index.warnings).toEqual([expect.stringMatching(/^could not list secrets: 403 Forbidden/)]);
    expect(manifest.warnings).toEqual(index.warnings);
    expect(Object.fromEntries(index.resources.map((c) => [c.resource, c.objects]))).toEqual({ configmaps: 2 /* + kube-root-ca.crt */, namespaces: 1 });
    expect((await readdir(join(extracted, 'core', 'configmaps', ns))).sort()).toEqual(['kube-root-ca.crt.yaml', 'visible.yaml']);
    expect(await readdir(join(extracted, 'core'))).not.toContain('secrets');
    expect(JSON.parse(await readFile(join(extracted, 'core', 'namespaces', '_cluster', `${ns}.yaml`), 'utf8'))).toMatchObject({ kind: 'Namespace', metadata: { name: ns } });
  });

  it('credentials bound only in the named namespace dump it: its lists and its Namespace object are read per namespace', async () => {
    const k = env.kube;
    await k.create(`/api/v1/namespaces/${ns}/configmaps`, configMap('mine'));
    await k.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'tenant' } });
    // The built-in "view" role, granted in this namespace only.
    await k.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'tenant-view' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
      subjects: [{ kind: 'ServiceAccount', name: 'tenant', namespace: ns }],
    });
    const saConfig = await serviceAccountKubeconfig(k, ns, 'tenant', join(dir, 'tenant.kubeconfig'), { resource: 'configmaps', verb: 'list', namespace: ns });
    const clusterWide = await k.create<{ status: { allowed: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: { user: `system:serviceaccount:${ns}:tenant`, groups: ['system:serviceaccounts', 'system:authenticated'], resourceAttributes: { resource: 'configmaps', verb: 'list' } },
    });
    expect(clusterWide.status.allowed).toBe(false);

    const r = await cli(['resources', 'dump', '--include-namespaces', ns, '--include-resources', 'configmaps,deployments.apps,namespaces', '-o', 'json'], saConfig);
    expect(r.code, r.stderr).toBe(0);
    const { index } = JSON.parse(r.stdout) as { index: DumpIndex };
    expect(index.failed).toEqual([]);
    const counts = Object.fromEntries(index.resources.map((c) => [c.resource, c.objects]));
    expect(counts.namespaces).toBe(1);
    expect(counts['deployments.apps']).toBe(0);
    expect(counts.configmaps).toBeGreaterThanOrEqual(2); // "mine" and kube-root-ca.crt (and any earlier test's)

    // With a glob the dump lists cluster-wide, which these credentials may not.
    const globbed = await cli(['resources', 'dump', '--include-namespaces', `${ns.slice(0, -1)}*`, '--include-resources', 'configmaps'], saConfig);
    expect(globbed.code).toBe(3);
    expect(globbed.stderr).toMatch(/could not list configmaps: 403 Forbidden/);
  });

  it('a CRD that is never Established: its custom resources fail after --crd-timeout, naming the CRD and its conditions (exit 3)', async () => {
    const k = env.kube;
    const group = `e2e${randomBytes(3).toString('hex')}.example.com`;
    // The target already serves kind Sprocket in this group: a second CRD with that kind has its names refused.
    await createCrd(k, { group, kind: 'Sprocket' });
    cleanups.push(() => k.delete(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/sprockets.${group}`));
    const rival = crd({ group, kind: 'Sprocket', plural: 'sprocketz', singular: 'sprocketz' });
    const rivalName = `sprocketz.${group}`;
    cleanups.push(() => k.delete(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${rivalName}`));
    const id = await storeDumpTar(
      new Catalogue(new FileStore(store)),
      await dumpTar([
        [`apiextensions.k8s.io/customresourcedefinitions/_cluster/${rivalName}.yaml`, toYaml(rival)],
        [`${group}/sprocketz/${ns}/s1.yaml`, toYaml({ apiVersion: `${group}/v1`, kind: 'Sprocket', metadata: { name: 's1', namespace: ns }, spec: { teeth: 9 } })],
        [`core/configmaps/${ns}/bystander.yaml`, toYaml(configMap('bystander'))],
      ]),
    );
    const t0 = Date.now();
    const r = await cli(['resources', 'restore', id, '--crd-timeout', '5s', '-o', 'json']);
    expect(r.code, r.stderr).toBe(3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(5000);
    // The reason the report gives is the API server's.
    const live = await k.get<KubeObject & { status?: { conditions?: Condition[] } }>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${rivalName}`);
    const names = condition(live, 'NamesAccepted');
    expect(names?.status).toBe('False');
    const cause = `NamesAccepted=False (${names!.reason}: ${names!.message})`;
    const report = JSON.parse(r.stdout) as RestoreReport;
    const timeout = `CustomResourceDefinition ${rivalName} did not become Established within 5s: ${cause}`;
    expect(report.objects.find((o) => o.name === rivalName)).toMatchObject({ action: 'failed', reason: expect.stringContaining(`created, but ${timeout}`) });
    expect(report.objects.find((o) => o.name === 's1')).toMatchObject({ resource: `sprocketz.${group}`, action: 'failed', reason: expect.stringContaining(timeout) });
    expect(report.objects.find((o) => o.name === 'bystander')).toMatchObject({ action: 'created' });
    expect(report.counts).toEqual({ created: 1, failed: 2 });
    expect(report.warnings).toEqual([expect.stringContaining(timeout)]);
    // (stderr is not a TTY: the warning is a JSON log line.)
    expect(r.stderr).toContain(`CustomResourceDefinition ${rivalName} did not become Established within 5s: NamesAccepted=False (${names!.reason}`);
    expect((await k.request('GET', `/apis/${group}/v1/namespaces/${ns}/sprocketz/s1`)).status).toBe(404);
  });

  it('a stored dump with flipped or truncated bytes, or a tar cut short with consistent hashes: restore and verify exit 5 and nothing is applied', async () => {
    const k = env.kube;
    for (const name of ['keep-1', 'keep-2']) await k.create(`/api/v1/namespaces/${ns}/configmaps`, configMap(name));
    const dump = async () => {
      const r = await cli(['resources', 'dump', '--include-namespaces', ns, '--include-resources', 'configmaps', '-o', 'json']);
      expect(r.code, r.stderr).toBe(0);
      const { manifest } = JSON.parse(r.stdout) as DumpResult;
      return { id: manifest.id, file: join(store, 'resources', manifest.id, manifest.objects[0]!.name) };
    };
    const [good, flipped, truncated] = [await dump(), await dump(), await dump()];
    for (const name of ['keep-1', 'keep-2']) await k.delete(cmPath(name));
    await waitFor('config maps deleted', async () => (await k.getOrUndefined(cmPath('keep-1'))) === undefined && (await k.getOrUndefined(cmPath('keep-2'))) === undefined);

    // Written straight into the directory store; the manifests stay as they were.
    const bytes = await readFile(flipped.file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    await writeFile(flipped.file, bytes);
    const whole = await readFile(truncated.file);
    await writeFile(truncated.file, whole.subarray(0, Math.floor(whole.length / 2)));

    // Tars cut short whose stored and payload hashes are those of the cut bytes.
    const cat = new Catalogue(new FileStore(store));
    const tar = await dumpTar([
      [`core/configmaps/${ns}/keep-1.yaml`, toYaml(configMap('keep-1'))],
      [`core/configmaps/${ns}/keep-2.yaml`, toYaml(configMap('keep-2'))],
    ]);
    const offsets = tarEntryOffsets(tar);
    const midEntry = await storeDumpTar(cat, tar.subarray(0, offsets.get(`core/configmaps/${ns}/keep-2.yaml`)! + 512 + 20));
    const beforeIndex = await storeDumpTar(cat, tar.subarray(0, offsets.get('index.json')!));

    const cases: [string, string, RegExp][] = [
      ['flipped', flipped.id, new RegExp(`Backup ${flipped.id}(: the stored object does not match its manifest| cannot be decompressed \\(zstd\\))`)],
      ['truncated', truncated.id, new RegExp(`Backup ${truncated.id}(: the stored object does not match its manifest| cannot be decompressed \\(zstd\\))`)],
      ['cut inside an entry', midEntry, /The archive is not a valid tar \(.*\): truncated or corrupt; nothing was applied\./],
      ['cut before index.json', beforeIndex, /The archive has no index\.json: it is truncated or not a lifeboat resource dump; nothing was applied\./],
    ];
    for (const [what, id, message] of cases) {
      const restore = await cli(['resources', 'restore', id]);
      expect(restore.code, `${what}: ${restore.stderr}`).toBe(5);
      expect(restore.stderr, what).toMatch(message);
      expect(restore.stdout, what).toBe('');
      const verify = await runCli(['backups', 'verify', id, '--store', store]);
      expect(verify.code, `${what}: ${verify.stderr}`).toBe(5);
      expect(verify.stderr, what).toMatch(what === 'truncated' || what === 'flipped' ? new RegExp(`Backup ${id} failed verification: resources\\.tar\\.zst \\((sha256 mismatch|size \\d+, expected \\d+)\\)`) : message);
      expect(await k.getOrUndefined(cmPath('keep-1')), what).toBeUndefined();
      expect(await k.getOrUndefined(cmPath('keep-2')), what).toBeUndefined();
    }

    // The intact dump of the same objects restores them: the checks above would have seen them.
    const ok = await cli(['resources', 'restore', good.id, '-o', 'json']);
    expect(ok.code, ok.stderr).toBe(0);
    expect((await k.get(cmPath('keep-1'))).data).toEqual({ name: 'keep-1' });
  });
});
