/**
 * `ringmaster ledger verify` / `ledger export` as real processes, on SQLite (always)
 * and PostgreSQL (skipped with the reason when no server is reachable): a clean
 * ledger verifies with exit 0; the export pages through every posting (CSV and JSON
 * lines) and each transfer sums to zero; a balance or an escrow changed behind the
 * ledger's back makes verify exit non-zero naming the broken invariant; a missing
 * ledger is an error, not a fresh one.
 *
 * Most checks run the command in this process (environment from a ConfigProvider,
 * console captured); the exit status itself is checked on real processes.
 */
import { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Command } from "@effect/cli"
import { NodeContext } from "@effect/platform-node"
import { ConfigProvider, Console, Effect, Exit, Layer, Redacted } from "effect"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { ledger as ledgerCommand } from "../../src/cli/commands/ledger.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as LedgerConfig from "../../src/ledger/LedgerConfig.js"
import * as Postgres from "../../src/ledger/Postgres.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"
import { createDatabase, describePg, type TestDatabase } from "../postgres/harness.js"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..")

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `ringmaster ledger <args>` with exactly `env` (plus PATH/HOME), bounded to 60 s:
 * the `ledger` command alone, or with `binary` the real `ringmaster` entry and its whole tree.
 */
const spawnCli = (args: ReadonlyArray<string>, env: Record<string, string>, binary = false): Promise<Run> =>
  new Promise((resolve, reject) => {
    const entry = binary ? "src/cli/main.ts" : "test/ledger-cli/entry.ts"
    const child = spawn(process.execPath, ["--import", "tsx", entry, "ledger", ...args], {
      cwd: root,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => void (stdout += chunk.toString()))
    child.stderr.on("data", (chunk: Buffer) => void (stderr += chunk.toString()))
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`ledger ${args.join(" ")} did not finish in 60 s:\n${stderr}`))
    }, 60_000)
    child.once("exit", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

const cliTree = Command.make("ringmaster").pipe(Command.withSubcommands([ledgerCommand]))
const runTree = Command.run(cliTree, { name: "ringmaster", version: "test" })

/** Runs `ringmaster ledger <args>` in this process, with `env` as the only configuration; `code` 0 on success, 1 on failure. */
const cli = (args: ReadonlyArray<string>, env: Record<string, string>): Promise<Run> => {
  let stdout = ""
  let stderr = ""
  return Effect.runPromise(
    Effect.gen(function*() {
      const current = yield* Effect.console
      const capture: Console.Console = {
        ...current,
        log: (...parts: ReadonlyArray<unknown>) => Effect.sync(() => void (stdout += parts.join(" ") + "\n")),
        error: (...parts: ReadonlyArray<unknown>) => Effect.sync(() => void (stderr += parts.join(" ") + "\n"))
      }
      const exit = yield* runTree(["node", "ringmaster", "ledger", ...args]).pipe(
        Effect.withConsole(capture),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))),
        Effect.provide(NodeContext.layer),
        Effect.exit
      )
      if (Exit.isFailure(exit)) stderr += String(exit.cause)
      return { code: Exit.isSuccess(exit) ? 0 : 1, stdout, stderr }
    })
  )
}

/** Some of everything: referrals, faucet, released, partly released, cancelled and pending escrows. */
const activity = Effect.gen(function*() {
  const ledger = yield* Ledger
  const ref = yield* ledger.registerAgent({ name: "referrer" })
  const payer = yield* ledger.registerAgent({ name: "payer", referralCode: ref.referralCode })
  const payee = yield* ledger.registerAgent({ name: "payee, \"quoted\"", referralCode: ref.referralCode })
  yield* ledger.deposit(payer.wallet, Usdc.make("500"))
  yield* ledger.claimFaucet({ wallet: payee.wallet, agentName: "payee" })
  const terms = { payer: payer.wallet, payee: payee.wallet, description: "work", metadata: { fly_region: "a,b" } }
  const released = yield* ledger.createEscrow({ ...terms, amount: Usdc.make("100") })
  yield* ledger.releaseEscrow(released.id)
  const partial = yield* ledger.createEscrow({ ...terms, amount: Usdc.make("50") })
  yield* ledger.releaseEscrow(partial.id, { amount: Usdc.make("20") })
  yield* ledger.cancelEscrow(partial.id)
  yield* ledger.createEscrow({ ...terms, amount: Usdc.make("7.5") })
  const report = yield* ledger.verify
  expect(report.violations).toEqual([])
  return { payee: payee.wallet, postings: report.postings }
})

