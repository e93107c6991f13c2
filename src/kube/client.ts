import { KubeConfig } from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import { LifeboatError, NotFoundError } from '../cli/errors.js';
import { KubeApiError, type KubeStatus } from './errors.js';

export { KubeApiError, type KubeStatus };

export interface KubeClientConfig {
  /** Kubeconfig file; default: KUBECONFIG, then ~/.kube/config, then in-cluster. */
  kubeconfig?: string | undefined;
  context?: string | undefined;
  /** Per-request time limit. */
  timeoutMs?: number | undefined;
}

export interface RequestParams {
  method?: string;
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  signal?: AbortSignal | undefined;
}

/**
 * A thin client over the API server's REST interface: the kubeconfig's credentials (client
 * certificates, tokens, exec plugins through @kubernetes/client-node), keep-alive connections,
 * JSON in and out. Resource-agnostic, so discovery-driven code can reach every served resource.
 */
export class KubeClient {
  private constructor(
    readonly kc: KubeConfig,
    readonly server: string,
    private readonly agent: HttpAgent | HttpsAgent,
    private readonly timeoutMs: number,
    /**
     * The kubeconfig's headers (Authorization), when they cannot change: client certificates or
     * a static token. Undefined for exec plugins and auth providers (token files included),
     * whose token is asked for on every request (they cache and refresh it).
     */
    private readonly fixedHeaders: Record<string, string> | undefined,
  ) {}

  static async load(cfg: KubeClientConfig = {}): Promise<KubeClient> {
    const kc = new KubeConfig();
    const defaultFile = join(homedir(), '.kube', 'config');
    if (!cfg.kubeconfig && !process.env.KUBECONFIG && !existsSync(defaultFile) && !process.env.KUBERNETES_SERVICE_HOST) {
      // The library would fall back to http://localhost:8080, which no real cluster serves.
      throw new NotFoundError(`No kubeconfig: --kubeconfig and KUBECONFIG are not set, ${defaultFile} does not exist, and this is not a pod.`, {
        hint: 'Give --kubeconfig, or set KUBECONFIG.',
      });
    }
    try {
      if (cfg.kubeconfig) kc.loadFromFile(cfg.kubeconfig);
      else kc.loadFromDefault();
    } catch (err) {
      throw new NotFoundError(`Cannot load kubeconfig${cfg.kubeconfig ? ` ${cfg.kubeconfig}` : ''}: ${(err as Error).message}.`, { hint: 'Give --kubeconfig, or set KUBECONFIG.' });
    }
    if (cfg.context) {
      if (!kc.getContexts().some((c) => c.name === cfg.context)) throw new NotFoundError(`No context ${cfg.context} in the kubeconfig.`);
      kc.setCurrentContext(cfg.context);
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new NotFoundError('The kubeconfig has no current cluster.', { hint: 'Give --context, or set a current context.' });
    const opts: RequestOptions = {};
    try {
      await kc.applyToHTTPSOptions(opts);
    } catch (err) {
      throw new LifeboatError(`Cannot use the kubeconfig's credentials for ${cluster.server}: ${(err as Error).message}.`, { cause: err, hint: 'Check --kubeconfig/--context.' });
    }
    const tls = cluster.server.startsWith('https:');
    const base = { keepAlive: true, maxSockets: 16 };
    const agent = tls
      ? new HttpsAgent({ ...base, ca: opts.ca, cert: opts.cert, key: opts.key, ...(opts.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}), ...(opts.servername ? { servername: opts.servername } : {}) })
      : new HttpAgent(base);
    const user = kc.getCurrentUser();
    const fixedHeaders = user?.exec || user?.authProvider ? undefined : { ...(opts.headers as Record<string, string> | undefined) };
    return new KubeClient(kc, cluster.server.replace(/\/+$/, ''), agent, cfg.timeoutMs ?? 60_000, fixedHeaders);
  }

  /** One API call; resolves with the parsed JSON body, throws KubeApiError on a non-2xx answer. */
  async request<T>(path: string, params: RequestParams = {}): Promise<T> {
    const res = await this.raw(path, params);
    const text = await readText(res);
    const status = res.statusCode ?? 0;
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    if (status < 200 || status >= 300) {
      const st = body as KubeStatus | undefined;
      throw new KubeApiError(status, st?.reason ?? `HTTP${status}`, st?.message ?? (text.slice(0, 200) || `HTTP ${status}`), st);
    }
    return body as T;
  }

  /** The raw response (for streaming large lists). */
  async raw(path: string, params: RequestParams = {}): Promise<IncomingMessage> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(params.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    // Credentials live in the agent; keep only the headers (Authorization) from the kubeconfig.
    let auth = this.fixedHeaders;
    if (!auth) {
      const opts: RequestOptions = { headers: {} };
      await this.kc.applyToHTTPSOptions(opts);
      auth = opts.headers as Record<string, string>;
    }
    const headers: Record<string, string> = { ...auth, Accept: 'application/json' };
    let payload: Buffer | undefined;
    if (params.body !== undefined) {
      payload = Buffer.from(typeof params.body === 'string' ? params.body : JSON.stringify(params.body));
      headers['Content-Type'] = params.contentType ?? 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = send(url, { method: params.method ?? 'GET', headers, agent: this.agent, timeout: this.timeoutMs, ...(params.signal ? { signal: params.signal } : {}) }, resolve);
      req.on('timeout', () => req.destroy(Object.assign(new Error(`request to ${url.pathname} timed out`), { code: 'ETIMEDOUT' })));
      req.on('error', (err) => reject(connectionError(err, this.server)));
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

async function readText(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function connectionError(err: Error, server: string): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code && ['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ECONNRESET', 'ETIMEDOUT', 'EAI_AGAIN'].includes(code)) {
    return new LifeboatError(`Cannot reach the Kubernetes API server at ${server} (${code}).`, { cause: err, hint: 'Check --kubeconfig/--context and that the API server is up.' });
  }
  return err;
}
