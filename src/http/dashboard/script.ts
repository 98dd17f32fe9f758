/**
 * The dashboard's browser script (`/dashboard/app.js`): the TypeScript modules of
 * ./browser/ (entry main.ts, type-checked with the DOM's types by its own tsconfig),
 * bundled by esbuild into one classic script.
 *
 * esbuild is a dev dependency, so where the text comes from depends on how this
 * module runs:
 * - in the service bundle (`npm start`, the image), scripts/build-service.ts puts the
 *   built text in place of this module: no build at run time;
 * - compiled by tsc (`npm run build`: the CLI and the library), from `app.js` beside
 *   this file, which that build writes;
 * - from the TypeScript sources (tsx: tests, `npm run dev`, examples), built here on
 *   first use, once per process, with esbuild's synchronous API (tens of ms).
 * Why built on first use rather than by a vitest globalSetup or as a file generated
 * into the sources: it serves every way of running from source alike, and no built
 * copy sits beside the sources to go stale.
 */
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** The script's entry: browser/main.ts in the folder of this module's source. */
export const browserEntry = (sourceDir: string): string => path.join(sourceDir, "browser", "main.ts")

/**
 * How the script is built (esbuild `BuildOptions`, here and in scripts/build-service.ts).
 * ES2020 for BigInt literals; not minified, like the service's own code, so the page's
 * script stays readable in the browser.
 */
export const buildOptions = (entry: string) => ({
  entryPoints: [entry],
  bundle: true,
  write: false as const,
  format: "iife" as const,
  platform: "browser" as const,
  target: "es2020",
  charset: "utf8" as const,
  legalComments: "none" as const,
  logLevel: "silent" as const
})

interface BuildSync {
  readonly buildSync: (options: ReturnType<typeof buildOptions>) => { readonly outputFiles: ReadonlyArray<{ readonly text: string }> }
}

let built: string | undefined

const build = (): string => {
  const here = path.dirname(fileURLToPath(import.meta.url))
  if (import.meta.url.endsWith(".js")) return fs.readFileSync(path.join(here, "app.js"), "utf8")
  // Required only here: the other two ways of running never load esbuild.
  const esbuild = createRequire(import.meta.url)("esbuild") as BuildSync
  return esbuild.buildSync(buildOptions(browserEntry(here))).outputFiles[0]!.text
}

/** The script's text. */
export const browserScript = (): string => (built ??= build())
