/** The settlement journal (`SettlementJournal.ts`) in the ledger's own database: table `unsettled_escrows`. */
import { Effect } from "effect"
import type { EscrowId } from "../../domain/ids.js"
import { num, type Row } from "../rows.js"
import type { UnsettledEscrow, UnsettledJournal } from "../SettlementJournal.js"
import type { LedgerStorage } from "./storage.js"

/** Bound on a stored error message. */
const MAX_ERROR_LENGTH = 2_000

export const make = ({ safe, sql }: LedgerStorage): UnsettledJournal => ({
  record: (entry: UnsettledEscrow) =>
    safe(sql`INSERT INTO unsettled_escrows ${
      sql.insert({
        escrow_id: entry.escrowId,
        intent: entry.intent,
        error: entry.error.slice(0, MAX_ERROR_LENGTH),
        attempts: entry.attempts,
        at_ms: entry.atMs
      })
    } ON CONFLICT (escrow_id) DO UPDATE SET intent = excluded.intent, error = excluded.error,
      attempts = excluded.attempts, at_ms = excluded.at_ms`).pipe(
      Effect.catchAll((error) =>
        // The journal shares the ledger's storage; if both are down, the log line and the escrow's deadline remain.
        Effect.logError("could not journal an unsettled escrow", { escrowId: entry.escrowId, error: error.message })
      )
    ),
  list: safe(sql<Row>`SELECT * FROM unsettled_escrows ORDER BY at_ms`).pipe(
    Effect.map((rows) =>
      rows.map((r): UnsettledEscrow => ({
        escrowId: r.escrow_id as EscrowId,
        intent: r.intent as "release" | "cancel",
        error: r.error as string,
        attempts: num(r.attempts),
        atMs: num(r.at_ms)
      }))
    ),
    Effect.orDie
  ),
  markSettled: (id) => safe(sql`DELETE FROM unsettled_escrows WHERE escrow_id = ${id}`).pipe(Effect.asVoid, Effect.orDie)
})
