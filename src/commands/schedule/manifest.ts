import { Flags } from '@oclif/core';
import { stringify } from 'yaml';
import { BaseCommand } from '../../cli/base-command.js';
import { withEnv } from '../../cli/env.js';
import { messageOf } from '../../cli/errors.js';
import { kubeClientFromFlags, kubeFlags } from '../../cli/kube-flags.js';
import { retentionFlags } from '../../cli/retention-flags.js';
import { BUILTIN_API_GROUPS, buildManifests, DEFAULT_ETCD, validateConfig, type ScheduleConfig } from '../../schedule/manifest.js';
import { TOOL_VERSION } from '../../version.js';

export default class ScheduleManifest extends BaseCommand<typeof ScheduleManifest> {
  static override summary = 'Print ready-to-apply YAML for scheduled backups in the cluster: Namespace, ServiceAccount, RBAC and CronJobs.';
  static override description = `Each CronJob (concurrencyPolicy Forbid) runs one Job per schedule: the backup in an init container, then \`backups prune\` with the given retention, so a failed backup never prunes. Store credentials come from a Secret by name (--store-secret), never from the manifest.

The resource dump runs as a non-root user with a read-only root filesystem, under a ClusterRole that may get and list the core resources a dump reads (Secrets only with --include-secrets) and the API groups the cluster serves (read from the cluster now; add later CRD groups with --api-groups, or regenerate). The etcd snapshot runs on a control-plane node (nodeSelector and toleration), on the host network, with the etcd client certificates mounted read-only from the host (kubeadm: /etc/kubernetes/pki/etcd); those keys are root's, so that Job runs as root, without capabilities.

With --pushgateway, each backup pushes its metrics there when it ends, failed runs included (job lifeboat, kind etcd or resources); a Pushgateway that needs a password is given as LIFEBOAT_PUSHGATEWAY in the --store-secret Secret instead.`;
  static override examples = [
    "<%= config.bin %> schedule manifest --cron '0 */6 * * *' --kind both --store s3://backups/prod --store-secret lifeboat-s3 --keep-daily 7 --keep-weekly 4 | kubectl apply -f -",
    "<%= config.bin %> schedule manifest --cron '0 */6 * * *' --store s3://backups/prod --store-secret lifeboat-s3 --keep-daily 7 --pushgateway http://pushgateway.monitoring:9091",
    "<%= config.bin %> schedule manifest --cron '@daily' --kind resources --store s3://backups/prod --s3-endpoint https://minio.example:9000 --s3-force-path-style --store-secret minio --keep-last 14 --image registry.example/lifeboat:0.1.0",
  ];
  static override flags = {
    ...kubeFlags,
    ...retentionFlags,
    ...withEnv({
      cron: Flags.string({ required: true, summary: 'Schedule, five cron fields or @hourly/@daily/@weekly/@monthly.' }),
      'time-zone': Flags.string({ summary: 'IANA time zone of the schedule (default: the controller manager’s, usually UTC).' }),
      kind: Flags.option({ options: ['etcd', 'resources', 'both'] as const, default: 'both' as const, summary: 'What to back up.' })(),
      store: Flags.string({ required: true, summary: 'Object store URL the Jobs write to, e.g. s3://bucket/prefix.' }),
      'store-secret': Flags.string({ summary: 'Secret (in --namespace) whose keys become the Jobs’ environment, e.g. AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.' }),
      's3-endpoint': Flags.string({ summary: 'S3 endpoint URL (MinIO and other S3-compatible services).' }),
      's3-region': Flags.string({ summary: 'S3 region.' }),
      's3-force-path-style': Flags.boolean({ summary: 'Address buckets by path (MinIO).' }),
      'encrypt-to': Flags.string({ multiple: true, summary: 'Encrypt backups to this age recipient (repeatable).' }),
      namespace: Flags.string({ default: 'lifeboat-system', summary: 'Namespace for the ServiceAccount and CronJobs.' }),
      image: Flags.string({ default: `lifeboat:${TOOL_VERSION}`, summary: 'Container image (built from the Dockerfile).' }),
      'include-secrets': Flags.boolean({ summary: 'Dump Secrets too, and grant reading them.' }),
      'api-groups': Flags.string({ summary: 'Extra API groups the dump may read, comma-separated (CRD groups added later).' }),
      offline: Flags.boolean({ summary: 'Do not ask the cluster which API groups it serves; grant the built-in ones and --api-groups.' }),
      'etcd-endpoints': Flags.string({ default: DEFAULT_ETCD.endpoints, summary: 'etcd client URL as seen from a control-plane node.' }),
      'etcd-cert-dir': Flags.string({ default: DEFAULT_ETCD.certDir, summary: 'Host directory with the etcd CA and client certificate.' }),
      'etcd-cacert': Flags.string({ default: DEFAULT_ETCD.cacert, summary: 'CA file name in --etcd-cert-dir.' }),
      'etcd-cert': Flags.string({ default: DEFAULT_ETCD.cert, summary: 'Client certificate file name in --etcd-cert-dir.' }),
      'etcd-key': Flags.string({ default: DEFAULT_ETCD.key, summary: 'Client key file name in --etcd-cert-dir.' }),
      pushgateway: Flags.string({ summary: 'Prometheus Pushgateway the backups push their metrics to, e.g. http://pushgateway.monitoring:9091 (no credentials; see docs/alerts.md).' }),
    }),
  };

