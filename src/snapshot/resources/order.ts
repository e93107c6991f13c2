import { grName, type GroupResource } from './types.js';

/**
 * Restore order, by tier; resources in one tier do not depend on each other and may be applied
 * concurrently. CRDs come first (then wait until Established), namespaces next, then what others
 * refer to, workloads top-down (controllers before what they create), services, ingresses, the rest
 * alphabetically (custom resources among them, after their CRDs), and API services and webhook
 * configurations last: a webhook whose service is not up yet would block everything after it.
 */
const TIERS: string[][] = [
  ['customresourcedefinitions.apiextensions.k8s.io'],
  ['namespaces'],
  ['storageclasses.storage.k8s.io'],
  ['persistentvolumes'],
  ['persistentvolumeclaims'],
  ['serviceaccounts'],
  ['secrets'],
  ['configmaps'],
  ['limitranges'],
  ['resourcequotas'],
  ['priorityclasses.scheduling.k8s.io'],
  ['clusterroles.rbac.authorization.k8s.io', 'roles.rbac.authorization.k8s.io'],
  ['clusterrolebindings.rbac.authorization.k8s.io', 'rolebindings.rbac.authorization.k8s.io'],
  ['deployments.apps', 'statefulsets.apps', 'daemonsets.apps', 'cronjobs.batch'],
  ['jobs.batch'],
  ['replicasets.apps', 'replicationcontrollers'],
  ['pods'],
  ['services'],
  ['ingressclasses.networking.k8s.io'],
  ['ingresses.networking.k8s.io'],
];

const LAST: string[][] = [['apiservices.apiregistration.k8s.io'], ['mutatingwebhookconfigurations.admissionregistration.k8s.io', 'validatingwebhookconfigurations.admissionregistration.k8s.io', 'validatingadmissionpolicies.admissionregistration.k8s.io', 'validatingadmissionpolicybindings.admissionregistration.k8s.io']];

/** Sorts resources into restore tiers (each tier sorted by name). */
export function restoreTiers<T extends Pick<GroupResource, 'group' | 'resource'>>(resources: T[]): T[][] {
  const fixed = new Map<string, number>();
  TIERS.forEach((names, i) => names.forEach((n) => fixed.set(n, i)));
  const lastBase = TIERS.length + 1;
  LAST.forEach((names, i) => names.forEach((n) => fixed.set(n, lastBase + i)));
  const restTier = TIERS.length;
  const byTier = new Map<number, T[]>();
  for (const r of resources) {
    const t = fixed.get(grName(r)) ?? restTier;
    const list = byTier.get(t) ?? [];
    list.push(r);
    byTier.set(t, list);
  }
  return [...byTier.entries()]
    .sort(([a], [b]) => a - b)
    .map(([, list]) => list.sort((a, b) => grName(a).localeCompare(grName(b))));
}
