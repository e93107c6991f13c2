import { Args, Flags } from '@oclif/core';
import { stringify } from 'yaml';
import { BaseCommand } from '../../cli/base-command.js';
import { withEnv } from '../../cli/env.js';
import { UsageError } from '../../cli/errors.js';
import { formatBytes, renderTable } from '../../cli/output.js';
import { inspectSnapshot, keyText, type InspectReport, type LiveKey, type LiveKeys } from '../../snapshot/etcd/inspect.js';
import { snapshotSourceFlags, snapshotSourceFrom } from '../../cli/snapshot-flags.js';
import { openSnapshot } from '../../snapshot/etcd/source.js';

const ENCODINGS = ['other', 'json', 'protobuf', 'encrypted'] as const;

export default class EtcdInspect extends BaseCommand<typeof EtcdInspect> {
  static override summary = 'Show what an etcd snapshot holds: live keys and bytes per prefix, Kubernetes objects per resource and namespace.';
  static override description =
    'Reads the snapshot file directly and computes the keys live at its revision (latest revision per key; deleted keys left out), as `etcdctl get --prefix` would have listed them. Keys are grouped by their first path segments (--depth, default 2, or one below --prefix). --kubernetes counts objects per resource and namespace from /registry/... keys. --keys lists every live key instead of the groups, streamed in key order.';
  static override examples = [
    '<%= config.bin %> etcd inspect ./snapshot.db',
    '<%= config.bin %> etcd inspect ./snapshot.db --kubernetes',
    '<%= config.bin %> etcd inspect ./snapshot.db --prefix /registry/secrets/ --keys',
    '<%= config.bin %> etcd inspect ./snapshot.db --prefix /registry/ --depth 3 -o json',
  ];
  static override args = {
    snapshot: Args.string({ required: true, description: 'Backup id (see `backups list`) or snapshot file (from `etcdctl snapshot save`, or a member\'s db file).' }),
  };
  static override flags = {
    ...snapshotSourceFlags,
    ...withEnv({
    prefix: Flags.string({ summary: 'Only keys starting with this prefix.' }),
    depth: Flags.integer({ summary: 'Group keys by this many leading path segments (default 2, or one more than --prefix has).', min: 1 }),
    kubernetes: Flags.boolean({ char: 'k', summary: 'Count Kubernetes objects per resource and namespace.' }),
    'registry-prefix': Flags.string({ summary: 'Where the Kubernetes API server stores objects (its --etcd-prefix).', default: '/registry/' }),
    keys: Flags.boolean({ summary: 'List the live keys (with revisions and sizes) instead of the prefix groups.' }),
    }),
  };

  async run(): Promise<InspectReport> {
    const { prefix, depth, kubernetes, keys } = this.flags;
    if (prefix === '') throw new UsageError('--prefix must not be empty.');
    const snap = await openSnapshot(this.args.snapshot, await snapshotSourceFrom(this.flags, this.logger, this.signal));
    try {
      const { report, live } = await inspectSnapshot(snap.path, { prefix, depth, kubernetes, registryPrefix: this.flags['registry-prefix'], signal: this.signal });
      if (keys) await this.streamKeys(report, live);
      else this.printer.print(report, renderReport);
      return report;
    } finally {
      await snap.cleanup();
    }
  }

  /** --keys: written as they are produced (JSON and YAML stay valid documents), never as one big array. */
  private async streamKeys(report: InspectReport, live: LiveKeys): Promise<void> {
    const format = this.flags.output;
    const out = new LineWriter(this.signal);
    if (format === 'json') {
      await out.write(JSON.stringify(report, null, 2).replace(/\n}$/, ',\n  "keys": ['));
      let first = true;
      for (const k of live.sorted()) {
        if (out.closed) break;
        await out.write(`${first ? '\n' : ',\n'}    ${JSON.stringify(keyJson(k))}`);
        first = false;
      }
      await out.write(first ? ']\n}\n' : '\n  ]\n}\n');
    } else if (format === 'yaml') {
      await out.write(stringify(report, { lineWidth: 0 }) + (live.count ? 'keys:\n' : 'keys: []\n'));
      for (const k of live.sorted()) {
        if (out.closed) break;
        // JSON strings are valid YAML double-quoted scalars; much faster than a YAML library per key.
        await out.write(`- ${Object.entries(keyJson(k)).map(([f, v]) => `${f}: ${JSON.stringify(v)}`).join('\n  ')}\n`);
      }
    } else {
      await out.write(`${'MOD REV'.padEnd(12)}${'VERSION'.padEnd(9)}${'SIZE'.padEnd(11)}KEY\n`);
      for (const k of live.sorted()) {
        if (out.closed) break;
        await out.write(`${String(k.modRevision).padEnd(12)}${String(k.version).padEnd(9)}${formatBytes(k.valueSize).padEnd(11)}${keyText(k.key)}\n`);
      }
    }
    await out.end();
  }
}

