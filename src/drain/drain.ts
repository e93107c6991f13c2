/**
 * Draining nodes, one after the other: pre-flight first (nothing is cordoned when it finds a
 * blocker), then per node cordon, filter, evict, wait; on failure the node's prior
 * schedulability is put back (unless told to leave it cordoned) and the run stops there.
 *
 * Configuration is data, progress goes out through one callback, and the result is a report
 * that says what was evicted, what remains and why: the CLI prints it, upgrades reuse it.
 */
import pRetry from 'p-retry';
import { ExitCode, messageOf, type ExitCode as ExitCodeT } from '../cli/errors.js';
import { parseLabelSelector } from '../kube/label-selector.js';
import { KubeApiError } from '../kube/errors.js';
import { isTransientDrainError, NodeApi, type DryRun } from './api.js';
import { describeCordon, schedulabilityOf, setSchedulability, type CordonResult, type Schedulability } from './cordon.js';
import { evictPods, type EvictEvent, type EvictionRecord, type FailureKind, type StuckPod } from './evict.js';
import { filterPods, type FilterOptions } from './filters.js';
import { preflight, type PreflightResult } from './preflight.js';
import type { Node } from './types.js';

export interface DrainConfig extends FilterOptions {
  /** kubectl label selector syntax: only matching pods are evicted. */
  podSelector?: string | undefined;
  gracePeriodSeconds: number;
  /** Per node; 0: no limit (kubectl's default). */
  timeoutMs: number;
  disableEviction: boolean;
  chunkSize: number;
  dryRun: DryRun;
  concurrency: number;
  /**
   * run: stop before cordoning anything when it finds a blocker; only: just report; ignore: report
   * and go on; skip: no pre-flight (the caller ran it).
   */
  preflight: 'run' | 'only' | 'ignore' | 'skip';
  /** The caller cordoned the nodes itself (and puts them back): no warning that they were cordoned before. */
  cordonedByCaller?: boolean;
  leaveCordoned: boolean;
  pollIntervalMs?: number;
  /** How long an unreachable API server is waited out before the drain fails (default 30 s). */
  transientWindowMs?: number;
}

export const DEFAULT_DRAIN_CONFIG: DrainConfig = {
  ignoreDaemonSets: false,
  deleteEmptyDirData: false,
  force: false,
  skipWaitForDeleteTimeoutSeconds: 0,
  gracePeriodSeconds: -1,
  timeoutMs: 0,
  disableEviction: false,
  chunkSize: 500,
  dryRun: 'none',
  concurrency: 50,
  preflight: 'run',
  leaveCordoned: false,
};

export type DrainEvent =
  | ({ node: string } & EvictEvent)
  | { node: string; type: 'cordon'; result: CordonResult; message: string }
  | { node: string; type: 'restore'; message: string; ok: boolean }
  | { node: string; type: 'warning'; message: string }
  | { node: string; type: 'drained'; evicted: number; durationMs: number };

export interface NodeDrainReport {
  node: string;
  before: Schedulability;
  after: Schedulability;
  outcome: 'drained' | 'failed' | 'not-started' | 'dry-run';
  /** Evicted (or, in a dry run, would be). */
  evicted: EvictionRecord[];
  skipped: { pod: string; reason: string }[];
  warnings: string[];
  /** Pods that should have gone and did not, with the reason. */
  remaining: StuckPod[];
  error?: string;
  durationMs: number;
}

export interface DrainReport {
  outcome: 'drained' | 'blocked' | 'failed' | 'preflight-only' | 'dry-run';
  preflight?: PreflightResult | undefined;
  nodes: NodeDrainReport[];
  failure?: { kind: FailureKind | 'refused'; message: string; exitCode: ExitCodeT };
}

