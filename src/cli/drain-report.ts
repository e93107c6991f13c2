import { formatDuration } from './duration.js';
import { renderTable } from './output.js';
import type { DrainReport } from '../drain/drain.js';

/** The people's view of a drain: blockers, one line per node, and what remains with the reason. */
export function renderDrainReport(r: DrainReport): string {
  const parts: string[] = [];
  const pf = r.preflight;
  if (pf) {
    if (pf.blockers.length > 0) {
      const verdict = r.outcome === 'blocked' ? 'nothing was changed' : r.outcome === 'preflight-only' ? 'a drain would stop here' : 'ignored (--ignore-preflight)';
      parts.push(`PRE-FLIGHT: ${pf.blockers.length} blocker(s); ${verdict}\n`);
      parts.push(renderTable(['NODE', 'BLOCKER', 'OBJECT', 'PROBLEM', 'FIX'], pf.blockers.map((b) => [b.node, b.kind, b.object, b.message, b.fix])));
    } else {
      parts.push('PRE-FLIGHT: no blockers\n');
    }
    for (const w of pf.warnings) parts.push(`warning: ${w.node}: ${w.object}: ${w.message}\n`);
    if (r.outcome === 'preflight-only' || r.outcome === 'blocked') {
      const plan = pf.nodes.map((n) => [n.node, String(n.evict.length), String(n.skip.length)]);
      parts.push('\n' + renderTable(['NODE', 'TO EVICT', 'SKIPPED'], plan));
      return parts.join('');
    }
    parts.push('\n');
  }
  parts.push(
    renderTable(
      ['NODE', 'BEFORE', 'AFTER', 'OUTCOME', 'EVICTED', 'SKIPPED', 'REMAINING', 'TIME'],
      r.nodes.map((n) => [n.node, n.before, n.after, n.outcome, String(n.evicted.length), String(n.skipped.length), String(n.remaining.length), n.durationMs ? formatDuration(n.durationMs) : '-']),
    ),
  );
  const remaining = r.nodes.flatMap((n) => n.remaining.map((s) => [n.node, s.pod, s.reason]));
  if (remaining.length > 0) parts.push('\n' + renderTable(['NODE', 'REMAINING POD', 'WHY'], remaining));
  for (const n of r.nodes) for (const w of n.warnings) parts.push(`warning: ${w}\n`);
  if (r.failure) parts.push(`\nFAILED: ${r.failure.message}\n`);
  return parts.join('');
}
