/**
 * The eviction loop against a scripted NodeApi: the answers kubectl drain's loop must handle,
 * without a cluster (the e2e tests run the same paths against a real API server).
 */
import { describe, expect, it } from 'vitest';
import type { NodeApi } from '../../src/drain/api.js';
import { evictPods, type EvictConfig, type EvictEvent } from '../../src/drain/evict.js';
import type { Pod } from '../../src/drain/types.js';
import { KubeApiError } from '../../src/kube/errors.js';

const pod = (name: string, extra: Partial<Pod['metadata']> = {}): Pod => ({
  metadata: { name, namespace: 'ns', uid: `uid-${name}`, labels: { app: 'x' }, ...extra },
  spec: { nodeName: 'n1', containers: [{ name: 'c' }] },
  status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
});
const cfg = (o: Partial<EvictConfig> = {}): EvictConfig => ({
  gracePeriodSeconds: -1,
  disableEviction: false,
  dryRun: 'none',
  concurrency: 5,
  deadline: undefined,
  skipWaitForDeleteTimeoutSeconds: 0,
  pollIntervalMs: 5,
  chunkSize: 500,
  transientWindowMs: 200,
  ...o,
});
const tooMany = (pdb?: string) =>
  new KubeApiError(429, 'TooManyRequests', 'Cannot evict pod as it would violate the pod\'s disruption budget.', {
    details: { causes: pdb ? [{ reason: 'DisruptionBudget', message: `The disruption budget ${pdb} needs 2 healthy pods and has 2 currently` }] : [] },
  });
const refused = Object.assign(new Error('Cannot reach the Kubernetes API server'), { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });

/** A node whose pods vanish once evicted; `answer` decides each eviction attempt (undefined: accepted). */
function fakeApi(pods: Pod[], answer: (p: Pod, attempt: number) => Error | undefined) {
  const present = new Map(pods.map((p) => [p.metadata.uid!, p]));
  const attempts = new Map<string, number>();
  const evicted: string[] = [];
  const api = {
    evict: async (p: Pod) => {
      const n = (attempts.get(p.metadata.name) ?? 0) + 1;
      attempts.set(p.metadata.name, n);
      await new Promise((r) => setTimeout(r, 2));
      const err = answer(p, n);
      if (err) throw err;
      evicted.push(p.metadata.name);
      present.delete(p.metadata.uid!);
    },
    deletePod: async () => undefined,
    podsOnNode: async () => [...present.values()],
    getPdb: async () => ({ metadata: { name: 'db-pdb', namespace: 'ns' }, spec: {}, status: { currentHealthy: 2, desiredHealthy: 2, expectedPods: 2, disruptionsAllowed: 0 } }),
    listPdbs: async () => [
      { metadata: { name: 'a', namespace: 'ns' }, spec: { selector: { matchLabels: { app: 'x' } } } },
      { metadata: { name: 'b', namespace: 'ns' }, spec: { selector: {} } },
    ],
    getPod: async (_ns: string, name: string) => [...present.values()].find((p) => p.metadata.name === name),
  };
  return { api: api as unknown as NodeApi, evicted, attempts, present };
}

