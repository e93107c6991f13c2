// Types for `inject('rig')`, provided by test/rig/global-setup.ts.
import type { RigContext } from './components.js';

declare module 'vitest' {
  export interface ProvidedContext {
    rig: RigContext;
  }
}
