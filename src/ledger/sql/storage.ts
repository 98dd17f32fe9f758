/**
 * What every part of the SQL ledger shares: the client, the dialect's differences,
 * the configuration, and how a storage failure reaches callers.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { LedgerUnavailable } from "../../domain/errors.js"
import * as Dialect from "../dialect.js"
import type { LedgerConfigShape } from "../Ledger.js"

export interface LedgerStorage {
  readonly sql: SqlClient.SqlClient
  readonly dialect: Dialect.Dialect
  readonly config: LedgerConfigShape
  /** 64-bit integers read as bigint: amounts are exact past 2^53 micro-USDC. */
  readonly safe: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** `safe`, and a storage failure as `LedgerUnavailable`. */
  readonly orUnavailable: <A, R>(effect: Effect.Effect<A, SqlError, R>) => Effect.Effect<A, LedgerUnavailable, R>
}

export const unavailable = (message: string, cause?: unknown) =>
  new LedgerUnavailable(cause === undefined ? { message } : { message, cause })

export const make = (config: LedgerConfigShape): Effect.Effect<LedgerStorage, never, SqlClient.SqlClient> =>
  Effect.map(SqlClient.SqlClient, (sql) => {
    const safe = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, SqlClient.SafeIntegers, true)
    return {
      sql,
      dialect: Dialect.make(sql),
      config,
      safe,
      orUnavailable: (effect) =>
        safe(effect).pipe(Effect.mapError((error) => unavailable(`ledger storage failed: ${error.message}`, error.cause)))
    }
  })
