import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RestoreReport } from '../../src/snapshot/resources/apply.js';
import type { DumpResult } from '../../src/snapshot/resources/dump.js';
import { runCli } from '../helpers/cli.js';
import { createCrd, e2eEnv, type E2eEnv } from './helpers.js';

describe('resources restore --include-status against a real API server', () => {
  let env: E2eEnv;
  let ns: string;
  let dir: string;
  let store: string;
  let group: string;
  let kubeconfig: string;
  let dumpId: string;
  const status = {
    phase: 'Ready',
    observedGeneration: 1,
    conditions: [{ type: 'Ready', status: 'True', reason: 'Provisioned', message: 'all gears turning', lastTransitionTime: '2026-01-02T03:04:05Z' }],
  };
  const gear = () => `/apis/${group}/v1/namespaces/${ns}/gears/g1`;
  const crdPath = () => `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/gears.${group}`;
  const cli = (args: string[]) => runCli([...args, '--kubeconfig', kubeconfig, '--store', store], { timeoutMs: 170_000 });

  beforeAll(async () => {
    env = await e2eEnv('status');
    ns = env.namespace;
    kubeconfig = inject('kube').kubeconfig;
    dir = await mkdtemp(join(tmpdir(), 'lifeboat-status-'));
    store = join(dir, 'store');
    group = `e2e${randomBytes(3).toString('hex')}.example.com`;
    const k = env.kube;
    await createCrd(k, { group, kind: 'Gear', statusSubresource: true });
    await k.create(`/apis/${group}/v1/namespaces/${ns}/gears`, { apiVersion: `${group}/v1`, kind: 'Gear', metadata: { name: 'g1' }, spec: { teeth: 12 } });
    // Through the status subresource, as a controller writes it; a create would drop it.
    await k.patch(`${gear()}/status`, { status });
    expect((await k.get(gear())).status).toEqual(status);
    const r = await cli(['resources', 'dump', '--include-namespaces', ns, '--include-resources', `gears.${group}`, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    const dump = JSON.parse(r.stdout) as DumpResult;
    expect(dump.index.objects).toBe(1);
    dumpId = dump.manifest.id;
  });

  afterAll(async () => {
    await env?.kube.delete(crdPath()).catch(() => undefined);
    await env?.cleanup();
    await rm(dir, { recursive: true, force: true });
  });

  it('without the flag the custom resource comes back without its status', async () => {
    const k = env.kube;
    await k.delete(gear());
    const r = await cli(['resources', 'restore', dumpId, '-o', 'json']);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as RestoreReport).objects).toMatchObject([{ name: 'g1', action: 'created' }]);
    const live = await k.get(gear());
    expect(live.spec).toEqual({ teeth: 12 });
    expect(live.status).toBeUndefined();
  });

  it('with --include-status the status is written through the status subresource', async () => {
    const k = env.kube;
    await k.delete(gear());
    const r = await cli(['resources', 'restore', dumpId, '--include-status', '-o', 'json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect((JSON.parse(r.stdout) as RestoreReport).objects).toMatchObject([{ name: 'g1', action: 'created' }]);
    const live = await k.get(gear());
    expect(live.spec).toEqual({ teeth: 12 });
    expect(live.status).toEqual(status);
  });

  it('--existing update --include-status: a dry run names the status and changes nothing, then server-side apply writes it back', async () => {
    const k = env.kube;
    const drifted = { phase: 'Degraded', observedGeneration: 1, conditions: [] };
    await k.patch(`${gear()}/status`, { status: drifted });
    const dry = await cli(['resources', 'restore', dumpId, '--include-status', '--existing', 'update', '--dry-run', '-o', 'json']);
    expect(dry.code, dry.stderr).toBe(0);
    expect((JSON.parse(dry.stdout) as RestoreReport).objects).toMatchObject([{ name: 'g1', action: 'would-update', changes: ['status'] }]);
    expect((await k.get(gear())).status).toEqual(drifted);
    // Another manager wrote the drifted fields: the spec applies, the status conflicts...
    const conflict = await cli(['resources', 'restore', dumpId, '--include-status', '--existing', 'update', '-o', 'json']);
    expect(conflict.code).toBe(1);
    expect((JSON.parse(conflict.stdout) as RestoreReport).objects).toMatchObject([{ name: 'g1', action: 'failed', reason: expect.stringMatching(/^updated, but its status could not be written: 409 Conflict.*--force-conflicts/s) }]);
    expect((await k.get(gear())).status).toEqual(drifted);
    // ...until told to take the fields over.
    const r = await cli(['resources', 'restore', dumpId, '--include-status', '--existing', 'update', '--force-conflicts', '-o', 'json']);
    expect(r.code, r.stderr + r.stdout).toBe(0);
    expect((JSON.parse(r.stdout) as RestoreReport).objects).toMatchObject([{ name: 'g1', action: 'updated' }]);
    expect((await k.get(gear())).status).toEqual(status);
  });
});