function keyJson(k: LiveKey): Record<string, unknown> {
  return {
    key: keyText(k.key),
    createRevision: k.createRevision,
    modRevision: k.modRevision,
    version: k.version,
    valueSize: k.valueSize,
    ...(k.lease !== 0n ? { lease: BigInt.asUintN(64, k.lease).toString(16) } : {}),
    encoding: ENCODINGS[k.encoding],
  };
}

function renderReport(r: InspectReport): string {
  const head = [
    `Revision:    ${r.revision}${r.compactRevision !== null ? ` (compacted at ${r.compactRevision})` : ''}`,
    `Stored:      ${r.revisions} revisions, ${r.tombstones} tombstones`,
    `Live keys:   ${r.liveKeys}${r.prefix !== null ? ` under ${r.prefix}` : ''}, ${formatBytes(r.bytes)} (keys ${formatBytes(r.keyBytes)}, values ${formatBytes(r.valueBytes)})`,
  ].join('\n');
  const parts = [head, renderTable(['PREFIX', 'KEYS', 'BYTES'], r.prefixes.map((p) => [p.prefix, String(p.keys), formatBytes(p.bytes)]))];
  const k = r.kubernetes;
  if (k) {
    const enc = Object.entries(k.encodings)
      .filter(([, n]) => n > 0)
      .map(([e, n]) => `${n} ${e}`)
      .join(', ');
    parts.push(`Kubernetes objects under ${k.registryPrefix}: ${k.objects}, ${formatBytes(k.bytes)}${enc ? ` (${enc})` : ''}${k.otherKeys ? `; ${k.otherKeys} other keys` : ''}`);
    parts.push(renderTable(['RESOURCE', 'NAMESPACED', 'OBJECTS', 'NAMESPACES', 'BYTES'], k.resources.map((x) => [x.resource, x.namespaced ? 'yes' : 'no', String(x.objects), x.namespaced ? String(x.namespaces) : '-', formatBytes(x.bytes)])));
    if (k.namespaces.length) parts.push(renderTable(['NAMESPACE', 'OBJECTS', 'BYTES'], k.namespaces.map((n) => [n.namespace, String(n.objects), formatBytes(n.bytes)])));
  }
  return parts.map((p) => p.trimEnd()).join('\n\n') + '\n';
}

/**
 * Buffers small writes into ~64 KiB chunks and waits for stdout to drain (memory stays flat).
 * When the reader goes away (`| head`: EPIPE), further output is dropped quietly.
 */
class LineWriter {
  private parts: string[] = [];
  private size = 0;
  closed = false;
  private readonly onError = (): void => {
    this.closed = true;
  };

  constructor(private readonly signal: AbortSignal) {
    process.stdout.on('error', this.onError);
  }

  async write(text: string): Promise<void> {
    if (this.closed) return;
    this.parts.push(text);
    this.size += text.length;
    if (this.size >= 64 * 1024) await this.flush();
  }

  async flush(): Promise<void> {
    this.signal.throwIfAborted();
    if (this.closed || !this.parts.length) return;
    const chunk = this.parts.join('');
    this.parts = [];
    this.size = 0;
    if (!process.stdout.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          process.stdout.off('drain', done);
          process.stdout.off('error', done);
          resolve();
        };
        process.stdout.once('drain', done);
        process.stdout.once('error', done);
      });
    }
  }

  async end(): Promise<void> {
    await this.flush();
    process.stdout.off('error', this.onError);
  }
}
