#!/usr/bin/env node
// The AWS SDK warns on every run that its 2027 releases need Node 22; lifeboat pins a release
// that supports Node 20, so the warning would only be noise on stderr.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const { execute } = await import('@oclif/core');
await execute({ dir: import.meta.url });
