/**
 * Bundles the service for `npm start` and the Docker image:
 *
 *   dist/bundle/service.cjs             the service and its dependencies, one CommonJS file
 *                                       (entry scripts/service-entry.ts: evaluates, exports runMain)
 *   dist/bundle/service.cjs.codecache   V8's compiled code for it (scripts/service-program.ts)
 *   dist/bundle/service.js              starts service.cjs with that cache (scripts/service-launcher.ts)
 *   dist/bundle/start.sh                what `npm start` and the image run (scripts/service-start.sh)
 *   dist/http/dashboard/app.js          the dashboard's browser script, for tsc's output beside it
 *                                       (the bundle carries its own copy: src/http/dashboard/script.ts)
 *
 * Why a bundle: started from `tsc`'s output, Node resolves, reads and compiles a few
 * thousand ESM files (effect, @effect/platform, OpenTelemetry, ...) before the first
 * line of the service runs; that loading was most of the cold start (bench:coldstart).
 * esbuild puts them in one file, and its tree shaking drops the modules nothing uses.
 *
 * Why CommonJS and one file: V8's code cache can only be given to a script on Node 20
 * (not to an ES module). esbuild writes each module reached only through a dynamic
 * `import()` (the MCP server, the OpenTelemetry SDK, the remote settlement client,
 * PostgreSQL, the dashboard, and what only they use, such as undici) as a function run
 * on that first `import()`: its code is in the file but is neither compiled nor run at
 * start, as with the chunks of an ESM build.
 *
 * The cache is made by starting the bundle once (fresh DATA_DIR, loopback ports) and
 * asking it, once `/health` answers, to write what V8 has compiled by then. It is valid
 * only for the Node that wrote it (the launcher checks); a build where it fails still
 * succeeds (with a warning): the service then compiles its bundle at each start, only
 * slower.
 *
 * Native addons stay outside the bundle and are loaded from node_modules:
 * better-sqlite3, and the optional ones of msgpackr, pg and ws (loaded only when
 * installed).
 *
 *   tsx scripts/build-service.ts [--dist DIR] [--entry FILE]
 *     (defaults: dist, writing dist/bundle/; scripts/service-entry.ts)
 */
import * as esbuild from "esbuild"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { builtinModules } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { browserEntry, buildOptions as dashboardScriptOptions } from "../src/http/dashboard/script.js"
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

/**
 * `import { Effect, Layer } from "effect"` (or from "@effect/platform") in the repo's
 * TypeScript, as one `import * as Effect from "effect/Effect"` per name. Each of these
 * indexes re-exports its package's modules as namespaces of the same name (effect's
 * also a few functions of effect/Function), so the same modules are imported. Why: in
 * this bundle an index is among the modules esbuild wraps to run on first use (it is
 * also reached from a dynamic `import()`), and a wrapped module runs every module it
 * imports: each start ran all 175 modules of effect and all 58 of @effect/platform
 * (msgpackr, Worker, Terminal, KeyValueStore, ..., none used by the service).
 * Measured (Node 20, in turns, load ~2), from the code cache: @effect/platform's
 * index alone, code cache 7.0 -> 3.3 MB and first /health 524 -> 490 ms; effect's then,
 * 2.4 MB and 522/514 -> 428/422 ms. Written in the sources themselves this
 * needs no plugin; here it covers every file, present and future. Lines are kept (source maps).
 */
const indexNamedExports: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  "effect": { absurd: "Function", flow: "Function", hole: "Function", identity: "Function", pipe: "Function", unsafeCoerce: "Function" },
  "@effect/platform": {}
}

const indexImport = /import\s+(type\s+)?\{([^}]*)\}\s+from\s+"(effect|@effect\/platform)"/g

export const deepIndexImports = (source: string) =>
  source.replace(indexImport, (match, allTypes: string | undefined, names: string, pkg: string) =>
    names
      .split(",")
      .map((spec) => spec.trim())
      .filter((spec) => spec !== "")
      .map((spec) => {
        const typeOnly = allTypes !== undefined || spec.startsWith("type ")
        const [name, alias = name] = spec.replace(/^type\s+/, "").split(/\s+as\s+/) as [string, string?]
        const named = indexNamedExports[pkg]![name]
        return named === undefined
          ? `import ${typeOnly ? "type " : ""}* as ${alias} from "${pkg}/${name}"`
          : `import ${typeOnly ? "type " : ""}{ ${name} as ${alias} } from "${pkg}/${named}"`
      })
      .join("; ") + "\n".repeat(match.split("\n").length - 1))

const modulesNotIndexes: esbuild.Plugin = {
  name: "effect-modules-not-indexes",
  setup(build) {
    build.onLoad({ filter: /\.tsx?$/ }, async (args) => {
      if (/[\\/]node_modules[\\/]/.test(args.path)) return undefined
      const source = await fs.promises.readFile(args.path, "utf8")
      return { contents: deepIndexImports(source), loader: args.path.endsWith("x") ? "tsx" : "ts" }
    })
  }
}

/** The dashboard's browser script (src/http/dashboard/browser/), bundled into one script's text. */
export const buildDashboardScript = async (): Promise<string> => {
  const result = await esbuild.build({ ...dashboardScriptOptions(browserEntry(path.join(repoRoot, "src", "http", "dashboard"))), absWorkingDir: repoRoot })
  return result.outputFiles[0]!.text
}

