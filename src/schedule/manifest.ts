/**
 * The objects a scheduled backup needs in the cluster: Namespace, ServiceAccount, least-privilege
 * RBAC, and one CronJob per kind. Each Job takes the backup in an init container and prunes in
 * its main container, so a failed backup never prunes (and no shell is needed to chain them).
 */
import { CronExpressionParser } from 'cron-parser';
import { UsageError } from '../cli/errors.js';
import { parsePushgateway } from '../cli/pushgateway.js';

export type ScheduleKind = 'etcd' | 'resources' | 'both';

export interface Retention {
  keepLast?: number | undefined;
  keepHourly?: number | undefined;
  keepDaily?: number | undefined;
  keepWeekly?: number | undefined;
  keepMonthly?: number | undefined;
  keepYearly?: number | undefined;
  keepWithin?: string | undefined;
}

export interface ScheduleConfig {
  cron: string;
  /** IANA time zone for the schedule (CronJob spec.timeZone); default: the controller's (UTC). */
  timeZone?: string | undefined;
  kind: ScheduleKind;
  store: string;
  namespace: string;
  image: string;
  /** Secret whose keys become the container's environment (AWS_ACCESS_KEY_ID, ...); never inlined. */
  storeSecret?: string | undefined;
  s3?: { endpoint?: string | undefined; region?: string | undefined; forcePathStyle?: boolean | undefined };
  encryptTo?: string[] | undefined;
  retention: Retention;
  /** Dump Secrets too (and grant reading them). */
  includeSecrets: boolean;
  /** Non-core API groups the dump may read (RBAC cannot say "all groups but core secrets"). */
  apiGroups: string[];
  etcd: { endpoints: string; certDir: string; cacert: string; cert: string; key: string };
  /** Pushgateway base URL the backups push their metrics to (no credentials: those go in the Secret). */
  pushgateway?: string | undefined;
}

type Obj = Record<string, unknown>;

export const DEFAULT_ETCD = {
  endpoints: 'https://127.0.0.1:2379',
  certDir: '/etc/kubernetes/pki/etcd',
  cacert: 'ca.crt',
  cert: 'healthcheck-client.crt',
  key: 'healthcheck-client.key',
};

/** Built-in API groups of a current cluster, for when the cluster is not asked. */
export const BUILTIN_API_GROUPS = [
  'admissionregistration.k8s.io',
  'apiextensions.k8s.io',
  'apiregistration.k8s.io',
  'apps',
  'autoscaling',
  'batch',
  'certificates.k8s.io',
  'coordination.k8s.io',
  'discovery.k8s.io',
  'flowcontrol.apiserver.k8s.io',
  'networking.k8s.io',
  'node.k8s.io',
  'policy',
  'rbac.authorization.k8s.io',
  'resource.k8s.io',
  'scheduling.k8s.io',
  'storage.k8s.io',
];

/** Core resources a dump reads; Secrets only when asked. */
const CORE_RESOURCES = [
  'configmaps',
  'endpoints',
  'limitranges',
  'namespaces',
  'persistentvolumeclaims',
  'persistentvolumes',
  'pods',
  'podtemplates',
  'replicationcontrollers',
  'resourcequotas',
  'serviceaccounts',
  'services',
];

const MACROS = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

/** A CronJob schedule: five fields or a macro, each field in range; says why when not. */
export function validateCron(expr: string): void {
  const text = expr.trim();
  const hint = 'Use five fields (minute hour day-of-month month day-of-week), e.g. "0 */6 * * *", or @hourly/@daily/@weekly/@monthly.';
  if (MACROS.has(text)) return;
  const fields = text.split(/\s+/).filter(Boolean);
  if (fields.length !== 5) throw new UsageError(`Invalid --cron ${JSON.stringify(expr)}: ${fields.length} field(s), a CronJob schedule has 5.`, { hint });
  try {
    CronExpressionParser.parse(text);
  } catch (err) {
    throw new UsageError(`Invalid --cron ${JSON.stringify(expr)}: ${(err as Error).message}.`, { hint });
  }
}