const parseCsv = (text: string) => {
  // Fields here never contain line breaks, so lines split safely; quoted commas are handled.
  const [header, ...lines] = text.trimEnd().split("\n")
  const split = (line: string) => [...line.matchAll(/("(?:[^"]|"")*"|[^,]*)(,|$)/g)].map((m) => m[1]!.replace(/^"|"$/g, "").replace(/""/g, "\"")).slice(0, -1)
  const columns = split(header!)
  return lines.map((line) => Object.fromEntries(split(line).map((v, i) => [columns[i]!, v])))
}

/** The shared checks, given how to reach the ledger and how to corrupt it. */
const suite = (setup: {
  readonly env: () => Record<string, string>
  readonly corrupt: (statement: string) => Promise<void>
  readonly postings: () => number
  readonly payee: () => string
}) => {
  it("verify: a clean ledger passes (OK report, success)", async () => {
    const run = await cli(["verify"], setup.env())
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(new RegExp(`${setup.postings()} postings, 3 escrows: OK`))
  }, 90_000)

  it("export: CSV, paged 4 at a time, every posting once, each transfer sums to zero", async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-export-")), "postings.csv")
    const run = await cli(["export", "--format", "csv", "--page-size", "4", "--output", file], setup.env())
    expect(run.code).toBe(0)
    const rows = parseCsv(fs.readFileSync(file, "utf8"))
    expect(rows).toHaveLength(setup.postings())
    expect(new Set(rows.map((r) => `${r.transfer_id}/${r.leg}`)).size).toBe(rows.length)
    const byTransfer = new Map<string, bigint>()
    for (const r of rows) {
      expect(Usdc.make(r.amount_usdc!.replace(/^-/, "")) * (r.amount_usdc!.startsWith("-") ? -1n : 1n)).toBe(BigInt(r.amount_micros!))
      byTransfer.set(r.transfer_id!, (byTransfer.get(r.transfer_id!) ?? 0n) + BigInt(r.amount_micros!))
    }
    for (const total of byTransfer.values()) expect(total).toBe(0n)
    expect(rows.some((r) => r.region === "a,b")).toBe(true) // a quoted field survived
    expect(run.stderr).toMatch(new RegExp(`${setup.postings()} postings in ${Math.ceil(setup.postings() / 4)} page\\(s\\), sum 0\\.000000 USDC`))
  }, 90_000)

  it("export: JSON lines to a file, amounts as strings, keyed exactly as the CSV header", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-export-"))
    const file = path.join(dir, "postings.jsonl")
    const run = await cli(["export", "--format", "jsonl", "-o", file], setup.env())
    expect(run.code).toBe(0)
    const rows = fs.readFileSync(file, "utf8").trimEnd().split("\n").map((line) => JSON.parse(line))
    expect(rows).toHaveLength(setup.postings())
    expect(rows.reduce((sum, r) => sum + BigInt(r.amount_micros), 0n)).toBe(0n)
    expect(rows.filter((r) => r.account === setup.payee() && r.kind === "faucet")).toMatchObject([{ amount_usdc: "1.000000" }])
    const csvFile = path.join(dir, "postings.csv")
    expect((await cli(["export", "--format", "csv", "-o", csvFile], setup.env())).code).toBe(0)
    const csv = parseCsv(fs.readFileSync(csvFile, "utf8"))
    for (const row of rows) expect(Object.keys(row)).toEqual(Object.keys(csv[0]!))
    expect(rows.map((r) => [r.transfer_id, String(r.leg), r.at_ms.toString(), r.amount_micros, r.escrow_id ?? ""]))
      .toEqual(csv.map((r) => [r.transfer_id, r.leg, r.at_ms, r.amount_micros, r.escrow_id]))
  }, 90_000)

  it("verify as a process: exit 0 when clean; a balance changed behind the ledger's back → exit non-zero, the violation named", async () => {
    const clean = await spawnCli(["verify"], setup.env())
    expect(clean.code).toBe(0)
    expect(clean.stdout).toContain("OK, every invariant holds")
    await setup.corrupt(`UPDATE accounts SET balance = balance + 1 WHERE id = '${setup.payee()}'`)
    const run = await spawnCli(["verify"], setup.env())
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain(`balance equals postings: ${setup.payee()}`)
    // Amounts as every message prints them: USDC with 6 places, one micro apart.
    expect(run.stderr).toMatch(new RegExp(`${setup.payee()}: stored \\d+\\.\\d{6} USDC, postings \\d+\\.\\d{6} USDC`))
    expect(run.stderr).toContain("conservation: all balances sum to 0.000001 USDC, not 0")
  }, 90_000)

  it("verify: an escrow marked released without its postings → exit non-zero", async () => {
    await setup.corrupt(`UPDATE accounts SET balance = balance - 1 WHERE id = '${setup.payee()}'`)
    await setup.corrupt(`UPDATE escrows SET status = 'released', released = amount WHERE status = 'pending'`)
    const run = await cli(["verify"], setup.env())
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain("escrow postings")
    expect(run.stderr).not.toContain("balance equals postings")
  }, 90_000)
}

