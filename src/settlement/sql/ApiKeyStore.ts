/** `ApiKeyStore` on any `SqlClient` (SQLite or PostgreSQL): table `api_keys`. */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect, Layer } from "effect"
import { LedgerUnavailable } from "../../domain/errors.js"
import type { AgentId, WalletAddress } from "../../domain/ids.js"
import { ApiKeyStore, type ApiKeyStoreShape, type StoredKey } from "../ApiKeyStore.js"
import { createApiKeysTable } from "../migrations.js"

const unavailable = (cause: unknown) => new LedgerUnavailable({ message: "api key storage failed", cause })

interface KeyRow {
  readonly key_hash: string
  readonly agent_id: string
  readonly wallet: string
  readonly created_at_ms: number | string | bigint
  readonly expires_at_ms: number | string | bigint | null
}

export const make = (sql: SqlClient.SqlClient): ApiKeyStoreShape => {
  const insert = (row: StoredKey) =>
    sql`INSERT INTO api_keys (key_hash, agent_id, wallet, created_at_ms, expires_at_ms)
        VALUES (${row.keyHash}, ${row.agentId}, ${row.wallet}, ${row.createdAtMs}, ${row.expiresAtMs})`
  /**
   * Whether the presented key is still current, checked under a lock on its row: the
   * no-op UPDATE makes a concurrent rotation on PostgreSQL wait for this transaction
   * and then find the key no longer current (SQLite has one writer at a time).
   */
  const claimCurrent = (agentId: string, presentedHash: string) =>
    Effect.map(
      sql<{ readonly key_hash: string }>`UPDATE api_keys SET expires_at_ms = NULL
          WHERE key_hash = ${presentedHash} AND agent_id = ${agentId} AND expires_at_ms IS NULL
          RETURNING key_hash`,
      (rows) => rows.length === 1
    )
  return {
    insert: (row) => insert(row).pipe(Effect.asVoid, Effect.mapError(unavailable)),
    findByHash: (keyHash) =>
      sql<KeyRow>`SELECT key_hash, agent_id, wallet, created_at_ms, expires_at_ms FROM api_keys WHERE key_hash = ${keyHash}`.pipe(
        Effect.map((rows) => {
          const r = rows[0]
          if (r === undefined) return undefined
          // PostgreSQL returns BIGINT as a string, SQLite as a number.
          return {
            keyHash: r.key_hash,
            agentId: r.agent_id as AgentId,
            wallet: r.wallet as WalletAddress,
            createdAtMs: Number(r.created_at_ms),
            expiresAtMs: r.expires_at_ms === null ? null : Number(r.expires_at_ms)
          }
        }),
        Effect.mapError(unavailable)
      ),
    rotate: (row, expiresAtMs, presentedHash) =>
      sql.withTransaction(
        Effect.flatMap(claimCurrent(row.agentId, presentedHash), (current) =>
          current
            ? sql`UPDATE api_keys SET expires_at_ms = ${expiresAtMs}
                  WHERE agent_id = ${row.agentId} AND (expires_at_ms IS NULL OR expires_at_ms > ${expiresAtMs})`.pipe(
                Effect.zipRight(insert(row)),
                Effect.as(true)
              )
            : Effect.succeed(false))
      ).pipe(Effect.mapError(unavailable)),
    revokeOthers: (agentId, presentedHash, nowMs) =>
      sql.withTransaction(
        Effect.flatMap(claimCurrent(agentId, presentedHash), (current) =>
          current
            ? Effect.map(
              sql<{ readonly key_hash: string }>`UPDATE api_keys SET expires_at_ms = ${nowMs}
                  WHERE agent_id = ${agentId} AND key_hash <> ${presentedHash}
                    AND (expires_at_ms IS NULL OR expires_at_ms > ${nowMs})
                  RETURNING key_hash`,
              (rows) => rows.map((r) => r.key_hash)
            )
            : Effect.succeed(null))
      ).pipe(Effect.mapError(unavailable))
  }
}

/**
 * On the provided `SqlClient`. Creates its table if missing (the same statement as
 * migration `0101_api_keys`, so running both is harmless).
 */
export const layer: Layer.Layer<ApiKeyStore, LedgerUnavailable, SqlClient.SqlClient> = Layer.effect(
  ApiKeyStore,
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* createApiKeysTable.pipe(Effect.mapError(unavailable))
    return make(sql)
  })
)
