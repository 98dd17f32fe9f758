/**
 * The builder of the service's V8 startup snapshot: bundled by scripts/build-service.ts
 * into `dist/bundle/service-snapshot.cjs` and run once by the build as
 *
 *   node --snapshot-blob dist/bundle/service.blob --build-snapshot dist/bundle/service-snapshot.cjs
 *
 * with `RINGMASTER_SNAPSHOT_CONFIG` naming a JSON `SnapshotConfig`. It evaluates the
 * program (`service.cjs`: every module of the service, Effect's included) compiled
 * with its code cache, so the snapshot holds that evaluated heap and the bytecode of
 * every function a start runs; `node --snapshot-blob dist/bundle/service.blob`
 * (scripts/service-start.sh) then starts from that heap and only runs `runMain`.
 *
 * What Node 20's snapshot builder allows, and how this meets it:
 * - `require` reaches built-in modules only, and only some of them are known to
 *   survive a snapshot (`SNAPSHOT_SAFE_BUILTINS`). The others (http, net, tls,
 *   async_hooks, ...) and the packages left out of the bundle (better-sqlite3 and the
 *   optional native ones) are given to the program as stand-ins that load the real
 *   module on first use, at run time. `node:http` cannot even be loaded while
 *   building on Node 20 ("methods.toSorted is not a function"). A stand-in needs the
 *   module's export names, which the build reads from the same Node beforehand; a
 *   package that does not resolve throws MODULE_NOT_FOUND as `require` would, so an
 *   optional one is skipped as it is at run time. A stand-in used while building
 *   throws: nothing native can be in a snapshot.
 * - No open handle, timer or signal listener may exist when the heap is written.
 *
 * What must differ per process must not be computed while building. The build runs
 * this builder twice: first with an audit (`config.audit`) that records every read of
 * clocks, randomness, the environment, the process's identity, and every timer or
 * listener the program's evaluation makes, with the stack; scripts/build-service.ts
 * compares that with a reviewed list and refuses the snapshot on anything else. Then
 * without the audit, for the blob that ships: no instrumentation is in it.
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as v8 from "node:v8"
import { compile, run, type ServiceProgram } from "./service-program.js"

/** A module's exports as the build saw them: a function (with static keys) or an object, and its keys. */
export interface ModuleShape {
  readonly kind: "function" | "object"
  readonly keys: ReadonlyArray<string>
}

export interface SnapshotConfig {
  /** The program to evaluate: `service.cjs`, with its code cache beside it when there is one. */
  readonly program: string
  /** Built-in modules outside `SNAPSHOT_SAFE_BUILTINS`, by name (no `node:`), as this Node exports them. */
  readonly builtins: Readonly<Record<string, ModuleShape>>
  /** Packages the program may require (the bundle's externals): their shape, or null when they do not resolve. */
  readonly externals: Readonly<Record<string, ModuleShape | null>>
  /** The code cache to compile the program with, when not the one beside it (see `writeBuilderCache`). */
  readonly cache?: string
  /** The audit run: record what the evaluation reads (see `installAudit`); its blob is thrown away. */
  readonly audit: boolean
  /** The cache-writing run instead of a build (see `writeBuilderCache`): no blob is written. */
  readonly writeCache?: { readonly file: string; readonly healthUrl: string; readonly timeoutMs: number }
  /** Where to write the `SnapshotReport`. */
  readonly report: string
}

export interface SnapshotReport {
  /** Whether the program was compiled with its code cache (whose bytecode the snapshot then holds). */
  readonly cacheUse: string
  /** What the evaluation read (all of it in the audit run; otherwise only Node's warnings and stand-ins used). */
  readonly audit: ReadonlyArray<AuditEntry>
}

/** One read of per-process state (or a timer, listener, stand-in use) while the program was evaluated. */
export interface AuditEntry {
  readonly what: string
  /** `file:line` of the frames under the hook, innermost first. */
  readonly frames: ReadonlyArray<string>
}

/**
 * The built-ins Node 20's snapshot builder supports (`supportedModules` in
 * lib/internal/main/mksnapshot.js). The program gets the real module for these.
 * Node warns when the builder requires any other; the build fails on such a warning.
 */
