import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start their own redis-server and gateway processes; keep the
    // machine's two cores from being oversubscribed.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default'],
  },
});
