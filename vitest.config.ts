import { defineConfig } from 'vitest/config';

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
    ],
  },
});
