/**
 * The run journal: what an upgrade run planned, where each node stands, and how the run ended.
 * It is written before every step (write-ahead), to a ConfigMap in the cluster and to a local
 * file, so a run that crashed, was killed or lost the API server can be resumed from either.
 * Each write carries a sequence number; on load the newer of the two copies wins.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import pRetry from 'p-retry';
import { LifeboatError, messageOf } from '../cli/errors.js';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError } from '../kube/errors.js';
import { isTransientDrainError } from '../drain/api.js';
import type { Schedulability } from '../drain/cordon.js';
import type { ActionSpec } from './actions.js';
import type { NodeRole } from './skew.js';

export const JOURNAL_CONFIGMAP = 'lifeboat-upgrade';
export const JOURNAL_KEY = 'journal.json';

/** A node's way through a run, in order. */
export const PHASES = ['pending', 'cordon', 'drain', 'action', 'wait', 'uncordon', 'gates', 'done'] as const;
export type Phase = (typeof PHASES)[number];

export interface JournalNode {
  node: string;
  role: NodeRole;
  /** The plan step (batch) the node belongs to. */
  step: number;
  from: string;
  to: string;
  phase: Phase;
  /** Schedulability before the run first touched it; what a failure or an abort puts back. */
  before?: Schedulability;
  /** The run cordoned it and has not uncordoned it yet. */
  cordonedByRun: boolean;
  startedAt?: string;
  finishedAt?: string;
  /** When the current phase began. */
  phaseAt?: string;
  /** Seconds spent in each finished phase. */
  durations: Partial<Record<Phase, number>>;
  evicted?: number;
  /** Action attempts so far (a Job's name carries it, so a resume adopts the Job of an attempt cut short). */
  attempt?: number;
  /** The running action's process, while it runs. */
  actionPid?: number;
  actionHost?: string;
  /** Set while the node's last attempt failed. */
  error?: { phase: Phase; message: string; at: string };
  /** Set when resume found the node's work already done (e.g. the kubelet already at the target). */
  note?: string;
}

export type RunStatus = 'running' | 'failed' | 'interrupted' | 'succeeded' | 'aborted';

export interface DrainSettings {
  ignoreDaemonSets: boolean;
  deleteEmptyDirData: boolean;
  force: boolean;
  skipWaitForDeleteTimeoutSeconds: number;
  gracePeriodSeconds: number;
  timeoutMs: number;
}

export interface RunSettings {
  target: string;
  action: ActionSpec;
  drain: DrainSettings;
  waitTimeoutMs: number;
  gateTimeoutMs: number;
  gateCommand?: string[] | undefined;
  leaveCordoned: boolean;
}

export interface RunJournal {
  apiVersion: 'lifeboat.io/v1';
  kind: 'UpgradeRun';
  runId: string;
  /** The cluster the journal belongs to (API server URL). */
  cluster: string;
  status: RunStatus;
  seq: number;
  createdAt: string;
  updatedAt: string;
  /** Who ran (or runs) it: host/pid/runId, as in the lock. */
  holder: string;
  settings: RunSettings;
  snapshot?: { id: string; store: string; verified: boolean } | { skipped: true; reason: string };
  steps: { step: number; role: NodeRole; nodes: string[] }[];
  nodes: JournalNode[];
  /** Where the run stopped, while it is stopped. */
  failure?: { node?: string; phase?: Phase; message: string; exitCode: number; at: string };
  /** One line per event worth keeping (start, resume, failure, abort). */
  history: { at: string; event: string }[];
}

export function isFinished(j: RunJournal): boolean {
  return j.status === 'succeeded' || j.status === 'aborted';
}

export function progressOf(j: RunJournal): { done: number; total: number } {
  return { done: j.nodes.filter((n) => n.phase === 'done').length, total: j.nodes.length };
}

