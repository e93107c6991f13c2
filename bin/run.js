#!/usr/bin/env node
import v8 from 'node:v8';

// V8 lets its young generation grow to 2 x 16 MiB in a process that allocates as fast as a
// streaming backup does. Kept at its initial size, it is collected more often, so dead Buffers
// are freed sooner: peak RSS is 10-30 MB lower (etcd snapshot, status and inspect of a 1.1 GB
// db). Only the etcd commands stream a whole db through Buffers; the others (resource dumps,
// drains, upgrades) hold many small live objects, for which a small young generation means more
// copying, so they keep V8's default. The flag is read each time the young generation would
// grow, so it takes effect when set here, before the CLI loads.
const [topic, command] = process.argv.slice(2);
if (/^etcd($|:)/.test(topic ?? '')) v8.setFlagsFromString('--semi-space-growth-factor=1');

// After each full collection V8 sets the next one's threshold at a multiple of the live heap,
// the multiple falling from 4 towards 1.1 when it sees little old-generation allocation. A
// snapshot allocates steadily but keeps little: in about half the runs the multiple fell to 1.1
// (a 22 MB threshold over a 13 MB heap) and V8 then ran up to a full collection every 60 ms,
// 28-91 per 1.1 GB snapshot (against 2-9), for up to 1.5 s more CPU. Held at 4 (V8's ceiling),
// each of 19 traced snapshots ran 1-2. Only for `etcd snapshot`, whose live heap stays small
// whatever the db size; `etcd inspect` keeps every key in memory and would grow fourfold before
// collecting.
if ((topic === 'etcd' && command === 'snapshot') || topic === 'etcd:snapshot') v8.setFlagsFromString('--heap-growing-percent=300');

// The AWS SDK warns on every run that its 2027 releases need Node 22; lifeboat pins a release
// that supports Node 20, so the warning would only be noise on stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
