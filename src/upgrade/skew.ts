/**
 * Kubernetes versions and the version skew rules an upgrade plan must keep, checked before
 * anything changes (https://kubernetes.io/releases/version-skew-policy/).
 *
 * The target itself:
 *   - it is a full version (vX.Y.Z, pre-release and build suffixes allowed);
 *   - it is not older than the API server (downgrades are refused) and keeps its major version;
 *   - it is at most one minor version above the API server (no minor version is skipped).
 *
 * Then the run, step by step. The API server is taken to be at the version GET /version reports
 * on every control-plane node until that node's step (kubeadm upgrades a node's static pods
 * before its kubelet, so a control-plane node whose kubelet is already at the target counts as
 * upgraded); with no control-plane node registered it stays at that version throughout. After
 * every step, every node in the cluster, in the plan or not:
 *   - a worker's kubelet is never newer than the oldest API server (a control-plane node's
 *     kubelet is compared with its own API server, upgraded in the same step);
 *   - no kubelet is more than three minor versions behind the newest API server.
 * Minor versions are what the policy counts; patch releases never break it. A cluster that is
 * outside the policy already is warned about: only what the plan makes worse blocks it.
 */
import semver, { type SemVer } from 'semver';
import { UsageError } from '../cli/errors.js';

export type NodeRole = 'control-plane' | 'worker';

export const MAX_KUBELET_MINORS_BEHIND = 3;

export type SkewRule = 'downgrade' | 'major-version' | 'minor-skipped' | 'unknown-version' | 'kubelet-newer-than-apiserver' | 'kubelet-too-old';

export interface SkewFinding {
  rule: SkewRule;
  /** The node concerned; none for rules about the target itself. */
  node?: string;
  /** The first step after which the rule is broken. */
  step?: number;
  message: string;
  fix: string;
}

/** "v1.36.3", "1.36.3", "v1.36.3+k3s1"; undefined for anything else ("1.36", "kwok-v0.7.0"). */
export function parseKubeVersion(text: string | undefined): SemVer | undefined {
  if (text === undefined) return undefined;
  return semver.parse(text.trim()) ?? undefined;
}

/** The --to version; a malformed one is a usage error (exit 2). */
export function parseTargetVersion(text: string): SemVer {
  const v = parseKubeVersion(text);
  if (!v) {
    throw new UsageError(`Invalid target version ${JSON.stringify(text)}: give a full Kubernetes version such as v1.36.3.`, {
      hint: 'The major, minor and patch numbers are all needed (v1.36 is not enough); see `kubectl version` for the current one.',
    });
  }
  return v;
}

/** As written, with the leading "v" Kubernetes uses. */
export function formatVersion(v: SemVer): string {
  return v.raw.startsWith('v') ? v.raw : `v${v.raw}`;
}

/** "v1.36". */
export function formatMinor(v: SemVer | { major: number; minor: number }): string {
  return `v${v.major}.${v.minor}`;
}

/** Minor versions as one scale, so that a change of major version is never "within skew". */
const ordinal = (v: SemVer): number => v.major * 1000 + v.minor;

/** Versions compared as the policy does: build metadata ignored, pre-releases before releases. */
export function compareVersions(a: SemVer, b: SemVer): number {
  return semver.compare(a, b);
}

/** The rules about the target alone. Any finding here means there is nothing to plan. */
export function checkTarget(apiServer: SemVer, target: SemVer): SkewFinding[] {
  const api = formatVersion(apiServer);
  const to = formatVersion(target);
  const next = `${formatMinor({ major: apiServer.major, minor: apiServer.minor + 1 })}.x`;
  if (target.major !== apiServer.major) {
    return [{
      rule: 'major-version',
      message: `The target ${to} changes the major version of the API server (${api}); Kubernetes upgrades move one minor version at a time.`,
      fix: `Upgrade to ${next} next.`,
    }];
  }
  if (compareVersions(target, apiServer) < 0) {
    return [{
      rule: 'downgrade',
      message: `The target ${to} is older than the API server (${api}): downgrades are refused.`,
      fix: `Give a target of at least ${api}; to go back, restore an etcd snapshot taken before the upgrade (lifeboat etcd restore).`,
    }];
  }
  const skipped = target.minor - apiServer.minor - 1;
  if (skipped > 0) {
    const first = formatMinor({ major: target.major, minor: apiServer.minor + 1 });
    const last = formatMinor({ major: target.major, minor: target.minor - 1 });
    const which = skipped === 1 ? `minor version ${first}` : `minor versions ${first} to ${last}`;
    return [{
      rule: 'minor-skipped',
      message: `The target ${to} skips ${which}: the API server is at ${api} and may only move one minor version per upgrade, and kubelets may never be newer than it.`,
      fix: `Upgrade to ${next} first, then plan ${to}.`,
    }];
  }
  return [];
}

export interface SkewNode {
  name: string;
  role: NodeRole;
  /** Its kubelet's version; undefined when the node reports none that parses. */
  version: SemVer | undefined;
  /** The raw kubelet version, for messages. */
  reported?: string | undefined;
  /** The step (from 1) that brings it to the target; undefined when the plan leaves it as it is. */
  step?: number | undefined;
  /** The plan was asked to upgrade it (named or selected), whether or not it has a step. */
  inScope?: boolean;
}

