/**
 * The source of `dist/bundle/service.js`: starts the bundled service (`service.cjs`)
 * from V8's code cache (scripts/service-program.ts). `npm start` and the Docker image
 * run `dist/bundle/start.sh` (scripts/service-start.sh), which exec's node on this file.
 *
 * The cache is written by the build: scripts/build-service.ts starts the service once
 * with `RINGMASTER_CODE_CACHE_WRITE` and asks for it over IPC once `/health` answers
 * (`npm start`'s prestart and the image's build stage both run that build).
 */
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { type Compiled, compile, run, type ServiceProgram } from "./service-program.js"

/**
 * Under the build (`RINGMASTER_CODE_CACHE_WRITE=1` and an IPC channel): on the
 * message "write-code-cache", writes the cache and answers with its size.
 */
const serveCacheWrites = (compiled: Compiled) => {
  if (process.env["RINGMASTER_CODE_CACHE_WRITE"] !== "1" || process.send === undefined) return
  process.on("message", (message) => {
    if (message !== "write-code-cache") return
    try {
      process.send!({ written: compiled.writeCache(), cacheUse: compiled.cacheUse })
    } catch (error) {
      process.send!({ error: String(error) })
    }
  })
  // The channel must not keep a stopping service alive.
  process.channel?.unref()
}

export const main = (programPath: string) => {
  const compiled = compile(programPath)
  serveCacheWrites(compiled)
  const program = run(programPath, compiled, createRequire(programPath)) as ServiceProgram
  program.runMain({ startedFrom: `code cache (${compiled.cacheUse})` })
}

/**
 * Whether node runs this file as its main script. Compared as real paths: node gives
 * `import.meta.url` the main script's real path, and `argv[1]` as typed, so a start
 * through a symlinked directory would otherwise exit 0 without starting anything.
 */
const isMain = (argv1: string | undefined) => {
  try {
    return argv1 !== undefined && fs.realpathSync(path.resolve(argv1)) === fs.realpathSync(fileURLToPath(import.meta.url))
  } catch {
    return false
  }
}

// Run as `node dist/bundle/service.js`: the program is `service.cjs` beside it.
if (isMain(process.argv[1])) {
  main(fileURLToPath(new URL("./service.cjs", import.meta.url)))
}
