/**
 * Idempotency keys bound to their request (src/ledger/idempotency.ts): one row per
 * key, scoped to the caller that sent it and the route, with the SHA-256 of the
 * request and the escrow it answered with. Written in the same transaction as that
 * escrow; swept after `expires_at_ms` by the expiry sweeper (`expiry` index).
 *
 * `escrows.idempotency_key` stays as the record of the key an escrow was opened
 * with, but is no longer unique per payer: a payer and a payee under its mandate
 * each own their keys, and an expired key may be used again.
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE idempotency_keys (
    owner TEXT NOT NULL,
    route TEXT NOT NULL,
    key TEXT NOT NULL,
    request_sha256 TEXT NOT NULL,
    escrow_id TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    expires_at_ms BIGINT NOT NULL,
    PRIMARY KEY (owner, route, key)
  )`
  yield* sql`CREATE INDEX idempotency_keys_expiry ON idempotency_keys (expires_at_ms)`
  yield* sql`DROP INDEX escrows_idempotency`
})
