/**
 * All schema migrations, numbered. One set for every SQL backend.
 * Other features register their tables here too, in their own numbered files.
 */
import { Migrator } from "@effect/sql"
import ledger from "./0001_ledger.js"

export const migrations = {
  "0001_ledger": ledger
}

export const loader = Migrator.fromRecord(migrations)

/** Runs pending migrations (PostgreSQL: under a table lock, so concurrent starts are safe). */
export const run = Migrator.make({})({ loader })

export { MigrationError } from "@effect/sql/Migrator"
