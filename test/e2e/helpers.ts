/**
 * Helpers for end-to-end tests against the rig's Kubernetes control plane (test/rig/kube.ts):
 * a small JSON client for the API server (client certificates from the kubeconfig), the rig's
 * kubectl, simulated kwok nodes, workload builders and polling.
 *
 * Isolation: every test file calls `e2eEnv(name)`, which creates its own namespace and labels
 * the nodes it creates with `lifeboat.test/pool=<namespace>`; the workload builders select that
 * pool, so files never schedule onto each other's nodes. `env.cleanup()` deletes both.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import net from 'node:net';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { KWOK_NODE_ANNOTATION, SLOW_TERMINATION_ANNOTATION } from '../rig/kube.js';
import type { KubeContext } from '../rig/kube-global-setup.js';

const execFileP = promisify(execFile);

export { KWOK_NODE_ANNOTATION, SLOW_TERMINATION_ANNOTATION };
export const POOL_LABEL = 'lifeboat.test/pool';

// ---------------------------------------------------------------------------
// Types (only the fields the tests touch)
// ---------------------------------------------------------------------------

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  resourceVersion?: string;
  generation?: number;
  deletionTimestamp?: string;
  ownerReferences?: { kind: string; name: string; uid: string; controller?: boolean }[];
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: unknown;
  status?: unknown;
  [key: string]: unknown;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

export interface Node extends KubeObject {
  spec: { unschedulable?: boolean; taints?: Taint[]; podCIDR?: string };
  status: {
    conditions?: Condition[];
    allocatable?: Record<string, string>;
    capacity?: Record<string, string>;
    addresses?: { type: string; address: string }[];
    nodeInfo?: { kubeletVersion?: string; [k: string]: string | undefined };
  };
}

export interface Pod extends KubeObject {
  spec: { nodeName?: string; containers: { name: string; image: string }[]; terminationGracePeriodSeconds?: number };
  status: { phase?: string; conditions?: Condition[]; podIP?: string; hostIP?: string };
}

export interface PodDisruptionBudget extends KubeObject {
  status?: {
    observedGeneration?: number;
    disruptionsAllowed?: number;
    currentHealthy?: number;
    desiredHealthy?: number;
    expectedPods?: number;
  };
}

export interface List<T> {
  kind?: string;
  metadata: { continue?: string; remainingItemCount?: number; resourceVersion?: string };
  items: T[];
}

export interface StatusBody {
  kind?: 'Status';
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[] };
}

// ---------------------------------------------------------------------------
// API client
// ---------------------------------------------------------------------------

export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly path: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    const msg = typeof body === 'object' && body !== null && 'message' in body ? String((body as StatusBody).message) : String(body);
    super(`${method} ${path}: HTTP ${status}: ${msg}`);
    this.name = 'ApiError';
  }
}

export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

export type PatchType = 'merge' | 'strategic' | 'json';
const PATCH_CONTENT_TYPE: Record<PatchType, string> = {
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
  json: 'application/json-patch+json',
};

interface KubeconfigFile {
  'current-context'?: string;
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  clusters?: { name: string; cluster: { server: string; 'certificate-authority-data'?: string } }[];
  users?: { name: string; user: { 'client-certificate-data'?: string; 'client-key-data'?: string } }[];
}

/** A minimal JSON client for the API server, authenticated by the kubeconfig's client certificate. */
export class Kube {
  readonly server: string;
  readonly kubeconfig: string;
  readonly version: string;
  readonly kubectlBin: string;
  private readonly agent: Agent;

  constructor(ctx: Pick<KubeContext, 'kubeconfig' | 'version' | 'bins'>) {
    this.kubeconfig = ctx.kubeconfig;
    this.version = ctx.version;
    this.kubectlBin = ctx.bins.kubectl;
    const cfg = parseYaml(readFileSync(ctx.kubeconfig, 'utf8')) as KubeconfigFile;
    const context = cfg.contexts?.find((c) => c.name === cfg['current-context'])?.context;
    const cluster = cfg.clusters?.find((c) => c.name === context?.cluster)?.cluster;
    const user = cfg.users?.find((u) => u.name === context?.user)?.user;
    if (!cluster || !user?.['client-certificate-data'] || !user['client-key-data'] || !cluster['certificate-authority-data']) {
      throw new Error(`${ctx.kubeconfig}: need a current context with embedded CA and client certificate data`);
    }
    const b64 = (s: string): Buffer => Buffer.from(s, 'base64');
    this.server = cluster.server.replace(/\/$/, '');
    this.agent = new Agent({
      keepAlive: true,
      ca: b64(cluster['certificate-authority-data']),
      cert: b64(user['client-certificate-data']),
      key: b64(user['client-key-data']),
    });
  }

