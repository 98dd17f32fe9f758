/**
 * The settlement service's tables, for the lead's migrator
 * (`Migrator.fromRecord({ ...ledgerMigrations, ...httpMigrations })`). Ids from 0101
 * keep clear of the ledger's. Portable SQL: the same statements run on SQLite and
 * PostgreSQL; `IF NOT EXISTS` lets `ApiKeys.layerSql` run them itself until the
 * migrator does.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export const createApiKeysTable = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // Only the SHA-256 of a key is stored (hex); a rotated key gets expires_at_ms.
  yield* sql`CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    wallet TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS api_keys_agent_id ON api_keys (agent_id)`
})

export const migrations = {
  "0101_api_keys": createApiKeysTable
} as const
