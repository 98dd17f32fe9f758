/**
 * The package as a developer gets it: `npm pack` (whose `prepack` builds dist), the
 * tarball installed into an empty project, and small programs run there with plain
 * `node` against `ringmaster` (EscrowTest) and `ringmaster/sqlite` (a real SQLite
 * file), asserting balances. Nothing here resolves to the repository's source.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { execFile } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"

const repo = path.resolve(import.meta.dirname, "../..")
const npm = process.platform === "win32" ? "npm.cmd" : "npm"
// Building (tsc), packing and installing take a minute or more on a busy machine.
const SETUP_TIMEOUT_MS = 600_000

/** The environment of a child npm: without the variables `npm test` sets for this package. */
const childEnv = Object.fromEntries(
  Object.entries(process.env).filter(([key]) => !key.startsWith("npm_package_") && !key.startsWith("npm_lifecycle_"))
)

// Asynchronous, so the test worker stays responsive to the runner while npm works.
const run = async (cwd: string, file: string, args: ReadonlyArray<string>) =>
  (await promisify(execFile)(file, args, { cwd, env: childEnv, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 })).stdout

let scratch = ""
let tarball = ""
let tarballBytes = 0
let files: ReadonlyArray<string> = []

beforeAll(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "rm-pack-"))
  const packed = JSON.parse(await run(repo, npm, ["pack", "--json", "--pack-destination", scratch])) as ReadonlyArray<{
    readonly filename: string
    readonly size: number
    readonly files: ReadonlyArray<{ readonly path: string }>
  }>
  tarball = path.join(scratch, packed[0]!.filename)
  tarballBytes = packed[0]!.size
  files = packed[0]!.files.map((f) => f.path)

  const project = path.join(scratch, "app")
  fs.mkdirSync(project)
  fs.writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
  // --ignore-scripts: better-sqlite3's install script would compile the native addon for minutes
  // wherever no prebuilt binary is fetched (as in CI). The repository has already built it for
  // this Node, so the addon is copied from there when the versions match; otherwise it is rebuilt.
  await run(project, npm, ["install", tarball, "--prefer-offline", "--ignore-scripts", "--no-audit", "--no-fund"])
  const local = path.join(project, "node_modules", "better-sqlite3")
  const built = path.dirname(createRequire(import.meta.url).resolve("better-sqlite3/package.json"))
  const version = (dir: string) => (JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8")) as { version: string }).version
  if (version(local) === version(built)) {
    fs.cpSync(path.join(built, "build", "Release", "better_sqlite3.node"), path.join(local, "build", "Release", "better_sqlite3.node"))
  } else {
    await run(project, npm, ["rebuild", "better-sqlite3"])
  }
}, SETUP_TIMEOUT_MS)

afterAll(() => {
  if (scratch !== "") fs.rmSync(scratch, { recursive: true, force: true })
})

/** Writes `source` into the scratch project and runs it with node; its last stdout line is JSON. */
const program = async (name: string, source: string, args: ReadonlyArray<string> = []) => {
  const project = path.join(scratch, "app")
  fs.writeFileSync(path.join(project, name), source)
  const out = (await run(project, process.execPath, [name, ...args])).trim().split("\n")
  return JSON.parse(out[out.length - 1]!) as Record<string, unknown>
}

