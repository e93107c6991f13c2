import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { withEnv } from '../../cli/env.js';
import { IntegrityError } from '../../cli/errors.js';
import { renderTable } from '../../cli/output.js';
import { snapshotSourceFlags, snapshotSourceFrom } from '../../cli/snapshot-flags.js';
import { catalogueFromFlags } from '../../cli/store-flags.js';
import { verifyEtcdPayload, type EtcdPayloadCheck } from '../../snapshot/etcd/verify.js';
import { verifyDumpPayload, type DumpPayloadCheck } from '../../snapshot/resources/verify.js';
import type { RestoreTestResult } from '../../snapshot/etcd/trial.js';
import { verifyStoredObjects, type VerifyReport } from '../../store/verify.js';

export interface BackupVerifyResult extends VerifyReport {
  payload?: EtcdPayloadCheck;
  dump?: DumpPayloadCheck;
  restoreTest?: RestoreTestResult;
}

export default class BackupsVerify extends BaseCommand<typeof BackupsVerify> {
  static override summary = 'Re-read a stored backup and check it: hashes, the snapshot or archive inside, and optionally a trial restore of an etcd snapshot.';
  static override description = `Every stored object is read back and compared with the size and sha256 in the manifest. For an etcd snapshot the object is also decrypted and decompressed into a private temporary file, its sha256 and etcd's trailer are checked, and the bbolt file is read through (consistency and status). For a resource dump the archive is unpacked the same way, every entry is parsed as a Kubernetes object and the counts are compared with index.json. With --restore-test an etcd snapshot is restored into a throwaway data dir, etcd is started on it on free local ports, and every key and value is compared with the snapshot.

Exits 5 when anything is missing, truncated, altered or differs.`;
  static override examples = [
    '<%= config.bin %> backups verify etcd-20261122T040000Z-3f9a',
    '<%= config.bin %> backups verify etcd-20261122T040000Z-3f9a --identity-file age.key --restore-test',
  ];
  static override args = { id: Args.string({ required: true, description: 'Backup id (see `backups list`).' }) };
  static override flags = {
    ...snapshotSourceFlags,
    ...withEnv({
      'restore-test': Flags.boolean({ summary: 'etcd: restore into a throwaway etcd and compare every key and value.' }),
      etcd: Flags.string({ summary: 'Path of the etcd binary for --restore-test (default: etcd on PATH).', dependsOn: ['restore-test'] }),
      etcdutl: Flags.string({ summary: 'Path of etcdutl (or etcdctl 3.4) for --restore-test (default: on PATH).', dependsOn: ['restore-test'] }),
    }),
  };

  async run(): Promise<BackupVerifyResult> {
    const source = await snapshotSourceFrom(this.flags, this.logger, this.signal);
    const cat = await catalogueFromFlags(this.flags, this.logger);
    const entry = await cat.describe(this.args.id);
    const stored = await verifyStoredObjects(cat, entry.manifest, { signal: this.signal });
    if (!stored.ok) {
      const bad = stored.objects.filter((o) => !o.ok);
      this.printer.print(stored, table);
      throw new IntegrityError(`Backup ${stored.id} failed verification: ${bad.map((o) => `${o.name} (${o.error})`).join('; ')}.`);
    }
    let result: BackupVerifyResult = stored;
    if (entry.manifest.kind === 'etcd') {
      const extra = await verifyEtcdPayload(cat, entry.manifest, stored, {
        ...source,
        restoreTest: this.flags['restore-test'] ? { etcd: this.flags.etcd, etcdutl: this.flags.etcdutl } : undefined,
      });
      result = { ...stored, ...extra };
      if (extra.payload.reason) this.logger.warn(`snapshot inside not checked: ${extra.payload.reason}`);
    } else {
      const extra = await verifyDumpPayload(cat, entry.manifest, stored, source);
      result = { ...stored, dump: extra.payload };
      if (extra.payload.reason) this.logger.warn(`archive inside not checked: ${extra.payload.reason}`);
    }
    this.printer.print(result, table);
    return result;
  }
}

function table(r: BackupVerifyResult): string {
  const rows = r.objects.map((o) => [o.name, o.ok ? 'ok' : 'FAILED', o.error ?? `sha256 ${o.expected.sha256.slice(0, 16)}…`]);
  if (r.payload?.checked && r.payload.status) {
    const s = r.payload.status;
    rows.push(['snapshot', 'ok', `sha256 and etcd trailer match; revision ${s.revision}, ${s.totalKey} keys, hash ${s.hash.toString(16)}`]);
  } else if (r.payload) rows.push(['snapshot', 'skipped', r.payload.reason ?? '']);
  if (r.dump?.checked) rows.push(['archive', 'ok', `${r.dump.entries} entries, ${r.dump.objects} objects of ${r.dump.resources} resources parse; counts match index.json`]);
  else if (r.dump) rows.push(['archive', 'skipped', r.dump.reason ?? '']);
  if (r.restoreTest) rows.push(['restore test', r.restoreTest.matches ? 'ok' : 'FAILED', `${r.restoreTest.actual.keys} keys match (${r.restoreTest.tool})`]);
  return renderTable(['CHECK', 'RESULT', 'DETAIL'], rows) + (r.ok ? `Backup ${r.id} verified.\n` : '');
}
