/**
 * The bundled service program (`dist/bundle/service.cjs`, one CommonJS file written by
 * scripts/build-service.ts) and V8's code cache for it: compiling it, running it, and
 * writing the cache, for the launcher (scripts/service-launcher.ts).
 *
 * Why by hand, with `vm.Script`: compiling the bundle was the largest part of the
 * cold start (bench:coldstart), and Node 20 caches no compiled code for ES modules
 * (`module.enableCompileCache()` only exists from Node 22.1). A `vm.Script` takes V8's
 * `cachedData` on every Node version, which is what v8-compile-cache does. That
 * library (and Node 22's compile cache) produce the cache right after compiling,
 * when V8 has compiled only the top-level code; here the cache is produced once the
 * service answers `/health` (`createCachedData()` after the run), so it holds every
 * function a start runs.
 *
 * The cache (`service.cjs.codecache`) is never needed: a missing, stale or rejected
 * cache means the bundle is compiled from its source, as without one. It is used only
 * when its header names this bundle's SHA-256, this Node version and this
 * architecture, and V8's data in it is intact (V8 itself checks only the source's
 * length, its version and its flags, and says so in `cachedDataRejected`).
 *
 * Only Node's built-in modules here: the launcher is bundled with this file and runs
 * before anything else is loaded.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import * as vm from "node:vm"

/** What the program (scripts/service-entry.ts) exports. */
export interface ServiceProgram {
  readonly runMain: (options?: { readonly startedFrom?: string }) => void
}

/** Where a program's cache lives: next to it. */
export const cachePathOf = (programPath: string) => `${programPath}.codecache`

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex")

/**
 * What a cache is valid for: the runtime it was made by and the exact file it was made
 * from. Hashed as the file's bytes: hashing the 7 MB source as a string (converted to
 * UTF-8 first) took ~30 ms of every start, the bytes ~6 ms.
 */
const keyOf = (programBytes: Buffer) => ({ source: sha256(programBytes), node: process.version, v8: process.versions.v8, arch: process.arch })

/**
 * A cache file: a 4-byte length, a JSON header (the key, and the SHA-256 of V8's data),
 * then V8's data. The data's own hash is checked because V8 does not check it: data
 * damaged on disk crashes the process in V8's deserializer rather than being rejected.
 */
const encode = (key: ReturnType<typeof keyOf>, data: Buffer) => {
  const header = Buffer.from(JSON.stringify({ ...key, data: sha256(data) }), "utf8")
  const length = Buffer.alloc(4)
  length.writeUInt32BE(header.length)
  return Buffer.concat([length, header, data])
}

/** V8's data from a cache file, if the file is for this key and intact. */
const decode = (file: Buffer, key: ReturnType<typeof keyOf>): Buffer | undefined => {
  try {
    const headerEnd = 4 + file.readUInt32BE(0)
    const header = JSON.parse(file.toString("utf8", 4, headerEnd))
    if (header.node !== key.node || header.v8 !== key.v8 || header.arch !== key.arch || header.source !== key.source) {
      return undefined
    }
    const data = file.subarray(headerEnd)
    return sha256(data) === header.data ? data : undefined
  } catch {
    return undefined
  }
}

const readIfExists = (file: string): Buffer | undefined => {
  try {
    return fs.readFileSync(file)
  } catch {
    return undefined
  }
}

/** How the program was compiled: with the cache, or from source (no cache, a stale one, or one V8 refused). */
export type CacheUse = "accepted" | "absent" | "stale" | "rejected"

export interface Compiled {
  readonly script: vm.Script
  readonly cacheUse: CacheUse
  /** Writes V8's cache of what has been compiled so far, atomically (temp file, then rename). */
  readonly writeCache: () => number
}

/**
 * Compiles a CommonJS file as Node's loader would (same wrapper), with its cache (beside
 * the program) when that is valid.
 */
export const compile = (programPath: string): Compiled => {
  const cacheFile = cachePathOf(programPath)
  const programBytes = fs.readFileSync(programPath)
  const key = keyOf(programBytes)
  // The bundle is ASCII apart from a few comments: latin1 reads it without decoding,
  // and keeps it a one-byte string (half the memory of UTF-16).
  const source = programBytes.toString("latin1").replace(/^#!.*/, "")
  const cache = readIfExists(cacheFile)
  const cachedData = cache === undefined ? undefined : decode(cache, key)
  // No `importModuleDynamically`: Node 20 forgets it for a script from the cache, so
  // the build leaves no dynamic `import()` in the program (scripts/build-service.ts).
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) { ${source}\n});`, {
    filename: programPath,
    ...(cachedData === undefined ? {} : { cachedData })
  })
  const cacheUse: CacheUse = cache === undefined
    ? "absent"
    : cachedData === undefined
    ? "stale"
    : script.cachedDataRejected === true
    ? "rejected"
    : "accepted"
  const writeCache = () => {
    const temp = `${cacheFile}.${process.pid}.tmp`
    const data = encode(key, script.createCachedData())
    fs.writeFileSync(temp, data)
    fs.renameSync(temp, cacheFile)
    return data.length
  }
  return { script, cacheUse, writeCache }
}

/**
 * Runs a compiled CommonJS program as the main module would run; its `module.exports`.
 * `require` is what the program's `require` calls reach.
 */
export const run = (programPath: string, compiled: Compiled, require: (id: string) => unknown): unknown => {
  const wrapper = compiled.script.runInThisContext() as (...args: Array<unknown>) => void
  const module = { exports: {}, require, filename: programPath, id: ".", loaded: false }
  wrapper.call(module.exports, module.exports, require, module, programPath, path.dirname(programPath))
  return module.exports
}
