import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));
const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

/** The CommonJS packages a fresh process has loaded after importing one built module. */
async function packagesLoadedBy(module: string): Promise<string[]> {
  const script = `
    import { createRequire } from 'node:module';
    await import(${JSON.stringify(DIST + module)});
    const names = new Set();
    for (const p of Object.keys(createRequire(import.meta.url).cache)) {
      const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)/.exec(p);
      if (m) names.add(m[1]);
    }
    console.log(JSON.stringify([...names]));`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
  return JSON.parse(stdout) as string[];
}

describe('start-up cost of commands', () => {
  // Each of these costs tens of milliseconds and megabytes to load; a command pays only for what it uses.
  const lazy = ['etcd3', '@grpc/grpc-js', '@grpc/proto-loader', 'zstd-napi', 'yaml', 'cli-progress', '@aws-sdk/client-s3'];

  it.each(['commands/etcd/snapshot.js', 'commands/etcd/status.js', 'commands/backups/list.js'])('importing %s loads no etcd client, zstd, YAML, progress bar or S3 SDK', async (module) => {
    const loaded = await packagesLoadedBy(module);
    expect(loaded).toContain('@oclif/core');
    expect(loaded.filter((p) => lazy.includes(p))).toEqual([]);
  });

  /** The young generation's size after the command, once ~200 MB of short-lived objects were allocated. */
  async function youngGenerationAfter(args: string[]): Promise<number> {
    const probe = `import v8 from 'node:v8';
    process.on('exit', () => {
      let keep = [];
      for (let i = 0; i < 2e6; i++) { keep.push({ i, s: 'x' + i, a: [i, i] }); if (keep.length > 1000) keep = []; }
      const s = v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space');
      process.stdout.write(' NEW_SPACE=' + s.space_size);
    });`;
    const { stdout } = await run(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(probe)}`, BIN, ...args]);
    const size = Number(/NEW_SPACE=(\d+)/.exec(stdout)?.[1]);
    expect(size).toBeGreaterThan(0);
    return size;
  }

  it("keeps V8's young generation from growing in the etcd commands, however fast the process allocates", async () => {
    expect(await youngGenerationAfter(['etcd', 'snapshot', '--help'])).toBeLessThanOrEqual(2 * 1024 * 1024);
  });

  it("leaves V8's default young generation to the other commands", async () => {
    expect(await youngGenerationAfter(['--version'])).toBeGreaterThan(2 * 1024 * 1024);
  });
});
