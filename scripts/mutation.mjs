// `npm run test:mutation [-- <module>...]`: Stryker on each named module (all of them if none), one after
// the other, each with its own test files and incremental file. Prints a score table at the end.
// `npm run test:mutation -- --table`: only the table, from the last reports of every module.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { modules } from './mutation-modules.mjs'

const tableOnly = process.argv.includes('--table')
const names = process.argv.slice(2).filter((arg) => arg !== '--table')
const unknown = names.filter((name) => !(name in modules))
if (unknown.length > 0) {
  console.error(`unknown module ${unknown.join(', ')}; one of: ${Object.keys(modules).join(', ')}`)
  process.exit(2)
}
const selected = names.length > 0 ? names : Object.keys(modules)

let failed = false
for (const name of tableOnly ? [] : selected) {
  console.log(`\n=== mutation testing: ${name} (${modules[name].what})`)
  const run = spawnSync('npx', ['stryker', 'run', 'stryker.config.mjs'], {
    stdio: 'inherit',
    env: { ...process.env, MUTATION_MODULE: name },
  })
  if (run.status !== 0) failed = true
}

console.log('\n| module | mutants | killed | survived | no coverage | score |')
console.log('| --- | --- | --- | --- | --- | --- |')
for (const name of selected) {
  const file = `reports/mutation/${name}.json`
  if (!existsSync(file)) continue
  const report = JSON.parse(readFileSync(file, 'utf8'))
  const count = { killed: 0, survived: 0, noCoverage: 0, valid: 0 }
  for (const entry of Object.values(report.files)) {
    for (const mutant of entry.mutants) {
      if (mutant.status === 'Killed' || mutant.status === 'Timeout') count.killed++
      else if (mutant.status === 'Survived') count.survived++
      else if (mutant.status === 'NoCoverage') count.noCoverage++
      else continue // CompileError, RuntimeError, Ignored: not counted in the score
      count.valid++
    }
  }
  const score = count.valid === 0 ? 100 : (100 * count.killed) / count.valid
  console.log(
    `| ${name} | ${count.valid} | ${count.killed} | ${count.survived} | ${count.noCoverage} | ${score.toFixed(1)}% |`,
  )
}
process.exit(failed ? 1 : 0)
