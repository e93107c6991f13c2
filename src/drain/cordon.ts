import { messageOf, NotFoundError, UsageError } from '../cli/errors.js';
import type { DryRun, NodeApi } from './api.js';
import type { Node } from './types.js';

export type Schedulability = 'schedulable' | 'cordoned';

export interface CordonResult {
  node: string;
  before: Schedulability;
  after: Schedulability;
  changed: boolean;
  dryRun: boolean;
  /** Set when this node could not be changed; the others still were. */
  error?: string;
}

export function schedulabilityOf(node: Node): Schedulability {
  return node.spec.unschedulable ? 'cordoned' : 'schedulable';
}

/**
 * The nodes a command acts on, checked before anything changes: every named node must exist
 * (exit 4 naming the missing ones), or the selector must match at least one.
 */
export async function resolveNodes(api: NodeApi, names: string[], selector: string | undefined): Promise<Node[]> {
  if (names.length > 0 && selector) throw new UsageError('Give node names or --selector, not both.');
  if (selector) {
    const nodes = await api.listNodes(selector);
    if (nodes.length === 0) throw new NotFoundError(`No node matches the selector ${selector}.`);
    return nodes.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }
  if (names.length === 0) throw new UsageError('Name at least one node, or give --selector.');
  const unique = [...new Set(names)];
  const results = await Promise.allSettled(unique.map((n) => api.getNode(n)));
  const missing = unique.filter((_, i) => results[i]?.status === 'rejected' && (results[i] as PromiseRejectedResult).reason instanceof NotFoundError);
  if (missing.length > 0) {
    throw new NotFoundError(`Node${missing.length > 1 ? 's' : ''} not found: ${missing.join(', ')}. Nothing was changed.`, { hint: 'List nodes with `kubectl get nodes`.' });
  }
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return results.map((r) => (r as PromiseFulfilledResult<Node>).value);
}

/** Cordons (or uncordons) one node; a node already in that state is left alone. */
export async function setSchedulability(api: NodeApi, node: Node, cordon: boolean, dryRun: DryRun = 'none'): Promise<CordonResult> {
  const name = node.metadata.name;
  const before = schedulabilityOf(node);
  const wanted: Schedulability = cordon ? 'cordoned' : 'schedulable';
  if (before === wanted) return { node: name, before, after: before, changed: false, dryRun: dryRun !== 'none' };
  if (dryRun !== 'client') await api.setUnschedulable(name, cordon, dryRun);
  return { node: name, before, after: wanted, changed: true, dryRun: dryRun !== 'none' };
}

/** kubectl's wording: "node/a cordoned", "node/b already uncordoned", "(server dry run)". */
export function describeCordon(r: CordonResult): string {
  if (r.error) return `node/${r.node} not changed: ${r.error}`;
  const verb = r.after === 'cordoned' ? 'cordoned' : 'uncordoned';
  const dry = r.dryRun ? ' (dry run)' : '';
  return r.changed ? `node/${r.node} ${verb}${dry} (was ${r.before})` : `node/${r.node} already ${verb}${dry}`;
}

/** `node cordon|uncordon`: every node resolved first (so a typo changes nothing), then each one set. */
export async function cordonNodes(api: NodeApi, names: string[], selector: string | undefined, cordon: boolean, dryRun: DryRun = 'none'): Promise<CordonResult[]> {
  const nodes = await resolveNodes(api, names, selector);
  const results: CordonResult[] = [];
  for (const node of nodes) {
    try {
      results.push(await setSchedulability(api, node, cordon, dryRun));
    } catch (err) {
      const before = schedulabilityOf(node);
      results.push({ node: node.metadata.name, before, after: before, changed: false, dryRun: dryRun !== 'none', error: messageOf(err) });
    }
  }
  return results;
}