describe("the packed package", () => {
  it("ships the compiled entries and types, not the service bundle, under 1 MB", () => {
    for (const entry of ["index", "sqlite", "postgres", "http", "server", "service"]) {
      expect(files).toContain(`dist/${entry}.js`)
      expect(files).toContain(`dist/${entry}.d.ts`)
    }
    expect(files).toContain("dist/cli/main.js")
    expect(files.filter((f) => f.startsWith("dist/bundle/") || f.endsWith(".map") || f.startsWith("src/"))).toEqual([])
    expect(tarballBytes).toBeLessThan(1_000_000)
  })

  it("runs a program on EscrowTest from `ringmaster`, loading no SQL driver", async () => {
    const result = await program(
      "core.mjs",
      `import { Effect } from "effect"
import { createRequire } from "node:module"
import { Escrow, EscrowTest, Usdc } from "ringmaster"

const main = Effect.gen(function*() {
  const { ledger } = yield* EscrowTest
  const payer = yield* ledger.registerAgent({ name: "payer" })
  const payee = yield* ledger.registerAgent({ name: "payee" })
  yield* ledger.deposit(payer.wallet, Usdc.make("100"))
  const terms = { payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("10"), description: "a haiku" }
  yield* Escrow.use(terms, () => Effect.void)
  const refused = yield* Effect.either(Escrow.use(terms, () => Effect.fail("gave up")))
  const [a, b] = yield* Effect.all([ledger.balance(payer.wallet), ledger.balance(payee.wallet)])
  const loaded = Object.keys(createRequire(import.meta.url).cache)
  return { payer: Usdc.format(a.available), payee: Usdc.format(b.available), refunded: refused._tag === "Left",
    sqlDriver: loaded.some((f) => /better-sqlite3|[\\\\/]pg[\\\\/]/.test(f)) }
})
console.log(JSON.stringify(await Effect.runPromise(Effect.provide(main, EscrowTest.layer()))))
`
    )
    // 10 paid with the default 1% fee on the payee's side; the failed task's 10 came back.
    expect(result).toEqual({ payer: "90.000000", payee: "9.900000", refunded: true, sqlDriver: false })
  })

  it("runs a program on a SQLite file from `ringmaster/sqlite`", async () => {
    const dataDir = path.join(scratch, "data")
    const source = `import { Effect } from "effect"
import { Escrow, Ledger, Usdc } from "ringmaster"
import { EscrowSqlite } from "ringmaster/sqlite"

const main = Effect.gen(function*() {
  const ledger = yield* Ledger
  const payer = yield* ledger.registerAgent({ name: "payer" })
  const payee = yield* ledger.registerAgent({ name: "payee" })
  yield* ledger.deposit(payer.wallet, Usdc.make("50"))
  const terms = { payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("20"), description: "a report" }
  yield* Escrow.use(terms, (held) => held.release(Usdc.make("5")))
  const [a, b, report] = yield* Effect.all([ledger.balance(payer.wallet), ledger.balance(payee.wallet), ledger.verify])
  return { payer: Usdc.format(a.available), payee: Usdc.format(b.available), violations: report.violations.length }
})
console.log(JSON.stringify(await Effect.runPromise(Effect.provide(main, EscrowSqlite.layer({ dataDir: process.argv[2] })))))
`
    const result = await program("sqlite.mjs", source, [dataDir])
    // A partial release of 5 pays 4.95 (1% fee); the scope's success releases the other 15 (14.85).
    expect(result).toEqual({ payer: "30.000000", payee: "19.800000", violations: 0 })
    expect(fs.statSync(path.join(dataDir, "ledger.db")).size).toBeGreaterThan(0)
  })

  it("runs an orchestrator on `Ringmaster.memory()` from `ringmaster`, loading no SQL driver", async () => {
    const result = await program(
      "orchestrator.mjs",
      `import { Effect, Schema } from "effect"
import { createRequire } from "node:module"
import { Agent, Orchestrator, Ringmaster, Usdc } from "ringmaster"

const Writer = Agent.make({ name: "writer", input: Schema.Struct({ topic: Schema.String }), output: Schema.Struct({ text: Schema.String }),
  price: Usdc.make("2"), run: ({ topic }) => Effect.succeed({ text: topic }) })
const main = Effect.gen(function*() {
  const writer = yield* Orchestrator.spawn(Writer)
  yield* Orchestrator.delegate(writer, { topic: "rates" })
  const earnings = yield* Orchestrator.earnings
  const loaded = Object.keys(createRequire(import.meta.url).cache)
  return { spending: Usdc.format(earnings.spending), referralIncome: Usdc.format(earnings.referralIncome),
    sqlDriver: loaded.some((f) => /better-sqlite3|[\\/]pg[\\/]/.test(f)) }
})
console.log(JSON.stringify(await Effect.runPromise(Effect.provide(main, Ringmaster.memory({ deposit: Usdc.make("10") })))))
`
    )
    // 15% of the writer's 0.02 fee comes back to the orchestrator that referred it.
    expect(result).toEqual({ spending: "2.000000", referralIncome: "0.003000", sqlDriver: false })
  })

  it("runs an orchestrator on `Ringmaster.local({ dataDir })` from `ringmaster/sqlite`", async () => {
    const dataDir = path.join(scratch, "orchestrator-data")
    const result = await program(
      "local.mjs",
      `import { Effect } from "effect"
import { Orchestrator, Usdc } from "ringmaster"
import { Ringmaster } from "ringmaster/sqlite"

const main = Effect.flatMap(Orchestrator, (o) => o.balance)
const balance = await Effect.runPromise(Effect.provide(main, Ringmaster.local({ dataDir: process.argv[2], deposit: Usdc.make("3") })))
console.log(JSON.stringify({ available: Usdc.format(balance.available) }))
`,
      [dataDir]
    )
    expect(result).toEqual({ available: "3.000000" })
    expect(fs.statSync(path.join(dataDir, "ledger.db")).size).toBeGreaterThan(0)
  })

  it("installs a working `ringmaster` binary", async () => {
    const bin = path.join(scratch, "app", "node_modules", ".bin", "ringmaster")
    const { version } = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as { version: string }
    expect((await run(path.join(scratch, "app"), bin, ["--version"])).trim()).toBe(version)
  })
})
