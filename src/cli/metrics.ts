/**
 * What a backup run leaves for Prometheus: --metrics-file writes OpenMetrics text for a
 * node-exporter textfile collector or a sidecar to scrape; --pushgateway pushes the same metrics
 * to a Prometheus Pushgateway (see pushgateway.ts). The last success timestamp survives failed
 * runs: the file carries it over from the file a previous run left, and a push after a failed run
 * leaves the one an earlier push stored in place, so "no success for two periods" can be alerted on.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import { parseDuration } from './duration.js';
import { withEnv } from './env.js';
import { messageOf } from './errors.js';
import type { Logger } from './log.js';
import { parsePushgateway, pushRunMetrics, type PushTarget } from './pushgateway.js';

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
  pushgateway: Flags.string({
    summary: 'Push the same metrics to this Prometheus Pushgateway after the run, e.g. http://pushgateway.monitoring:9091 (basic auth as user:password@host).',
    helpGroup: 'METRICS',
  }),
  'pushgateway-job': Flags.string({ default: 'lifeboat', summary: 'The job label of the pushed group (kind is the other grouping label).', helpGroup: 'METRICS' }),
  'pushgateway-timeout': Flags.string({ default: '10s', summary: 'Give up a push that has no answer after this long (the run’s exit code is kept).', helpGroup: 'METRICS' }),
});

const PREFIX = 'lifeboat_backup';

interface Family {
  name: string;
  help: string;
  unit?: string | undefined;
  samples: string[];
}

/** The last success timestamp per kind in an earlier file (absent or unreadable: none). */
export function lastSuccessFrom(text: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  const re = new RegExp(`^${PREFIX}_last_success_timestamp_seconds\\{kind="([a-z]+)"\\} ([0-9.e+]+)$`, 'gm');
  for (const m of (text ?? '').matchAll(re)) out.set(m[1] as string, Number(m[2]));
  return out;
}

const num = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(3));

function finishedAt(run: RunMetrics): number {
  return run.startedAt.getTime() / 1000 + run.durationSeconds;
}

/** The metric families of a run; lastSuccess holds the last success per kind (this run's included). */
function families(run: RunMetrics, lastSuccess: Map<string, number>): Family[] {
  const k = `kind="${run.kind}"`;
  const out: Family[] = [
    {
      name: 'last_success_timestamp_seconds',
      help: 'When the last successful backup of this kind finished (Unix time).',
      unit: 'seconds',
      samples: [...lastSuccess].sort(([a], [b]) => a.localeCompare(b)).map(([kind, t]) => `{kind="${kind}"} ${num(t)}`),
    },
    { name: 'last_run_timestamp_seconds', help: 'When the last run of this kind finished (Unix time).', unit: 'seconds', samples: [`{${k}} ${num(finishedAt(run))}`] },
    { name: 'last_run_duration_seconds', help: 'How long the last run took.', unit: 'seconds', samples: [`{${k}} ${num(run.durationSeconds)}`] },
    {
      name: 'last_run_result',
      help: 'The last run’s result: 1 for the result it had, 0 for the others.',
      samples: RESULTS.map((r) => `{${k},result="${r}"} ${r === run.result ? 1 : 0}`),
    },
  ];
  if (run.bytes !== undefined) out.push({ name: 'last_run_stored_bytes', help: 'Bytes the last run stored (compressed, encrypted).', unit: 'bytes', samples: [`{${k}} ${run.bytes}`] });
  if (run.objects !== undefined) out.push({ name: 'last_run_objects', help: 'Objects the last run dumped.', samples: [`{${k}} ${run.objects}`] });
  return out.filter((f) => f.samples.length > 0);
}

/** OpenMetrics text (for --metrics-file), carrying over the last success times of `previous`. */
export function renderOpenMetrics(run: RunMetrics, previous?: string): string {
  const lastSuccess = lastSuccessFrom(previous);
  if (run.result === 'success') lastSuccess.set(run.kind, finishedAt(run));
  const lines: string[] = [];
  for (const f of families(run, lastSuccess)) {
    lines.push(`# TYPE ${PREFIX}_${f.name} gauge`);
    if (f.unit) lines.push(`# UNIT ${PREFIX}_${f.name} ${f.unit}`);
    lines.push(`# HELP ${PREFIX}_${f.name} ${f.help}`);
    lines.push(...f.samples.map((s) => `${PREFIX}_${f.name}${s}`));
  }
  lines.push('# EOF');
  return lines.join('\n') + '\n';
}