  /** The cluster of this test run (`inject('kube')`). */
  static fromInject(): Kube {
    return new Kube(inject('kube'));
  }

  /** Any request; resolves with the status and the parsed JSON (or text) body, never throws on HTTP errors. */
  request<T = unknown>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<ApiResponse<T>> {
    const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(this.server + path),
        {
          method,
          agent: this.agent,
          headers: {
            accept: 'application/json',
            ...(payload ? { 'content-type': contentType, 'content-length': payload.length } : {}),
          },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            try {
              parsed = text === '' ? undefined : JSON.parse(text);
            } catch {
              // not JSON: keep the text
            }
            resolve({ status: res.statusCode ?? 0, body: parsed as T });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      if (payload) req.write(payload);
      req.end();
    });
  }

  private async ok<T>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const res = await this.request<T>(method, path, body, contentType);
    if (res.status < 200 || res.status > 299) throw new ApiError(method, path, res.status, res.body);
    return res.body;
  }

  get<T = KubeObject>(path: string): Promise<T> {
    return this.ok<T>('GET', path);
  }

  /** GET, or undefined on 404. */
  async getOrUndefined<T = KubeObject>(path: string): Promise<T | undefined> {
    const res = await this.request<T>('GET', path);
    if (res.status === 404) return undefined;
    if (res.status < 200 || res.status > 299) throw new ApiError('GET', path, res.status, res.body);
    return res.body;
  }

  list<T = KubeObject>(path: string, query: Record<string, string | number | undefined> = {}): Promise<List<T>> {
    return this.ok<List<T>>('GET', withQuery(path, query));
  }

  create<T = KubeObject>(collectionPath: string, obj: unknown): Promise<T> {
    return this.ok<T>('POST', collectionPath, obj);
  }

  patch<T = KubeObject>(path: string, patch: unknown, type: PatchType = 'merge'): Promise<T> {
    return this.ok<T>('PATCH', path, patch, PATCH_CONTENT_TYPE[type]);
  }

  /** DELETE; a missing object is not an error. */
  async delete(path: string, options: { gracePeriodSeconds?: number; propagationPolicy?: 'Foreground' | 'Background' | 'Orphan' } = {}): Promise<void> {
    const res = await this.request('DELETE', path, { apiVersion: 'v1', kind: 'DeleteOptions', ...options });
    if (res.status !== 404 && (res.status < 200 || res.status > 299)) throw new ApiError('DELETE', path, res.status, res.body);
  }

  /** Runs the rig's kubectl against this cluster; resolves with stdout. */
  async kubectl(args: string[], input?: string): Promise<string> {
    const child = execFileP(this.kubectlBin, ['--kubeconfig', this.kubeconfig, ...args], { maxBuffer: 64 * 1024 * 1024 });
    if (input !== undefined) {
      child.child.stdin?.end(input);
    }
    try {
      return (await child).stdout;
    } catch (err) {
      const e = err as Error & { stderr?: string };
      throw new Error(`kubectl ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
    }
  }

  close(): void {
    this.agent.destroy();
  }
}

export function withQuery(path: string, query: Record<string, string | number | undefined>): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs === '' ? path : `${path}${path.includes('?') ? '&' : '?'}${qs}`;
}

// ---------------------------------------------------------------------------
// Polling
// ---------------------------------------------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `check` until it returns a value other than undefined/false; throws after timeoutMs with
 * `what` and the last value seen (or the last error).
 */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  { timeoutMs = 60_000, intervalMs = 250 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what} (last: ${detail})`);
    }
    await sleep(intervalMs);
  }
}

export function condition(obj: { status?: { conditions?: Condition[] } } | undefined, type: string): Condition | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}

// ---------------------------------------------------------------------------
// A test file's environment: namespace + node pool
// ---------------------------------------------------------------------------