export const SNAPSHOT_SAFE_BUILTINS: ReadonlySet<string> = new Set([
  "_stream_duplex", "_stream_passthrough", "_stream_readable", "_stream_transform", "_stream_wrap",
  "_stream_writable", "assert", "assert/strict", "buffer", "console", "constants", "crypto", "dns",
  "events", "fs", "fs/promises", "os", "path", "path/posix", "path/win32", "process", "punycode",
  "querystring", "stream", "stream/promises", "string_decoder", "sys", "timers", "timers/promises",
  "url", "util", "util/types", "v8", "zlib"
])

const bareName = (id: string) => (id.startsWith("node:") ? id.slice(5) : id)

/** Throws as `require` does for a module that is not there. */
const notFound = (id: string): never => {
  const error = new Error(`Cannot find module '${id}'`) as Error & { code: string }
  error.code = "MODULE_NOT_FOUND"
  throw error
}

/**
 * A stand-in for a module that may only be loaded at run time: the same export keys,
 * each read (or call, or `new`) loading the real module through `load`, which throws
 * while the snapshot is being built (`atRunTime()` false).
 */
const standIn = (shape: ModuleShape, load: () => any, atRunTime: () => boolean): unknown => {
  const keys = new Set(shape.keys)
  if (shape.kind === "object") {
    const target: Record<string, unknown> = {}
    for (const key of keys) {
      Object.defineProperty(target, key, {
        get: () => load()[key],
        set: (value) => {
          load()[key] = value
        },
        enumerable: true,
        configurable: true
      })
    }
    return target
  }
  const target = function() {} as unknown as Record<string, unknown>
  for (const key of keys) {
    if (Object.getOwnPropertyDescriptor(target, key)?.configurable === false) continue
    Object.defineProperty(target, key, { get: () => load()[key], enumerable: true, configurable: true })
  }
  const proxy: any = new Proxy(target, {
    apply: (_, self, args) => Reflect.apply(load(), self, args),
    construct: (_, args, newTarget) => Reflect.construct(load(), args, newTarget === proxy ? load() : newTarget),
    // While building, a key the module does not have is answered without loading it
    // (bundler helpers probe `__esModule`); at run time every read goes to the module.
    get: (_, key) =>
      atRunTime() || key === "prototype" || (typeof key === "string" && keys.has(key)) ? load()[key] : Reflect.get(target, key),
    set: (_, key, value) => Reflect.set(load(), key, value)
  })
  return proxy
}