  async run(): Promise<Record<string, unknown>[]> {
    const f = this.flags;
    const extra = (f['api-groups'] ?? '').split(',').map((g) => g.trim()).filter(Boolean);
    const cfg: ScheduleConfig = {
      cron: f.cron,
      timeZone: f['time-zone'],
      kind: f.kind,
      store: f.store,
      namespace: f.namespace,
      image: f.image,
      storeSecret: f['store-secret'],
      s3: { endpoint: f['s3-endpoint'], region: f['s3-region'], forcePathStyle: f['s3-force-path-style'] },
      encryptTo: f['encrypt-to'],
      retention: {
        keepLast: f['keep-last'],
        keepHourly: f['keep-hourly'],
        keepDaily: f['keep-daily'],
        keepWeekly: f['keep-weekly'],
        keepMonthly: f['keep-monthly'],
        keepYearly: f['keep-yearly'],
        keepWithin: f['keep-within'],
      },
      includeSecrets: f['include-secrets'],
      apiGroups: [...BUILTIN_API_GROUPS, ...extra],
      etcd: { endpoints: f['etcd-endpoints'], certDir: f['etcd-cert-dir'], cacert: f['etcd-cacert'], cert: f['etcd-cert'], key: f['etcd-key'] },
      pushgateway: f.pushgateway,
    };
    validateConfig(cfg);
    if (f.kind !== 'etcd' && !f.offline) cfg.apiGroups = [...(await this.servedGroups()), ...extra];
    const objects = buildManifests(cfg);
    if (f.output === 'json') this.printer.print(objects, () => '');
    else process.stdout.write(objects.map((o) => stringify(o, { lineWidth: 0 })).join('---\n'));
    return objects;
  }

  /** The API groups the cluster serves now; the built-in list when it cannot be asked. */
  private async servedGroups(): Promise<string[]> {
    try {
      const client = await kubeClientFromFlags(this.flags);
      try {
        const list = await client.request<{ groups: { name: string }[] }>('/apis', { signal: this.signal });
        return list.groups.map((g) => g.name);
      } finally {
        client.close();
      }
    } catch (err) {
      this.logger.warn(`Could not read the cluster's API groups (${messageOf(err)}); granting the built-in groups only. Add CRD groups with --api-groups, or use --offline to silence this.`);
      return BUILTIN_API_GROUPS;
    }
  }
}
