import type { UpgradePlan } from '../upgrade/plan.js';
import { renderBlockers, renderWarnings } from './blockers.js';
import { renderTable } from './output.js';

const SKIPPED: Record<UpgradePlan['skipped'][number]['reason'], string> = {
  'at-target': 'skipped: already at the target',
  'newer-than-target': 'skipped: newer than the target',
  'unknown-version': 'blocked: kubelet version unreadable',
};

/** The people's view of a plan: one line per node in run order, then skew, blockers and the verdict. */
export function renderUpgradePlan(p: UpgradePlan): string {
  const parts: string[] = [`UPGRADE PLAN: ${p.target} (API server ${p.apiServer}); workers ${p.maxUnavailable} at a time\n`];
  const rows: string[][] = [];
  for (const s of p.steps) {
    for (const n of s.nodes) {
      const notes = [n.ready ? '' : 'not ready', n.cordoned ? 'cordoned' : ''].filter((x) => x);
      const batch = `${s.role === 'control-plane' ? 'control-plane' : 'workers'} ${s.batch}/${s.of}`;
      rows.push([String(s.step), batch, n.node, n.role, `${n.from} -> ${n.to}`, n.status + (notes.length ? ` (${notes.join(', ')})` : '')]);
    }
  }
  for (const k of p.skipped) rows.push(['-', '-', k.node, k.role, k.version || '?', SKIPPED[k.reason]]);
  if (rows.length > 0) parts.push(renderTable(['STEP', 'BATCH', 'NODE', 'ROLE', 'KUBELET', 'STATUS'], rows));

  const verdict = 'nothing was changed';
  if (p.skew.length > 0) {
    parts.push(`\nSKEW: ${p.skew.length} violation(s); ${verdict}\n`);
    parts.push(renderTable(['RULE', 'NODE', 'PROBLEM', 'FIX'], p.skew.map((f) => [f.rule, f.node ?? '-', f.message, f.fix])));
  } else {
    parts.push('\nSKEW: within the version skew policy at every step\n');
  }
  // With the target refused there are no batches to pre-flight.
  if (p.steps.length > 0 || p.blockers.length > 0) parts.push('\n' + renderBlockers(p.blockers, verdict));
  parts.push(renderWarnings(p.warnings));

  if (p.outcome === 'nothing-to-do') parts.push(`\nNothing to do: every node in scope already runs ${p.target}.\n`);
  else if (p.outcome === 'blocked') parts.push(`\nBLOCKED: ${p.skew.length} skew violation(s), ${p.blockers.length} blocker(s); nothing was changed.\n`);
  else parts.push(`\nOK: ${p.steps.length} step(s), ${p.steps.reduce((a, s) => a + s.nodes.length, 0)} node(s) to upgrade; nothing was changed.\n`);
  return parts.join('');
}
