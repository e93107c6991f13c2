import { Flags } from '@oclif/core';
import { etcdConnectionFrom, type EtcdConnection, type EtcdFlagValues } from '../etcd/connection.js';
import { parseDuration } from './duration.js';
import { withEnv } from './env.js';

/** etcdctl's connection flags; each also reads LIFEBOAT_<FLAG>, then etcdctl's ETCDCTL_<FLAG>. */
export const etcdFlags = withEnv({
  endpoints: Flags.string({ summary: 'Comma-separated etcd endpoints; the first healthy one is used (default 127.0.0.1:2379, or ETCDCTL_ENDPOINTS).', helpGroup: 'ETCD' }),
  cacert: Flags.string({ summary: 'CA bundle to verify etcd servers (ETCDCTL_CACERT).', helpGroup: 'ETCD' }),
  cert: Flags.string({ summary: 'Client certificate (ETCDCTL_CERT).', helpGroup: 'ETCD' }),
  key: Flags.string({ summary: 'Client key (ETCDCTL_KEY).', helpGroup: 'ETCD' }),
  user: Flags.string({ summary: 'etcd user, "name" or "name:password" (ETCDCTL_USER).', helpGroup: 'ETCD' }),
  password: Flags.string({ summary: 'etcd password (ETCDCTL_PASSWORD).', helpGroup: 'ETCD' }),
  'dial-timeout': Flags.string({ summary: 'Time to wait for each endpoint to answer (default 2s).', helpGroup: 'ETCD' }),
  'insecure-skip-tls-verify': Flags.boolean({ summary: 'Accept any etcd server certificate (testing only; ETCDCTL_INSECURE_SKIP_TLS_VERIFY).', helpGroup: 'ETCD' }),
});

export function etcdConnectionFromFlags(flags: EtcdFlagValues): EtcdConnection {
  return etcdConnectionFrom(flags, process.env, (s) => parseDuration(s, '--dial-timeout'));
}

/** The TLS and auth flags alone, for commands whose etcd endpoints come from another flag. */
export const etcdTargetFlags = (() => {
  const { endpoints: _endpoints, ...rest } = etcdFlags;
  return rest;
})();
