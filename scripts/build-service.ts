/**
 * Bundles the service (`src/service/main.ts`) for `npm start` and the Docker image:
 *
 *   dist/bundle/service.cjs             the service and its dependencies, one CommonJS file
 *   dist/bundle/service.cjs.codecache   V8's compiled code for it (see scripts/service-launcher.ts)
 *   dist/bundle/service.js              what `node` runs: loads service.cjs with that cache
 *
 * Why a bundle: started from `tsc`'s output, Node resolves, reads and compiles a few
 * thousand ESM files (effect, @effect/platform, OpenTelemetry, ...) before the first
 * line of the service runs; that loading was most of the cold start (bench:coldstart).
 * esbuild puts them in one file, and its tree shaking drops the modules nothing uses.
 *
 * Why CommonJS and one file: V8's code cache can only be given to a script on Node 20
 * (not to an ES module), and compiling was still the largest part of a start. esbuild
 * writes each module reached only through a dynamic `import()` (the MCP server, the
 * OpenTelemetry SDK, the remote settlement client, PostgreSQL, and what only they use,
 * such as undici) as a function run on that first `import()`: its code is in the file
 * but is neither compiled nor run at start, as with the chunks of an ESM build.
 *
 * The cache is made by starting the bundle once (fresh DATA_DIR, loopback ports) and
 * asking it, once `/health` answers, to write what V8 has compiled by then. A build
 * where that start fails still succeeds (with a warning): the service runs without
 * the cache, only slower to start.
 *
 * Native addons stay outside the bundle and are loaded from node_modules as before:
 * better-sqlite3, and the optional ones of msgpackr, pg and ws (loaded only when
 * installed).
 *
 *   tsx scripts/build-service.ts [--dist DIR]     (default: dist; writes DIR/bundle/)
 */
import * as esbuild from "esbuild"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { builtinModules } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { freePort } from "./freePort.js"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

/** Packages with native code: never bundled, resolved from node_modules at run time. */
export const nativeExternals = ["better-sqlite3", "msgpackr-extract", "pg-native", "bufferutil", "utf-8-validate"]

const common = {
  absWorkingDir: repoRoot,
  bundle: true,
  platform: "node",
  target: "node20",
  // For reading a stack trace: `node --enable-source-maps dist/bundle/service.js`.
  sourcemap: "linked",
  // Not minified: measured, minifying did not shorten the start (Node's compile time
  // follows the amount of code, not its bytes) and it would make stack traces unreadable.
  minify: false,
  logLevel: "warning"
} satisfies esbuild.BuildOptions

const builtins = new Set(builtinModules)

/**
 * A dynamic `import()` of a Node built-in module (e.g. OTLP's `import("http")`) as a
 * `require`. Node 20 loses a script's dynamic-import callback when the script comes
 * from V8's code cache ("A dynamic import callback was not specified"): the OTLP
 * exporter then sent nothing and said nothing. The program's only dynamic imports
 * were of built-ins (esbuild turns the others into functions of the bundle), so none
 * is left; `buildService` checks that.
 */
