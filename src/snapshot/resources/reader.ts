import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { extract as tarExtract } from 'tar-stream';
import { IntegrityError, LifeboatError } from '../../cli/errors.js';
import { fromYaml, INDEX_NAME, parseArchivePath, safeEntryName } from './archive.js';
import type { DumpIndex } from './dump.js';
import { grName, type KubeObject } from './types.js';

/** One resource's objects in an archive, spooled to a JSON-lines file for the restore passes. */
export interface SpooledResource {
  group: string;
  resource: string;
  count: number;
  file: string;
}

export interface ReadArchive {
  index: DumpIndex;
  resources: SpooledResource[];
  entries: number;
  /** Reads one resource's objects back, in archive order. */
  objects(r: SpooledResource): AsyncIterable<KubeObject>;
  cleanup(): Promise<void>;
}

/**
 * Reads a dump archive once, checking every entry before anything is applied: names that could
 * escape a directory (absolute, '..'), files that do not parse, a tar cut inside an entry, and an
 * archive whose objects per resource differ from index.json's counts (or that has no index.json,
 * which a dump writes last: a tar cut between two entries) are all an IntegrityError. Objects are
 * spooled per resource to private temporary files so restore can go tier by tier in bounded
 * memory.
 */
export async function readArchive(tarPath: string, opts: { tmpDir?: string | undefined } = {}): Promise<ReadArchive> {
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'lifeboat-restore-'));
  const spools = new Map<string, SpooledResource & { out: WriteStream }>();
  let index: DumpIndex | undefined;
  let entries = 0;
  const cleanup = () => rm(dir, { recursive: true, force: true });
  /** A spool that could not be written: the temporary disk's fault, not the archive's. */
  let spoolError: LifeboatError | undefined;
  try {
    const ex = tarExtract();
    const done = (async () => {
      for await (const entry of ex) {
        const name = entry.header.name;
        const chunks: Buffer[] = [];
        for await (const c of entry) chunks.push(c as Buffer);
        if (!safeEntryName(name)) throw new IntegrityError(`The archive has an entry named ${JSON.stringify(name)}, which could escape its directory; nothing was applied.`);
        if (entry.header.type !== 'file') continue;
        entries++;
        const text = Buffer.concat(chunks).toString('utf8');
        if (name === INDEX_NAME) {
          try {
            index = JSON.parse(text) as DumpIndex;
          } catch {
            throw new IntegrityError('The archive\'s index.json does not parse; nothing was applied.');
          }
          continue;
        }
        const where = parseArchivePath(name);
        if (!where) throw new IntegrityError(`The archive has an unexpected entry ${JSON.stringify(name)}; nothing was applied.`);
        let obj: KubeObject;
        try {
          obj = fromYaml(text);
        } catch (err) {
          throw new IntegrityError(`Archive entry ${name} does not parse as a Kubernetes object (${(err as Error).message}); nothing was applied.`);
        }
        const key = `${where.group}/${where.resource}`;
        let spool = spools.get(key);
        if (!spool) {
          const file = join(dir, `${spools.size}.jsonl`);
          const out = createWriteStream(file, { mode: 0o600 });
          out.on('error', (err) => {
            spoolError ??= new LifeboatError(`Cannot write the restore's temporary files in ${dir} (${err.message}); nothing was applied.`, {
              cause: err,
              hint: 'Free space there, or point --tmp-dir (or TMPDIR) at a disk with room for the uncompressed archive.',
            });
            ex.destroy(spoolError);
          });
          spool = { group: where.group, resource: where.resource, count: 0, file, out };
          spools.set(key, spool);
        }
        spool.count++;
        if (!spool.out.write(JSON.stringify(obj) + '\n')) await once(spool.out, 'drain');
      }
    })();
    const input = createReadStream(tarPath);
    input.on('error', (err) => ex.destroy(err));
    input.pipe(ex as unknown as NodeJS.WritableStream);
    await done.catch((err: unknown) => {
      if (spoolError) throw spoolError;
      if (err instanceof IntegrityError) throw err;
      throw new IntegrityError(`The archive is not a valid tar (${(err as Error).message}): truncated or corrupt; nothing was applied.`);
    });
    for (const s of spools.values()) {
      if (s.out.closed) continue;
      s.out.end();
      await once(s.out, 'close').catch(() => undefined);
    }
    if (spoolError) throw spoolError;
    if (!index) throw new IntegrityError('The archive has no index.json: it is truncated or not a lifeboat resource dump; nothing was applied.');
    const mismatches = indexMismatches(index, [...spools.values()]);
    if (mismatches.length) throw new IntegrityError(`The archive does not match its index.json (${mismatches.join('; ')}): it is truncated or altered; nothing was applied.`);
  } catch (err) {
    for (const s of spools.values()) s.out.destroy();
    await cleanup();
    throw err;
  }
  const resources = [...spools.values()].map(({ out: _out, ...r }) => r);
  return {
    index: index!,
    resources,
    entries,
    async *objects(r) {
      const rl = createInterface({ input: createReadStream(r.file), crlfDelay: Infinity });
      for await (const line of rl) if (line) yield JSON.parse(line) as KubeObject;
    },
    cleanup,
  };
}

/** Per resource, where the objects in the archive differ in number from what index.json lists. */
export function indexMismatches(index: DumpIndex, resources: Pick<SpooledResource, 'group' | 'resource' | 'count'>[]): string[] {
  const counted = new Map(resources.map((r) => [grName(r), r.count]));
  const out: string[] = [];
  const listed = new Set<string>();
  for (const c of Array.isArray(index.resources) ? index.resources : []) {
    listed.add(c.resource);
    const n = counted.get(c.resource) ?? 0;
    if (n !== c.objects) out.push(`${c.resource}: index.json says ${c.objects}, archive has ${n}`);
  }
  for (const [name, n] of counted) if (!listed.has(name)) out.push(`${name}: not in index.json, archive has ${n}`);
  return out;
}