/** The hooks of the audit run: each records a read, then does what the original does. */
const installAudit = (record: (what: string) => void): (() => void) => {
  const undo: Array<() => void> = []
  const wrap = (owner: any, key: string, label: string) => {
    const descriptor = Object.getOwnPropertyDescriptor(owner, key)
    const original = owner[key]
    if (typeof original !== "function" || descriptor?.configurable === false) return
    const wrapper = function(this: unknown, ...args: Array<unknown>) {
      record(label)
      return original.apply(this, args)
    }
    if (typeof original.bigint === "function") {
      ;(wrapper as any).bigint = (...args: Array<unknown>) => {
        record(`${label}.bigint`)
        return original.bigint(...args)
      }
    }
    Object.defineProperty(owner, key, { value: wrapper, writable: true, configurable: true, enumerable: descriptor?.enumerable ?? true })
    undo.push(() => (descriptor === undefined ? delete owner[key] : Object.defineProperty(owner, key, descriptor)))
  }
  const replace = (owner: any, key: string, value: unknown) => {
    const descriptor = Object.getOwnPropertyDescriptor(owner, key)!
    Object.defineProperty(owner, key, { ...descriptor, ...("value" in descriptor ? { value } : { get: () => value }) })
    undo.push(() => Object.defineProperty(owner, key, descriptor))
  }
  wrap(Date, "now", "Date.now")
  const RealDate = Date
  replace(globalThis, "Date", new Proxy(RealDate, {
    construct: (target, args, newTarget) => {
      if (args.length === 0) record("new Date()")
      return Reflect.construct(target, args, newTarget)
    },
    apply: (target, self, args) => {
      record("Date()")
      return Reflect.apply(target, self, args)
    }
  }))
  wrap(Math, "random", "Math.random")
  wrap(performance, "now", "performance.now")
  wrap(process, "hrtime", "process.hrtime")
  for (const key of ["uptime", "cwd", "memoryUsage", "cpuUsage", "on", "once", "addListener", "prependListener"]) wrap(process, key, `process.${key}`)
  const crypto = require("node:crypto")
  for (const key of ["randomBytes", "randomFillSync", "randomFill", "randomUUID", "randomInt", "getRandomValues", "generateKeySync", "generateKeyPairSync", "generatePrimeSync"]) {
    wrap(crypto, key, `crypto.${key}`)
  }
  const webcrypto = Object.getPrototypeOf(crypto.webcrypto)
  for (const key of ["getRandomValues", "randomUUID"]) wrap(webcrypto, key, `crypto.webcrypto.${key}`)
  const os = require("node:os")
  for (const key of ["hostname", "cpus", "availableParallelism", "networkInterfaces", "userInfo", "homedir", "tmpdir", "uptime", "totalmem", "freemem", "loadavg"]) {
    wrap(os, key, `os.${key}`)
  }
  // An own property over the prototype's getter, removed again (or put back as it was).
  const timeOrigin = performance.timeOrigin
  const ownTimeOrigin = Object.getOwnPropertyDescriptor(performance, "timeOrigin")
  Object.defineProperty(performance, "timeOrigin", {
    get: () => {
      record("performance.timeOrigin")
      return timeOrigin
    },
    configurable: true
  })
  undo.push(() =>
    ownTimeOrigin === undefined
      ? delete (performance as { timeOrigin?: number }).timeOrigin
      : Object.defineProperty(performance, "timeOrigin", ownTimeOrigin)
  )
  for (const key of ["setTimeout", "setInterval", "setImmediate"]) wrap(globalThis, key, key)
  const env = process.env
  replace(process, "env", new Proxy(env, {
    get: (target, key) => {
      record(`process.env.${String(key)}`)
      return Reflect.get(target, key)
    },
    has: (target, key) => {
      record(`process.env.${String(key)}`)
      return Reflect.has(target, key)
    },
    ownKeys: (target) => {
      record("process.env (all keys)")
      return Reflect.ownKeys(target)
    }
  }))
  const argv = process.argv
  replace(process, "argv", new Proxy(argv, {
    get: (target, key) => {
      record(`process.argv`)
      return Reflect.get(target, key)
    }
  }))
  for (const key of ["pid", "ppid", "execPath", "title"]) {
    const descriptor = Object.getOwnPropertyDescriptor(process, key)
    if (descriptor === undefined || descriptor.configurable === false) continue
    const read = () => ("value" in descriptor ? descriptor.value : descriptor.get!.call(process))
    Object.defineProperty(process, key, {
      get: () => {
        record(`process.${key}`)
        return read()
      },
      configurable: true,
      enumerable: descriptor.enumerable ?? true
    })
    undo.push(() => Object.defineProperty(process, key, descriptor))
  }
  return () => {
    for (const step of undo.reverse()) step()
  }
}

/**
 * Formats the stack of every error in the heap. Node 22's builder dies writing a heap
 * that holds an error whose stack is not formatted yet ("std::length_error,
 * vector::_M_range_insert"; Node 20's does not), and every Effect `Context.Tag` keeps
 * one (its definition site, read when a service is missing). No JavaScript API lists
 * a heap's objects; the inspector's `Runtime.queryObjects` does, and its session is
 * closed again before the heap is written. The stacks are the same text they would
 * have become on first read.
 */
