/**
 * One upgrade run per cluster: a coordination.k8s.io/v1 Lease, held while the run works and
 * renewed every third of its duration. A second run is refused naming the holder. A holder that
 * stopped renewing loses the lock once the lease expires; a holder that was this host's process
 * and is gone (killed, crashed) is taken over at once by a resume of the same run.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { BlockedError, LifeboatError, messageOf } from '../cli/errors.js';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError } from '../kube/errors.js';

export const LOCK_NAME = 'lifeboat-upgrade';

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  spec: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number;
  };
}

export interface Holder {
  host: string;
  pid: number;
  runId: string;
}

export function formatHolder(h: Holder): string {
  return `${h.host}/${h.pid}/${h.runId}`;
}

export function parseHolder(text: string | null | undefined): Holder | undefined {
  if (!text) return undefined;
  const m = /^(.*)\/(\d+)\/([^/]+)$/.exec(text);
  return m ? { host: m[1] as string, pid: Number(m[2]), runId: m[3] as string } : undefined;
}

/** MicroTime: RFC 3339 with microseconds. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export interface LockState {
  holder?: string;
  renewedAt?: string;
  durationSeconds?: number;
  expired: boolean;
}

export function leaseExpired(spec: Lease['spec'], now: Date): boolean {
  if (!spec.holderIdentity) return true;
  const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '');
  if (Number.isNaN(renewed)) return true;
  return renewed + (spec.leaseDurationSeconds ?? 0) * 1000 < now.getTime();
}

/**
 * This machine: its host name and the start of its machine id, so that two machines (or
 * containers) with the same host name are never taken for one another.
 */
export function hostId(): string {
  let id = '';
  for (const f of ['/etc/machine-id', '/proc/sys/kernel/random/boot_id']) {
    try {
      id = readFileSync(f, 'utf8').trim().replace(/-/g, '').slice(0, 12);
      if (id) break;
    } catch {
      // next
    }
  }
  return id ? `${hostname()}@${id}` : hostname();
}

