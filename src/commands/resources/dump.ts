import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { backupWriteFlags, encryptionFrom, parseLabels } from '../../cli/backup-flags.js';
import { withEnv } from '../../cli/env.js';
import { ExitCode } from '../../cli/errors.js';
import { filterFromFlags, resourceFilterFlags } from '../../cli/filter-flags.js';
import { kubeClientFromFlags, kubeFlags } from '../../cli/kube-flags.js';
import { metricsFlags, metricsOutputsFrom, withRunMetrics } from '../../cli/metrics.js';
import { formatBytes, renderTable } from '../../cli/output.js';
import { catalogueFromFlags, storeFlags } from '../../cli/store-flags.js';
import { dumpResources, type DumpResult } from '../../snapshot/resources/dump.js';
import { checkLevel } from '../../snapshot/pipeline/codec.js';

export default class ResourcesDump extends BaseCommand<typeof ResourcesDump> {
  static override summary = 'Dump every served resource (CRDs and custom resources included) into the store, one YAML file per object.';
  static override description = `Discovers every group, version and resource the API server serves (preferred versions; CRDs and available aggregated APIs included), lists them in pages with a few resources at a time, and streams a tar of YAML files through compression and encryption into the store:

  <group>/<resource>/<namespace or _cluster>/<name>.yaml      (core group: "core")
  index.json                                                     counts, list resourceVersions, warnings

Extracted, the tree applies with \`kubectl apply -R -f\` without lifeboat. Objects are kept as served minus managedFields. Events, nodes, node leases and what the cluster recreates itself are skipped unless named in --include-resources; objects labelled lifeboat.io/exclude=true are skipped. A resource the credentials may not list is recorded in index.json and the run exits 3.`;
  static override examples = [
    '<%= config.bin %> resources dump',
    '<%= config.bin %> resources dump --include-namespaces shop,payments --store s3://backups/prod',
    "<%= config.bin %> resources dump --exclude-resources 'secrets,*.cert-manager.io' --selector app.kubernetes.io/part-of=shop",
    'LIFEBOAT_PUSHGATEWAY=https://metrics:s3cret@pushgateway.example:9091 <%= config.bin %> resources dump --store s3://backups/prod --metrics-file /var/lib/node_exporter/textfile/lifeboat-resources.prom',
  ];
  static override flags = {
    ...kubeFlags,
    ...resourceFilterFlags,
    ...storeFlags,
    ...backupWriteFlags,
    ...metricsFlags,
    ...withEnv({
      selector: Flags.string({ char: 'l', summary: 'Label selector applied to every list.', helpGroup: 'FILTERS' }),
      concurrency: Flags.integer({ min: 1, max: 32, default: 4, summary: 'Resources listed at once.' }),
      'page-size': Flags.integer({ min: 1, max: 10000, default: 500, summary: 'Objects per list request.' }),
    }),
  };

  async run(): Promise<DumpResult> {
    return withRunMetrics(metricsOutputsFrom(this.flags, this.logger), 'resources', () => this.dump(), (r) => ({
      bytes: r.manifest.objects.reduce((n, o) => n + o.size, 0),
      objects: r.index.objects,
      partial: r.partial,
    }));
  }

  private async dump(): Promise<DumpResult> {
    const f = this.flags;
    const level = checkLevel(f.compress, f['compress-level']);
    const filter = filterFromFlags(f);
    const encryption = await encryptionFrom(f);
    const labels = parseLabels(f.label ?? []);
    const cat = await catalogueFromFlags(f, this.logger);
    const client = await kubeClientFromFlags(f);
    let lastLog = 0;
    try {
      const result = await dumpResources(cat, {
        client,
        filter,
        selector: f.selector,
        codec: f.compress,
        level,
        encryption,
        labels,
        concurrency: f.concurrency,
        pageSize: f['page-size'],
        signal: this.signal,
        onProgress: (p) => {
          if (process.stderr.isTTY && Date.now() - lastLog > 500) {
            lastLog = Date.now();
            process.stderr.write(`\rresources ${p.resourcesDone}/${p.resourcesTotal}, objects ${p.objects}, ${formatBytes(p.bytes)}   `);
          }
        },
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      for (const w of result.index.warnings) this.logger.warn(w);
      this.printer.print(result, (r) => {
        const rows = r.index.resources.filter((c) => c.objects > 0).map((c) => [c.resource, String(c.objects)]);
        const o = r.manifest.objects[0]!;
        return (
          renderTable(['RESOURCE', 'OBJECTS'], rows) +
          `\nDump ${r.manifest.id}: ${r.index.objects} objects from ${r.index.resources.length} resources of ${r.index.server} (${r.index.kubernetesVersion}), stored ${formatBytes(o.size)} (${o.codec}${o.encryption ? ', age' : ''}) in ${cat.store.location}` +
          (r.partial ? `\nPARTIAL: could not list ${r.index.failed.map((x) => x.resource).join(', ')}` : '')
        );
      });
      if (result.partial) process.exitCode = ExitCode.Partial;
      return result;
    } finally {
      client.close();
    }
  }
}
