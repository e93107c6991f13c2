import pLimit from 'p-limit';
import pRetry from 'p-retry';
import type { KubeClient } from '../../kube/client.js';
import { KubeApiError } from '../../kube/errors.js';
import { discoverResources, type ServedResource } from '../../kube/discovery.js';
import type { CompiledFilter } from './filters.js';
import { restoreTiers } from './order.js';
import type { ReadArchive, SpooledResource } from './reader.js';
import { prepareForRestore, relinkOwners, type TransformOptions } from './transform.js';
import { grName, type KubeObject } from './types.js';

export type ExistingPolicy = 'skip' | 'update' | 'recreate';
export type Action = 'created' | 'updated' | 'recreated' | 'skipped' | 'failed' | 'would-create' | 'would-update' | 'unchanged';

export interface ObjectOutcome {
  resource: string;
  namespace?: string;
  name: string;
  action: Action;
  reason?: string;
  /** Dry run against an existing object: the top-level fields that would change. */
  changes?: string[];
}

export interface ApplyOptions {
  client: KubeClient;
  filter: CompiledFilter;
  /** --only resource/namespace/name (namespace "_" or empty for cluster-scoped). */
  only?: { resource: string; namespace?: string | undefined; name: string }[];
  transform: TransformOptions;
  existing: ExistingPolicy;
  forceConflicts: boolean;
  dryRun: boolean;
  concurrency?: number;
  crdTimeoutMs?: number;
  deleteTimeoutMs?: number;
  signal?: AbortSignal | undefined;
  onProgress?: (done: number, total: number) => void;
}

export interface RestoreReport {
  dryRun: boolean;
  existing: ExistingPolicy;
  /** The plan: resources per tier, in order. */
  tiers: string[][];
  counts: Partial<Record<Action, number>>;
  objects: ObjectOutcome[];
  warnings: string[];
}

const CRD = 'customresourcedefinitions.apiextensions.k8s.io';
/** Status the API server computes for itself (conditions, accepted names): never written back. */
const STATUS_NOT_RESTORED = new Set([CRD, 'apiservices.apiregistration.k8s.io']);
const FIELD_MANAGER = 'lifeboat';
const APPLY_PATCH = 'application/apply-patch+yaml';
const transient = (err: unknown) => err instanceof KubeApiError && (err.status === 429 || err.status >= 500);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * fn, and after a transient failure (429, 5xx) fn again with backoff, six tries in all. The
 * first try goes without p-retry, whose bookkeeping costs ~50 µs a call: most of a restore's
 * client time when every object is one request.
 */
async function withRetries<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!transient(err)) throw err;
  }
  await sleep(200);
  return pRetry(fn, { retries: 4, minTimeout: 200, maxTimeout: 5000, shouldRetry: ({ error }) => transient(error) });
}
export const DEFAULT_CRD_TIMEOUT_MS = 60_000;
/**
 * Requests in flight within a tier. 10k ConfigMaps into a 2-CPU control plane: 13.0 s at 8,
 * 10.3 s at 16 (the API server spent less CPU per create, 12.6 against 16.5 s); 32 and 64 were
 * no faster (the client keeps at most 16 connections). The API server's priority and fairness
 * queues, or answers 429 to, whatever is more than it takes; 429s are retried.
 */
export const DEFAULT_RESTORE_CONCURRENCY = 16;

interface CrdCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

const formatSeconds = (ms: number) => `${Math.round(ms / 100) / 10}s`;

/** "widgets.example.com" -> the served-resource key "example.com/widgets". */
const crdServedKey = (crdName: string) => `${crdName.slice(crdName.indexOf('.') + 1)}/${crdName.slice(0, crdName.indexOf('.'))}`;

/** The conditions that keep a CRD from being Established, as "NamesAccepted=False (KindConflict: ...)". */
export function blockingConditions(conditions: CrdCondition[]): string {
  const bad = conditions.filter((c) => (['Established', 'NamesAccepted'].includes(c.type) ? c.status !== 'True' : ['Terminating', 'NonStructuralSchema'].includes(c.type) && c.status === 'True'));
  // The cause first: Established=False usually only echoes it.
  bad.sort((a, b) => Number(a.type === 'Established') - Number(b.type === 'Established'));
  if (bad.length === 0) return 'the API server reports no conditions for it yet';
  return bad.map((c) => `${c.type}=${c.status}${c.reason || c.message ? ` (${[c.reason, c.message].filter(Boolean).join(': ')})` : ''}`).join(', ');
}

