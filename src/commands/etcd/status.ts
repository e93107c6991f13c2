import { Args } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { renderTable } from '../../cli/output.js';
import { snapshotSourceFlags, snapshotSourceFrom } from '../../cli/snapshot-flags.js';
import { openSnapshot } from '../../snapshot/etcd/source.js';
import { humanizeBytes, snapshotStatus, type SnapshotStatus } from '../../snapshot/etcd/status.js';

export default class EtcdStatus extends BaseCommand<typeof EtcdStatus> {
  static override summary = 'Print the hash, revision, key count and size of an etcd snapshot, as `etcdctl snapshot status` does.';
  static override description =
    'Reads the snapshot file directly (no etcd, no Go tools needed) and gives exactly the numbers of `etcdctl snapshot status` (etcd 3.4) and `etcdutl snapshot status` (3.5) for the same file. The file is checked for integrity on the way (bbolt consistency rules); a file that is not a bbolt database, is truncated or is corrupt exits 5.';
  static override examples = [
    '<%= config.bin %> etcd status ./snapshot.db',
    '<%= config.bin %> etcd status etcd-20261122T040000Z-3f9a --store s3://backups/prod -o json',
  ];
  static override args = {
    snapshot: Args.string({ required: true, description: 'Backup id (see `backups list`) or snapshot file (from `etcdctl snapshot save`, or a member\'s db file).' }),
  };
  static override flags = { ...snapshotSourceFlags };

  async run(): Promise<SnapshotStatus> {
    const snap = await openSnapshot(this.args.snapshot, await snapshotSourceFrom(this.flags, this.logger, this.signal));
    const result = await snapshotStatus(snap.path, { signal: this.signal }).finally(() => snap.cleanup());
    this.printer.print(result, (r) =>
      renderTable(['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'], [[r.hash.toString(16), String(r.revision), String(r.totalKey), humanizeBytes(r.totalSize)]]),
    );
    return result;
  }
}
