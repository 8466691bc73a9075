// Mutation testing (issue 16). Run it with `npm run test:mutation [-- <module>...]`, which sets
// MUTATION_MODULE; see scripts/mutation-modules.mjs for the modules and docs/mutation.md for the scores.
import { selectedModule } from './scripts/mutation-modules.mjs'

const module = selectedModule()

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  packageManager: 'npm',
  testRunner: 'vitest',
  // Only the module's own test files (vitest.mutation.config.ts), not every test that imports it.
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  checkers: ['typescript'],
  // src only: the checker rejects mutants that do not compile, and checking tests, benches and demo
  // for every mutant would triple its time.
  tsconfigFile: 'tsconfig.mutation.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  mutate: module.mutate,
  coverageAnalysis: 'perTest',
  concurrency: 2,
  incremental: true,
  incrementalFile: `reports/mutation/${module.name}.incremental.json`,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${module.name}.html` },
  jsonReporter: { fileName: `reports/mutation/${module.name}.json` },
  // One temp dir per module, so that modules can run at the same time.
  // Not copied into the sandbox: other modules' sandboxes (when modules run side by side), reports, and
  // what no mutation run reads.
  ignorePatterns: ['.stryker-tmp', 'reports', 'bench', 'demo', 'examples', 'docs', 'dist', 'coverage'],
  tempDirName: `.stryker-tmp/${module.name}`,
  cleanTempDir: 'always',
  timeoutMS: 5_000,
  thresholds: { high: 90, low: 80, break: null },
}
