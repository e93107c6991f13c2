import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SemVer } from 'semver';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors.js';
import type { Node, PodDisruptionBudget } from '../../src/drain/types.js';
import { CommandAction, resolveExecutable, runProcess, splitCommand, substitute, substituteShell } from '../../src/upgrade/actions.js';
import { budgetHealthy, notAtTarget } from '../../src/upgrade/gates.js';
import { buildJob, jobName, podFailure } from '../../src/upgrade/job.js';
import { enterPhase, parseJournal, type JournalNode } from '../../src/upgrade/journal.js';
import { formatHolder, isDeadLocalHolder, leaseExpired, parseHolder } from '../../src/upgrade/lock.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeboat-upgrade-unit-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('action commands', () => {
  it('splits like a shell but refuses operators', () => {
    expect(splitCommand(`ssh -o 'StrictHostKeyChecking yes' {node} "sudo kubeadm upgrade node" {version}`)).toEqual([
      'ssh',
      '-o',
      'StrictHostKeyChecking yes',
      '{node}',
      'sudo kubeadm upgrade node',
      '{version}',
    ]);
    // $VARS stay as written: no shell expands them.
    expect(splitCommand('echo $HOME')).toEqual(['echo', '$HOME']);
    for (const bad of ['a | b', 'a && b', 'a; b', 'a > f', 'a $(b)']) expect(() => splitCommand(bad), bad).toThrow(UsageError);
    expect(() => splitCommand('   ')).toThrow(/empty/);
  });

  it('substitutes {node} and {version} inside arguments, never splitting them', () => {
    const evil = 'n1; rm -rf / #';
    expect(substitute(['ssh', 'root@{node}', 'upgrade', '{version}'], { node: evil, version: 'v1.36.3' })).toEqual(['ssh', `root@${evil}`, 'upgrade', 'v1.36.3']);
    expect(substituteShell('upgrade {node} {version}', { node: evil, version: 'v1.36.3' })).toBe(`upgrade 'n1; rm -rf / #' v1.36.3`);
  });

  it('checks the executable before anything runs', async () => {
    await expect(resolveExecutable('/nonexistent/x')).rejects.toThrow(/does not exist or is not executable/);
    await expect(resolveExecutable('no-such-command-anywhere')).rejects.toThrow(/not an executable on PATH/);
    const f = join(dir, 'not-exec.sh');
    await writeFile(f, '#!/bin/sh\n');
    await expect(resolveExecutable(f)).rejects.toThrow(UsageError);
    await chmod(f, 0o755);
    await expect(resolveExecutable(f)).resolves.toBe(f);
    await expect(resolveExecutable('sh')).resolves.toMatch(/\/sh$/);
  });

  it('runs a command with the values as single arguments, and reports a failure with its last output', async () => {
    const script = join(dir, 'args.sh');
    await writeFile(script, '#!/bin/sh\necho "argc=$# first=$1"\n[ "$2" = "v1.36.3" ] || exit 9\necho boom >&2\nexit 4\n');
    await chmod(script, 0o755);
    const lines: string[] = [];
    const a = new CommandAction({ kind: 'command', argv: [script, '{node}', '{version}'], timeoutMs: 10_000 });
    await a.check();
    const err = await a.run({ node: 'a b; c', version: 'v1.36.3', output: (l) => lines.push(l) }).catch((e: Error) => e);
    expect(lines).toContain('argc=2 first=a b; c');
    expect((err as Error).message).toMatch(/exited with code 4; last output: .*boom/);
  });

  it('kills a command that runs past its timeout, and one that is interrupted', async () => {
    await expect(runProcess(['sleep', '30'], { node: 'n', version: 'v', timeoutMs: 300, what: 'The action' })).rejects.toThrow(/timed out after/);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 200);
    await expect(runProcess(['sleep', '30'], { node: 'n', version: 'v', timeoutMs: 0, signal: ac.signal, what: 'The action' })).rejects.toThrow(/interrupted/);
  });
});

