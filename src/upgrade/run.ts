/**
 * Executing an upgrade run, step by step as the plan ordered them. Per batch:
 *
 *   re-check   each node's real state (a resume trusts the cluster, not the journal): a node
 *              already Ready at the target only needs its uncordon and gates;
 *   pre-flight the drain pre-flight for the batch against the cluster as it is now;
 *   cordon     every node of the batch (so no evicted pod lands on a batch-mate);
 *   drain      node by node, the drain's own code (policy/v1 evictions, PDBs, waits by UID);
 *   action     for every node of the batch at once;
 *   wait       until each node is Ready and reports the target kubelet version;
 *   uncordon   what the run cordoned (a node cordoned before the run stays cordoned);
 *   gates      node and DaemonSet pods Ready, the budgets back to allowing a disruption, the
 *              gate command.
 *
 * The journal is saved before every phase. On a failure or an interrupt the run stops, puts back
 * the schedulability of the batch's nodes (unless leaveCordoned), and records where it stopped.
 */
import pRetry from 'p-retry';
import { ExitCode, messageOf, type ExitCode as ExitCodeT } from '../cli/errors.js';
import { isTransientDrainError, NodeApi } from '../drain/api.js';
import { schedulabilityOf, setSchedulability } from '../drain/cordon.js';
import { drainNodes, type DrainConfig, type DrainEvent } from '../drain/drain.js';
import type { Node } from '../drain/types.js';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError } from '../kube/errors.js';
import { runGateCommand, type NodeAction } from './actions.js';
import { budgetGates, healthyBudgets, nodeGates, notAtTarget, waitAtTarget } from './gates.js';
import { enterPhase, PHASES, type JournalNode, type JournalStore, type Phase, type RunJournal, type RunSettings } from './journal.js';
import { hostId, type LeaseLock } from './lock.js';
import type { UpgradePlan } from './plan.js';
import { parseTargetVersion } from './skew.js';

export type RunEvent =
  | { type: 'phase'; node: string; phase: Phase; step: number; steps: number; nodeStartedAt?: string | undefined }
  | { type: 'info' | 'warn'; message: string; node?: string }
  | { type: 'output'; node: string; line: string }
  | { type: 'drain'; event: DrainEvent };

export interface RunDeps {
  client: KubeClient;
  journal: JournalStore;
  lock: LeaseLock;
  action: NodeAction;
  signal?: AbortSignal | undefined;
  emit?: ((e: RunEvent) => void) | undefined;
  pollIntervalMs?: number;
  /** How long an API server that does not answer is waited out by a drain (default 30 s). */
  apiRetryTimeoutMs?: number | undefined;
}

export interface RunResult {
  journal: RunJournal;
  exitCode: ExitCodeT;
}

export function newJournal(plan: UpgradePlan, settings: RunSettings, ids: { runId: string; holder: string; cluster: string }): RunJournal {
  const now = new Date().toISOString();
  return {
    apiVersion: 'lifeboat.io/v1',
    kind: 'UpgradeRun',
    runId: ids.runId,
    cluster: ids.cluster,
    status: 'running',
    seq: 0,
    createdAt: now,
    updatedAt: now,
    holder: ids.holder,
    settings,
    steps: plan.steps.map((s) => ({ step: s.step, role: s.role, nodes: s.nodes.map((n) => n.node) })),
    nodes: plan.steps.flatMap((s) => s.nodes.map((n) => ({ node: n.node, role: n.role, step: s.step, from: n.from, to: n.to, phase: 'pending' as const, cordonedByRun: false, durations: {} }))),
    history: [{ at: now, event: `run started by ${ids.holder}` }],
  };
}

/** A step that failed, for a node (or the whole batch). */
class StepFailure extends Error {
  constructor(
    message: string,
    readonly phase: Phase,
    readonly node?: string,
    readonly exitCode: ExitCodeT = ExitCode.Failure,
  ) {
    super(message);
  }
}

/** The previous process's action still runs on this host: the run stops before touching anything. */
class ActionStillRunning extends StepFailure {}

const before = (a: Phase, b: Phase) => PHASES.indexOf(a) < PHASES.indexOf(b);

