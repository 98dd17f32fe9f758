/**
 * A mandate's `max_timeout_ms`: the longest an escrow opened under it may hold the
 * payer's money. Mandates that exist when this runs get 15 minutes, the ledger's
 * built-in default escrow timeout (what a mandate granted without the field gets).
 */
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`ALTER TABLE mandates ADD COLUMN max_timeout_ms BIGINT NOT NULL DEFAULT 900000`
})
