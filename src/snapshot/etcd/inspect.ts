/**
 * What a snapshot holds: the keys live at its revision, grouped by prefix and, for Kubernetes,
 * by resource and namespace.
 *
 * The `key` bucket is sorted by revision, not by key, so the live set is built in one pass with a
 * map from key to the slot of its latest state: a put (re)places it, a tombstone removes it. Only
 * key bytes and a few numbers per live key are kept (never values): memory is about key length +
 * ~150 bytes per live key (measured: +50 MB for 250k keys of ~35 bytes), so ~200 MB for a million
 * Kubernetes objects, whatever their values weigh. With --prefix, keys outside it are not kept. Values, when wanted, come from a second
 * pass (liveEntries) that streams them in revision order.
 */
import { IntegrityError } from '../../cli/errors.js';
import { BoltReader, type BucketRef } from './bbolt.js';
import { decodeKeyValue, emptyKeyValue, isTombstoneKey, parseRevKey, ProtoError, revKeyMain } from './mvcc.js';

export const ValueEncoding = { Other: 0, Json: 1, Protobuf: 2, Encrypted: 3 } as const;
export type ValueEncoding = (typeof ValueEncoding)[keyof typeof ValueEncoding];
const ENCODING_NAMES = ['other', 'json', 'protobuf', 'encrypted'] as const;

const K8S_PROTO = Buffer.from('k8s\x00', 'latin1');
const K8S_ENC = Buffer.from('k8s:enc:', 'latin1');

/** How a Kubernetes object is stored: 'k8s\0' protobuf, 'k8s:enc:' encrypted, '{' JSON, or other. */
export function valueEncoding(buf: Uint8Array, start = 0, end = buf.length): ValueEncoding {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (end - start >= 4 && b.compare(K8S_PROTO, 0, 4, start, start + 4) === 0) return ValueEncoding.Protobuf;
  if (end - start >= 8 && b.compare(K8S_ENC, 0, 8, start, start + 8) === 0) return ValueEncoding.Encrypted;
  let i = start;
  while (i < end && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x0d || b[i] === 0x09)) i++;
  return i < end && b[i] === 0x7b ? ValueEncoding.Json : ValueEncoding.Other;
}

export interface LiveKey {
  /** Key bytes as a latin1 string (one char per byte); see keyText(). */
  key: string;
  createRevision: number;
  modRevision: number;
  version: number;
  valueSize: number;
  /** 0n without a lease. */
  lease: bigint;
  encoding: ValueEncoding;
}

/** Key bytes (latin1 string) -> printable text (UTF-8 decoded). */
export function keyText(key: string): string {
  return Buffer.from(key, 'latin1').toString('utf8');
}

/** The live key set: key -> slot in typed columns; freed slots are reused. */
export class LiveKeys {
  private readonly slots = new Map<string, number>();
  private free: number[] = [];
  private cap = 0;
  private used = 0;
  private createRev = new Float64Array(0);
  private modRev = new Float64Array(0);
  private ver = new Float64Array(0);
  private size = new Float64Array(0);
  private lease = new BigInt64Array(0);
  private enc = new Uint8Array(0);

  get count(): number {
    return this.slots.size;
  }