describe('job action', () => {
  it('pins one attempt to the node, tolerating every taint; privileged and hostPID only when asked', () => {
    const spec = { kind: 'job' as const, image: 'up:1', command: ['up', '{node}', '{version}'], namespace: 'lifeboat-system', privileged: false, hostPID: false, timeoutMs: 60_000 };
    const job = buildJob(spec, { node: 'w1', version: 'v1.36.3', name: jobName('w1', 'upgrade-x', 1) }) as { spec: { backoffLimit: number; activeDeadlineSeconds: number; template: { spec: Record<string, unknown> } } };
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.activeDeadlineSeconds).toBe(60);
    const pod = job.spec.template.spec;
    expect(pod.nodeName).toBe('w1');
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(pod.hostPID).toBeUndefined();
    const c = (pod.containers as { command: string[]; securityContext?: unknown; env: { name: string; value: string }[] }[])[0]!;
    expect(c.command).toEqual(['up', 'w1', 'v1.36.3']);
    expect(c.securityContext).toBeUndefined();
    expect(c.env).toContainEqual({ name: 'LIFEBOAT_NODE', value: 'w1' });
    const priv = buildJob({ ...spec, privileged: true, hostPID: true }, { node: 'w1', version: 'v1.36.3', name: 'x' }) as typeof job;
    expect(priv.spec.template.spec.hostPID).toBe(true);
    expect((priv.spec.template.spec.containers as { securityContext?: unknown }[])[0]!.securityContext).toEqual({ privileged: true });
    expect(jobName('a-very-long-node-name-that-goes-on-and-on-and-on.example.internal').length).toBeLessThanOrEqual(63);
  });

  it('reads why a pod cannot succeed', () => {
    const pod = (state: object, phase = 'Pending') => ({ metadata: { name: 'p' }, status: { phase, containerStatuses: [{ name: 'upgrade', state }] } });
    expect(podFailure(pod({ waiting: { reason: 'ErrImagePull', message: 'not found' } }))).toBe('pod p: ErrImagePull: not found');
    expect(podFailure(pod({ waiting: { reason: 'ContainerCreating' } }))).toBeUndefined();
    expect(podFailure(pod({ terminated: { exitCode: 2, reason: 'Error' } }, 'Failed'))).toMatch(/exited with code 2 \(Error\)/);
    expect(podFailure(pod({ running: {} }, 'Running'))).toBeUndefined();
  });
});

describe('gates', () => {
  const target = new SemVer('1.36.3');
  const node = (version: string, ready: boolean, taints: { key: string; effect: string }[] = []): Node =>
    ({ metadata: { name: 'n' }, spec: { taints }, status: { nodeInfo: { kubeletVersion: version }, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } }) as unknown as Node;

  it('a node is back when Ready, untainted and at exactly the target', () => {
    expect(notAtTarget(node('v1.36.3', true), target)).toBeUndefined();
    expect(notAtTarget(node('v1.35.2', true), target)).toMatch(/reports v1.35.2/);
    expect(notAtTarget(node('v1.36.3', false), target)).toMatch(/not Ready/);
    expect(notAtTarget(node('v1.36.3', true, [{ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }]), target)).toMatch(/not-ready taint/);
  });

  it('a budget is healthy when its status is current, its pods are healthy and it allows a disruption', () => {
    const pdb = (status: PodDisruptionBudget['status'], generation = 1): PodDisruptionBudget => ({ metadata: { name: 'b', generation }, spec: {}, ...(status ? { status } : {}) });
    expect(budgetHealthy(pdb({ observedGeneration: 1, currentHealthy: 4, desiredHealthy: 3, disruptionsAllowed: 1, expectedPods: 4 }))).toBeUndefined();
    expect(budgetHealthy(pdb({ observedGeneration: 1, currentHealthy: 2, desiredHealthy: 3, disruptionsAllowed: 0, expectedPods: 4 }))).toMatch(/2 healthy pods, 3 needed/);
    expect(budgetHealthy(pdb({ observedGeneration: 1, currentHealthy: 3, desiredHealthy: 3, disruptionsAllowed: 0, expectedPods: 4 }))).toMatch(/no disruption allowed/);
    expect(budgetHealthy(pdb({ observedGeneration: 1, currentHealthy: 4, desiredHealthy: 3, disruptionsAllowed: 1 }, 2))).toMatch(/not up to date/);
    expect(budgetHealthy(pdb(undefined))).toMatch(/no status/);
  });
});