/** Runs (or resumes) the journal's steps to the end, or to the first failure. The lock must be held. */
export async function executeRun(deps: RunDeps, j: RunJournal): Promise<RunResult> {
  const emit = deps.emit ?? (() => undefined);
  // Aborts drains, waits and gates: on an interrupt, or when the lock is lost. An action in
  // progress only stops on an interrupt: a node upgrade is never cut short because of the lock;
  // the run stops after it.
  const ac = new AbortController();
  let lockLost: string | undefined;
  const onAbort = () => ac.abort();
  deps.signal?.addEventListener('abort', onAbort, { once: true });
  if (deps.signal?.aborted) ac.abort();
  deps.lock.startRenewing();
  deps.lock.onLost((reason) => {
    lockLost = reason;
    emit({ type: 'warn', message: `Stopping: ${reason}.` });
    ac.abort();
  });
  const actionSignal = deps.signal;
  const api = new NodeApi(deps.client, ac.signal);
  // Putting nodes back must work after an interrupt: no signal.
  const restoreApi = new NodeApi(deps.client);
  const target = parseTargetVersion(j.settings.target);
  const save = () => deps.journal.save(j);
  const steps = j.steps.length;

  const phase = async (nodes: JournalNode[], p: Phase) => {
    if (lockLost) throw new Error(`The run lost its lock: ${lockLost}.`);
    const now = new Date();
    for (const n of nodes) {
      enterPhase(n, p, now);
      emit({ type: 'phase', node: n.node, phase: p, step: n.step, steps, nodeStartedAt: n.startedAt });
    }
    await save();
  };

  let batch: JournalNode[] = [];
  try {
    j.status = 'running';
    delete j.failure;
    await save();
    for (const step of j.steps) {
      batch = j.nodes.filter((n) => n.step === step.step && n.phase !== 'done');
      if (batch.length === 0) continue;
      emit({ type: 'info', message: `step ${step.step}/${steps}: ${step.role} ${batch.map((n) => n.node).join(', ')}` });
      await runBatch(batch);
    }
    j.status = 'succeeded';
    j.history.push({ at: new Date().toISOString(), event: 'run succeeded' });
    await save();
    await deps.lock.release().catch((e: unknown) => emit({ type: 'warn', message: `Could not release the upgrade lock: ${messageOf(e)}. It expires by itself.` }));
    return { journal: j, exitCode: ExitCode.Success };
  } catch (err) {
    return await stop(err);
  } finally {
    deps.signal?.removeEventListener('abort', onAbort);
    await deps.lock.stopRenewing();
  }

  /**
   * Where a node of the batch really stands. The journal says which phase it reached; the
   * cluster says whether its kubelet is at the target:
   *   pending                  at the target: nothing to do; else a full pass;
   *   cordon, drain            at the target: wait (no action); else start over from the cordon;
   *   action, not failed       the action may still be running or may have finished: at the
   *                            target, wait; else the same attempt again (a Job is adopted, a
   *                            command still running is refused);
   *   action, failed           at the target, wait; else a new attempt from the cordon (the
   *                            failure put the node back in service);
   *   wait, uncordon, gates    the action finished: wait (again), uncordon, gates.
   */
  async function recheck(n: JournalNode, node: Node): Promise<void> {
    const at = notAtTarget(node, target) === undefined;
    if (n.phase === 'pending') {
      if (!at) return;
      n.note = `already Ready at ${j.settings.target} when its turn came`;
      emit({ type: 'info', node: n.node, message: `node ${n.node} is already Ready at ${j.settings.target}: nothing to do` });
      await phase([n], 'done');
      return;
    }
    if (at && before(n.phase, 'wait')) {
      n.note = `found Ready at ${j.settings.target} on resume; the action was not run again`;
      emit({ type: 'info', node: n.node, message: `node ${n.node} is Ready at ${j.settings.target}: going on with its uncordon and gates` });
      n.phase = 'wait';
      return;
    }
    if (!before(n.phase, 'wait')) {
      n.phase = 'wait';
      return;
    }
    if (n.phase === 'action' && !n.error) {
      if (n.actionPid && n.actionHost === hostId() && processAlive(n.actionPid)) {
        throw new ActionStillRunning(`The action for node ${n.node} started by the previous process is still running (pid ${n.actionPid}); wait for it to end (or stop it), then resume.`, 'action', n.node, ExitCode.Blocked);
      }
      emit({ type: 'warn', node: n.node, message: `node ${n.node}: its action was cut short and the node is not at ${j.settings.target}: running the action again (attempt ${n.attempt ?? 1})` });
      return;
    }
    emit({ type: 'info', node: n.node, message: `node ${n.node} is not at ${j.settings.target} yet: starting it over from its cordon` });
    n.phase = 'pending';
  }

  async function runBatch(nodes: JournalNode[]): Promise<void> {
    for (const n of nodes) await recheck(n, await api.getNode(n.node));
    const active = nodes.filter((n) => n.phase !== 'done');
    if (active.length === 0) return;
    const fresh = active.filter((n) => n.phase === 'pending');
    const budgets = await healthyBudgets(api, active.map((n) => n.node));

    if (fresh.length > 0) {
      const cfg = drainConfig(j.settings);
      const pf = await drainNodes(api, await Promise.all(fresh.map((n) => api.getNode(n.node))), { ...cfg, preflight: 'only' });
      const blockers = pf.preflight?.blockers ?? [];
      if (blockers.length > 0) {
        const list = blockers.slice(0, 5).map((b) => `${b.object}: ${b.message}`).join('; ');
        throw new StepFailure(`The drain pre-flight for ${fresh.map((n) => n.node).join(', ')} found ${blockers.length} blocker(s): ${list}${blockers.length > 5 ? '; …' : ''}.`, 'cordon', fresh[0]!.node, ExitCode.Blocked);
      }
      // The intent is saved before the cordon: a crash right after it still knows whose cordon it is.
      const live = new Map<string, Node>();
      for (const n of fresh) {
        const node = await api.getNode(n.node);
        live.set(n.node, node);
        n.before ??= schedulabilityOf(node);
        if (schedulabilityOf(node) === 'schedulable') n.cordonedByRun = true;
        delete n.error;
      }
      await phase(fresh, 'cordon');
      for (const n of fresh) {
        await setSchedulability(api, live.get(n.node)!, true);
        if (n.before === 'cordoned') emit({ type: 'warn', node: n.node, message: `node ${n.node} was cordoned before the run: it stays cordoned after its upgrade` });
      }
      for (const n of fresh) {
        await phase([n], 'drain');
        const report = await drainNodes(api, [await api.getNode(n.node)], { ...cfg, preflight: 'skip', leaveCordoned: true, cordonedByCaller: true, transientWindowMs: deps.apiRetryTimeoutMs ?? 30_000 }, { signal: ac.signal, onEvent: (event) => emit({ type: 'drain', event }) });
        n.evicted = (n.evicted ?? 0) + (report.nodes[0]?.evicted.length ?? 0);
        if (report.failure) throw new StepFailure(report.failure.message, 'drain', n.node, report.failure.exitCode);
      }
    }

    const toAct = active.filter((n) => before(n.phase, 'wait'));
    if (toAct.length > 0) {
      for (const n of toAct) {
        // A new attempt unless the last one was cut short (then a Job of that attempt is adopted).
        if (n.phase !== 'action' || n.error) n.attempt = (n.attempt ?? 0) + 1;
        delete n.error;
        delete n.actionPid;
      }
      await phase(toAct, 'action');
      const results = await Promise.allSettled(
        toAct.map((n) =>
          deps.action.run({
            node: n.node,
            version: j.settings.target,
            runId: j.runId,
            attempt: n.attempt ?? 1,
            signal: actionSignal,
            output: (line) => emit({ type: 'output', node: n.node, line }),
            onStart: (pid) => {
              n.actionPid = pid;
              n.actionHost = hostId();
              save().catch(() => undefined);
            },
          }),
        ),
      );
      for (const n of toAct) delete n.actionPid;
      const failed = results.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) throw new StepFailure(messageOf((results[failed] as PromiseRejectedResult).reason), 'action', toAct[failed]!.node);
    }

    const toWait = active.filter((n) => before(n.phase, 'uncordon'));
    if (toWait.length > 0) {
      await phase(toWait, 'wait');
      const waits = await Promise.allSettled(
        toWait.map((n) =>
          waitAtTarget(api, n.node, target, {
            timeoutMs: j.settings.waitTimeoutMs,
            signal: ac.signal,
            ...(deps.pollIntervalMs ? { pollIntervalMs: deps.pollIntervalMs } : {}),
            onWaiting: (why) => emit({ type: 'info', node: n.node, message: `waiting for node ${n.node}: ${why}` }),
          }),
        ),
      );
      const failed = waits.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) throw new StepFailure(messageOf((waits[failed] as PromiseRejectedResult).reason), 'wait', toWait[failed]!.node);
    }

    const toUncordon = active.filter((n) => before(n.phase, 'gates'));
    if (toUncordon.length > 0) {
      await phase(toUncordon, 'uncordon');
      for (const n of toUncordon) {
        if (!n.cordonedByRun) continue;
        await setSchedulability(api, await api.getNode(n.node), false);
        n.cordonedByRun = false;
      }
    }

    await phase(active, 'gates');
    const gateOpts = { timeoutMs: j.settings.gateTimeoutMs, signal: ac.signal, ...(deps.pollIntervalMs ? { pollIntervalMs: deps.pollIntervalMs } : {}) };
    for (const n of active) {
      await nodeGates(api, n.node, gateOpts).catch((err: unknown) => {
        throw new StepFailure(messageOf(err), 'gates', n.node);
      });
    }
    await budgetGates(api, { ...gateOpts, budgets }).catch((err: unknown) => {
      throw new StepFailure(messageOf(err), 'gates', active[0]!.node);
    });
    if (j.settings.gateCommand) {
      for (const n of active) {
        await runGateCommand(j.settings.gateCommand, { node: n.node, version: j.settings.target, signal: ac.signal, timeoutMs: j.settings.gateTimeoutMs, output: (line) => emit({ type: 'output', node: n.node, line }) }).catch(
          (err: unknown) => {
            throw new StepFailure(messageOf(err), 'gates', n.node);
          },
        );
      }
    }
    await phase(active, 'done');
  }

  async function stop(err: unknown): Promise<RunResult> {
    const interrupted = ac.signal.aborted && !lockLost && deps.signal?.aborted === true;
    const f = err instanceof StepFailure ? err : undefined;
    const message = interrupted ? 'Interrupted.' : lockLost ? `The run lost its lock: ${lockLost}.` : messageOf(err);
    const at = new Date().toISOString();
    const failedNode = f?.node ? j.nodes.find((n) => n.node === f.node) : batch.find((n) => n.phase !== 'done' && n.phase !== 'pending');
    const stillRunning = err instanceof ActionStillRunning;
    // A node whose action still runs keeps its phase without an error: the next resume looks again.
    if (failedNode && !stillRunning) failedNode.error = { phase: f?.phase ?? failedNode.phase, message, at };

    if (stillRunning) {
      emit({ type: 'warn', message: 'Nothing was changed: the nodes stay as they are while that action runs.' });
    } else if (lockLost) {
      // Another process may hold the lock now and be working on these very nodes: touch nothing
      // in the cluster, keep the local copy of the journal.
      emit({ type: 'warn', message: 'The lock is lost: the nodes are left as they are and only the local journal copy is written.' });
    } else {
      // Put back what the run cordoned in this batch.
      for (const n of batch) {
        if (!n.cordonedByRun) continue;
        if (j.settings.leaveCordoned) {
          emit({ type: 'info', node: n.node, message: `node ${n.node} left cordoned (--leave-cordoned)` });
          continue;
        }
        try {
          await pRetry(async () => setSchedulability(restoreApi, await restoreApi.getNode(n.node), false), {
            retries: 24,
            minTimeout: 1000,
            maxTimeout: 5000,
            shouldRetry: ({ error }) => isTransientDrainError(error) || (error instanceof KubeApiError && error.status === 429),
          });
          n.cordonedByRun = false;
          emit({ type: 'info', node: n.node, message: `node/${n.node} uncordoned: it was schedulable before the run` });
        } catch (e) {
          emit({ type: 'warn', node: n.node, message: `Could not uncordon node ${n.node}: ${messageOf(e)}. Run \`lifeboat upgrade abort\` or \`lifeboat node uncordon ${n.node}\` once the API server answers.` });
        }
      }
    }

    const anyDone = j.nodes.some((n) => n.phase === 'done' && !n.note?.startsWith('already'));
    // 7 promises that nothing changed: no pod evicted, no node left cordoned, no action run.
    const unchanged = !anyDone && !batch.some((n) => (n.evicted ?? 0) > 0 || n.cordonedByRun || (n.attempt ?? 0) > 0);
    const stepCode = f?.exitCode ?? (err as { exitCode?: ExitCodeT }).exitCode ?? ExitCode.Failure;
    const code: ExitCodeT = interrupted
      ? ExitCode.Interrupted
      : stillRunning
        ? ExitCode.Blocked
        : anyDone
        ? ExitCode.Partial
        : stepCode === ExitCode.Blocked && !unchanged
          ? ExitCode.Failure
          : stepCode;
    j.status = interrupted ? 'interrupted' : 'failed';
    const where = failedNode ? ` at node ${failedNode.node}, ${failedNode.error?.phase ?? failedNode.phase}` : '';
    j.failure = { ...(failedNode ? { node: failedNode.node, phase: failedNode.error?.phase ?? failedNode.phase } : {}), message, exitCode: code, at };
    j.history.push({ at, event: `run ${j.status}${where}: ${message}` });
    try {
      if (lockLost) await deps.journal.saveLocal(j);
      else await save();
    } catch (e) {
      emit({ type: 'warn', message: messageOf(e) });
    }
    if (!lockLost) {
      try {
        await deps.lock.release();
      } catch (e) {
        emit({ type: 'warn', message: `Could not release the upgrade lock: ${messageOf(e)}. It expires by itself.` });
      }
    }
    return { journal: j, exitCode: code };
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

export function drainConfig(s: RunSettings): DrainConfig {
  return {
    ignoreDaemonSets: s.drain.ignoreDaemonSets,
    deleteEmptyDirData: s.drain.deleteEmptyDirData,
    force: s.drain.force,
    skipWaitForDeleteTimeoutSeconds: s.drain.skipWaitForDeleteTimeoutSeconds,
    gracePeriodSeconds: s.drain.gracePeriodSeconds,
    timeoutMs: s.drain.timeoutMs,
    disableEviction: false,
    chunkSize: 500,
    dryRun: 'none',
    concurrency: 50,
    preflight: 'run',
    leaveCordoned: s.leaveCordoned,
  };
}
