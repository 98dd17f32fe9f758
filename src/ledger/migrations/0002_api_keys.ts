/**
 * The settlement service's API keys (only SHA-256 hashes are stored). In the one
 * migrator with the ledger's tables, so concurrent first starts on PostgreSQL create
 * it once under the migration lock. `IF NOT EXISTS`: databases made before this
 * migration existed already have the table, created by `ApiKeys.layerSql`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // A rotated key gets expires_at_ms.
  yield* sql`CREATE TABLE IF NOT EXISTS api_keys (
    key_hash TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    wallet TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT
  )`
  yield* sql`CREATE INDEX IF NOT EXISTS api_keys_agent_id ON api_keys (agent_id)`
})
