/**
 * The bundled service's program (scripts/service-program.ts) is compiled with V8's
 * code cache only when the cache was made from that exact source by this Node, and
 * runs the same with or without it.
 *
 * Each compile is in a fresh process: within one process V8 finds a source it has
 * compiled before in its own compilation cache and never looks at the cached data.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { promisify } from "node:util"
import { cachePathOf } from "../../scripts/service-program.js"
import { repoRoot, tempDir } from "./support.js"

/** A CommonJS program with enough functions for V8 to cache, answering from its source. */
const program = (answer: string) =>
  `"use strict";\n` +
  Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x + ${i} }`).join("\n") +
  `\nmodule.exports = { answer: ${JSON.stringify(answer)}, sum: [${Array.from({ length: 200 }, (_, i) => `f${i}(1)`).join(", ")}].reduce((a, b) => a + b, 0), dir: __dirname, join: typeof require("node:path").join };\n`

const setUp = (answer = "first") => {
  const file = path.join(tempDir("ringmaster-codecache-"), "program.cjs")
  fs.writeFileSync(file, program(answer))
  return file
}

const expected = (answer: string, file: string) => ({ answer, sum: 200 + (199 * 200) / 2, dir: path.dirname(file), join: "function" })

/** Compiles and runs `file` in a new node process (and writes its cache after the run when `write`). */
const launch = async (
  file: string,
  write = false,
  nodeFlags: Array<string> = []
): Promise<{ cacheUse: string; exports: unknown; written?: number }> => {
  const code = `import { createRequire } from "node:module"
import { compile, run } from ${JSON.stringify(path.join(repoRoot, "scripts/service-program.ts"))}
const compiled = compile(${JSON.stringify(file)})
const exports = run(${JSON.stringify(file)}, compiled, createRequire(${JSON.stringify(file)}))
const written = ${write} ? compiled.writeCache() : undefined
console.log(JSON.stringify({ cacheUse: compiled.cacheUse, exports, written }))`
  const { stdout } = await promisify(execFile)(process.execPath, [...nodeFlags, "--import", "tsx", "--input-type=module", "-e", code], { cwd: repoRoot })
  return JSON.parse(stdout)
}

describe("the service launcher's code cache", () => {
  it("is absent at first, then accepted, and the program runs the same", async () => {
    const file = setUp()
    const first = await launch(file, true)
    expect(first).toMatchObject({ cacheUse: "absent", exports: expected("first", file) })
    expect(first.written).toBeGreaterThan(0)
    expect(fs.readdirSync(path.dirname(file)).sort()).toEqual(["program.cjs", "program.cjs.codecache"])
    expect(await launch(file)).toEqual({ cacheUse: "accepted", exports: expected("first", file) })
  })

  it("is not used for a changed program, even one of the same length", async () => {
    const file = setUp("first")
    await launch(file, true)
    fs.writeFileSync(file, program("other"))
    expect(await launch(file)).toEqual({ cacheUse: "stale", exports: expected("other", file) })
  })

  it("is not used when V8's data is damaged (V8 would crash on it), and the program still runs", async () => {
    const file = setUp()
    await launch(file, true)
    const cache = fs.readFileSync(cachePathOf(file))
    cache.fill(0xff, cache.length - 64)
    fs.writeFileSync(cachePathOf(file), cache)
    expect(await launch(file)).toEqual({ cacheUse: "stale", exports: expected("first", file) })
  })

  it("is not used when V8 refuses it (other V8 flags), and the program still runs", async () => {
    const file = setUp()
    await launch(file, true)
    expect(await launch(file, false, ["--no-lazy"])).toEqual({ cacheUse: "rejected", exports: expected("first", file) })
  })

  it("is not used when it is not a cache file at all", async () => {
    const file = setUp()
    fs.writeFileSync(cachePathOf(file), "not a cache")
    expect(await launch(file)).toEqual({ cacheUse: "stale", exports: expected("first", file) })
  })
})