function objectPath(r: ServedResource, groupVersion: string, namespace: string | undefined, name?: string): string {
  const base = groupVersion === 'v1' ? '/api/v1' : `/apis/${groupVersion}`;
  const ns = r.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : '';
  return `${base}${ns}/${r.resource}${name ? `/${encodeURIComponent(name)}` : ''}`;
}

/**
 * Top-level fields (and metadata labels/annotations) that differ between what would be applied and
 * what is live; status only when it would be written (withStatus).
 */
export function changedFields(desired: KubeObject, live: KubeObject, withStatus = false): string[] {
  const out: string[] = [];
  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  const ignored = ['apiVersion', 'kind', 'metadata', ...(withStatus ? [] : ['status'])];
  for (const k of new Set([...Object.keys(desired)].filter((k) => !ignored.includes(k)))) {
    if (!same(desired[k], live[k])) out.push(k);
  }
  for (const k of ['labels', 'annotations'] as const) {
    const want = desired.metadata[k] ?? {};
    const have = live.metadata[k] ?? {};
    for (const [key, v] of Object.entries(want)) if (have[key] !== v) out.push(`metadata.${k}.${key}`);
  }
  return out;
}

/**
 * Applies a read archive to a cluster, tier by tier (restoreTiers), with bounded concurrency
 * within a tier: transforms each object, relinks owner references to the owners restored before
 * it, creates it (or skips/updates/recreates it when it exists), writes its status through the
 * status subresource when asked to (the API server ignores status on create and update there),
 * waits for CRDs to be Established before their custom resources, and reports every object's
 * outcome. With dryRun, every request is a server-side dry run and existing objects are compared
 * with the live ones.
 */
