import { renderTable } from './output.js';

/** A pre-flight blocker as printed: the drain's, or an upgrade plan's (which adds its step). */
export interface BlockerRow {
  node: string;
  kind: string;
  object: string;
  message: string;
  fix: string;
  step?: number;
}

/** "PRE-FLIGHT: 2 blocker(s); <verdict>" and one row per blocker, or "PRE-FLIGHT: no blockers". */
export function renderBlockers(blockers: readonly BlockerRow[], verdict: string): string {
  if (blockers.length === 0) return 'PRE-FLIGHT: no blockers\n';
  const withStep = blockers.some((b) => b.step !== undefined);
  const headers = [...(withStep ? ['STEP'] : []), 'NODE', 'BLOCKER', 'OBJECT', 'PROBLEM', 'FIX'];
  const rows = blockers.map((b) => [...(withStep ? [b.step === undefined ? '-' : String(b.step)] : []), b.node, b.kind, b.object, b.message, b.fix]);
  return `PRE-FLIGHT: ${blockers.length} blocker(s); ${verdict}\n` + renderTable(headers, rows);
}

/** "warning: <node>: <object>: <message>", one line each. */
export function renderWarnings(warnings: readonly { node?: string | undefined; object?: string | undefined; message: string }[]): string {
  return warnings.map((w) => `warning: ${[w.node, w.object, w.message].filter((x) => x).join(': ')}\n`).join('');
}
