/**
 * --metrics-file: what a backup run leaves for a node-exporter textfile collector or a sidecar to
 * scrape, in OpenMetrics text. The last success timestamp survives failed runs: it is carried over
 * from the file a previous run left, so "no success for two periods" can be alerted on.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import { withEnv } from './env.js';

export type BackupKindLabel = 'etcd' | 'resources';
export type RunResult = 'success' | 'partial' | 'failure';
const RESULTS: RunResult[] = ['success', 'partial', 'failure'];

export interface RunMetrics {
  kind: BackupKindLabel;
  result: RunResult;
  /** When the run started. */
  startedAt: Date;
  durationSeconds: number;
  /** Bytes stored (after compression and encryption). */
  bytes?: number | undefined;
  /** Objects dumped (resource dumps). */
  objects?: number | undefined;
}

export const metricsFlags = withEnv({
  'metrics-file': Flags.string({ summary: 'Write OpenMetrics text about this run here (last success time, duration, bytes, objects, result).', helpGroup: 'METRICS' }),
});

const PREFIX = 'lifeboat_backup';

/** The last success timestamp per kind in an earlier file (absent or unreadable: none). */
export function lastSuccessFrom(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`^${PREFIX}_last_success_timestamp_seconds\\{kind="([a-z]+)"\\} ([0-9.e+]+)$`, 'gm');
  for (const m of (text ?? '').matchAll(re)) out.set(m[1] as string, Number(m[2]));
  return out;
}

export function renderOpenMetrics(run: RunMetrics, previous?: string): string {
  const lastSuccess = lastSuccessFrom(previous);
  const finished = run.startedAt.getTime() / 1000 + run.durationSeconds;
  if (run.result === 'success') lastSuccess.set(run.kind, finished);
  const lines: string[] = [];
  const family = (name: string, help: string, unit: string | undefined, samples: string[]) => {
    if (samples.length === 0) return;
    lines.push(`# TYPE ${PREFIX}_${name} gauge`);
    if (unit) lines.push(`# UNIT ${PREFIX}_${name} ${unit}`);
    lines.push(`# HELP ${PREFIX}_${name} ${help}`);
    lines.push(...samples.map((s) => `${PREFIX}_${name}${s}`));
  };
  const num = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(3));
  const k = `kind="${run.kind}"`;
  family(
    'last_success_timestamp_seconds',
    'When the last successful backup of this kind finished (Unix time).',
    'seconds',
    [...lastSuccess].sort(([a], [b]) => a.localeCompare(b)).map(([kind, t]) => `{kind="${kind}"} ${num(t)}`),
  );
  family('last_run_timestamp_seconds', 'When the last run of this kind finished (Unix time).', 'seconds', [`{${k}} ${num(finished)}`]);
  family('last_run_duration_seconds', 'How long the last run took.', 'seconds', [`{${k}} ${num(run.durationSeconds)}`]);
  family('last_run_result', 'The last run’s result: 1 for the result it had, 0 for the others.', undefined, RESULTS.map((r) => `{${k},result="${r}"} ${r === run.result ? 1 : 0}`));
  if (run.bytes !== undefined) family('last_run_stored_bytes', 'Bytes the last run stored (compressed, encrypted).', 'bytes', [`{${k}} ${run.bytes}`]);
  if (run.objects !== undefined) family('last_run_objects', 'Objects the last run dumped.', undefined, [`{${k}} ${run.objects}`]);
  lines.push('# EOF');
  return lines.join('\n') + '\n';
}

/** Writes the file atomically (temp + rename), keeping the last success time of earlier runs. */
export async function writeMetricsFile(file: string, run: RunMetrics): Promise<void> {
  const previous = await readFile(file, 'utf8').catch(() => undefined);
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, renderOpenMetrics(run, previous), { mode: 0o644 });
  await rename(tmp, file);
}

/** Runs a backup and, with a metrics file, records how it went, failures included. */
export async function withRunMetrics<T>(
  file: string | undefined,
  kind: BackupKindLabel,
  run: () => Promise<T>,
  describe: (result: T) => { bytes?: number | undefined; objects?: number | undefined; partial?: boolean },
): Promise<T> {
  if (!file) return run();
  const startedAt = new Date();
  const seconds = () => (Date.now() - startedAt.getTime()) / 1000;
  let result: T;
  try {
    result = await run();
  } catch (err) {
    await writeMetricsFile(file, { kind, result: 'failure', startedAt, durationSeconds: seconds() }).catch(() => undefined);
    throw err;
  }
  const d = describe(result);
  await writeMetricsFile(file, { kind, result: d.partial ? 'partial' : 'success', startedAt, durationSeconds: seconds(), bytes: d.bytes, objects: d.objects });
  return result;
}
