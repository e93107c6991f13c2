/**
 * `schedule manifest` against the rig's API server: the YAML applies with server-side validation,
 * and the ServiceAccount it creates can run a real dump but not read Secrets or write anything;
 * the dump pushes its metrics to the --pushgateway the manifest names (the rig's real one).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { runCli } from '../helpers/cli.js';
import { startPushgateway, type PushgatewayHandle } from '../rig/components.js';
import { e2eEnv, serviceAccountKubeconfig, type E2eEnv, type KubeObject } from './helpers.js';

describe('schedule manifest', () => {
  let env: E2eEnv;
  let dir: string;
  let ns: string;
  let gateway: PushgatewayHandle;
  const kubeconfig = inject('kube').kubeconfig;

  beforeAll(async () => {
    env = await e2eEnv('sched');
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-sched-'));
    ns = `${env.namespace}-lb`;
    gateway = await startPushgateway();
  });
  afterAll(async () => {
    await env.kube.delete(`/api/v1/namespaces/${ns}`);
    await env.kube.delete(`/apis/rbac.authorization.k8s.io/v1/clusterroles/lifeboat-backup-${ns}`);
    await env.kube.delete(`/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/lifeboat-backup-${ns}`);
    await env.cleanup();
    env.kube.close();
    await gateway?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('applies with server-side validation; its ServiceAccount dumps, but may not read Secrets or write', async () => {
    const { kube } = env;
    const gen = await runCli([
      'schedule', 'manifest', '--cron', '0 */6 * * *', '--kind', 'both', '--store', 's3://backups/prod', '--s3-endpoint', 'http://minio.example:9000',
      '--s3-force-path-style', '--store-secret', 'lifeboat-s3', '--keep-daily', '7', '--keep-weekly', '4', '--namespace', ns, '--kubeconfig', kubeconfig,
      '--pushgateway', gateway.url,
    ]);
    expect(gen.code, gen.stderr).toBe(0);
    const docs = parseAllDocuments(gen.stdout).map((d) => d.toJS() as KubeObject);
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'CronJob', 'CronJob']);

    // Strict server-side field validation: an unknown or misplaced field fails the apply.
    const applied = await kube.kubectl(['apply', '--server-side', '--field-manager=e2e', '--validate=strict', '-f', '-'], gen.stdout);
    expect(applied).toMatch(/cronjob.batch\/lifeboat-etcd-snapshot serverside-applied/);
    const cj = await kube.get<KubeObject & { spec: { schedule: string; concurrencyPolicy: string } }>(`/apis/batch/v1/namespaces/${ns}/cronjobs/lifeboat-resources-dump`);
    expect(cj.spec).toMatchObject({ schedule: '0 */6 * * *', concurrencyPolicy: 'Forbid' });
    const role = await kube.get<KubeObject & { rules: { apiGroups: string[]; resources: string[] }[] }>(`/apis/rbac.authorization.k8s.io/v1/clusterroles/lifeboat-backup-${ns}`);
    expect(role.rules.flatMap((r) => r.resources)).not.toContain('secrets');
    // The groups come from the cluster: its built-in aggregator group is there.
    expect(role.rules.flatMap((r) => r.apiGroups)).toContain('apiregistration.k8s.io');

    const saConfig = await serviceAccountKubeconfig(kube, ns, 'lifeboat-backup', join(dir, 'sa.kubeconfig'), { resource: 'configmaps', verb: 'list' });
    const store = join(dir, 'store');
    // What the CronJob's backup container runs (its arguments), limited to this test's namespace.
    const dumpArgs = docs[4]!.spec as { jobTemplate: { spec: { template: { spec: { initContainers: { args: string[] }[] } } } } };
    const args = dumpArgs.jobTemplate.spec.template.spec.initContainers[0]!.args.filter((a) => !a.startsWith('schedule='));
    const dump = await runCli([...args.slice(0, -1), '--include-namespaces', env.namespace, '--store', store, '--kubeconfig', saConfig, '-o', 'json']);
    expect(dump.code, dump.stderr).toBe(0);
    const result = JSON.parse(dump.stdout) as { index: { objects: number; failed: unknown[] }; manifest: { objects: { size: number }[] } };
    expect(result.index.failed).toEqual([]);
    expect(result.index.objects).toBeGreaterThan(0);
    // The CronJob's arguments pushed this run's metrics to the Pushgateway the manifest names.
    expect(args).toEqual(expect.arrayContaining(['--pushgateway', gateway.url]));
    expect(dump.stderr).not.toMatch(/Could not push/);
    const group = { job: 'lifeboat', kind: 'resources' };
    const pushed = parseSamples(await gateway.scrape());
    expect(sample(pushed, 'lifeboat_backup_last_run_objects', group)).toBe(result.index.objects);
    expect(sample(pushed, 'lifeboat_backup_last_run_stored_bytes', group)).toBe(result.manifest.objects[0]!.size);
    expect(sample(pushed, 'lifeboat_backup_last_run_result', { ...group, result: 'success' })).toBe(1);
    const success = sample(pushed, 'lifeboat_backup_last_success_timestamp_seconds', group);
    expect(success).toBeGreaterThan(Date.now() / 1000 - 300);

    const secrets = await runCli(['resources', 'dump', '--include-namespaces', env.namespace, '--include-resources', 'secrets', '--store', store, '--kubeconfig', saConfig, '--pushgateway', gateway.url]);
    expect(secrets.code).toBe(3);
    expect(secrets.stderr).toMatch(/could not list secrets: 403 Forbidden/);
    // A partial dump is no success: pushed as partial, the last success stays the earlier run's.
    const afterPartial = parseSamples(await gateway.scrape());
    expect(sample(afterPartial, 'lifeboat_backup_last_run_result', { ...group, result: 'partial' })).toBe(1);
    expect(sample(afterPartial, 'lifeboat_backup_last_success_timestamp_seconds', group)).toBe(success);

    const [node] = await env.createNodes([{ name: 'n1' }]);
    const write = await runCli(['node', 'cordon', node!.metadata.name, '--kubeconfig', saConfig]);
    expect(write.code).toBe(1);
    expect(write.stderr).toMatch(/forbidden.*cannot get resource "nodes"/);
    expect(write.stderr).not.toMatch(/Internal error/);
  });

  it('a bad cron expression is a usage error that says why', async () => {
    const secret = await runCli(['schedule', 'manifest', '--cron', '@daily', '--store', 's3://b/p', '--keep-last', '3', '--offline', '--pushgateway', 'http://u:pw@pg:9091']);
    expect(secret.code).toBe(2);
    expect(secret.stderr).toMatch(/--pushgateway has a user or password/);
    expect(secret.stderr).not.toContain('pw@');
    const r = await runCli(['schedule', 'manifest', '--cron', '61 * * * *', '--store', 's3://b/p', '--keep-last', '3', '--offline']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Invalid --cron "61 \* \* \* \*": .*61 expected range 0-59/);
    const local = await runCli(['schedule', 'manifest', '--cron', '@daily', '--store', './backups', '--keep-last', '3', '--offline']);
    expect(local.code).toBe(2);
    expect(local.stderr).toMatch(/local path/);
  });
});

type Sample = { name: string; labels: Record<string, string>; value: number };

/** Samples of the text format as the Pushgateway serves it (one per line: name{labels} value). */
function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

function sample(samples: Sample[], name: string, labels: Record<string, string>): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}