export function validateConfig(cfg: ScheduleConfig): void {
  validateCron(cfg.cron);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(cfg.namespace)) throw new UsageError(`Invalid --namespace ${JSON.stringify(cfg.namespace)}: not a DNS label.`);
  if (/^(\.|\/|file:)/.test(cfg.store) || !cfg.store.includes('://')) {
    throw new UsageError(`--store ${cfg.store} is a local path: a CronJob's pod has no lasting local storage.`, { hint: 'Use an object store, e.g. s3://bucket/prefix (with --s3-endpoint for MinIO).' });
  }
  if (cfg.pushgateway !== undefined) {
    const target = parsePushgateway(cfg.pushgateway, { job: 'lifeboat', timeoutMs: 1 });
    if (target.authorization) {
      throw new UsageError('--pushgateway has a user or password: the manifest would carry it in plain text.', {
        hint: 'Give the URL without credentials, or leave --pushgateway out and put LIFEBOAT_PUSHGATEWAY (with user:password@) in the --store-secret Secret.',
      });
    }
  }
  const r = cfg.retention;
  if (![r.keepLast, r.keepHourly, r.keepDaily, r.keepWeekly, r.keepMonthly, r.keepYearly, r.keepWithin].some((v) => v !== undefined)) {
    throw new UsageError('Give a retention (--keep-last, --keep-daily, ...): every run prunes with it.', { hint: 'e.g. --keep-daily 7 --keep-weekly 4.' });
  }
}

export function buildManifests(cfg: ScheduleConfig): Obj[] {
  validateConfig(cfg);
  const ns = cfg.namespace;
  const sa = 'lifeboat-backup';
  const out: Obj[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { 'app.kubernetes.io/name': 'lifeboat' } } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa, namespace: ns, labels: labels() } },
  ];
  if (cfg.kind !== 'etcd') {
    const role = `lifeboat-backup-${ns}`;
    out.push(
      { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: role, labels: labels() }, rules: dumpRules(cfg) },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: role, labels: labels() },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
      },
    );
    out.push(cronJob(cfg, 'resources', sa));
  }
  if (cfg.kind !== 'resources') out.push(cronJob(cfg, 'etcd', sa));
  return out;
}

/** get/list on every core resource a dump reads (Secrets only when included) and on the given groups. */
export function dumpRules(cfg: Pick<ScheduleConfig, 'includeSecrets' | 'apiGroups'>): Obj[] {
  const core = [...CORE_RESOURCES, ...(cfg.includeSecrets ? ['secrets'] : [])].sort();
  const groups = [...new Set(cfg.apiGroups.filter((g) => g !== ''))].sort();
  return [
    { apiGroups: [''], resources: core, verbs: ['get', 'list'] },
    ...(groups.length > 0 ? [{ apiGroups: groups, resources: ['*'], verbs: ['get', 'list'] }] : []),
  ];
}

function labels(component?: string): Record<string, string> {
  return { 'app.kubernetes.io/name': 'lifeboat', ...(component ? { 'app.kubernetes.io/component': component } : {}) };
}

