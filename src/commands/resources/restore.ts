import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { confirm } from '../../cli/confirm.js';
import { parseDuration } from '../../cli/duration.js';
import { withEnv } from '../../cli/env.js';
import { ExitCode, LifeboatError, UsageError } from '../../cli/errors.js';
import { filterFromFlags, resourceFilterFlags } from '../../cli/filter-flags.js';
import { kubeClientFromFlags, kubeFlags } from '../../cli/kube-flags.js';
import { renderTable } from '../../cli/output.js';
import { snapshotSourceFlags, snapshotSourceFrom } from '../../cli/snapshot-flags.js';
import { catalogueFromFlags } from '../../cli/store-flags.js';
import { fetchToTempFile } from '../../snapshot/pipeline/fetch.js';
import { applyArchive, DEFAULT_RESTORE_CONCURRENCY, type RestoreReport } from '../../snapshot/resources/apply.js';
import { readArchive } from '../../snapshot/resources/reader.js';
import { parseNamespaceMapping } from '../../snapshot/resources/transform.js';

export default class ResourcesRestore extends BaseCommand<typeof ResourcesRestore> {
  static override summary = 'Restore a resource dump into a cluster, in dependency order.';
  static override description = `The archive is downloaded, decrypted, decompressed and checked (both sha256s), then read once and every entry checked before anything is applied: a truncated or altered archive (a hash that differs, a tar cut short, objects that differ from index.json) exits 5 and changes nothing. Objects are applied tier by tier: CRDs (waited on until Established, up to --crd-timeout; the custom resources of one that is not fail with its conditions), namespaces, storage, service accounts, secrets, config maps, RBAC, workloads top-down, services, ingresses, the rest, and API services and webhooks last.

Server-set fields are stripped; status is dropped unless --include-status (which writes it through the status subresource where the resource has one); Services lose their cluster IPs (unless headless) and node ports (unless --preserve-nodeports); Pods lose their node; objects a controller owns are left to it; owner references point at the restored owners' new UIDs. Existing objects are skipped (--existing skip), server-side applied (update), or deleted and created again (recreate, needs --yes). --dry-run sends every object as a server-side dry run and lists what would change. Exits 3 when some objects failed.`;
  static override examples = [
    '<%= config.bin %> resources restore resources-20261122T040000Z-77c1 --include-namespaces shop --dry-run',
    '<%= config.bin %> resources restore resources-20261122T040000Z-77c1 --include-namespaces shop --namespace-mapping shop:shop-restored',
    '<%= config.bin %> resources restore resources-20261122T040000Z-77c1 --only deployments.apps/shop/web --existing update',
  ];
  static override args = { id: Args.string({ required: true, description: 'Backup id of a resource dump (see `backups list`).' }) };
  static override flags = {
    ...kubeFlags,
    ...resourceFilterFlags,
    ...snapshotSourceFlags,
    ...withEnv({
      only: Flags.string({ multiple: true, summary: 'Only this object: resource/namespace/name (cluster-scoped: resource//name).', helpGroup: 'FILTERS' }),
      'namespace-mapping': Flags.string({ multiple: true, delimiter: ',', summary: 'Restore namespace a into b (a:b, repeatable), references included.' }),
      existing: Flags.option({ options: ['skip', 'update', 'recreate'] as const, default: 'skip' as const, summary: 'What to do with objects that exist.' })(),
      'force-conflicts': Flags.boolean({ summary: 'With --existing update: take over fields other managers own.' }),
      'include-status': Flags.boolean({ summary: 'Restore status too (through the status subresource where there is one).' }),
      'preserve-nodeports': Flags.boolean({ summary: 'Keep Services\' node ports.' }),
      'include-owned': Flags.boolean({ summary: 'Also restore objects owned by a controller (which would recreate them).' }),
      'dry-run': Flags.boolean({ summary: 'Server-side dry run of every object; change nothing.' }),
      concurrency: Flags.integer({ min: 1, max: 64, default: DEFAULT_RESTORE_CONCURRENCY, summary: 'Objects applied at once within a tier.' }),
      'crd-timeout': Flags.string({ default: '60s', summary: 'How long to wait for restored CRDs to become Established before their custom resources fail.' }),
      yes: Flags.boolean({ char: 'y', summary: 'Confirm --existing recreate without asking.' }),
    }),
  };

