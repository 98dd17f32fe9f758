/**
 * Every difference between the SQL backends the ledger runs on, in one place.
 * Everything else in `SqlLedger` is portable SQL.
 *
 * Why the ledger is safe with several processes on one PostgreSQL database
 * (READ COMMITTED, the server default):
 * - A batch locks every mutable row it reads (`forUpdate`), in one order: escrows by
 *   id, mandates by id, then accounts by id. The system accounts are in every batch,
 *   so batches that move money serialize on them; a lock waited for returns the row
 *   as the other batch committed it.
 * - An account row that does not exist yet cannot be locked, and a statement's
 *   snapshot would not see one another batch just inserted: `selectAccountsForUpdate`
 *   creates missing rows first (zero balance; a concurrent creator waits on the key),
 *   then locks them with a fresh statement, so a first credit is never overwritten.
 * - New rows that must be unique (an agent's wallet, a faucet claim, an idempotency
 *   key, the first-start treasury funding) rely on keys: the loser fails with a
 *   unique violation and its whole batch is retried (`isTransient`), re-reading the
 *   winner's row. Deadlocks and lock timeouts are retried the same way.
 * - Escrow transitions are guarded by the state read under the row lock, so two
 *   processes expiring, releasing or cancelling the same escrow end with one winner.
 * SQLite has one writer at a time (the batch's transaction), so it needs none of this.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import { Clock, Effect } from "effect"
import type { Run } from "./sql/Transaction.js"

type Row = Record<string, unknown>

export interface Dialect {
  readonly name: "sqlite" | "pg"
  /**
   * Appended to the batch's reads of mutable rows. SQLite has one writer at a time
   * (the batch's transaction holds it), so it needs nothing; PostgreSQL locks the rows
   * so concurrent settlement processes serialize on them.
   */
  readonly forUpdate: Statement.Fragment
  /** Binds an integer amount: SQLite takes a bigint natively; the pg driver takes int8 as text. */
  readonly money: (micros: bigint) => bigint | string
  /** Errors worth retrying the whole batch for: busy database, unique race, serialization failure, deadlock. */
  readonly isTransient: (cause: unknown) => boolean
  /**
   * `SELECT id, balance FROM accounts` for these ids, locked for the batch. On
   * PostgreSQL, missing rows are created (balance 0) and locked too (see above). Ids
   * may repeat (padded lists); pass them sorted so locks are taken in one order.
   */
  readonly selectAccountsForUpdate: (ids: ReadonlyArray<string>, run?: Run) => Effect.Effect<ReadonlyArray<Row>, SqlError>
  /**
   * Runs several reads on one snapshot. PostgreSQL: a REPEATABLE READ, READ ONLY
   * transaction, so `verify` on a live database shared by other processes never
   * mixes states (an escrow read after its release committed, its postings before:
   * a false violation, seen in the two-process benchmark). SQLite: as is (one
   * process writes, through the same connection).
   */
  readonly consistentReads: <A, E, R>(reads: Effect.Effect<A, E, R>) => Effect.Effect<A, E | SqlError, R>
}

/**
 * Executes a statement. By default through the client (a span, a pooled
 * connection); the ledger's batches pass one that runs on their transaction's
 * connection directly (src/ledger/sql/Transaction.ts).
 */
export type { Run }
const throughClient: Run = (statement) => statement

const codeOf = (cause: unknown): string => {
  const c = cause as { code?: unknown; cause?: { code?: unknown } } | undefined
  return String(c?.code ?? c?.cause?.code ?? "")
}

/** PostgreSQL SQLSTATEs a batch is retried on. */
export const pgTransientCodes: ReadonlyArray<string> = [
  "23505", // unique_violation: another process inserted the same key first
  "40001", // serialization_failure
  "40P01", // deadlock_detected
  "55P03" // lock_not_available: lock_timeout expired waiting for a peer
]

export const make = (sql: SqlClient.SqlClient): Dialect =>
  sql.onDialectOrElse({
    pg: (): Dialect => {
      const select = (ids: ReadonlyArray<string>, run: Run) =>
        run(sql<Row>`SELECT id, balance FROM accounts WHERE ${sql.in("id", ids)} ORDER BY id FOR UPDATE`)
      return {
        name: "pg",
        forUpdate: sql.literal("FOR UPDATE"),
        money: (micros) => micros.toString(),
        isTransient: (cause) => pgTransientCodes.includes(codeOf(cause)),
        selectAccountsForUpdate: (ids, run = throughClient) =>
          Effect.gen(function*() {
            const rows = yield* select(ids, run)
            const found = new Set(rows.map((row) => row.id as string))
            const missing = [...new Set(ids)].filter((id) => !found.has(id)).sort()
            if (missing.length === 0) return rows
            const nowMs = yield* Clock.currentTimeMillis
            yield* run(sql`INSERT INTO accounts ${sql.insert(missing.map((id) => ({ id, balance: "0", updated_at_ms: nowMs })))}
              ON CONFLICT (id) DO NOTHING`)
            // A new statement, so a new snapshot: it sees rows a peer committed while we waited on its key.
            return [...rows, ...(yield* select(missing, run))]
          }),
        consistentReads: (reads) =>
          sql.withTransaction(Effect.zipRight(sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`, reads))
      }
    },
    orElse: (): Dialect => ({
      name: "sqlite",
      forUpdate: sql.literal(""),
      money: (micros) => micros,
      isTransient: (cause) => /^SQLITE_(BUSY|LOCKED|CONSTRAINT_UNIQUE|CONSTRAINT_PRIMARYKEY)/.test(codeOf(cause)),
      selectAccountsForUpdate: (ids, run = throughClient) => run(sql<Row>`SELECT id, balance FROM accounts WHERE ${sql.in("id", ids)} ORDER BY id`),
      consistentReads: (reads) => reads
    })
  })

/** The `@effect/sql` Migrator's bookkeeping table (its default name). */
const MIGRATIONS_TABLE = "effect_sql_migrations"
/** Second key of the advisory lock (the first is the schema's hash): "ringmast" in ASCII, truncated to int4. */
const MIGRATION_LOCK_KEY = 0x72696e67

/**
 * Runs the migrator so that concurrent first starts of several processes migrate
 * once. The generic Migrator creates its table outside any lock (two processes can
 * both try, and one fails); on PostgreSQL this takes a transaction-scoped advisory
 * lock per schema, creates that table if missing, and runs the migrations inside
 * the same transaction (all-or-nothing DDL). Later starts wait for the lock, find
 * nothing to do, and go on. SQLite: the migrator's own transaction suffices.
 */
export const withMigrationLock = <A, E, R>(migrate: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql.onDialectOrElse({
      pg: () =>
        sql.withTransaction(
          Effect.gen(function*() {
            yield* sql`SELECT pg_advisory_xact_lock(hashtext(current_schema()), ${MIGRATION_LOCK_KEY})`
            yield* sql`CREATE TABLE IF NOT EXISTS ${sql(MIGRATIONS_TABLE)} (
              migration_id integer primary key,
              created_at timestamp with time zone not null default now(),
              name text not null
            )`
            return yield* migrate
          })
        ),
      orElse: () => migrate
    })
  })

/**
 * Runs `reads` on one consistent snapshot, so a check or an export over several
 * queries sees one committed state even while other processes write. PostgreSQL:
 * a REPEATABLE READ, READ ONLY transaction. SQLite (WAL): a read transaction.
 */
export const snapshot = <A, E, R>(reads: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(
      Effect.zipRight(
        sql.onDialectOrElse({
          pg: () => sql`SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY`,
          orElse: () => Effect.void
        }),
        reads
      )
    )
  })
