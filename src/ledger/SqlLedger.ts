/**
 * The ledger on `@effect/sql`: SQLite embedded by default, PostgreSQL for scale-out.
 *
 * Writes use group commit. Commands queue up; one writer fiber takes up to
 * `maxBatchSize` of them, and in ONE transaction loads the rows they touch (row-locked
 * on PostgreSQL), decides each command with the pure rules of `engine.ts`, and writes
 * the results set-based (a handful of multi-row statements per batch, not one per
 * posting). One fsync then commits many escrows. A refused command is decided in
 * memory and writes nothing; a batch whose transaction fails is retried, then split
 * into single-command transactions so one bad command cannot sink the others.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Context, Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { commandMethods } from "./engine.js"
import { Ledger, LedgerConfig, type LedgerConfigShape, type LedgerShape } from "./Ledger.js"
import * as LedgerConfigLayers from "./LedgerConfig.js"
import * as Migrations from "./migrations/index.js"
import { SettlementJournal } from "./SettlementJournal.js"
import * as Expiry from "./sql/expiry.js"
import * as Journal from "./sql/journal.js"
import * as LoadWorkingSet from "./sql/loadWorkingSet.js"
import * as Reads from "./sql/reads.js"
import * as SqlReports from "./sql/reports.js"
import * as Storage from "./sql/storage.js"
import * as WriteChanges from "./sql/writeChanges.js"
import * as Writer from "./sql/writer.js"

/**
 * The ledger's parts over one `SqlClient`: the write path (`sql/writer.ts`, loading
 * with `sql/loadWorkingSet.ts` and writing with `sql/writeChanges.ts`), the reads,
 * the expiry sweeps, the reports and the settlement journal.
 */
export const make = (config: LedgerConfigShape) =>
  Effect.gen(function*() {
    const storage = yield* Storage.make(config)
    const steps: Writer.BatchSteps = { load: LoadWorkingSet.make(storage), write: WriteChanges.make(storage) }
    const submit = yield* Writer.make(storage, steps)
    yield* Writer.fundTreasuryOnce(storage, steps)
    const reports = SqlReports.make(storage.sql)
    const ledger: LedgerShape = {
      config,
      ...commandMethods(submit),
      ...Expiry.make(storage, submit),
      ...Reads.make(storage),
      // The ledger's own reads fail as its storage does, with exact integers.
      activity: (wallet) => storage.safe(reports.activity(wallet)),
      referrals: (wallet) => storage.safe(reports.referrals(wallet))
    }
    return { ledger, journal: Journal.make(storage) }
  })

/** The SQL ledger over a provided `SqlClient` (schema migrated first), with its durable settlement journal. */
export const layer: Layer.Layer<
  Ledger | SettlementJournal,
  SqlError | Migrations.MigrationError,
  SqlClient.SqlClient | LedgerConfig
> = Layer.scopedContext(
  Effect.gen(function*() {
    yield* Migrations.run
    const { ledger, journal } = yield* make(yield* LedgerConfig)
    return Context.make(Ledger, ledger).pipe(Context.add(SettlementJournal, journal))
  })
)

export interface SqliteOptions {
  /** The directory holding `ledger.db` (created if missing). */
  readonly dataDir?: string | undefined
  /** Or an explicit database file. */
  readonly filename?: string | undefined
  /** `synchronous` pragma: FULL (default) fsyncs every commit; NORMAL is faster and may lose the last commits on power loss. */
  readonly synchronous?: "FULL" | "NORMAL" | undefined
}

export const sqliteFilename = (options: SqliteOptions) =>
  options.filename ?? path.join(options.dataDir ?? "./data", "ledger.db")

/** A SQLite client with the ledger's pragmas: WAL, durable commits, a busy timeout for other processes. */
export const sqliteClient = (options: SqliteOptions) =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const filename = sqliteFilename(options)
      fs.mkdirSync(path.dirname(filename), { recursive: true })
      const client = SqliteClient.layer({ filename })
      const pragmas = Layer.effectDiscard(
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql.unsafe(`PRAGMA synchronous = ${options.synchronous ?? "FULL"}`)
          yield* sql.unsafe("PRAGMA busy_timeout = 5000")
          yield* sql.unsafe("PRAGMA foreign_keys = ON")
        })
      )
      return Layer.provideMerge(pragmas, client)
    })
  )

/** Self-contained embedded ledger: a SQLite file in `dataDir`, migrated, with config from `LedgerConfig`. */
export const layerSqlite = (
  options: SqliteOptions = {}
): Layer.Layer<Ledger | SettlementJournal | SqlClient.SqlClient, never, LedgerConfig> =>
  Layer.provideMerge(layer, sqliteClient(options)).pipe(Layer.orDie)

/** Convenience for examples and tests: the embedded ledger with explicit settings. */
export const layerSqliteWith = (options: SqliteOptions = {}, config: Partial<LedgerConfigShape> = {}) =>
  Layer.provide(layerSqlite(options), LedgerConfigLayers.layer(config))
