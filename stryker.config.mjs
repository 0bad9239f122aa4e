// `npm run mutate`: mutation testing of the mesh's pure policy modules (not part of `npm test`;
// results and the survivors judged harmless are in docs/mutation-testing.md).
// StrykerJS 9 is the last major that runs on Node 20 (10 needs Node 22).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: {configFile: 'vitest.mutate.config.ts'},
  plugins: ['@stryker-mutator/vitest-runner'],
  mutate: [
    'src/sim/proxy/policy/**/*.ts',
    'src/sim/config/resilience-lint.ts',
    'src/sim/config/retry-semantics.ts',
    'src/sim/proxy/balance/**/*.ts',
    'src/sim/proxy/outlier/**/*.ts',
    'src/sim/faults/fault-set.ts',
    'src/sim/deploy/analysis.ts',
    'src/sim/telemetry/waterfall.ts',
    'src/sim/proxy/headers.ts',
  ],
  coverageAnalysis: 'perTest',
  // Two cores: one mutant at a time leaves the other for everything else running.
  concurrency: 1,
  incremental: true,
  incrementalFile: 'reports/stryker-incremental.json',
  reporters: ['clear-text', 'progress-append-only', 'json'],
  jsonReporter: {fileName: 'reports/mutation/mutation.json'},
  timeoutMS: 10_000,
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
}
