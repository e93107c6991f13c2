/**
 * The four upgrade commands as functions of data: start a run (plan, lock, snapshot, journal,
 * execute), resume it, show it, abort it.
 */
import { randomBytes } from 'node:crypto';
import { BlockedError, ExitCode, messageOf, NotFoundError, UsageError, type ExitCode as ExitCodeT } from '../cli/errors.js';
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
  /** How long an API server that does not answer is waited out (journal writes, drains); default 30 s. */
  apiRetryTimeoutMs?: number | undefined;
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
  const journal = new JournalStore(ctx.client, ctx.namespace, ctx.journalFile, ctx.apiRetryTimeoutMs);
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
  // Renewed from now on: the snapshot may take longer than the lease.
  lock.startRenewing();
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
  if (lock.lost) throw new BlockedError(`The upgrade lock was lost while the snapshot was taken (${lock.lost}); no node was touched.`);
  const j = newJournal(plan, { ...opts.settings, target: plan.target }, { runId, holder: lock.identity, cluster: ctx.client.server });
  j.snapshot = snapshot;
  emit({ type: 'info', message: `run ${runId}: ${plan.steps.length} steps, ${j.nodes.length} nodes; journal in ConfigMap ${ctx.namespace}/lifeboat-upgrade and ${ctx.journalFile}` });
  const result = await executeRun({ client: ctx.client, journal, lock, action, signal: ctx.signal, emit, apiRetryTimeoutMs: ctx.apiRetryTimeoutMs, ...(ctx.pollIntervalMs ? { pollIntervalMs: ctx.pollIntervalMs } : {}) }, j);
  return { kind: 'run', plan, ...result };
}

export async function loadRun(ctx: Pick<UpgradeContext, 'client' | 'namespace' | 'journalFile' | 'apiRetryTimeoutMs'>): Promise<{ journal: RunJournal; source: 'cluster' | 'local'; store: JournalStore }> {
  const store = new JournalStore(ctx.client, ctx.namespace, ctx.journalFile, ctx.apiRetryTimeoutMs);
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

export interface ResumeOptions {
  /** Makes the action for the run's spec (checked before anything changes). */
  action: (spec: RunSettings['action'], runId: string) => Promise<NodeAction>;
  /** Given again on the command line: replaces the journal's. */
  actionSpec?: RunSettings['action'] | undefined;
  gateCommand?: string[] | undefined;
}

/**
 * Continues an unfinished run. The commands a resume runs on this machine come from the local
 * journal copy (this user's file) or the command line, never from the ConfigMap alone: whoever
 * can write ConfigMaps in the namespace must not choose what runs here.
 */
export async function resumeRun(ctx: UpgradeContext, opts: ResumeOptions): Promise<ResumeResult> {
  const emit = ctx.emit ?? (() => undefined);
  const first = await loadRun(ctx);
  if (isFinished(first.journal)) return { kind: 'finished', journal: first.journal, exitCode: ExitCode.Success };
  await first.store.ensureNamespace();
  const lock = new LeaseLock(ctx.client, ctx.namespace, first.journal.runId, ctx.lockDurationSeconds);
  const took = await lock.acquire({ takeOverRun: first.journal.runId });
  lock.startRenewing();
  try {
    if (took.tookOver) emit({ type: 'info', message: `took over the lock from ${took.tookOver} (${isDeadLocalHolder(parseHolder(took.tookOver)) ? 'that process is gone' : 'its lease had expired'})` });
    // Read again under the lock: the journal as the last holder left it.
    const { journal: j, source, store } = await loadRun(ctx);
    if (j.runId !== first.journal.runId || isFinished(j)) throw new BlockedError(`The run journal changed while the lock was taken (now run ${j.runId}, ${j.status}); nothing was done.`);
    if (source === 'local') emit({ type: 'warn', message: `the local journal copy ${ctx.journalFile} is newer than the cluster's: resuming from it` });
    const local = await store.loadLocal().catch(() => undefined);
    const trusted = local?.runId === j.runId && JSON.stringify([local.settings.action, local.settings.gateCommand]) === JSON.stringify([j.settings.action, j.settings.gateCommand]);
    if (opts.actionSpec) j.settings.action = opts.actionSpec;
    if (opts.gateCommand) j.settings.gateCommand = opts.gateCommand;
    const runsHere = (a: RunSettings['action']) => a.kind === 'command' || a.kind === 'shell' || a.kind === 'job';
    if (!trusted && ((!opts.actionSpec && runsHere(j.settings.action)) || (!opts.gateCommand && j.settings.gateCommand))) {
      throw new UsageError(
        `Run ${j.runId} was started elsewhere (no matching local journal copy at ${ctx.journalFile}): give its action${j.settings.gateCommand ? ' and --gate-command' : ''} again rather than running what the ConfigMap says.`,
        { hint: `The journal's action: ${JSON.stringify(j.settings.action)}${j.settings.gateCommand ? `; gate command: ${JSON.stringify(j.settings.gateCommand)}` : ''}.` },
      );
    }
    const action = await opts.action(j.settings.action, j.runId);
    j.holder = lock.identity;
    j.history.push({ at: new Date().toISOString(), event: `resumed by ${lock.identity}` });
    emit({ type: 'info', message: `resuming run ${j.runId} to ${j.settings.target}` });
    const result = await executeRun({ client: ctx.client, journal: store, lock, action, signal: ctx.signal, emit, apiRetryTimeoutMs: ctx.apiRetryTimeoutMs, ...(ctx.pollIntervalMs ? { pollIntervalMs: ctx.pollIntervalMs } : {}) }, j);
    return { kind: 'run', ...result };
  } catch (err) {
    await lock.release().catch(() => undefined);
    throw err;
  }
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
export async function abortRun(ctx: Pick<UpgradeContext, 'client' | 'namespace' | 'journalFile' | 'emit' | 'apiRetryTimeoutMs'>, opts: { force: boolean }): Promise<AbortResult> {
  const emit = ctx.emit ?? (() => undefined);
  const first = await loadRun(ctx);
  // Under the lock, so no resume works on these nodes meanwhile. A live holder is refused unless forced.
  const lock = new LeaseLock(ctx.client, ctx.namespace, first.journal.runId);
  let took: { tookOver?: string };
  try {
    took = await lock.acquire({ takeOverRun: first.journal.runId, force: opts.force });
  } catch (err) {
    if (err instanceof BlockedError) throw new BlockedError(err.message, { hint: 'Stop that process first (Ctrl-C puts its nodes back), or give --force if it is known to be dead on another machine.' });
    throw err;
  }
  const { journal: j, store } = await loadRun(ctx);
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
  await lock.release();
  const released = took.tookOver;
  return { runId: j.runId, status: j.status, uncordoned, leftCordoned, lockReleased: released, journal: j };
}