const formatErrorStacks = (builderRequire: (id: string) => unknown) => {
  const inspector = builderRequire("inspector") as typeof import("node:inspector")
  const session = new inspector.Session()
  session.connect()
  try {
    // The main thread's session answers synchronously.
    const post = (method: string, params: object): any => {
      let outcome: { error: Error | null; result: any } | undefined
      session.post(method, params, (error, result) => (outcome = { error, result }))
      if (outcome === undefined) throw new Error(`the inspector did not answer ${method} synchronously`)
      if (outcome.error !== null) throw outcome.error
      return outcome.result
    }
    const errorPrototype = post("Runtime.evaluate", { expression: "Error.prototype", objectGroup: "snapshot" }).result.objectId
    const errors = post("Runtime.queryObjects", { prototypeObjectId: errorPrototype, objectGroup: "snapshot" }).objects.objectId
    post("Runtime.callFunctionOn", { objectId: errors, functionDeclaration: "function () { for (const error of this) void error.stack }", objectGroup: "snapshot" })
    post("Runtime.releaseObjectGroup", { objectGroup: "snapshot" })
  } finally {
    session.disconnect()
  }
}

/**
 * `file:line` of the frames of the current stack below the hooks. A data property for
 * the limit, for this capture only (Node 20's builder has none); the stack is formatted
 * at once and the holder dropped, so no unformatted stack stays in the heap.
 */
const callerFrames = (): Array<string> => {
  const limit = Object.getOwnPropertyDescriptor(Error, "stackTraceLimit")
  Object.defineProperty(Error, "stackTraceLimit", { value: 16, writable: true, configurable: true })
  const holder: { stack?: string } = {}
  Error.captureStackTrace(holder)
  const stack = String(holder.stack ?? "")
  if (limit === undefined) delete (Error as { stackTraceLimit?: number }).stackTraceLimit
  else Object.defineProperty(Error, "stackTraceLimit", limit)
  return stack
    .split("\n")
    .flatMap((line) => {
      const match = /\(?([^()\s]+):(\d+):\d+\)?$/.exec(line.trim())
      return match === null || match[1] === __filename ? [] : [`${match[1]}:${match[2]}`]
    })
}

/**
 * Evaluates the program as the snapshot's heap and sets the function each process
 * restored from the snapshot runs; writes the `SnapshotReport`.
 */
export const build = (config: SnapshotConfig, builderRequire: (id: string) => unknown) => {
  if (!v8.startupSnapshot.isBuildingSnapshot()) throw new Error("run this under `node --build-snapshot`")
  const audit: Array<AuditEntry> = []
  const record = (what: string) => audit.push({ what, frames: callerFrames() })
  let building = true
  let runtimeRequire: ((id: string) => unknown) | undefined
  const standIns = new Map<string, unknown>()
  const loadAtRunTime = (id: string) => {
    let loaded: any
    return () => {
      if (loaded !== undefined) return loaded
      if (building) {
        record(`stand-in used while building: ${id}`)
        throw new Error(`the service's program used ${id} while its snapshot was being built: such a module only loads at run time`)
      }
      return (loaded = runtimeRequire!(id))
    }
  }
  const programRequire = (id: string): unknown => {
    if (!building) return runtimeRequire!(id)
    const name = bareName(id)
    const builtin = config.builtins[name]
    if (SNAPSHOT_SAFE_BUILTINS.has(name)) return builderRequire(name)
    const shape = builtin ?? config.externals[id]
    if (shape === undefined) throw new Error(`the service's program required ${id}, which the build did not describe (scripts/build-service.ts)`)
    if (shape === null) return notFound(id)
    if (!standIns.has(id)) standIns.set(id, standIn(shape, loadAtRunTime(id), () => !building))
    return standIns.get(id)
  }

  // Node says "not yet supported in user snapshots" of a built-in the program loaded that it does not vouch for.
  const warnings: Array<string> = []
  const onWarning = (warning: Error) => warnings.push(warning.message)
  process.on("warning", onWarning)
  // Referenced by no closure: the script holds a handle of Node's that V8 cannot put
  // in a snapshot (the build dies with "global handle not serialized" if it is kept).
  const compiled = compile(config.program, config.cache)
  const cacheUse = compiled.cacheUse
  const removeAudit = config.audit ? installAudit(record) : () => {}
  const program = run(config.program, compiled, programRequire) as ServiceProgram
  if (typeof program.runMain !== "function") throw new Error(`${config.program} exports no runMain`)
  // Node writes the heap once the event loop is empty: what the evaluation's promises
  // did afterwards is in it too, so the audit ends only then.
  v8.startupSnapshot.addSerializeCallback(() => {
    removeAudit()
    process.off("warning", onWarning)
    // After the warnings are collected: Node warns of the builder's own use of the inspector.
    if (Number(process.versions.node.split(".")[0]) >= 22) formatErrorStacks(builderRequire)
    for (const message of warnings.filter((m) => /snapshot/i.test(m))) record(`warning: ${message}`)
    const report: SnapshotReport = { cacheUse, audit }
    fs.writeFileSync(config.report, JSON.stringify(report, null, 1))
  })

  v8.startupSnapshot.setDeserializeMainFunction(() => {
    // Node gives a snapshot's main function [node, ...arguments] (newer versions [node, node, ...]);
    // service-start.sh passes the launcher's path first, which a main script's run would have as argv[1].
    if (process.argv[1] === process.argv[0] && process.argv.length > 2) process.argv.splice(1, 1)
    const launcher = process.argv[1] === undefined ? undefined : path.resolve(process.argv[1])
    if (launcher !== undefined) process.argv[1] = launcher
    // The program's packages resolve from where it is now (node_modules above dist/bundle/).
    const programPath = launcher === undefined ? config.program : path.join(path.dirname(launcher), path.basename(config.program))
    const { createRequire } = process.getBuiltinModule("node:module")
    runtimeRequire = createRequire(programPath)
    building = false
    program.afterSnapshotRestore?.()
    program.runMain({ startedFrom: "snapshot" })
  })
}

