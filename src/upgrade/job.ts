/**
 * The Job action: a Job pinned to the node (spec.nodeName, so the scheduler and the cordon do
 * not stand in the way; tolerating every taint), one attempt, whose success is the action's.
 * A pod that cannot start (image pull, bad config) fails the action at once with the pod's
 * reason instead of waiting out the timeout. A failed Job is kept for `kubectl logs`.
 */
import { createHash } from 'node:crypto';
import type { KubeClient } from '../kube/client.js';
import { KubeApiError } from '../kube/errors.js';
import { sleep } from './gates.js';
import { ActionError, substitute, type ActionContext, type ActionSpec, type NodeAction } from './actions.js';

type JobSpec = Extract<ActionSpec, { kind: 'job' }>;

interface ContainerState {
  waiting?: { reason?: string; message?: string };
  terminated?: { exitCode?: number; reason?: string; message?: string };
}

interface JobPod {
  metadata: { name: string };
  status?: { phase?: string; reason?: string; message?: string; containerStatuses?: { name: string; state?: ContainerState }[] };
}

interface Job {
  metadata: { name: string; namespace: string };
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

/** Waiting reasons that will not fix themselves while the Job waits. */
const STUCK_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'CreateContainerConfigError', 'CreateContainerError', 'RunContainerError']);

export const JOB_LABEL_NODE = 'lifeboat.io/upgrade-node';

/** One name per run, node and attempt: a resume finds the Job of an attempt that was cut short. */
export function jobName(node: string, runId = '', attempt = 1): string {
  const h = createHash('sha256').update(`${runId}/${node}`).digest('hex').slice(0, 10);
  return `lifeboat-upgrade-${h}-${attempt}`;
}

export function buildJob(spec: JobSpec, ctx: { node: string; version: string; name: string; runId?: string | undefined }): Record<string, unknown> {
  const labels = { 'app.kubernetes.io/managed-by': 'lifeboat', [JOB_LABEL_NODE]: ctx.node.slice(0, 63), ...(ctx.runId ? { 'lifeboat.io/upgrade-run': ctx.runId } : {}) };
  const command = spec.command ? substitute(spec.command, ctx) : undefined;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: ctx.name, namespace: spec.namespace, labels },
    spec: {
      backoffLimit: 0,
      ...(spec.timeoutMs > 0 ? { activeDeadlineSeconds: Math.ceil(spec.timeoutMs / 1000) } : {}),
      ttlSecondsAfterFinished: 86_400,
      template: {
        metadata: { labels },
        spec: {
          nodeName: ctx.node,
          restartPolicy: 'Never',
          tolerations: [{ operator: 'Exists' }],
          ...(spec.hostPID ? { hostPID: true } : {}),
          containers: [
            {
              name: 'upgrade',
              image: spec.image,
              ...(command ? { command } : {}),
              env: [
                { name: 'LIFEBOAT_NODE', value: ctx.node },
                { name: 'LIFEBOAT_VERSION', value: ctx.version },
              ],
              ...(spec.privileged ? { securityContext: { privileged: true } } : {}),
            },
          ],
        },
      },
    },
  };
}

/** Why a pod of the Job cannot succeed, if it says so. */
export function podFailure(pod: JobPod): string | undefined {
  for (const c of pod.status?.containerStatuses ?? []) {
    const w = c.state?.waiting;
    if (w?.reason && STUCK_REASONS.has(w.reason)) return `pod ${pod.metadata.name}: ${w.reason}${w.message ? `: ${w.message}` : ''}`;
    const t = c.state?.terminated;
    if (t && t.exitCode !== 0) return `pod ${pod.metadata.name}: container ${c.name} exited with code ${t.exitCode ?? '?'}${t.reason ? ` (${t.reason})` : ''}${t.message ? `: ${t.message}` : ''}`;
  }
  if (pod.status?.phase === 'Failed') return `pod ${pod.metadata.name} failed${pod.status.reason ? `: ${pod.status.reason}` : ''}${pod.status.message ? ` (${pod.status.message})` : ''}`;
  return undefined;
}

/** The pod is stuck before its container ever ran (image pull, container config). */
export function podNeverStarted(pod: JobPod): boolean {
  return (pod.status?.containerStatuses ?? []).some((c) => c.state?.waiting?.reason !== undefined && STUCK_REASONS.has(c.state.waiting.reason));
}

export class JobAction implements NodeAction {
  constructor(
    readonly spec: JobSpec,
    private readonly client: KubeClient,
    private readonly opts: { runId?: string; pollIntervalMs?: number } = {},
  ) {}

  describe(): string {
    return `Job with image ${this.spec.image} in namespace ${this.spec.namespace}`;
  }

