/** Housekeeping on the SQL ledger: refunding escrows past their deadline, forgetting expired idempotency keys. */
import { Clock, Effect } from "effect"
import type { EscrowRecord } from "../../domain/Escrow.js"
import type { EscrowId } from "../../domain/ids.js"
import type { LedgerShape } from "../Ledger.js"
import type { Row } from "../rows.js"
import type { LedgerStorage } from "./storage.js"
import type { Submit } from "./writer.js"

export type Expiry = Pick<LedgerShape, "expireDue" | "forgetExpiredKeys">

/** Bounds (TIGER_STYLE) on one sweep's rows. */
const MAX_EXPIRED_PER_SWEEP = 10_000
const MAX_KEYS_PER_SWEEP = 100_000

export const make = ({ orUnavailable, sql }: LedgerStorage, submit: Submit): Expiry => ({
  /** Each due escrow expires through the write path, so the rules decide and a concurrent release wins or loses cleanly. */
  expireDue: (limit = 1_000) =>
    Effect.gen(function*() {
      const nowMs = yield* Clock.currentTimeMillis
      const due = yield* orUnavailable(sql<Row>`SELECT id FROM escrows
        WHERE status = 'pending' AND expires_at_ms <= ${nowMs} ORDER BY expires_at_ms
        LIMIT ${Math.max(1, Math.min(limit, MAX_EXPIRED_PER_SWEEP))}`)
      const expired = yield* Effect.forEach(
        due,
        (row) => submit({ _tag: "ExpireEscrow", id: row.id as EscrowId }),
        { concurrency: "unbounded" }
      )
      return expired.filter((e): e is EscrowRecord => e !== null)
    }).pipe(Effect.catchAll((e) => e._tag === "LedgerUnavailable" ? Effect.fail(e) : Effect.die(e))),

  forgetExpiredKeys: (limit = 10_000) =>
    Effect.gen(function*() {
      const nowMs = yield* Clock.currentTimeMillis
      // At most `limit` rows, oldest first, found through the expiry index.
      const rows = yield* orUnavailable(sql<Row>`DELETE FROM idempotency_keys WHERE (owner, route, key) IN (
        SELECT owner, route, key FROM idempotency_keys WHERE expires_at_ms <= ${nowMs}
        ORDER BY expires_at_ms LIMIT ${Math.max(1, Math.min(limit, MAX_KEYS_PER_SWEEP))}) RETURNING owner`)
      return rows.length
    })
})
