/**
 * Vitest globalSetup for the `e2e` project: starts one Kubernetes control plane (etcd 3.5,
 * kube-apiserver, kube-controller-manager, kube-scheduler, kwok) for the whole run and
 * provides its coordinates as `inject('kube')`. Test files isolate themselves by namespace.
 * Binaries come from rig.json (`bash test/rig/build.sh`).
 */
import type { TestProject } from 'vitest/node';
import { startKubeCluster, type KubeBins } from './kube.js';

/** What tests get from `inject('kube')`. JSON-serialisable. */
export interface KubeContext {
  /** Admin kubeconfig (system:masters). */
  kubeconfig: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** Kubernetes version of every component, e.g. v1.36.3. */
  version: string;
  kwokVersion: string;
  bins: KubeBins;
  /** The cluster's temporary directory (component logs: <dir>/<component>.log). */
  dir: string;
  etcd: { endpoint: string; dataDir: string };
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const t0 = Date.now();
  const cluster = await startKubeCluster();
  console.log(`kube: ${cluster.version} control plane at ${cluster.server} ready in ${((Date.now() - t0) / 1000).toFixed(1)}s (${cluster.dir})`);
  const kube: KubeContext = {
    kubeconfig: cluster.kubeconfig,
    server: cluster.server,
    version: cluster.version,
    kwokVersion: cluster.kwokVersion,
    bins: cluster.bins,
    dir: cluster.dir,
    etcd: cluster.etcd,
  };
  project.provide('kube', kube);
  return () => cluster.stop();
}
