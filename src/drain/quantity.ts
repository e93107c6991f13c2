/**
 * Kubernetes resource quantities ("100m", "1.5", "2Gi", "500M", "1e3") and the requests a pod
 * asks the scheduler for.
 *
 * Amounts are integers in the unit the scheduler compares: millicores for cpu, plain units
 * (bytes, pods, devices) for everything else, rounded up as the API's MilliValue()/Value() do.
 * The arithmetic is exact: "1.1" cpu is 1100m, not the 1101m that a float would round up to.
 */
import type { Pod } from './types.js';

/** Resource name -> integer amount (millicores for cpu). */
export type ResourceAmounts = Map<string, number>;

const QUANTITY = /^([+-]?)(\d+\.?\d*|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|(n|u|m|k|M|G|T|P|E)|[eE]([+-]?\d+))?$/;
const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };

/**
 * value * 10^scale, rounded up to an integer. Throws on text the API would not accept, so a
 * hand-written fixture with a typo fails loudly instead of asking for nothing.
 */
export function parseQuantityScaled(text: string, scale: number): number {
  const m = QUANTITY.exec(text.trim());
  if (!m) throw new Error(`invalid resource quantity "${text}"`);
  const [, sign, number = '0', binarySuffix, decimalSuffix, exponent] = m;
  const [whole = '', fraction = ''] = number.split('.');
  let mantissa = BigInt(`${whole}${fraction}` || '0');
  let exp10 = -fraction.length + scale;
  if (binarySuffix) mantissa *= 1n << BigInt(BINARY[binarySuffix] ?? 0);
  if (decimalSuffix) exp10 += DECIMAL[decimalSuffix] ?? 0;
  if (exponent) exp10 += Number(exponent);
  let value: bigint;
  if (exp10 >= 0) {
    value = mantissa * 10n ** BigInt(exp10);
  } else {
    const div = 10n ** BigInt(-exp10);
    value = (mantissa + div - 1n) / div; // ceiling, as the API rounds
  }
  return Number(sign === '-' ? -value : value);
}

/** The quantity in base units (cores, bytes), unrounded: for messages and tests. */
export function parseQuantity(text: string): number {
  return parseQuantityScaled(text, 9) / 1e9;
}

/** The integer amount the scheduler compares for this resource. */
export function resourceAmount(resource: string, text: string): number {
  return parseQuantityScaled(text, resource === 'cpu' ? 3 : 0);
}

export function formatAmount(resource: string, amount: number): string {
  if (resource === 'cpu') return amount % 1000 === 0 ? `${amount / 1000}` : `${amount}m`;
  if (resource === 'memory' || resource.startsWith('hugepages-') || resource === 'ephemeral-storage') {
    for (const [suffix, shift] of [['Gi', 30], ['Mi', 20], ['Ki', 10]] as const) {
      if (amount >= 2 ** shift && amount % 2 ** shift === 0) return `${amount / 2 ** shift}${suffix}`;
    }
  }
  return `${amount}`;
}

function toAmounts(list: Record<string, string> | undefined): ResourceAmounts {
  const out: ResourceAmounts = new Map();
  for (const [name, text] of Object.entries(list ?? {})) out.set(name, resourceAmount(name, text));
  return out;
}

function addInto(into: ResourceAmounts, add: ResourceAmounts): void {
  for (const [k, v] of add) into.set(k, (into.get(k) ?? 0) + v);
}

function maxInto(into: ResourceAmounts, other: ResourceAmounts): void {
  for (const [k, v] of other) into.set(k, Math.max(into.get(k) ?? 0, v));
}

/**
 * What the scheduler reserves for a pod: max(app containers + sidecars, the largest init step)
 * + overhead. A sidecar (an init container with restartPolicy Always) keeps running beside the
 * app containers, so it adds to their sum, and every init container that starts after it runs
 * beside it too.
 */
export function podRequests(pod: Pick<Pod, 'spec'>): ResourceAmounts {
  const total: ResourceAmounts = new Map();
  for (const c of pod.spec.containers) addInto(total, toAmounts(c.resources?.requests));
  const sidecars: ResourceAmounts = new Map();
  const initPeak: ResourceAmounts = new Map();
  for (const c of pod.spec.initContainers ?? []) {
    const req = toAmounts(c.resources?.requests);
    if (c.restartPolicy === 'Always') {
      addInto(total, req);
      addInto(sidecars, req);
      maxInto(initPeak, sidecars);
    } else {
      const step = new Map(req);
      addInto(step, sidecars);
      maxInto(initPeak, step);
    }
  }
  maxInto(total, initPeak);
  addInto(total, toAmounts(pod.spec.overhead));
  return total;
}

/** Allocatable of a node as amounts; undefined when the node reports none (nothing to check). */
export function allocatable(list: Record<string, string> | undefined): ResourceAmounts | undefined {
  return list === undefined ? undefined : toAmounts(list);
}
