/**
 * The three kinds of matching the pre-flight needs, with the API's edge cases:
 *
 *   label selectors   matchLabels AND matchExpressions; a null selector matches nothing and an
 *                     empty one ({}) everything (policy/v1 PDBs, pod affinity terms, namespace
 *                     selectors all convert selectors this way)
 *   node selectors    terms ORed, requirements within a term ANDed, an empty term matches nothing
 *   taints            only NoSchedule and NoExecute keep a pod off a node
 */
import type {
  LabelSelector,
  LabelSelectorRequirement,
  Node,
  NodeSelector,
  NodeSelectorRequirement,
  NodeSelectorTerm,
  Taint,
  Toleration,
} from './types.js';

type Labels = Record<string, string> | undefined;

function requirementMatches(r: LabelSelectorRequirement, labels: Labels): boolean {
  const has = labels !== undefined && Object.hasOwn(labels, r.key);
  const value = has ? labels[r.key] : undefined;
  const values = r.values ?? [];
  switch (r.operator) {
    case 'In':
      return has && values.includes(value as string);
    case 'NotIn':
      // A missing label is "not in" any set, as in the API's selector semantics.
      return !has || !values.includes(value as string);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
    default:
      // An operator the API would reject: the selector fails to convert and selects nothing.
      return false;
  }
}

/** null/undefined selects nothing; {} selects everything. */
export function labelSelectorMatches(selector: LabelSelector | null | undefined, labels: Labels): boolean {
  if (selector === null || selector === undefined) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) {
    if (labels?.[k] !== v) return false;
  }
  return (selector.matchExpressions ?? []).every((r) => requirementMatches(r, labels));
}

/** "app=web,tier in (a,b)": how kubectl prints a selector, for messages. */
export function formatLabelSelector(selector: LabelSelector | null | undefined): string {
  if (selector === null || selector === undefined) return '<none>';
  const parts = Object.entries(selector.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  for (const r of selector.matchExpressions ?? []) {
    if (r.operator === 'Exists') parts.push(r.key);
    else if (r.operator === 'DoesNotExist') parts.push(`!${r.key}`);
    else parts.push(`${r.key} ${r.operator === 'In' ? 'in' : 'notin'} (${(r.values ?? []).join(',')})`);
  }
  return parts.length > 0 ? parts.join(',') : '<everything>';
}

/** Gt/Lt compare integers; a value that is not one (on either side) never matches. */
function parseInteger(s: string | undefined): bigint | undefined {
  if (s === undefined || !/^[+-]?\d+$/.test(s)) return undefined;
  return BigInt(s);
}

function nodeRequirementMatches(r: NodeSelectorRequirement, value: string | undefined): boolean {
  switch (r.operator) {
    case 'Gt':
    case 'Lt': {
      if (r.values?.length !== 1) return false;
      const have = parseInteger(value);
      const want = parseInteger(r.values[0]);
      if (have === undefined || want === undefined) return false;
      return r.operator === 'Gt' ? have > want : have < want;
    }
    default:
      return requirementMatches(
        { key: r.key, operator: r.operator, ...(r.values ? { values: r.values } : {}) },
        value === undefined ? {} : { [r.key]: value },
      );
  }
}

/** A term with no requirements matches no node (the API's rule, not "everything"). */
export function nodeSelectorTermMatches(term: NodeSelectorTerm, node: Pick<Node, 'metadata'>): boolean {
  const exprs = term.matchExpressions ?? [];
  const fields = term.matchFields ?? [];
  if (exprs.length === 0 && fields.length === 0) return false;
  const labels = node.metadata.labels ?? {};
  for (const r of exprs) {
    if (!nodeRequirementMatches(r, Object.hasOwn(labels, r.key) ? labels[r.key] : undefined)) return false;
  }
  for (const f of fields) {
    // metadata.name with In/NotIn is all the API accepts in matchFields.
    if (f.key !== 'metadata.name' || (f.operator !== 'In' && f.operator !== 'NotIn')) return false;
    if (!nodeRequirementMatches(f, node.metadata.name)) return false;
  }
  return true;
}

export function nodeSelectorMatches(selector: NodeSelector, node: Pick<Node, 'metadata'>): boolean {
  return selector.nodeSelectorTerms.some((t) => nodeSelectorTermMatches(t, node));
}

/** A pod's plain spec.nodeSelector: every pair must be a label of the node. */
export function nodeLabelsMatch(nodeSelector: Record<string, string> | undefined, node: Pick<Node, 'metadata'>): boolean {
  const labels = node.metadata.labels ?? {};
  return Object.entries(nodeSelector ?? {}).every(([k, v]) => labels[k] === v);
}

export function tolerates(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false;
  if (t.key && t.key !== taint.key) return false;
  switch (t.operator ?? 'Equal') {
    case 'Exists':
      return true;
    case 'Equal':
      return (t.value ?? '') === (taint.value ?? '');
    default:
      return false;
  }
}

/** The first taint that keeps the pod off the node, or undefined when the pod may go there. */
export function untoleratedTaint(taints: Taint[], tolerations: Toleration[] | undefined): Taint | undefined {
  return taints.find(
    (taint) => taint.effect !== 'PreferNoSchedule' && !(tolerations ?? []).some((t) => tolerates(t, taint)),
  );
}

export function formatTaint(t: Taint): string {
  return `${t.key}${t.value ? `=${t.value}` : ''}:${t.effect}`;
}