export interface NodeSpec {
  /** Name suffix; the node is named `<pool>-<name>`. */
  name: string;
  role?: 'control-plane' | 'worker';
  labels?: Record<string, string>;
  /** Default: control-plane nodes get node-role.kubernetes.io/control-plane:NoSchedule, workers none. */
  taints?: Taint[];
  /** Allocatable (= capacity) resources; default cpu 4, memory 16Gi, pods 110. */
  resources?: Record<string, string>;
  /** status.nodeInfo.kubeletVersion; default: the control plane's version. */
  kubeletVersion?: string;
  unschedulable?: boolean;
  /** false: kwok leaves the node alone (it never becomes Ready, like a dead kubelet). Default true. */
  managed?: boolean;
}

export interface E2eEnv {
  kube: Kube;
  /** This file's namespace (also the node pool name). */
  namespace: string;
  /** Creates simulated nodes labelled with this file's pool; waits until they are Ready and schedulable. */
  createNodes(specs: NodeSpec[]): Promise<Node[]>;
  /** Node names created so far. */
  nodes: string[];
  /** Deletes the namespace (waiting for it to go) and the nodes. */
  cleanup(): Promise<void>;
}

let nodeCounter = 0;

/** Creates a namespace `e2e-<name>-<random>` and waits for its default ServiceAccount. */
export async function e2eEnv(name: string, kube: Kube = Kube.fromInject()): Promise<E2eEnv> {
  const namespace = `e2e-${name}-${randomBytes(3).toString('hex')}`;
  await kube.create('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } });
  await waitFor(`default ServiceAccount in ${namespace}`, () => kube.getOrUndefined(`/api/v1/namespaces/${namespace}/serviceaccounts/default`));
  const nodes: string[] = [];
  return {
    kube,
    namespace,
    nodes,
    async createNodes(specs) {
      const created: Node[] = [];
      for (const spec of specs) {
        const node = nodeManifest(`${namespace}-${spec.name}`, namespace, spec, kube.version, ++nodeCounter);
        created.push(await kube.create<Node>('/api/v1/nodes', node));
        nodes.push(node.metadata.name);
      }
      return Promise.all(created.map((n, i) => (specs[i]?.managed === false ? n : waitNodeReady(kube, n.metadata.name))));
    },
    async cleanup() {
      // Namespace first, while its pods' nodes still exist (pods orphaned by a deleted node wait
      // out the pod GC's 40 s quarantine). Pods on a node kwok does not manage would stay
      // Terminating for ever, as on a dead node: force-delete every pod.
      await kube.delete(`/api/v1/namespaces/${namespace}`);
      const res = await kube.request('DELETE', `/api/v1/namespaces/${namespace}/pods`, { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 });
      if (res.status !== 404 && (res.status < 200 || res.status > 299)) throw new ApiError('DELETE', `/api/v1/namespaces/${namespace}/pods`, res.status, res.body);
      await waitFor(`namespace ${namespace} to be deleted`, async () => (await kube.getOrUndefined(`/api/v1/namespaces/${namespace}`)) === undefined, {
        timeoutMs: 120_000,
        intervalMs: 250,
      });
      await Promise.all(nodes.map((n) => kube.delete(`/api/v1/nodes/${n}`)));
    },
  };
}

export function nodeManifest(name: string, pool: string, spec: NodeSpec, defaultKubeletVersion: string, index: number): Node {
  const role = spec.role ?? 'worker';
  const resources = spec.resources ?? { cpu: '4', memory: '16Gi', pods: '110', 'ephemeral-storage': '100Gi' };
  const taints = spec.taints ?? (role === 'control-plane' ? [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' as const }] : []);
  const ip = `10.1.${Math.floor(index / 250) % 250}.${(index % 250) + 1}`;
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        [`node-role.kubernetes.io/${role}`]: '',
        [POOL_LABEL]: pool,
        ...spec.labels,
      },
      annotations: {
        'node.alpha.kubernetes.io/ttl': '0',
        ...(spec.managed === false ? {} : { [KWOK_NODE_ANNOTATION]: 'fake' }),
      },
    },
    spec: {
      taints,
      ...(spec.unschedulable ? { unschedulable: true } : {}),
      podCIDR: `10.244.${index % 256}.0/24`,
    },
    status: {
      allocatable: resources,
      capacity: resources,
      addresses: [
        { type: 'InternalIP', address: ip },
        { type: 'Hostname', address: name },
      ],
      nodeInfo: {
        kubeletVersion: spec.kubeletVersion ?? defaultKubeletVersion,
        kubeProxyVersion: '',
        architecture: 'amd64',
        operatingSystem: 'linux',
        containerRuntimeVersion: 'containerd://2.1.0',
        kernelVersion: '6.12.0-kwok',
        osImage: 'Debian GNU/Linux 13 (simulated by kwok)',
        machineID: '',
        systemUUID: '',
        bootID: '',
      },
    },
  };
}

