/**
 * The reports on the ledger's SQL database. Apart from the port so that a program
 * on the memory ledger never loads a SQL driver.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Effect, Layer, Option } from "effect"
import * as SqlReports from "../sql/reports.js"
import * as SqliteReadWorker from "../sql/SqliteReadWorker.js"
import { LedgerReports } from "./LedgerReports.js"

/**
 * On the ledger's database. A SQLite file is read on a worker thread of its own
 * (src/ledger/sql/SqliteReadWorker.ts), so the operator's scans of whole tables do not
 * hold up the event loop; PostgreSQL's driver is asynchronous already, and an
 * in-memory SQLite database has only the one connection.
 */
export const layer: Layer.Layer<LedgerReports, never, SqlClient.SqlClient> = Layer.scoped(
  LedgerReports,
  Effect.gen(function*() {
    const sqlite = yield* Effect.serviceOption(SqliteClient.SqliteClient)
    const filename = Option.isSome(sqlite) ? sqlite.value.config.filename : undefined
    if (filename === undefined || filename === "" || filename === ":memory:") return SqlReports.make(yield* SqlClient.SqlClient)
    const driver = SqliteReadWorker.loadedDriver()
    if (driver === undefined) {
      yield* Effect.logWarning("dashboard: better-sqlite3's file not found among the loaded modules; reading on the ledger's connection")
      return SqlReports.make(yield* SqlClient.SqlClient)
    }
    return SqlReports.make(yield* SqliteReadWorker.make({ filename, driver }))
  })
)
