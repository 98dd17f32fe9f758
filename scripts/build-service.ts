/**
 * Bundles the service for `npm start` and the Docker image:
 *
 *   dist/bundle/service.cjs             the service and its dependencies, one CommonJS file
 *                                       (entry scripts/service-entry.ts: evaluates, exports runMain)
 *   dist/bundle/service.cjs.codecache   V8's compiled code for it (scripts/service-program.ts)
 *   dist/bundle/service.js              starts service.cjs with that cache (scripts/service-launcher.ts)
 *   dist/bundle/service-snapshot.cjs    the builder of the startup snapshot (scripts/service-snapshot.ts)
 *   dist/bundle/service.blob            V8's startup snapshot: the heap of the evaluated program
 *   dist/bundle/service.blob.node       the Node version the blob is for, written last
 *   dist/bundle/start.sh                what `npm start` runs: the snapshot when this node
 *                                       can use it, else service.js (scripts/service-start.sh)
 *
 * Why a bundle: started from `tsc`'s output, Node resolves, reads and compiles a few
 * thousand ESM files (effect, @effect/platform, OpenTelemetry, ...) before the first
 * line of the service runs; that loading was most of the cold start (bench:coldstart).
 * esbuild puts them in one file, and its tree shaking drops the modules nothing uses.
 *
 * Why CommonJS and one file: V8's code cache can only be given to a script on Node 20
 * (not to an ES module), and a startup snapshot is built from one script. esbuild
 * writes each module reached only through a dynamic `import()` (the MCP server, the
 * OpenTelemetry SDK, the remote settlement client, PostgreSQL, and what only they use,
 * such as undici) as a function run on that first `import()`: its code is in the file
 * but is neither compiled nor run at start, as with the chunks of an ESM build.
 *
 * The cache is made by starting the bundle once (fresh DATA_DIR, loopback ports) and
 * asking it, once `/health` answers, to write what V8 has compiled by then. The
 * snapshot is built after it, from the program compiled with that cache (so it holds
 * the bytecode of what a start runs; Node 22's builder rejects it, and gets one written
 * by a builder process that started the service: writeBuilderCache), in two runs of its builder: an audit of what the
 * program's evaluation reads that must differ per process (compared with
 * `reviewedSnapshotReads`), then the blob; the blob is kept only once a start from it
 * has answered `/health`. A build where the cache or the snapshot fails still succeeds
 * (with a warning): the service then starts without them, only slower.
 *
 * Native addons stay outside the bundle and are loaded from node_modules as before:
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
import { freePort } from "./freePort.js"
import { SNAPSHOT_SAFE_BUILTINS, type SnapshotConfig, type SnapshotReport } from "./service-snapshot.js"

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
 * Effect's clock (effect/dist/esm/internal/clock.js) fixes the origin of
 * `Clock.currentTimeNanos` (wall-clock nanoseconds minus `process.hrtime`) when its
 * module is evaluated. In a startup snapshot that is when the blob was built: the
 * origin then holds the build machine's monotonic clock, and on any machine booted at
 * another time (the image's build stage is not the Fly machine that runs it) every
 * span's timestamp would be off by the difference. Computed on first use instead, by
 * the same formula; the build fails if effect's text changed (review this then).
 */
