import { renderBlockers, renderWarnings } from './blockers.js';
import { formatDuration } from './duration.js';
import { renderTable } from './output.js';
import type { DrainReport } from '../drain/drain.js';

/** The people's view of a drain: blockers, one line per node, and what remains with the reason. */
export function renderDrainReport(r: DrainReport): string {
  const parts: string[] = [];
  const pf = r.preflight;
  if (pf) {
    const verdict = r.outcome === 'blocked' ? 'nothing was changed' : r.outcome === 'preflight-only' ? 'a drain would stop here' : 'ignored (--ignore-preflight)';
    parts.push(renderBlockers(pf.blockers, verdict));
    parts.push(renderWarnings(pf.warnings));
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