/** Default local copy: $XDG_STATE_HOME/lifeboat (or ~/.local/state/lifeboat), one file per API server. */
export function defaultJournalFile(server: string): string {
  const base = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  const host = server.replace(/^https?:\/\//, '').replace(/[^A-Za-z0-9.-]+/g, '_');
  return join(base, 'lifeboat', `upgrade-${host}.json`);
}

interface ConfigMap {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  metadata: { name: string; namespace: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

/**
 * Both copies of the journal. save() writes the local file first (atomically), then the ConfigMap
 * (retried while the API server is unreachable, up to clusterRetryMs); load() returns the newer.
 */
export class JournalStore {
  private exists = false;

  constructor(
    private readonly client: KubeClient,
    readonly namespace: string,
    readonly file: string,
    private readonly clusterRetryMs = 30_000,
  ) {}

  private get path(): string {
    return `/api/v1/namespaces/${this.namespace}/configmaps/${JOURNAL_CONFIGMAP}`;
  }

  async loadCluster(): Promise<RunJournal | undefined> {
    let cm: ConfigMap;
    try {
      cm = await this.client.request<ConfigMap>(this.path);
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 404) return undefined;
      throw err;
    }
    this.exists = true;
    const text = cm.data?.[JOURNAL_KEY];
    if (!text) return undefined;
    return parseJournal(text, `ConfigMap ${this.namespace}/${JOURNAL_CONFIGMAP}`);
  }

  async loadLocal(): Promise<RunJournal | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
    return parseJournal(text, this.file);
  }

  /**
   * The newest journal of this cluster: the ConfigMap's, or the local copy when it is newer (the
   * API server was lost while the run saved) or the cluster cannot be read.
   */
  async load(): Promise<{ journal: RunJournal; source: 'cluster' | 'local' } | undefined> {
    let cluster: RunJournal | undefined;
    let clusterError: unknown;
    try {
      cluster = await this.loadCluster();
    } catch (err) {
      clusterError = err;
    }
    const local = await this.loadLocal().catch(() => undefined);
    const localMatches = local && (!cluster || local.runId === cluster.runId) && local.cluster === this.client.server;
    if (localMatches && (!cluster || local.seq > cluster.seq)) return { journal: local, source: 'local' };
    if (cluster) return { journal: cluster, source: 'cluster' };
    if (clusterError) throw clusterError;
    return undefined;
  }

  /** Writes the local copy only (the cluster's may belong to another run now). */
  async saveLocal(j: RunJournal): Promise<void> {
    j.seq += 1;
    j.updatedAt = new Date().toISOString();
    await this.writeLocal(JSON.stringify(j, null, 2) + '\n');
  }

  private async writeLocal(text: string): Promise<void> {
    await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, this.file);
  }

  /** Writes both copies; a journal the cluster cannot take after clusterRetryMs is an error (the local copy is written). */
  async save(j: RunJournal): Promise<void> {
    j.seq += 1;
    j.updatedAt = new Date().toISOString();
    const text = JSON.stringify(j, null, 2) + '\n';
    await this.writeLocal(text);
    const retries = Math.max(0, Math.floor(this.clusterRetryMs / 2000));
    try {
      await pRetry(() => this.writeCluster(text), {
        retries,
        minTimeout: 500,
        maxTimeout: 2000,
        factor: 2,
        maxRetryTime: this.clusterRetryMs,
        shouldRetry: ({ error }) => isTransientDrainError(error) || (error instanceof KubeApiError && [404, 409, 429].includes(error.status)),
      });
    } catch (err) {
      throw new LifeboatError(`Cannot save the run journal to ConfigMap ${this.namespace}/${JOURNAL_CONFIGMAP}: ${messageOf(err)}. The local copy ${this.file} is up to date.`, {
        cause: err,
      });
    }
  }

  private async writeCluster(text: string): Promise<void> {
    const body: ConfigMap = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: JOURNAL_CONFIGMAP, namespace: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'lifeboat' } },
      data: { [JOURNAL_KEY]: text },
    };
    try {
      if (!this.exists) await this.client.request(`/api/v1/namespaces/${this.namespace}/configmaps`, { method: 'POST', body });
      // An unconditional replace: the lock is what keeps a second writer out.
      else await this.client.request(this.path, { method: 'PUT', body });
      this.exists = true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) this.exists = true;
      else if (err instanceof KubeApiError && err.status === 404) this.exists = false;
      throw err;
    }
  }

  /** Makes sure the namespace exists (created, labelled, when missing). */
  async ensureNamespace(): Promise<boolean> {
    try {
      await this.client.request(`/api/v1/namespaces/${this.namespace}`);
      return false;
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 404)) throw err;
    }
    try {
      await this.client.request('/api/v1/namespaces', {
        method: 'POST',
        body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'lifeboat' } } },
      });
      return true;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 409) return false;
      throw err;
    }
  }
}

export function parseJournal(text: string, where: string): RunJournal {
  let j: RunJournal;
  try {
    j = JSON.parse(text) as RunJournal;
  } catch (err) {
    throw new LifeboatError(`The run journal in ${where} is not JSON: ${(err as Error).message}.`);
  }
  if (j?.kind !== 'UpgradeRun' || !Array.isArray(j.nodes) || !Array.isArray(j.steps) || typeof j.seq !== 'number') {
    throw new LifeboatError(`The run journal in ${where} is not a lifeboat upgrade run.`);
  }
  return j;
}

/** Moves a node to its next phase, recording the time spent in the one it leaves. */
export function enterPhase(n: JournalNode, phase: Phase, now = new Date()): void {
  if (n.phaseAt && n.phase !== 'pending' && n.phase !== phase) {
    const secs = (now.getTime() - Date.parse(n.phaseAt)) / 1000;
    n.durations[n.phase] = Math.round(((n.durations[n.phase] ?? 0) + secs) * 10) / 10;
  }
  n.startedAt ??= now.toISOString();
  n.phase = phase;
  n.phaseAt = now.toISOString();
  if (phase === 'done') n.finishedAt = now.toISOString();
}
