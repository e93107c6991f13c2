/**
 * The four upgrade commands as functions of data: start a run (plan, lock, snapshot, journal,
 * execute), resume it, show it, abort it.
 */
import { randomBytes } from 'node:crypto';
import { BlockedError, ExitCode, messageOf, NotFoundError, type ExitCode as ExitCodeT } from '../cli/errors.js';
import { NodeApi } from '../drain/api.js';
import { setSchedulability } from '../drain/cordon.js';
import type { KubeClient } from '../kube/client.js';
import type { NodeAction } from './actions.js';
import { isFinished, JournalStore, type RunJournal, type RunSettings } from './journal.js';
import { isDeadLocalHolder, LeaseLock, parseHolder, type LockState } from './lock.js';
import { planUpgrade, type PlanOptions, type UpgradePlan } from './plan.js';
import { executeRun, newJournal, type RunEvent, type RunResult } from './run.js';
import type { PreUpgradeSnapshot } from './snapshot.js';

export interface UpgradeContext {
  client: KubeClient;
  namespace: string;
  journalFile: string;
  lockDurationSeconds?: number;
  signal?: AbortSignal | undefined;
  emit?: ((e: RunEvent) => void) | undefined;
  pollIntervalMs?: number;
}

export function newRunId(): string {
  const t = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `upgrade-${t}-${randomBytes(2).toString('hex')}`.toLowerCase();
}

export interface StartOptions {
  plan: PlanOptions;
  settings: Omit<RunSettings, 'target'>;
  /** Makes the action for the run id (checked before anything changes). */
  action: (runId: string) => Promise<NodeAction>;
  /** Takes the pre-upgrade snapshot; undefined with a reason: skipped. */
  snapshot: ((runId: string) => Promise<PreUpgradeSnapshot>) | { skipped: string };
}

export type StartResult = { kind: 'plan-blocked'; plan: UpgradePlan; exitCode: ExitCodeT } | { kind: 'nothing-to-do'; plan: UpgradePlan; exitCode: ExitCodeT } | ({ kind: 'run'; plan: UpgradePlan } & RunResult);

export async function startRun(ctx: UpgradeContext, opts: StartOptions): Promise<StartResult> {
  const emit = ctx.emit ?? (() => undefined);
  const journal = new JournalStore(ctx.client, ctx.namespace, ctx.journalFile);
  const api = new NodeApi(ctx.client, ctx.signal);
  const plan = await planUpgrade(api, opts.plan, ctx.signal);
  if (plan.outcome === 'blocked') return { kind: 'plan-blocked', plan, exitCode: ExitCode.Blocked };
  if (plan.outcome === 'nothing-to-do') return { kind: 'nothing-to-do', plan, exitCode: ExitCode.Success };

  const runId = newRunId();
  const action = await opts.action(runId);
  if (await journal.ensureNamespace()) emit({ type: 'info', message: `created namespace ${ctx.namespace} for the run's lock and journal` });
  // The lock first: a second run is refused naming the one that holds it.
  const lock = new LeaseLock(ctx.client, ctx.namespace, runId, ctx.lockDurationSeconds);
  await lock.acquire();
  // A run not finished is resumed or aborted, never silently replaced.
  const existing = await journal.load().catch(async (err: unknown) => {
    await lock.release().catch(() => undefined);
    throw err;
  });
  if (existing && !isFinished(existing.journal)) {
    await lock.release().catch(() => undefined);
    const j = existing.journal;
    throw new BlockedError(`Upgrade run ${j.runId} to ${j.settings.target} is ${j.status} (${j.nodes.filter((n) => n.phase === 'done').length}/${j.nodes.length} nodes done); a new run would lose track of it.`, {
      hint: 'Continue it with `lifeboat upgrade resume`, or drop it with `lifeboat upgrade abort`; `lifeboat upgrade status` shows where it stands.',
    });
  }
  let snapshot: RunJournal['snapshot'];
  try {
    if ('skipped' in opts.snapshot) {
      emit({ type: 'warn', message: `No etcd snapshot is taken before this upgrade: ${opts.snapshot.skipped}.` });
      snapshot = { skipped: true, reason: opts.snapshot.skipped };
    } else {
      emit({ type: 'info', message: 'taking the pre-upgrade etcd snapshot' });
      const s = await opts.snapshot(runId);
      snapshot = { id: s.id, store: s.store, verified: true };
      emit({ type: 'info', message: `etcd snapshot ${s.id} stored in ${s.store} and verified${s.payloadChecked ? ' (stored bytes and the snapshot inside)' : ' (stored bytes; the snapshot inside is encrypted to recipients only)'}` });
    }
  } catch (err) {
    await lock.release().catch(() => undefined);
    throw err;
  }
  const j = newJournal(plan, { ...opts.settings, target: plan.target }, { runId, holder: lock.identity, cluster: ctx.client.server });
  j.snapshot = snapshot;
  emit({ type: 'info', message: `run ${runId}: ${plan.steps.length} steps, ${j.nodes.length} nodes; journal in ConfigMap ${ctx.namespace}/lifeboat-upgrade and ${ctx.journalFile}` });
  const result = await executeRun({ client: ctx.client, journal, lock, action, signal: ctx.signal, emit, ...(ctx.pollIntervalMs ? { pollIntervalMs: ctx.pollIntervalMs } : {}) }, j);
  return { kind: 'run', plan, ...result };
}

