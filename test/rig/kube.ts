/**
 * A real Kubernetes control plane for end-to-end tests (DESIGN.md §6): etcd 3.5,
 * kube-apiserver, kube-controller-manager, kube-scheduler and the kwok controller, all on
 * 127.0.0.1 with free ports, generated certificates and a temporary directory.
 *
 * Nodes are simulated: the kwok controller manages every Node carrying the annotation
 * `kwok.x-k8s.io/node: fake` (see KWOK_NODE_ANNOTATION), keeps it Ready with a Lease, and
 * plays the kubelet's part for the pods bound to it through the stages below (Running,
 * Succeeded for Job pods, deleted on termination — after the grace period for pods annotated
 * `lifeboat.test/slow-termination: "true"`).
 *
 * Every process is a direct child of this Node process: stop() terminates them in order and
 * an exit/signal handler SIGKILLs whatever is left. Binaries come from rig.json
 * (`bash test/rig/build.sh`). LIFEBOAT_RIG_KEEP=1 keeps the directory (logs, certs) after stop.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort, rigCacheDir, startEtcd, type EtcdHandle } from './components.js';
import { logTail, makeTempDir, removeTempDir, spawnLogged, terminate } from './processes.js';

const execFileP = promisify(execFile);

/** Pods whose first container has this image never start: the simulated kubelet reports ErrImagePull. */
export const UNPULLABLE_IMAGE = 'registry.invalid/lifeboat/unpullable:0';

/** Nodes with this annotation (value "fake") are managed by the kwok controller. */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';
/** Pods annotated with this (value "true") take their whole grace period to terminate. */
export const SLOW_TERMINATION_ANNOTATION = 'lifeboat.test/slow-termination';

// ---------------------------------------------------------------------------
// rig.json
// ---------------------------------------------------------------------------

export interface KubeBins {
  apiserver: string;
  controllerManager: string;
  scheduler: string;
  kubectl: string;
  kwok: string;
  kwokctl: string;
  etcd: string;
}

interface KubeRigJson {
  kube?: { apiserver?: string; controllerManager?: string; scheduler?: string; kubectl?: string; version?: string };
  kwok?: { kwok?: string; kwokctl?: string; version?: string };
  etcd35?: { etcd?: string };
}