/**
 * The Prometheus text exposition format 0.0.4, which is what a Pushgateway parses (it has no
 * OpenMetrics parser: no # UNIT, no # EOF). The last success timestamp is there only after a
 * success; a failed run's push leaves out that family, so the one already stored stays.
 */
export function renderTextFormat(run: RunMetrics): string {
  const lastSuccess = new Map<string, number>();
  if (run.result === 'success') lastSuccess.set(run.kind, finishedAt(run));
  const escapeHelp = (s: string) => s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
  const lines: string[] = [];
  for (const f of families(run, lastSuccess)) {
    lines.push(`# HELP ${PREFIX}_${f.name} ${escapeHelp(f.help)}`);
    lines.push(`# TYPE ${PREFIX}_${f.name} gauge`);
    lines.push(...f.samples.map((s) => `${PREFIX}_${f.name}${s}`));
  }
  return lines.join('\n') + '\n';
}

/** Writes the file atomically (temp + rename), keeping the last success time of earlier runs. */
export async function writeMetricsFile(file: string, run: RunMetrics): Promise<void> {
  const previous = await readFile(file, 'utf8').catch(() => undefined);
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, renderOpenMetrics(run, previous), { mode: 0o644 });
  await rename(tmp, file);
}

/** Where a run's metrics go. */
export interface MetricsOutputs {
  file?: string | undefined;
  push?: PushTarget | undefined;
  logger: Logger;
}

/** Reads the metrics flags; a malformed --pushgateway or timeout is a usage error before anything runs. */
export function metricsOutputsFrom(
  flags: { 'metrics-file'?: string | undefined; pushgateway?: string | undefined; 'pushgateway-job': string; 'pushgateway-timeout': string },
  logger: Logger,
): MetricsOutputs {
  const push = flags.pushgateway
    ? parsePushgateway(flags.pushgateway, { job: flags['pushgateway-job'], timeoutMs: parseDuration(flags['pushgateway-timeout'], '--pushgateway-timeout') })
    : undefined;
  return { file: flags['metrics-file'], push, logger };
}

/**
 * Runs a backup and records how it went, failures included: in the metrics file, and pushed to
 * the Pushgateway. A push that fails is a warning: the run's own result and exit code stand.
 */
export async function withRunMetrics<T>(
  out: MetricsOutputs,
  kind: BackupKindLabel,
  run: () => Promise<T>,
  describe: (result: T) => { bytes?: number | undefined; objects?: number | undefined; partial?: boolean },
): Promise<T> {
  if (!out.file && !out.push) return run();
  const startedAt = new Date();
  const seconds = () => (Date.now() - startedAt.getTime()) / 1000;
  let result: T;
  try {
    result = await run();
  } catch (err) {
    // A failed run stored nothing: say 0 rather than leave the last success's numbers standing
    // (a push keeps whatever families it does not send). Only dumps count objects.
    const failed: RunMetrics = { kind, result: 'failure', startedAt, durationSeconds: seconds(), bytes: 0, objects: kind === 'resources' ? 0 : undefined };
    if (out.file) await writeMetricsFile(out.file, failed).catch(() => undefined);
    await push(out, failed);
    throw err;
  }
  const d = describe(result);
  const metrics: RunMetrics = { kind, result: d.partial ? 'partial' : 'success', startedAt, durationSeconds: seconds(), bytes: d.bytes, objects: d.objects };
  if (out.file) await writeMetricsFile(out.file, metrics);
  await push(out, metrics);
  return result;
}

async function push(out: MetricsOutputs, run: RunMetrics): Promise<void> {
  if (!out.push) return;
  try {
    await pushRunMetrics(out.push, run.kind, renderTextFormat(run));
    out.logger.debug('pushed metrics', { pushgateway: out.push.display, kind: run.kind, result: run.result });
  } catch (err) {
    const outcome = run.result === 'failure' ? 'the run had failed already' : `the ${run.kind} backup itself ended with ${run.result}; its exit code stands`;
    out.logger.warn(`Could not push metrics to the Pushgateway (${outcome}): ${messageOf(err)}`, { pushgateway: out.push.display, kind: run.kind, result: run.result });
  }
}
