/**
 * `npm run bench`: in-process escrow lifecycles per second (create + release, durable
 * commits: synchronous=FULL, WAL) through the `Ledger` at 1 and 64 concurrent fibers,
 * beside two raw baselines written directly on better-sqlite3 without Effect, each
 * unbatched and batched 64 lifecycles per transaction, from the same run on the same
 * disk. Then the peak RSS while 10,000 escrows are pending, in a process of its own.
 *
 * Why two baselines. The first is the reference shape: 11 one-row statements
 * per lifecycle on four narrow tables with no secondary index. The ledger writes more
 * than that (wider escrow rows, five secondary indexes, six postings and two events
 * per lifecycle), so a ratio against it mixes what the schema costs with what Effect
 * and the engine cost. The second (`raw-ledger-shape.ts`) writes the ledger's own rows
 * with its own statements into a database its migrations made: against it only the
 * cost of Effect and the engine remains, so the two costs can be told apart.
 *
 * Options: --seconds N (per measurement, default 5).
 */
import Database from "better-sqlite3"
import { Effect, Layer } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Usdc from "../src/domain/Usdc.js"
import { Ledger } from "../src/ledger/Ledger.js"
import * as SqlLedger from "../src/ledger/SqlLedger.js"
import { measure as measureLoop } from "./measure.js"
import { benchParties, benchTerms, rawLedgerShapeBench, rowsPerLifecycle } from "./raw-ledger-shape.js"

/** Run only the memory measurement and print it as JSON (the main run starts a process with this). */
const MEMORY_ONLY = "--memory-only"

const secondsAt = process.argv.indexOf("--seconds")
const seconds = secondsAt >= 0 ? Number(process.argv[secondsAt + 1]) : 5
if (!(seconds > 0 && seconds <= 60)) throw new Error("--seconds takes a number of seconds, 0 < N ≤ 60")
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-bench-"))

let peakRss = 0
const sampleRss = () => {
  peakRss = Math.max(peakRss, process.memoryUsage().rss)
}

const measure = (concurrency: number, lifecycle: Effect.Effect<void, unknown>) => measureLoop(concurrency, lifecycle, { seconds })

const ledgerBench = Effect.gen(function*() {
  const ledger = yield* Ledger
  const { payer, payee } = yield* benchParties
  const lifecycle = Effect.gen(function*() {
    const escrow = yield* ledger.createEscrow({ payer: payer.wallet, payee: payee.wallet, ...benchTerms })
    yield* ledger.releaseEscrow(escrow.id)
  })
  yield* measure(8, lifecycle) // warm-up: JIT, statement cache
  const one = yield* measure(1, lifecycle)
  const many = yield* measure(64, lifecycle)
  const report = yield* ledger.verify
  if (report.violations.length > 0) return yield* Effect.dieMessage(`invariants broken: ${JSON.stringify(report.violations[0])}`)
  return { one, many }
})

const memoryBench = Effect.gen(function*() {
  const ledger = yield* Ledger
  const payer = yield* ledger.registerAgent({ name: "mem-payer" })
  const payee = yield* ledger.registerAgent({ name: "mem-payee" })
  yield* ledger.deposit(payer.wallet, Usdc.make("100000"))
  global.gc?.()
  const before = process.memoryUsage().rss
  peakRss = before
  const timer = setInterval(sampleRss, 5)
  yield* Effect.forEach(
    Array.from({ length: 10_000 }, (_, i) => i),
    (i) => ledger.createEscrow({ payer: payer.wallet, payee: payee.wallet, amount: Usdc.make("0.01"), description: `pending ${i}` }),
    { concurrency: 64, discard: true }
  )
  sampleRss()
  clearInterval(timer)
  const balance = yield* ledger.balance(payer.wallet)
  if (balance.locked !== Usdc.make("100")) return yield* Effect.dieMessage(`expected 100 USDC locked, got ${Usdc.format(balance.locked)}`)
  return { beforeMb: before / 2 ** 20, peakMb: peakRss / 2 ** 20 }
})

