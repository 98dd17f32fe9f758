/** Debian's Chromium, driven by playwright-core without a browser download. */
import * as fs from "node:fs"

export const CHROMIUM = "/usr/bin/chromium"

export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--no-first-run",
  "--disable-sync"
]

export const hasChromium = () => fs.existsSync(CHROMIUM)