  put(key: string, createRevision: number, modRevision: number, version: number, valueSize: number, lease: bigint, encoding: ValueEncoding): void {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.grow();
      this.slots.set(key, slot);
    }
    this.createRev[slot] = createRevision;
    this.modRev[slot] = modRevision;
    this.ver[slot] = version;
    this.size[slot] = valueSize;
    this.lease[slot] = lease;
    this.enc[slot] = encoding;
  }

  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    this.free.push(slot);
  }

  get(key: string): LiveKey | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.at(key, slot);
  }

  /** Latest mod revision of key, or 0 when not live. */
  modRevisionOf(key: string): number {
    const slot = this.slots.get(key);
    return slot === undefined ? 0 : (this.modRev[slot] as number);
  }

  /** Calls fn for every live key, in no particular order, without an object per key. */
  forEachKey(fn: (key: string, valueSize: number, encoding: ValueEncoding) => void): void {
    for (const [key, slot] of this.slots) fn(key, this.size[slot] as number, this.enc[slot] as ValueEncoding);
  }

  /** Live keys in no particular order. */
  *[Symbol.iterator](): Generator<LiveKey> {
    for (const [key, slot] of this.slots) yield this.at(key, slot);
  }

  /** Live keys in byte order (as `etcdctl get --prefix` lists them); sorts an array of the keys. */
  *sorted(): Generator<LiveKey> {
    const keys = [...this.slots.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const key of keys) yield this.at(key, this.slots.get(key) as number);
  }

  private at(key: string, slot: number): LiveKey {
    return {
      key,
      createRevision: this.createRev[slot] as number,
      modRevision: this.modRev[slot] as number,
      version: this.ver[slot] as number,
      valueSize: this.size[slot] as number,
      lease: this.lease[slot] as bigint,
      encoding: this.enc[slot] as ValueEncoding,
    };
  }

  private grow(): number {
    if (this.used === this.cap) {
      this.cap = Math.max(1024, this.cap * 2);
      const f64 = (old: Float64Array) => {
        const n = new Float64Array(this.cap);
        n.set(old);
        return n;
      };
      this.createRev = f64(this.createRev);
      this.modRev = f64(this.modRev);
      this.ver = f64(this.ver);
      this.size = f64(this.size);
      const lease = new BigInt64Array(this.cap);
      lease.set(this.lease);
      this.lease = lease;
      const enc = new Uint8Array(this.cap);
      enc.set(this.enc);
      this.enc = enc;
    }
    return this.used++;
  }
}

export interface LiveScan {
  live: LiveKeys;
  /** Main revision of the last entry of `key` (the snapshot's revision). */
  revision: number;
  /** Revision of the last finished compaction, or null when none is recorded. */
  compactRevision: number | null;
  /** Entries (revisions) in bucket `key`, tombstones included. */
  revisions: number;
  tombstones: number;
}

async function keyBucket(reader: BoltReader): Promise<BucketRef> {
  const ref = await reader.bucket(['key']);
  if (!ref) throw new IntegrityError(`${reader.path} is a bbolt database but not an etcd one: it has no "key" bucket.`);
  return ref;
}

/** One pass over `key`: the live key set (restricted to keys starting with prefix, if given). */
export async function scanLiveKeys(reader: BoltReader, opts: { prefix?: string | undefined; signal?: AbortSignal | undefined } = {}): Promise<LiveScan> {
  const ref = await keyBucket(reader);
  const prefix = opts.prefix ? Buffer.from(opts.prefix) : null;
  const live = new LiveKeys();
  const kv = emptyKeyValue();
  let revision = 0;
  let revisions = 0;
  let tombstones = 0;
  // Keys are copied into strings; nothing keeps a view into a leaf, so read buffers are recycled.
  for await (const batch of reader.leafBatches(ref, { reuseBuffers: true, ...(opts.signal ? { signal: opts.signal } : {}) })) {
    for (const leaf of batch) {
      const buf = leaf.buf;
      for (let i = 0, n = leaf.count; i < n; i++) {
        if (leaf.isBucket(i)) continue;
        const ks = leaf.keyStart(i);
        const ke = leaf.keyEnd(i);
        if (ke - ks !== 17 && ke - ks !== 18) throw new IntegrityError(`${reader.path} is corrupt: an entry of bucket "key" has a ${ke - ks}-byte revision key (want 17 or 18).`);
        revisions++;
        revision = revKeyMain(buf, ks);
        try {
          decodeKeyValue(buf, ke, leaf.valueEnd(i), kv);
        } catch (err) {
          if (!(err instanceof ProtoError)) throw err;
          throw new IntegrityError(`${reader.path} is corrupt: the value at revision ${revision} is not an etcd KeyValue (${err.message}).`);
        }
        const tomb = isTombstoneKey(buf, ks, ke);
        if (tomb) tombstones++;
        if (prefix && (kv.keyEnd - kv.keyStart < prefix.length || buf.compare(prefix, 0, prefix.length, kv.keyStart, kv.keyStart + prefix.length) !== 0)) continue;
        const key = buf.toString('latin1', kv.keyStart, kv.keyEnd);
        if (tomb) live.delete(key);
        else live.put(key, kv.createRevision, kv.modRevision, kv.version, kv.valueEnd - kv.valueStart, kv.lease, valueEncoding(buf, kv.valueStart, kv.valueEnd));
      }
    }
  }
  const compacted = await reader.get(['meta'], 'finishedCompactRev');
  const rev = compacted ? parseRevKey(compacted) : null;
  return { live, revision, compactRevision: rev ? rev.main : null, revisions, tombstones };
}

