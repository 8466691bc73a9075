/**
 * The demo's dashboard in a real browser (Debian's Chromium through playwright-core): while a short
 * embedded demo runs in this process, the page draws every chart, its charts gain points as samples
 * arrive, the fleet table lists every node, and the scenes reach the page as they start.
 */
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { runDemo } from '../demo/run.js'
import { launchChromium } from '../tools/chromium.js'

const shots = mkdtempSync(path.join(os.tmpdir(), 'coherent-cache-dashboard-'))
afterAll(() => rmSync(shots, { recursive: true, force: true }))

describe('demo dashboard', () => {
  test('charts every node live, lists the fleet and receives each scene', { timeout: 120_000 }, async () => {
    const output: string[] = []
    let opened: (url: string) => void = () => {}
    const address = new Promise<string>((resolve) => {
      opened = resolve
    })
    const demo = runDemo({
      duration: 16,
      nodes: 3,
      rate: 300,
      output: { write: (text: string) => output.push(text) },
      onDashboard: (url) => opened(url),
    })
    // If the demo fails before the dashboard is up, fail with its error instead of waiting.
    const url = await Promise.race([address, demo.then(() => Promise.reject(new Error(output.join(''))))])
    const browser = await launchChromium()
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
      const pageErrors: string[] = []
      page.on('pageerror', (error) => pageErrors.push(error.message))
      await page.goto(url)

      await page.waitForFunction(() => (globalThis as any).dashboard?.samples() >= 4, undefined, {
        timeout: 30_000,
      })
      const charts = await page.$$eval('.chart', (cards) => cards.map((card) => (card as any).dataset.chart))
      expect(charts).toEqual(['requests', 'db', 'l1', 'l2', 'lag', 'stale'])
      expect(await page.locator('.chart canvas').count()).toBe(charts.length)

      // The requests chart has lines drawn in the nodes' colours.
      const colours: [number, number, number][] = [
        [0x3b, 0x6f, 0xd8],
        [0xe0, 0x70, 0x2b],
        [0x2f, 0x9e, 0x62],
      ]
      // Pixels of the canvas near each colour: that node's line was drawn.
      const drawn = await page.$eval(
        '.chart[data-chart="requests"] canvas',
        (canvas, rgbs) => {
          const c = canvas as any
          const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data
          return rgbs.map(([r, g, b]) => {
            let count = 0
            for (let i = 0; i < data.length; i += 4) {
              const distance =
                Math.abs(data[i]! - r) + Math.abs(data[i + 1]! - g) + Math.abs(data[i + 2]! - b)
              if (data[i + 3]! > 0 && distance < 60) count++
            }
            return count
          })
        },
        colours,
      )
      // The lines of nodes under the same load lie on each other, so count them together.
      expect(drawn.reduce((a, b) => a + b, 0)).toBeGreaterThan(20)

      // Points grow between two reads while the demo runs.
      const first = await page.evaluate(() => (globalThis as any).dashboard.points())
      await page.waitForFunction(
        (before) => (globalThis as any).dashboard.points()[0].points > before,
        first[0].points,
        { timeout: 10_000 },
      )
      const second = await page.evaluate(() => (globalThis as any).dashboard.points())
      for (let i = 0; i < first.length; i++) expect(second[i].points).toBeGreaterThan(first[i].points)
      // Every node has values in the charts of rates and hit rates (the fleet too).
      for (const chart of second.filter((c: { chart: string }) =>
        ['requests', 'db', 'l1', 'l2'].includes(c.chart),
      )) {
        expect(chart.values).toHaveLength(4)
        for (const values of chart.values) expect(values).toBeGreaterThan(0)
      }

      // The fleet table lists every node.
      const fleet = await page.$$eval('#fleet tbody tr', (rows) =>
        rows.map((row) => (row as any).dataset.node),
      )
      expect(fleet).toEqual(['node-1', 'node-2', 'node-3'])

      // Each scene reaches the page as it starts (the markers are drawn from these).
      await page.waitForFunction(() => (globalThis as any).dashboard.scenes().length >= 2, undefined, {
        timeout: 30_000,
      })
      expect((await page.evaluate(() => (globalThis as any).dashboard.scenes())).slice(0, 2)).toEqual([
        'warm-up',
        'steady',
      ])

      const shot = path.join(shots, 'dashboard.png')
      await page.screenshot({ path: shot, fullPage: true })
      expect(existsSync(shot) && statSync(shot).size).toBeGreaterThan(10_000)

      // The page keeps the whole run once the demo has finished.
      await page.waitForFunction(() => (globalThis as any).dashboard.finished(), undefined, {
        timeout: 60_000,
      })
      expect(await page.evaluate(() => (globalThis as any).dashboard.scenes())).toEqual([
        'warm-up',
        'steady',
        'hot-key',
        'updates',
        'write-through',
        'write-behind',
        'outage',
      ])
      expect(pageErrors).toEqual([])
    } finally {
      await browser.close()
      await demo.catch(() => {})
    }
    const summary = await demo
    expect(summary.nodes.map((node) => node.id)).toEqual(['node-1', 'node-2', 'node-3'])
  })
})
