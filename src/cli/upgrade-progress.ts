import { createRequire } from 'node:module';
import type { RunEvent } from '../upgrade/run.js';
import { formatDuration } from './duration.js';
import type { Logger } from './log.js';
import { runEventLogger } from './upgrade-run-report.js';

export interface UpgradeProgress {
  onEvent(e: RunEvent): void;
  stop(): void;
}

interface NodeLine {
  node: string;
  step: number;
  steps: number;
  phase: string;
  /** When the node's work began (its elapsed time counts from there). */
  since: number;
  /** Frozen once the node is done. */
  doneAfter?: number;
}

/** "[step 2/5] worker-3   drain     0:41": one line per node, the elapsed time ticking. */
export function formatNodeLine(l: NodeLine, now = Date.now(), width = 0): string {
  const elapsed = formatDuration(l.doneAfter ?? now - l.since);
  return `[step ${l.step}/${l.steps}] ${l.node.padEnd(width)}  ${l.phase.padEnd(8)}  ${elapsed}`;
}

/**
 * On a terminal: a live line per node (its step, phase and elapsed time) with the log above it.
 * Otherwise the run's events as log lines (JSON when stderr is not a terminal).
 */
export function upgradeProgress(logger: Logger, stream: NodeJS.WriteStream = process.stderr): UpgradeProgress {
  const fallback = runEventLogger(logger);
  if (!stream.isTTY) return { onEvent: fallback, stop: () => undefined };
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
  const multi = new cliProgress.MultiBar({ stream, format: '{line}', hideCursor: true, clearOnComplete: false, fps: 2, autopadding: false, emptyOnZero: true }, cliProgress.Presets.legacy);
  const lines = new Map<string, { line: NodeLine; bar: ReturnType<typeof multi.create> }>();
  let width = 0;
  let stopped = false;
  const render = () => {
    const now = Date.now();
    for (const { line, bar } of lines.values()) bar.update(0, { line: formatNodeLine(line, now, width) });
  };
  const timer = setInterval(render, 1000);
  timer.unref();
  // Other messages go above the node lines, through the same logger wording.
  // Before the first node line exists (the snapshot, the lock), plain writes; after it, above the lines.
  const write = (text: string) => (lines.size === 0 || stopped ? stream.write(text) : multi.log(text));
  const above = runEventLogger({
    debug: () => undefined,
    info: (m) => write(`${m}\n`),
    warn: (m) => write(`warning: ${m}\n`),
    error: (m) => write(`error: ${m}\n`),
  });
  return {
    onEvent(e) {
      if (e.type !== 'phase') {
        above(e);
        return;
      }
      let entry = lines.get(e.node);
      if (!entry) {
        const line: NodeLine = { node: e.node, step: e.step, steps: e.steps, phase: e.phase, since: e.nodeStartedAt ? Date.parse(e.nodeStartedAt) : Date.now() };
        width = Math.max(width, e.node.length);
        entry = { line, bar: multi.create(1, 0, { line: formatNodeLine(line, Date.now(), width) }) };
        lines.set(e.node, entry);
      }
      entry.line.phase = e.phase;
      if (e.phase === 'done') entry.line.doneAfter = Date.now() - entry.line.since;
      render();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      render();
      // Draws once more: the log lines still buffered come out before the bars stop.
      multi.update();
      multi.stop();
    },
  };
}