export async function applyArchive(archive: ReadArchive, opts: ApplyOptions): Promise<RestoreReport> {
  const { client } = opts;
  const outcomes: ObjectOutcome[] = [];
  const warnings: string[] = [];
  const newUids = new Map<string, string>();
  let served = new Map((await discoverResources(client, { signal: opts.signal })).resources.map((r) => [`${r.group}/${r.resource}`, r]));
  const tiers = restoreTiers(archive.resources);
  const total = archive.resources.reduce((n, r) => n + r.count, 0);
  let done = 0;
  const limit = pLimit(opts.concurrency ?? DEFAULT_RESTORE_CONCURRENCY);
  const dry = opts.dryRun ? { dryRun: 'All' } : {};
  const onlyWanted = (resource: string, ns: string | undefined, name: string) =>
    !opts.only?.length || opts.only.some((o) => (o.resource === resource || o.resource === resource.split('.')[0]) && (o.namespace || undefined) === ns && o.name === name);

  const record = (o: ObjectOutcome) => {
    outcomes.push(o);
    done++;
    opts.onProgress?.(done, total);
  };

  const applyOne = async (r: ServedResource, spooled: SpooledResource, original: KubeObject): Promise<void> => {
    const resource = grName(spooled);
    const ns = r.namespaced ? original.metadata.namespace : undefined;
    const base = { resource, ...(ns ? { namespace: ns } : {}), name: original.metadata.name };
    if (!opts.filter.object(r, original) || !onlyWanted(resource, ns, original.metadata.name)) return void record({ ...base, action: 'skipped', reason: 'filtered out' });
    const prepared = prepareForRestore(original, opts.transform);
    if (prepared.skip !== undefined) return void record({ ...base, action: 'skipped', reason: prepared.skip });
    const { object, dropped } = relinkOwners(prepared.object, newUids);
    const target = { ...base, ...(object.metadata.namespace ? { namespace: object.metadata.namespace } : {}) };
    const oldUid = original.metadata.uid;
    const gv = object.apiVersion;
    const note = dropped.length ? `owner reference to ${dropped.map((d) => `${d.kind} ${d.name}`).join(', ')} dropped (owner not restored)` : undefined;
    const call = <T>(path: string, params: Parameters<KubeClient['request']>[1]) => withRetries(() => client.request<T>(path, { ...params, signal: opts.signal }));
    const collection = objectPath(r, gv, object.metadata.namespace);
    const item = objectPath(r, gv, object.metadata.namespace, object.metadata.name);
    // With a status subresource, create and update ignore status: it is written separately.
    const separateStatus = opts.transform.includeStatus && object.status !== undefined && r.subresources.includes('status') && !STATUS_NOT_RESTORED.has(resource);
    const writeStatus = async (action: 'created' | 'updated' | 'recreated', force: boolean): Promise<void> => {
      if (separateStatus) {
        const { name, namespace } = object.metadata;
        try {
          await call(`${item}/status`, {
            method: 'PATCH',
            body: { apiVersion: object.apiVersion, kind: object.kind, metadata: { name, ...(namespace ? { namespace } : {}) }, status: object.status },
            contentType: APPLY_PATCH,
            query: { fieldManager: FIELD_MANAGER, ...(force ? { force: true } : {}) },
          });
        } catch (err) {
          const why = err instanceof KubeApiError ? `${err.status} ${err.reason}: ${err.message}${err.status === 409 ? ' (--force-conflicts takes the fields over)' : ''}` : (err as Error).message;
          throw new Error(`${action}, but its status could not be written: ${why}`, { cause: err });
        }
      }
      record({ ...target, action, ...(note ? { reason: note } : {}) });
    };
    let created: KubeObject | undefined;
    try {
      created = await call<KubeObject>(collection, { method: 'POST', body: object, query: dry });
    } catch (err) {
      // A dry run does not create namespaces: objects in one it would create cannot be checked.
      if (opts.dryRun && err instanceof KubeApiError && err.status === 404 && object.metadata.namespace && dryRunNamespaces.has(object.metadata.namespace)) {
        return void record({ ...target, action: 'would-create', reason: `in namespace ${object.metadata.namespace}, which would be created first (not checked by the dry run)` });
      }
      if (!(err instanceof KubeApiError) || err.status !== 409) throw err;
    }
    if (created) {
      if (oldUid && created.metadata.uid) newUids.set(oldUid, created.metadata.uid);
      if (opts.dryRun && kind(object) === 'Namespace') dryRunNamespaces.add(object.metadata.name);
      if (opts.dryRun) return void record({ ...target, action: 'would-create', ...(note ? { reason: note } : {}) });
      // Nobody else has written this new object's status: take over any field a controller raced us to.
      return writeStatus('created', true);
    }
    // It exists.
    const live = await call<KubeObject>(item, { method: 'GET' });
    if (oldUid && live.metadata.uid) newUids.set(oldUid, live.metadata.uid);
    if (opts.existing === 'skip') return void record({ ...target, action: 'skipped', reason: 'exists (--existing skip)' });
    if (opts.dryRun) {
      const changes = changedFields(object, live, separateStatus);
      return void record({ ...target, action: changes.length ? 'would-update' : 'unchanged', ...(changes.length ? { changes } : {}) });
    }
    if (opts.existing === 'update') {
      let applied: KubeObject;
      try {
        applied = await call<KubeObject>(item, {
          method: 'PATCH',
          body: object,
          contentType: APPLY_PATCH,
          query: { fieldManager: FIELD_MANAGER, ...(opts.forceConflicts ? { force: true } : {}) },
        });
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 409) throw new Error(`${err.message} (--force-conflicts takes the fields over)`);
        throw err;
      }
      if (oldUid && applied.metadata.uid) newUids.set(oldUid, applied.metadata.uid);
      return writeStatus('updated', opts.forceConflicts);
    }
    // recreate: delete, wait until it is gone, create.
    await call(item, { method: 'DELETE', body: { propagationPolicy: 'Background' } });
    const deadline = Date.now() + (opts.deleteTimeoutMs ?? 120_000);
    for (;;) {
      try {
        const still = await client.request<KubeObject>(item, { signal: opts.signal });
        if (still.metadata.uid !== live.metadata.uid) break;
      } catch (err) {
        if (err instanceof KubeApiError && err.status === 404) break;
        throw err;
      }
      if (Date.now() > deadline) throw new Error(`still being deleted after ${(opts.deleteTimeoutMs ?? 120_000) / 1000}s (finalizers?)`);
      await sleep(250);
    }
    const again = await call<KubeObject>(collection, { method: 'POST', body: object });
    if (oldUid && again.metadata.uid) newUids.set(oldUid, again.metadata.uid);
    await writeStatus('recreated', true);
  };

  const crdTimeoutMs = opts.crdTimeoutMs ?? DEFAULT_CRD_TIMEOUT_MS;
  /** Waits until the CRD is Established; on timeout, the error names the conditions that hold it back. */
  const waitEstablished = async (name: string, deadline: number): Promise<void> => {
    for (;;) {
      const crd = await client.request<{ status?: { conditions?: CrdCondition[] } }>(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${encodeURIComponent(name)}`, { signal: opts.signal });
      const conditions = crd.status?.conditions ?? [];
      if (conditions.some((c) => c.type === 'Established' && c.status === 'True')) return;
      if (Date.now() > deadline) throw new Error(`CustomResourceDefinition ${name} did not become Established within ${formatSeconds(crdTimeoutMs)}: ${blockingConditions(conditions)}`);
      await sleep(250);
    }
  };
  /** CRD name -> why it is not Established; its custom resources fail with that reason. */
  const crdFailures = new Map<string, string>();

  const dryRunNamespaces = new Set<string>();
  const kind = (o: KubeObject) => (o.apiVersion === 'v1' ? o.kind : '');
  const crdsInArchive = new Set<string>();
  const crdSpool = archive.resources.find((r) => grName(r) === CRD);
  if (crdSpool) for await (const crd of archive.objects(crdSpool)) crdsInArchive.add(crd.metadata.name);

  for (const tier of tiers) {
    const jobs: Promise<void>[] = [];
    for (const spooled of tier) {
      const r = served.get(`${spooled.group}/${spooled.resource}`);
      for await (const obj of archive.objects(spooled)) {
        const ns = obj.metadata.namespace;
        const base = { resource: grName(spooled), ...(ns ? { namespace: ns } : {}), name: obj.metadata.name };
        if (!r) {
          const crdFailed = crdFailures.get(grName(spooled));
          if (opts.dryRun && crdsInArchive.has(grName(spooled))) record({ ...base, action: 'would-create', reason: 'after its CustomResourceDefinition is created (not checked by the dry run)' });
          else if (crdFailed) record({ ...base, action: 'failed', reason: `not applied: ${crdFailed}` });
          else record({ ...base, action: 'failed', reason: `${grName(spooled)} is not served by the target cluster` });
          continue;
        }
        jobs.push(
          limit(() =>
            applyOne(r, spooled, obj).catch((err: unknown) => {
              const msg = err instanceof KubeApiError ? `${err.status} ${err.reason}: ${err.message}` : err instanceof Error ? err.message : String(err);
              record({ ...base, action: 'failed', reason: msg });
            }),
          ),
        );
        if (jobs.length >= 256) await Promise.all(jobs.splice(0, 128));
      }
    }
    await Promise.all(jobs);
    if (opts.signal?.aborted) throw opts.signal.reason;
    if (tier.some((s) => grName(s) === CRD) && !opts.dryRun) {
      const inCluster = outcomes.filter((x) => x.resource === CRD && (['created', 'updated', 'recreated'].includes(x.action) || (x.action === 'skipped' && x.reason?.startsWith('exists'))));
      const deadline = Date.now() + crdTimeoutMs;
      const established: string[] = [];
      await Promise.all(
        inCluster.map(async (o) => {
          try {
            await waitEstablished(o.name, deadline);
            established.push(o.name);
          } catch (err) {
            const why = err instanceof KubeApiError ? `CustomResourceDefinition ${o.name}: ${err.status} ${err.reason}: ${err.message}` : (err as Error).message;
            warnings.push(why);
            crdFailures.set(o.name, why);
            o.reason = o.action === 'skipped' ? `exists, but ${why}` : `${o.action}, but ${why}`;
            o.action = 'failed';
          }
        }),
      );
      // Custom resources are served only now; discovery can lag a moment behind Established.
      for (;;) {
        served = new Map((await discoverResources(client, { signal: opts.signal })).resources.map((r) => [`${r.group}/${r.resource}`, r]));
        const missing = established.filter((name) => !served.has(crdServedKey(name)));
        if (missing.length === 0 || Date.now() > deadline) break;
        await sleep(500);
      }
    }
  }
  const counts: Partial<Record<Action, number>> = {};
  for (const o of outcomes) counts[o.action] = (counts[o.action] ?? 0) + 1;
  return { dryRun: opts.dryRun, existing: opts.existing, tiers: tiers.map((t) => t.map(grName)), counts, objects: outcomes, warnings };
}
