import { describe, expect, it } from 'vitest';
import { compileFilter, DEFAULT_FILTER, type ResourceFilterConfig } from '../../src/snapshot/resources/filters.js';
import { restoreTiers } from '../../src/snapshot/resources/order.js';
import { parseNamespaceMapping, prepareForRestore, relinkOwners, type TransformOptions } from '../../src/snapshot/resources/transform.js';
import { grName, type GroupResource, type KubeObject } from '../../src/snapshot/resources/types.js';

const gr = (name: string, namespaced = true, kind = 'X'): GroupResource => {
  const [resource, ...group] = name.split('.');
  return { resource: resource!, group: group.join('.'), namespaced, kind };
};

describe('resource filters', () => {
  const f = (over: Partial<ResourceFilterConfig>) => compileFilter({ ...DEFAULT_FILTER, ...over });
  it('lists namespace by namespace only when every --include-namespaces entry is a plain name', () => {
    expect(f({}).listNamespaces()).toBeUndefined();
    expect(f({ includeNamespaces: ['b', 'a', 'b'] }).listNamespaces()).toEqual(['a', 'b']);
    expect(f({ includeNamespaces: ['a', 'b'], excludeNamespaces: ['b'] }).listNamespaces()).toEqual(['a']);
    expect(f({ includeNamespaces: ['team-*'] }).listNamespaces()).toBeUndefined();
    expect(f({ includeNamespaces: ['a', 'b?'] }).listNamespaces()).toBeUndefined();
    expect(f({ includeNamespaces: ['*'] }).listNamespaces()).toBeUndefined();
  });
  const cases: [string, Partial<ResourceFilterConfig>, GroupResource, boolean][] = [
    ['everything by default', {}, gr('deployments.apps'), true],
    ['cluster-scoped by default when all namespaces are dumped', {}, gr('clusterroles.rbac.authorization.k8s.io', false), true],
    ['events are skipped by default', {}, gr('events'), false],
    ['events.k8s.io events too', {}, gr('events.events.k8s.io'), false],
    ['nodes are skipped by default', {}, gr('nodes', false), false],
    ['events when named', { includeResources: ['events'] }, gr('events'), true],
    ['include by glob on the group', { includeResources: ['*.apps'] }, gr('deployments.apps'), true],
    ['include glob leaves others out', { includeResources: ['*.apps'] }, gr('configmaps'), false],
    ['core resources by plain name', { includeResources: ['configmaps'] }, gr('configmaps'), true],
    ['exclude wins over include', { includeResources: ['*'], excludeResources: ['secrets'] }, gr('secrets'), false],
    ['exclude a whole group', { excludeResources: ['*.example.com'] }, gr('widgets.example.com'), false],
    ['case-insensitive', { excludeResources: ['ConfigMaps'] }, gr('configmaps'), false],
    ['auto: no cluster-scoped resources when namespaces are singled out', { includeNamespaces: ['shop'] }, gr('clusterroles.rbac.authorization.k8s.io', false), false],
    ['auto: but Namespace objects go with their contents', { includeNamespaces: ['shop'] }, gr('namespaces', false), true],
    ['auto: a cluster-scoped resource named explicitly is kept', { includeNamespaces: ['shop'], includeResources: ['customresourcedefinitions.apiextensions.k8s.io', 'widgets.example.com'] }, gr('customresourcedefinitions.apiextensions.k8s.io', false), true],
    ['true: cluster-scoped even for some namespaces', { includeNamespaces: ['shop'], includeClusterResources: 'true' }, gr('storageclasses.storage.k8s.io', false), true],
    ['false: never cluster-scoped', { includeClusterResources: 'false' }, gr('persistentvolumes', false), false],
    ['false: namespaced unaffected', { includeClusterResources: 'false' }, gr('pods'), true],
  ];
  it.each(cases)('%s', (_name, over, r, selected) => {
    expect(f(over).resource(r).selected).toBe(selected);
  });

  it('says why a resource is left out', () => {
    expect(f({}).resource(gr('events')).reason).toMatch(/skipped by default/);
    expect(f({ includeNamespaces: ['a'] }).resource(gr('clusterroles.rbac.authorization.k8s.io', false)).reason).toMatch(/cluster-scoped/);
  });

  it('selects namespaces with globs and exclusions', () => {
    const filter = f({ includeNamespaces: ['team-*', 'shop'], excludeNamespaces: ['team-old'] });
    expect(['team-a', 'shop', 'team-old', 'kube-system'].map((n) => filter.namespace(n))).toEqual([true, true, false, false]);
    expect(f({ excludeNamespaces: ['kube-*'] }).namespace('kube-system')).toBe(false);
    expect(f({}).namespace('anything')).toBe(true);
  });

  it('selects objects: exclude label, namespaces, node leases, namespace objects with their namespace', () => {
    const obj = (name: string, ns?: string, labels?: Record<string, string>): KubeObject => ({
      apiVersion: 'v1',
      kind: 'X',
      metadata: { name, ...(ns ? { namespace: ns } : {}), ...(labels ? { labels } : {}) },
    });
    const filter = f({ includeNamespaces: ['shop'] });
    expect(filter.object(gr('configmaps'), obj('a', 'shop'))).toBe(true);
    expect(filter.object(gr('configmaps'), obj('a', 'other'))).toBe(false);
    expect(filter.object(gr('configmaps'), obj('a', 'shop', { 'lifeboat.io/exclude': 'true' }))).toBe(false);
    expect(filter.object(gr('namespaces', false), obj('shop'))).toBe(true);
    expect(filter.object(gr('namespaces', false), obj('other'))).toBe(false);
    expect(f({}).object(gr('leases.coordination.k8s.io'), obj('node-1', 'kube-node-lease'))).toBe(false);
    expect(f({}).object(gr('leases.coordination.k8s.io'), obj('leader', 'kube-system'))).toBe(true);
  });

  it('rejects malformed patterns as usage errors', () => {
    expect(() => f({ includeResources: ['apps/deployments'] })).toThrow(/Invalid resource pattern/);
    expect(() => f({ excludeResources: [''] })).toThrow(/Invalid resource pattern/);
  });
});

