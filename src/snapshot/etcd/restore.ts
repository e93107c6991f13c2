import { execFile } from 'node:child_process';
import { access, mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { basename, delimiter, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { LifeboatError, NotFoundError, UnsafeTargetError, UsageError } from '../../cli/errors.js';

const run = promisify(execFile);

export const DEFAULT_BUMP = 1_000_000_000;

export interface PhysicalRestoreOptions {
  snapshotPath: string;
  dataDir: string;
  walDir?: string | undefined;
  name?: string | undefined;
  initialCluster?: string | undefined;
  initialClusterToken?: string | undefined;
  initialAdvertisePeerUrls?: string | undefined;
  /** Revision bump (0 = none). Default for Kubernetes: 1e9, with --mark-compacted. */
  bumpRevision: number;
  skipHashCheck: boolean;
  /** etcdutl or etcdctl to use; found on PATH when not given. */
  tool?: string | undefined;
}

export interface RestoreTool {
  path: string;
  kind: 'etcdutl' | 'etcdctl';
  version: string;
  supportsBump: boolean;
}

export interface PhysicalRestoreResult {
  dataDir: string;
  walDir?: string;
  tool: RestoreTool;
  bumpRevision: number;
  name: string;
  warnings: string[];
  nextSteps: string[];
}

/** A data dir that exists and is not empty is never touched. */
export async function ensureEmptyTarget(dir: string, what: string): Promise<void> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) throw new UnsafeTargetError(`${what} ${dir} exists and is not a directory; refusing to touch it.`);
  const entries = await readdir(dir);
  if (entries.length > 0) {
    throw new UnsafeTargetError(`${what} ${dir} exists and is not empty; refusing to overwrite it.`, {
      hint: 'Restore into a new directory and point etcd at it (keep the old one until the cluster is healthy).',
    });
  }
}

