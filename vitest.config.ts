import {defineConfig} from 'vitest/config'

// Integration tests drive real meshes through the CLI; everything else is in-process.
const INTEGRATION = ['test/integration/**/*.test.ts']

export default defineConfig({
  test: {
    // Integration tests start real meshes; two at a time fits a 2-core machine.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        // A fresh process per file cost ~0.5-1 s of a worker's time each (start-up and
        // re-importing src/); these files leave no global state behind (no module mocks,
        // stubbed globals or env changes; spies are restored), so one process runs many.
        test: {name: 'unit', include: ['test/**/*.test.ts'], exclude: INTEGRATION, isolate: false},
      },
      {
        extends: true,
        test: {name: 'integration', include: INTEGRATION},
      },
    ],
  },
})
