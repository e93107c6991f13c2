/**
 * Process and temp-dir bookkeeping shared by the rig's launchers: every child and temporary
 * directory is registered, and killed/removed if the test process exits or is signalled.
 * LIFEBOAT_RIG_KEEP=1 keeps the directories (and their logs) for a look afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let cleanupRegistered = false;

function killAllSync(): void {
  for (const child of children) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  children.clear();
  if (process.env['LIFEBOAT_RIG_KEEP'] !== '1') {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
  }
  tempDirs.clear();
}

function registerCleanup(): void {
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  process.on('exit', killAllSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAllSync();
      // If nobody else handles the signal, restore the default behaviour (terminate).
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }
}

/** A new temporary directory `lifeboat-<prefix>-XXXXXX`, removed on exit unless removed before. */
export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `lifeboat-${prefix}-`));
  registerCleanup();
  tempDirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  tempDirs.delete(dir);
  if (process.env['LIFEBOAT_RIG_KEEP'] === '1') return;
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Spawns `bin args` in cwd with stdout+stderr appended to logFile; killed on exit. */
export function spawnLogged(bin: string, args: string[], logFile: string, env: NodeJS.ProcessEnv, cwd: string): ChildProcess {
  registerCleanup();
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(bin, args, { stdio: ['ignore', fd, fd], env, cwd });
    children.add(child);
    child.once('exit', () => children.delete(child));
    return child;
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM, wait, SIGKILL after graceMs; resolves once the process has exited. */
export async function terminate(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    await exited;
  } finally {
    clearTimeout(timer);
  }
}

export async function logTail(logFile: string, lines = 40): Promise<string> {
  try {
    return (await readFile(logFile, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
