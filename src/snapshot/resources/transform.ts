import { UsageError } from '../../cli/errors.js';
import type { KubeObject, OwnerReference } from './types.js';

export interface TransformOptions {
  includeStatus: boolean;
  preserveNodePorts: boolean;
  /** old namespace -> new namespace. */
  namespaceMapping: Map<string, string>;
  /** Restore objects that a controller owns (default: leave them to their controller). */
  includeOwned: boolean;
}

export type Prepared = { object: KubeObject; skip?: undefined } | { object?: undefined; skip: string };

const STRIP_METADATA = ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'selfLink', 'deletionTimestamp', 'deletionGracePeriodSeconds'];
const PVC_BINDING_ANNOTATIONS = ['pv.kubernetes.io/bind-completed', 'pv.kubernetes.io/bound-by-controller'];
const DYNAMIC_PROVISIONING_ANNOTATIONS = ['pv.kubernetes.io/provisioned-by', 'volume.beta.kubernetes.io/storage-provisioner', 'volume.kubernetes.io/storage-provisioner'];

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined);

/** A deep copy of JSON data (what an archive holds), several times cheaper than structuredClone. */
function cloneData<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(cloneData) as T;
  const out: Obj = {};
  for (const k of Object.keys(v)) out[k] = cloneData((v as Obj)[k]);
  return out as T;
}

export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata.ownerReferences?.find((r) => r.controller);
}

/**
 * Turns a dumped object into one that can be created in a cluster: server-set fields stripped,
 * status dropped unless asked for, cluster-assigned addresses and node bindings cleared,
 * namespaces mapped (in references too). Returns a reason instead when the object should not be
 * restored (owned by a controller that recreates it, a finished pod). Never mutates its input.
 */
export function prepareForRestore(input: KubeObject, opts: TransformOptions): Prepared {
  const owner = controllerOf(input);
  if (owner && !opts.includeOwned) return { skip: `owned by ${owner.kind} ${owner.name}, which recreates it` };
  const obj = cloneData(input);
  const kind = obj.kind;
  if (kind === 'Pod') {
    const phase = asObj(input.status)?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return { skip: `pod has finished (${String(phase)})` };
  }

  const md = obj.metadata as Obj;
  for (const k of STRIP_METADATA) delete md[k];
  if (!opts.includeStatus) delete (obj as Obj).status;
  const mapNs = (ns: unknown) => (typeof ns === 'string' ? (opts.namespaceMapping.get(ns) ?? ns) : ns);
  if (typeof md.namespace === 'string') md.namespace = mapNs(md.namespace);
  if (kind === 'Namespace' && obj.apiVersion === 'v1') md.name = mapNs(md.name);

  const spec = asObj((obj as Obj).spec);
  switch (kind) {
    case 'Service':
      if (spec) {
        if (spec.clusterIP !== 'None') {
          delete spec.clusterIP;
          delete spec.clusterIPs;
        }
        if (!opts.preserveNodePorts) {
          delete spec.healthCheckNodePort;
          for (const p of (spec.ports as Obj[] | undefined) ?? []) delete p.nodePort;
        }
      }
      break;
    case 'Pod':
      if (spec) {
        delete spec.nodeName;
        // The admission controller adds the service-account token volume again.
        const isToken = (v: Obj) => typeof v.name === 'string' && v.name.startsWith('kube-api-access-') && asObj(v.projected) !== undefined;
        const volumes = (spec.volumes as Obj[] | undefined) ?? [];
        const dropped = new Set(volumes.filter(isToken).map((v) => v.name));
        if (dropped.size) {
          spec.volumes = volumes.filter((v) => !dropped.has(v.name));
          for (const c of [...((spec.containers as Obj[] | undefined) ?? []), ...((spec.initContainers as Obj[] | undefined) ?? [])]) {
            if (Array.isArray(c.volumeMounts)) c.volumeMounts = (c.volumeMounts as Obj[]).filter((m) => !dropped.has(m.name));
          }
        }
      }
      break;
    case 'PersistentVolume': {
      const claim = asObj(spec?.claimRef);
      if (claim) {
        delete claim.uid;
        delete claim.resourceVersion;
        claim.namespace = mapNs(claim.namespace);
      }
      break;
    }
    case 'PersistentVolumeClaim': {
      const ann = obj.metadata.annotations ?? {};
      if (spec && DYNAMIC_PROVISIONING_ANNOTATIONS.some((a) => a in ann)) delete spec.volumeName;
      for (const a of PVC_BINDING_ANNOTATIONS) delete ann[a];
      break;
    }
    case 'RoleBinding':
    case 'ClusterRoleBinding':
      for (const s of ((obj as Obj).subjects as Obj[] | undefined) ?? []) {
        if (s.kind === 'ServiceAccount') s.namespace = mapNs(s.namespace);
      }
      break;
  }
  return { object: obj };
}

/**
 * Points ownerReferences at the restored owners' new UIDs. A reference to an owner that was not
 * restored is dropped: a dangling one would make the garbage collector delete the object.
 */
export function relinkOwners(obj: KubeObject, newUids: Map<string, string>): { object: KubeObject; dropped: OwnerReference[] } {
  const refs = obj.metadata.ownerReferences;
  if (!refs?.length) return { object: obj, dropped: [] };
  const kept: OwnerReference[] = [];
  const dropped: OwnerReference[] = [];
  for (const r of refs) {
    const uid = newUids.get(r.uid);
    if (uid) kept.push({ ...r, uid });
    else dropped.push(r);
  }
  const metadata = { ...obj.metadata };
  if (kept.length) metadata.ownerReferences = kept;
  else delete metadata.ownerReferences;
  return { object: { ...obj, metadata }, dropped };
}

/** Parses --namespace-mapping values "a:b". */
export function parseNamespaceMapping(items: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const item of items) {
    const [from, to, extra] = item.split(':');
    if (!from || !to || extra !== undefined || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(to)) {
      throw new UsageError(`Invalid namespace mapping ${JSON.stringify(item)}.`, { hint: 'Use old:new, e.g. --namespace-mapping shop:shop-restored.' });
    }
    m.set(from, to);
  }
  return m;
}
