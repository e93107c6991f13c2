#!/usr/bin/env node
import v8 from 'node:v8';

// V8 lets its young generation grow to 2 x 16 MiB in a process that allocates as fast as a
// streaming backup does. Kept at its initial size, it is collected more often, so dead Buffers
// are freed sooner: peak RSS is 15-30 MB lower for the same CPU time (etcd snapshot, status and
// inspect of a 1.1 GB db). The flag is read each time the young generation would grow, so it
// takes effect when set here, before the CLI loads.
v8.setFlagsFromString('--semi-space-growth-factor=1');

// The AWS SDK warns on every run that its 2027 releases need Node 22; lifeboat pins a release
// that supports Node 20, so the warning would only be noise on stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