async function which(name: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(dir, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

/** etcdutl (3.5+) when available, else etcdctl (3.4, ETCDCTL_API=3); a given path is used as is. */
export async function findRestoreTool(given?: string): Promise<RestoreTool> {
  const path = given ?? (await which('etcdutl')) ?? (await which('etcdctl'));
  if (!path) {
    throw new NotFoundError('Neither etcdutl nor etcdctl was found on PATH.', {
      hint: 'Install etcd (etcdutl 3.5+, or etcdctl 3.4) or give its path with --etcdutl.',
    });
  }
  const env = { ...process.env, ETCDCTL_API: '3' };
  let versionOut: string;
  let help: string;
  try {
    versionOut = (await run(path, ['version'], { env })).stdout;
    help = (await run(path, ['snapshot', 'restore', '--help'], { env })).stdout;
  } catch (err) {
    throw new LifeboatError(`${path} does not run: ${(err as Error).message.split('\n')[0]}.`, { cause: err });
  }
  const kind = /etcdutl/.test(versionOut) || basename(path).includes('etcdutl') ? 'etcdutl' : 'etcdctl';
  const version = /version:\s*([0-9][^\s]*)/i.exec(versionOut)?.[1] ?? 'unknown';
  return { path, kind, version, supportsBump: help.includes('--bump-revision') };
}

/**
 * Creates a new data dir from a snapshot with etcdutl/etcdctl. The tool writes into a temporary
 * sibling directory that is renamed into place only when it succeeded, so `dataDir` never holds a
 * half-restored member; an existing non-empty `dataDir` is refused (exit 6).
 */
export async function restorePhysical(opts: PhysicalRestoreOptions): Promise<PhysicalRestoreResult> {
  const dataDir = resolve(opts.dataDir);
  const walDir = opts.walDir ? resolve(opts.walDir) : undefined;
  await ensureEmptyTarget(dataDir, 'Data dir');
  if (walDir) await ensureEmptyTarget(walDir, 'WAL dir');
  const tool = await findRestoreTool(opts.tool);
  const warnings: string[] = [];
  let bump = opts.bumpRevision;
  if (bump > 0 && !tool.supportsBump) {
    warnings.push(
      `${tool.kind} ${tool.version} cannot bump the revision; the restored revision goes backwards, so every Kubernetes watcher must be restarted (use etcdutl 3.5+ to avoid this).`,
    );
    bump = 0;
  }
  const name = opts.name ?? 'default';
  const stamp = `.lifeboat-restore-${process.pid}-${Date.now()}`;
  const tmpData = join(dirname(dataDir), `${basename(dataDir)}${stamp}`);
  const tmpWal = walDir ? join(dirname(walDir), `${basename(walDir)}${stamp}`) : undefined;
  await mkdir(dirname(dataDir), { recursive: true, mode: 0o700 });
  if (walDir) await mkdir(dirname(walDir), { recursive: true, mode: 0o700 });
  const args = ['snapshot', 'restore', opts.snapshotPath, '--data-dir', tmpData, '--name', name];
  if (tmpWal) args.push('--wal-dir', tmpWal);
  if (opts.initialCluster) args.push('--initial-cluster', opts.initialCluster);
  if (opts.initialClusterToken) args.push('--initial-cluster-token', opts.initialClusterToken);
  if (opts.initialAdvertisePeerUrls) args.push('--initial-advertise-peer-urls', opts.initialAdvertisePeerUrls);
  if (opts.skipHashCheck) args.push('--skip-hash-check');
  if (bump > 0) args.push('--bump-revision', String(bump), '--mark-compacted');
  try {
    await run(tool.path, args, { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 16 * 1024 * 1024 });
    // Re-check just before the rename: something may have appeared meanwhile.
    await ensureEmptyTarget(dataDir, 'Data dir');
    await rmdir(dataDir).catch(() => undefined); // empty, or absent
    await rename(tmpData, dataDir);
    if (walDir && tmpWal) {
      await rmdir(walDir).catch(() => undefined);
      await rename(tmpWal, walDir);
    }
  } catch (err) {
    await rm(tmpData, { recursive: true, force: true });
    if (tmpWal) await rm(tmpWal, { recursive: true, force: true });
    if (err instanceof LifeboatError) throw err;
    const e = err as { stderr?: string; message: string };
    const detail = (e.stderr || e.message).trim().split('\n').filter(Boolean).pop() ?? e.message;
    if (/snapshot missing hash|hash mismatch|invalid database/i.test(detail)) {
      throw new UsageError(`${tool.kind} refused the snapshot: ${detail}`, { hint: 'A db copied from a data dir has no hash: pass --skip-hash-check.' });
    }
    throw new LifeboatError(`${tool.kind} snapshot restore failed: ${detail}`, { cause: err });
  }
  return {
    dataDir,
    ...(walDir ? { walDir } : {}),
    tool,
    bumpRevision: bump,
    name,
    warnings,
    nextSteps: nextSteps(dataDir, name, bump, opts),
  };
}

function nextSteps(dataDir: string, name: string, bump: number, opts: PhysicalRestoreOptions): string[] {
  const members = (opts.initialCluster ?? '').split(',').filter(Boolean).length;
  return [
    `Stop etcd on this machine (kubeadm: move /etc/kubernetes/manifests/etcd.yaml out of the manifests directory and wait for the etcd container to stop).`,
    `Point etcd at ${dataDir}: kubeadm: in etcd.yaml set --data-dir and the hostPath of the etcd-data volume to ${dataDir}; systemd: set ETCD_DATA_DIR. Keep the old data dir until the cluster is healthy.`,
    members > 1
      ? `Restore every one of the ${members} members from this same snapshot, each with its own --name and --initial-advertise-peer-urls and the same --initial-cluster and --initial-cluster-token, then start them all.`
      : `For a multi-member cluster, restore every member from the same snapshot (each with its own --name ${name === 'default' ? '' : '(this one: ' + name + ') '}and peer URL, the same --initial-cluster and --initial-cluster-token) before starting any of them.`,
    `Start etcd, then restart every control-plane component (kube-apiserver, kube-controller-manager, kube-scheduler) and the kubelets${bump > 0 ? '' : ', and every controller that watches the API: the restored revision went backwards'}.`,
    bump > 0
      ? `The revision was raised by ${bump} and marked compacted, so watchers see a compaction and relist instead of missing changes.`
      : `The revision was not bumped: clients that cached newer revisions may miss changes until they relist.`,
  ];
}
