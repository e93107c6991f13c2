/**
 * Smoke tests of the e2e rig itself: a real control plane (API server admission and
 * subresources, controllers, scheduler) with kwok nodes behaves as the lifeboat features that
 * build on it (resource dumps, drains, upgrades) need.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  condition,
  cordon,
  createCrd,
  createIn,
  daemonSet,
  deployment,
  e2eEnv,
  evict,
  isRunningReady,
  listPods,
  podDisruptionBudget,
  setKubeletVersion,
  statefulSet,
  waitFor,
  waitNodeReady,
  waitPdb,
  waitPodsRunning,
  type E2eEnv,
  type KubeObject,
  type List,
  type Node,
  type Pod,
} from './helpers.js';

let env: E2eEnv;
const ctx = inject('kube');

beforeAll(async () => {
  env = await e2eEnv('smoke');
  await env.createNodes([
    { name: 'cp-1', role: 'control-plane' },
    { name: 'worker-1' },
    { name: 'worker-2' },
    { name: 'worker-3', resources: { cpu: '2', memory: '8Gi', pods: '20' } },
  ]);
});

afterAll(async () => {
  await env?.cleanup();
  env?.kube.close();
});

describe('control plane', () => {
  it('every component and kubectl report the version the rig built', async () => {
    expect(ctx.version).toMatch(/^v1\.\d+\.\d+$/);
    const v = await env.kube.get<{ gitVersion: string; major: string; minor: string }>('/version');
    expect(v.gitVersion).toBe(ctx.version);
    expect(`v${v.major}.${v.minor}.`).toBe(ctx.version.replace(/\.\d+$/, '.'));
    const kv = JSON.parse(await env.kube.kubectl(['version', '-o', 'json'])) as {
      clientVersion: { gitVersion: string };
      serverVersion: { gitVersion: string };
    };
    expect(kv.clientVersion.gitVersion).toBe(ctx.version);
    expect(kv.serverVersion.gitVersion).toBe(ctx.version);
  });

  it('simulated nodes carry their roles, taints, resources and kubelet version, and hold a Lease', async () => {
    const nodes = await env.kube.list<Node>('/api/v1/nodes', { labelSelector: `lifeboat.test/pool=${env.namespace}` });
    expect(nodes.items.map((n) => n.metadata.name).sort()).toEqual(env.nodes.slice().sort());
    const cp = nodes.items.find((n) => n.metadata.name.endsWith('-cp-1'))!;
    expect(cp.metadata.labels).toHaveProperty(['node-role.kubernetes.io/control-plane'], '');
    expect(cp.spec.taints).toContainEqual({ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' });
    const small = nodes.items.find((n) => n.metadata.name.endsWith('-worker-3'))!;
    expect(small.metadata.labels).toHaveProperty(['node-role.kubernetes.io/worker'], '');
    expect(small.status.allocatable).toMatchObject({ cpu: '2', memory: '8Gi', pods: '20' });
    for (const n of nodes.items) {
      expect(condition(n, 'Ready')?.status).toBe('True');
      expect(n.status.nodeInfo?.kubeletVersion).toBe(ctx.version);
      const lease = await env.kube.get<KubeObject & { spec: { holderIdentity?: string; renewTime?: string } }>(
        `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${n.metadata.name}`,
      );
      // kwok renews the Lease a kubelet would (holder: the kwok controller's identity).
      expect(lease.spec.holderIdentity).toBeTruthy();
      expect(Date.now() - Date.parse(lease.spec.renewTime ?? '1970-01-01T00:00:00Z')).toBeLessThan(120_000);
    }
  });
});

describe('workloads', () => {
  it('Deployment pods are scheduled on schedulable workers and reach Running with pod IPs', async () => {
    await createIn(env.kube, deployment(env.namespace, 'web', 4, { pool: env.namespace }));
    const pods = await waitPodsRunning(env.kube, env.namespace, { app: 'web' }, 4);
    const workers = env.nodes.filter((n) => n.includes('-worker-'));
    for (const p of pods) {
      expect(workers).toContain(p.spec.nodeName);
      expect(p.status.podIP).toMatch(/^10\.244\./);
      expect(p.status.hostIP).toMatch(/^10\.1\./);
    }
    // The default scheduler spreads a ReplicaSet's pods: more than one worker is used.
    expect(new Set(pods.map((p) => p.spec.nodeName)).size).toBeGreaterThan(1);
  });

  it('a DaemonSet tolerating the control-plane taint runs one pod on every node of the pool', async () => {
    await createIn(
      env.kube,
      daemonSet(env.namespace, 'agent', {
        pool: env.namespace,
        tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }],
      }),
    );
    const pods = await waitPodsRunning(env.kube, env.namespace, { app: 'agent' }, env.nodes.length);
    expect(pods.map((p) => p.spec.nodeName).sort()).toEqual(env.nodes.slice().sort());
  });

  it('a StatefulSet creates its ordinal pods in order and they reach Running', async () => {
    await createIn(env.kube, statefulSet(env.namespace, 'db', 3, { pool: env.namespace }));
    const pods = await waitPodsRunning(env.kube, env.namespace, { app: 'db' }, 3);
    expect(pods.map((p) => p.metadata.name).sort()).toEqual(['db-0', 'db-1', 'db-2']);
    await waitFor('StatefulSet db readyReplicas 3', async () => {
      const s = await env.kube.get<KubeObject & { status: { readyReplicas?: number } }>(`/apis/apps/v1/namespaces/${env.namespace}/statefulsets/db`);
      return s.status.readyReplicas === 3;
    });
  });

  it('a pod that does not fit any node stays Pending with a FailedScheduling reason', async () => {
    await createIn(env.kube, deployment(env.namespace, 'huge', 1, { pool: env.namespace, resources: { requests: { cpu: '64' } } }));
    const pod = await waitFor('the huge pod to be reported unschedulable', async () => {
      const [p] = await listPods(env.kube, env.namespace, { app: 'huge' });
      return condition(p, 'PodScheduled')?.reason === 'Unschedulable' ? p : undefined;
    });
    expect(pod.status.phase).toBe('Pending');
    expect(pod.spec.nodeName).toBeUndefined();
    expect(condition(pod, 'PodScheduled')?.message).toMatch(/Insufficient cpu/);
  });
});

describe('eviction and disruption budgets', () => {
  it('an eviction is refused with 429 naming the PDB while disruptionsAllowed is 0, and succeeds once allowed', async () => {
    const { namespace, kube } = env;
    await createIn(kube, deployment(namespace, 'guarded', 2, { pool: namespace }));
    await createIn(kube, podDisruptionBudget(namespace, 'guarded-pdb', { app: 'guarded' }, { minAvailable: 2 }));
    const pods = await waitPodsRunning(kube, namespace, { app: 'guarded' }, 2);
    await waitPdb(kube, namespace, 'guarded-pdb', { disruptionsAllowed: 0, currentHealthy: 2 });

    const victim = pods[0]!.metadata.name;
    const refused = await evict(kube, namespace, victim);
    expect(refused.status).toBe(429);
    expect(refused.body.reason).toBe('TooManyRequests');
    expect(refused.body.details?.causes).toContainEqual(
      expect.objectContaining({ reason: 'DisruptionBudget', message: expect.stringContaining('guarded-pdb') }),
    );
    // Nothing happened to the pod.
    const still = await kube.get<Pod>(`/api/v1/namespaces/${namespace}/pods/${victim}`);
    expect(still.metadata.deletionTimestamp).toBeUndefined();

    await kube.patch(`/apis/policy/v1/namespaces/${namespace}/poddisruptionbudgets/guarded-pdb`, { spec: { minAvailable: 1 } });
    await waitPdb(kube, namespace, 'guarded-pdb', { disruptionsAllowed: 1, currentHealthy: 2 });
    const accepted = await evict(kube, namespace, victim);
    expect(accepted.status).toBe(201);
    expect(accepted.body.status).toBe('Success');
    await waitFor(`evicted pod ${victim} to be gone`, async () => (await kube.getOrUndefined(`/api/v1/namespaces/${namespace}/pods/${victim}`)) === undefined);
  });

  it('the ReplicaSet controller replaces an evicted pod on another schedulable node', async () => {
    const { namespace, kube } = env;
    await createIn(kube, deployment(namespace, 'movable', 1, { pool: namespace }));
    const [pod] = await waitPodsRunning(kube, namespace, { app: 'movable' }, 1);
    const from = pod!.spec.nodeName!;
    await cordon(kube, from);
    try {
      const res = await evict(kube, namespace, pod!.metadata.name);
      expect(res.status).toBe(201);
      const [replacement] = await waitFor('a replacement pod Running elsewhere', async () => {
        const running = (await listPods(kube, namespace, { app: 'movable' })).filter(isRunningReady);
        return running.length === 1 && running[0]!.metadata.uid !== pod!.metadata.uid ? running : undefined;
      });
      expect(replacement!.metadata.name).not.toBe(pod!.metadata.name);
      expect(replacement!.spec.nodeName).toBeDefined();
      expect(replacement!.spec.nodeName).not.toBe(from);
      expect(replacement!.metadata.ownerReferences?.[0]?.kind).toBe('ReplicaSet');
    } finally {
      await cordon(kube, from, false);
    }
  });

  it('a pod whose containers ignore SIGTERM stays Terminating for its grace period; others go at once', async () => {
    const { namespace, kube } = env;
    await createIn(kube, deployment(namespace, 'slow', 1, { pool: namespace, slowTermination: true, terminationGracePeriodSeconds: 4 }));
    await createIn(kube, deployment(namespace, 'quick', 1, { pool: namespace, terminationGracePeriodSeconds: 30 }));
    const [slow] = await waitPodsRunning(kube, namespace, { app: 'slow' }, 1);
    const [quick] = await waitPodsRunning(kube, namespace, { app: 'quick' }, 1);

    const t0 = Date.now();
    await kube.delete(`/api/v1/namespaces/${namespace}/pods/${slow!.metadata.name}`);
    await kube.delete(`/api/v1/namespaces/${namespace}/pods/${quick!.metadata.name}`);
    await waitFor('the quick pod to be gone', async () => (await kube.getOrUndefined(`/api/v1/namespaces/${namespace}/pods/${quick!.metadata.name}`)) === undefined, {
      timeoutMs: 3000,
      intervalMs: 100,
    });
    const terminating = await kube.getOrUndefined<Pod>(`/api/v1/namespaces/${namespace}/pods/${slow!.metadata.name}`);
    expect(terminating?.metadata.deletionTimestamp).toBeDefined();
    await waitFor('the slow pod to be gone', async () => (await kube.getOrUndefined(`/api/v1/namespaces/${namespace}/pods/${slow!.metadata.name}`)) === undefined, {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(3000);
  });
});

describe('nodes', () => {
  it('a kubelet upgrade is simulated by the node reporting a new version; the node stays Ready', async () => {
    const { kube } = env;
    const name = env.nodes.find((n) => n.endsWith('-worker-2'))!;
    const next = ctx.version.replace(/^v(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string) => `v${a}.${b}.${Number(c) + 1}`);
    const patched = await setKubeletVersion(kube, name, next);
    expect(patched.status.nodeInfo?.kubeletVersion).toBe(next);
    // kwok keeps managing the node without reverting what the "kubelet" reported.
    await new Promise((r) => setTimeout(r, 2000));
    const node = await waitNodeReady(kube, name);
    expect(node.status.nodeInfo?.kubeletVersion).toBe(next);
  });

  it('an unmanaged node (no kwok annotation) never becomes Ready', async () => {
    const [dead] = await env.createNodes([{ name: 'dead-1', managed: false }]);
    await new Promise((r) => setTimeout(r, 3000));
    const node = await env.kube.get<Node>(`/api/v1/nodes/${dead!.metadata.name}`);
    expect(condition(node, 'Ready')?.status).not.toBe('True');
  });
});

describe('API machinery', () => {
  it('a CRD becomes Established and serves custom resources', async () => {
    const { namespace, kube } = env;
    const group = `${namespace}.lifeboat.test`;
    const created = await createCrd(kube, { group, kind: 'Widget' });
    expect(condition(created as { status?: { conditions?: { type: string; status: string }[] } }, 'NamesAccepted')?.status).toBe('True');
    await kube.create(`/apis/${group}/v1/namespaces/${namespace}/widgets`, {
      apiVersion: `${group}/v1`,
      kind: 'Widget',
      metadata: { name: 'w1' },
      spec: { size: 3, colour: 'blue' },
    });
    const list = await kube.list<KubeObject & { spec: { size: number } }>(`/apis/${group}/v1/namespaces/${namespace}/widgets`);
    expect(list.items.map((w) => [w.metadata.name, w.spec.size])).toEqual([['w1', 3]]);
    // Discovery lists it, as a resource dump would find it.
    const discovery = await kube.get<{ resources: { name: string; namespaced: boolean; verbs: string[] }[] }>(`/apis/${group}/v1`);
    expect(discovery.resources).toContainEqual(expect.objectContaining({ name: 'widgets', namespaced: true }));
    await kube.delete(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}`);
  });

  it('lists paginate with limit and continue', async () => {
    const { namespace, kube } = env;
    const n = 23;
    for (let i = 0; i < n; i++) {
      await kube.create(`/api/v1/namespaces/${namespace}/configmaps`, {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `page-${String(i).padStart(2, '0')}`, labels: { paging: 'yes' } },
        data: { i: String(i) },
      });
    }
    const seen: string[] = [];
    const pageSizes: number[] = [];
    let cont: string | undefined;
    let first: List<KubeObject> | undefined;
    do {
      const page: List<KubeObject> = await kube.list(`/api/v1/namespaces/${namespace}/configmaps`, { labelSelector: 'paging=yes', limit: 10, continue: cont });
      first ??= page;
      pageSizes.push(page.items.length);
      seen.push(...page.items.map((c) => c.metadata.name));
      cont = page.metadata.continue || undefined;
    } while (cont);
    expect(pageSizes).toEqual([10, 10, 3]);
    expect(first?.metadata.continue).toBeTruthy();
    expect(seen).toEqual(Array.from({ length: n }, (_v, i) => `page-${String(i).padStart(2, '0')}`));
    // An expired or forged continue token is rejected, not silently ignored.
    const bad = await kube.request('GET', `/api/v1/namespaces/${namespace}/configmaps?limit=10&continue=not-a-token`);
    expect(bad.status).toBe(400);
  });
});
