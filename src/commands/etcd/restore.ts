import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { withEnv } from '../../cli/env.js';
import { UsageError } from '../../cli/errors.js';
import { byteProgress } from '../../cli/progress.js';
import { etcdConnectionFromFlags, etcdTargetFlags } from '../../cli/etcd-flags.js';
import { formatBytes } from '../../cli/output.js';
import { snapshotSourceFlags, snapshotSourceFrom } from '../../cli/snapshot-flags.js';
import { restoreLogical, type LogicalRestoreResult } from '../../snapshot/etcd/logical.js';
import { DEFAULT_BUMP, ensureEmptyTarget, restorePhysical, type PhysicalRestoreResult } from '../../snapshot/etcd/restore.js';
import { openSnapshot } from '../../snapshot/etcd/source.js';

export type RestoreResult = { snapshot: string; backupId?: string } & (
  | ({ mode: 'data-dir' } & PhysicalRestoreResult)
  | ({ mode: 'into' } & LogicalRestoreResult)
);

export default class EtcdRestore extends BaseCommand<typeof EtcdRestore> {
  static override summary = 'Restore an etcd snapshot (backup id or file) into a new data dir, or key by key into a running etcd.';
  static override description = `Downloads, decrypts and decompresses a stored backup into a private temporary file, checks the sha256 of the stored bytes, of the snapshot and etcd's own trailer, then creates the data dir with \`etcdutl snapshot restore\` (3.5+) or \`etcdctl snapshot restore\` (3.4), found on PATH or given with --etcdutl. A data dir that exists and is not empty is refused (exit 6); the new one appears only when the restore succeeded.

For Kubernetes the revision is raised by 1,000,000,000 and marked compacted (--bump-revision 0 turns this off), so every watcher relists instead of silently missing changes. Afterwards restart every control-plane component; the command prints the steps for kubeadm and multi-member clusters.

With --into ENDPOINTS instead of --data-dir, every key live at the snapshot's revision (optionally only under --prefix) is written into a running etcd in batched transactions; the target's own revisions apply and leases are not carried over. A target that already has keys (under the prefix) is refused unless --force. Use the --cacert/--cert/--key/--user flags for the target.`;
  static override examples = [
    '<%= config.bin %> etcd restore etcd-20261122T040000Z-3f9a --data-dir /var/lib/etcd-restored',
    '<%= config.bin %> etcd restore ./snapshot.db --data-dir /var/lib/etcd-new --name cp1 --initial-cluster cp1=https://10.0.0.1:2380,cp2=https://10.0.0.2:2380,cp3=https://10.0.0.3:2380 --initial-advertise-peer-urls https://10.0.0.1:2380 --initial-cluster-token lifeboat-restore',
    '<%= config.bin %> etcd restore etcd-20261122T040000Z-3f9a --store s3://backups/prod --identity-file ~/.config/lifeboat/age.key --data-dir /var/lib/etcd-restored',
    '<%= config.bin %> etcd restore etcd-20261122T040000Z-3f9a --into https://10.0.0.20:2379 --cacert ca.crt --cert client.crt --key client.key --prefix /app/',
  ];
  static override args = { snapshot: Args.string({ required: true, description: 'Backup id (see `backups list`) or snapshot file.' }) };
  static override flags = {
    ...snapshotSourceFlags,
    ...etcdTargetFlags,
    ...withEnv({
      'data-dir': Flags.string({ summary: 'New data dir to create (must not exist, or be empty).', helpGroup: 'RESTORE', exactlyOne: ['data-dir', 'into'] }),
      into: Flags.string({ summary: 'Write the keys into this running etcd instead (comma-separated endpoints).', helpGroup: 'LOGICAL RESTORE', exactlyOne: ['data-dir', 'into'] }),
      prefix: Flags.string({ summary: 'With --into: only keys under this prefix.', helpGroup: 'LOGICAL RESTORE', dependsOn: ['into'] }),
      force: Flags.boolean({ summary: 'With --into: write even when the target already has keys.', helpGroup: 'LOGICAL RESTORE', dependsOn: ['into'] }),
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
    if (f.into) return this.restoreInto(f.into);
    if (!f['data-dir']) throw new UsageError('Give --data-dir (a new data dir) or --into (a running etcd).');
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
      this.printer.print(result, () =>
        [
          `Restored ${this.args.snapshot} into ${res.dataDir} with ${res.tool.kind} ${res.tool.version}${res.bumpRevision ? ` (revision +${res.bumpRevision}, compacted)` : ''}.`,
          '',
          'Next steps:',
          ...res.nextSteps.map((s, i) => `  ${i + 1}. ${s}`),
        ].join('\n'),
      );
      return result;
    } finally {
      await snap.cleanup();
    }
  }

  private async restoreInto(endpoints: string): Promise<RestoreResult> {
    const f = this.flags;
    const connection = etcdConnectionFromFlags({ ...f, endpoints });
    const source = await snapshotSourceFrom(f, this.logger, this.signal);
    const download = byteProgress('download');
    const snap = await openSnapshot(this.args.snapshot, { ...source, skipHashCheck: f['skip-hash-check'], onProgress: (d, t) => download.update(d, t) }).finally(() =>
      download.stop(),
    );
    const progress = byteProgress('keys');
    try {
      const res = await restoreLogical({
        snapshotPath: snap.path,
        connection,
        prefix: f.prefix,
        force: f.force,
        signal: this.signal,
        onProgress: (done, total) => progress.update(done, total),
      });
      if (res.leasesDropped) this.logger.warn(`${res.leasesDropped} key(s) had a lease in the snapshot and were written without one.`);
      const result: RestoreResult = { mode: 'into', snapshot: this.args.snapshot, ...(snap.manifest ? { backupId: snap.manifest.id } : {}), ...res };
      this.printer.print(
        result,
        () =>
          `Wrote ${res.keys} key(s) (${formatBytes(res.bytes)} of values) live at revision ${res.snapshotRevision} of ${this.args.snapshot} into ${res.endpoint} in ${(res.durationMs / 1000).toFixed(1)}s.`,
      );
      return result;
    } finally {
      progress.stop();
      await snap.cleanup();
    }
  }
}
