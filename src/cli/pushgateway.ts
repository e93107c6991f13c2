/**
 * Pushing a run's metrics to a Prometheus Pushgateway.
 *
 * The group is job=<--pushgateway-job>, kind=<etcd|resources>, at
 * <base URL>/metrics/job/<job>/kind/<kind>. The body is the text exposition format 0.0.4 (the
 * Pushgateway parses that or delimited protobuf, not OpenMetrics). The method is POST, which
 * replaces only the metric families the request carries: a failed run sends no last-success
 * family, so the one a successful run pushed before stays (PUT would replace the whole group and
 * lose it).
 */
import { messageOf, UsageError } from './errors.js';

export interface PushTarget {
  /** Base URL of the Pushgateway, without credentials. */
  url: URL;
  /** The URL for messages (no credentials). */
  display: string;
  /** "Basic ..." from the URL's userinfo. */
  authorization?: string | undefined;
  job: string;
  timeoutMs: number;
}

export const TEXT_FORMAT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** Parses --pushgateway: an http(s) base URL, optionally user:password@ for basic auth. */
export function parsePushgateway(raw: string, opts: { job: string; timeoutMs: number }): PushTarget {
  const hint = 'Give the Pushgateway’s base URL, e.g. http://pushgateway.monitoring:9091 (with user:password@ for basic auth); lifeboat adds /metrics/job/….';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`Invalid --pushgateway ${JSON.stringify(redact(raw))}: not a URL.`, { hint });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`Invalid --pushgateway ${JSON.stringify(redact(raw))}: not an http or https URL.`, { hint });
  if (url.search || url.hash) throw new UsageError(`Invalid --pushgateway ${JSON.stringify(redact(raw))}: a base URL has no query or fragment.`, { hint });
  if (/\/metrics(\/|$)/.test(url.pathname)) throw new UsageError(`Invalid --pushgateway ${JSON.stringify(redact(raw))}: give the base URL, without /metrics/….`, { hint });
  if (opts.job === '') throw new UsageError('--pushgateway-job must not be empty.');
  let authorization: string | undefined;
  if (url.username || url.password) {
    const user = decodeURIComponent(url.username);
    const password = decodeURIComponent(url.password);
    authorization = `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  if (opts.timeoutMs <= 0) throw new UsageError('--pushgateway-timeout must be more than 0.');
  return { url, display: url.href, authorization, job: opts.job, timeoutMs: opts.timeoutMs };
}

/** The URL with any password replaced, for messages. */
function redact(raw: string): string {
  return raw.replace(/^([a-z][a-z0-9+.-]*:\/\/[^/@:]*):[^/@]*@/i, '$1:***@');
}

/** One grouping-key path segment pair; values with "/" (or empty) go base64url-encoded, as the Pushgateway asks. */
function segment(name: string, value: string): string {
  if (value === '' || value.includes('/')) return `${name}@base64/${Buffer.from(value, 'utf8').toString('base64url') || '='}`;
  return `${name}/${encodeURIComponent(value)}`;
}

/** <base>/metrics/job/<job>/kind/<kind>, keeping a route prefix the base URL has. */
export function groupUrl(target: PushTarget, kind: string): URL {
  const url = new URL(target.url.href);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/metrics/${segment('job', target.job)}/${segment('kind', kind)}`;
  return url;
}

/** POSTs the text to the kind's group; throws with what went wrong (no answer, HTTP status and body). */
export async function pushRunMetrics(target: PushTarget, kind: string, text: string): Promise<void> {
  const url = groupUrl(target, kind);
  const headers: Record<string, string> = { 'content-type': TEXT_FORMAT_CONTENT_TYPE };
  if (target.authorization) headers['authorization'] = target.authorization;
  let res: Response;
  try {
    res = await fetch(url, { method: 'POST', headers, body: text, redirect: 'manual', signal: AbortSignal.timeout(target.timeoutMs) });
  } catch (err) {
    if (err instanceof Error && err.name === 'TimeoutError') throw new Error(`POST ${url.href}: no answer within ${target.timeoutMs / 1000}s`);
    const cause = err instanceof Error && err.cause !== undefined ? `: ${messageOf(err.cause)}` : '';
    throw new Error(`POST ${url.href}: ${messageOf(err)}${cause}`);
  }
  const body = (await res.text().catch(() => '')).trim();
  if (res.status === 200 || res.status === 202) return;
  const where = res.status >= 300 && res.status < 400 ? ` (redirect to ${res.headers.get('location') ?? '?'}; give that URL)` : '';
  throw new Error(`POST ${url.href}: HTTP ${res.status} ${res.statusText}${where}${body ? `: ${body.slice(0, 300)}` : ''}`);
}
