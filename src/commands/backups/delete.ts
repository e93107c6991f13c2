import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { confirm } from '../../cli/confirm.js';
import { withEnv } from '../../cli/env.js';
import { LifeboatError } from '../../cli/errors.js';
import { renderTable } from '../../cli/output.js';
import { catalogueFromFlags, storeFlags } from '../../cli/store-flags.js';

export interface DeleteResult {
  deleted: { id: string; deletedObjects: number }[];
}

export default class BackupsDelete extends BaseCommand<typeof BackupsDelete> {
  static override summary = 'Delete backups by id.';
  static override description =
    'The manifest goes first, so a backup stops being listed or restorable at once; its data follows. If deletion is interrupted, what is left is garbage that `backups prune` collects.';
  static override examples = ['<%= config.bin %> backups delete etcd-20261122T040000Z-3f9a', '<%= config.bin %> backups delete etcd-20261122T040000Z-3f9a resources-20261122T040000Z-77c1 --yes'];
  static override strict = false;
  static override args = { id: Args.string({ required: true, description: 'Backup ids to delete.' }) };
  static override flags = {
    ...storeFlags,
    ...withEnv({ yes: Flags.boolean({ char: 'y', summary: 'Do not ask for confirmation (required when stdin is not a terminal).' }) }),
  };

  async run(): Promise<DeleteResult> {
    const all = [...new Set(this.positional)];
    const cat = await catalogueFromFlags(this.flags, this.logger);
    // Resolve every id before deleting any, so a typo deletes nothing.
    for (const id of all) await cat.describe(id);
    if (!(await confirm(`Delete ${all.length} backup(s): ${all.join(', ')}?`, { yes: this.flags.yes, what: 'delete backups' }))) {
      throw new LifeboatError('Nothing deleted.', { exitCode: 1 });
    }
    const deleted = [];
    for (const id of all) deleted.push(await cat.delete(id));
    const result: DeleteResult = { deleted };
    this.printer.print(result, (r) => renderTable(['DELETED', 'OBJECTS'], r.deleted.map((d) => [d.id, String(d.deletedObjects)])));
    return result;
  }
}
