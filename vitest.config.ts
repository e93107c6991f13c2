import { defineConfig } from 'vitest/config';

// The AWS SDK's notice that its 2027 releases need Node 22 is noise in test output (workers and
// the CLI processes the tests start inherit this).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/rig/global-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          // Tests share one etcd/MinIO per run; files isolate themselves by key prefix.
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/rig/kube-global-setup.ts'],
          // Controllers and the scheduler react within seconds, but a loaded 2-core runner is slow.
          testTimeout: 180_000,
          hookTimeout: 240_000,
          // One control plane per run; files isolate themselves by namespace. (Vitest runs the
          // files of every project without file parallelism one at a time, so e2e and integration
          // files never compete for CPU.)
          fileParallelism: false,
        },
      },
    ],
  },
});
