/**
 * --pushgateway against the real Prometheus Pushgateway (built by the rig): what a run pushes is
 * what Prometheus would scrape from the Pushgateway, read with an independent parser (the
 * Prometheus client library's text-format parser, from Debian). A failed run keeps the last
 * success time; a Pushgateway that is down or slow never changes a run's exit code.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { parseExposition, type Sample } from '../helpers/prometheus.js';
import { fillEtcd } from '../helpers/etcd.js';
import { freePort, PUSHGATEWAY_BASIC_AUTH, startEtcd, startPushgateway, type EtcdHandle, type PushgatewayHandle } from '../rig/components.js';




/** The one sample with this name whose labels include these; undefined when there is none. */
function value(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  const found = samples.filter(([n, l]) => n === name && Object.entries(labels).every(([k, v]) => l[k] === v));
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.[2];
}

/** JSON log lines on stderr (the CLI's stderr is no TTY here). */
function logLines(stderr: string): { level: string; msg: string; [k: string]: unknown }[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; msg: string });
}

describe('--pushgateway', () => {
  let etcd: EtcdHandle;
  let gateway: PushgatewayHandle;
  let dir: string;
  let store: string;
  const etcdGroup = { job: 'lifeboat', kind: 'etcd', instance: '' };

  beforeAll(async () => {
    [etcd, gateway] = await Promise.all([startEtcd({ version: '3.5' }), startPushgateway()]);
    await fillEtcd(etcd.endpoint, { count: 200 });
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-pushgateway-'));
    store = join(dir, 'store');
  });
  afterAll(async () => {
    await Promise.allSettled([etcd?.stop(), gateway?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  it('etcd snapshot pushes after a success and after a failure; the failure keeps the last success time', async () => {
    // The environment variable, as a CronJob would set it.
    const ok = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '-o', 'json'], { env: { LIFEBOAT_PUSHGATEWAY: gateway.url } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(logLines(ok.stderr).filter((l) => l.level === 'warn')).toEqual([]);
    const stored = (JSON.parse(ok.stdout) as { objects: { size: number }[] }).objects[0]!.size;

    const first = await parseExposition(await gateway.scrape(), 'text');
    const success = value(first, 'lifeboat_backup_last_success_timestamp_seconds', etcdGroup);
    expect(success).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(success).toBeLessThanOrEqual(Date.now() / 1000);
    expect(value(first, 'lifeboat_backup_last_run_timestamp_seconds', etcdGroup)).toBe(success);
    expect(value(first, 'lifeboat_backup_last_run_result', { ...etcdGroup, result: 'success' })).toBe(1);
    expect(value(first, 'lifeboat_backup_last_run_result', { ...etcdGroup, result: 'partial' })).toBe(0);
    expect(value(first, 'lifeboat_backup_last_run_result', { ...etcdGroup, result: 'failure' })).toBe(0);
    expect(value(first, 'lifeboat_backup_last_run_stored_bytes', etcdGroup)).toBe(stored);
    expect(value(first, 'lifeboat_backup_last_run_duration_seconds', etcdGroup)).toBeGreaterThan(0);
    // Snapshots count no objects.
    expect(value(first, 'lifeboat_backup_last_run_objects', etcdGroup)).toBeUndefined();
    // The Pushgateway's own bookkeeping for the group: pushed now, never failed.
    expect(value(first, 'push_time_seconds', { job: 'lifeboat', kind: 'etcd' })).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(value(first, 'push_failure_time_seconds', { job: 'lifeboat', kind: 'etcd' })).toBe(0);

    const bad = await runCli(['etcd', 'snapshot', '--endpoints', 'http://127.0.0.1:1', '--dial-timeout', '1s', '--store', store, '--pushgateway', gateway.url]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).not.toMatch(/Pushgateway/);
    const second = await parseExposition(await gateway.scrape(), 'text');
    expect(value(second, 'lifeboat_backup_last_success_timestamp_seconds', etcdGroup)).toBe(success);
    expect(value(second, 'lifeboat_backup_last_run_result', { ...etcdGroup, result: 'failure' })).toBe(1);
    expect(value(second, 'lifeboat_backup_last_run_result', { ...etcdGroup, result: 'success' })).toBe(0);
    expect(value(second, 'lifeboat_backup_last_run_timestamp_seconds', etcdGroup)).toBeGreaterThan(success!);
    // A failed run stored nothing: not the last success's size.
    expect(value(second, 'lifeboat_backup_last_run_stored_bytes', etcdGroup)).toBe(0);
  });

  it('a resource dump is its own group: its failure leaves the etcd group alone', async () => {
    const before = await parseExposition(await gateway.scrape(), 'text');
    const kubeconfig = join(dir, 'unreachable.kubeconfig');
    await writeFile(
      kubeconfig,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters: [{ name: c, cluster: { server: "https://127.0.0.1:1", insecure-skip-tls-verify: true } }]',
        'users: [{ name: u, user: { token: t } }]',
        'contexts: [{ name: x, context: { cluster: c, user: u } }]',
        'current-context: x',
        '',
      ].join('\n'),
    );
    const r = await runCli(['resources', 'dump', '--kubeconfig', kubeconfig, '--store', store, '--pushgateway', gateway.url]);
    expect(r.code).toBe(1);
    const after = await parseExposition(await gateway.scrape(), 'text');
    const resources = { job: 'lifeboat', kind: 'resources', instance: '' };
    expect(value(after, 'lifeboat_backup_last_run_result', { ...resources, result: 'failure' })).toBe(1);
    expect(value(after, 'lifeboat_backup_last_run_objects', resources)).toBe(0);
    expect(value(after, 'lifeboat_backup_last_run_stored_bytes', resources)).toBe(0);
    // Never succeeded: no last success for resources (the "metrics absent" alert covers that).
    expect(value(after, 'lifeboat_backup_last_success_timestamp_seconds', resources)).toBeUndefined();
    for (const name of ['lifeboat_backup_last_success_timestamp_seconds', 'lifeboat_backup_last_run_timestamp_seconds', 'lifeboat_backup_last_run_stored_bytes']) {
      expect(value(after, name, etcdGroup), name).toBe(value(before, name, etcdGroup));
    }
  });

  it('basic auth from the URL, and --pushgateway-job; the password shows nowhere', async () => {
    const secured = await startPushgateway({ basicAuth: true });
    try {
      const ok = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--pushgateway', secured.urlWithAuth, '--pushgateway-job', 'lifeboat-prod/eu']);
      expect(ok.code, ok.stderr).toBe(0);
      expect(logLines(ok.stderr).filter((l) => l.level === 'warn')).toEqual([]);
      const samples = await parseExposition(await secured.scrape(), 'text');
      // A job with a "/" travels base64-encoded in the path and arrives intact.
      expect(value(samples, 'lifeboat_backup_last_run_result', { job: 'lifeboat-prod/eu', kind: 'etcd', result: 'success' })).toBe(1);

      const anonymous = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--pushgateway', secured.url]);
      expect(anonymous.code, anonymous.stderr).toBe(0);
      const [warning] = logLines(anonymous.stderr).filter((l) => l.level === 'warn');
      expect(warning?.msg).toMatch(/Could not push metrics to the Pushgateway \(the etcd backup itself ended with success; its exit code stands\): POST .*: HTTP 401/);
      expect(warning).toMatchObject({ pushgateway: `${secured.url}/`, kind: 'etcd', result: 'success' });
    } finally {
      await secured.stop();
    }
    // Down now: the warning names the URL without its password.
    const down = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--pushgateway', secured.urlWithAuth]);
    expect(down.code, down.stderr).toBe(0);
    expect(down.stderr).toMatch(/Could not push metrics/);
    expect(down.stderr).not.toContain(PUSHGATEWAY_BASIC_AUTH.password);
  });

  it('a Pushgateway that is down or never answers is a warning; the exit code stays the run’s own', async () => {
    const closedPort = await freePort();
    const down = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--pushgateway', `http://127.0.0.1:${closedPort}`, '-o', 'json']);
    expect(down.code, down.stderr).toBe(0);
    expect((JSON.parse(down.stdout) as { kind: string }).kind).toBe('etcd');
    const [warning] = logLines(down.stderr).filter((l) => l.level === 'warn');
    expect(warning?.msg).toMatch(/Could not push metrics .*ECONNREFUSED/);

    // Accepts the connection, never answers.
    const sockets = new Set<Socket>();
    const silent: Server = createServer((s) => sockets.add(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      const t0 = Date.now();
      const slow = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', store, '--pushgateway', `http://127.0.0.1:${port}`, '--pushgateway-timeout', '500ms']);
      expect(slow.code, slow.stderr).toBe(0);
      expect(slow.stderr).toMatch(/no answer within 0.5s/);
      expect(Date.now() - t0).toBeLessThan(30_000);

      const failed = await runCli(['etcd', 'snapshot', '--endpoints', 'http://127.0.0.1:1', '--dial-timeout', '1s', '--store', store, '--pushgateway', `http://127.0.0.1:${port}`, '--pushgateway-timeout', '500ms']);
      expect(failed.code).toBe(1);
      expect(failed.stderr).toMatch(/the run had failed already/);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('a malformed --pushgateway is a usage error before anything runs', async () => {
    const r = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', join(dir, 'untouched'), '--pushgateway', 'pushgateway:9091']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Invalid --pushgateway "pushgateway:9091": not an http or https URL/);
    const path = await runCli(['etcd', 'snapshot', '--endpoints', etcd.endpoint, '--store', join(dir, 'untouched'), '--pushgateway', 'http://pg:9091/metrics/job/x']);
    expect(path.code).toBe(2);
    expect(path.stderr).toMatch(/without \/metrics/);
  });
});