describe('journal and lock', () => {
  it('records the time spent in each phase', () => {
    const n: JournalNode = { node: 'w1', role: 'worker', step: 1, from: 'v1.35.2', to: 'v1.36.3', phase: 'pending', cordonedByRun: false, durations: {} };
    enterPhase(n, 'cordon', new Date('2026-11-22T10:00:00Z'));
    enterPhase(n, 'drain', new Date('2026-11-22T10:00:01Z'));
    enterPhase(n, 'action', new Date('2026-11-22T10:00:31Z'));
    enterPhase(n, 'done', new Date('2026-11-22T10:01:00Z'));
    expect(n.durations).toEqual({ cordon: 1, drain: 30, action: 29 });
    expect(n.startedAt).toBe('2026-11-22T10:00:00.000Z');
    expect(n.finishedAt).toBe('2026-11-22T10:01:00.000Z');
  });

  it('refuses a journal that is not one', () => {
    expect(() => parseJournal('{', 'f')).toThrow(/not JSON/);
    expect(() => parseJournal('{"kind":"ConfigMap"}', 'f')).toThrow(/not a lifeboat upgrade run/);
  });

  it('lock holders: parsed, expired by renew time, dead when their local process is gone', () => {
    const h = { host: 'cp-1.example', pid: 4242, runId: 'upgrade-20261122t100000z-ab12' };
    expect(parseHolder(formatHolder(h))).toEqual(h);
    expect(parseHolder('someone-else')).toBeUndefined();
    const now = new Date('2026-11-22T10:01:00Z');
    expect(leaseExpired({ holderIdentity: 'x', leaseDurationSeconds: 60, renewTime: '2026-11-22T10:00:30.000000Z' }, now)).toBe(false);
    expect(leaseExpired({ holderIdentity: 'x', leaseDurationSeconds: 20, renewTime: '2026-11-22T10:00:30.000000Z' }, now)).toBe(true);
    expect(leaseExpired({ holderIdentity: null }, now)).toBe(true);
    expect(isDeadLocalHolder({ host: 'h', pid: process.pid, runId: 'r' }, 'h')).toBe(false);
    expect(isDeadLocalHolder({ host: 'other', pid: 2 ** 22 + 7, runId: 'r' }, 'h')).toBe(false);
    expect(isDeadLocalHolder({ host: 'h', pid: 2 ** 22 + 7, runId: 'r' }, 'h')).toBe(true);
  });
});

describe('progress on a terminal', () => {
  it('keeps a line per node with its step, phase and elapsed time, and the log above', async () => {
    const { upgradeProgress, formatNodeLine } = await import('../../src/cli/upgrade-progress.js');
    expect(formatNodeLine({ node: 'w1', step: 2, steps: 5, phase: 'drain', since: 0 }, 61_000, 4)).toBe('[step 2/5] w1    drain     1m1s');
    let out = '';
    const stream = Object.assign(new (await import('node:stream')).Writable({ write: (c, _e, cb) => ((out += String(c)), cb()) }), { isTTY: true, columns: 120, rows: 40, cursorTo: () => true, moveCursor: () => true, clearLine: () => true, clearScreenDown: () => true }) as unknown as NodeJS.WriteStream;
    const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
    const p = upgradeProgress(logger, stream);
    p.onEvent({ type: 'info', message: 'taking the pre-upgrade etcd snapshot' });
    p.onEvent({ type: 'phase', node: 'cp-1', phase: 'cordon', step: 1, steps: 3, nodeStartedAt: new Date().toISOString() });
    p.onEvent({ type: 'phase', node: 'cp-1', phase: 'done', step: 1, steps: 3 });
    p.onEvent({ type: 'phase', node: 'worker-2', phase: 'action', step: 2, steps: 3, nodeStartedAt: new Date().toISOString() });
    p.onEvent({ type: 'warn', message: 'something to know', node: 'worker-2' });
    p.stop();
    expect(out).toContain('taking the pre-upgrade etcd snapshot');
    expect(out).toContain('[step 1/3] cp-1');
    expect(out).toMatch(/cp-1\s+done/);
    expect(out).toMatch(/\[step 2\/3\] worker-2\s+action/);
    expect(out).toContain('warning: something to know');
  });
});
