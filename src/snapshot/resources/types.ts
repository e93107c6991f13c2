/** A served resource, as discovery describes it. */
export interface GroupResource {
  /** API group, '' for the core group. */
  group: string;
  /** Plural resource name, e.g. "deployments". */
  resource: string;
  kind: string;
  namespaced: boolean;
}

/** "deployments.apps", or "configmaps" for the core group: the form filters and reports use. */
export function grName(gr: Pick<GroupResource, 'group' | 'resource'>): string {
  return gr.group ? `${gr.resource}.${gr.group}` : gr.resource;
}

/** The parts of a Kubernetes object lifeboat reads or rewrites. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: OwnerReference[];
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}
