import { Args } from '@oclif/core';
import { stringify } from 'yaml';
import { BaseCommand } from '../../cli/base-command.js';
import { formatBytes, renderTable } from '../../cli/output.js';
import { catalogueFromFlags, storeFlags } from '../../cli/store-flags.js';
import type { BackupManifest } from '../../store/manifest.js';

export interface DescribeResult {
  manifest: BackupManifest;
  storedBytes: number;
  problems: string[];
}

export default class BackupsDescribe extends BaseCommand<typeof BackupsDescribe> {
  static override summary = 'Show the manifest of one backup: source, objects, sizes, hashes, labels.';
  static override examples = ['<%= config.bin %> backups describe etcd-20261122T040000Z-3f9a', '<%= config.bin %> backups describe etcd-20261122T040000Z-3f9a -o json'];
  static override args = { id: Args.string({ required: true, description: 'Backup id (see `backups list`).' }) };
  static override flags = { ...storeFlags };

  async run(): Promise<DescribeResult> {
    const cat = await catalogueFromFlags(this.flags, this.logger);
    const entry = await cat.describe(this.args.id);
    const result: DescribeResult = { manifest: entry.manifest, storedBytes: entry.storedBytes, problems: entry.problems };
    this.printer.print(result, (r) => {
      const m = r.manifest;
      const head = [
        `ID:        ${m.id}`,
        `Kind:      ${m.kind}`,
        `Created:   ${m.createdAt}`,
        `Finished:  ${m.finishedAt}`,
        `Tool:      lifeboat ${m.tool.version}`,
        `Size:      ${formatBytes(r.storedBytes)}`,
        `Status:    ${r.problems.length ? `DAMAGED: ${r.problems.join('; ')}` : 'ok'}`,
        `Labels:    ${Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(', ') || '-'}`,
        `Source:\n${indent(stringify(m.source))}`,
        Object.keys(m.details).length ? `Details:\n${indent(stringify(m.details))}` : '',
        m.warnings.length ? `Warnings:\n${m.warnings.map((w) => `  - ${w}`).join('\n')}` : '',
        'Objects:',
      ].filter(Boolean);
      const objects = renderTable(
        ['NAME', 'SIZE', 'SHA256', 'CODEC', 'ENCRYPTION'],
        m.objects.map((o) => [o.name, formatBytes(o.size), o.sha256, o.codec ?? '-', o.encryption ? `${o.encryption.scheme} (${o.encryption.recipients.length})` : '-']),
      );
      return head.join('\n') + '\n' + indent(objects);
    });
    return result;
  }
}

function indent(text: string): string {
  return text
    .trimEnd()
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
