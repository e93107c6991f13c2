/**
 * The container image without Docker: the Dockerfile's stages are replayed on the filesystem
 * (test/helpers/dockerfile.ts) — `npm ci`, build and prune in the build stage, then only what the
 * runtime stage copies — and the CLI is run from the runtime stage's directory the way the image's
 * ENTRYPOINT runs it, with the image's ENV, its USER when this test runs as root, and nothing of
 * the repository reachable. What this cannot show is the base images: node, compilers and libc
 * are this machine's.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import type { BackupManifest } from '../../src/store/manifest.js';
import { replayDockerfile, type StageResult } from '../helpers/dockerfile.js';
import { fillEtcd } from '../helpers/etcd.js';
import { genTlsCerts, startEtcd } from '../rig/components.js';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const IS_ROOT = process.getuid?.() === 0;

/** The environment of the build stage's RUN commands: this one, less what would leak the test's own setup. */
function buildEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(npm_|NODE_ENV$|NODE_PATH$|NODE_OPTIONS$|VITEST)/i.test(k)) continue;
    env[k] = v;
  }
  // `npm test` puts the repository's node_modules/.bin on PATH; the build stage has no such thing.
  env['PATH'] = (process.env['PATH'] ?? '')
    .split(':')
    .filter((p) => !p.includes('/node_modules/.bin'))
    .join(':');
  // Warm machines install from the npm cache; a clean one fetches what it lacks.
  env['npm_config_prefer_offline'] = 'true';
  env['npm_config_audit'] = 'false';
  env['npm_config_fund'] = 'false';
  env['npm_config_update_notifier'] = 'false';
  // node-gyp compiles zstd-napi's addon on every core (the build is the same, only sooner).
  env['JOBS'] = 'max';
  return env;
}

interface Installed {
  /** Lockfile-style keys: node_modules/a, node_modules/a/node_modules/@s/b. */
  keys: string[];
  bytes: number;
}

/** Every package under a node_modules tree and the bytes of all its files. */
async function installedPackages(root: string): Promise<Installed> {
  const keys: string[] = [];
  let bytes = 0;
  const sizeOf = async (path: string): Promise<void> => {
    const st = await lstat(path);
    bytes += st.size;
    if (st.isDirectory()) for (const e of await readdir(path)) await sizeOf(join(path, e));
  };
  await sizeOf(join(root, 'node_modules'));
  const walk = async (nm: string, prefix: string): Promise<void> => {
    for (const e of await readdir(join(root, nm), { withFileTypes: true })) {
      if (e.name.startsWith('.') || !e.isDirectory()) continue;
      const names = e.name.startsWith('@') ? (await readdir(join(root, nm, e.name))).map((s) => `${e.name}/${s}`) : [e.name];
      for (const name of names) {
        const key = `${prefix}${name}`;
        keys.push(key);
        if (existsSync(join(root, key, 'node_modules'))) await walk(`${key}/node_modules`, `${key}/node_modules/`);
      }
    }
  };
  await walk('node_modules', 'node_modules/');
  return { keys: keys.sort(), bytes };
}

interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('the container image, replayed from the Dockerfile without Docker', () => {
  let into: string;
  let image: StageResult;
  /** The image's WORKDIR (/app) on this machine. */
  let app: string;
  let home: string;
  let scratch: string;
  let identityFile: string;
  let recipient: string;
  let uid: number | undefined;
  let gid: number | undefined;

  /** Runs the image: ENTRYPOINT + (args, or CMD when none), in WORKDIR, with only the image's environment. */
  function runImage(args: string[], opts: { env?: Record<string, string>; runAsUser?: number; runAsGroup?: number } = {}): Promise<RunResult> {
    const [exe, ...entryArgs] = image.entrypoint ?? [];
    if (exe !== 'node') throw new Error(`the replay runs a node ENTRYPOINT, not ${String(exe)}`);
    const argv = [...entryArgs.map((a) => (a.startsWith('/') ? join(image.root, a) : a)), ...(args.length > 0 ? args : (image.cmd ?? []))];
    const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: home, TMPDIR: scratch, ...image.env, ...opts.env };
    // A pod's securityContext overrides the image's USER; either only applies when we are root.
    const user = uid === undefined ? {} : { uid: opts.runAsUser ?? uid, gid: opts.runAsGroup ?? opts.runAsUser ?? gid };
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, argv, { cwd: join(image.root, image.workdir), env, stdio: ['ignore', 'pipe', 'pipe'], ...user });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  }

  beforeAll(async () => {
    const t0 = Date.now();
    into = await mkdtemp(join(tmpdir(), 'lifeboat-image-'));
    const stages = await replayDockerfile({
      context: REPO,
      dockerfile: join(REPO, 'Dockerfile'),
      into,
      runEnv: buildEnv(),
      log: (line) => console.log(`image-layout: ${line}`),
    });
    image = stages.at(-1)!;
    app = join(image.root, image.workdir);
    // Nothing may point back into the build stage: it is gone before the image runs.
    for (const s of stages.slice(0, -1)) await rm(s.root, { recursive: true, force: true });
    console.log(`image-layout: Dockerfile replayed in ${((Date.now() - t0) / 1000).toFixed(1)}s`);

    // The image's USER, when this machine lets us be someone else (CI runners are not root).
    const user = /^(\d+)(?::(\d+))?$/.exec(image.user ?? '');
    if (IS_ROOT && user) {
      uid = Number(user[1]);
      gid = Number(user[2] ?? user[1]);
    }
    await chmod(into, 0o755);
    home = join(image.root, 'home', 'user');
    scratch = join(into, 'tmp');
    await mkdir(home, { recursive: true });
    await mkdir(scratch);
    await chmod(scratch, 0o1777);
    if (uid !== undefined) await chown(home, uid, gid!);

    identityFile = join(into, 'age.key');
    const keygen = await run('age-keygen', ['-o', identityFile]);
    recipient = /age1[0-9a-z]+/.exec(keygen.stderr + keygen.stdout)![0];
    if (uid !== undefined) await chown(identityFile, uid, gid!);
  }, 15 * 60_000);

  afterAll(async () => {
    if (into && process.env['LIFEBOAT_RIG_KEEP'] !== '1') await rm(into, { recursive: true, force: true });
  });

  it('the runtime stage holds the built CLI and the production dependencies, and no devDependency', async () => {
    expect((await readdir(app)).sort()).toEqual(['bin', 'dist', 'node_modules', 'oclif.manifest.json', 'package.json']);
    expect(existsSync(join(app, 'dist', 'commands', 'etcd', 'snapshot.js'))).toBe(true);
    const pkg = JSON.parse(await readFile(join(app, 'package.json'), 'utf8')) as { version: string; devDependencies: Record<string, string> };
    const lock = JSON.parse(await readFile(join(REPO, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean; os?: string[]; cpu?: string[] }>;
    };
    const installed = await installedPackages(app);

    // Exactly the lockfile's production tree: nothing only dev needs, nothing production needs missing.
    const entries = Object.entries(lock.packages).filter(([k]) => k.startsWith('node_modules/'));
    const dev = entries.filter(([, e]) => e.dev).map(([k]) => k);
    const required = entries.filter(([, e]) => !e.dev && !e.optional && !e.devOptional).map(([k]) => k);
    expect(installed.keys.filter((k) => dev.includes(k))).toEqual([]);
    expect(required.filter((k) => !installed.keys.includes(k))).toEqual([]);
    expect(installed.keys.filter((k) => !(k in lock.packages))).toEqual([]);
    for (const name of ['vitest', 'typescript', 'eslint', 'typescript-eslint', ...Object.keys(pkg.devDependencies)]) {
      if (lock.packages[`node_modules/${name}`]?.dev) expect(existsSync(join(app, 'node_modules', name)), name).toBe(false);
    }
    expect(existsSync(join(app, 'node_modules', 'vitest'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'typescript'))).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'eslint'))).toBe(false);
    // zstd-napi's addon was compiled in the build stage and came along.
    expect((await readdir(join(app, 'node_modules', 'zstd-napi', 'build', 'Release'))).filter((f) => f.endsWith('.node'))).not.toEqual([]);

    console.log(`image-layout: pruned node_modules: ${(installed.bytes / 2 ** 20).toFixed(1)} MiB, ${installed.keys.length} packages (lifeboat ${pkg.version})`);
  });

  it('module resolution from the image finds its own node_modules and nothing outside it', async () => {
    const script = `
      const Module = require('node:module');
      const { createRequire } = Module;
      const from = ${JSON.stringify(join(app, 'dist', 'snapshot', 'pipeline', 'codec.js'))};
      console.log(JSON.stringify({
        lookup: [...Module._nodeModulePaths(require('node:path').dirname(from)), ...Module.globalPaths],
        zstd: createRequire(from).resolve('zstd-napi'),
        oclif: createRequire(from).resolve('@oclif/core'),
      }));`;
    const out = await new Promise<string>((resolve, reject) => {
      const env = { PATH: '/usr/bin:/bin', HOME: home, ...image.env };
      execFile(process.execPath, ['-e', script], { cwd: app, env, ...(uid === undefined ? {} : { uid, gid }) }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
    });
    const r = JSON.parse(out) as { lookup: string[]; zstd: string; oclif: string };
    // Every directory node would search for a package (ESM walks the parents' node_modules; CJS
    // also the global folders): only the image's own exists, so the repository's cannot be found.
    expect(r.lookup.filter((p) => existsSync(p))).toEqual([join(app, 'node_modules')]);
    expect(r.zstd.startsWith(join(app, 'node_modules', 'zstd-napi') + '/')).toBe(true);
    expect(r.oclif.startsWith(join(app, 'node_modules', '@oclif', 'core') + '/')).toBe(true);
    expect(app.startsWith(REPO)).toBe(false);
    expect(dirname(app).startsWith(tmpdir())).toBe(true);
  });

  it('CMD prints the help; `schedule manifest --help` works', async () => {
    const help = await runImage([]);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^VERSION\s*\n\s*lifeboat\/\d+\.\d+\.\d+/m);
    expect(help.stdout).toContain('schedule');
    const schedule = await runImage(['schedule', 'manifest', '--help']);
    expect(schedule.code, schedule.stderr).toBe(0);
    expect(schedule.stdout).toContain('--cron=<value>');
    expect(schedule.stdout).toContain('--image=<value>');
    expect(schedule.stderr).toBe('');
  });

  it('etcd snapshot into MinIO with zstd and age; backups list, verify and etcd status read it back', async () => {
    const rig = inject('rig');
    const m = rig.minio;
    const prefix = `image-layout-${randomBytes(4).toString('hex')}`;
    await fillEtcd(rig.etcd35.endpoint, { count: 300, prefix: `/${prefix}` });
    const s3 = ['--store', `s3://${m.bucket}/${prefix}`, '--s3-endpoint', m.endpoint, '--s3-force-path-style'];
    const env = { AWS_ACCESS_KEY_ID: m.accessKey, AWS_SECRET_ACCESS_KEY: m.secretKey, AWS_REGION: m.region };

    const snap = await runImage(['etcd', 'snapshot', '--endpoints', rig.etcd35.endpoint, ...s3, '--compress', 'zstd', '--encrypt-to', recipient, '-o', 'json'], { env });
    expect(snap.code, snap.stderr).toBe(0);
    const manifest = JSON.parse(snap.stdout) as BackupManifest;
    expect(manifest.tool.version).toBe(JSON.parse(await readFile(join(app, 'package.json'), 'utf8')).version);
    expect(manifest.objects).toHaveLength(1);
    expect(manifest.objects[0]).toMatchObject({ name: 'snapshot.db.zst.age', codec: 'zstd', encryption: { scheme: 'age' } });
    const details = manifest.details as { revision: number };

    const list = await runImage(['backups', 'list', ...s3, '-o', 'json'], { env });
    expect(list.code, list.stderr).toBe(0);
    expect((JSON.parse(list.stdout) as { backups: { id: string; ok: boolean }[] }).backups).toEqual([expect.objectContaining({ id: manifest.id, ok: true })]);

    const verify = await runImage(['backups', 'verify', manifest.id, ...s3, '--identity-file', identityFile], { env });
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain(`Backup ${manifest.id} verified.`);

    const status = await runImage(['etcd', 'status', manifest.id, ...s3, '--identity-file', identityFile, '-o', 'json'], { env });
    expect(status.code, status.stderr).toBe(0);
    const st = JSON.parse(status.stdout) as { revision: number; totalKey: number };
    expect(st.revision).toBe(details.revision);
    expect(st.totalKey).toBeGreaterThanOrEqual(300);

    const del = await runImage(['backups', 'delete', manifest.id, ...s3, '--yes'], { env });
    expect(del.code, del.stderr).toBe(0);
  });

  it('the etcd CronJob `schedule manifest` prints runs from the image as its pods would: backup, then prune', async () => {
    const m = inject('rig').minio;
    const prefix = `image-cron-${randomBytes(4).toString('hex')}`;
    const store = `s3://${m.bucket}/${prefix}`;
    const certDir = join(into, 'etcd-pki');
    await mkdir(certDir);
    const tls = await genTlsCerts(certDir);
    const etcd = await startEtcd({ version: '3.5', tls: { ...tls, clientCertAuth: true } });
    try {
      // A few writes: verify compares the snapshot's revision with the one recorded when it was taken.
      for (let i = 0; i < 3; i++) await etcd.ctl(['put', `/registry/configmaps/default/cm-${i}`, `value ${i}`]);
      const printed = await runImage([
        'schedule', 'manifest', '--offline', '--kind', 'etcd', '--cron', '0 3 * * *',
        '--store', store, '--s3-endpoint', m.endpoint, '--s3-force-path-style', '--store-secret', 'lifeboat-s3', '--encrypt-to', recipient, '--keep-last', '1',
        '--etcd-endpoints', etcd.endpoint, '--etcd-cert-dir', certDir, '--etcd-cacert', 'ca.crt', '--etcd-cert', 'client.crt', '--etcd-key', 'client.key',
      ]);
      expect(printed.code, printed.stderr).toBe(0);
      const docs = parseAllDocuments(printed.stdout).map((d) => d.toJS() as { kind: string; spec?: unknown });
      const cron = docs.find((d) => d.kind === 'CronJob') as unknown as CronJob;
      const pod = cron.spec.jobTemplate.spec.template.spec;
      const version = (JSON.parse(await readFile(join(app, 'package.json'), 'utf8')) as { version: string }).version;

      // The pod's volumes on this machine: hostPath as it is, emptyDir a fresh directory.
      const mounts: [string, string][] = [];
      for (const v of pod.volumes) {
        const container = [...pod.initContainers, ...pod.containers][0]!;
        const mount = container.volumeMounts.find((vm) => vm.name === v.name)!;
        let host = v.hostPath?.path;
        if (v.emptyDir) {
          host = await mkdtemp(join(into, `${v.name}-`));
          await chmod(host, 0o1777);
        }
        mounts.push([mount.mountPath, host!]);
      }
      const mapPath = (s: string) => {
        for (const [mountPath, host] of mounts) if (s === mountPath || s.startsWith(`${mountPath}/`)) return host + s.slice(mountPath.length);
        return s;
      };
      // The Secret --store-secret names holds the store's credentials.
      const secret = { AWS_ACCESS_KEY_ID: m.accessKey, AWS_SECRET_ACCESS_KEY: m.secretKey, AWS_REGION: m.region };
      const runContainer = (c: Container) => {
        expect(c.image).toBe(`lifeboat:${version}`);
        expect(c.command).toBeUndefined(); // the image's ENTRYPOINT runs the args
        const env = Object.fromEntries(c.env.map((e) => [e.name, mapPath(e.value)]));
        return runImage(c.args.map(mapPath), { env: { ...env, ...secret }, runAsUser: pod.securityContext.runAsUser, runAsGroup: pod.securityContext.runAsGroup });
      };
      /** One Job: the init container (the backup), then the container (the prune). */
      const job = async () => {
        const backup = await runContainer(pod.initContainers[0]!);
        expect(backup.code, backup.stderr).toBe(0);
        const prune = await runContainer(pod.containers[0]!);
        expect(prune.code, prune.stderr).toBe(0);
      };

      const s3 = ['--store', store, '--s3-endpoint', m.endpoint, '--s3-force-path-style'];
      const listed = async () => {
        const r = await runImage(['backups', 'list', ...s3, '-o', 'json'], { env: secret });
        expect(r.code, r.stderr).toBe(0);
        return (JSON.parse(r.stdout) as { backups: { id: string; labels: Record<string, string> }[] }).backups;
      };
      await job();
      const first = await listed();
      expect(first).toEqual([expect.objectContaining({ labels: { schedule: 'lifeboat-etcd-snapshot' } })]);
      await job();
      const second = await listed();
      expect(second).toHaveLength(1); // --keep-last 1: the second Job's prune removed the first backup
      expect(second[0]!.id).not.toBe(first[0]!.id);
      const verify = await runImage(['backups', 'verify', second[0]!.id, ...s3, '--identity-file', identityFile], { env: secret });
      expect(verify.code, verify.stderr).toBe(0);
      await runImage(['backups', 'delete', second[0]!.id, ...s3, '--yes'], { env: secret });
    } finally {
      await etcd.stop();
    }
  });
});

interface Container {
  image: string;
  command?: string[];
  args: string[];
  env: { name: string; value: string }[];
  volumeMounts: { name: string; mountPath: string }[];
}

interface CronJob {
  spec: {
    jobTemplate: {
      spec: {
        template: {
          spec: {
            securityContext: { runAsUser?: number; runAsGroup?: number };
            initContainers: Container[];
            containers: Container[];
            volumes: { name: string; hostPath?: { path: string }; emptyDir?: unknown }[];
          };
        };
      };
    };
  };
}