/** Kubernetes and kwok binaries and their versions, from rig.json. */
export function readKubeRig(): { bins: KubeBins; version: string; kwokVersion: string } {
  const file = join(rigCacheDir(), 'rig.json');
  const hint = 'run `bash test/rig/build.sh` (or `npm run rig`) first';
  let rig: KubeRigJson;
  try {
    rig = JSON.parse(readFileSync(file, 'utf8')) as KubeRigJson;
  } catch (err) {
    throw new Error(`test rig not built: cannot read ${file} (${(err as Error).message}); ${hint}`);
  }
  const bins = {
    apiserver: rig.kube?.apiserver,
    controllerManager: rig.kube?.controllerManager,
    scheduler: rig.kube?.scheduler,
    kubectl: rig.kube?.kubectl,
    kwok: rig.kwok?.kwok,
    kwokctl: rig.kwok?.kwokctl,
    etcd: rig.etcd35?.etcd,
  };
  for (const [name, p] of Object.entries(bins)) {
    if (typeof p !== 'string' || !existsSync(p)) {
      throw new Error(`test rig incomplete: ${file} has no ${name} binary (${String(p)}); ${hint}`);
    }
  }
  const version = rig.kube?.version;
  const kwokVersion = rig.kwok?.version;
  if (typeof version !== 'string' || typeof kwokVersion !== 'string') {
    throw new Error(`test rig incomplete: ${file} has no kube.version / kwok.version; ${hint}`);
  }
  return { bins: bins as KubeBins, version, kwokVersion };
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

interface Proc {
  name: string;
  child: ChildProcess;
  logFile: string;
}

function spawnProc(name: string, bin: string, args: string[], dir: string, env: NodeJS.ProcessEnv = process.env): Proc {
  const logFile = join(dir, `${name}.log`);
  return { name, child: spawnLogged(bin, args, logFile, env, dir), logFile };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Tls {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized?: boolean;
}

/** GET an https URL; never rejects (status 0 on connection errors). */
function get(url: string, tls: Tls): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = httpsRequest(new URL(url), { method: 'GET', timeout: 3000, ...tls }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

async function waitHealthy(proc: Proc, ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { child } = proc;
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${proc.name} exited (${child.exitCode ?? child.signalCode}) before becoming healthy; log ${proc.logFile}:\n${await logTail(proc.logFile)}`);
    }
    if (await ready()) return;
    if (Date.now() > deadline) {
      throw new Error(`${proc.name} not healthy after ${timeoutMs / 1000}s; log ${proc.logFile}:\n${await logTail(proc.logFile)}`);
    }
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------
// PKI (openssl CLI, ECDSA P-256: fast to generate, accepted by every component)
// ---------------------------------------------------------------------------

/** In-cluster address of the `kubernetes` Service: the first IP of SERVICE_CIDR. */
const SERVICE_CIDR = '10.96.0.0/16';
const KUBERNETES_SERVICE_IP = '10.96.0.1';
const POD_CIDR = '10.244.0.0/16';

const OPENSSL_CNF = `
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[apiserver]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, IP:${KUBERNETES_SERVICE_IP}, DNS:localhost, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

interface Pki {
  caCert: string;
  caKey: string;
  apiserverCert: string;
  apiserverKey: string;
  saKey: string;
  saPub: string;
  /** Client certificate and key files by identity. */
  clients: Record<'admin' | 'controllerManager' | 'scheduler' | 'kwok', { cert: string; key: string }>;
}

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await execFileP('openssl', args, { cwd: dir });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}

async function genKey(dir: string, file: string): Promise<void> {
  await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file]);
  await chmod(file, 0o600);
}

async function generatePki(dir: string): Promise<Pki> {
  const f = (name: string): string => join(dir, name);
  const cnf = f('openssl.cnf');
  await writeFile(cnf, OPENSSL_CNF);
  const days = '30';
  await genKey(dir, f('ca.key'));
  await openssl(dir, ['req', '-config', cnf, '-new', '-x509', '-key', f('ca.key'), '-out', f('ca.crt'), '-days', days,
    '-subj', '/CN=lifeboat-kubernetes-ca', '-extensions', 'ca']);

  const issue = async (base: string, subject: string, ext: 'apiserver' | 'client'): Promise<{ cert: string; key: string }> => {
    await genKey(dir, f(`${base}.key`));
    await openssl(dir, ['req', '-config', cnf, '-new', '-key', f(`${base}.key`), '-out', f(`${base}.csr`), '-subj', subject]);
    // A random serial per certificate (a shared ca.srl would race: certificates are issued concurrently).
    const serial = `0x${randomBytes(16).toString('hex')}`;
    await openssl(dir, ['x509', '-req', '-in', f(`${base}.csr`), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-set_serial', serial,
      '-out', f(`${base}.crt`), '-days', days, '-extfile', cnf, '-extensions', ext]);
    return { cert: f(`${base}.crt`), key: f(`${base}.key`) };
  };

  const [apiserver, admin, controllerManager, scheduler, kwok] = await Promise.all([
    issue('apiserver', '/CN=kube-apiserver', 'apiserver'),
    issue('admin', '/O=system:masters/CN=lifeboat-admin', 'client'),
    issue('controller-manager', '/CN=system:kube-controller-manager', 'client'),
    issue('scheduler', '/CN=system:kube-scheduler', 'client'),
    // kwok patches node and pod status, leases and pods everywhere: give it cluster-admin.
    issue('kwok', '/O=system:masters/CN=kwok-controller', 'client'),
    (async () => {
      await genKey(dir, f('sa.key'));
      await openssl(dir, ['pkey', '-in', f('sa.key'), '-pubout', '-out', f('sa.pub')]);
    })(),
  ]);
  return {
    caCert: f('ca.crt'),
    caKey: f('ca.key'),
    apiserverCert: apiserver.cert,
    apiserverKey: apiserver.key,
    saKey: f('sa.key'),
    saPub: f('sa.pub'),
    clients: { admin, controllerManager, scheduler, kwok },
  };
}

async function writeKubeconfig(file: string, server: string, caFile: string, user: string, cert: { cert: string; key: string }): Promise<void> {
  const b64 = async (p: string): Promise<string> => (await readFile(p)).toString('base64');
  // JSON is valid YAML; every client (kubectl, client-go, client-node) reads it.
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'lifeboat-e2e', cluster: { server, 'certificate-authority-data': await b64(caFile) } }],
    users: [{ name: user, user: { 'client-certificate-data': await b64(cert.cert), 'client-key-data': await b64(cert.key) } }],
    contexts: [{ name: 'lifeboat-e2e', context: { cluster: 'lifeboat-e2e', user } }],
    'current-context': 'lifeboat-e2e',
  };
  await writeFile(file, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
}