const builtinImportsAsRequire: esbuild.Plugin = {
  name: "builtin-dynamic-imports-as-require",
  setup(build) {
    build.onResolve({ filter: /^[a-z_:/]+$/ }, (args) =>
      args.kind === "dynamic-import" && builtins.has(args.path.replace(/^node:/, ""))
        ? { path: args.path, namespace: "builtin-require" }
        : undefined)
    build.onLoad({ filter: /.*/, namespace: "builtin-require" }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(args.path)})`,
      loader: "js"
    }))
  }
}

/** esbuild options for the service program (`service.cjs`) from `entry`, into `outdir`. */
export const programOptions = (entry: string, outdir: string): esbuild.BuildOptions => ({
  ...common,
  entryPoints: { service: entry },
  outdir,
  outExtension: { ".js": ".cjs" },
  format: "cjs",
  external: nativeExternals,
  plugins: [builtinImportsAsRequire],
  metafile: true
})

/** The dynamic imports esbuild left in the program: none may be (see `builtinImportsAsRequire`). */
const dynamicImportsLeft = (metafile: esbuild.Metafile) =>
  Object.values(metafile.outputs).flatMap((output) =>
    output.imports.filter((i) => i.kind === "dynamic-import").map((i) => i.path))

/**
 * The same bundle as ES modules with chunks, for an entry point that needs
 * `import.meta` (bench/service-memory.ts bundles its own file with this): the
 * CommonJS program cannot have it. Bundled CommonJS dependencies call `require`, so
 * every output file gets a real one.
 */
export const bundleOptions = (entryPoints: Record<string, string>, outdir: string): esbuild.BuildOptions => ({
  ...common,
  entryPoints,
  outdir,
  format: "esm",
  splitting: true,
  chunkNames: "chunks/[name]-[hash]",
  external: nativeExternals,
  banner: {
    js: "import { createRequire as __ringmasterCreateRequire } from \"node:module\";\n" +
      "const require = __ringmasterCreateRequire(import.meta.url);"
  }
})

/** esbuild options for the launcher (`service.js`): node's built-in modules only. */
export const launcherOptions = (outdir: string): esbuild.BuildOptions => ({
  ...common,
  entryPoints: { service: "scripts/service-launcher.ts" },
  outdir,
  format: "esm",
  sourcemap: false
})


/**
 * Starts `launcher` once on a temp DATA_DIR and loopback ports, waits for `/health`,
 * and has it write its code cache (scripts/service-launcher.ts). The environment is
 * the default configuration (embedded settlement, SQLite), not the caller's.
 */
export const writeCodeCache = async (launcher: string, timeoutMs = 120_000): Promise<number> => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-codecache-"))
  const port = await freePort()
  const child = spawn(process.execPath, [launcher], {
    cwd: repoRoot,
    env: {
      PATH: process.env["PATH"] ?? "",
      HOME: process.env["HOME"] ?? os.tmpdir(),
      NODE_ENV: "production",
      PORT: String(port),
      METRICS_PORT: String(await freePort()),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      RINGMASTER_CODE_CACHE_WRITE: "1"
    },
    stdio: ["ignore", "ignore", "pipe", "ipc"]
  })
  let stderr = ""
  child.stderr!.on("data", (chunk) => (stderr += chunk))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  try {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the service exited (${child.exitCode}): ${stderr.trim()}`)
      if (Date.now() > deadline) throw new Error(`no /health 200 within ${timeoutMs} ms`)
      const status = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.arrayBuffer().then(() => r.status), () => 0)
      if (status === 200) break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    const reply = await new Promise<{ written?: number; error?: string }>((resolve) => {
      child.once("message", (message) => resolve(message as { written?: number; error?: string }))
      child.send("write-code-cache")
    })
    if (reply.written === undefined) throw new Error(reply.error ?? "no answer")
    return reply.written
  } finally {
    if (child.exitCode === null) child.kill("SIGTERM")
    await exited
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

/** The service bundle under `distDir/bundle/`, with its code cache. */
export const buildService = async (distDir = path.join(repoRoot, "dist")) => {
  const outdir = path.join(distDir, "bundle")
  // Remove a previous build's files (the ESM build's chunks/, an older cache).
  fs.rmSync(outdir, { recursive: true, force: true })
  const [program] = await Promise.all([
    esbuild.build(programOptions("src/service/main.ts", outdir)),
    esbuild.build(launcherOptions(outdir))
  ])
  const left = dynamicImportsLeft(program.metafile!)
  if (left.length > 0) {
    throw new Error(`the service bundle keeps dynamic imports, which fail when it runs from its code cache: ${left.join(", ")}`)
  }
  const launcher = path.join(outdir, "service.js")
  fs.chmodSync(launcher, 0o755)
  try {
    await writeCodeCache(launcher)
  } catch (error) {
    console.warn(`build-service: no code cache, the service will compile its bundle at each start: ${String(error)}`)
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--dist")
  const distDir = i > 0 ? path.resolve(process.argv[i + 1]!) : undefined
  buildService(distDir).catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
