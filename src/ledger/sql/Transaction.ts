/**
 * The transaction of a group-commit batch: BEGIN, the batch's statements on one
 * reserved connection, then COMMIT, or ROLLBACK if anything failed.
 *
 * Why not `SqlClient.withTransaction`: per transaction it opens a span, puts the
 * connection into the fiber's context (for nested transactions and savepoints),
 * masks interruption and prepares BEGIN and COMMIT anew. A batch needs none of it:
 * its statements get the connection passed in, it never nests, and the group commit
 * already runs it uninterruptibly. On a lone command (one fiber, SQLite) that
 * machinery is a sizeable share of a whole batch, fsync included (`npm run bench`,
 * `bench:delegate` at c=1; see docs/performance.md).
 *
 * A COMMIT that fails (a busy database) rolls back and fails with its `SqlError`,
 * so the batch can be retried; `withTransaction` dies there instead.
 *
 * Uninterruptible, body included: an interruption between BEGIN and COMMIT would
 * leave the connection inside a transaction, and a batch is short and bounded.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import { Effect, Exit } from "effect"

/**
 * Executes a statement on the transaction's connection. Through the client, each
 * statement would also open a span and a Scope to acquire the connection the batch
 * already holds, each costing more than the SQLite work it wraps.
 */
export type Run = <A extends object>(statement: Statement.Statement<A>) => Effect.Effect<ReadonlyArray<A>, SqlError>

const onConnection = (connection: Connection): Run => (statement) => {
  const [text, params] = statement.compile()
  return connection.execute(text, params, undefined) as Effect.Effect<ReadonlyArray<never>, SqlError>
}

export const inTransaction = <A, E, R>(
  sql: SqlClient.SqlClient,
  body: (run: Run, connection: Connection) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | SqlError, R> =>
  Effect.uninterruptible(Effect.scoped(
    Effect.flatMap(sql.reserve, (connection) => {
      // Prepared once and cached by the connection, like any statement.
      const statement = (text: string) => connection.execute(text, [], undefined)
      // After a failed COMMIT the transaction may already be gone: then ROLLBACK fails, harmlessly.
      const rollback = Effect.ignore(statement("ROLLBACK"))
      return Effect.zipRight(statement("BEGIN"), Effect.exit(body(onConnection(connection), connection))).pipe(
        Effect.flatMap((exit): Effect.Effect<A, E | SqlError> =>
          Exit.isSuccess(exit)
            ? Effect.as(Effect.tapError(statement("COMMIT"), () => rollback), exit.value)
            : Effect.zipRight(rollback, exit)
        )
      )
    })
  ))
