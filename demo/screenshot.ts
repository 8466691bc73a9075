/**
 * Takes the README's picture of the dashboard: runs the demo (embedded unless REDIS_URL/DATABASE_URL say
 * otherwise), follows its dashboard in Debian's Chromium, and saves the finished page.
 *
 *   npm run demo:screenshot [-- --duration 60 --out docs/dashboard.png]
 */
import { parseArgs } from 'node:util'
import { launchChromium } from '../tools/chromium.js'
import { runDemo } from './run.js'

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '60' },
    out: { type: 'string', default: 'docs/dashboard.png' },
  },
})

const browser = await launchChromium()
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } })
  let opened: Promise<unknown> = Promise.resolve()
  await runDemo({
    duration: Number(values.duration),
    redisUrl: process.env.REDIS_URL || undefined,
    databaseUrl: process.env.DATABASE_URL || undefined,
    onDashboard: (url) => {
      opened = page.goto(url)
    },
  })
  await opened
  // The page keeps the finished run after the demo has closed its server.
  await page.waitForFunction(() => (globalThis as any).dashboard?.finished(), undefined, { timeout: 10_000 })
  await page.screenshot({ path: values.out, fullPage: true })
  console.log(`saved ${values.out}`)
} finally {
  await browser.close()
}