export interface StepSkewInput {
  apiServer: SemVer;
  target: SemVer;
  /** Every node in the cluster, planned or not. */
  nodes: SkewNode[];
  steps: number;
}

export interface SkewResult {
  violations: SkewFinding[];
  /** The cluster is outside the policy already; the plan does not make it worse. */
  warnings: SkewFinding[];
}

/** Checks the cluster after every step of the plan (see the header for the model). */
export function checkSteps(input: StepSkewInput): SkewResult {
  const { apiServer, target, nodes, steps } = input;
  const out: SkewResult = { violations: [], warnings: [] };
  const api = formatVersion(apiServer);
  const to = formatVersion(target);
  const atTarget = (n: SkewNode) => n.version !== undefined && compareVersions(n.version, target) >= 0;
  const controlPlane = nodes.filter((n) => n.role === 'control-plane');
  const upgradedBy = (n: SkewNode, s: number) => n.step !== undefined && n.step <= s;
  /** The control-plane nodes whose API server is still at the old version after step s. */
  const cpBehind = (s: number) => controlPlane.filter((n) => !upgradedBy(n, s) && !atTarget(n));
  const apiRange = (s: number): { oldest: SemVer; newest: SemVer } => {
    if (controlPlane.length === 0) return { oldest: apiServer, newest: apiServer };
    const behind = cpBehind(s).length;
    return { oldest: behind > 0 ? apiServer : target, newest: behind < controlPlane.length ? target : apiServer };
  };
  const kubeletAt = (n: SkewNode, s: number): SemVer => (upgradedBy(n, s) ? target : (n.version as SemVer));

  for (const n of nodes) {
    if (n.version === undefined) {
      const finding: SkewFinding = {
        rule: 'unknown-version',
        node: n.name,
        message: `Node ${n.name} reports kubelet version ${JSON.stringify(n.reported ?? '')}, which is not a Kubernetes version: its skew cannot be checked.`,
        fix: `Check the node's kubelet (kubectl get node ${n.name} -o jsonpath='{.status.nodeInfo.kubeletVersion}')${n.inScope ? ', or leave it out of the plan' : ''}.`,
      };
      // A node the plan was asked to upgrade blocks it; any other is only out of sight.
      (n.inScope ? out.violations : out.warnings).push(finding);
      continue;
    }
    const newerGap = (s: number) => ordinal(kubeletAt(n, s)) - ordinal(n.role === 'control-plane' ? apiRange(s).newest : apiRange(s).oldest);
    const behindGap = (s: number) => ordinal(apiRange(s).newest) - ordinal(kubeletAt(n, s));
    const newer0 = newerGap(0);
    const behind0 = behindGap(0);
    const have = formatVersion(n.version);
    if (newer0 > 0) {
      out.warnings.push({
        rule: 'kubelet-newer-than-apiserver',
        node: n.name,
        message: `Node ${n.name} runs kubelet ${have}, newer than the API server (${formatVersion(apiRange(0).oldest)}): the cluster is outside the version skew policy already.`,
        fix: 'Bring the control plane to the kubelet\'s minor version first.',
      });
    }
    if (behind0 > MAX_KUBELET_MINORS_BEHIND) {
      out.warnings.push({
        rule: 'kubelet-too-old',
        node: n.name,
        message: `Node ${n.name} runs kubelet ${have}, ${behind0} minor versions behind the API server (${api}): the cluster is outside the version skew policy already (at most ${MAX_KUBELET_MINORS_BEHIND}).`,
        fix: `Upgrade ${n.name} to ${formatMinor(apiServer)}.x.`,
      });
    }
    let newerFound = false;
    let behindFound = false;
    for (let s = 1; s <= steps && !(newerFound && behindFound); s++) {
      if (!newerFound && newerGap(s) > Math.max(0, newer0)) {
        newerFound = true;
        const left = cpBehind(s).map((c) => c.name);
        out.violations.push({
          rule: 'kubelet-newer-than-apiserver',
          node: n.name,
          step: s,
          message:
            left.length === 0
              ? `Node ${n.name} would run kubelet ${to} from step ${s} while the API server stays at ${api}: no control-plane node is registered, so this plan cannot upgrade the API server, and a kubelet must never be newer than it.`
              : `Node ${n.name} would run kubelet ${to} from step ${s} while the API server on ${left.join(', ')} (not in this plan) is still at ${api}: a kubelet must never be newer than the API server.`,
          fix:
            left.length === 0
              ? `Upgrade the API server to ${formatMinor(target)} first, then plan the workers.`
              : `Upgrade the control plane first: add ${left.join(', ')} to the plan (control-plane nodes go first), or plan them alone before the workers.`,
        });
      }
      if (!behindFound && behindGap(s) > Math.max(MAX_KUBELET_MINORS_BEHIND, behind0)) {
        behindFound = true;
        const until = n.step === undefined ? 'and this plan does not upgrade it' : `until its own upgrade at step ${n.step}`;
        out.violations.push({
          rule: 'kubelet-too-old',
          node: n.name,
          step: s,
          message: `Node ${n.name} runs kubelet ${have}: once the API server is at ${to} (step ${s}) it is ${behindGap(s)} minor versions behind, ${until}; at most ${MAX_KUBELET_MINORS_BEHIND} are supported.`,
          fix: `Upgrade ${n.name} to ${formatMinor(apiServer)}.x (the API server's version now) first, then plan ${to}.`,
        });
      }
    }
  }
  return out;
}
