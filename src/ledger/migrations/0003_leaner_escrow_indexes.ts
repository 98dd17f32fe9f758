/**
 * Every index on `escrows` is maintained on each group commit, twice per escrow
 * (create, then settle), so each one must pay for itself:
 *
 * - `escrows_idempotency` held an entry for every escrow although most carry no key;
 *   partial on `idempotency_key IS NOT NULL`, it indexes only the keyed ones (a NULL
 *   key never collided anyway: NULLs are distinct on both backends). The batch lookup
 *   now searches it by (payer, key), where before it scanned the table.
 * - `escrows_payee` had `status` as a second column, so settling an escrow moved its
 *   entry; no query filters a payee's escrows by status (activity groups them by
 *   region, lists take all), so `(payee)` serves them all and settling leaves it be.
 *   `escrows_payer` keeps `status`: a payer's locked total sums its pending escrows.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"

export default Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`DROP INDEX escrows_idempotency`
  yield* sql`CREATE UNIQUE INDEX escrows_idempotency ON escrows (payer, idempotency_key) WHERE idempotency_key IS NOT NULL`
  yield* sql`DROP INDEX escrows_payee`
  yield* sql`CREATE INDEX escrows_payee ON escrows (payee)`
})
