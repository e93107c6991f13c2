// Types for `inject('rig')`, provided by test/rig/global-setup.ts, and `inject('kube')`,
// provided by test/rig/kube-global-setup.ts.
import type { RigContext } from './components.js';
import type { KubeContext } from './kube-global-setup.js';

declare module 'vitest' {
  export interface ProvidedContext {
    rig: RigContext;
    kube: KubeContext;
  }
}