/** Waits until the node is Ready and the node lifecycle controller has lifted its not-ready taint. */
export function waitNodeReady(kube: Kube, name: string, timeoutMs = 90_000): Promise<Node> {
  return waitFor(
    `node ${name} Ready`,
    async () => {
      const node = await kube.get<Node>(`/api/v1/nodes/${name}`);
      const ready = condition(node, 'Ready')?.status === 'True';
      const notReadyTaint = (node.spec.taints ?? []).some((t) => t.key === 'node.kubernetes.io/not-ready' || t.key === 'node.kubernetes.io/unreachable');
      return ready && !notReadyTaint ? node : undefined;
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/** Simulates a kubelet upgrade: the kubelet reports its new version in the node status. */
export function setKubeletVersion(kube: Kube, node: string, version: string): Promise<Node> {
  return kube.patch<Node>(`/api/v1/nodes/${node}/status`, { status: { nodeInfo: { kubeletVersion: version } } }, 'strategic');
}

export function cordon(kube: Kube, node: string, unschedulable = true): Promise<Node> {
  return kube.patch<Node>(`/api/v1/nodes/${node}`, { spec: { unschedulable } });
}

/** Creates a workload while only `on` is schedulable in the env's pool, so all its pods land there. */
export async function placeOn(env: E2eEnv, on: string, create: () => Promise<void>, wait: () => Promise<unknown>): Promise<void> {
  const others = env.nodes.filter((n) => n !== on);
  for (const n of others) await cordon(env.kube, n);
  try {
    await create();
    await wait();
  } finally {
    for (const n of others) await cordon(env.kube, n, false);
  }
}

// ---------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------

export interface PodOptions {
  /** Pod labels (also the selector); default { app: name }. */
  labels?: Record<string, string>;
  /** Node pool (label lifeboat.test/pool) the pods must run in; default: none. */
  pool?: string;
  terminationGracePeriodSeconds?: number;
  /** The containers ignore SIGTERM: the pod takes its whole grace period to terminate. */
  slowTermination?: boolean;
  tolerations?: { key?: string; operator?: 'Exists' | 'Equal'; value?: string; effect?: string }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  priorityClassName?: string;
  /** Extra pod-template annotations. */
  annotations?: Record<string, string>;
  volumes?: unknown[];
}

function podTemplate(name: string, o: PodOptions): { metadata: Partial<ObjectMeta>; spec: Record<string, unknown> } {
  const labels = o.labels ?? { app: name };
  const annotations = { ...o.annotations, ...(o.slowTermination ? { [SLOW_TERMINATION_ANNOTATION]: 'true' } : {}) };
  return {
    metadata: { labels, ...(Object.keys(annotations).length > 0 ? { annotations } : {}) },
    spec: {
      containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.10', ...(o.resources ? { resources: o.resources } : {}) }],
      ...(o.pool ? { nodeSelector: { [POOL_LABEL]: o.pool } } : {}),
      ...(o.tolerations ? { tolerations: o.tolerations } : {}),
      ...(o.terminationGracePeriodSeconds !== undefined ? { terminationGracePeriodSeconds: o.terminationGracePeriodSeconds } : {}),
      ...(o.priorityClassName ? { priorityClassName: o.priorityClassName } : {}),
      ...(o.volumes ? { volumes: o.volumes } : {}),
    },
  };
}

export function deployment(namespace: string, name: string, replicas: number, o: PodOptions = {}): KubeObject {
  const t = podTemplate(name, o);
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: { replicas, selector: { matchLabels: t.metadata.labels }, template: t },
  };
}

export function statefulSet(namespace: string, name: string, replicas: number, o: PodOptions = {}): KubeObject {
  const t = podTemplate(name, o);
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace },
    spec: { replicas, serviceName: name, selector: { matchLabels: t.metadata.labels }, template: t },
  };
}