/**
 * A code cache this builder's V8 accepts, for Node 22. V8 (from 11.x) accepts a cache
 * only in an isolate made from the same read-only snapshot as the one that wrote it
 * (`--profile-deserialization` says "Cached code failed check: read-only snapshot
 * checksum mismatch"): the builder's isolate is made from V8's own snapshot, every
 * other node process's from Node's, so it rejects the cache the launcher wrote, and a
 * blob built without it holds only the bytecode of the evaluation. (Node 20's V8 does
 * not check this.) So this run starts the service in a builder process, as the build
 * starts the launcher for the launcher's cache: the real modules (no stand-ins, no
 * snapshot is written), its `/health` asked until it answers, then V8's cache of what
 * it compiled by then is written to `file` and the process exits before any heap is
 * serialized. Only the bytecode reaches the blob, never this run's state.
 */
const writeBuilderCache = (config: SnapshotConfig, target: NonNullable<SnapshotConfig["writeCache"]>) => {
  const { createRequire } = process.getBuiltinModule("node:module")
  const runtimeRequire = createRequire(config.program)
  // From source: a cache already at `file` is not this run's to reuse.
  fs.rmSync(target.file, { force: true })
  const compiled = compile(config.program, target.file)
  const program = run(config.program, compiled, runtimeRequire) as ServiceProgram
  program.runMain()
  const http = runtimeRequire("node:http") as typeof import("node:http")
  const deadline = Date.now() + target.timeoutMs
  const finish = (error?: string) => {
    if (error !== undefined) {
      process.stderr.write(`${error}\n`)
      process.exit(1)
    }
    compiled.writeCache()
    const report: SnapshotReport = { cacheUse: compiled.cacheUse, audit: [] }
    fs.writeFileSync(config.report, JSON.stringify(report))
    process.exit(0)
  }
  const ask = (): void => {
    if (Date.now() > deadline) return finish(`no /health 200 from ${target.healthUrl} within ${target.timeoutMs} ms`)
    const retry = () => void setTimeout(ask, 10)
    http.get(target.healthUrl, (response) => {
      response.resume()
      response.on("end", () => (response.statusCode === 200 ? finish() : retry()))
    }).on("error", retry)
  }
  ask()
}

if (v8.startupSnapshot.isBuildingSnapshot()) {
  const configFile = process.env["RINGMASTER_SNAPSHOT_CONFIG"]
  if (configFile === undefined) throw new Error("RINGMASTER_SNAPSHOT_CONFIG names no snapshot config")
  const config = JSON.parse(fs.readFileSync(configFile, "utf8")) as SnapshotConfig
  if (config.writeCache !== undefined) writeBuilderCache(config, config.writeCache)
  else build(config, require)
}