/**
 * src/http/dashboard/script.ts as the built text of the dashboard's script: the
 * service bundle then serves it without esbuild, a dev dependency (see that module).
 */
const dashboardScriptInline = (text: string): esbuild.Plugin => ({
  name: "dashboard-script-inline",
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]http[\\/]dashboard[\\/]script\.ts$/ }, () => ({
      contents: `export const browserScript = () => ${JSON.stringify(text)}\n`,
      loader: "js"
    }))
  }
})

/**
 * esbuild options for the service program (`service.cjs`) from `entry`, into `outdir`,
 * with the dashboard's script already built (`buildDashboardScript`).
 */
export const programOptions = (entry: string, outdir: string, dashboardScript: string): esbuild.BuildOptions => ({
  ...common,
  entryPoints: { service: entry },
  outdir,
  outExtension: { ".js": ".cjs" },
  format: "cjs",
  external: nativeExternals,
  // Before modulesNotIndexes, which loads every TypeScript file of the repo: the first plugin to answer wins.
  plugins: [builtinImportsAsRequire, dashboardScriptInline(dashboardScript), modulesNotIndexes],
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

/** The environment of the build's own starts: the default configuration (embedded settlement, SQLite), not the caller's. */
const buildEnv = (extra: Record<string, string>): Record<string, string> => ({
  PATH: process.env["PATH"] ?? "",
  HOME: process.env["HOME"] ?? os.tmpdir(),
  ...extra
})

/**
 * Starts `argv` once on a temp DATA_DIR and loopback ports, waits for `/health`, then
 * runs `whenHealthy` with the process (which has an IPC channel) and stops it.
 */
const startOnce = async <A>(
  argv: ReadonlyArray<string>,
  env: Record<string, string>,
  whenHealthy: (child: ReturnType<typeof spawn>) => Promise<A>,
  timeoutMs = 120_000
): Promise<A> => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-build-"))
  const port = await freePort()
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: repoRoot,
    env: buildEnv({
      NODE_ENV: "production",
      PORT: String(port),
      METRICS_PORT: String(await freePort()),
      HOST: "127.0.0.1",
      DATA_DIR: dataDir,
      ...env
    }),
    stdio: ["ignore", "ignore", "pipe", "ipc"]
  })
  let stderr = ""
  child.stderr!.on("data", (chunk) => (stderr += chunk))
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  try {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the service exited (${child.exitCode ?? child.signalCode}): ${stderr.trim()}`)
      }
      if (Date.now() > deadline) throw new Error(`no /health 200 within ${timeoutMs} ms`)
      const status = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.arrayBuffer().then(() => r.status), () => 0)
      if (status === 200) break
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    return await whenHealthy(child)
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
    await exited
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

/**
 * Starts `launcher` once, and has it write its code cache once `/health` answers
 * (scripts/service-launcher.ts).
 */
export const writeCodeCache = (launcher: string, timeoutMs = 120_000): Promise<number> =>
  startOnce([process.execPath, launcher], { RINGMASTER_CODE_CACHE_WRITE: "1" }, async (child) => {
    const reply = await new Promise<{ written?: number; error?: string }>((resolve) => {
      child.once("message", (message) => resolve(message as { written?: number; error?: string }))
      child.send("write-code-cache")
    })
    if (reply.written === undefined) throw new Error(reply.error ?? "no answer")
    return reply.written
  }, timeoutMs)

/**
 * The service bundle under `distDir/bundle/`, with its code cache. `entry` is the
 * program's entry point (the tests build small programs the same way): it exports `runMain`.
 */
export const buildService = async (distDir = path.join(repoRoot, "dist"), entry = "scripts/service-entry.ts") => {
  const outdir = path.join(distDir, "bundle")
  // Remove a previous build's files (the ESM build's chunks/, an older cache).
  fs.rmSync(outdir, { recursive: true, force: true })
  const dashboardScript = await buildDashboardScript()
  // tsc's output (`npm run build`: the CLI and the library) reads it beside its dashboard module.
  const compiledDashboard = path.join(distDir, "http", "dashboard")
  fs.mkdirSync(compiledDashboard, { recursive: true })
  fs.writeFileSync(path.join(compiledDashboard, "app.js"), dashboardScript)
  const [program] = await Promise.all([
    esbuild.build(programOptions(entry, outdir, dashboardScript)),
    esbuild.build(launcherOptions(outdir))
  ])
  const left = dynamicImportsLeft(program.metafile!)
  if (left.length > 0) {
    throw new Error(`the service bundle keeps dynamic imports, which fail when it runs from its code cache: ${left.join(", ")}`)
  }
  const launcher = path.join(outdir, "service.js")
  fs.chmodSync(launcher, 0o755)
  const start = path.join(outdir, "start.sh")
  fs.copyFileSync(path.join(repoRoot, "scripts", "service-start.sh"), start)
  fs.chmodSync(start, 0o755)
  try {
    await writeCodeCache(launcher)
  } catch (error) {
    console.warn(`build-service: no code cache, the service will compile its bundle at each start: ${String(error)}`)
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const option = (name: string) => {
    const i = process.argv.indexOf(name)
    return i > 0 ? process.argv[i + 1] : undefined
  }
  const distDir = option("--dist")
  const entry = option("--entry")
  buildService(distDir === undefined ? undefined : path.resolve(distDir), entry === undefined ? undefined : path.resolve(entry)).catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