const clockOriginOnFirstUse: esbuild.Plugin = {
  name: "effect-clock-origin-on-first-use",
  setup(build) {
    build.onLoad({ filter: /[\\/]effect[\\/]dist[\\/]esm[\\/]internal[\\/]clock\.js$/ }, async (args) => {
      const source = await fs.promises.readFile(args.path, "utf8")
      const atLoad = "  const origin = /*#__PURE__*/performanceNowNanos() - /*#__PURE__*/processHrtime.bigint();\n" +
        "  return () => origin + processHrtime.bigint();\n"
      if (!source.includes(atLoad)) {
        throw new Error(`${args.path} no longer computes its clock's origin as scripts/build-service.ts expects: review clockOriginOnFirstUse`)
      }
      const onFirstUse = "  let origin;\n" +
        "  return () => {\n" +
        "    if (origin === undefined) origin = performanceNowNanos() - processHrtime.bigint();\n" +
        "    return origin + processHrtime.bigint();\n" +
        "  };\n"
      return { contents: source.replace(atLoad, onFirstUse), loader: "js" }
    })
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
 * Measured (Node 20, in turns, load ~2), @effect/platform alone: snapshot 21.8 ->
 * 17.9 MB, code cache 7.0 -> 3.3 MB, first /health 417 -> 401 ms from the snapshot
 * and 524 -> 490 ms from the code cache alone; effect's then: 15.4 MB and 2.4 MB,
 * 381/403 -> 360/377 ms and 522/514 -> 428/422 ms. Written in the sources themselves this
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

/** esbuild options for the service program (`service.cjs`) from `entry`, into `outdir`. */
export const programOptions = (entry: string, outdir: string): esbuild.BuildOptions => ({
  ...common,
  entryPoints: { service: entry },
  outdir,
  outExtension: { ".js": ".cjs" },
  format: "cjs",
  external: nativeExternals,
  plugins: [builtinImportsAsRequire, clockOriginOnFirstUse, modulesNotIndexes],
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
 * esbuild options for the snapshot's builder (`service-snapshot.cjs`): one script,
 * built-ins only. An IIFE: Node runs a snapshot's builder with `require`, `__filename`
 * and `__dirname` but no `module` to export to.
 */
export const snapshotBuilderOptions = (outdir: string): esbuild.BuildOptions => ({
  ...common,
  entryPoints: { "service-snapshot": "scripts/service-snapshot.ts" },
  outdir,
  outExtension: { ".js": ".cjs" },
  format: "iife",
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
 * What the program's evaluation may read while the snapshot is built, each reviewed:
 * the read (`AuditEntry.what`) and the module of the bundle it comes from. Anything
 * else (a clock, randomness, the environment, the process's identity, a timer or a
 * listener, a native module used) and the build keeps no snapshot.
 */
export const reviewedSnapshotReads: ReadonlyArray<{ readonly what: string; readonly module: string; readonly why: string }> = [
  {
    what: "Math.random",
    module: "node_modules/effect/dist/esm/internal/defaultServices.js",
    why: "the seed of Effect's default Random service: each process restored from the snapshot seeds a new one (afterSnapshotRestore, scripts/service-entry.ts)"
  },
  {
    what: "Math.random",
    module: "node_modules/effect/dist/esm/Hash.js",
    why: "hash codes Effect gives objects hashed while its modules load: they only place keys in HashMaps (equality decides), " +
      "so the same codes in every process change nothing; objects made at run time get new ones"
  },
  {
    what: "process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED",
    module: "node_modules/msgpackr/node-index.js",
    why: "a switch of msgpackr (loaded by @effect/platform's index, unused by the service) read once when loaded: it keeps the build's value (unset)"
  },
  {
    what: "stand-in used while building: msgpackr-extract",
    module: "node_modules/msgpackr/node-index.js",
    why: "msgpackr tries its native string decoder when loaded and goes on without it when that throws: " +
      "from the snapshot it decodes MessagePack in JavaScript, which nothing in the service uses"
  },
  {
    what: "process.env.WS_NO_BUFFER_UTIL",
    module: "node_modules/ws/lib/buffer-util.js",
    why: "a switch of ws read once when loaded: it keeps the build's value (unset); bufferutil is not installed, so ws masks frames in JavaScript either way"
  }
]

/** The module each line of a bundle belongs to, from esbuild's `// path` comments. */
const modulesByLine = (bundle: string): Array<string> => {
  const byLine: Array<string> = []
  let current = "(esbuild's helpers)"
  bundle.split("\n").forEach((line, index) => {
    const comment = /^\/\/ ([\w@.-]+\/\S+\.[cm]?[jt]sx?)$/.exec(line)
    if (comment !== null) current = comment[1]!
    byLine[index + 1] = current
  })
  return byLine
}

/** An audit's entry with the bundle's modules on its stack (innermost first) and, when reviewed, why it is safe. */
export interface SnapshotRead {
  readonly what: string
  readonly modules: ReadonlyArray<string>
  readonly why: string | undefined
}

/** The audit's entries, each with the modules it was read from and its review (if any). */
export const snapshotReads = (report: SnapshotReport, programPath: string): Array<SnapshotRead> => {
  const byLine = modulesByLine(fs.readFileSync(programPath, "utf8"))
  return report.audit.map((entry) => {
    const modules = entry.frames.flatMap((frame) => {
      const at = frame.lastIndexOf(":")
      return frame.slice(0, at) === programPath ? [byLine[Number(frame.slice(at + 1))] ?? "?"] : []
    })
    const review = reviewedSnapshotReads.find((read) => read.what === entry.what && read.module === modules[0])
    return { what: entry.what, modules: modules.length > 0 ? modules.slice(0, 4) : entry.frames.slice(0, 4), why: review?.why }
  })
}

const unreviewed = (reads: ReadonlyArray<SnapshotRead>) =>
  reads.filter((read) => read.why === undefined).map((read) => `${read.what} (${read.modules.join(" < ")})`)

/**
 * The export names of the built-ins the snapshot's builder gives the program as
 * stand-ins, and of the bundle's externals as they resolve from `programPath`: read by
 * a separate process of the same node (loading them here would load them into the
 * build, and `http` cannot be loaded in the builder at all).
 */
export const describeModules = async (programPath: string): Promise<Pick<SnapshotConfig, "builtins" | "externals">> => {
  const code = `
const { builtinModules, createRequire } = require("node:module")
const [safe, externals] = JSON.parse(process.argv[1])
const shape = (m) => ({ kind: typeof m === "function" ? "function" : "object", keys: Object.getOwnPropertyNames(m) })
const builtins = {}
// builtinModules leaves out the ones only reachable as node:NAME.
for (const name of [...builtinModules, "sqlite", "test", "test/reporters", "sea"]) {
  if (safe.includes(name) || name in builtins) continue
  try { builtins[name] = shape(require("node:" + name)) } catch { builtins[name] = null }
}
const programRequire = createRequire(${JSON.stringify(programPath)})
const resolved = {}
for (const id of externals) {
  try { resolved[id] = shape(programRequire(id)) } catch (e) { if (e.code !== "MODULE_NOT_FOUND") throw e; resolved[id] = null }
}
process.stdout.write(JSON.stringify({ builtins, externals: resolved }))`
  const child = spawn(process.execPath, ["--no-warnings", "-e", code, JSON.stringify([[...SNAPSHOT_SAFE_BUILTINS], nativeExternals])], {
    cwd: repoRoot,
    env: buildEnv({}),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let stdout = ""
  let stderr = ""
  child.stdout!.on("data", (chunk) => (stdout += chunk))
  child.stderr!.on("data", (chunk) => (stderr += chunk))
  const exitCode = await new Promise<number | null>((resolve) => child.once("exit", resolve))
  if (exitCode !== 0) throw new Error(`describing the modules failed: ${stderr.trim()}`)
  return JSON.parse(stdout)
}

/** Runs the snapshot's builder once; its report. */
const runSnapshotBuilder = async (
  builder: string,
  blob: string,
  config: SnapshotConfig,
  workDir: string,
  env: Record<string, string> = {}
): Promise<SnapshotReport> => {
  const configFile = path.join(workDir, `config-${config.writeCache !== undefined ? "cache" : config.audit ? "audit" : "blob"}.json`)
  fs.writeFileSync(configFile, JSON.stringify(config))
  // No NODE_OPTIONS (nor any flag) reaches it: V8 refuses a blob at run time unless its
  // flags were the same, and a code cache unless made under the same flags.
  const child = spawn(process.execPath, ["--snapshot-blob", blob, "--build-snapshot", builder], {
    cwd: repoRoot,
    env: buildEnv({ ...env, RINGMASTER_SNAPSHOT_CONFIG: configFile }),
    stdio: ["ignore", "pipe", "pipe"]
  })
  let output = ""
  child.stdout!.on("data", (chunk) => (output += chunk))
  child.stderr!.on("data", (chunk) => (output += chunk))
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve))
  if (code !== 0 || !fs.existsSync(config.report)) throw new Error(`the snapshot's builder failed (${code}): ${output.trim()}`)
  return JSON.parse(fs.readFileSync(config.report, "utf8"))
}

/**
 * Starts the service once in a snapshot builder process (loopback ports, temp
 * DATA_DIR) and has it write a code cache the builder accepts; the cache's path.
 */
const writeBuilderCache = async (
  builder: string,
  program: string,
  modules: Pick<SnapshotConfig, "builtins" | "externals">,
  workDir: string,
  timeoutMs = 120_000
): Promise<string> => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-build-"))
  try {
    const port = await freePort()
    const file = path.join(workDir, "builder.codecache")
    await runSnapshotBuilder(builder, path.join(workDir, "cache-run.blob"), {
      program,
      ...modules,
      audit: false,
      report: path.join(workDir, "cache-run.json"),
      writeCache: { file, healthUrl: `http://127.0.0.1:${port}/health`, timeoutMs }
    }, workDir, { NODE_ENV: "production", PORT: String(port), METRICS_PORT: String(await freePort()), HOST: "127.0.0.1", DATA_DIR: dataDir })
    return file
  } finally {
    fs.rmSync(dataDir, { recursive: true, force: true })
  }
}

/** Where the snapshot's files are, beside the program in `outdir`. */
export const snapshotPaths = (outdir: string) => ({
  blob: path.join(outdir, "service.blob"),
  /** The Node version the blob is for: written last, read by start.sh. */
  node: path.join(outdir, "service.blob.node"),
  /** What the program's evaluation read while the blob was built (`SnapshotRead[]`). */
  audit: path.join(outdir, "service.blob.audit.json"),
  builder: path.join(outdir, "service-snapshot.cjs"),
  start: path.join(outdir, "start.sh")
})

/**
 * Builds the startup snapshot of the program in `outdir` (after its code cache): an
 * audit run, checked against `reviewedSnapshotReads`, then the blob, kept once a start
 * from it has answered `/health`. Returns the blob's size.
 */
export const writeSnapshot = async (outdir: string): Promise<number> => {
  const paths = snapshotPaths(outdir)
  const program = path.join(outdir, "service.cjs")
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-snapshot-"))
  try {
    const modules = await describeModules(program)
    const auditReport = await runSnapshotBuilder(
      paths.builder,
      path.join(workDir, "audit.blob"),
      { program, ...modules, audit: true, report: path.join(workDir, "audit.json") },
      workDir
    )
    const reads = snapshotReads(auditReport, program)
    // Kept beside the blob: what its heap was built from, for whoever reviews it next.
    fs.writeFileSync(paths.audit, JSON.stringify(reads, null, 1))
    if (unreviewed(reads).length > 0) {
      throw new Error(`the program's evaluation reads what must differ per process (review, then list in reviewedSnapshotReads):\n  ${unreviewed(reads).join("\n  ")}`)
    }
    // Node 22's builder rejects the launcher's cache (scripts/service-snapshot.ts, writeBuilderCache): one made by a builder process instead.
    // Without it the blob still starts faster than the code cache alone, so a failure here only warns.
    const cache = auditReport.cacheUse !== "rejected"
      ? undefined
      : await writeBuilderCache(paths.builder, program, modules, workDir).catch((error) => {
        console.warn(`build-service: no code cache for the snapshot's builder: ${String(error)}`)
        return undefined
      })
    const candidate = path.join(workDir, "service.blob")
    const report = await runSnapshotBuilder(paths.builder, candidate, { program, ...(cache === undefined ? {} : { cache }), ...modules, audit: false, report: path.join(workDir, "blob.json") }, workDir)
    const unreviewedInBlob = unreviewed(snapshotReads(report, program))
    if (unreviewedInBlob.length > 0) throw new Error(`building the blob: ${unreviewedInBlob.join("; ")}`)
    if (report.cacheUse !== "accepted") console.warn(`build-service: the snapshot was built without the code cache (${report.cacheUse}): its starts compile more`)
    // Same directory as the blob's final place: a rename cannot be seen half done.
    const staged = `${paths.blob}.${process.pid}.tmp`
    fs.copyFileSync(candidate, staged)
    fs.renameSync(staged, paths.blob)
    // Before start.sh may pick it: the blob must start the service with this node.
    await startOnce([process.execPath, "--snapshot-blob", paths.blob, path.join(outdir, "service.js")], {}, async () => undefined)
    fs.writeFileSync(paths.node, `${process.version}\n`)
    return fs.statSync(paths.blob).size
  } catch (error) {
    fs.rmSync(paths.node, { force: true })
    fs.rmSync(paths.blob, { force: true })
    throw error
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true })
  }
}

/**
 * The service bundle under `distDir/bundle/`, with its code cache and its startup
 * snapshot. `entry` is the program's entry point (the tests build small programs the
 * same way): it exports `runMain` and, optionally, `afterSnapshotRestore`.
 */
export const buildService = async (distDir = path.join(repoRoot, "dist"), entry = "scripts/service-entry.ts") => {
  const outdir = path.join(distDir, "bundle")
  // Remove a previous build's files (the ESM build's chunks/, an older cache or blob).
  fs.rmSync(outdir, { recursive: true, force: true })
  const [program] = await Promise.all([
    esbuild.build(programOptions(entry, outdir)),
    esbuild.build(launcherOptions(outdir)),
    esbuild.build(snapshotBuilderOptions(outdir))
  ])
  const left = dynamicImportsLeft(program.metafile!)
  if (left.length > 0) {
    throw new Error(`the service bundle keeps dynamic imports, which fail when it runs from its code cache: ${left.join(", ")}`)
  }
  const launcher = path.join(outdir, "service.js")
  fs.chmodSync(launcher, 0o755)
  fs.copyFileSync(path.join(repoRoot, "scripts", "service-start.sh"), snapshotPaths(outdir).start)
  fs.chmodSync(snapshotPaths(outdir).start, 0o755)
  try {
    await writeCodeCache(launcher)
  } catch (error) {
    console.warn(`build-service: no code cache, the service will compile its bundle at each start: ${String(error)}`)
  }
  try {
    await writeSnapshot(outdir)
  } catch (error) {
    console.warn(`build-service: no startup snapshot, start.sh will start the service from the code cache: ${String(error)}`)
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
