import type { DrainEvent } from '../drain/drain.js';
import { progressOf, type JournalNode, type RunJournal } from '../upgrade/journal.js';
import type { LockState } from '../upgrade/lock.js';
import type { RunEvent } from '../upgrade/run.js';
import { formatDuration } from './duration.js';
import type { Logger } from './log.js';
import { renderTable } from './output.js';

export interface UpgradeStatus {
  journal: RunJournal;
  source: 'cluster' | 'local';
  lock?: LockState | undefined;
}

function elapsed(n: JournalNode, now: number): string {
  if (!n.startedAt) return '';
  const end = n.finishedAt ? Date.parse(n.finishedAt) : now;
  return formatDuration(end - Date.parse(n.startedAt));
}

/** The journal as people read it: the run, then a row per node in run order. */
export function renderJournal(j: RunJournal, extra: { source?: string; lock?: LockState | undefined } = {}): string {
  const now = Date.now();
  const { done, total } = progressOf(j);
  const lines = [
    `Upgrade run ${j.runId} to ${j.settings.target}: ${j.status}, ${done}/${total} nodes done${extra.source === 'local' ? ' (from the local journal copy)' : ''}`,
    `  started ${j.createdAt}, last update ${j.updatedAt}; action: ${describeAction(j)}`,
  ];
  if (j.snapshot) lines.push('skipped' in j.snapshot ? `  etcd snapshot: skipped (${j.snapshot.reason})` : `  etcd snapshot: ${j.snapshot.id} in ${j.snapshot.store}${j.snapshot.verified ? ', verified' : ''}`);
  if (extra.lock) lines.push(`  lock: ${extra.lock.holder ? `held by ${extra.lock.holder}${extra.lock.renewedAt ? `, renewed ${extra.lock.renewedAt}` : ''}${extra.lock.expired ? ' (expired)' : ''}` : 'free'}`);
  lines.push('');
  const rows = j.nodes.map((n) => [
    `${n.step}/${j.steps.length}`,
    n.node,
    n.role,
    `${n.from} -> ${n.to}`,
    n.error ? `${n.phase} (failed)` : n.phase,
    elapsed(n, now),
    n.error ? n.error.message : (n.note ?? (n.cordonedByRun ? 'cordoned by this run' : '')),
  ]);
  lines.push(renderTable(['STEP', 'NODE', 'ROLE', 'VERSION', 'PHASE', 'ELAPSED', 'NOTE'], rows));
  if (j.failure && j.status !== 'succeeded') {
    lines.push('');
    lines.push(`Stopped${j.failure.node ? ` at node ${j.failure.node} (${j.failure.phase})` : ''}: ${j.failure.message}`);
    if (j.status === 'failed' || j.status === 'interrupted') lines.push('Fix the cause, then `lifeboat upgrade resume`; or `lifeboat upgrade abort` to drop the run and uncordon what it cordoned.');
  }
  return lines.join('\n');
}

function describeAction(j: RunJournal): string {
  const a = j.settings.action;
  switch (a.kind) {
    case 'command':
      return a.argv.join(' ');
    case 'shell':
      return `sh -c ${JSON.stringify(a.script)}`;
    case 'job':
      return `Job ${a.image}`;
    case 'external':
      return 'wait for an external upgrade';
  }
}

/** Progress: a line per node and phase with the step and the node's elapsed time (JSON lines when not a terminal). */
export function runEventLogger(logger: Logger): (e: RunEvent) => void {
  return (e) => {
    switch (e.type) {
      case 'phase': {
        const since = e.nodeStartedAt ? formatDuration(Date.now() - Date.parse(e.nodeStartedAt)) : '0s';
        logger.info(`[step ${e.step}/${e.steps}] node ${e.node}: ${e.phase} (${since})`, { node: e.node, phase: e.phase, step: e.step });
        break;
      }
      case 'info':
        logger.info(e.message, e.node ? { node: e.node } : undefined);
        break;
      case 'warn':
        logger.warn(e.message, e.node ? { node: e.node } : undefined);
        break;
      case 'output':
        logger.info(`  ${e.node}| ${e.line}`, { node: e.node, output: true });
        break;
      case 'drain':
        drainLine(logger, e.event);
        break;
    }
  };
}

function drainLine(logger: Logger, e: DrainEvent): void {
  switch (e.type) {
    case 'warning':
      logger.warn(e.message, { node: e.node });
      break;
    case 'gone':
      logger.debug(`pod ${e.pod} evicted`, { node: e.node });
      break;
    case 'blocked':
      logger.warn(`pod ${e.pod}: ${e.message}`, { node: e.node });
      break;
    case 'drained':
      logger.info(`node/${e.node} drained (${e.evicted} pods evicted)`, { node: e.node });
      break;
    default:
      break;
  }
}
