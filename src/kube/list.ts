import pRetry from 'p-retry';
import type { KubeClient } from './client.js';
import { KubeApiError } from './errors.js';

export interface ListOptions {
  labelSelector?: string | undefined;
  fieldSelector?: string | undefined;
  /** Objects per page (kubectl's --chunk-size); default 500. */
  limit?: number | undefined;
  signal?: AbortSignal | undefined;
}

interface ListPage<T> {
  metadata?: { continue?: string; resourceVersion?: string };
  items?: T[];
}

/** True for answers worth asking again: throttling, server errors, timeouts. */
export function isTransientKubeError(err: unknown): boolean {
  if (err instanceof KubeApiError) return err.status === 429 || err.status >= 500;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ECONNRESET' || code === 'ETIMEDOUT' || code === 'EPIPE';
}

/**
 * Every object of a collection, in limit/continue pages; transient errors are retried, and an
 * expired continue token (410) starts the list again.
 */
export async function listAll<T>(client: KubeClient, path: string, opts: ListOptions = {}): Promise<T[]> {
  for (let attempt = 0; ; attempt++) {
    const items: T[] = [];
    let cont: string | undefined;
    try {
      do {
        const page = await pRetry(
          () =>
            client.request<ListPage<T>>(path, {
              query: { limit: opts.limit ?? 500, continue: cont, labelSelector: opts.labelSelector, fieldSelector: opts.fieldSelector },
              signal: opts.signal,
            }),
          { retries: 4, minTimeout: 200, maxTimeout: 3000, shouldRetry: ({ error }) => isTransientKubeError(error), ...(opts.signal ? { signal: opts.signal } : {}) },
        );
        items.push(...(page.items ?? []));
        cont = page.metadata?.continue || undefined;
      } while (cont);
      return items;
    } catch (err) {
      if (err instanceof KubeApiError && err.status === 410 && attempt < 3) continue;
      throw err;
    }
  }
}