/** The reference shape as plain statements on better-sqlite3: the ceiling without Effect and without set-based SQL. */
const rawBench = (batch: number) => {
  const db = new Database(path.join(tmp(), "raw.db"))
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = FULL")
  db.exec(`CREATE TABLE accounts (id TEXT PRIMARY KEY, balance INTEGER NOT NULL);
    CREATE TABLE escrows (id TEXT PRIMARY KEY, payer TEXT, payee TEXT, amount INTEGER, released INTEGER, status TEXT);
    CREATE TABLE postings (transfer_id TEXT, leg INTEGER, account TEXT, amount INTEGER, PRIMARY KEY (transfer_id, leg));
    CREATE TABLE events (escrow_id TEXT, seq INTEGER, status TEXT, PRIMARY KEY (escrow_id, seq));
    INSERT INTO accounts VALUES ('payer', 100000000000000), ('payee', 0), ('holding', 0), ('fees', 0), ('referrer', 0);`)
  const balance = db.prepare("SELECT balance FROM accounts WHERE id = ?")
  const add = db.prepare("UPDATE accounts SET balance = balance + ? WHERE id = ?")
  const insertEscrow = db.prepare("INSERT INTO escrows VALUES (?, 'payer', 'payee', ?, 0, 'pending')")
  const posting = db.prepare("INSERT INTO postings VALUES (?, ?, ?, ?)")
  const event = db.prepare("INSERT INTO events VALUES (?, ?, ?)")
  const getEscrow = db.prepare("SELECT * FROM escrows WHERE id = ?")
  const settle = db.prepare("UPDATE escrows SET released = amount, status = 'released' WHERE id = ? AND status = 'pending'")
  let n = 0
  // 11 statements per lifecycle, as in the reference shape.
  const lifecycle = () => {
    const id = `e${n++}`
    const amount = 10_000
    if ((balance.get("payer") as { balance: number }).balance < amount) throw new Error("funds")
    add.run(-amount, "payer")
    add.run(amount, "holding")
    insertEscrow.run(id, amount)
    posting.run(`${id}:1`, 0, "payer", -amount)
    event.run(id, 1, "pending")
    getEscrow.get(id)
    settle.run(id)
    add.run(-amount, "holding")
    add.run(amount - 100, "payee")
    posting.run(`${id}:2`, 0, "payee", amount - 100)
    event.run(id, 2, "released")
  }
  const runBatch = db.transaction((count: number) => {
    for (let i = 0; i < count; i++) lifecycle()
  })
  const deadline = performance.now() + seconds * 1000
  const start = performance.now()
  let done = 0
  while (performance.now() < deadline) {
    runBatch(batch)
    done += batch
  }
  db.close()
  return done / ((performance.now() - start) / 1000)
}

const row = (label: string, value: string) => console.log(`${label.padEnd(68)} ${value}`)
const fmt = (n: number) => Math.round(n).toLocaleString("en-US")
const percent = (part: number, whole: number) => `${((part / whole) * 100).toFixed(1)}% (target ≥ 50%)`

const main = Effect.gen(function*() {
  console.log(`ringmaster ledger benchmark: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.version}, ${seconds}s per figure, SQLite synchronous=FULL, WAL`)
  const rawUnbatched = rawBench(1)
  const rawBatched = rawBench(64)
  const ownRowsUnbatched = yield* rawLedgerShapeBench({ dataDir: tmp(), lifecyclesPerTransaction: 1, seconds })
  const ownRowsBatched = yield* rawLedgerShapeBench({ dataDir: tmp(), lifecyclesPerTransaction: 64, seconds })
  const ledgerLayer = (dir: string) => SqlLedger.layerSqliteWith({ dataDir: dir })
  const ledgerDir = tmp()
  const figures = yield* Effect.provide(ledgerBench, ledgerLayer(ledgerDir))
  const ledgerRows = rowsPerLifecycle(SqlLedger.sqliteFilename({ dataDir: ledgerDir }))
  const ownRows = rowsPerLifecycle(ownRowsBatched.filename)
  if (ledgerRows.postings !== ownRows.postings || ledgerRows.events !== ownRows.events) {
    return yield* Effect.dieMessage(`the raw baseline does not write the ledger's rows: ${JSON.stringify({ ledgerRows, ownRows })}`)
  }
  row("raw better-sqlite3, 1 lifecycle per transaction", `${fmt(rawUnbatched)} lifecycles/s`)
  row("raw better-sqlite3, 64 lifecycles per transaction", `${fmt(rawBatched)} lifecycles/s`)
  row("raw better-sqlite3, ledger's own rows, 1 lifecycle per transaction", `${fmt(ownRowsUnbatched.perSecond)} lifecycles/s`)
  row("raw better-sqlite3, ledger's own rows, 64 lifecycles per transaction", `${fmt(ownRowsBatched.perSecond)} lifecycles/s`)
  row("ringmaster Ledger (Effect, group commit), 1 fiber", `${fmt(figures.one.perSecond)} lifecycles/s  p50 ${figures.one.p50Ms.toFixed(2)} ms  p99 ${figures.one.p99Ms.toFixed(2)} ms`)
  row("ringmaster Ledger (Effect, group commit), 64 fibers", `${fmt(figures.many.perSecond)} lifecycles/s  p50 ${figures.many.p50Ms.toFixed(2)} ms  p99 ${figures.many.p99Ms.toFixed(2)} ms`)
  row("ratio: 64 fibers / raw batched 64 (issue's reference shape)", percent(figures.many.perSecond, rawBatched))
  row("ratio: 64 fibers / raw batched 64 with the ledger's own rows", percent(figures.many.perSecond, ownRowsBatched.perSecond))
  row("rows per lifecycle, ledger and raw with its rows (checked equal)", `${ledgerRows.postings} postings, ${ledgerRows.events} events`)
  // In a process of its own: this one's heap still holds what the measurements above left.
  const memory = JSON.parse(
    execFileSync(process.execPath, [...process.execArgv, process.argv[1]!, MEMORY_ONLY], { encoding: "utf8" })
  ) as { beforeMb: number; peakMb: number }
  row("peak RSS, own process: ledger open / 10,000 escrows pending", `${memory.beforeMb.toFixed(0)} MB / ${memory.peakMb.toFixed(0)} MB`)
})

const program = process.argv.includes(MEMORY_ONLY)
  ? Effect.map(Effect.provide(memoryBench, SqlLedger.layerSqliteWith({ dataDir: tmp() })), (memory) => console.log(JSON.stringify(memory)))
  : main

Effect.runPromise(program.pipe(Effect.provide(Layer.empty))).catch((error) => {
  console.error(error)
  process.exit(1)
})
