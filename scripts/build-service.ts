/**
 * Bundles the service (`src/service/main.ts`) into `dist/bundle/service.js`, what
 * `npm start` and the Docker image run.
 *
 * Why a bundle: started from `tsc`'s output, Node resolves, reads and compiles a few
 * thousand ESM files (effect, @effect/platform, OpenTelemetry, ...) before the first
 * line of the service runs; that loading was most of the cold start (bench:coldstart).
 * esbuild puts them in one file, and its tree shaking drops the modules nothing uses.
 *
 * Code that the first `/health` does not need (the MCP server, the OpenTelemetry
 * exporter, the remote settlement client) is reached through dynamic `import()`;
 * with `splitting` esbuild writes those as chunks (`dist/bundle/chunks/`) that Node
 * loads only when they are first used.
 *
 * Native addons stay outside the bundle and are loaded from node_modules as before:
 * better-sqlite3, and the optional ones of msgpackr, pg and ws (loaded only when
 * installed).
 *
 *   tsx scripts/build-service.ts [--dist DIR]     (default: dist; writes DIR/bundle/)
 */
import * as esbuild from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** Packages with native code: never bundled, resolved from node_modules at run time. */
export const nativeExternals = ["better-sqlite3", "msgpackr-extract", "pg-native", "bufferutil", "utf-8-validate"]

/**
 * The bundle is ESM (needed for `splitting`), but some bundled dependencies are
 * CommonJS and call `require` for Node's built-in modules or the externals above:
 * give every output file a real `require`.
 */
const banner = "import { createRequire as __ringmasterCreateRequire } from \"node:module\";\n" +
  "const require = __ringmasterCreateRequire(import.meta.url);"

/** esbuild options for bundling `entryPoints` (name → source) into `outdir`. */
export const bundleOptions = (entryPoints: Record<string, string>, outdir: string): esbuild.BuildOptions => ({
  entryPoints,
  outdir,
  absWorkingDir: repoRoot,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  external: nativeExternals,
  banner: { js: banner },
  // For reading a stack trace: `node --enable-source-maps dist/bundle/service.js`.
  sourcemap: "linked",
  // Not minified: measured, minifying did not shorten the start (Node's compile time
  // follows the amount of code, not its bytes) and it would make stack traces unreadable.
  minify: false,
  logLevel: "warning"
})

/** The service bundle under `distDir/bundle/`. */
export const buildService = (distDir = path.join(repoRoot, "dist")) => {
  const outdir = path.join(distDir, "bundle")
  // Chunk names carry a content hash: remove the previous build's, which nothing loads.
  fs.rmSync(outdir, { recursive: true, force: true })
  return esbuild.build(bundleOptions({ service: "src/service/main.ts" }, outdir))
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--dist")
  const distDir = i > 0 ? path.resolve(process.argv[i + 1]!) : undefined
  buildService(distDir).catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
