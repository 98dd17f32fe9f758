/**
 * `npx tsx bench/postgres.ts`: escrow lifecycles per second (create + release) and
 * latency percentiles at 64 concurrent lifecycles, on PostgreSQL with one ledger
 * process and with two ledger processes sharing the database (32 each), beside the
 * embedded SQLite ledger (synchronous=FULL) from the same run on the same machine.
 *
 * The server: `RINGMASTER_BENCH_PG_URL` (an admin URL allowed to CREATE DATABASE),
 * default postgres://root@127.0.0.1:5432/postgres. A fresh database is created for
 * each PostgreSQL figure and dropped afterwards. Options: --seconds N (default 5).
 *
 * Each process runs the ledger in-process (no HTTP): the figures are the ledger's
 * and the database's, not the web server's.
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Redacted } from "effect"
import { fork } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Usdc from "../src/domain/Usdc.js"
import { Ledger } from "../src/ledger/Ledger.js"
import * as LedgerConfig from "../src/ledger/LedgerConfig.js"
import * as Postgres from "../src/ledger/Postgres.js"
import * as SqlLedger from "../src/ledger/SqlLedger.js"

const arg = (name: string) => {
  const i = process.argv.indexOf(name)
  return i < 0 ? undefined : process.argv[i + 1]
}
const seconds = Number(arg("--seconds") ?? 5)
const CONCURRENCY = 64
const adminUrl = process.env.RINGMASTER_BENCH_PG_URL ?? "postgres://root@127.0.0.1:5432/postgres"

interface Figures {
  readonly lifecycles: number
  readonly elapsedS: number
  /** Every lifecycle's latency in ms, unsorted. */
  readonly latenciesMs: ReadonlyArray<number>
}

/**
 * Registers a payer and a payee, funds the payer, warms up for 2 s, waits for `go`
 * (the measured window, as wall-clock times, so several processes measure the same
 * window), then runs `concurrency` fibers of create + release until its end.
 */
const lifecycles = (concurrency: number, go: Effect.Effect<{ readonly startAtMs: number; readonly deadlineMs: number }>) =>
  Effect.gen(function*() {
    const ledger = yield* Ledger
    const payer = yield* ledger.registerAgent({ name: "bench-payer" })
    const payee = yield* ledger.registerAgent({ name: "bench-payee", referralCode: payer.referralCode })
    yield* ledger.deposit(payer.wallet, Usdc.make("100000000"))
    const lifecycle = Effect.gen(function*() {
      const escrow = yield* ledger.createEscrow({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("0.01"), description: "bench" })
      yield* ledger.releaseEscrow(escrow.id)
    })
    // Warm-up (JIT, connections, statement cache), then wait for the common window.
    const warmUntil = Date.now() + 2_000
    while (Date.now() < warmUntil) yield* Effect.all(Array.from({ length: 8 }, () => lifecycle), { concurrency: 8, discard: true })
    const { deadlineMs, startAtMs } = yield* go
    yield* Effect.sleep(Duration.millis(Math.max(0, startAtMs - Date.now())))
    const latenciesMs: Array<number> = []
    const worker = Effect.gen(function*() {
      while (Date.now() < deadlineMs) {
        const start = performance.now()
        yield* lifecycle
        latenciesMs.push(performance.now() - start)
      }
    })
    const start = performance.now()
    yield* Effect.all(Array.from({ length: concurrency }, () => worker), { concurrency: "unbounded", discard: true })
    const elapsedS = (performance.now() - start) / 1000
    const report = yield* ledger.verify
    if (report.violations.length > 0) return yield* Effect.dieMessage(`invariants broken: ${JSON.stringify(report.violations[0])}`)
    return { lifecycles: latenciesMs.length, elapsedS, latenciesMs } satisfies Figures
  })

const pgLedger = (url: string) => Postgres.layer({ url: Redacted.make(url), maxConnections: 8 }).pipe(Layer.provide(LedgerConfig.layer()))

// ---- the parent: databases, processes, the table --------------------------------------

const admin = <A>(f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>) =>
  Effect.runPromise(
    Effect.flatMap(SqlClient.SqlClient, f).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(adminUrl), connectTimeout: Duration.seconds(5), maxConnections: 1 }))
    )
  )

