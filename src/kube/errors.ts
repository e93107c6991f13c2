// Kept apart from client.ts so that code which only inspects errors does not load the Kubernetes
// client library (its import alone costs ~0.6 s and ~125 MB).

/** A failed API call: HTTP status and the API server's Status object. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
    readonly body: KubeStatus | undefined,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export interface KubeStatus {
  kind?: 'Status';
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[] };
}
