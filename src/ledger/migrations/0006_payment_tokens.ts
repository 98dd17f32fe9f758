/**
 * Payment tokens (`src/settlement/PaymentTokens.ts`): only SHA-256 hashes are stored, as for
 * API keys. A token is claimed by setting `redeemed_at_ms` where it is still NULL, so
 * one statement decides which of two concurrent redemptions wins. `IF NOT EXISTS`:
 * `PaymentTokens.layerSql` runs the same statements for a bare SqlClient.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  // max_amount is micro-USDC as an integer, like every amount in the ledger.
  yield* sql`CREATE TABLE IF NOT EXISTS payment_tokens (
    token_hash TEXT PRIMARY KEY,
    payer TEXT NOT NULL,
    payee TEXT NOT NULL,
    max_amount BIGINT NOT NULL,
    mandate_id TEXT,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    redeemed_at_ms BIGINT,
    redeemed_idempotency_key TEXT
  )`
  // Purging expired tokens scans by expiry.
  yield* sql`CREATE INDEX IF NOT EXISTS payment_tokens_expires_at ON payment_tokens (expires_at_ms)`
})