export async function drainNodes(
  api: NodeApi,
  nodes: Node[],
  cfg: DrainConfig,
  opts: { signal?: AbortSignal | undefined; onEvent?: ((e: DrainEvent) => void) | undefined } = {},
): Promise<DrainReport> {
  const emit = opts.onEvent ?? (() => undefined);
  const names = nodes.map((n) => n.metadata.name);
  const podSelector = cfg.podSelector ? parseLabelSelector(cfg.podSelector) : undefined;

  const { podSelector: _text, ...filterCfg } = cfg;
  const pf = cfg.preflight === 'skip' ? undefined : preflight(await api.clusterState(cfg.chunkSize), names, { ...filterCfg, ...(podSelector ? { podSelector } : {}) });
  const notStarted = (): NodeDrainReport[] => nodes.map((n) => emptyReport(n.metadata.name, schedulabilityOf(n), 'not-started'));
  if (cfg.preflight === 'only') return { outcome: 'preflight-only', preflight: pf, nodes: notStarted() };
  if (pf && pf.blockers.length > 0 && cfg.preflight === 'run') return { outcome: 'blocked', preflight: pf, nodes: notStarted() };

  if (cfg.dryRun === 'client') {
    if (!pf) throw new Error('a client dry run needs the pre-flight');
    // Nothing is sent: the plan is the pre-flight's (same filters, same pod lists).
    const reports = pf.nodes.map((p) => {
      const r = emptyReport(p.node, schedulabilityOf(nodes.find((n) => n.metadata.name === p.node)!), 'dry-run');
      r.after = 'cordoned';
      r.evicted = p.evict.map((pod) => ({ pod, uid: '', evictedAt: '' }));
      r.skipped = p.skip;
      return r;
    });
    return { outcome: 'dry-run', preflight: pf, nodes: reports };
  }

  // Restoring a node's schedulability must work after an interrupt: a client without the signal.
  const restoreApi = new NodeApi(api.client);
  const reports: NodeDrainReport[] = notStarted();
  for (const [i, name] of names.entries()) {
    const started = Date.now();
    const report = reports[i]!;
    const failed = async (kind: FailureKind | 'refused', message: string, exitCode: ExitCodeT): Promise<DrainReport> => {
      report.outcome = 'failed';
      report.error = message;
      report.durationMs = Date.now() - started;
      await restore(restoreApi, report, cfg, emit);
      return { outcome: 'failed', preflight: pf, nodes: reports, failure: { kind, message, exitCode } };
    };
    try {
      const result = await drainOne(api, nodes[i]!, report, cfg, pf, started, opts.signal, emit, failed);
      if (result) return result;
    } catch (err) {
      if (opts.signal?.aborted) return failed('interrupted', 'Interrupted.', ExitCode.Interrupted);
      const code = (err as { exitCode?: ExitCodeT }).exitCode ?? ExitCode.Failure;
      return failed('error', `Drain of node ${name} failed: ${messageOf(err)}`, code);
    }
  }
  if (cfg.dryRun === 'server') {
    const blocked = reports.some((r) => r.outcome === 'failed');
    return { outcome: 'dry-run', preflight: pf, nodes: reports, ...(blocked ? { failure: { kind: 'pdb', message: 'Some pods would not be evicted now (see remaining).', exitCode: ExitCode.Blocked } } : {}) };
  }
  return { outcome: 'drained', preflight: pf, nodes: reports };
}

type Failed = (kind: FailureKind | 'refused', message: string, exitCode: ExitCodeT) => Promise<DrainReport>;

/** One node: cordon, filter, evict, wait. Returns a report when the run must stop here. */
async function drainOne(
  api: NodeApi,
  given: Node,
  report: NodeDrainReport,
  cfg: DrainConfig,
  pf: PreflightResult | undefined,
  started: number,
  signal: AbortSignal | undefined,
  emit: (e: DrainEvent) => void,
  failed: Failed,
): Promise<DrainReport | undefined> {
  const name = given.metadata.name;
  const node = await api.getNode(name);
  report.before = schedulabilityOf(node);
  // Recorded before the request, so an interrupt during it still checks and restores the node.
  if (cfg.dryRun === 'none') report.after = 'cordoned';
  const cordoned = await setSchedulability(api, node, true, cfg.dryRun);
  // A server dry run changes nothing: the node is as it was.
  report.after = cfg.dryRun === 'none' ? cordoned.after : report.before;
  emit({ node: name, type: 'cordon', result: cordoned, message: describeCordon(cordoned) });
  if (report.before === 'cordoned' && !cfg.cordonedByCaller) {
    const msg = `node ${name} was cordoned before this drain; it stays cordoned whatever happens`;
    report.warnings.push(msg);
    emit({ node: name, type: 'warning', message: msg });
  }

  let pods;
  try {
    pods = await api.podsOnNode(name, { podSelector: cfg.podSelector, chunkSize: cfg.chunkSize });
  } catch (err) {
    if (signal?.aborted) return failed('interrupted', 'Interrupted.', ExitCode.Interrupted);
    return failed('error', `Cannot list the pods on node ${name}: ${messageOf(err)}`, ExitCode.Failure);
  }
  const dsCache = new Map<string, boolean>();
  for (const p of pods) {
    const ref = p.metadata.ownerReferences?.find((r) => r.controller && r.kind === 'DaemonSet');
    const key = ref ? `${p.metadata.namespace ?? ''}/${ref.name}` : undefined;
    if (key && !dsCache.has(key)) dsCache.set(key, await api.daemonSetExists(p.metadata.namespace ?? '', ref!.name));
  }
  const verdicts = filterPods(pods, cfg, { daemonSetExists: (k) => dsCache.get(k) ?? true, now: new Date() });
  report.skipped = verdicts.skip.map((v) => ({ pod: podName(v.pod), reason: v.reason }));
  for (const v of verdicts.evict) if (v.warning) report.warnings.push(`pod ${podName(v.pod)}: ${v.warning}`);
  if (verdicts.refuse.length > 0) {
    report.remaining = verdicts.refuse.map((v) => ({ pod: podName(v.pod), reason: `${v.reason} (${v.fix})` }));
    const list = verdicts.refuse.map((v) => `${podName(v.pod)} (${v.reason}; ${v.fix})`).join('; ');
    return failed('refused', `Cannot drain node ${name}: ${verdicts.refuse.length} pod(s) cannot be evicted: ${list}.`, ExitCode.Blocked);
  }

  const outcome = await evictPods(
    api,
    name,
    verdicts.evict.map((v) => v.pod),
    {
      gracePeriodSeconds: cfg.gracePeriodSeconds,
      disableEviction: cfg.disableEviction,
      dryRun: cfg.dryRun === 'server' ? 'server' : 'none',
      concurrency: cfg.concurrency,
      deadline: cfg.timeoutMs > 0 ? started + cfg.timeoutMs : undefined,
      skipWaitForDeleteTimeoutSeconds: cfg.skipWaitForDeleteTimeoutSeconds,
      pollIntervalMs: cfg.pollIntervalMs ?? 500,
      chunkSize: cfg.chunkSize,
      transientWindowMs: cfg.transientWindowMs ?? 30_000,
    },
    { signal, onEvent: (e) => emit({ node: name, ...e }) },
  );
  report.evicted = outcome.evicted;
  report.remaining = outcome.stuck;
  if (outcome.failure) {
    const code = outcome.failure.kind === 'interrupted' ? ExitCode.Interrupted : outcome.failure.kind === 'pdb' ? ExitCode.Blocked : ExitCode.Failure;
    return failed(outcome.failure.kind, outcome.failure.message, code);
  }
  if (cfg.dryRun === 'server' && outcome.stuck.length > 0) {
    report.outcome = 'failed';
    report.error = `${outcome.stuck.length} pod(s) would not be evicted now`;
  } else {
    report.outcome = cfg.dryRun === 'server' ? 'dry-run' : 'drained';
  }
  report.durationMs = Date.now() - started;
  emit({ node: name, type: 'drained', evicted: outcome.evicted.length, durationMs: report.durationMs });
  return undefined;
}