/**
 * Second pass: the live entries with their values, in revision order (not key order). Memory is
 * one leaf batch at a time, plus the live set.
 */
export async function* liveEntries(reader: BoltReader, live: LiveKeys, opts: { signal?: AbortSignal } = {}): AsyncGenerator<{ key: Buffer; value: Buffer; modRevision: number }> {
  const ref = await keyBucket(reader);
  const kv = emptyKeyValue();
  for await (const leaf of reader.leaves(ref, opts)) {
    const buf = leaf.buf;
    for (let i = 0, n = leaf.count; i < n; i++) {
      const ks = leaf.keyStart(i);
      const ke = leaf.keyEnd(i);
      if (leaf.isBucket(i) || isTombstoneKey(buf, ks, ke)) continue;
      decodeKeyValue(buf, ke, leaf.valueEnd(i), kv);
      const key = buf.toString('latin1', kv.keyStart, kv.keyEnd);
      if (kv.modRevision === 0 || live.modRevisionOf(key) !== kv.modRevision) continue;
      yield { key: buf.subarray(kv.keyStart, kv.keyEnd), value: buf.subarray(kv.valueStart, kv.valueEnd), modRevision: kv.modRevision };
    }
  }
}

// ---------------------------------------------------------------------------
// Grouping
// ---------------------------------------------------------------------------

/**
 * The key cut after its first `depth` path segments (a leading '/' does not start a segment):
 * groupOf('/registry/pods/ns/a', 2) = '/registry/pods/'; a key with no more segments is its own group.
 */
export function groupOf(key: string, depth: number): string {
  let pos = key.charCodeAt(0) === 0x2f ? 1 : 0;
  for (let s = 0; s < depth; s++) {
    const j = key.indexOf('/', pos);
    if (j < 0) return key;
    pos = j + 1;
  }
  return key.slice(0, pos);
}

/** Default grouping depth: 2 segments, or one below the given prefix. */
export function defaultDepth(prefix?: string): number {
  if (!prefix) return 2;
  return prefix.split('/').filter(Boolean).length + 1;
}

// ---------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------

/** Storage names that differ from the resource name. */
const RESOURCE_ALIASES: Record<string, string> = {
  minions: 'nodes',
  controllers: 'replicationcontrollers',
  ingress: 'ingresses',
  podsecuritypolicy: 'podsecuritypolicies',
};

/** Cluster-scoped resources as their storage path (<resource> or <group>/<resource>). */
export const CLUSTER_SCOPED = new Set([
  'namespaces', 'minions', 'persistentvolumes', 'clusterroles', 'clusterrolebindings', 'priorityclasses',
  'storageclasses', 'csinodes', 'csidrivers', 'volumeattachments', 'mutatingwebhookconfigurations',
  'validatingwebhookconfigurations', 'validatingadmissionpolicies', 'validatingadmissionpolicybindings',
  'mutatingadmissionpolicies', 'mutatingadmissionpolicybindings', 'certificatesigningrequests', 'ingressclasses',
  'runtimeclasses', 'podsecuritypolicy', 'flowschemas', 'prioritylevelconfigurations', 'clustertrustbundles',
  'deviceclasses', 'resourceslices', 'servicecidrs', 'ipaddresses', 'volumeattributesclasses', 'storageversions',
  'storageversionmigrations', 'ranges', 'masterleases', 'componentstatuses',
  'apiregistration.k8s.io/apiservices', 'apiextensions.k8s.io/customresourcedefinitions',
]);

export interface RegistryKey {
  /** Resource name (plural), aliases resolved: minions -> nodes, services/endpoints -> endpoints. */
  resource: string;
  /** API group for /registry/<group.with.dots>/<resource>/... keys, else ''. */
  group: string;
  /** null for cluster-scoped objects. */
  namespace: string | null;
  name: string;
}

