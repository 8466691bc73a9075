import { defineConfig } from 'vitest/config'
// @ts-expect-error plain .mjs shared with stryker.config.mjs and scripts/mutation.mjs
import { selectedModule } from './scripts/mutation-modules.mjs'

// The test files of one module (MUTATION_MODULE), for Stryker's vitest runner. No globalSetup: the
// listed files need no Redis.
export default defineConfig({
  test: {
    include: selectedModule().tests,
    testTimeout: 30_000,
  },
})
