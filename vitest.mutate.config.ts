import {defineConfig} from 'vitest/config'

// The unit tests of the modules `npm run mutate` mutates (stryker.config.mjs): pure code under a
// fake clock, no mesh started, so each mutant is judged in seconds rather than minutes.
export default defineConfig({
  test: {
    include: [
      'test/policy/**/*.test.ts',
      'test/proxy/headers.test.ts',
      'test/proxy/layers.test.ts',
      'test/faults/fault-set.test.ts',
      'test/faults/fault-layer.test.ts',
      'test/deploy/analysis.test.ts',
      'test/deploy/strategies.test.ts',
      'test/telemetry/waterfall.test.ts',
    ],
    pool: 'forks',
    testTimeout: 20_000,
  },
})
