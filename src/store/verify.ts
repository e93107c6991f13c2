import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { Catalogue } from './catalogue.js';
import { HashCounter } from './hashing.js';
import type { BackupManifest } from './manifest.js';

export interface ObjectCheck {
  name: string;
  ok: boolean;
  expected: { size: number; sha256: string };
  actual?: { size: number; sha256: string };
  error?: string;
}

export interface VerifyReport {
  id: string;
  ok: boolean;
  objects: ObjectCheck[];
}

/** Re-reads every stored object of a backup and compares its size and sha256 with the manifest. */
export async function verifyStoredObjects(cat: Catalogue, manifest: BackupManifest, opts: { signal?: AbortSignal } = {}): Promise<VerifyReport> {
  const objects: ObjectCheck[] = [];
  for (const rec of manifest.objects) {
    const expected = { size: rec.size, sha256: rec.sha256 };
    try {
      const counter = new HashCounter();
      const sink = new Writable({ write: (_c, _e, cb) => cb() });
      await pipeline(await cat.open(manifest, rec.name, opts), counter, sink, opts.signal ? { signal: opts.signal } : {});
      const actual = { size: counter.bytes, sha256: counter.sha256 };
      const ok = actual.size === expected.size && actual.sha256 === expected.sha256;
      objects.push({
        name: rec.name,
        ok,
        expected,
        actual,
        ...(ok ? {} : { error: actual.size !== expected.size ? `size ${actual.size}, expected ${expected.size}` : 'sha256 mismatch' }),
      });
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      objects.push({ name: rec.name, ok: false, expected, error: err instanceof Error ? err.message : String(err) });
    }
  }
  return { id: manifest.id, ok: objects.every((o) => o.ok), objects };
}
