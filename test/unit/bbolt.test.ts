import { describe, expect, it } from 'vitest';
import { fnv64a, parseMeta } from '../../src/snapshot/etcd/bbolt.js';
import { classifyRegistryKey, defaultDepth, groupOf, LiveKeys, summarize, valueEncoding, ValueEncoding } from '../../src/snapshot/etcd/inspect.js';
import { decodeKeyValue, encodeKeyValue, encodeVarint, formatRevKey, parseRevKey, ProtoError, ProtoReader } from '../../src/snapshot/etcd/mvcc.js';
import { humanizeBytes } from '../../src/snapshot/etcd/status.js';

describe('FNV-64a', () => {
  it.each([
    ['', 0xcbf29ce484222325n],
    ['a', 0xaf63dc4c8601ec8cn],
    ['foobar', 0x85944171f73967e8n],
  ])('%j', (text, want) => expect(fnv64a(Buffer.from(text))).toBe(want));
});

function metaBody(fields: { magic?: number; version?: number; pageSize?: number; root?: number; freelist?: bigint; hwm?: number; txid?: number }): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32LE(fields.magic ?? 0xed0cdaed, 0);
  b.writeUInt32LE(fields.version ?? 2, 4);
  b.writeUInt32LE(fields.pageSize ?? 4096, 8);
  b.writeBigUInt64LE(BigInt(fields.root ?? 3), 16);
  b.writeBigUInt64LE(fields.freelist ?? 2n, 32);
  b.writeBigUInt64LE(BigInt(fields.hwm ?? 10), 40);
  b.writeBigUInt64LE(BigInt(fields.txid ?? 7), 48);
  b.writeBigUInt64LE(fnv64a(b, 0, 56), 56);
  return b;
}

describe('meta page', () => {
  it('parses a valid meta', () => {
    expect(parseMeta(metaBody({}), 0, 0)).toEqual({ page: 0, pageSize: 4096, flags: 0, root: 3, freelist: 2, hwm: 10, txid: 7 });
  });
  it('reads an absent freelist (NoFreelistSync) as null', () => {
    expect(parseMeta(metaBody({ freelist: 0xffffffffffffffffn }), 0, 1)).toMatchObject({ page: 1, freelist: null });
  });
  it.each([
    ['bad magic', metaBody({ magic: 0x12345678 })],
    ['unsupported version 1', metaBody({ version: 1 })],
    ['checksum mismatch', (() => { const b = metaBody({}); b[20] = (b[20] as number) ^ 1; return b; })()],
    ['too short', Buffer.alloc(10)],
  ])('rejects: %s', (why, buf) => expect(parseMeta(buf, 0, 0)).toBe(why));
});

describe('revision keys', () => {
  it.each([
    [formatRevKey(1, 0), { main: 1, sub: 0, tombstone: false }],
    [formatRevKey(123456789, 3, true), { main: 123456789, sub: 3, tombstone: true }],
    [formatRevKey(2 ** 40 + 5, 2 ** 33), { main: 2 ** 40 + 5, sub: 2 ** 33, tombstone: false }],
    [Buffer.alloc(16), null],
    [Buffer.concat([formatRevKey(1, 0), Buffer.from('x')]), null],
    [(() => { const b = formatRevKey(1, 0); b[8] = 0x2d; return b; })(), null],
  ])('%#', (buf, want) => expect(parseRevKey(buf)).toEqual(want));
});

describe('protobuf', () => {
  it.each([
    [0, [0x00]],
    [1, [0x01]],
    [127, [0x7f]],
    [128, [0x80, 0x01]],
    [300, [0xac, 0x02]],
    [2 ** 35, [0x80, 0x80, 0x80, 0x80, 0x80, 0x01]],
  ])('varint %i', (n, bytes) => {
    expect([...encodeVarint(n)]).toEqual(bytes);
    expect(new ProtoReader(Buffer.from(bytes), 0, bytes.length).varint()).toBe(n);
  });

  it('decodes a 64-bit lease id', () => {
    const id = 0x694d7e0f1a7d1c0an;
    const enc = encodeVarint(id);
    expect(new ProtoReader(enc, 0, enc.length).varintBig()).toBe(id);
  });

  it('round-trips a KeyValue and skips unknown fields', () => {
    const kv = encodeKeyValue({ key: Buffer.from('/registry/pods/a/b'), createRevision: 5, modRevision: 9, version: 3, value: Buffer.from('k8s\x00xyz', 'latin1'), lease: 0x694d7e0f1a7d1c0an });
    const withUnknown = Buffer.concat([Buffer.from([0x38, 0x05, 0x42, 0x02, 0x61, 0x62, 0x4d, 1, 2, 3, 4]), kv]); // 7 varint, 8 bytes, 9 fixed32
    for (const buf of [kv, withUnknown]) {
      const d = decodeKeyValue(buf, 0, buf.length);
      expect(buf.toString('latin1', d.keyStart, d.keyEnd)).toBe('/registry/pods/a/b');
      expect(buf.toString('latin1', d.valueStart, d.valueEnd)).toBe('k8s\x00xyz');
      expect([d.createRevision, d.modRevision, d.version, d.lease]).toEqual([5, 9, 3, 0x694d7e0f1a7d1c0an]);
    }
  });

  it('decodes a tombstone value (key only)', () => {
    const buf = encodeKeyValue({ key: Buffer.from('k') });
    expect(decodeKeyValue(buf, 0, buf.length)).toMatchObject({ modRevision: 0, valueStart: 0, valueEnd: 0, lease: 0n });
  });

  it.each([
    ['truncated varint', [0x10, 0x80]],
    ['overrun', [0x0a, 0x05, 0x61]],
    ['group wire type', [0x0b]],
  ])('rejects %s', (_why, bytes) => {
    expect(() => decodeKeyValue(Buffer.from(bytes), 0, bytes.length)).toThrow(ProtoError);
  });
});

