/**
 * The parts of core/v1, policy/v1 and storage objects that cordon, drain and the pre-flight read.
 * Field names are the API's; everything optional that the API may omit.
 */

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  deletionTimestamp?: string;
  creationTimestamp?: string;
  resourceVersion?: string;
  generation?: number;
}

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values?: string[];
}

/** Terms are ORed; the requirements within a term are ANDed. */
export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  /** Only metadata.name is supported by the API. */
  matchFields?: NodeSelectorRequirement[];
}

export interface NodeSelector {
  nodeSelectorTerms: NodeSelectorTerm[];
}

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: string;
  tolerationSeconds?: number;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface PodAffinityTerm {
  labelSelector?: LabelSelector;
  namespaces?: string[];
  namespaceSelector?: LabelSelector;
  topologyKey: string;
}

export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

export interface Volume {
  name: string;
  emptyDir?: Record<string, unknown>;
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
  [source: string]: unknown;
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: {
    nodeName?: string;
    nodeSelector?: Record<string, string>;
    affinity?: {
      nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: NodeSelector };
      podAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[] };
      podAntiAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[] };
    };
    tolerations?: Toleration[];
    containers: { name: string; resources?: ResourceRequirements }[];
    initContainers?: { name: string; resources?: ResourceRequirements; restartPolicy?: string }[];
    overhead?: Record<string, string>;
    volumes?: Volume[];
    terminationGracePeriodSeconds?: number;
  };
  status?: { phase?: 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown'; conditions?: Condition[] };
}

export interface Node {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: { unschedulable?: boolean; taints?: Taint[] };
  status?: {
    allocatable?: Record<string, string>;
    conditions?: Condition[];
    nodeInfo?: { kubeletVersion?: string };
  };
}

export interface PodDisruptionBudget {
  metadata: ObjectMeta;
  spec: {
    /** A null selector matches nothing; an empty one matches every pod in the namespace. */
    selector?: LabelSelector | null;
    minAvailable?: number | string;
    maxUnavailable?: number | string;
    unhealthyPodEvictionPolicy?: 'IfHealthyBudget' | 'AlwaysAllow';
  };
  status?: {
    observedGeneration?: number;
    disruptionsAllowed?: number;
    currentHealthy?: number;
    desiredHealthy?: number;
    expectedPods?: number;
  };
}

export interface PersistentVolumeClaim {
  metadata: ObjectMeta;
  spec: { volumeName?: string; storageClassName?: string };
  status?: { phase?: string };
}

export interface PersistentVolume {
  metadata: ObjectMeta;
  spec: {
    local?: { path: string };
    hostPath?: { path: string };
    nodeAffinity?: { required?: NodeSelector };
    claimRef?: { namespace?: string; name?: string; uid?: string };
    storageClassName?: string;
  };
}

/** What the pre-flight reads from the cluster, once, before it predicts anything. */
export interface ClusterState {
  nodes: Node[];
  /** Every pod in the cluster (resource requests and pod (anti-)affinity need the whole picture). */
  pods: Pod[];
  pdbs: PodDisruptionBudget[];
  pvcs: PersistentVolumeClaim[];
  pvs: PersistentVolume[];
  /** "namespace/name" of every DaemonSet that exists (a pod whose DaemonSet is gone is an orphan). */
  daemonSets: Set<string>;
  /** Namespace labels, for pod affinity terms with a namespaceSelector. */
  namespaceLabels: Map<string, Record<string, string>>;
}

/** "namespace/name". */
export function podKey(pod: Pick<Pod, 'metadata'>): string {
  return `${pod.metadata.namespace ?? ''}/${pod.metadata.name}`;
}

export function controllerOf(meta: ObjectMeta): OwnerReference | undefined {
  return meta.ownerReferences?.find((r) => r.controller === true);
}

export function isPodReady(pod: Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

export function isPodFinished(pod: Pod): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
}