function cronJob(cfg: ScheduleConfig, kind: 'etcd' | 'resources', sa: string): Obj {
  const name = kind === 'etcd' ? 'lifeboat-etcd-snapshot' : 'lifeboat-resources-dump';
  const env = [
    { name: 'LIFEBOAT_STORE', value: cfg.store },
    ...(cfg.s3?.endpoint ? [{ name: 'LIFEBOAT_S3_ENDPOINT', value: cfg.s3.endpoint }] : []),
    ...(cfg.s3?.region ? [{ name: 'LIFEBOAT_S3_REGION', value: cfg.s3.region }] : []),
    ...(cfg.s3?.forcePathStyle ? [{ name: 'LIFEBOAT_S3_FORCE_PATH_STYLE', value: 'true' }] : []),
    // The image's root filesystem is read-only: temporary files go to the emptyDir below.
    { name: 'TMPDIR', value: '/tmp' },
  ];
  const envFrom = cfg.storeSecret ? [{ secretRef: { name: cfg.storeSecret } }] : [];
  const encrypt = (cfg.encryptTo ?? []).flatMap((r) => ['--encrypt-to', r]);
  const push = cfg.pushgateway ? ['--pushgateway', cfg.pushgateway] : [];
  const backupArgs =
    kind === 'etcd'
      ? ['etcd', 'snapshot', '--endpoints', cfg.etcd.endpoints, '--cacert', `/etcd-pki/${cfg.etcd.cacert}`, '--cert', `/etcd-pki/${cfg.etcd.cert}`, '--key', `/etcd-pki/${cfg.etcd.key}`, ...encrypt, ...push, '--label', `schedule=${name}`]
      : ['resources', 'dump', ...(cfg.includeSecrets ? [] : ['--exclude-resources', 'secrets']), ...encrypt, ...push, '--label', `schedule=${name}`];
  const r = cfg.retention;
  const keep: [string, string | number | undefined][] = [
    ['--keep-last', r.keepLast],
    ['--keep-hourly', r.keepHourly],
    ['--keep-daily', r.keepDaily],
    ['--keep-weekly', r.keepWeekly],
    ['--keep-monthly', r.keepMonthly],
    ['--keep-yearly', r.keepYearly],
    ['--keep-within', r.keepWithin],
  ];
  const pruneArgs = ['backups', 'prune', '--kind', kind, ...keep.flatMap(([flag, v]) => (v === undefined ? [] : [flag, String(v)])), '--yes'];
  // etcd's client key on a kubeadm control plane is root's and mode 0600: that Job runs as root,
  // without capabilities or privilege escalation; the dump runs as the image's unprivileged user.
  const root = kind === 'etcd';
  const containerSecurity = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
  const container = (cname: string, args: string[], memory: { request: string; limit: string }) => ({
    name: cname,
    image: cfg.image,
    args,
    env,
    ...(envFrom.length ? { envFrom } : {}),
    resources: { requests: { cpu: '250m', memory: memory.request }, limits: { memory: memory.limit } },
    securityContext: containerSecurity,
    volumeMounts: [{ name: 'tmp', mountPath: '/tmp' }, ...(kind === 'etcd' ? [{ name: 'etcd-pki', mountPath: '/etcd-pki', readOnly: true }] : [])],
  });
  const backupMemory = kind === 'etcd' ? { request: '256Mi', limit: '512Mi' } : { request: '384Mi', limit: '768Mi' };
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace: cfg.namespace, labels: labels(kind) },
    spec: {
      schedule: cfg.cron,
      ...(cfg.timeZone ? { timeZone: cfg.timeZone } : {}),
      concurrencyPolicy: 'Forbid',
      startingDeadlineSeconds: 900,
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      jobTemplate: {
        metadata: { labels: labels(kind) },
        spec: {
          backoffLimit: 2,
          activeDeadlineSeconds: 4 * 3600,
          template: {
            metadata: { labels: labels(kind) },
            spec: {
              serviceAccountName: sa,
              automountServiceAccountToken: kind === 'resources',
              restartPolicy: 'Never',
              securityContext: root
                ? { runAsUser: 0, runAsGroup: 0, seccompProfile: { type: 'RuntimeDefault' } }
                : { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
              ...(kind === 'etcd'
                ? {
                    hostNetwork: true,
                    dnsPolicy: 'ClusterFirstWithHostNet',
                    nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
                    tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
                  }
                : {}),
              initContainers: [container('backup', backupArgs, backupMemory)],
              containers: [container('prune', pruneArgs, { request: '128Mi', limit: '256Mi' })],
              volumes: [
                { name: 'tmp', emptyDir: { sizeLimit: '1Gi' } },
                ...(kind === 'etcd' ? [{ name: 'etcd-pki', hostPath: { path: cfg.etcd.certDir, type: 'Directory' } }] : []),
              ],
            },
          },
        },
      },
    },
  };
}