describe('restore order', () => {
  it('puts CRDs, namespaces and referenced objects first, workloads top-down, webhooks last', () => {
    const names = [
      'validatingwebhookconfigurations.admissionregistration.k8s.io',
      'pods',
      'widgets.example.com',
      'services',
      'replicasets.apps',
      'deployments.apps',
      'namespaces',
      'customresourcedefinitions.apiextensions.k8s.io',
      'configmaps',
      'secrets',
      'apiservices.apiregistration.k8s.io',
      'rolebindings.rbac.authorization.k8s.io',
      'roles.rbac.authorization.k8s.io',
      'serviceaccounts',
      'persistentvolumeclaims',
      'gadgets.example.com',
      'ingresses.networking.k8s.io',
    ];
    const tiers = restoreTiers(names.map((n) => gr(n))).map((t) => t.map(grName));
    expect(tiers).toEqual([
      ['customresourcedefinitions.apiextensions.k8s.io'],
      ['namespaces'],
      ['persistentvolumeclaims'],
      ['serviceaccounts'],
      ['secrets'],
      ['configmaps'],
      ['roles.rbac.authorization.k8s.io'],
      ['rolebindings.rbac.authorization.k8s.io'],
      ['deployments.apps'],
      ['replicasets.apps'],
      ['pods'],
      ['services'],
      ['ingresses.networking.k8s.io'],
      ['gadgets.example.com', 'widgets.example.com'],
      ['apiservices.apiregistration.k8s.io'],
      ['validatingwebhookconfigurations.admissionregistration.k8s.io'],
    ]);
  });
});

