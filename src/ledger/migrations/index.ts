/**
 * All schema migrations, numbered. One set for every SQL backend.
 * Other features register their tables here too, in their own numbered files.
 */
import * as Migrator from "@effect/sql/Migrator"
import { withMigrationLock } from "../dialect.js"
import ledger from "./0001_ledger.js"
import apiKeys from "./0002_api_keys.js"
import leanerEscrowIndexes from "./0003_leaner_escrow_indexes.js"
import idempotencyKeys from "./0004_idempotency_keys.js"
import mandateMaxTimeout from "./0005_mandate_max_timeout.js"
import paymentTokens from "./0006_payment_tokens.js"

export const migrations = {
  "0001_ledger": ledger,
  "0002_api_keys": apiKeys,
  "0003_leaner_escrow_indexes": leanerEscrowIndexes,
  "0004_idempotency_keys": idempotencyKeys,
  "0005_mandate_max_timeout": mandateMaxTimeout,
  "0006_payment_tokens": paymentTokens
}

export const loader = Migrator.fromRecord(migrations)

/** Runs pending migrations; concurrent starts on PostgreSQL migrate once (see `withMigrationLock`). */
export const run = withMigrationLock(Migrator.make({})({ loader }))

export { MigrationError } from "@effect/sql/Migrator"
