import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors.js';
import { BUILTIN_API_GROUPS, buildManifests, DEFAULT_ETCD, dumpRules, validateCron, type ScheduleConfig } from '../../src/schedule/manifest.js';

const base: ScheduleConfig = {
  cron: '0 */6 * * *',
  kind: 'both',
  store: 's3://backups/prod',
  namespace: 'lifeboat-system',
  image: 'lifeboat:0.1.0',
  storeSecret: 'lifeboat-s3',
  retention: { keepDaily: 7, keepWeekly: 4 },
  includeSecrets: false,
  apiGroups: BUILTIN_API_GROUPS,
  etcd: DEFAULT_ETCD,
};

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('validateCron', () => {
  it.each(['0 */6 * * *', '*/15 * * * 1-5', '@daily', '@hourly', '30 2 1 * *'])('accepts %j', (e) => expect(() => validateCron(e)).not.toThrow());
  it.each([
    ['61 * * * *', /got value 61 expected range 0-59/],
    ['* * *', /3 field\(s\), a CronJob schedule has 5/],
    ['0 0 * * * *', /6 field\(s\)/],
    ['0 0 31 2 *', /Invalid --cron/],
    ['every day', /2 field\(s\)/],
  ])('refuses %j saying why', (e, why) => {
    expect(() => validateCron(e)).toThrow(UsageError);
    expect(() => validateCron(e)).toThrow(why);
  });
});

describe('buildManifests', () => {
  it('makes a namespace, service account, RBAC and one CronJob per kind', () => {
    const objs = buildManifests(base) as Any[];
    expect(objs.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'Namespace/lifeboat-system',
      'ServiceAccount/lifeboat-backup',
      'ClusterRole/lifeboat-backup-lifeboat-system',
      'ClusterRoleBinding/lifeboat-backup-lifeboat-system',
      'CronJob/lifeboat-resources-dump',
      'CronJob/lifeboat-etcd-snapshot',
    ]);
    expect(buildManifests({ ...base, kind: 'etcd' }).map((o) => (o as Any).kind)).toEqual(['Namespace', 'ServiceAccount', 'CronJob']);
  });

  it('CronJobs: Forbid, deadlines, history, backup then prune, credentials by Secret name only', () => {
    const [dump, etcd] = (buildManifests(base) as Any[]).filter((o) => o.kind === 'CronJob') as [Any, Any];
    for (const cj of [dump, etcd]) {
      expect(cj.spec).toMatchObject({ schedule: '0 */6 * * *', concurrencyPolicy: 'Forbid', successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 3 });
      expect(cj.spec.startingDeadlineSeconds).toBeGreaterThan(0);
      expect(cj.spec.jobTemplate.spec.backoffLimit).toBeGreaterThan(0);
      const pod = cj.spec.jobTemplate.spec.template.spec;
      expect(pod.restartPolicy).toBe('Never');
      const [backup] = pod.initContainers;
      const [prune] = pod.containers;
      expect(prune.args.slice(0, 4)).toEqual(['backups', 'prune', '--kind', cj === dump ? 'resources' : 'etcd']);
      expect(prune.args).toEqual(expect.arrayContaining(['--keep-daily', '7', '--keep-weekly', '4', '--yes']));
      for (const c of [backup, prune]) {
        expect(c.envFrom).toEqual([{ secretRef: { name: 'lifeboat-s3' } }]);
        expect(JSON.stringify(c.env)).not.toMatch(/AWS_SECRET|password/i);
        expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
        expect(c.resources.limits.memory).toMatch(/Mi$/);
      }
    }
    const dumpPod = dump.spec.jobTemplate.spec.template.spec;
    expect(dumpPod.securityContext).toMatchObject({ runAsNonRoot: true });
    expect(dumpPod.initContainers[0].args).toEqual(expect.arrayContaining(['resources', 'dump', '--exclude-resources', 'secrets']));
    const etcdPod = etcd.spec.jobTemplate.spec.template.spec;
    expect(etcdPod.nodeSelector).toEqual({ 'node-role.kubernetes.io/control-plane': '' });
    expect(etcdPod.tolerations[0]).toMatchObject({ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' });
    expect(etcdPod.hostNetwork).toBe(true);
    expect(etcdPod.automountServiceAccountToken).toBe(false);
    expect(etcdPod.volumes).toContainEqual({ name: 'etcd-pki', hostPath: { path: '/etc/kubernetes/pki/etcd', type: 'Directory' } });
    expect(etcdPod.initContainers[0].args).toEqual(expect.arrayContaining(['--cacert', '/etcd-pki/ca.crt', '--key', '/etcd-pki/healthcheck-client.key']));
  });

  it('grants Secrets only when they are dumped', () => {
    const without = JSON.stringify(dumpRules({ includeSecrets: false, apiGroups: ['apps'] }));
    expect(without).not.toMatch(/secrets/);
    expect(dumpRules({ includeSecrets: true, apiGroups: ['apps'] })[0]).toMatchObject({ apiGroups: [''], resources: expect.arrayContaining(['secrets']) });
    expect(dumpRules({ includeSecrets: false, apiGroups: ['apps', '', 'apps'] })[1]).toEqual({ apiGroups: ['apps'], resources: ['*'], verbs: ['get', 'list'] });
    expect(JSON.stringify(dumpRules({ includeSecrets: true, apiGroups: BUILTIN_API_GROUPS }))).not.toMatch(/"\*"\],"resources":\["\*"/);
  });

  it('--pushgateway goes to both backups (not the prunes); credentials are refused', () => {
    const cronJobs = (buildManifests({ ...base, pushgateway: 'http://pushgateway.monitoring:9091' }) as Any[]).filter((o) => o.kind === 'CronJob');
    expect(cronJobs).toHaveLength(2);
    for (const cj of cronJobs) {
      const pod = cj.spec.jobTemplate.spec.template.spec;
      const args = pod.initContainers[0].args as string[];
      expect(args[args.indexOf('--pushgateway') + 1]).toBe('http://pushgateway.monitoring:9091');
      // Still last, as before: --label schedule=<name>.
      expect(args.slice(-2)).toEqual(['--label', `schedule=${cj.metadata.name}`]);
      expect(pod.containers[0].args).not.toContain('--pushgateway');
    }
    expect(JSON.stringify(buildManifests(base))).not.toMatch(/pushgateway/);
    expect(() => buildManifests({ ...base, pushgateway: 'http://metrics:s3cret@pushgateway.monitoring:9091' })).toThrow(/user or password/);
    expect(() => buildManifests({ ...base, pushgateway: 'pushgateway:9091' })).toThrow(UsageError);
  });

  it('refuses a local store, a missing retention and a bad namespace', () => {
    expect(() => buildManifests({ ...base, store: './lifeboat-backups' })).toThrow(/local path/);
    expect(() => buildManifests({ ...base, retention: {} })).toThrow(/retention/);
    expect(() => buildManifests({ ...base, namespace: 'Bad_NS' })).toThrow(/DNS label/);
  });
});
