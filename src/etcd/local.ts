import { spawn, type ChildProcess } from 'node:child_process';
import { access } from 'node:fs/promises';
import { constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { LifeboatError, NotFoundError } from '../cli/errors.js';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function findExecutable(name: string, given?: string): Promise<string> {
  const candidates = given ? [given] : (process.env.PATH ?? '').split(delimiter).map((d) => join(d, name));
  for (const p of candidates) {
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  throw new NotFoundError(given ? `${given} is not an executable.` : `${name} was not found on PATH.`, { hint: `Install etcd or give the path of ${name}.` });
}

export interface LocalEtcd {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * Starts an etcd member on 127.0.0.1 (restore tests, the demo): a new data dir, or one restored with
 * `--initial-cluster <name>=<peerUrl>`, the ports it was restored for. Waits until it answers.
 */
export async function startLocalEtcd(opts: { bin: string; dataDir: string; name: string; clientPort: number; peerPort: number; timeoutMs?: number }): Promise<LocalEtcd> {
  const endpoint = `http://127.0.0.1:${opts.clientPort}`;
  const peer = `http://127.0.0.1:${opts.peerPort}`;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^ETCD(CTL)?_/.test(k)) env[k] = v;
  let log = '';
  const child: ChildProcess = spawn(
    opts.bin,
    [
      '--name', opts.name, '--data-dir', opts.dataDir,
      '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `${opts.name}=${peer}`,
    ],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  let exited = false;
  child.once('exit', () => (exited = true));
  const stop = async () => {
    if (exited) return;
    const gone = new Promise<void>((res) => child.once('exit', () => res()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  };
  const { Etcd3 } = await import('etcd3');
  const client = new Etcd3({ hosts: [endpoint], dialTimeout: 1000 });
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  try {
    for (;;) {
      if (exited) throw new LifeboatError(`etcd (${opts.bin}) exited: ${log.trim().split('\n').pop() ?? ''}`);
      try {
        await client.maintenance.status({ deadline: new Date(Date.now() + 1000) });
        return { endpoint, stop };
      } catch {
        if (Date.now() > deadline) throw new LifeboatError(`etcd (${opts.bin}) did not become ready at ${endpoint} in time.`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.close();
  }
}