/** Puts back the schedulability the node had before the drain, unless told to leave it cordoned. */
async function restore(api: NodeApi, report: NodeDrainReport, cfg: DrainConfig, emit: (e: DrainEvent) => void): Promise<void> {
  const name = report.node;
  if (report.before === 'cordoned' || report.after === 'schedulable' || cfg.dryRun !== 'none') return;
  if (cfg.leaveCordoned) {
    emit({ node: name, type: 'restore', ok: true, message: `node/${name} left cordoned (--leave-cordoned)` });
    return;
  }
  try {
    // The API server may be the reason the drain failed: keep trying for a while (2 min).
    await pRetry(
      async () => {
        const node = await api.getNode(name);
        await setSchedulability(api, node, false);
      },
      { retries: 24, minTimeout: 1000, maxTimeout: 5000, shouldRetry: ({ error }) => isTransientDrainError(error) || (error instanceof KubeApiError && error.status === 429) },
    );
    report.after = 'schedulable';
    emit({ node: name, type: 'restore', ok: true, message: `node/${name} uncordoned: it was schedulable before the drain` });
  } catch (err) {
    const msg = `Could not uncordon node ${name} after the failed drain: ${messageOf(err)}. Run \`lifeboat node uncordon ${name}\` once the API server answers.`;
    report.warnings.push(msg);
    emit({ node: name, type: 'restore', ok: false, message: msg });
  }
}

function emptyReport(node: string, before: Schedulability, outcome: NodeDrainReport['outcome']): NodeDrainReport {
  return { node, before, after: before, outcome, evicted: [], skipped: [], warnings: [], remaining: [], durationMs: 0 };
}

function podName(p: { metadata: { namespace?: string; name: string } }): string {
  return `${p.metadata.namespace ?? ''}/${p.metadata.name}`;
}

/** The exit code a report stands for (DESIGN.md): 7 blocked, 3 when some nodes were drained before a failure. */
export function exitCodeOf(report: DrainReport): ExitCodeT {
  if (report.outcome === 'blocked') return ExitCode.Blocked;
  if (report.outcome === 'preflight-only') return report.preflight && report.preflight.blockers.length > 0 ? ExitCode.Blocked : ExitCode.Success;
  if (report.outcome === 'dry-run') return report.failure || (report.preflight?.blockers.length ?? 0) > 0 ? ExitCode.Blocked : ExitCode.Success;
  if (!report.failure) return ExitCode.Success;
  if (report.failure.kind === 'interrupted') return ExitCode.Interrupted;
  if (report.nodes.some((n) => n.outcome === 'drained')) return ExitCode.Partial;
  // 7 promises that nothing changed: no pod evicted and no node left in another state.
  const changed = report.nodes.some((n) => n.evicted.length > 0 || (n.outcome === 'failed' && n.after !== n.before));
  if (report.failure.exitCode === ExitCode.Blocked && changed) return ExitCode.Failure;
  return report.failure.exitCode;
}