describe('Kubernetes keys', () => {
  it.each([
    ['/registry/pods/default/web-1', { resource: 'pods', group: '', namespace: 'default', name: 'web-1' }],
    ['/registry/minions/node-a', { resource: 'nodes', group: '', namespace: null, name: 'node-a' }],
    ['/registry/controllers/ns/rc', { resource: 'replicationcontrollers', group: '', namespace: 'ns', name: 'rc' }],
    ['/registry/services/specs/default/kubernetes', { resource: 'services', group: '', namespace: 'default', name: 'kubernetes' }],
    ['/registry/services/endpoints/default/kubernetes', { resource: 'endpoints', group: '', namespace: 'default', name: 'kubernetes' }],
    ['/registry/namespaces/kube-system', { resource: 'namespaces', group: '', namespace: null, name: 'kube-system' }],
    ['/registry/clusterrolebindings/admin', { resource: 'clusterrolebindings', group: '', namespace: null, name: 'admin' }],
    ['/registry/apiextensions.k8s.io/customresourcedefinitions/foos.example.com', { resource: 'customresourcedefinitions', group: 'apiextensions.k8s.io', namespace: null, name: 'foos.example.com' }],
    ['/registry/apiregistration.k8s.io/apiservices/v1.apps', { resource: 'apiservices', group: 'apiregistration.k8s.io', namespace: null, name: 'v1.apps' }],
    ['/registry/example.com/foos/team-a/foo-1', { resource: 'foos', group: 'example.com', namespace: 'team-a', name: 'foo-1' }],
    ['/registry/example.com/clusterfoos/foo-1', { resource: 'clusterfoos', group: 'example.com', namespace: null, name: 'foo-1' }],
    ['/registry/ranges/serviceips', { resource: 'ranges', group: '', namespace: null, name: 'serviceips' }],
    ['/registry/deployments/kube-system/coredns', { resource: 'deployments', group: '', namespace: 'kube-system', name: 'coredns' }],
    ['/registry/ingress/web/main', { resource: 'ingresses', group: '', namespace: 'web', name: 'main' }],
    ['/registry/health', null],
    ['/registry/pods/', null],
    ['/other/pods/a/b', null],
  ])('%s', (key, want) => expect(classifyRegistryKey(key)).toEqual(want));

  it('counts objects per resource and namespace as classifying every key one by one would', () => {
    // Keys whose class depends on their last segment, non-ASCII names, deep names, other roots.
    const keys = [
      '/registry/services/specs', '/registry/services/endpoints', '/registry/services/specs/default/kubernetes',
      '/registry/services/endpoints/default/kubernetes', '/registry/services/specs/ns-\u00e9/a', '/registry/namespaces/default',
      '/registry/namespaces/specs', '/registry/health', '/registry/pods/', '/registry/pods/ns/', '/registry/pods/ns/web-1',
      '/registry/pods/ns/web-2', '/registry/pods/n\u00f1/web-1', '/registry/minions/node-a',
      '/registry/apiextensions.k8s.io/customresourcedefinitions/foos.example.com', '/registry/example.com/foos/team-a/foo-1',
      '/registry/example.com/foos/team-a/specs', '/registry/example.com/clusterfoos/foo-1', '/registry/example.com/foos',
      '/registry/foo/ns/a/b', '/registry/foo/ns/a/c', '/registryfoo/x', '/other/pods/a/b', 'plain',
    ];
    const live = new LiveKeys();
    keys.forEach((text, i) => live.put(Buffer.from(text).toString('latin1'), 1, i + 2, 1, 10 * (i + 1), 0n, (i % 4) as ValueEncoding));
    const k8s = summarize({ live, revision: 30, compactRevision: null, revisions: keys.length, tombstones: 0 }, { kubernetes: true }).kubernetes;
    const want = { objects: 0, bytes: 0, otherKeys: 0, pairs: new Map<string, number>(), resources: new Map<string, { objects: number; bytes: number; ns: Set<string> }>() };
    keys.forEach((text, i) => {
      if (!text.startsWith('/registry/')) return;
      const c = classifyRegistryKey(text);
      if (!c) return void want.otherKeys++;
      const size = Buffer.byteLength(text) + 10 * (i + 1);
      const name = c.group ? `${c.resource}.${c.group}` : c.resource;
      want.objects++;
      want.bytes += size;
      want.pairs.set(`${name} ${c.namespace ?? ''}`, (want.pairs.get(`${name} ${c.namespace ?? ''}`) ?? 0) + 1);
      const r = want.resources.get(name) ?? { objects: 0, bytes: 0, ns: new Set<string>() };
      r.objects++;
      r.bytes += size;
      if (c.namespace !== null) r.ns.add(c.namespace);
      want.resources.set(name, r);
    });
    expect(k8s).toBeDefined();
    expect({ objects: k8s?.objects, bytes: k8s?.bytes, otherKeys: k8s?.otherKeys }).toEqual({ objects: want.objects, bytes: want.bytes, otherKeys: want.otherKeys });
    expect(new Map(k8s?.objectsByNamespace.map((p) => [`${p.resource} ${p.namespace}`, p.objects]))).toEqual(want.pairs);
    expect(new Map(k8s?.resources.map((r) => [r.resource, { objects: r.objects, bytes: r.bytes, namespaces: r.namespaces }]))).toEqual(
      new Map([...want.resources].map(([n, r]) => [n, { objects: r.objects, bytes: r.bytes, namespaces: r.ns.size }])),
    );
    expect(k8s?.objectsByNamespace).toContainEqual({ resource: 'pods', namespace: 'n\u00f1', objects: 1 });
    expect(Object.values(k8s?.encodings ?? {}).reduce((a, b) => a + b, 0)).toBe(want.objects);
  });

  it('honours another registry prefix', () => {
    expect(classifyRegistryKey('/kubernetes.io/secrets/a/b', '/kubernetes.io')).toEqual({ resource: 'secrets', group: '', namespace: 'a', name: 'b' });
  });

  it.each([
    ['k8s\x00\x0a\x0c', ValueEncoding.Protobuf],
    ['k8s:enc:aescbc:v1:key1:xxxx', ValueEncoding.Encrypted],
    ['{"kind":"ConfigMap"}', ValueEncoding.Json],
    ['  \n{"a":1}', ValueEncoding.Json],
    ['plain', ValueEncoding.Other],
    ['', ValueEncoding.Other],
  ])('value encoding of %j', (text, want) => expect(valueEncoding(Buffer.from(text, 'latin1'))).toBe(want));
});

