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
import { Effect } from "effect"
import { type ExportFormat, PAGE_SIZE_MAX } from "../../ledger/export.js"

/** What the commands run, loaded when one runs: the SQL drivers stay out of `ringmaster --version` and `--help`. */
const tasks = Effect.promise(() => import("./ledgerTasks.js"))

const dataDirOption = Options.text("data-dir").pipe(
  Options.withDescription("SQLite ledger directory (overrides DATA_DIR and DATABASE_URL)"),
  Options.optional
)

/** `ringmaster ledger verify`: recompute every balance from postings and check every invariant. */
export const verify = Command.make("verify", { dataDir: dataDirOption }, ({ dataDir }) =>
  Effect.flatMap(tasks, (t) => t.verify(dataDir))).pipe(
    Command.withDescription(
      "Recompute every balance from postings and check all invariants (conservation, no negatives, escrow postings match states, mandate budgets); exits non-zero on any violation"
    )
  )

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
    Effect.flatMap(tasks, (t) => t.exportPostings({ dataDir, format, output, pageSize }))
).pipe(Command.withDescription("Export every posting (double-entry legs) as CSV or JSON lines for accounting, paged from one consistent snapshot"))

/** `ringmaster ledger <verify|export>`: add to the command tree's subcommands. */
export const ledger = Command.make("ledger").pipe(
  Command.withDescription("Check or export the ledger (DATABASE_URL → PostgreSQL, else SQLite in DATA_DIR)"),
  Command.withSubcommands([verify, exportCommand])
)
