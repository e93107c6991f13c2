import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { DumpResult } from '../../src/snapshot/resources/dump.js';
import type { RestoreReport } from '../../src/snapshot/resources/apply.js';
import { Catalogue } from '../../src/store/catalogue.js';
import { FileStore } from '../../src/store/file-store.js';
import { dumpTar, storeDumpTar } from '../helpers/archive.js';
import { runCli } from '../helpers/cli.js';
import { createCrd, deployment, e2eEnv, waitFor, waitPodsRunning, type E2eEnv, type KubeObject } from './helpers.js';

const run = promisify(execFile);

describe('resources dump and restore against a real API server', () => {
  let env: E2eEnv;
  let ns: string;
  let dir: string;
  let store: string;
  let group: string;
  let kubeconfig: string;
  let dump: DumpResult;
  const originals = new Map<string, KubeObject>();
  const paths = () => ({
    cm: `/api/v1/namespaces/${ns}/configmaps/settings`,
    secret: `/api/v1/namespaces/${ns}/secrets/creds`,
    sa: `/api/v1/namespaces/${ns}/serviceaccounts/app`,
    role: `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/reader`,
    rb: `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/app-reader`,
    svc: `/api/v1/namespaces/${ns}/services/web`,
    deploy: `/apis/apps/v1/namespaces/${ns}/deployments/web`,
    pvc: `/api/v1/namespaces/${ns}/persistentvolumeclaims/data`,
    w1: `/apis/${group}/v1/namespaces/${ns}/widgets/alpha`,
    w2: `/apis/${group}/v1/namespaces/${ns}/widgets/beta`,
    crd: `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}`,
  });
  const cli = (args: string[]) => runCli([...args, '--kubeconfig', kubeconfig, '--store', store], { timeoutMs: 170_000 });
  /** The failed objects of a JSON restore report, for assertion messages. */
  const failures = (stdout: string) => {
    try {
      return JSON.stringify((JSON.parse(stdout) as RestoreReport).objects.filter((o) => o.action === 'failed'));
    } catch {
      return stdout.slice(0, 2000);
    }
  };

  beforeAll(async () => {
    env = await e2eEnv('res');
    ns = env.namespace;
    kubeconfig = inject('kube').kubeconfig;
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-res-'));
    store = join(dir, 'store');
    group = `e2e${randomBytes(3).toString('hex')}.example.com`;
    const k = env.kube;
    await env.createNodes([{ name: 'w1' }, { name: 'w2' }]);
    await createCrd(k, { group, kind: 'Widget' });
    await k.create(`/api/v1/namespaces/${ns}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', labels: { app: 'web' } }, data: { 'app.yaml': 'level: info\n' } });
    await k.create(`/api/v1/namespaces/${ns}/secrets`, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, type: 'Opaque', stringData: { password: 'hunter2' } });
    await k.create(`/api/v1/namespaces/${ns}/serviceaccounts`, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'app' } });
    await k.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'reader' }, rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }] });
    await k.create(`/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings`, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'app-reader' },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'reader' },
      subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: ns }],
    });
    await k.create(`/api/v1/namespaces/${ns}/services`, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } });
    await k.create(`/api/v1/namespaces/${ns}/persistentvolumeclaims`, { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } });
    await k.create(`/apis/apps/v1/namespaces/${ns}/deployments`, deployment(ns, 'web', 2, { pool: ns }));
    for (const name of ['alpha', 'beta']) {
      await k.create(`/apis/${group}/v1/namespaces/${ns}/widgets`, { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name }, spec: { size: name.length, colour: name === 'alpha' ? 'red' : 'blue' } });
    }
    await waitPodsRunning(k, ns, { app: 'web' }, 2);
    for (const [key, p] of Object.entries(paths())) originals.set(key, await k.get(p));

    const r = await cli([
      'resources', 'dump', '--include-namespaces', ns,
      '--include-resources', `customresourcedefinitions.apiextensions.k8s.io,widgets.${group},deployments.apps,replicasets.apps,pods,services,configmaps,secrets,serviceaccounts,roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io,persistentvolumeclaims,namespaces`,
      '-o', 'json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    dump = JSON.parse(r.stdout) as DumpResult;
  });

  afterAll(async () => {
    await env?.kube.delete(paths().crd).catch(() => undefined);
    await env?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('dumps every object as YAML at <group>/<resource>/<namespace>/<name>.yaml, with index.json, and kubectl applies the tree', async () => {
    const counts = Object.fromEntries(dump.index.resources.map((c) => [c.resource, c.objects]));
    expect(counts).toMatchObject({ configmaps: 2 /* + kube-root-ca.crt */, secrets: 1, serviceaccounts: 2, services: 1, 'deployments.apps': 1, 'replicasets.apps': 1, pods: 2, [`widgets.${group}`]: 2, persistentvolumeclaims: 1 });
    expect(counts['customresourcedefinitions.apiextensions.k8s.io']).toBeGreaterThanOrEqual(1);
    expect(dump.index.kubernetesVersion).toBe(inject('kube').version);
    expect(dump.partial).toBe(false);
    const obj = dump.manifest.objects[0]!;
    const extracted = join(dir, 'extracted');
    await mkdir(extracted);
    await run('bash', ['-c', 'zstd -d -q -c "$1" | tar -x -C "$2"', 'x', join(store, 'resources', dump.manifest.id, obj.name), extracted]);
    const { stdout } = await run('find', [extracted, '-type', 'f']);
    const files = stdout.trim().split('\n').map((f) => f.slice(extracted.length + 1)).sort();
    expect(files).toContain(`apps/deployments/${ns}/web.yaml`);
    expect(files).toContain(`core/configmaps/${ns}/settings.yaml`);
    expect(files).toContain(`${group}/widgets/${ns}/alpha.yaml`);
    expect(files).toContain(`core/namespaces/_cluster/${ns}.yaml`);
    expect(files).toContain('index.json');
    const { stdout: yamlText } = await run('cat', [join(extracted, 'core', 'configmaps', ns, 'settings.yaml')]);
    // Indented JSON, which is YAML 1.2.
    expect(yamlText).toMatch(/^\{\n {2}"apiVersion": "v1",\n {2}"kind": "ConfigMap",\n/);
    expect(JSON.parse(yamlText)).toMatchObject({ metadata: { name: 'settings', namespace: ns } });
    expect(yamlText).not.toContain('managedFields');
    // The tree applies with kubectl alone (server-side dry run: everything exists, nothing changes).
    const kubectl = inject('kube').bins.kubectl;
    await run(kubectl, ['--kubeconfig', kubeconfig, 'apply', '-R', '-f', join(extracted, 'core', 'configmaps'), '-f', join(extracted, group, 'widgets'), '--dry-run=server']);
    const verify = await runCli(['backups', 'verify', dump.manifest.id, '--store', store]);
    expect(verify.code, verify.stderr).toBe(0);
  });

  it('--dry-run against a deleted namespace changes nothing and plans the order', async () => {
    const k = env.kube;
    await k.delete(`/api/v1/namespaces/${ns}`);
    await k.delete(paths().crd);
    await waitFor(`namespace ${ns} gone`, async () => (await k.getOrUndefined(`/api/v1/namespaces/${ns}`)) === undefined, { timeoutMs: 120_000, intervalMs: 500 });
    await waitFor('CRD gone', async () => (await k.getOrUndefined(paths().crd)) === undefined, { timeoutMs: 60_000 });
    const r = await cli(['resources', 'restore', dump.manifest.id, '--dry-run', '-o', 'json']);
    expect(r.code, failures(r.stdout)).toBe(0);
    const report = JSON.parse(r.stdout) as RestoreReport;
    expect(report.dryRun).toBe(true);
    expect(report.tiers[0]).toEqual(['customresourcedefinitions.apiextensions.k8s.io']);
    expect(report.tiers[1]).toEqual(['namespaces']);
    expect(report.counts['would-create']).toBeGreaterThanOrEqual(10);
    expect(await k.getOrUndefined(`/api/v1/namespaces/${ns}`)).toBeUndefined();
    expect(await k.getOrUndefined(paths().crd)).toBeUndefined();
  });

  it('restores namespace, CRD and custom resources; live objects equal the originals after the documented transforms', async () => {
    const k = env.kube;
    const r = await cli(['resources', 'restore', dump.manifest.id, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout) as RestoreReport;
    expect(report.counts.failed ?? 0).toBe(0);
    const skippedOwned = report.objects.filter((o) => o.reason?.startsWith('owned by'));
    expect(skippedOwned.map((o) => o.resource).sort()).toEqual(['pods', 'pods', 'replicasets.apps']);
    const o = originals;
    const p = paths();
    const cm = await k.get(p.cm);
    expect(cm.data).toEqual(o.get('cm')!.data);
    expect(cm.metadata.labels).toEqual(o.get('cm')!.metadata.labels);
    expect(cm.metadata.uid).not.toBe(o.get('cm')!.metadata.uid);
    expect((await k.get(p.secret)).data).toEqual(o.get('secret')!.data);
    expect((await k.get(p.role)).rules).toEqual(o.get('role')!.rules);
    const rb = await k.get(p.rb);
    expect(rb.subjects).toEqual(o.get('rb')!.subjects);
    expect(rb.roleRef).toEqual(o.get('rb')!.roleRef);
    const svc = await k.get<KubeObject & { spec: { ports: unknown[]; selector: unknown; clusterIP: string } }>(p.svc);
    const svcOrig = o.get('svc') as KubeObject & { spec: { ports: unknown[]; selector: unknown; clusterIP: string } };
    expect(svc.spec.ports).toEqual(svcOrig.spec.ports);
    expect(svc.spec.selector).toEqual(svcOrig.spec.selector);
    expect(svc.spec.clusterIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/); // newly assigned (documented)
    const dep = await k.get<KubeObject & { spec: Record<string, unknown> }>(p.deploy);
    const depOrig = o.get('deploy') as KubeObject & { spec: Record<string, unknown> };
    expect(dep.spec.template).toEqual(depOrig.spec.template);
    expect(dep.spec.replicas).toBe(depOrig.spec.replicas);
    expect((await k.get<KubeObject & { spec: Record<string, unknown> }>(p.pvc)).spec.resources).toEqual((o.get('pvc') as KubeObject & { spec: Record<string, unknown> }).spec.resources);
    for (const w of ['w1', 'w2'] as const) expect((await k.get(p[w])).spec).toEqual(o.get(w)!.spec);
    expect((await k.get(p.crd)).spec).toMatchObject({ group, names: { kind: 'Widget' } });
    // The Deployment's controller brings its pods back.
    await waitPodsRunning(k, ns, { app: 'web' }, 2);
  });

  it('--namespace-mapping restores into a new namespace, references included', async () => {
    const target = `${ns}-copy`;
    const r = await cli(['resources', 'restore', dump.manifest.id, '--include-namespaces', ns, '--namespace-mapping', `${ns}:${target}`, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    try {
      const k = env.kube;
      expect((await k.get(`/api/v1/namespaces/${target}/configmaps/settings`)).data).toEqual(originals.get('cm')!.data);
      expect((await k.get(`/apis/rbac.authorization.k8s.io/v1/namespaces/${target}/rolebindings/app-reader`)).subjects).toEqual([{ kind: 'ServiceAccount', name: 'app', namespace: target }]);
      expect((await k.get(`/apis/${group}/v1/namespaces/${target}/widgets/alpha`)).spec).toEqual(originals.get('w1')!.spec);
    } finally {
      await env.kube.delete(`/api/v1/namespaces/${target}`);
    }
  });

  it('--existing skip leaves a changed object alone, update brings it back, recreate replaces it', async () => {
    const k = env.kube;
    const p = paths().cm;
    await k.patch(p, { data: { 'app.yaml': 'level: debug\n' } });
    const only = ['--only', `configmaps/${ns}/settings`];
    const skip = await cli(['resources', 'restore', dump.manifest.id, ...only, '-o', 'json']);
    expect(skip.code, skip.stderr).toBe(0);
    expect((JSON.parse(skip.stdout) as RestoreReport).objects.find((x) => x.name === 'settings')?.action).toBe('skipped');
    expect((await k.get(p)).data).toEqual({ 'app.yaml': 'level: debug\n' });
    const dry = await cli(['resources', 'restore', dump.manifest.id, ...only, '--existing', 'update', '--dry-run', '-o', 'json']);
    expect((JSON.parse(dry.stdout) as RestoreReport).objects.find((x) => x.name === 'settings')).toMatchObject({ action: 'would-update', changes: ['data'] });
    expect((await k.get(p)).data).toEqual({ 'app.yaml': 'level: debug\n' });
    // The field was changed by another manager: server-side apply reports the conflict...
    const conflict = await cli(['resources', 'restore', dump.manifest.id, ...only, '--existing', 'update', '-o', 'json']);
    expect(conflict.code).toBe(1);
    expect(conflict.stderr).toContain('none of 1 object(s)');
    expect((await k.get(p)).data).toEqual({ 'app.yaml': 'level: debug\n' });
    // ...and takes the field over when told to.
    const update = await cli(['resources', 'restore', dump.manifest.id, ...only, '--existing', 'update', '--force-conflicts', '-o', 'json']);
    expect(update.code, failures(update.stdout)).toBe(0);
    expect((await k.get(p)).data).toEqual(originals.get('cm')!.data);
    const before = (await k.get(p)).metadata.uid;
    const refused = await cli(['resources', 'restore', dump.manifest.id, ...only, '--existing', 'recreate']);
    expect(refused.code).toBe(2);
    const recreate = await cli(['resources', 'restore', dump.manifest.id, ...only, '--existing', 'recreate', '--yes']);
    expect(recreate.code, recreate.stderr).toBe(0);
    expect((await k.get(p)).metadata.uid).not.toBe(before);
  });

  it('bad archives: an entry with ".." is refused before anything is applied (exit 5); an unknown resource fails alone (exit 3)', async () => {
    const cat = new Catalogue(new FileStore(store));
    const archive = async (entries: [string, string][]) => storeDumpTar(cat, await dumpTar(entries));
    const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: ${ns}\ndata:\n  a: b\n`;
    const evil = await archive([[`core/configmaps/${ns}/first.yaml`, cm('first')], [`../../etc/evil.yaml`, cm('evil')]]);
    const r1 = await cli(['resources', 'restore', evil]);
    expect(r1.code).toBe(5);
    expect(r1.stderr).toContain('could escape');
    expect(await env.kube.getOrUndefined(`/api/v1/namespaces/${ns}/configmaps/first`)).toBeUndefined();
    const unknown = await archive([
      [`core/configmaps/${ns}/second.yaml`, cm('second')],
      [`nowhere.example.com/gizmos/${ns}/g.yaml`, `apiVersion: nowhere.example.com/v1\nkind: Gizmo\nmetadata:\n  name: g\n  namespace: ${ns}\n`],
    ]);
    const r2 = await cli(['resources', 'restore', unknown, '-o', 'json']);
    expect(r2.code, r2.stderr).toBe(3);
    const report = JSON.parse(r2.stdout) as RestoreReport;
    expect(report.objects.find((o) => o.name === 'g')).toMatchObject({ action: 'failed', reason: expect.stringContaining('not served') });
    expect(report.objects.find((o) => o.name === 'second')?.action).toBe('created');
  });
});