/** A process of this host that no longer exists. */
export function isDeadLocalHolder(h: Holder | undefined, host = hostId()): boolean {
  if (!h || h.host !== host) return false;
  if (h.pid === process.pid) return false;
  try {
    process.kill(h.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export class LeaseLock {
  readonly identity: string;
  private lease: Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;
  private renewing: Promise<void> | undefined;
  private lostReason: string | undefined;
  private readonly listeners: ((reason: string) => void)[] = [];

  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
    readonly runId: string,
    readonly durationSeconds = 120,
  ) {
    this.identity = formatHolder({ host: hostId(), pid: process.pid, runId });
  }

  private get path(): string {
    return `/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases/${LOCK_NAME}`;
  }

  async read(): Promise<Lease | undefined> {
    try {
      return await this.client.request<Lease>(this.path);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
  }

  async state(now = new Date()): Promise<LockState | undefined> {
    const lease = await this.read();
    if (!lease) return undefined;
    return {
      ...(lease.spec.holderIdentity ? { holder: lease.spec.holderIdentity } : {}),
      ...(lease.spec.renewTime ? { renewedAt: lease.spec.renewTime } : {}),
      ...(lease.spec.leaseDurationSeconds ? { durationSeconds: lease.spec.leaseDurationSeconds } : {}),
      expired: leaseExpired(lease.spec, now),
    };
  }

  /**
   * Takes the lock, or throws BlockedError naming the holder. `takeOverRun`: a resume may take a
   * lock its own run holds when that holder is gone (a dead process of this host) or expired.
   */
  async acquire(opts: { takeOverRun?: string; force?: boolean } = {}): Promise<{ tookOver?: string }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = new Date();
      const lease = await this.read();
      if (!lease) {
        try {
          this.lease = await this.client.request<Lease>(`/apis/coordination.k8s.io/v1/namespaces/${this.namespace}/leases`, { method: 'POST', body: this.leaseBody(undefined, now, 0) });
          this.lastRenew = Date.now();
          return {};
        } catch (err) {
          if (err instanceof KubeApiError && err.status === 409) continue; // someone was faster: look again
          throw err;
        }
      }
      const current = lease.spec.holderIdentity ?? undefined;
      const holder = parseHolder(current);
      const free = !current || current === this.identity || leaseExpired(lease.spec, now);
      const ours = holder !== undefined && opts.takeOverRun !== undefined && holder.runId === opts.takeOverRun && isDeadLocalHolder(holder);
      if (!free && !ours && !opts.force) throw heldError(lease, now);
      try {
        const transitions = (lease.spec.leaseTransitions ?? 0) + (current === this.identity ? 0 : 1);
        this.lease = await this.client.request<Lease>(this.path, { method: 'PUT', body: this.leaseBody(lease.metadata.resourceVersion, now, transitions) });
        this.lastRenew = Date.now();
        return current && current !== this.identity ? { tookOver: current } : {};
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 409) continue;
        throw err;
      }
    }
    throw new BlockedError('Could not take the upgrade lock: it kept changing hands. Another run is starting; check `lifeboat upgrade status`.');
  }

  /**
   * Renews every third of the duration until release(). The lock counts as lost when the lease
   * turns out to be held by someone else, or when it could not be renewed for two thirds of its
   * duration (past that, another host may take it once it expires: this run must stop first).
   */
  startRenewing(): void {
    if (this.timer) return;
    const every = Math.max(500, (this.durationSeconds * 1000) / 3);
    this.lastRenew = Date.now();
    this.timer = setInterval(() => {
      if (this.renewing || this.lostReason) return;
      this.renewing = this.renew(every)
        .catch((err: unknown) => {
          if (err instanceof LockLostError) this.markLost(err.message);
          else if (Date.now() - this.lastRenew > (this.durationSeconds * 1000 * 2) / 3) {
            this.markLost(`the lock could not be renewed for ${Math.round((Date.now() - this.lastRenew) / 1000)}s (${messageOf(err)}); another run may take it once it expires`);
          }
        })
        .finally(() => {
          this.renewing = undefined;
        });
    }, every);
    this.timer.unref();
  }

  /** Why the lock was lost, once it was. */
  get lost(): string | undefined {
    return this.lostReason;
  }

  /** Calls fn once when the lock is lost (at once if it already is). */
  onLost(fn: (reason: string) => void): void {
    if (this.lostReason) fn(this.lostReason);
    else this.listeners.push(fn);
  }

  private markLost(reason: string): void {
    if (this.lostReason) return;
    this.lostReason = reason;
    for (const fn of this.listeners.splice(0)) fn(reason);
  }

  async renew(timeoutMs?: number): Promise<void> {
    const rv = this.lease?.metadata.resourceVersion;
    try {
      const spec = { ...this.lease?.spec, holderIdentity: this.identity, leaseDurationSeconds: this.durationSeconds, renewTime: microTime(new Date()) };
      this.lease = await this.client.request<Lease>(this.path, { method: 'PUT', body: { ...this.leaseBody(rv, new Date(), 0), spec }, ...(timeoutMs ? { signal: AbortSignal.timeout(timeoutMs) } : {}) });
      this.lastRenew = Date.now();
    } catch (err) {
      if (err instanceof KubeApiError && (err.status === 409 || err.status === 404)) {
        const now = await this.read();
        if (now?.spec.holderIdentity === this.identity) {
          this.lease = now;
          return this.renew(timeoutMs);
        }
        throw new LockLostError(`the upgrade lock was taken by ${now?.spec.holderIdentity || 'nobody (deleted)'}`);
      }
      throw err;
    }
  }

  /** Stops renewing, waiting for a renewal in flight. */
  async stopRenewing(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.renewing;
  }

  /** Gives the lock up (deletes the Lease if it is still ours). */
  async release(): Promise<void> {
    await this.stopRenewing();
    for (let attempt = 0; attempt < 3; attempt++) {
      const lease = await this.read();
      if (!lease || lease.spec.holderIdentity !== this.identity) return;
      if (await this.deleteLease(lease)) return;
    }
  }

  /** false: the lease changed since it was read (409). */
  private async deleteLease(lease: Lease): Promise<boolean> {
    try {
      await this.client.request(this.path, { method: 'DELETE', body: { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { resourceVersion: lease.metadata.resourceVersion } } });
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return true;
      if (err instanceof KubeApiError && err.status === 409) return false;
      throw err;
    }
  }

  private leaseBody(resourceVersion: string | undefined, now: Date, transitions: number): Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: LOCK_NAME, namespace: this.namespace, ...(resourceVersion ? { resourceVersion } : {}), labels: { 'app.kubernetes.io/managed-by': 'lifeboat' } },
      spec: { holderIdentity: this.identity, leaseDurationSeconds: this.durationSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: transitions },
    };
  }
}

export class LockLostError extends LifeboatError {}

function heldError(lease: Lease, now: Date): BlockedError {
  const holder = lease.spec.holderIdentity ?? '';
  const renewed = Date.parse(lease.spec.renewTime ?? lease.spec.acquireTime ?? '');
  const ago = Number.isNaN(renewed) ? undefined : Math.max(0, Math.round((now.getTime() - renewed) / 1000));
  const left = ago === undefined ? undefined : Math.max(0, (lease.spec.leaseDurationSeconds ?? 0) - ago);
  const h = parseHolder(holder);
  const who = h ? `run ${h.runId} (process ${h.pid} on ${h.host})` : holder;
  return new BlockedError(
    `Another upgrade run holds the lock (Lease ${lease.metadata.namespace}/${LOCK_NAME}): ${who}${ago !== undefined ? `, renewed ${ago}s ago` : ''}${left !== undefined ? `; it expires in ${left}s if its holder stops renewing` : ''}.`,
    { hint: 'Wait for it (`lifeboat upgrade status` shows it). If that run died, `lifeboat upgrade resume` continues it (at once on the same host, elsewhere once the lease expires); `lifeboat upgrade abort` drops it.' },
  );
}