describe('prefix grouping', () => {
  it.each([
    ['/registry/pods/ns/a', 2, '/registry/pods/'],
    ['/registry/pods/ns/a', 3, '/registry/pods/ns/'],
    ['/registry/pods/ns/a', 1, '/registry/'],
    ['/registry/health', 2, '/registry/health'],
    ['foo', 2, 'foo'],
    ['foo/bar/baz', 2, 'foo/bar/'],
    ['/a/b/', 2, '/a/b/'],
  ])('%s at depth %i', (key, depth, want) => expect(groupOf(key, depth)).toBe(want));

  it.each([
    [undefined, 2],
    ['/registry/', 2],
    ['/registry/pods/', 3],
    ['/registry/pods', 3],
  ])('default depth for prefix %j', (prefix, want) => expect(defaultDepth(prefix)).toBe(want));
});

describe('live key set', () => {
  it('keeps the latest state, forgets deletes, reuses slots, sorts by bytes', () => {
    const live = new LiveKeys();
    live.put('b', 2, 2, 1, 10, 0n, ValueEncoding.Json);
    live.put('a', 3, 3, 1, 5, 0n, ValueEncoding.Other);
    live.put('b', 2, 4, 2, 12, 7n, ValueEncoding.Protobuf);
    live.delete('a');
    live.put('\xff', 6, 6, 1, 1, 0n, ValueEncoding.Other);
    live.put('c', 7, 7, 1, 1, 0n, ValueEncoding.Other);
    expect(live.count).toBe(3);
    expect(live.get('b')).toEqual({ key: 'b', createRevision: 2, modRevision: 4, version: 2, valueSize: 12, lease: 7n, encoding: ValueEncoding.Protobuf });
    expect(live.get('a')).toBeUndefined();
    expect([...live.sorted()].map((k) => k.key)).toEqual(['b', 'c', '\xff']);
  });
});

describe('humanize (etcdctl table sizes)', () => {
  it.each([
    [0, '0 B'],
    [9, '9 B'],
    [999, '999 B'],
    [1000, '1.0 kB'],
    [24576, '25 kB'],
    [1_500_000, '1.5 MB'],
    [924_442_624, '924 MB'],
    [2_147_483_648, '2.1 GB'],
  ])('%i', (n, want) => expect(humanizeBytes(n)).toBe(want));
});