// ---------------------------------------------------------------------------
// kwok stages: what the simulated kubelet does to nodes and pods
// ---------------------------------------------------------------------------

function kwokConfig(kubeVersion: string): string {
  const stage = (name: string, kind: 'Node' | 'Pod', body: string): string =>
    `---\napiVersion: kwok.x-k8s.io/v1alpha1\nkind: Stage\nmetadata:\n  name: ${name}\nspec:\n  resourceRef:\n    apiGroup: v1\n    kind: ${kind}\n${body}`;
  const notDeleting = `    - jq:\n        key: '.metadata.deletionTimestamp'\n        operator: DoesNotExist\n`;
  return [
    // A node that is not Ready yet: the kubelet registers, reports conditions, addresses and
    // whatever capacity / nodeInfo the creator left out.
    stage('lifeboat-node-ready', 'Node', `  selector:
    matchExpressions:
    - jq:
        key: '.status.conditions[]? | select(.type == "Ready") | .status'
        operator: NotIn
        values: ["True"]
  steps:
  - patch:
      subresource: status
      root: status
      template: |
        {{ $now := Now }}
        phase: Running
        conditions:
        {{ range NodeConditions }}
        - type: {{ .type | Quote }}
          status: {{ .status | Quote }}
          reason: {{ .reason | Quote }}
          message: {{ .message | Quote }}
          lastHeartbeatTime: {{ $now | Quote }}
          lastTransitionTime: {{ $now | Quote }}
        {{ end }}
        {{ if not .status.addresses }}
        addresses:
        - type: InternalIP
          address: {{ NodeIP | Quote }}
        - type: Hostname
          address: {{ .metadata.name | Quote }}
        {{ end }}
        {{ if not .status.capacity }}
        capacity: { cpu: "8", memory: 32Gi, pods: "110", ephemeral-storage: 100Gi }
        {{ end }}
        {{ if not .status.allocatable }}
        allocatable: {{ if .status.capacity }}{{ .status.capacity | toJson }}{{ else }}{ cpu: "8", memory: 32Gi, pods: "110", ephemeral-storage: 100Gi }{{ end }}
        {{ end }}
        nodeInfo:
          kubeletVersion: {{ or .status.nodeInfo.kubeletVersion "${kubeVersion}" | Quote }}
          kubeProxyVersion: {{ or .status.nodeInfo.kubeProxyVersion "" | Quote }}
          containerRuntimeVersion: {{ or .status.nodeInfo.containerRuntimeVersion (printf "kwok://%s" Version) | Quote }}
          operatingSystem: {{ or .status.nodeInfo.operatingSystem "linux" | Quote }}
          architecture: {{ or .status.nodeInfo.architecture "amd64" | Quote }}
`),
    // The kubelet's periodic status report (its Lease, renewed by kwok, is the real heartbeat).
    stage('lifeboat-node-heartbeat', 'Node', `  selector:
    matchExpressions:
    - jq:
        key: '.status.conditions[]? | select(.type == "Ready") | .status'
        operator: In
        values: ["True"]
  delay:
    durationMilliseconds: 240000
    jitterDurationMilliseconds: 300000
  steps:
  - patch:
      subresource: status
      root: status
      template: |
        {{ $now := Now }}
        conditions:
        {{ range NodeConditions }}
        - type: {{ .type | Quote }}
          lastHeartbeatTime: {{ $now | Quote }}
        {{ end }}
`),
    // A pod bound to a managed node starts at once: containers running, pod Ready.
    stage('lifeboat-pod-running', 'Pod', `  selector:
    matchExpressions:
${notDeleting}    - jq:
        key: '.status.phase'
        operator: In
        values: ["Pending"]
    - jq:
        key: '.spec.containers[0].image'
        operator: NotIn
        values: ["${UNPULLABLE_IMAGE}"]
  steps:
  - patch:
      subresource: status
      root: status
      template: |
        {{ $now := Now }}
        phase: Running
        startTime: {{ $now | Quote }}
        conditions:
        - { type: PodReadyToStartContainers, status: "True", lastTransitionTime: {{ $now | Quote }} }
        - { type: Initialized, status: "True", lastTransitionTime: {{ $now | Quote }} }
        - { type: ContainersReady, status: "True", lastTransitionTime: {{ $now | Quote }} }
        - { type: Ready, status: "True", lastTransitionTime: {{ $now | Quote }} }
        containerStatuses:
        {{ range .spec.containers }}
        - name: {{ .name | Quote }}
          image: {{ .image | Quote }}
          imageID: ""
          ready: true
          started: true
          restartCount: 0
          state: { running: { startedAt: {{ $now | Quote }} } }
        {{ end }}
        {{ with .spec.initContainers }}
        initContainerStatuses:
        {{ range . }}
        - name: {{ .name | Quote }}
          image: {{ .image | Quote }}
          imageID: ""
          restartCount: 0
          {{ if eq (or .restartPolicy "") "Always" }}
          ready: true
          started: true
          state: { running: { startedAt: {{ $now | Quote }} } }
          {{ else }}
          ready: false
          started: false
          state: { terminated: { exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }} } }
          {{ end }}
        {{ end }}
        {{ end }}
        {{ with NodeIPsWith .spec.nodeName }}
        hostIP: {{ index . 0 | Quote }}
        hostIPs:
        {{ range . }}
        - ip: {{ . | Quote }}
        {{ end }}
        {{ end }}
        {{ with PodIPsWith .spec.nodeName (or .spec.hostNetwork false) .metadata.uid .metadata.name .metadata.namespace }}
        podIP: {{ index . 0 | Quote }}
        podIPs:
        {{ range . }}
        - ip: {{ . | Quote }}
        {{ end }}
        {{ end }}
`),
    // ... unless its image cannot be pulled: the kubelet's ErrImagePull, and the pod stays Pending.
    stage('lifeboat-pod-image-pull-error', 'Pod', `  selector:
    matchExpressions:
${notDeleting}    - jq:
        key: '.status.phase'
        operator: In
        values: ["Pending"]
    - jq:
        key: '.spec.containers[0].image'
        operator: In
        values: ["${UNPULLABLE_IMAGE}"]
    - jq:
        key: '.status.containerStatuses'
        operator: DoesNotExist
  steps:
  - patch:
      subresource: status
      root: status
      template: |
        {{ $now := Now }}
        phase: Pending
        conditions:
        - { type: PodScheduled, status: "True", lastTransitionTime: {{ $now | Quote }} }
        - { type: Ready, status: "False", reason: ContainersNotReady, lastTransitionTime: {{ $now | Quote }} }
        containerStatuses:
        {{ range .spec.containers }}
        - name: {{ .name | Quote }}
          image: {{ .image | Quote }}
          imageID: ""
          ready: false
          started: false
          restartCount: 0
          state: { waiting: { reason: ErrImagePull, message: {{ printf "failed to pull and unpack image %q: not found" .image | Quote }} } }
        {{ end }}
`),
    // A Job's pod runs to completion.
    stage('lifeboat-pod-job-complete', 'Pod', `  selector:
    matchExpressions:
${notDeleting}    - jq:
        key: '.status.phase'
        operator: In
        values: ["Running"]
    - jq:
        key: '.metadata.ownerReferences[]? | .kind'
        operator: In
        values: ["Job"]
  delay:
    durationMilliseconds: 1000
  steps:
  - patch:
      subresource: status
      root: status
      template: |
        {{ $now := Now }}
        phase: Succeeded
        conditions:
        - { type: Ready, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }} }
        - { type: ContainersReady, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }} }
        containerStatuses:
        {{ range .spec.containers }}
        - name: {{ .name | Quote }}
          image: {{ .image | Quote }}
          imageID: ""
          ready: false
          started: false
          restartCount: 0
          state: { terminated: { exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }} } }
        {{ end }}
`),
    // Termination: containers that exit on SIGTERM — the pod is gone at once (the kubelet's
    // final grace-0 delete; finalizers, if any, still hold it, as on a real node).
    stage('lifeboat-pod-terminate', 'Pod', `  selector:
    matchExpressions:
    - jq:
        key: '.metadata.deletionTimestamp'
        operator: Exists
    - jq:
        key: '.metadata.annotations["${SLOW_TERMINATION_ANNOTATION}"]'
        operator: NotIn
        values: ["true"]
  steps:
  - delete: true
`),
    // ... and containers that ignore SIGTERM: killed when the grace period ends, i.e. at the
    // deletionTimestamp the API server set from the pod's (or the eviction's) grace period.
    stage('lifeboat-pod-terminate-after-grace', 'Pod', `  selector:
    matchExpressions:
    - jq:
        key: '.metadata.deletionTimestamp'
        operator: Exists
    - jq:
        key: '.metadata.annotations["${SLOW_TERMINATION_ANNOTATION}"]'
        operator: In
        values: ["true"]
  delay:
    durationFrom:
      jq:
        expression: '.metadata.deletionTimestamp'
  steps:
  - delete: true
`),
  ].join('');
}

