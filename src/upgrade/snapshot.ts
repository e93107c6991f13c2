/**
 * The snapshot an upgrade run takes before it touches the first node: an etcd snapshot into the
 * store, then verified as `backups verify` does (the stored bytes against the manifest, and, when
 * it can be decrypted, the snapshot inside read through by the bbolt reader).
 */
import type { EtcdConnection } from '../etcd/connection.js';
import { takeSnapshot } from '../snapshot/etcd/save.js';
import { verifyEtcdPayload } from '../snapshot/etcd/verify.js';
import type { Codec } from '../snapshot/pipeline/codec.js';
import type { EncryptionConfig } from '../snapshot/pipeline/encryption.js';
import { IntegrityError } from '../cli/errors.js';
import type { Catalogue } from '../store/catalogue.js';
import { verifyStoredObjects } from '../store/verify.js';

export interface PreUpgradeSnapshot {
  id: string;
  store: string;
  /** The snapshot inside was read through too (false: encrypted to recipients only; the stored bytes were checked). */
  payloadChecked: boolean;
  revision?: number;
}

export async function preUpgradeSnapshot(
  cat: Catalogue,
  opts: {
    connection: EtcdConnection;
    codec: Codec;
    level?: number | undefined;
    encryption?: EncryptionConfig | undefined;
    runId: string;
    target: string;
    signal?: AbortSignal | undefined;
    onConnected?: ((endpoint: string) => void) | undefined;
  },
): Promise<PreUpgradeSnapshot> {
  const manifest = await takeSnapshot(cat, {
    connection: opts.connection,
    codec: opts.codec,
    level: opts.level,
    encryption: opts.encryption,
    labels: { reason: 'pre-upgrade', 'upgrade-run': opts.runId, 'upgrade-target': opts.target },
    stallTimeoutMs: 60_000,
    ...(opts.signal ? { signal: opts.signal } : {}),
    onConnected: (s) => opts.onConnected?.(s.endpoint),
  });
  const stored = await verifyStoredObjects(cat, manifest, opts.signal ? { signal: opts.signal } : {});
  if (!stored.ok) {
    const bad = stored.objects.filter((o) => !o.ok).map((o) => `${o.name} (${o.error})`);
    throw new IntegrityError(`The pre-upgrade snapshot ${manifest.id} failed its verification: ${bad.join('; ')}. No node was touched.`);
  }
  const passphrase = opts.encryption && 'passphrase' in opts.encryption ? opts.encryption.passphrase : undefined;
  const check = await verifyEtcdPayload(cat, manifest, stored, {
    catalogue: cat,
    decryption: { identities: [], ...(passphrase ? { passphrase } : {}) },
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  return {
    id: manifest.id,
    store: cat.store.location,
    payloadChecked: check.payload.checked,
    ...(check.payload.status ? { revision: check.payload.status.revision } : {}),
  };
}