describe('restore transforms', () => {
  const opts: TransformOptions = { includeStatus: false, preserveNodePorts: false, namespaceMapping: new Map(), includeOwned: false };
  const base = (kind: string, extra: Record<string, unknown> = {}, metadata: Record<string, unknown> = {}): KubeObject => ({
    apiVersion: 'v1',
    kind,
    metadata: {
      name: 'x',
      namespace: 'shop',
      uid: 'u-1',
      resourceVersion: '42',
      generation: 3,
      creationTimestamp: '2026-01-01T00:00:00Z',
      managedFields: [{ manager: 'kubectl' }],
      selfLink: '/api/v1/x',
      labels: { app: 'x' },
      ...metadata,
    },
    status: { phase: 'Running' },
    ...extra,
  });

  it('strips server-set metadata and status, keeps labels, never mutates the input', () => {
    const input = base('ConfigMap', { data: { a: '1' } });
    const snapshot = structuredClone(input);
    const out = prepareForRestore(input, opts).object!;
    expect(out).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x', namespace: 'shop', labels: { app: 'x' } }, data: { a: '1' } });
    expect(input).toEqual(snapshot);
    expect(prepareForRestore(input, { ...opts, includeStatus: true }).object?.status).toEqual({ phase: 'Running' });
  });

  it('services lose cluster IPs (unless headless) and node ports (unless preserved)', () => {
    const svc = base('Service', { spec: { clusterIP: '10.0.0.5', clusterIPs: ['10.0.0.5'], type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }], healthCheckNodePort: 31000 } });
    expect(prepareForRestore(svc, opts).object?.spec).toEqual({ type: 'NodePort', ports: [{ port: 80 }] });
    expect(prepareForRestore(svc, { ...opts, preserveNodePorts: true }).object?.spec).toMatchObject({ ports: [{ port: 80, nodePort: 30080 }], healthCheckNodePort: 31000 });
    const headless = base('Service', { spec: { clusterIP: 'None', clusterIPs: ['None'] } });
    expect(prepareForRestore(headless, opts).object?.spec).toEqual({ clusterIP: 'None', clusterIPs: ['None'] });
  });

  it('pods lose their node and the service-account token volume; finished pods are skipped', () => {
    const pod = base('Pod', {
      spec: {
        nodeName: 'node-1',
        volumes: [{ name: 'kube-api-access-abcde', projected: { sources: [] } }, { name: 'data', emptyDir: {} }],
        containers: [{ name: 'c', volumeMounts: [{ name: 'kube-api-access-abcde', mountPath: '/var/run/secrets' }, { name: 'data', mountPath: '/data' }] }],
      },
    });
    const spec = prepareForRestore(pod, opts).object?.spec as Record<string, unknown>;
    expect(spec.nodeName).toBeUndefined();
    expect(spec.volumes).toEqual([{ name: 'data', emptyDir: {} }]);
    expect(spec.containers).toEqual([{ name: 'c', volumeMounts: [{ name: 'data', mountPath: '/data' }] }]);
    expect(prepareForRestore({ ...pod, status: { phase: 'Succeeded' } }, opts).skip).toMatch(/finished/);
  });

  it('objects owned by a controller are left to it unless asked for', () => {
    const rs = base('Pod', {}, { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-1', uid: 'rs-1', controller: true }] });
    expect(prepareForRestore(rs, opts).skip).toBe('owned by ReplicaSet web-1, which recreates it');
    expect(prepareForRestore(rs, { ...opts, includeOwned: true }).object).toBeDefined();
    const nonController = base('ConfigMap', {}, { ownerReferences: [{ apiVersion: 'v1', kind: 'Secret', name: 's', uid: 's-1' }] });
    expect(prepareForRestore(nonController, opts).object).toBeDefined();
  });

  it('PVs lose their claim binding; dynamically provisioned PVCs lose their volume name', () => {
    const pv = base('PersistentVolume', { spec: { claimRef: { name: 'data', namespace: 'shop', uid: 'c-1', resourceVersion: '9' } } });
    expect((prepareForRestore(pv, { ...opts, namespaceMapping: new Map([['shop', 'shop2']]) }).object?.spec as Record<string, unknown>).claimRef).toEqual({ name: 'data', namespace: 'shop2' });
    const dyn = base('PersistentVolumeClaim', { spec: { volumeName: 'pvc-123' } }, { annotations: { 'pv.kubernetes.io/provisioned-by': 'rancher.io/local-path', 'pv.kubernetes.io/bind-completed': 'yes' } });
    const out = prepareForRestore(dyn, opts).object!;
    expect((out.spec as Record<string, unknown>).volumeName).toBeUndefined();
    expect(out.metadata.annotations).toEqual({ 'pv.kubernetes.io/provisioned-by': 'rancher.io/local-path' });
    const stat = base('PersistentVolumeClaim', { spec: { volumeName: 'nfs-1' } });
    expect((prepareForRestore(stat, opts).object?.spec as Record<string, unknown>).volumeName).toBe('nfs-1');
  });

  it('namespace mapping applies to the object, Namespace objects and ServiceAccount subjects', () => {
    const mapping = new Map([['shop', 'shop-restored']]);
    const m = { ...opts, namespaceMapping: mapping };
    expect(prepareForRestore(base('ConfigMap'), m).object?.metadata.namespace).toBe('shop-restored');
    const ns: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } };
    expect(prepareForRestore(ns, m).object?.metadata.name).toBe('shop-restored');
    const rb = base('RoleBinding', {
      subjects: [
        { kind: 'ServiceAccount', name: 'app', namespace: 'shop' },
        { kind: 'ServiceAccount', name: 'other', namespace: 'elsewhere' },
        { kind: 'User', name: 'alice' },
      ],
    });
    expect(prepareForRestore(rb, m).object?.subjects).toEqual([
      { kind: 'ServiceAccount', name: 'app', namespace: 'shop-restored' },
      { kind: 'ServiceAccount', name: 'other', namespace: 'elsewhere' },
      { kind: 'User', name: 'alice' },
    ]);
  });

  it('relinks owner references to restored owners and drops the rest', () => {
    const obj = base('ConfigMap', {}, {
      ownerReferences: [
        { apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', uid: 'old-w' },
        { apiVersion: 'v1', kind: 'Secret', name: 'gone', uid: 'old-gone' },
      ],
    });
    const { object, dropped } = relinkOwners(obj, new Map([['old-w', 'new-w']]));
    expect(object.metadata.ownerReferences).toEqual([{ apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', uid: 'new-w' }]);
    expect(dropped.map((d) => d.name)).toEqual(['gone']);
    expect(relinkOwners(obj, new Map()).object.metadata.ownerReferences).toBeUndefined();
  });

  it('parses namespace mappings', () => {
    expect([...parseNamespaceMapping(['a:b', 'shop:shop-2'])]).toEqual([
      ['a', 'b'],
      ['shop', 'shop-2'],
    ]);
    for (const bad of ['a', 'a:', ':b', 'a:b:c', 'a:Bad_Name']) expect(() => parseNamespaceMapping([bad])).toThrow(/Invalid namespace mapping/);
  });
});

describe('archive paths', () => {
  it('round-trip, with "core" for the core group and _cluster for cluster-scoped objects', async () => {
    const { archivePath, parseArchivePath, safeEntryName } = await import('../../src/snapshot/resources/archive.js');
    expect(archivePath({ group: 'apps', resource: 'deployments' }, 'shop', 'web')).toBe('apps/deployments/shop/web.yaml');
    expect(archivePath({ group: '', resource: 'namespaces' }, undefined, 'shop')).toBe('core/namespaces/_cluster/shop.yaml');
    expect(parseArchivePath('core/configmaps/shop/settings.yaml')).toEqual({ group: '', resource: 'configmaps', namespace: 'shop', name: 'settings' });
    expect(parseArchivePath('rbac.authorization.k8s.io/clusterroles/_cluster/system:aggregate-to-view.yaml')).toEqual({
      group: 'rbac.authorization.k8s.io',
      resource: 'clusterroles',
      namespace: undefined,
      name: 'system:aggregate-to-view',
    });
    expect(parseArchivePath('index.json')).toBeUndefined();
    for (const bad of ['../x.yaml', '/etc/passwd', 'a/../../b.yaml', 'a//b.yaml', 'a\\b.yaml']) expect(safeEntryName(bad)).toBe(false);
    expect(safeEntryName('core/configmaps/shop/settings.yaml')).toBe(true);
  });

  it('YAML keeps the object intact and refuses what is not an object', async () => {
    const { fromYaml, entryText, forArchive } = await import('../../src/snapshot/resources/archive.js');
    const obj: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'b', managedFields: [{ manager: 'x' }] }, data: { 'k.yaml': 'multi\nline\n', n: '007', yes: 'yes' } };
    const text = entryText(forArchive(obj, 'v1', 'ConfigMap'));
    expect(text).not.toContain('managedFields');
    expect(fromYaml(text)).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'b' }, data: obj.data });
    expect(() => fromYaml('- a\n- b\n')).toThrow();
    expect(() => fromYaml('kind: X\n')).toThrow(/missing/);
  });

  it('changedFields names what a dry run would change', async () => {
    const { changedFields } = await import('../../src/snapshot/resources/apply.js');
    const live: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', labels: { x: '1' }, uid: 'u', resourceVersion: '5' }, data: { a: '1' } };
    expect(changedFields({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', labels: { x: '1' } }, data: { a: '1' } }, live)).toEqual([]);
    expect(changedFields({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', labels: { x: '2' } }, data: { a: '2' } }, live)).toEqual(['data', 'metadata.labels.x']);
    // Status counts only when it would be written (--include-status, status subresource).
    const withStatus = { ...live, status: { phase: 'Ready' } };
    const desired: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', labels: { x: '1' } }, data: { a: '1' }, status: { phase: 'Pending' } };
    expect(changedFields(desired, withStatus)).toEqual([]);
    expect(changedFields(desired, withStatus, true)).toEqual(['status']);
    expect(changedFields({ ...desired, status: { phase: 'Ready' } }, withStatus, true)).toEqual([]);
  });
});

describe('archive reader', () => {
  const cm = (name: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n  namespace: demo\n`;
  const read = async (bytes: Buffer) => {
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { readArchive } = await import('../../src/snapshot/resources/reader.js');
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-reader-'));
    try {
      await writeFile(join(dir, 'resources.tar'), bytes);
      const archive = await readArchive(join(dir, 'resources.tar'), { tmpDir: dir });
      await archive.cleanup();
      return archive.resources.map((r) => [r.resource, r.count]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };

  it('reads a whole archive, and refuses one cut inside an entry, cut before index.json, or whose index.json differs', async () => {
    const { dumpTar, tarEntryOffsets } = await import('../helpers/archive.js');
    const tar = await dumpTar([
      ['core/configmaps/demo/a.yaml', cm('a')],
      ['core/configmaps/demo/b.yaml', cm('b')],
    ]);
    expect(await read(tar)).toEqual([['configmaps', 2]]);
    const at = tarEntryOffsets(tar);
    await expect(read(tar.subarray(0, at.get('core/configmaps/demo/b.yaml')! + 600))).rejects.toThrow(/not a valid tar .*truncated or corrupt; nothing was applied/);
    await expect(read(tar.subarray(0, at.get('index.json')!))).rejects.toThrow(/no index\.json: it is truncated/);
    // Cut after index.json, before the end-of-archive blocks: nothing is missing.
    expect(await read(tar.subarray(0, tar.length - 1024))).toEqual([['configmaps', 2]]);
    const lying = Buffer.from(tar.toString('latin1').replace('"objects":2', '"objects":3'), 'latin1');
    await expect(read(lying)).rejects.toMatchObject({ exitCode: 5, message: expect.stringContaining('configmaps: index.json says 3, archive has 2') });
    const unlisted = await dumpTar([['core/configmaps/demo/a.yaml', cm('a')]]);
    const extra = Buffer.from(unlisted.toString('latin1').replace('"resource":"configmaps"', '"resource":"secrets"   '), 'latin1');
    await expect(read(extra)).rejects.toThrow(/secrets: index.json says 1, archive has 0; configmaps: not in index.json, archive has 1/);
  });
  it('spools thousands of objects per resource, in archive order', async () => {
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { readArchive } = await import('../../src/snapshot/resources/reader.js');
    const { dumpTar } = await import('../helpers/archive.js');
    const names = Array.from({ length: 3000 }, (_, i) => `cm-${String(i).padStart(4, '0')}`);
    const blob = 'x'.repeat(3000);
    const tar = await dumpTar([
      ...names.map((n): [string, string] => [`core/configmaps/demo/${n}.yaml`, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n, namespace: 'demo' }, data: { blob } })]),
      ...names.slice(0, 10).map((n): [string, string] => [`core/secrets/demo/${n}.yaml`, cm(n).replace('ConfigMap', 'Secret')]),
    ]);
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-reader-'));
    try {
      await writeFile(join(dir, 'resources.tar'), tar);
      const archive = await readArchive(join(dir, 'resources.tar'), { tmpDir: dir });
      try {
        expect(archive.resources.map((r) => [r.resource, r.count])).toEqual([['configmaps', 3000], ['secrets', 10]]);
        const back: string[] = [];
        for await (const o of archive.objects(archive.resources[0]!)) {
          expect(o.data).toEqual({ blob });
          back.push(o.metadata.name);
        }
        expect(back).toEqual(names);
        const secrets: string[] = [];
        for await (const o of archive.objects(archive.resources[1]!)) secrets.push(`${o.kind}/${o.metadata.name}`);
        expect(secrets).toEqual(names.slice(0, 10).map((n) => `Secret/${n}`));
      } finally {
        await archive.cleanup();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
  // Needs a small tmpfs, so root (as in CI); elsewhere the mount is refused and the test skipped.
  it.skipIf(process.getuid?.() !== 0)('a temporary disk that fills up is named as such, not as a corrupt archive, and nothing is left on it', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdir, mkdtemp, readdir, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { readArchive } = await import('../../src/snapshot/resources/reader.js');
    const { LifeboatError, IntegrityError } = await import('../../src/cli/errors.js');
    const { dumpTar } = await import('../helpers/archive.js');
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-reader-'));
    const small = join(dir, 'small');
    await mkdir(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=200k', 'tmpfs', small]);
    try {
      const names = Array.from({ length: 300 }, (_, i) => `cm-${i}`);
      const blob = 'x'.repeat(3000);
      await writeFile(join(dir, 'resources.tar'), await dumpTar(names.map((n): [string, string] => [`core/configmaps/demo/${n}.yaml`, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n, namespace: 'demo' }, data: { blob } })])));
      const err: unknown = await readArchive(join(dir, 'resources.tar'), { tmpDir: small }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(LifeboatError);
      expect(err).not.toBeInstanceOf(IntegrityError);
      expect((err as Error).message).toMatch(/^Cannot write the restore's temporary files in .*small\/lifeboat-restore-\w+ \(ENOSPC: no space left on device/);
      expect(await readdir(small)).toEqual([]);
    } finally {
      execFileSync('umount', [small]);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('CRD conditions', () => {
  it('name what keeps a CRD from being Established, cause first', async () => {
    const { blockingConditions } = await import('../../src/snapshot/resources/apply.js');
    expect(
      blockingConditions([
        { type: 'Established', status: 'False', reason: 'NotAccepted', message: 'not all names are accepted' },
        { type: 'NamesAccepted', status: 'False', reason: 'KindConflict', message: '"Widget" is already in use' },
        { type: 'NonStructuralSchema', status: 'False' },
      ]),
    ).toBe('NamesAccepted=False (KindConflict: "Widget" is already in use), Established=False (NotAccepted: not all names are accepted)');
    expect(blockingConditions([{ type: 'Terminating', status: 'True', reason: 'InstanceDeletionInProgress' }, { type: 'Established', status: 'True' }])).toBe('Terminating=True (InstanceDeletionInProgress)');
    expect(blockingConditions([])).toBe('the API server reports no conditions for it yet');
  });
});

describe('archive entries', () => {
  // Strings that YAML 1.1 or 1.2 would read as something else, or that need escapes.
  const tricky = [
    'plain', 'two words', 'a: b', 'a:', 'yes', 'No', 'on', 'OFF', 'y', 'null', '~', '', ' lead', 'trail ', '007', '1.5', '1e3', '.inf', '0x1F',
    '2024-01-01', '#x', 'a #b', '- x', '*ref', '&anchor', '!tag', '%dir', '|', '>', '{a: b}', '[x]', 'tab\there', 'cr\r\nlf', 'multi\nline\n',
    '---\n...\n', 'uni: ü', 'a\u2028b', 'p\u2029', 'del\x7f', 'c1\x85\x9f', 'nbsp\u00a0x', 'emoji 😀', 'lone \ud800', '\ufeffbom', 'bell\x07', 'back\\slash "q"',
  ];
  const objects: KubeObject[] = [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', labels: Object.fromEntries(tricky.map((s, i) => [s || 'empty', `v${i}`])) }, data: Object.fromEntries(tricky.map((s, i) => [`k${i}`, s])) },
    { apiVersion: 'x/v1', kind: 'X', metadata: { name: 'b' }, spec: { n: [1, -2, 1.5, 1e21, 1e-7, 0, 123456789012, true, false, null], e: {}, ea: [], nested: [[1, [2, []]], [], {}, { a: 1 }], ['k'.repeat(1200)]: 'v' } },
  ];

  it('are JSON that YAML readers (js-yaml, yaml) read as the same object, with only printable characters', async () => {
    const jsYaml = (await import('js-yaml')).default;
    const { parse } = await import('yaml');
    const { entryText, fromYaml } = await import('../../src/snapshot/resources/archive.js');
    for (const obj of objects) {
      const text = entryText(obj);
      expect(text.endsWith('}\n')).toBe(true);
      expect(JSON.parse(text)).toEqual(obj);
      expect(jsYaml.load(text)).toEqual(obj);
      expect(parse(text)).toEqual(obj);
      expect(fromYaml(text)).toEqual(obj);
      // eslint-disable-next-line no-control-regex -- exactly what is checked
      expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]/);
    }
    expect(entryText(objects[0]!)).toContain('"del\\u007f"');
  });

  it('of older dumps, in block YAML, still read', async () => {
    const jsYaml = (await import('js-yaml')).default;
    const { fromYaml } = await import('../../src/snapshot/resources/archive.js');
    for (const obj of objects) expect(fromYaml(jsYaml.dump(obj, { lineWidth: -1, noRefs: true }))).toEqual(obj);
    const block = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  labels:\n    "on": "yes"\ndata:\n  app.yaml: |\n    a: 1\n    b:\n      - x\n';
    expect(fromYaml(block)).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web', labels: { on: 'yes' } }, data: { 'app.yaml': 'a: 1\nb:\n  - x\n' } });
    // A YAML flow mapping that is not JSON.
    expect(fromYaml('{apiVersion: v1, kind: ConfigMap, metadata: {name: f}}\n')).toEqual({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'f' } });
  });
});

describe('resources dump', () => {
  type Obj = { metadata: { name: string; namespace: string; resourceVersion: string }; data: { v: string } };
  const cm = (ns: string, name: string): Obj => ({ metadata: { name, namespace: ns, resourceVersion: '1' }, data: { v: `${ns}/${name}` } });

  /** A fake API server serving ConfigMaps only, in pages; `onList` may change the objects or fail a request. */
  function fakeClient(objects: Obj[], onList: (call: number, cont: string | undefined) => { status?: number; order?: 'sorted' | 'reversed' } | void) {
    let calls = 0;
    const resources = { groupVersion: 'v1', resources: [{ name: 'configmaps', kind: 'ConfigMap', namespaced: true, verbs: ['list', 'get', 'create'] }] };
    const client = {
      server: 'https://fake',
      request: async (path: string, params: { query: { limit: number; continue?: string } }) => {
        const fixed = ({ '/version': { gitVersion: 'v1.36.3' }, '/api': { versions: ['v1'] }, '/apis': { groups: [] }, '/api/v1': resources } as Record<string, unknown>)[path];
        if (fixed) return fixed;
        expect(path).toBe('/api/v1/configmaps');
        const { KubeApiError } = await import('../../src/kube/client.js');
        const how = onList(calls++, params.query.continue) ?? {};
        if (how.status) throw new KubeApiError(how.status, 'Expired', 'continue token expired', undefined);
        const key = (o: Obj) => `${o.metadata.namespace}/${o.metadata.name}`;
        const all = [...objects].sort((a, b) => (key(a) < key(b) ? -1 : 1));
        if (how.order === 'reversed') all.reverse();
        const from = Number(params.query.continue ?? 0);
        const page = all.slice(from, from + params.query.limit);
        const cont = from + page.length < all.length ? String(from + page.length) : undefined;
        return JSON.parse(JSON.stringify({ kind: 'ConfigMapList', apiVersion: 'v1', metadata: { resourceVersion: '9', ...(cont ? { continue: cont } : {}) }, items: page })) as unknown;
      },
    };
    return client as unknown as import('../../src/kube/client.js').KubeClient;
  }

  async function dump(client: import('../../src/kube/client.js').KubeClient) {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { FileStore } = await import('../../src/store/file-store.js');
    const { Catalogue } = await import('../../src/store/catalogue.js');
    const { dumpResources } = await import('../../src/snapshot/resources/dump.js');
    const { readArchive } = await import('../../src/snapshot/resources/reader.js');
    const dir = await mkdtemp(join(tmpdir(), 'lifeboat-dump-'));
    try {
      const result = await dumpResources(new Catalogue(new FileStore(dir)), { client, filter: compileFilter(DEFAULT_FILTER), codec: 'none', pageSize: 3 });
      const archive = await readArchive(join(dir, 'resources', result.manifest.id, 'resources.tar'), { tmpDir: dir });
      const names: string[] = [];
      for (const r of archive.resources) for await (const o of archive.objects(r)) names.push(`${o.metadata.namespace}/${o.metadata.name}`);
      await archive.cleanup();
      return { result, names };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  const objects = () => ['a', 'b', 'c'].flatMap((ns) => [1, 2, 3].map((i) => cm(ns, `cm-${i}`)));

  it('after an expired continue token, lists again and resumes after the last key it reached', async () => {
    const objs = objects();
    const client = fakeClient(objs, (call) => {
      if (call === 2) {
        // While the first pages were written: one object before the last key listed, one after.
        objs.push(cm('a', 'cm-0'), cm('c', 'cm-9'));
        return { status: 410 };
      }
    });
    const { result, names } = await dump(client);
    // Pages of 3: a/cm-1..3, b/cm-1..3 were written before the token expired.
    expect(names).toEqual(['a/cm-1', 'a/cm-2', 'a/cm-3', 'b/cm-1', 'b/cm-2', 'b/cm-3', 'c/cm-1', 'c/cm-2', 'c/cm-3', 'c/cm-9']);
    expect(result.index.resources).toEqual([expect.objectContaining({ resource: 'configmaps', objects: 10 })]);
  });

  it('writes objects again rather than miss one when the server does not list in key order', async () => {
    const client = fakeClient(objects(), (call) => (call === 2 ? { status: 410 } : { order: 'reversed' }));
    const { result, names } = await dump(client);
    expect(names.slice(0, 6)).toEqual(['c/cm-3', 'c/cm-2', 'c/cm-1', 'b/cm-3', 'b/cm-2', 'b/cm-1']);
    expect(names.length).toBe(15);
    expect(new Set(names).size).toBe(9);
    expect(result.index.objects).toBe(15);
  });

  it('lists once more and writes everything when the list is out of order only after the restart', async () => {
    // In key order until the token expires, reversed from then on: the pass that skips keys up to
    // b/cm-3 sees c/cm-3 then c/cm-2 and cannot trust what it skipped.
    const client = fakeClient(objects(), (call) => (call === 2 ? { status: 410 } : call > 2 ? { order: 'reversed' } : undefined));
    const { result, names } = await dump(client);
    expect(names.slice(0, 7)).toEqual(['a/cm-1', 'a/cm-2', 'a/cm-3', 'b/cm-1', 'b/cm-2', 'b/cm-3', 'c/cm-3']);
    expect(new Set(names)).toEqual(new Set(objects().map((o) => `${o.metadata.namespace}/${o.metadata.name}`)));
    expect(names.length).toBe(16);
    expect(result.index.resources).toEqual([expect.objectContaining({ resource: 'configmaps', objects: 16 })]);
  });

  it('resumes after the last key again when a second token expires', async () => {
    const client = fakeClient(objects(), (call) => (call === 1 || call === 4 ? { status: 410 } : undefined));
    const { names } = await dump(client);
    expect(names).toEqual(objects().map((o) => `${o.metadata.namespace}/${o.metadata.name}`));
  });
});