// ---------------------------------------------------------------------------
// The cluster
// ---------------------------------------------------------------------------

export interface KubeCluster {
  /** https://127.0.0.1:PORT */
  server: string;
  /** Admin kubeconfig (system:masters, certificates embedded). */
  kubeconfig: string;
  /** Kubernetes version, e.g. v1.36.3. */
  version: string;
  kwokVersion: string;
  bins: KubeBins;
  /** Temporary directory with certificates, kubeconfigs, configs and one log per component. */
  dir: string;
  /** The etcd the API server stores into. */
  etcd: { endpoint: string; dataDir: string };
  /** PIDs by component (for tests that kill one). */
  pids: Record<string, number>;
  stop(): Promise<void>;
}

export interface StartKubeOptions {
  /** Extra flags per component, appended to the defaults. */
  extraArgs?: Partial<Record<'apiserver' | 'controllerManager' | 'scheduler' | 'kwok', string[]>>;
  /** Milliseconds allowed for the whole start (default 180 s: a loaded 2-core machine is slow). */
  timeoutMs?: number;
}

export async function startKubeCluster(opts: StartKubeOptions = {}): Promise<KubeCluster> {
  const { bins, version, kwokVersion } = readKubeRig();
  const timeoutMs = opts.timeoutMs ?? 180_000;
  const deadline = Date.now() + timeoutMs;
  const remaining = (): number => Math.max(1000, deadline - Date.now());
  const dir = await makeTempDir('kube');

  const procs: Proc[] = [];
  let etcd: EtcdHandle | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // Clients first, then the API server, then its storage.
      await Promise.allSettled(procs.filter((p) => p.name !== 'kube-apiserver').map((p) => terminate(p.child, 10_000)));
      await Promise.allSettled(procs.filter((p) => p.name === 'kube-apiserver').map((p) => terminate(p.child, 10_000)));
      await etcd?.stop();
      await removeTempDir(dir);
    })());

  try {
    const [pkiResult, etcdResult] = await Promise.allSettled([generatePki(dir), startEtcd({ version: '3.5', name: 'kube-etcd' })]);
    if (etcdResult.status === 'fulfilled') etcd = etcdResult.value;
    if (pkiResult.status === 'rejected') throw pkiResult.reason;
    if (etcdResult.status === 'rejected') throw etcdResult.reason;
    const pki = pkiResult.value;
    const etcdHandle = etcdResult.value;
    const apiPort = await freePort();
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfig = join(dir, 'admin.kubeconfig');
    await Promise.all([
      writeKubeconfig(kubeconfig, server, pki.caCert, 'lifeboat-admin', pki.clients.admin),
      writeKubeconfig(join(dir, 'controller-manager.kubeconfig'), server, pki.caCert, 'system:kube-controller-manager', pki.clients.controllerManager),
      writeKubeconfig(join(dir, 'scheduler.kubeconfig'), server, pki.caCert, 'system:kube-scheduler', pki.clients.scheduler),
      writeKubeconfig(join(dir, 'kwok.kubeconfig'), server, pki.caCert, 'kwok-controller', pki.clients.kwok),
      writeFile(join(dir, 'kwok.yaml'), kwokConfig(version)),
    ]);
    const adminTls: Tls = {
      ca: await readFile(pki.caCert, 'utf8'),
      cert: await readFile(pki.clients.admin.cert, 'utf8'),
      key: await readFile(pki.clients.admin.key, 'utf8'),
    };

    // kube-apiserver
    const apiserver = spawnProc('kube-apiserver', bins.apiserver, [
      `--etcd-servers=${etcdHandle.endpoint}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.apiserverCert}`,
      `--tls-private-key-file=${pki.apiserverKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.saPub}`,
      `--service-account-signing-key-file=${pki.saKey}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--authorization-mode=Node,RBAC',
      '--allow-privileged=true',
      // Endpoints may not hold a loopback address: do not publish the apiserver's own.
      '--endpoint-reconciler-type=none',
      '--profiling=false',
      ...(opts.extraArgs?.apiserver ?? []),
    ], dir);
    procs.push(apiserver);
    await waitHealthy(apiserver, async () => {
      const res = await get(`${server}/readyz`, adminTls);
      return res.status === 200;
    }, remaining());

    // Controllers, scheduler and kwok, all at once.
    const [cmPort, schedPort, kwokPort] = await Promise.all([freePort(), freePort(), freePort()]);
    const componentKubeconfig = (name: string): string[] => {
      const file = join(dir, `${name}.kubeconfig`);
      return [`--kubeconfig=${file}`, `--authentication-kubeconfig=${file}`, `--authorization-kubeconfig=${file}`];
    };
    const controllerManager = spawnProc('kube-controller-manager', bins.controllerManager, [
      ...componentKubeconfig('controller-manager'),
      '--bind-address=127.0.0.1',
      `--secure-port=${cmPort}`,
      `--cert-dir=${join(dir, 'controller-manager-certs')}`,
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${pki.saKey}`,
      `--root-ca-file=${pki.caCert}`,
      `--cluster-signing-cert-file=${pki.caCert}`,
      `--cluster-signing-key-file=${pki.caKey}`,
      '--profiling=false',
      ...(opts.extraArgs?.controllerManager ?? []),
    ], dir);
    procs.push(controllerManager);
    const scheduler = spawnProc('kube-scheduler', bins.scheduler, [
      ...componentKubeconfig('scheduler'),
      '--bind-address=127.0.0.1',
      `--secure-port=${schedPort}`,
      `--cert-dir=${join(dir, 'scheduler-certs')}`,
      '--leader-elect=false',
      '--profiling=false',
      ...(opts.extraArgs?.scheduler ?? []),
    ], dir);
    procs.push(scheduler);
    // KWOK_WORKDIR: keep kwok away from ~/.kwok (it would load a kwok.yaml found there).
    const kwok = spawnProc('kwok', bins.kwok, [
      `--kubeconfig=${join(dir, 'kwok.kubeconfig')}`,
      `--config=${join(dir, 'kwok.yaml')}`,
      '--manage-all-nodes=false',
      `--manage-nodes-with-annotation-selector=${KWOK_NODE_ANNOTATION}=fake`,
      '--node-ip=10.0.0.1',
      `--cidr=${POD_CIDR}`,
      '--node-lease-duration-seconds=40',
      `--server-address=127.0.0.1:${kwokPort}`,
      ...(opts.extraArgs?.kwok ?? []),
    ], dir, { ...process.env, KWOK_WORKDIR: join(dir, 'kwok-workdir') });
    procs.push(kwok);

    const insecure: Tls = { rejectUnauthorized: false };
    await Promise.all([
      waitHealthy(controllerManager, async () => (await get(`https://127.0.0.1:${cmPort}/healthz`, insecure)).status === 200, remaining()),
      waitHealthy(scheduler, async () => (await get(`https://127.0.0.1:${schedPort}/healthz`, insecure)).status === 200, remaining()),
      waitHealthy(kwok, async () => {
        // kwok serves plain HTTP on --server-address.
        return (await getHttp(`http://127.0.0.1:${kwokPort}/healthz`)) === 200;
      }, remaining()),
    ]);
    // The controllers are really working once the default ServiceAccount exists.
    await waitHealthy(controllerManager, async () => {
      const res = await get(`${server}/api/v1/namespaces/default/serviceaccounts/default`, adminTls);
      return res.status === 200;
    }, remaining());

    return {
      server,
      kubeconfig,
      version,
      kwokVersion,
      bins,
      dir,
      etcd: { endpoint: etcdHandle.endpoint, dataDir: etcdHandle.dataDir },
      pids: Object.fromEntries([...procs.map((p) => [p.name, p.child.pid ?? -1] as const), ['etcd', etcdHandle.pid]]),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function getHttp(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = httpRequest(new URL(url), { method: 'GET', timeout: 3000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', () => resolve(0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(0));
    req.end();
  });
}
