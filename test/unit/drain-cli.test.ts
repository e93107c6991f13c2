import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/cli/errors.js';
import { budgetFromStatus, isTransientDrainError } from '../../src/drain/api.js';
import { exitCodeOf, type DrainReport, type NodeDrainReport } from '../../src/drain/drain.js';
import { labelSelectorMatches } from '../../src/drain/selector.js';
import { KubeApiError } from '../../src/kube/client.js';
import { parseLabelSelector } from '../../src/kube/label-selector.js';

describe('parseLabelSelector (kubectl syntax)', () => {
  it.each([
    ['app=web', { app: 'web' }, true],
    ['app==web', { app: 'web' }, true],
    ['app!=web', { app: 'db' }, true],
    ['app!=web', {}, true],
    ['app!=web', { app: 'web' }, false],
    ['env in (prod, staging),tier', { env: 'staging', tier: 'x' }, true],
    ['env in (prod,staging),tier', { env: 'staging' }, false],
    ['env notin (prod)', { env: 'dev' }, true],
    ['!canary', { canary: 'true' }, false],
    ['!canary, app=web', { app: 'web' }, true],
    ['kubernetes.io/hostname=n-1', { 'kubernetes.io/hostname': 'n-1' }, true],
  ])('%s against %j: %s', (text, labels, expected) => {
    expect(labelSelectorMatches(parseLabelSelector(text), labels)).toBe(expected);
  });

  it.each(['app=web,', 'app in (a', '=web', 'app in (a b)', '!'])('refuses %j with a usage error', (text) => {
    expect(() => parseLabelSelector(text)).toThrow(UsageError);
  });
});

describe('eviction answers', () => {
  it('reads the PDB name and counts from a 429', () => {
    const status = { details: { causes: [{ reason: 'DisruptionBudget', message: 'The disruption budget db-pdb needs 2 healthy pods and has 2 currently' }] } };
    expect(budgetFromStatus(status)).toEqual({ name: 'db-pdb', desired: 2, current: 2 });
    expect(budgetFromStatus({ details: { causes: [] } })).toBeUndefined();
  });

  it('waits out connection errors and 5xx, but not the several-PDBs 500 or a 403', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    expect(isTransientDrainError(new Error('Cannot reach', { cause: refused }))).toBe(true);
    expect(isTransientDrainError(new KubeApiError(503, 'ServiceUnavailable', 'etcd leader changed', undefined))).toBe(true);
    expect(isTransientDrainError(new KubeApiError(500, 'InternalError', 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.', undefined))).toBe(false);
    expect(isTransientDrainError(new KubeApiError(403, 'Forbidden', 'forbidden', undefined))).toBe(false);
  });
});

describe('drain exit codes', () => {
  const node = (outcome: NodeDrainReport['outcome'], evicted = 0): NodeDrainReport => ({
    node: 'n',
    before: 'schedulable',
    after: 'schedulable',
    outcome,
    evicted: Array.from({ length: evicted }, (_, i) => ({ pod: `ns/p${i}`, uid: String(i), evictedAt: '' })),
    skipped: [],
    warnings: [],
    remaining: [],
    durationMs: 0,
  });
  const blockers = { blockers: [{ node: 'n', kind: 'unmanaged' as const, object: 'pod/ns/p', message: 'm', fix: 'f' }], warnings: [], nodes: [] };
  const noBlockers = { blockers: [], warnings: [], nodes: [] };
  it.each<[string, number, DrainReport]>([
    ['drained', 0, { outcome: 'drained', nodes: [node('drained')] }],
    ['pre-flight blocked', 7, { outcome: 'blocked', preflight: blockers, nodes: [node('not-started')] }],
    ['pre-flight only, clean', 0, { outcome: 'preflight-only', preflight: noBlockers, nodes: [] }],
    ['pre-flight only, blocked', 7, { outcome: 'preflight-only', preflight: blockers, nodes: [] }],
    ['PDB timeout, nothing evicted', 7, { outcome: 'failed', nodes: [node('failed')], failure: { kind: 'pdb', message: 'm', exitCode: 7 } }],
    ['PDB timeout after some evictions', 1, { outcome: 'failed', nodes: [node('failed', 2)], failure: { kind: 'pdb', message: 'm', exitCode: 7 } }],
    ['second node failed', 3, { outcome: 'failed', nodes: [node('drained', 3), node('failed')], failure: { kind: 'error', message: 'm', exitCode: 1 } }],
    ['interrupted', 130, { outcome: 'failed', nodes: [node('drained', 3), node('failed')], failure: { kind: 'interrupted', message: 'm', exitCode: 130 } }],
    ['PDB timeout, node left cordoned', 1, { outcome: 'failed', nodes: [{ ...node('failed'), after: 'cordoned' }], failure: { kind: 'pdb', message: 'm', exitCode: 7 } }],
    ['other failure', 1, { outcome: 'failed', nodes: [node('failed', 1)], failure: { kind: 'error', message: 'm', exitCode: 1 } }],
  ])('%s → exit %i', (_, code, report) => {
    expect(exitCodeOf(report)).toBe(code);
  });
});
