/**
 * --metrics-file against a real etcd: the file parses with an independent OpenMetrics parser (the
 * Prometheus client library's, from Debian), and a failed run keeps the last success time.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderOpenMetrics } from '../../src/cli/metrics.js';
import { runCli } from '../helpers/cli.js';
import { parseExposition } from '../helpers/prometheus.js';
import { fillEtcd } from '../helpers/etcd.js';
import { startEtcd, type EtcdHandle } from '../rig/components.js';



describe('--metrics-file', () => {
  let etcd: EtcdHandle;
  let dir: string;
  beforeAll(async () => {
    etcd = await startEtcd({ version: '3.5' });
    await fillEtcd(etcd.endpoint, { count: 200 });
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-metrics-'));
  });
  afterAll(async () => {
    await etcd?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('a snapshot writes OpenMetrics; a failed one records the failure and keeps the last success time', async () => {
    const file = join(dir, 'etcd.prom');
    const store = join(dir, 'store');
    const ok = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--metrics-file', file, '-o', 'json']);
    expect(ok.code, ok.stderr).toBe(0);
    const stored = (JSON.parse(ok.stdout) as { objects: { size: number }[] }).objects[0]!.size;
    const first = await parseExposition(await readFile(file, 'utf8'), 'openmetrics');
    const value = (samples: typeof first, name: string, labels: Record<string, string> = { kind: 'etcd' }) =>
      samples.find(([n, l]) => n === name && Object.entries(labels).every(([k, v]) => l[k] === v))?.[2];
    const success = value(first, 'lifeboat_backup_last_success_timestamp_seconds');
    expect(success).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(value(first, 'lifeboat_backup_last_run_result', { kind: 'etcd', result: 'success' })).toBe(1);
    expect(value(first, 'lifeboat_backup_last_run_result', { kind: 'etcd', result: 'failure' })).toBe(0);
    expect(value(first, 'lifeboat_backup_last_run_stored_bytes')).toBe(stored);
    expect(value(first, 'lifeboat_backup_last_run_duration_seconds')).toBeGreaterThan(0);

    const bad = await runCli(['etcd', 'snapshot', '--endpoints', 'http://127.0.0.1:1', '--dial-timeout', '1s', '--store', store, '--metrics-file', file]);
    expect(bad.code).not.toBe(0);
    const second = await parseExposition(await readFile(file, 'utf8'), 'openmetrics');
    expect(value(second, 'lifeboat_backup_last_run_result', { kind: 'etcd', result: 'failure' })).toBe(1);
    expect(value(second, 'lifeboat_backup_last_run_result', { kind: 'etcd', result: 'success' })).toBe(0);
    expect(value(second, 'lifeboat_backup_last_success_timestamp_seconds')).toBe(success);
    expect(value(second, 'lifeboat_backup_last_run_timestamp_seconds')).toBeGreaterThan(success!);
  });

  it('the parser is strict: text without the final # EOF is refused (the check can fail)', async () => {
    const text = renderOpenMetrics({ kind: 'resources', result: 'partial', startedAt: new Date(), durationSeconds: 1.5, bytes: 10, objects: 3 });
    expect(await parseExposition(text, 'openmetrics')).toContainEqual(['lifeboat_backup_last_run_objects', { kind: 'resources' }, 3]);
    await expect(parseExposition(text.replace('# EOF\n', ''), 'openmetrics')).rejects.toThrow();
  });
});
