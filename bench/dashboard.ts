/**
 * `npm run bench:dashboard`: how long the operator's dashboard views hold the event
 * loop on a large SQLite ledger. The same queries (the operator overview's series,
 * region totals and status counts, and the referral network) run once on the
 * ledger's own connection, the baseline, and once on the read worker the dashboard
 * uses (src/ledger/sql/SqliteReadWorker.ts), twice each, alternating. A 1 ms timer measures
 * the longest stretch the event loop went without running it.
 *
 * The ledger is filled by the raw writer of `npm run bench` (the ledger's own rows,
 * 64 lifecycles per transaction) for `--seconds` (default 8: ~100,000 escrows here).
 */
import { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { LedgerReports, type LedgerReportsShape } from "../src/ledger/reports/LedgerReports.js"
import * as LedgerReportsSql from "../src/ledger/reports/LedgerReportsSql.js"
import { make } from "../src/ledger/sql/reports.js"
import * as SqlLedger from "../src/ledger/SqlLedger.js"
import { rawLedgerShapeBench } from "./raw-ledger-shape.js"

const secondsAt = process.argv.indexOf("--seconds")
const seconds = secondsAt >= 0 ? Number(process.argv[secondsAt + 1]) : 8
if (!(seconds > 0 && seconds <= 60)) throw new Error("--seconds takes a number of seconds, 0 < N ≤ 60")

/** The operator overview's and network's queries; the time they took and the longest event-loop stall meanwhile. */
const operatorViews = (queries: LedgerReportsShape) =>
  Effect.gen(function*() {
    let longestStallMs = 0
    let last = performance.now()
    const timer = setInterval(() => {
      const now = performance.now()
      longestStallMs = Math.max(longestStallMs, now - last)
      last = now
    }, 1)
    const started = performance.now()
    yield* Effect.all([queries.series({ _tag: "All" }), queries.regionTotals, queries.statusCounts({ _tag: "All" }), queries.network(200)])
    const finished = performance.now()
    clearInterval(timer)
    return { ms: finished - started, longestStallMs: Math.max(longestStallMs, finished - last) }
  })

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-bench-dashboard-"))
const program = Effect.gen(function*() {
  console.log(`ringmaster dashboard benchmark: ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, Node ${process.version}`)
  const filled = yield* rawLedgerShapeBench({ dataDir: dir, lifecyclesPerTransaction: 64, seconds })
  const sql = yield* SqlClient.SqlClient
  const [counts] = yield* sql<{ escrows: number; postings: number }>`SELECT
    (SELECT COUNT(*) FROM escrows) AS escrows, (SELECT COUNT(*) FROM postings) AS postings`
  console.log(`ledger: ${counts!.escrows.toLocaleString("en-US")} escrows, ${counts!.postings.toLocaleString("en-US")} postings (filled at ${Math.round(filled.perSecond).toLocaleString("en-US")} lifecycles/s)`)
  const onLoop = make(sql)
  const onWorker = yield* LedgerReports
  for (const [label, queries] of [["ledger's connection (baseline)", onLoop], ["read worker", onWorker]] as const) {
    const runs = [yield* operatorViews(queries), yield* operatorViews(queries)]
    console.log(
      `${label.padEnd(32)} operator views ${runs.map((r) => r.ms.toFixed(0)).join(" / ")} ms   longest event-loop stall ${runs.map((r) => r.longestStallMs.toFixed(0)).join(" / ")} ms`
    )
  }
})

Effect.runPromise(Effect.scoped(Effect.provide(program, LedgerReportsSql.layer.pipe(Layer.provideMerge(SqlLedger.layerSqliteWith({ dataDir: dir }))))))
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(() => fs.rmSync(dir, { recursive: true, force: true }))