describe('evictPods', () => {
  it('evicts every pod and waits until its UID has left the node', async () => {
    const pods = ['a', 'b', 'c'].map((n) => pod(n));
    const { api, evicted } = fakeApi(pods, () => undefined);
    const events: EvictEvent[] = [];
    const out = await evictPods(api, 'n1', pods, cfg(), { onEvent: (e) => events.push(e) });
    expect(out.failure).toBeUndefined();
    expect(evicted.sort()).toEqual(['a', 'b', 'c']);
    expect(out.evicted.every((r) => r.goneAt)).toBe(true);
    expect(events.filter((e) => e.type === 'gone')).toHaveLength(3);
  });

  it('sends no queued eviction once the drain has failed (10 pods, 2 at a time)', async () => {
    const pods = Array.from({ length: 10 }, (_, i) => pod(`p${i}`));
    const { api, evicted } = fakeApi(pods, (p) =>
      p.metadata.name === 'p0' ? new KubeApiError(500, 'InternalError', 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.', undefined) : undefined,
    );
    const out = await evictPods(api, 'n1', pods, cfg({ concurrency: 2 }));
    expect(out.failure?.message).toMatch(/more than one PodDisruptionBudget \(ns\/a, ns\/b\)/);
    // Only what was already in flight (at most --concurrency) goes through.
    expect(evicted.length).toBeLessThanOrEqual(2);
    expect(out.stuck.filter((x) => /not evicted: the drain stopped first/.test(x.reason))).toHaveLength(10 - evicted.length);
  });

  it('a 409 (the pod was replaced) and a 404 count as gone', async () => {
    const pods = [pod('a'), pod('b')];
    const { api } = fakeApi(pods, (p) => (p.metadata.name === 'a' ? new KubeApiError(409, 'Conflict', 'Precondition failed: UID', undefined) : new KubeApiError(404, 'NotFound', 'not found', undefined)));
    const out = await evictPods(api, 'n1', pods, cfg());
    expect(out.failure).toBeUndefined();
    expect(out.evicted.map((r) => r.pod).sort()).toEqual(['ns/a', 'ns/b']);
  });

  it('retries a 429 naming the PDB and its counts, then succeeds', async () => {
    const pods = [pod('a')];
    const { api, attempts } = fakeApi(pods, (_, n) => (n < 3 ? tooMany('db-pdb') : undefined));
    const events: EvictEvent[] = [];
    const out = await evictPods(api, 'n1', pods, cfg(), { onEvent: (e) => events.push(e) });
    expect(out.failure).toBeUndefined();
    expect(attempts.get('a')).toBe(3);
    const blocked = events.find((e) => e.type === 'blocked');
    expect(blocked && blocked.type === 'blocked' && blocked.message).toMatch(/PodDisruptionBudget ns\/db-pdb allows no disruptions \(currentHealthy 2, desiredHealthy 2, expectedPods 2\)/);
  });

  it('a PDB refusal past the deadline fails as blocked; throttling past it as a timeout', async () => {
    const { api } = fakeApi([pod('a')], () => tooMany('db-pdb'));
    const out = await evictPods(api, 'n1', [pod('a')], cfg({ deadline: Date.now() + 300 }));
    expect(out.failure?.kind).toBe('pdb');
    expect(out.stuck[0]?.pdb?.name).toBe('ns/db-pdb');
    const throttled = fakeApi([pod('b')], () => tooMany());
    const out2 = await evictPods(throttled.api, 'n1', [pod('b')], cfg({ deadline: Date.now() + 300 }));
    expect(out2.failure?.kind).toBe('timeout');
    expect(out2.failure?.message).toMatch(/throttling/);
  });

  it('waits out an unreachable API server for the window, which a PDB retry in between resets', async () => {
    // blip (t=0), 429, blip (t≈1 s, past the 600 ms window unless the 429 reset it), 429, accepted.
    const { api } = fakeApi([pod('a')], (_, n) => (n > 4 ? undefined : n % 2 === 1 ? refused : tooMany('db-pdb')));
    const out = await evictPods(api, 'n1', [pod('a')], cfg({ transientWindowMs: 600 }));
    expect(out.failure).toBeUndefined();
    // Down for longer than the window: fails naming the cause.
    const down = fakeApi([pod('b')], () => refused);
    const out2 = await evictPods(down.api, 'n1', [pod('b')], cfg({ transientWindowMs: 100 }));
    expect(out2.failure?.kind).toBe('error');
    expect(out2.failure?.message).toMatch(/Cannot evict pod ns\/b: Cannot reach the Kubernetes API server/);
  }, 15_000);

  it('a namespace being deleted: once the pod is going, it is waited for instead of retried', async () => {
    const terminating = new KubeApiError(403, 'Forbidden', 'namespace ns is being terminated', { details: { causes: [{ reason: 'NamespaceTerminating' }] } });
    const pods = [pod('a')];
    const fake = fakeApi(pods, (_, n) => {
      if (n === 2) fake.present.delete('uid-a'); // the namespace controller deleted it meanwhile
      return terminating;
    });
    const out = await evictPods(fake.api, 'n1', pods, cfg({ deadline: Date.now() + 10_000 }));
    expect(out.failure).toBeUndefined();
    expect(out.evicted[0]?.goneAt).toBeDefined();
  });

  it('an interrupt stops at once and reports what remains', async () => {
    const ac = new AbortController();
    const { api } = fakeApi([pod('a')], () => tooMany('db-pdb'));
    setTimeout(() => ac.abort(), 50);
    const out = await evictPods(api, 'n1', [pod('a')], cfg(), { signal: ac.signal });
    expect(out.failure?.kind).toBe('interrupted');
    expect(out.stuck.map((s) => s.pod)).toEqual(['ns/a']);
  });
});