/** Classifies a Kubernetes storage key under registryPrefix; null when it is not an object key. */
export function classifyRegistryKey(key: string, registryPrefix = '/registry/'): RegistryKey | null {
  const root = registryPrefix.endsWith('/') ? registryPrefix : `${registryPrefix}/`;
  if (!key.startsWith(root)) return null;
  const parts = key.slice(root.length).split('/');
  let group = '';
  let resource = parts.shift() ?? '';
  if (resource.includes('.')) {
    group = resource;
    resource = parts.shift() ?? '';
  } else if (resource === 'services' && (parts[0] === 'specs' || parts[0] === 'endpoints')) {
    resource = parts.shift() === 'specs' ? 'services' : 'endpoints';
  }
  if (!resource || parts.length === 0 || parts.some((p) => p === '')) return null;
  const clusterScoped = CLUSTER_SCOPED.has(group ? `${group}/${resource}` : resource) || parts.length === 1;
  const display = group ? resource : (RESOURCE_ALIASES[resource] ?? resource);
  if (clusterScoped) return { resource: display, group, namespace: null, name: parts.join('/') };
  return { resource: display, group, namespace: parts[0] as string, name: parts.slice(1).join('/') };
}

export interface ResourceStat {
  /** resource, or resource.group for grouped keys (e.g. customresourcedefinitions.apiextensions.k8s.io). */
  resource: string;
  namespaced: boolean;
  objects: number;
  bytes: number;
  namespaces: number;
}

export interface KubernetesStats {
  registryPrefix: string;
  objects: number;
  bytes: number;
  resources: ResourceStat[];
  namespaces: { namespace: string; objects: number; bytes: number }[];
  /** Objects per (resource, namespace); cluster-scoped ones under namespace ''. */
  objectsByNamespace: { resource: string; namespace: string; objects: number }[];
  encodings: Record<(typeof ENCODING_NAMES)[number], number>;
  /** Keys under the prefix that are not object keys. */
  otherKeys: number;
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

export interface InspectOptions {
  prefix?: string | undefined;
  depth?: number | undefined;
  kubernetes?: boolean | undefined;
  registryPrefix?: string | undefined;
  signal?: AbortSignal | undefined;
}

export interface PrefixStat {
  prefix: string;
  keys: number;
  bytes: number;
}

export interface InspectReport {
  revision: number;
  compactRevision: number | null;
  /** Entries in bucket `key` (every stored revision, tombstones included). */
  revisions: number;
  tombstones: number;
  prefix: string | null;
  depth: number;
  liveKeys: number;
  keyBytes: number;
  valueBytes: number;
  /** keyBytes + valueBytes. */
  bytes: number;
  prefixes: PrefixStat[];
  kubernetes?: KubernetesStats;
}

export function summarize(scan: LiveScan, opts: InspectOptions = {}): InspectReport {
  const depth = opts.depth ?? defaultDepth(opts.prefix);
  const groups = new Map<string, PrefixStat>();
  let keyBytes = 0;
  let valueBytes = 0;
  const k8s = opts.kubernetes ? new K8sTally(opts.registryPrefix ?? '/registry/') : null;
  scan.live.forEachKey((key, valueSize, encoding) => {
    keyBytes += key.length;
    valueBytes += valueSize;
    const g = groupOf(key, depth);
    let stat = groups.get(g);
    if (!stat) groups.set(g, (stat = { prefix: g, keys: 0, bytes: 0 }));
    stat.keys++;
    stat.bytes += key.length + valueSize;
    k8s?.add(key, valueSize, encoding);
  });
  const prefixes = [...groups.values()].sort((a, b) => (a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0)).map((p) => ({ ...p, prefix: keyText(p.prefix) }));
  return {
    revision: scan.revision,
    compactRevision: scan.compactRevision,
    revisions: scan.revisions,
    tombstones: scan.tombstones,
    prefix: opts.prefix ?? null,
    depth,
    liveKeys: scan.live.count,
    keyBytes,
    valueBytes,
    bytes: keyBytes + valueBytes,
    prefixes,
    ...(k8s ? { kubernetes: k8s.result() } : {}),
  };
}

/** Objects under one key prefix (the key up to its last '/'): one resource in one namespace. */
interface PrefixTally {
  prefix: string;
  objects: number;
  bytes: number;
  encodings: [number, number, number, number];
}

/**
 * Counts Kubernetes objects. Keys are tallied per prefix (the key without its name), which is
 * one Map lookup per key; classifying into resource and namespace happens once per prefix at
 * the end, since it depends on the name only in the cases sent to classifyRegistryKey directly.
 */
class K8sTally {
  private readonly root: string;
  private readonly prefixes = new Map<string, PrefixTally>();
  /** Keys whose classification depends on their last segment (see add). */
  private readonly whole: { key: string; size: number; encoding: ValueEncoding }[] = [];

