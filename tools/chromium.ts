/**
 * Debian's Chromium, driven by playwright-core (which never downloads a browser of its own). `.ci/run`
 * installs the package when it is missing; on a developer machine: `apt-get install chromium`, or point
 * CHROMIUM_PATH at a Chromium or Chrome binary.
 */
import { type Browser, chromium } from 'playwright-core'

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium'

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  })
}
