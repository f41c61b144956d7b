import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Unit, integration, contract, e2e and the bounded fuzz suites (test/fuzz, fixed seeds).
    include: ['test/**/*.test.ts'],
    // The operator console's bundle, which the console tests load in Chromium.
    globalSetup: ['test/helpers/build-console.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration suites start their own redis-server and gateway processes; keep the
    // machine's two cores from being oversubscribed.
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default'],
  },
});