const withDatabase = async <A>(f: (url: string) => Promise<A>): Promise<A> => {
  const name = `rm_bench_${process.pid}_${randomBytes(4).toString("hex")}`
  await admin((sql) => sql.unsafe(`CREATE DATABASE "${name}"`))
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  try {
    return await f(url.toString())
  } finally {
    await admin((sql) => sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`))
  }
}

/** Runs `processes` ledger processes on `url`, splitting the 64 concurrent lifecycles between them. */
const multiProcess = async (url: string, processes: number): Promise<Array<Figures>> => {
  // Migrate and fund once before the workers start, so the figure excludes first-start work.
  await Effect.runPromise(Effect.void.pipe(Effect.provide(pgLedger(url))))
  const self = fileURLToPath(import.meta.url)
  // No execArgv: the workers inherit this process's (tsx's loader under tsx, none when compiled by bench/compiled.ts).
  const children = Array.from({ length: processes }, () =>
    fork(self, ["--worker"], { stdio: ["ignore", "inherit", "inherit", "ipc"] }))
  const bounded = <A>(what: string, promise: Promise<A>) =>
    Promise.race([
      promise,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`bench workers: ${what} took over 120 s`)), 120_000).unref())
    ])
  try {
    const results = children.map((child) =>
      new Promise<Figures>((resolve, reject) => {
        child.on("message", (reply: { ok?: boolean; figures?: Figures; error?: string }) => {
          if (reply.ok === true) resolve(reply.figures!)
          else if (reply.ok === false) reject(new Error(reply.error))
        })
        child.once("exit", (code) => code !== 0 && reject(new Error(`bench worker exited with ${code}`)))
      }))
    const ready = children.map((child) => new Promise<void>((resolve) => child.once("message", () => resolve())))
    for (const child of children) child.send({ url, concurrency: CONCURRENCY / processes })
    await bounded("starting and warming up", Promise.all(ready))
    const startAtMs = Date.now() + 500
    for (const child of children) child.send({ startAtMs, deadlineMs: startAtMs + seconds * 1000 })
    return await bounded("measuring", Promise.all(results))
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill("SIGKILL")
  }
}

const summarize = (runs: ReadonlyArray<Figures>) => {
  const latencies = runs.flatMap((r) => r.latenciesMs).sort((a, b) => a - b)
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0
  const perSecond = runs.reduce((sum, r) => sum + r.lifecycles / r.elapsedS, 0)
  return { perSecond, p50: pct(0.5), p99: pct(0.99) }
}

const row = (label: string, s: ReturnType<typeof summarize>) =>
  console.log(
    `${label.padEnd(52)} ${Math.round(s.perSecond).toLocaleString("en-US").padStart(7)} lifecycles/s   p50 ${s.p50.toFixed(1).padStart(6)} ms   p99 ${s.p99.toFixed(1).padStart(6)} ms`
  )

async function main() {
  const version = await admin((sql) => sql<{ v: string }>`SELECT current_setting('server_version') AS v`).catch((error) => {
    throw new Error(`no PostgreSQL at ${adminUrl.replace(/:[^:@/]*@/, ":***@")} (set RINGMASTER_BENCH_PG_URL): ${error}`)
  })
  console.log(
    `ringmaster PostgreSQL benchmark: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.version}, PostgreSQL ${version[0]!.v} on loopback, ` +
      `${seconds}s per figure, create + release at ${CONCURRENCY} concurrent lifecycles, load average ${os.loadavg()[0]!.toFixed(1)}`
  )

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-bench-pg-"))
  try {
    const go = Effect.sync(() => ({ startAtMs: Date.now(), deadlineMs: Date.now() + seconds * 1000 }))
    const sqlite = await Effect.runPromise(
      lifecycles(CONCURRENCY, go).pipe(Effect.provide(SqlLedger.layerSqliteWith({ dataDir: dir })), Effect.scoped)
    )
    row("SQLite (embedded, synchronous=FULL), 1 process", summarize([sqlite]))
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  row("PostgreSQL, 1 ledger process", summarize(await withDatabase((url) => multiProcess(url, 1))))
  row("PostgreSQL, 2 ledger processes (32 each)", summarize(await withDatabase((url) => multiProcess(url, 2))))
}

// ---- worker mode: one ledger process, driven by the parent over IPC ----------------------

if (process.argv.includes("--worker")) {
  process.once("message", (message: { url: string; concurrency: number }) => {
    const go = Effect.async<{ startAtMs: number; deadlineMs: number }>((resume) => {
      process.once("message", (window: { startAtMs: number; deadlineMs: number }) => resume(Effect.succeed(window)))
      process.send!({ ready: true })
    })
    Effect.runPromise(lifecycles(message.concurrency, go).pipe(Effect.provide(pgLedger(message.url)), Effect.scoped)).then(
      (figures) => process.send!({ ok: true, figures }, () => process.exit(0)),
      (error) => process.send!({ ok: false, error: String(error) }, () => process.exit(1))
    )
  })
} else {
  main().catch((error) => {
    console.error(error)
    process.exit(1)
  })
}