describe("ringmaster ledger on SQLite", () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-ledger-cli-"))
  let facts = { payee: "", postings: 0 }
  beforeAll(async () => {
    facts = await Effect.runPromise(
      activity.pipe(Effect.provide(SqlLedger.layerSqliteWith({ dataDir })), Effect.scoped)
    )
  })
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }))

  suite({
    env: () => ({ DATA_DIR: dataDir }),
    corrupt: (statement) =>
      Effect.runPromise(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(Effect.provide(SqlLedger.sqliteClient({ dataDir })))
      ).then(() => undefined),
    postings: () => facts.postings,
    payee: () => facts.payee
  })

  it("a directory without a ledger → exit non-zero, and no ledger is created there", async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-empty-"))
    const run = await cli(["verify", "--data-dir", empty], {})
    expect(run.code).not.toBe(0)
    expect(run.stderr).toContain("LedgerNotFound")
    expect(fs.readdirSync(empty)).toEqual([])
  }, 90_000)

  it("a failure as a process is one line `ringmaster: <message>` on stderr, no stack, exit non-zero", async () => {
    const missing = path.join(os.tmpdir(), `ringmaster-missing-${process.pid}-${Date.now()}`)
    const verify = await spawnCli(["verify", "--data-dir", missing], {}, true)
    expect(verify.code).toBe(1)
    expect(verify.stdout).toBe("")
    expect(verify.stderr).toBe(
      `ringmaster: no ledger at SQLite ${path.join(missing, "ledger.db")} (set DATABASE_URL or DATA_DIR / --data-dir to an existing ledger)\n`
    )
    expect(fs.existsSync(missing)).toBe(false)
    // An argument @effect/cli refuses while parsing: the same one line.
    const badFormat = await spawnCli(["export", "--format", "xml"], {})
    expect(badFormat.code).toBe(1)
    expect(badFormat.stderr).toBe("ringmaster: Expected one of the following cases: csv, jsonl\n")
  }, 90_000)
})

describePg("ringmaster ledger on PostgreSQL", () => {
  let db: TestDatabase | undefined
  let facts = { payee: "", postings: 0 }
  beforeAll(async () => {
    db = await createDatabase("cli")
    facts = await Effect.runPromise(
      activity.pipe(
        Effect.provide(Postgres.layer({ url: Redacted.make(db.url) }).pipe(Layer.provide(LedgerConfig.layer()))),
        Effect.scoped
      )
    )
  })
  afterAll(async () => {
    await db?.drop()
  })

  suite({
    env: () => ({ DATABASE_URL: db!.url }),
    corrupt: (statement) =>
      Effect.runPromise(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(statement)).pipe(Effect.provide(Postgres.client({ url: Redacted.make(db!.url) })))
      ).then(() => undefined),
    postings: () => facts.postings,
    payee: () => facts.payee
  })
})