  async run(ctx: ActionContext): Promise<void> {
    const name = jobName(ctx.node, ctx.runId ?? this.opts.runId, ctx.attempt);
    const base = `/apis/batch/v1/namespaces/${this.spec.namespace}/jobs`;
    try {
      await this.client.request(base, { method: 'POST', body: buildJob(this.spec, { node: ctx.node, version: ctx.version, name, runId: ctx.runId ?? this.opts.runId }), signal: ctx.signal });
      ctx.output?.(`created Job ${this.spec.namespace}/${name} on node ${ctx.node}`);
    } catch (err) {
      if (!(err instanceof KubeApiError && err.status === 409)) throw err;
      // This attempt's Job exists: a resume after a crash; follow it instead of starting another.
      ctx.output?.(`following Job ${this.spec.namespace}/${name}, started before`);
    }
    const started = Date.now();
    const deadline = this.spec.timeoutMs > 0 ? started + this.spec.timeoutMs + 30_000 : Infinity;
    const interval = this.opts.pollIntervalMs ?? 1000;
    let lastPhase = '';
    for (;;) {
      if (ctx.signal?.aborted) {
        // Nothing keeps upgrading the node behind an interrupted run's back.
        await this.client.request(`${base}/${name}`, { method: 'DELETE', body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background' } }).catch(() => undefined);
        throw new ActionError(`Interrupted while Job ${this.spec.namespace}/${name} was running on node ${ctx.node}; the Job was deleted.`);
      }
      let job: Job;
      try {
        job = await this.client.request<Job>(`${base}/${name}`, { signal: ctx.signal });
      } catch (err) {
        if (ctx.signal?.aborted) continue;
        if (err instanceof KubeApiError && err.status === 404) throw new ActionError(`Job ${this.spec.namespace}/${name} was deleted before it finished.`);
        throw err;
      }
      const cond = (type: string) => job.status?.conditions?.find((c) => c.type === type && c.status === 'True');
      if (cond('Complete')) return;
      const pods = await this.client.request<{ items: JobPod[] }>(`/api/v1/namespaces/${this.spec.namespace}/pods`, { query: { labelSelector: `job-name=${name}` }, signal: ctx.signal }).catch((err: unknown) => {
        if (ctx.signal?.aborted) return { items: [] as JobPod[] };
        throw err;
      });
      const failed = cond('Failed');
      for (const pod of pods.items) {
        const why = podFailure(pod);
        if (why && podNeverStarted(pod)) {
          // A pod that cannot start holds on to the node (and would stand in the next drain's way): gone with its Job.
          await this.client.request(`${base}/${name}`, { method: 'DELETE', body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background' } }).catch(() => undefined);
          throw new ActionError(`The upgrade Job ${this.spec.namespace}/${name} for node ${ctx.node} failed: ${why}. The Job was deleted: its pod could not start.`);
        }
        if (why) throw new ActionError(`The upgrade Job ${this.spec.namespace}/${name} for node ${ctx.node} failed: ${why}. The Job is kept for inspection (kubectl logs -n ${this.spec.namespace} job/${name}).`);
        const phase = pod.status?.phase ?? '';
        if (phase !== lastPhase) ctx.output?.(`pod ${pod.metadata.name}: ${phase}`);
        lastPhase = phase;
      }
      if (pods.items.length === 0 && Date.now() - started > 5000) {
        // No pod: the Job controller could not create one (Pod Security, quota, a bad spec).
        const refused = await this.creationRefused(name, ctx.signal);
        if (refused) {
          // Deleted, or it would start upgrading the node whenever the cause goes away.
          await this.client.request(`${base}/${name}`, { method: 'DELETE', body: { apiVersion: 'v1', kind: 'DeleteOptions', propagationPolicy: 'Background' } }).catch(() => undefined);
          throw new ActionError(`The upgrade Job ${this.spec.namespace}/${name} for node ${ctx.node} cannot create its pod: ${refused}. The Job was deleted.`);
        }
      }
      if (failed) throw new ActionError(`The upgrade Job ${this.spec.namespace}/${name} for node ${ctx.node} failed: ${failed.reason ?? ''}${failed.message ? ` (${failed.message})` : ''}. The Job is kept for inspection.`);
      if (Date.now() > deadline) throw new ActionError(`The upgrade Job ${this.spec.namespace}/${name} for node ${ctx.node} did not finish in time.`);
      await sleep(interval, ctx.signal);
    }
  }

  /** The Job controller's FailedCreate warning for this Job, if there is one. */
  private async creationRefused(name: string, signal?: AbortSignal): Promise<string | undefined> {
    const events = await this.client
      .request<EventList>(`/api/v1/namespaces/${this.spec.namespace}/events`, { query: { fieldSelector: `involvedObject.kind=Job,involvedObject.name=${name}` }, signal })
      .catch(() => ({ items: [] }) as EventList);
    const e = events.items.find((x) => x.type === 'Warning' && x.reason === 'FailedCreate');
    return e ? (e.message ?? e.reason) : undefined;
  }
}

interface EventList {
  items: { type?: string; reason?: string; message?: string }[];
}
