/**
 * Every difference between the SQL backends the ledger runs on, in one place.
 * Everything else in `SqlLedger` is portable SQL.
 */
import type { SqlClient } from "@effect/sql"
import type { Fragment } from "@effect/sql/Statement"

export interface Dialect {
  readonly name: "sqlite" | "pg"
  /**
   * Appended to the batch's reads of mutable rows. SQLite has one writer at a time
   * (the batch's transaction holds it), so it needs nothing; PostgreSQL locks the rows
   * so concurrent settlement processes serialize on them.
   */
  readonly forUpdate: Fragment
  /** Binds an integer amount: SQLite takes a bigint natively; the pg driver takes int8 as text. */
  readonly money: (micros: bigint) => bigint | string
  /** Errors worth retrying the whole batch for: busy database, unique race, serialization failure, deadlock. */
  readonly isTransient: (cause: unknown) => boolean
}

const codeOf = (cause: unknown): string => {
  const c = cause as { code?: unknown; cause?: { code?: unknown } } | undefined
  return String(c?.code ?? c?.cause?.code ?? "")
}

export const make = (sql: SqlClient.SqlClient): Dialect =>
  sql.onDialectOrElse({
    pg: (): Dialect => ({
      name: "pg",
      forUpdate: sql.literal("FOR UPDATE"),
      money: (micros) => micros.toString(),
      // unique_violation, serialization_failure, deadlock_detected, lock_not_available
      isTransient: (cause) => ["23505", "40001", "40P01", "55P03"].includes(codeOf(cause))
    }),
    orElse: (): Dialect => ({
      name: "sqlite",
      forUpdate: sql.literal(""),
      money: (micros) => micros,
      isTransient: (cause) => /^SQLITE_(BUSY|LOCKED|CONSTRAINT_UNIQUE|CONSTRAINT_PRIMARYKEY)/.test(codeOf(cause))
    })
  })
