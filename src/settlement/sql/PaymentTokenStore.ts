/** `PaymentTokenStore` on any `SqlClient` (SQLite or PostgreSQL): table `payment_tokens`. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer } from "effect"
import { LedgerUnavailable } from "../../domain/errors.js"
import type { MandateId, WalletAddress } from "../../domain/ids.js"
import * as Dialect from "../../ledger/dialect.js"
import createPaymentTokensTable from "../../ledger/migrations/0006_payment_tokens.js"
import { usdc } from "../../ledger/rows.js"
import { PaymentTokenStore, type PaymentTokenStoreShape } from "../PaymentTokenStore.js"

const unavailable = (cause: unknown) => new LedgerUnavailable({ message: "payment token storage failed", cause })

interface TokenRow {
  readonly token_hash: string
  readonly payer: string
  readonly payee: string
  /** int8: text from PostgreSQL; a number from SQLite, exact because amounts stay below `Usdc.MAX_MICROS` < 2^53. */
  readonly max_amount: number | string | bigint
  readonly mandate_id: string | null
  readonly created_at_ms: number | string | bigint
  readonly expires_at_ms: number | string | bigint
  readonly redeemed_at_ms: number | string | bigint | null
  readonly redeemed_idempotency_key: string | null
}

export const make = (sql: SqlClient.SqlClient): PaymentTokenStoreShape => {
  const { money } = Dialect.make(sql)
  return {
    insert: (row) =>
      sql`INSERT INTO payment_tokens (token_hash, payer, payee, max_amount, mandate_id, created_at_ms, expires_at_ms, redeemed_at_ms, redeemed_idempotency_key)
          VALUES (${row.tokenHash}, ${row.payer}, ${row.payee}, ${money(row.maxAmount)}, ${row.mandateId}, ${row.createdAtMs}, ${row.expiresAtMs}, NULL, NULL)`.pipe(
        Effect.asVoid,
        Effect.mapError(unavailable)
      ),
    findByHash: (tokenHash) =>
      sql<TokenRow>`SELECT token_hash, payer, payee, max_amount, mandate_id, created_at_ms, expires_at_ms, redeemed_at_ms, redeemed_idempotency_key
                    FROM payment_tokens WHERE token_hash = ${tokenHash}`.pipe(
        Effect.map((rows) => {
          const r = rows[0]
          if (r === undefined) return undefined
          // PostgreSQL returns BIGINT as text, SQLite as a number.
          return {
            tokenHash: r.token_hash,
            payer: r.payer as WalletAddress,
            payee: r.payee as WalletAddress,
            maxAmount: usdc(r.max_amount),
            mandateId: r.mandate_id as MandateId | null,
            createdAtMs: Number(r.created_at_ms),
            expiresAtMs: Number(r.expires_at_ms),
            redeemedAtMs: r.redeemed_at_ms === null ? null : Number(r.redeemed_at_ms),
            redeemedIdempotencyKey: r.redeemed_idempotency_key
          }
        }),
        Effect.mapError(unavailable)
      ),
    // One statement: of two concurrent claims, the database lets exactly one see the NULL.
    claim: (tokenHash, nowMs, idempotencyKey) =>
      sql<{ readonly token_hash: string }>`UPDATE payment_tokens SET redeemed_at_ms = ${nowMs}, redeemed_idempotency_key = ${idempotencyKey}
          WHERE token_hash = ${tokenHash} AND redeemed_at_ms IS NULL AND expires_at_ms > ${nowMs}
          RETURNING token_hash`.pipe(
        Effect.map((rows) => rows.length === 1),
        Effect.mapError(unavailable)
      ),
    unclaim: (tokenHash, claimedAtMs) =>
      sql`UPDATE payment_tokens SET redeemed_at_ms = NULL, redeemed_idempotency_key = NULL
          WHERE token_hash = ${tokenHash} AND redeemed_at_ms = ${claimedAtMs}`.pipe(Effect.asVoid, Effect.mapError(unavailable)),
    purgeExpired: (beforeMs) =>
      sql`DELETE FROM payment_tokens WHERE expires_at_ms < ${beforeMs}`.pipe(Effect.asVoid, Effect.mapError(unavailable))
  }
}

/**
 * On the provided `SqlClient`. Creates its table if missing (the same statements as
 * migration `0006_payment_tokens`, so running both is harmless).
 */
export const layer: Layer.Layer<PaymentTokenStore, LedgerUnavailable, SqlClient.SqlClient> = Layer.effect(
  PaymentTokenStore,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* createPaymentTokensTable.pipe(Effect.provideService(SqlClient.SqlClient, sql), Effect.mapError(unavailable))
    return make(sql)
  })
)