  async run(): Promise<RestoreReport> {
    const f = this.flags;
    const only = (f.only ?? []).map((o) => {
      const parts = o.split('/');
      if (parts.length !== 3 || !parts[0] || !parts[2]) throw new UsageError(`--only ${JSON.stringify(o)} is not resource/namespace/name.`);
      return { resource: parts[0], namespace: parts[1] || undefined, name: parts[2] };
    });
    const filter = filterFromFlags(f);
    const namespaceMapping = parseNamespaceMapping(f['namespace-mapping'] ?? []);
    const crdTimeoutMs = parseDuration(f['crd-timeout'], '--crd-timeout');
    if (f.existing === 'recreate' && !f['dry-run'] && !(await confirm('Delete and recreate objects that exist in the cluster?', { yes: f.yes, what: 'recreate existing objects' }))) {
      throw new LifeboatError('Nothing restored.');
    }
    const cat = await catalogueFromFlags(f, this.logger);
    const entry = await cat.describe(this.args.id);
    if (entry.manifest.kind !== 'resources') throw new UsageError(`Backup ${this.args.id} is not a resource dump.`, { hint: 'etcd snapshots restore with `lifeboat etcd restore`.' });
    const rec = entry.manifest.objects.find((o) => o.name.startsWith('resources.tar'));
    if (!rec) throw new LifeboatError(`Backup ${this.args.id} has no archive object.`);
    const source = await snapshotSourceFrom(f, this.logger, this.signal);
    const file = await fetchToTempFile(cat, entry.manifest, rec, 'resources.tar', source);
    const client = await kubeClientFromFlags(f);
    try {
      const archive = await readArchive(file.path, { tmpDir: f['tmp-dir'] });
      try {
        const report = await applyArchive(archive, {
          client,
          filter,
          only,
          transform: { includeStatus: f['include-status'], preserveNodePorts: f['preserve-nodeports'], namespaceMapping, includeOwned: f['include-owned'] },
          existing: f.existing,
          forceConflicts: f['force-conflicts'],
          dryRun: f['dry-run'],
          concurrency: f.concurrency,
          crdTimeoutMs,
          signal: this.signal,
        });
        for (const w of report.warnings) this.logger.warn(w);
        this.printer.print(report, renderReport);
        const failed = report.counts.failed ?? 0;
        if (failed > 0) {
          const attempted = report.objects.filter((o) => o.action !== 'skipped').length;
          if (failed === attempted) throw new LifeboatError(`Restore failed: none of ${failed} object(s) could be restored: ${report.objects.find((o) => o.action === 'failed')?.reason ?? ''}`);
          process.exitCode = ExitCode.Partial;
        }
        return report;
      } finally {
        await archive.cleanup();
      }
    } finally {
      client.close();
      await file.cleanup();
    }
  }
}

function renderReport(r: RestoreReport): string {
  const lines: string[] = [];
  lines.push(`${r.dryRun ? 'Dry run (nothing changed)' : 'Restore'}: ${Object.entries(r.counts).map(([a, n]) => `${n} ${a}`).join(', ') || 'nothing to do'}`);
  lines.push('', 'Order:', ...r.tiers.map((t, i) => `  ${i + 1}. ${t.join(', ')}`), '');
  const shown = r.objects.filter((o) => o.action !== 'skipped' || !o.reason?.startsWith('filtered'));
  if (shown.length) {
    lines.push(
      renderTable(
        ['RESOURCE', 'NAMESPACE', 'NAME', 'ACTION', 'DETAIL'],
        shown.map((o) => [o.resource, o.namespace ?? '', o.name, o.action, o.changes ? `changes: ${o.changes.join(', ')}` : (o.reason ?? '')]),
      ),
    );
  }
  return lines.join('\n');
}