  constructor(private readonly registryPrefix: string) {
    // Keys are latin1 strings of their bytes; so is the root they are compared with.
    const root = registryPrefix.endsWith('/') ? registryPrefix : `${registryPrefix}/`;
    this.root = Buffer.from(root, 'utf8').toString('latin1');
  }

  add(key: string, valueSize: number, encoding: ValueEncoding): void {
    if (!key.startsWith(this.root)) return;
    const slash = key.lastIndexOf('/');
    const name = key.slice(slash + 1);
    // The name decides the class when it is empty (not an object key), when it is the first
    // segment (/registry/<x>), or when it is the "specs"/"endpoints" of /registry/services/...
    if (slash < this.root.length || name === '' || name === 'specs' || name === 'endpoints') {
      this.whole.push({ key, size: key.length + valueSize, encoding });
      return;
    }
    const prefix = key.slice(0, slash + 1);
    let t = this.prefixes.get(prefix);
    if (!t) this.prefixes.set(prefix, (t = { prefix, objects: 0, bytes: 0, encodings: [0, 0, 0, 0] }));
    t.objects++;
    t.bytes += key.length + valueSize;
    t.encodings[encoding]++;
  }

  result(): KubernetesStats {
    let objects = 0;
    let bytes = 0;
    let other = 0;
    const resources = new Map<string, ResourceStat & { nsSet: Set<string> }>();
    const namespaces = new Map<string, { namespace: string; objects: number; bytes: number }>();
    const pairs = new Map<string, { resource: string; namespace: string; objects: number }>();
    const encodings = { other: 0, json: 0, protobuf: 0, encrypted: 0 };
    const tally = (c: RegistryKey | null, n: number, size: number, enc: readonly number[]) => {
      if (!c) {
        other += n;
        return;
      }
      objects += n;
      bytes += size;
      for (let e = 0; e < 4; e++) encodings[ENCODING_NAMES[e] as (typeof ENCODING_NAMES)[number]] += enc[e] as number;
      const name = c.group ? `${c.resource}.${c.group}` : c.resource;
      let r = resources.get(name);
      if (!r) resources.set(name, (r = { resource: name, namespaced: c.namespace !== null, objects: 0, bytes: 0, namespaces: 0, nsSet: new Set<string>() }));
      r.objects += n;
      r.bytes += size;
      if (c.namespace !== null) {
        r.nsSet.add(c.namespace);
        let ns = namespaces.get(c.namespace);
        if (!ns) namespaces.set(c.namespace, (ns = { namespace: c.namespace, objects: 0, bytes: 0 }));
        ns.objects += n;
        ns.bytes += size;
      }
      const pairKey = `${name}\x00${c.namespace ?? ''}`;
      let p = pairs.get(pairKey);
      if (!p) pairs.set(pairKey, (p = { resource: name, namespace: c.namespace ?? '', objects: 0 }));
      p.objects += n;
    };
    // A stand-in name: past the cases add() keeps whole, the class does not depend on it.
    for (const t of this.prefixes.values()) tally(classifyRegistryKey(keyText(t.prefix) + 'x', this.registryPrefix), t.objects, t.bytes, t.encodings);
    for (const w of this.whole) {
      const enc = [0, 0, 0, 0];
      enc[w.encoding] = 1;
      tally(classifyRegistryKey(keyText(w.key), this.registryPrefix), 1, w.size, enc);
    }
    const byName = <T>(f: (x: T) => string) => (a: T, b: T) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0);
    return {
      registryPrefix: this.registryPrefix,
      objects,
      bytes,
      resources: [...resources.values()].map(({ nsSet, ...r }) => ({ ...r, namespaces: nsSet.size })).sort(byName((r) => r.resource)),
      namespaces: [...namespaces.values()].sort(byName((n) => n.namespace)),
      objectsByNamespace: [...pairs.values()].sort(byName((p) => `${p.resource}\x00${p.namespace}`)),
      encodings,
      otherKeys: other,
    };
  }
}

/** Opens the snapshot, scans it once, and returns the report and the live set (for --keys). */
export async function inspectSnapshot(path: string, opts: InspectOptions = {}): Promise<{ report: InspectReport; live: LiveKeys }> {
  const reader = await BoltReader.open(path);
  try {
    const scan = await scanLiveKeys(reader, opts);
    return { report: summarize(scan, opts), live: scan.live };
  } finally {
    await reader.close();
  }
}