export function daemonSet(namespace: string, name: string, o: PodOptions = {}): KubeObject {
  const t = podTemplate(name, o);
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name, namespace },
    spec: { selector: { matchLabels: t.metadata.labels }, template: t },
  };
}

export function podDisruptionBudget(
  namespace: string,
  name: string,
  matchLabels: Record<string, string>,
  budget: { minAvailable: number | string } | { maxUnavailable: number | string },
): KubeObject {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace },
    spec: { selector: { matchLabels }, ...budget },
  };
}

/** Creates a namespaced apps/v1 workload or policy/v1 PDB built by the functions above. */
export function createIn<T = KubeObject>(kube: Kube, obj: KubeObject): Promise<T> {
  const [group, version] = obj.apiVersion?.includes('/') ? obj.apiVersion.split('/') : ['', obj.apiVersion];
  const plural = `${obj.kind?.toLowerCase()}s`.replace(/ys$/, 'ies');
  const prefix = group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
  const ns = obj.metadata.namespace;
  return kube.create<T>(ns ? `${prefix}/namespaces/${ns}/${plural}` : `${prefix}/${plural}`, obj);
}

export async function listPods(kube: Kube, namespace: string, labelSelector?: Record<string, string>): Promise<Pod[]> {
  const sel = labelSelector ? Object.entries(labelSelector).map(([k, v]) => `${k}=${v}`).join(',') : undefined;
  return (await kube.list<Pod>(`/api/v1/namespaces/${namespace}/pods`, { labelSelector: sel })).items;
}

export function isRunningReady(pod: Pod): boolean {
  return pod.status.phase === 'Running' && condition(pod, 'Ready')?.status === 'True' && pod.metadata.deletionTimestamp === undefined;
}