export async function loadRun(ctx: Pick<UpgradeContext, 'client' | 'namespace' | 'journalFile'>): Promise<{ journal: RunJournal; source: 'cluster' | 'local'; store: JournalStore }> {
  const store = new JournalStore(ctx.client, ctx.namespace, ctx.journalFile);
  const found = await store.load();
  if (!found) {
    throw new NotFoundError(`No upgrade run found: no ConfigMap ${ctx.namespace}/lifeboat-upgrade and no journal at ${ctx.journalFile}.`, {
      hint: 'Start one with `lifeboat upgrade run`; if it used another --namespace or --journal-file, give the same.',
    });
  }
  return { ...found, store };
}

export async function runStatus(ctx: Pick<UpgradeContext, 'client' | 'namespace' | 'journalFile'>): Promise<{ journal: RunJournal; source: 'cluster' | 'local'; lock?: LockState }> {
  const { journal, source } = await loadRun(ctx);
  const lock = await new LeaseLock(ctx.client, ctx.namespace, journal.runId).state().catch(() => undefined);
  return { journal, source, ...(lock ? { lock } : {}) };
}

export type ResumeResult = { kind: 'finished'; journal: RunJournal; exitCode: ExitCodeT } | ({ kind: 'run' } & RunResult);

export async function resumeRun(ctx: UpgradeContext, opts: { action?: (runId: string) => Promise<NodeAction>; actionSpec?: RunSettings['action'] | undefined }): Promise<ResumeResult> {
  const emit = ctx.emit ?? (() => undefined);
  const { journal: j, source, store } = await loadRun(ctx);
  if (isFinished(j)) return { kind: 'finished', journal: j, exitCode: ExitCode.Success };
  if (source === 'local') emit({ type: 'warn', message: `the local journal copy ${ctx.journalFile} is newer than the cluster's: resuming from it` });
  if (opts.actionSpec) j.settings.action = opts.actionSpec;
  const action = opts.action ? await opts.action(j.runId) : undefined;
  if (!action) throw new Error('resume needs an action');
  await store.ensureNamespace();
  const lock = new LeaseLock(ctx.client, ctx.namespace, j.runId, ctx.lockDurationSeconds);
  const took = await lock.acquire({ takeOverRun: j.runId });
  if (took.tookOver) emit({ type: 'info', message: `took over the lock from ${took.tookOver} (${isDeadLocalHolder(parseHolder(took.tookOver)) ? 'that process is gone' : 'its lease had expired'})` });
  j.holder = lock.identity;
  j.history.push({ at: new Date().toISOString(), event: `resumed by ${lock.identity}` });
  emit({ type: 'info', message: `resuming run ${j.runId} to ${j.settings.target}` });
  const result = await executeRun({ client: ctx.client, journal: store, lock, action, signal: ctx.signal, emit, ...(ctx.pollIntervalMs ? { pollIntervalMs: ctx.pollIntervalMs } : {}) }, j);
  return { kind: 'run', ...result };
}

export interface AbortResult {
  runId: string;
  status: RunJournal['status'];
  uncordoned: string[];
  leftCordoned: { node: string; reason: string }[];
  lockReleased?: string | undefined;
  journal: RunJournal;
}

/**
 * Drops an unfinished run: uncordons the nodes the run cordoned, marks the journal aborted and
 * deletes the lock. A run whose holder is alive and renewing is refused unless force.
 */
export async function abortRun(ctx: Pick<UpgradeContext, 'client' | 'namespace' | 'journalFile' | 'emit'>, opts: { force: boolean }): Promise<AbortResult> {
  const emit = ctx.emit ?? (() => undefined);
  const { journal: j, store } = await loadRun(ctx);
  const lock = new LeaseLock(ctx.client, ctx.namespace, j.runId);
  const state = await lock.state();
  if (state?.holder && !state.expired && !isDeadLocalHolder(parseHolder(state.holder)) && !opts.force) {
    throw new BlockedError(`Upgrade run ${parseHolder(state.holder)?.runId ?? state.holder} is running (its lock was renewed at ${state.renewedAt ?? '?'} by ${state.holder}).`, {
      hint: 'Stop that process first (Ctrl-C puts its nodes back), or give --force if it is known to be dead on another machine.',
    });
  }
  const api = new NodeApi(ctx.client);
  const uncordoned: string[] = [];
  const leftCordoned: AbortResult['leftCordoned'] = [];
  if (!isFinished(j)) {
    for (const n of j.nodes) {
      if (!n.cordonedByRun) continue;
      try {
        const node = await api.getNode(n.node);
        const r = await setSchedulability(api, node, false);
        n.cordonedByRun = false;
        if (r.changed) uncordoned.push(n.node);
        emit({ type: 'info', node: n.node, message: `node/${n.node} uncordoned (the run had cordoned it${n.phase === 'action' || n.phase === 'wait' ? `; it stopped during its ${n.phase}: check the node` : ''})` });
      } catch (err) {
        leftCordoned.push({ node: n.node, reason: messageOf(err) });
      }
    }
    j.status = 'aborted';
    j.history.push({ at: new Date().toISOString(), event: `aborted${uncordoned.length ? `; uncordoned ${uncordoned.join(', ')}` : ''}` });
    await store.save(j);
  }
  const released = await lock.breakLock();
  return { runId: j.runId, status: j.status, uncordoned, leftCordoned, lockReleased: released, journal: j };
}
