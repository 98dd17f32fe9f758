/**
 * `ringmaster ledger verify` and `ringmaster ledger export`, on the backend the
 * environment names (`DATABASE_URL` → PostgreSQL, else SQLite in `DATA_DIR`;
 * `--data-dir` forces SQLite there). Both refuse to create a ledger: pointed at an
 * empty place they fail instead of initialising one.
 *
 * Exit status (through `NodeRuntime.runMain`): 0 when clean; non-zero on any
 * invariant violation, a missing ledger, or a storage error.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as SqlClient from "@effect/sql/SqlClient"
import { Console, Data, Effect, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as Backend from "../../ledger/Backend.js"
import { exportPostings, type ExportFormat, PAGE_SIZE_MAX } from "../../ledger/export.js"
import * as LedgerSettings from "../../ledger/LedgerConfig.js"
import * as Postgres from "../../ledger/Postgres.js"
import * as SqlLedger from "../../ledger/SqlLedger.js"
import { formatReport, requireClean, verifySnapshot } from "../../ledger/verify.js"
import * as Usdc from "../../domain/Usdc.js"

/** Nothing to verify or export there; creating an empty ledger would hide the mistake. */
export class LedgerNotFound extends Data.TaggedError("LedgerNotFound")<{ readonly where: string }> {
  override get message() {
    return `no ledger at ${this.where} (set DATABASE_URL or DATA_DIR / --data-dir to an existing ledger)`
  }
}

const dataDirOption = Options.text("data-dir").pipe(
  Options.withDescription("SQLite ledger directory (overrides DATA_DIR and DATABASE_URL)"),
  Options.optional
)

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

/** `ringmaster ledger verify`: recompute every balance from postings and check every invariant. */
export const verify = Command.make("verify", { dataDir: dataDirOption }, ({ dataDir }) =>
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
  })).pipe(
    Command.withDescription(
      "Recompute every balance from postings and check all invariants (conservation, no negatives, escrow postings match states, mandate budgets); exits non-zero on any violation"
    )
  )

/** Writes to a file descriptor synchronously: one page at a time, so memory stays bounded by a page. */
const fdWriter = (fd: number) => (text: string) => Effect.sync(() => void fs.writeSync(fd, text))

/** Writes to stdout, waiting for `drain` when the pipe is full (back-pressure). */
const stdoutWriter = (text: string) =>
  Effect.async<void>((resume) => {
    if (process.stdout.write(text)) resume(Effect.void)
    else process.stdout.once("drain", () => resume(Effect.void))
  })

/** `ringmaster ledger export`: every posting as CSV or JSON lines, paged, from one snapshot. */
export const exportCommand = Command.make(
  "export",
  {
    dataDir: dataDirOption,
    format: Options.choice("format", ["csv", "jsonl"] as const).pipe(
      Options.withDescription("csv (with a header row) or jsonl (one JSON object per line)"),
      Options.withDefault("csv" as ExportFormat)
    ),
    output: Options.text("output").pipe(Options.withAlias("o"), Options.withDescription("file to write (default: stdout)"), Options.optional),
    pageSize: Options.integer("page-size").pipe(
      Options.withDescription(`postings per query, 1..${PAGE_SIZE_MAX}`),
      Options.withDefault(1_000)
    )
  },
  ({ dataDir, format, output, pageSize }) =>
    Effect.gen(function*() {
      const backend = yield* backendFrom(dataDir)
      const client = yield* existingClient(backend)
      const write = Option.match(output, {
        onNone: () => Effect.succeed(stdoutWriter),
        onSome: (file) =>
          Effect.map(
            Effect.acquireRelease(Effect.sync(() => fs.openSync(file, "w")), (fd) => Effect.sync(() => fs.closeSync(fd))),
            fdWriter
          )
      })
      const summary = yield* Effect.flatMap(write, (writer) => exportPostings({ format, pageSize, write: writer })).pipe(
        Effect.scoped,
        Effect.provide(client)
      )
      // On stderr, so stdout stays pure CSV / JSON lines.
      yield* Console.error(
        `ledger export (${Backend.describe(backend)}): ${summary.rows} postings in ${summary.pages} page(s), sum ${Usdc.format(summary.sumMicros)} USDC`
      )
    })
).pipe(Command.withDescription("Export every posting (double-entry legs) as CSV or JSON lines for accounting, paged from one consistent snapshot"))

/** `ringmaster ledger <verify|export>`: add to the command tree's subcommands. */
export const ledger = Command.make("ledger").pipe(
  Command.withDescription("Check or export the ledger (DATABASE_URL → PostgreSQL, else SQLite in DATA_DIR)"),
  Command.withSubcommands([verify, exportCommand])
)
