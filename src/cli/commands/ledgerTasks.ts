/**
 * What `ringmaster ledger verify` and `ringmaster ledger export` do; ./ledger.ts
 * defines the commands and loads this module only when one of them runs.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Console, Data, Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as Usdc from "../../domain/Usdc.js"
import * as Backend from "../../ledger/Backend.js"
import { exportPostings as exportPages, type ExportFormat } from "../../ledger/export.js"
import * as LedgerSettings from "../../ledger/LedgerConfig.js"
import * as Postgres from "../../ledger/Postgres.js"
import * as SqlLedger from "../../ledger/SqlLedger.js"
import { formatReport, requireClean, verifySnapshot } from "../../ledger/verify.js"

/** Nothing to verify or export there; creating an empty ledger would hide the mistake. */
export class LedgerNotFound extends Data.TaggedError("LedgerNotFound")<{ readonly where: string }> {
  override get message() {
    return `no ledger at ${this.where} (set DATABASE_URL or DATA_DIR / --data-dir to an existing ledger)`
  }
}

const backendFrom = (dataDir: Option.Option<string>) =>
  Option.match(dataDir, {
    onSome: (dir): Effect.Effect<Backend.Backend, never> => Effect.succeed({ _tag: "Sqlite", dataDir: dir }),
    onNone: () => Backend.fromEnv
  })

/** The database client alone (no ledger), after checking a ledger exists there. */
const existingClient = (backend: Backend.Backend) =>
  Effect.gen(function*() {
    const where = Backend.describe(backend)
    if (backend._tag === "Sqlite") {
      if (!fs.existsSync(SqlLedger.sqliteFilename({ dataDir: backend.dataDir }))) return yield* new LedgerNotFound({ where })
      return SqlLedger.sqliteClient({ dataDir: backend.dataDir })
    }
    const client = Postgres.client(backend.options)
    const found = yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ t: string | null }>`SELECT to_regclass('ledger_meta')::text AS t`).pipe(
      Effect.provide(client)
    )
    if (found[0]?.t == null) return yield* new LedgerNotFound({ where })
    return client
  })

/** Recomputes every balance from postings and checks every invariant; fails on any violation. */
export const verify = (dataDir: Option.Option<string>) =>
  Effect.gen(function*() {
    const backend = yield* backendFrom(dataDir)
    const client = yield* existingClient(backend)
    const report = yield* verifySnapshot.pipe(
      // The ledger's settings do not enter the invariants; defaults keep a stray env setting from blocking a check.
      Effect.provide(SqlLedger.layer.pipe(Layer.provideMerge(client), Layer.provide(LedgerSettings.layer())))
    )
    const lines = formatReport(Backend.describe(backend), report)
    yield* report.violations.length === 0 ? Console.log(lines.join("\n")) : Console.error(lines.join("\n"))
    yield* requireClean(report)
  })

/** Writes to a file descriptor synchronously: one page at a time, so memory stays bounded by a page. */
const fdWriter = (fd: number) => (text: string) => Effect.sync(() => void fs.writeSync(fd, text))

/** Writes to stdout, waiting for `drain` when the pipe is full (back-pressure). */
const stdoutWriter = (text: string) =>
  Effect.async<void>((resume) => {
    if (process.stdout.write(text)) resume(Effect.void)
    else process.stdout.once("drain", () => resume(Effect.void))
  })

/** Every posting as CSV or JSON lines, paged, from one snapshot; a summary on stderr. */
export const exportPostings = (options: {
  readonly dataDir: Option.Option<string>
  readonly format: ExportFormat
  readonly output: Option.Option<string>
  readonly pageSize: number
}) =>
  Effect.gen(function*() {
    const backend = yield* backendFrom(options.dataDir)
    const client = yield* existingClient(backend)
    const write = Option.match(options.output, {
      onNone: () => Effect.succeed(stdoutWriter),
      onSome: (file) =>
        Effect.map(
          Effect.acquireRelease(Effect.sync(() => fs.openSync(file, "w")), (fd) => Effect.sync(() => fs.closeSync(fd))),
          fdWriter
        )
    })
    const summary = yield* Effect.flatMap(write, (writer) => exportPages({ format: options.format, pageSize: options.pageSize, write: writer })).pipe(
      Effect.scoped,
      Effect.provide(client)
    )
    // On stderr, so stdout stays pure CSV / JSON lines.
    yield* Console.error(
      `ledger export (${Backend.describe(backend)}): ${summary.rows} postings in ${summary.pages} page(s), sum ${Usdc.format(summary.sumMicros)} USDC`
    )
  })
