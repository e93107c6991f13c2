import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { withEnv } from '../../cli/env.js';
import { UsageError } from '../../cli/errors.js';
import { byteProgress } from '../../cli/progress.js';
import { snapshotSourceFlags, snapshotSourceFrom } from '../../cli/snapshot-flags.js';
import { DEFAULT_BUMP, ensureEmptyTarget, restorePhysical, type PhysicalRestoreResult } from '../../snapshot/etcd/restore.js';
import { openSnapshot } from '../../snapshot/etcd/source.js';

export interface RestoreResult extends PhysicalRestoreResult {
  mode: 'data-dir';
  snapshot: string;
  backupId?: string;
}

export default class EtcdRestore extends BaseCommand<typeof EtcdRestore> {
  static override summary = 'Restore an etcd snapshot (backup id or file) into a new data dir.';
  static override description = `Downloads, decrypts and decompresses a stored backup into a private temporary file, checks the sha256 of the stored bytes, of the snapshot and etcd's own trailer, then creates the data dir with \`etcdutl snapshot restore\` (3.5+) or \`etcdctl snapshot restore\` (3.4), found on PATH or given with --etcdutl. A data dir that exists and is not empty is refused (exit 6); the new one appears only when the restore succeeded.

For Kubernetes the revision is raised by 1,000,000,000 and marked compacted (--bump-revision 0 turns this off), so every watcher relists instead of silently missing changes. Afterwards restart every control-plane component; the command prints the steps for kubeadm and multi-member clusters.`;
  static override examples = [
    '<%= config.bin %> etcd restore etcd-20261122T040000Z-3f9a --data-dir /var/lib/etcd-restored',
    '<%= config.bin %> etcd restore ./snapshot.db --data-dir /var/lib/etcd-new --name cp1 --initial-cluster cp1=https://10.0.0.1:2380,cp2=https://10.0.0.2:2380,cp3=https://10.0.0.3:2380 --initial-advertise-peer-urls https://10.0.0.1:2380 --initial-cluster-token lifeboat-restore',
    '<%= config.bin %> etcd restore etcd-20261122T040000Z-3f9a --store s3://backups/prod --identity-file ~/.config/lifeboat/age.key --data-dir /var/lib/etcd-restored',
  ];
  static override args = { snapshot: Args.string({ required: true, description: 'Backup id (see `backups list`) or snapshot file.' }) };
  static override flags = {
    ...snapshotSourceFlags,
    ...withEnv({
      'data-dir': Flags.string({ required: true, summary: 'New data dir to create (must not exist, or be empty).', helpGroup: 'RESTORE' }),
      'wal-dir': Flags.string({ summary: 'Separate WAL dir to create (must not exist, or be empty).', helpGroup: 'RESTORE' }),
      name: Flags.string({ summary: "This member's name (etcd --name).", helpGroup: 'RESTORE' }),
      'initial-cluster': Flags.string({ summary: 'name=peerURL,... of every member.', helpGroup: 'RESTORE' }),
      'initial-cluster-token': Flags.string({ summary: 'Token of the new cluster; the same on every member.', helpGroup: 'RESTORE' }),
      'initial-advertise-peer-urls': Flags.string({ summary: "This member's peer URLs.", helpGroup: 'RESTORE' }),
      'bump-revision': Flags.integer({ min: 0, default: DEFAULT_BUMP, summary: 'Raise the revision by this much and mark it compacted (0: do not).', helpGroup: 'RESTORE' }),
      'skip-hash-check': Flags.boolean({ summary: 'Accept a db without etcd\'s sha256 trailer (copied from a data dir).', helpGroup: 'RESTORE' }),
      etcdutl: Flags.string({ summary: 'Path of etcdutl (or etcdctl 3.4) to use.', helpGroup: 'RESTORE' }),
    }),
  };

  async run(): Promise<RestoreResult> {
    const f = this.flags;
    if (!f['data-dir']) throw new UsageError('--data-dir is required.');
    // Refuse an unsafe target before downloading anything.
    await ensureEmptyTarget(f['data-dir'], 'Data dir');
    if (f['wal-dir']) await ensureEmptyTarget(f['wal-dir'], 'WAL dir');
    const source = await snapshotSourceFrom(f, this.logger, this.signal);
    const progress = byteProgress('download');
    const snap = await openSnapshot(this.args.snapshot, { ...source, skipHashCheck: f['skip-hash-check'], onProgress: (d, t) => progress.update(d, t) }).finally(() =>
      progress.stop(),
    );
    try {
      const res = await restorePhysical({
        snapshotPath: snap.path,
        dataDir: f['data-dir'],
        walDir: f['wal-dir'],
        name: f.name,
        initialCluster: f['initial-cluster'],
        initialClusterToken: f['initial-cluster-token'],
        initialAdvertisePeerUrls: f['initial-advertise-peer-urls'],
        bumpRevision: f['bump-revision'],
        // A stored backup keeps etcd's trailer, which etcdutl checks again.
        skipHashCheck: f['skip-hash-check'],
        tool: f.etcdutl,
      });
      for (const w of res.warnings) this.logger.warn(w);
      const result: RestoreResult = { mode: 'data-dir', snapshot: this.args.snapshot, ...(snap.manifest ? { backupId: snap.manifest.id } : {}), ...res };
      this.printer.print(result, (r) =>
        [
          `Restored ${r.snapshot} into ${r.dataDir} with ${r.tool.kind} ${r.tool.version}${r.bumpRevision ? ` (revision +${r.bumpRevision}, compacted)` : ''}.`,
          '',
          'Next steps:',
          ...r.nextSteps.map((s, i) => `  ${i + 1}. ${s}`),
        ].join('\n'),
      );
      return result;
    } finally {
      await snap.cleanup();
    }
  }
}
