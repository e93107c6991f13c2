import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { backupWriteFlags, encryptionFrom, parseLabels } from '../../cli/backup-flags.js';
import { parseDuration } from '../../cli/duration.js';
import { withEnv } from '../../cli/env.js';
import { etcdConnectionFromFlags, etcdFlags } from '../../cli/etcd-flags.js';
import { formatBytes } from '../../cli/output.js';
import { byteProgress } from '../../cli/progress.js';
import { catalogueFromFlags, storeFlags } from '../../cli/store-flags.js';
import { takeSnapshot } from '../../snapshot/etcd/save.js';
import type { BackupManifest } from '../../store/manifest.js';
import { metricsFlags, metricsOutputsFrom, withRunMetrics } from '../../cli/metrics.js';
import { checkLevel } from '../../snapshot/pipeline/codec.js';

export default class EtcdSnapshot extends BaseCommand<typeof EtcdSnapshot> {
  static override summary = "Take an etcd snapshot and stream it, checked, compressed and optionally encrypted, into the store.";
  static override description = `Uses etcd's Maintenance API like \`etcdctl snapshot save\`, from the first endpoint that answers. The stream is checked against etcd's sha256 trailer as it passes; a stream that ends early or does not match is an error and never becomes a backup. Nothing is written to a temporary file and the snapshot is never held in memory.

The stored object opens with standard tools: \`age -d -i key.txt snapshot.db.zst.age | zstd -d > snapshot.db\` gives exactly the file \`etcdctl snapshot save\` writes.`;
  static override examples = [
    '<%= config.bin %> etcd snapshot --endpoints https://10.0.0.10:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key',
    '<%= config.bin %> etcd snapshot --store s3://backups/prod --encrypt-to age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p --label reason=pre-upgrade',
    'ETCDCTL_ENDPOINTS=127.0.0.1:2379 <%= config.bin %> etcd snapshot --compress gzip',
    '<%= config.bin %> etcd snapshot --store s3://backups/prod --pushgateway http://pushgateway.monitoring:9091',
  ];
  static override flags = {
    ...etcdFlags,
    ...storeFlags,
    ...backupWriteFlags,
    ...metricsFlags,
    ...withEnv({
      'stall-timeout': Flags.string({ default: '60s', summary: 'Fail when etcd sends nothing for this long (0 to wait forever).' }),
    }),
  };

  async run(): Promise<BackupManifest> {
    return withRunMetrics(metricsOutputsFrom(this.flags, this.logger), 'etcd', () => this.snapshot(), (m) => ({ bytes: m.objects.reduce((n, o) => n + o.size, 0) }));
  }

  private async snapshot(): Promise<BackupManifest> {
    const f = this.flags;
    const level = checkLevel(f.compress, f['compress-level']);
    const connection = etcdConnectionFromFlags(f);
    const encryption = await encryptionFrom(f);
    const labels = parseLabels(f.label ?? []);
    const cat = await catalogueFromFlags(f, this.logger);
    this.logger.debug('connecting to etcd', { endpoints: connection.endpoints });
    const progress = byteProgress('snapshot');
    let manifest: BackupManifest;
    try {
      manifest = await takeSnapshot(cat, {
        connection,
        codec: f.compress,
        level,
        encryption,
        labels,
        stallTimeoutMs: f['stall-timeout'] === '0' ? 0 : parseDuration(f['stall-timeout'], '--stall-timeout'),
        signal: this.signal,
        onProgress: (done, total) => progress.update(done, total),
        onConnected: (s) => this.logger.info(`snapshotting etcd ${s.version} at ${s.endpoint}`, { member: s.memberId, db: formatBytes(s.dbSize) }),
      });
    } finally {
      progress.stop();
    }
    this.printer.print(manifest, (m) => {
      const d = m.details as { revision: number; dbSize: number; durationMs: number };
      const o = m.objects[0]!;
      return [
        `Snapshot ${m.id} stored in ${cat.store.location}`,
        `  revision ${d.revision}, db ${formatBytes(d.dbSize)}, stored ${formatBytes(o.size)} (${o.codec}${o.encryption ? ', age' : ''}) in ${(d.durationMs / 1000).toFixed(1)}s`,
        `  sha256 ${o.sha256}`,
      ].join('\n');
    });
    return manifest;
  }
}
