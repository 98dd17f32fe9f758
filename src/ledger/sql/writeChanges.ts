/**
 * Writing a batch's changes set-based: a handful of multi-row statements per batch,
 * not one per posting, each chunked to the driver's parameter limit.
 */
import { Effect } from "effect"
import type { EscrowRecord, MandateRecord } from "../../domain/Escrow.js"
import type { Run } from "../dialect.js"
import type { WorkingSet } from "../engine.js"
import { chunks } from "./statementShapes.js"
import type { LedgerStorage } from "./storage.js"

/** `(ws, nowMs, run) => void`: what `ws` changed, written through `run` (the batch's transaction). */
export const make = ({ dialect, sql }: LedgerStorage) => {
  const m = dialect.money

  const escrowRow = (e: EscrowRecord) => ({
    id: e.id,
    payer: e.payer,
    payee: e.payee,
    amount: m(e.amount),
    released: m(e.released),
    fee_paid: m(e.feePaid),
    refunded: m(e.refunded),
    status: e.status,
    description: e.description,
    metadata: JSON.stringify(e.metadata),
    region: e.region,
    idempotency_key: e.idempotencyKey,
    mandate_id: e.mandateId,
    created_at_ms: e.createdAtMs,
    expires_at_ms: e.expiresAtMs,
    settled_at_ms: e.settledAtMs,
    version: e.version
  })

  const mandateRow = (x: MandateRecord) => ({
    id: x.id,
    payer: x.payer,
    payee: x.payee,
    max_amount: m(x.maxAmount),
    budget: m(x.budget),
    remaining: m(x.remaining),
    expires_at_ms: x.expiresAtMs,
    max_timeout_ms: x.maxTimeoutMs,
    revoked: x.revoked ? 1 : 0,
    created_at_ms: x.createdAtMs
  })

  /** Agents, balances, escrows and mandates: new rows inserted, changed ones updated in place. */
  const writeRecords = (ws: WorkingSet, nowMs: number, run: Run) =>
    Effect.gen(function*() {
      for (const rows of chunks(ws.newAgents)) {
        yield* run(sql`INSERT INTO agents ${
          sql.insert(rows.map((a) => ({
            wallet: a.wallet,
            agent_id: a.agentId,
            name: a.name,
            referral_code: a.referralCode,
            referrer: a.referrer,
            created_at_ms: a.createdAtMs
          })))
        }`)
      }
      const accounts = [...ws.dirtyAccounts].sort().map((id) => ({ id, balance: m(ws.balanceOf(id)), updated_at_ms: nowMs }))
      for (const rows of chunks(accounts)) {
        yield* run(sql`INSERT INTO accounts ${sql.insert(rows)}
          ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, updated_at_ms = excluded.updated_at_ms`)
      }
      const escrows = [...ws.dirtyEscrows].map((id) => escrowRow(ws.escrow(id)!))
      for (const rows of chunks(escrows)) {
        yield* run(sql`INSERT INTO escrows ${sql.insert(rows)}
          ON CONFLICT (id) DO UPDATE SET released = excluded.released, fee_paid = excluded.fee_paid,
            refunded = excluded.refunded, status = excluded.status, settled_at_ms = excluded.settled_at_ms,
            version = excluded.version`)
      }
      const mandates = [...ws.dirtyMandates].map((id) => mandateRow(ws.mandate(id)!))
      for (const rows of chunks(mandates)) {
        yield* run(sql`INSERT INTO mandates ${sql.insert(rows)}
          ON CONFLICT (id) DO UPDATE SET remaining = excluded.remaining, revoked = excluded.revoked`)
      }
    })

  /**
   * An expired key's row is replaced: it was read under lock, so deleting it takes
   * no one's live key. A new key is a plain insert: a concurrent batch inserting the
   * same one fails on the primary key and is retried, then sees this one.
   */
  const writeIdempotencyKeys = (ws: WorkingSet, run: Run) =>
    Effect.gen(function*() {
      for (const old of ws.replacedKeys) {
        yield* run(sql`DELETE FROM idempotency_keys WHERE owner = ${old.owner} AND route = ${old.route} AND key = ${old.key}
          AND expires_at_ms = ${old.expiresAtMs}`)
      }
      for (const rows of chunks(ws.newKeys)) {
        yield* run(sql`INSERT INTO idempotency_keys ${
          sql.insert(rows.map((k) => ({
            owner: k.owner,
            route: k.route,
            key: k.key,
            request_sha256: k.requestSha256,
            escrow_id: k.escrowId,
            created_at_ms: k.createdAtMs,
            expires_at_ms: k.expiresAtMs
          })))
        }`)
      }
    })

  /** The append-only history: postings (numbered legs of each transfer) and escrow events. */
  const appendHistory = (ws: WorkingSet, run: Run) =>
    Effect.gen(function*() {
      const legs = new Map<string, number>()
      const postings = ws.postings.map((p) => {
        const leg = legs.get(p.transferId) ?? 0
        legs.set(p.transferId, leg + 1)
        return {
          transfer_id: p.transferId,
          leg,
          account: p.account,
          amount: m(p.amount),
          kind: p.kind,
          escrow_id: p.escrowId,
          counterparty: p.counterparty,
          region: p.region,
          at_ms: p.atMs
        }
      })
      for (const rows of chunks(postings)) yield* run(sql`INSERT INTO postings ${sql.insert(rows)}`)
      const events = ws.events.map((e) => ({
        escrow_id: e.escrowId,
        seq: e.seq,
        kind: e.kind,
        from_status: e.fromStatus,
        to_status: e.toStatus,
        amount: m(e.amount),
        region: e.region,
        at_ms: e.atMs
      }))
      for (const rows of chunks(events)) yield* run(sql`INSERT INTO escrow_events ${sql.insert(rows)}`)
    })

  const writeFaucet = (ws: WorkingSet, run: Run) =>
    Effect.gen(function*() {
      for (const rows of chunks(ws.claims)) {
        yield* run(sql`INSERT INTO faucet_claims ${
          sql.insert(rows.map((c) => ({ wallet: c.wallet, agent_name: c.agentName, amount: m(c.amount), day: c.day, at_ms: c.atMs })))
        }`)
      }
      for (const day of ws.dirtyFaucetDays) {
        yield* run(sql`INSERT INTO faucet_days ${sql.insert({ day, claims: ws.claimsOn(day) })}
          ON CONFLICT (day) DO UPDATE SET claims = excluded.claims`)
      }
    })

  return (ws: WorkingSet, nowMs: number, run: Run) =>
    Effect.gen(function*() {
      yield* writeRecords(ws, nowMs, run)
      yield* writeIdempotencyKeys(ws, run)
      yield* appendHistory(ws, run)
      yield* writeFaucet(ws, run)
    })
}