/** Waits until exactly `count` pods match and all are Running and Ready (terminating ones excluded). */
export function waitPodsRunning(kube: Kube, namespace: string, labelSelector: Record<string, string>, count: number, timeoutMs = 120_000): Promise<Pod[]> {
  return waitFor(
    `${count} Running pods ${JSON.stringify(labelSelector)} in ${namespace}`,
    async () => {
      const pods = (await listPods(kube, namespace, labelSelector)).filter((p) => p.metadata.deletionTimestamp === undefined);
      return pods.length === count && pods.every(isRunningReady) ? pods : undefined;
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/** Waits until the disruption controller has computed the PDB's current spec. */
export function waitPdb(
  kube: Kube,
  namespace: string,
  name: string,
  expect: { disruptionsAllowed: number; currentHealthy?: number },
  timeoutMs = 60_000,
): Promise<PodDisruptionBudget> {
  return waitFor(
    `PDB ${namespace}/${name} to allow ${expect.disruptionsAllowed} disruptions`,
    async () => {
      const pdb = await kube.get<PodDisruptionBudget>(`/apis/policy/v1/namespaces/${namespace}/poddisruptionbudgets/${name}`);
      const s = pdb.status;
      const fresh = s?.observedGeneration === pdb.metadata.generation;
      const ok = s?.disruptionsAllowed === expect.disruptionsAllowed && (expect.currentHealthy === undefined || s.currentHealthy === expect.currentHealthy);
      return fresh && ok ? pdb : undefined;
    },
    { timeoutMs, intervalMs: 500 },
  );
}

/** POSTs a policy/v1 Eviction for the pod; resolves with the raw status and body (429 when a PDB blocks it). */
export function evict(kube: Kube, namespace: string, pod: string, gracePeriodSeconds?: number): Promise<ApiResponse<StatusBody>> {
  return kube.request<StatusBody>('POST', `/api/v1/namespaces/${namespace}/pods/${pod}/eviction`, {
    apiVersion: 'policy/v1',
    kind: 'Eviction',
    metadata: { name: pod, namespace },
    ...(gracePeriodSeconds !== undefined ? { deleteOptions: { gracePeriodSeconds } } : {}),
  });
}

// ---------------------------------------------------------------------------
// CRDs
// ---------------------------------------------------------------------------

export interface CrdOptions {
  group: string;
  kind: string;
  /** Default: lower-case kind + "s". */
  plural?: string;
  scope?: 'Namespaced' | 'Cluster';
  /** Served versions; the first is the storage version. Default ['v1']. */
  versions?: string[];
  /** Serve status as a subresource (status then accepts any object too). */
  statusSubresource?: boolean;
  /** Default: lower-case kind. */
  singular?: string;
}

/** A CRD whose versions accept any object under spec (and status) (x-kubernetes-preserve-unknown-fields). */
export function crd(o: CrdOptions): KubeObject {
  const plural = o.plural ?? `${o.kind.toLowerCase()}s`;
  const versions = o.versions ?? ['v1'];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${o.group}` },
    spec: {
      group: o.group,
      scope: o.scope ?? 'Namespaced',
      names: { kind: o.kind, listKind: `${o.kind}List`, plural, singular: o.singular ?? o.kind.toLowerCase() },
      versions: versions.map((name, i) => ({
        name,
        served: true,
        storage: i === 0,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
              ...(o.statusSubresource ? { status: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } : {}),
            },
          },
        },
        ...(o.statusSubresource ? { subresources: { status: {} } } : {}),
      })),
    },
  };
}

/** Creates the CRD and waits until it is Established and its first version is served. */
export async function createCrd(kube: Kube, o: CrdOptions, timeoutMs = 60_000): Promise<KubeObject> {
  const obj = crd(o);
  await kube.create('/apis/apiextensions.k8s.io/v1/customresourcedefinitions', obj);
  const established = await waitFor(
    `CRD ${obj.metadata.name} Established`,
    async () => {
      const c = await kube.get<KubeObject & { status?: { conditions?: Condition[] } }>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${obj.metadata.name}`);
      return condition(c, 'Established')?.status === 'True' ? c : undefined;
    },
    { timeoutMs },
  );
  const version = o.versions?.[0] ?? 'v1';
  await waitFor(`${o.group}/${version} discovery`, async () => (await kube.request('GET', `/apis/${o.group}/${version}`)).status === 200, { timeoutMs });
  return established;
}

// ---------------------------------------------------------------------------
// Service-account credentials
// ---------------------------------------------------------------------------

/**
 * Writes a kubeconfig for the ServiceAccount `ns/name` (a TokenRequest token and the rig's CA) and
 * waits until the authorizer lets it `verb` `resource`, so RBAC made just before is in effect.
 */
export async function serviceAccountKubeconfig(
  kube: Kube,
  ns: string,
  name: string,
  file: string,
  ready: { resource: string; verb: string; group?: string; namespace?: string },
): Promise<string> {
  const token = await kube.create<{ status: { token: string } }>(`/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds: 3600 },
  });
  const admin = parseYaml(readFileSync(kube.kubeconfig, 'utf8')) as KubeconfigFile;
  const cluster = admin.clusters?.[0]?.cluster;
  if (!cluster) throw new Error(`${kube.kubeconfig}: no cluster`);
  writeFileSync(
    file,
    stringifyYaml({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'rig', cluster }],
      users: [{ name, user: { token: token.status.token } }],
      contexts: [{ name, context: { cluster: 'rig', user: name } }],
      'current-context': name,
    }),
    { mode: 0o600 },
  );
  const user = `system:serviceaccount:${ns}:${name}`;
  await waitFor(`${user} may ${ready.verb} ${ready.resource}`, async () => {
    const review = await kube.create<{ status: { allowed: boolean } }>('/apis/authorization.k8s.io/v1/subjectaccessreviews', {
      apiVersion: 'authorization.k8s.io/v1',
      kind: 'SubjectAccessReview',
      spec: {
        user,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'],
        resourceAttributes: { resource: ready.resource, verb: ready.verb, group: ready.group ?? '', ...(ready.namespace ? { namespace: ready.namespace } : {}) },
      },
    });
    return review.status.allowed;
  });
  return file;
}

/** A TCP pass-through (TLS goes end to end) that can be taken down and brought back on the same port. */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {}

  start(listenPort = 0): Promise<number> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.port, this.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPort, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
    });
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

