import {defineConfig} from 'vitest/config'

// Files that drive real meshes (or npm) through the CLI, or run a million virtual-time requests
// (the M/M/c fidelity checks): seconds to minutes each. Their project
// sorts first (projects run in name order in one queue), so the quick in-process files fill
// the other worker at the end instead of a long file starting last; without a timing cache
// (CI) files are ordered by size, which would put the short but slow ones listed here last.
const INTEGRATION = ['test/integration/**/*.test.ts', 'test/virtual/fidelity-*.test.ts', 'test/cli/exit-codes.test.ts', 'test/docs/readme-tour.test.ts', 'test/install.test.ts']
// Measurements of a millisecond (a simulated service's p50 0.5 ms / p99 2 ms at the mesh) that
// another worker's meshes on the same two cores spoil: `npm test` runs them after the rest,
// alone (`vitest run --project precision`).
const PRECISION = ['test/integration/hosted-latency.test.ts']

export default defineConfig({
  test: {
    // Integration tests start real meshes; two at a time fits a 2-core machine. (Three ran the
    // suite in ~440 s instead of ~520 s, but made the autoscaler's timing tests flaky.)
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        // A fresh process per file cost ~0.5-1 s of a worker's time each (start-up and
        // re-importing src/); these files leave no global state behind (no module mocks,
        // stubbed globals or env changes), so one process runs many. What a test could still
        // leave to the next file, spies and vi.stub*, is undone after each test.
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: INTEGRATION,
          isolate: false,
          restoreMocks: true,
          unstubEnvs: true,
          unstubGlobals: true,
        },
      },
      {
        extends: true,
        test: {name: 'integration', include: INTEGRATION, exclude: PRECISION},
      },
      {
        extends: true,
        test: {name: 'precision', include: PRECISION},
      },
    ],
  },
})
