import { createRequire } from 'node:module';
import { formatBytes } from './output.js';

export interface ByteProgress {
  update(done: number, total: number): void;
  stop(): void;
}

/** A bytes-and-rate bar on stderr when stderr is a terminal; silent otherwise. */
export function byteProgress(label: string, stream: NodeJS.WriteStream = process.stderr): ByteProgress {
  if (!stream.isTTY) return { update: () => undefined, stop: () => undefined };
  // Loaded only when there is a terminal to draw on.
  const cliProgress = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
  const started = Date.now();
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `${label} [{bar}] {percentage}% | {doneText} / {totalText} | {rate}/s`,
      hideCursor: true,
      clearOnComplete: false,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let begun = false;
  return {
    update(done, total) {
      const secs = Math.max(0.001, (Date.now() - started) / 1000);
      const payload = { doneText: formatBytes(done), totalText: formatBytes(Math.max(total, done)), rate: formatBytes(Math.round(done / secs)) };
      if (!begun) {
        bar.start(Math.max(total, done, 1), done, payload);
        begun = true;
      } else {
        bar.setTotal(Math.max(total, done, 1));
        bar.update(done, payload);
      }
    },
    stop() {
      if (begun) bar.stop();
    },
  };
}
