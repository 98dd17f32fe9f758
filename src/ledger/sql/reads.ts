/** The SQL ledger's reads: single rows by key, pages of escrows, balances, and the full check. */
import { Clock, Effect } from "effect"
import { AgentNotFound, EscrowNotFound, MandateNotFound } from "../../domain/errors.js"
import type { EscrowId, WalletAddress } from "../../domain/ids.js"
import { Limits } from "../../domain/limits.js"
import { aggregatePostings, checkInvariants } from "../invariants.js"
import type { LedgerShape } from "../Ledger.js"
import { big, num, type Row, toAgent, toEscrow, toEvent, toMandate, usdc } from "../rows.js"
import type { LedgerStorage } from "./storage.js"

export type Reads = Pick<
  LedgerShape,
  | "getEscrow"
  | "listEscrows"
  | "escrowHistory"
  | "getMandate"
  | "findLiveMandate"
  | "getAgent"
  | "balance"
  | "systemBalance"
  | "verify"
>

export const make = ({ dialect, orUnavailable, sql }: LedgerStorage): Reads => {
  const getEscrow = (id: EscrowId) =>
    orUnavailable(sql<Row>`SELECT * FROM escrows WHERE id = ${id}`).pipe(
      Effect.flatMap((rows) =>
        rows.length === 0 ? Effect.fail(new EscrowNotFound({ escrowId: id })) : Effect.succeed(toEscrow(rows[0]!))
      )
    )

  const getAgent = (wallet: WalletAddress) =>
    orUnavailable(sql<Row>`SELECT * FROM agents WHERE wallet = ${wallet}`).pipe(
      Effect.flatMap((rows) => rows.length === 0 ? Effect.fail(new AgentNotFound({ wallet })) : Effect.succeed(toAgent(rows[0]!)))
    )

  const listEscrows: Reads["listEscrows"] = (query) =>
    Effect.gen(function*() {
      const limit = Math.min(Math.max(query.limit ?? Limits.pageSizeDefault, 1), Limits.pageSizeMax)
      const where = [
        query.wallet === undefined ? undefined : sql`(payer = ${query.wallet} OR payee = ${query.wallet})`,
        query.status === undefined ? undefined : sql`status = ${query.status}`,
        query.region === undefined ? undefined : sql`region = ${query.region}`,
        query.cursor === undefined ? undefined : sql`id > ${query.cursor}`
      ].filter((f) => f !== undefined)
      const rows = yield* orUnavailable(
        sql<Row>`SELECT * FROM escrows ${where.length > 0 ? sql`WHERE ${sql.and(where)}` : sql``} ORDER BY id LIMIT ${limit + 1}`
      )
      const escrows = rows.slice(0, limit).map(toEscrow)
      return { escrows, nextCursor: rows.length > limit ? escrows[escrows.length - 1]!.id : null }
    })

  const findLiveMandate: Reads["findLiveMandate"] = (payer, payee) =>
    Effect.gen(function*() {
      const nowMs = yield* Clock.currentTimeMillis
      const rows = yield* orUnavailable(sql<Row>`SELECT * FROM mandates
        WHERE payer = ${payer} AND payee = ${payee} AND revoked = 0 AND (expires_at_ms IS NULL OR expires_at_ms > ${nowMs})
        ORDER BY id DESC LIMIT 1`)
      return rows.length === 0 ? null : toMandate(rows[0]!)
    })

  const balance: Reads["balance"] = (wallet) =>
    Effect.gen(function*() {
      const [account, locked] = yield* orUnavailable(Effect.all([
        sql<Row>`SELECT balance FROM accounts WHERE id = ${wallet}`,
        sql<Row>`SELECT COALESCE(SUM(amount - released - refunded), 0) AS locked FROM escrows
          WHERE payer = ${wallet} AND status = 'pending'`
      ]))
      return { wallet, available: usdc(account[0]?.balance ?? 0n), locked: usdc(locked[0]?.locked ?? 0n) }
    })

  /** Aggregated in SQL so a large ledger is checked without loading every posting. */
  const verify: Reads["verify"] = Effect.gen(function*() {
    const [accounts, postingTotals, unbalanced, legs, escrows, mandates, postingCount] = yield* orUnavailable(dialect.consistentReads(Effect.all([
      sql<Row>`SELECT id, balance FROM accounts`,
      sql<Row>`SELECT account, SUM(amount) AS total FROM postings GROUP BY account`,
      sql<Row>`SELECT transfer_id, SUM(amount) AS total FROM postings GROUP BY transfer_id HAVING SUM(amount) <> 0`,
      sql<Row>`SELECT escrow_id, account, kind, SUM(amount) AS total FROM postings
        WHERE escrow_id IS NOT NULL GROUP BY escrow_id, account, kind`,
      sql<Row>`SELECT * FROM escrows`,
      sql<Row>`SELECT * FROM mandates`,
      sql<Row>`SELECT COUNT(*) AS n FROM postings`
    ])))
    const aggregates = aggregatePostings([])
    for (const row of postingTotals) aggregates.accountTotals.set(row.account as string, big(row.total))
    for (const row of unbalanced) aggregates.transferTotals.set(row.transfer_id as string, big(row.total))
    for (const row of legs) {
      aggregates.addEscrowLeg(row.escrow_id as string, row.account as string, row.kind as string, big(row.total))
    }
    const balances = new Map(accounts.map((row) => [row.id as string, big(row.balance)]))
    return {
      accounts: accounts.length,
      postings: num(postingCount[0]!.n),
      escrows: escrows.length,
      violations: checkInvariants({ balances, aggregates, escrows: escrows.map(toEscrow), mandates: mandates.map(toMandate) })
    }
  })

  return {
    getEscrow,
    listEscrows,
    escrowHistory: (id) =>
      Effect.map(orUnavailable(sql<Row>`SELECT * FROM escrow_events WHERE escrow_id = ${id} ORDER BY seq`), (rows) => rows.map(toEvent)),
    getMandate: (id) =>
      orUnavailable(sql<Row>`SELECT * FROM mandates WHERE id = ${id}`).pipe(
        Effect.flatMap((rows) =>
          rows.length === 0 ? Effect.fail(new MandateNotFound({ mandateId: id })) : Effect.succeed(toMandate(rows[0]!))
        )
      ),
    findLiveMandate,
    getAgent,
    balance,
    systemBalance: (account) =>
      Effect.map(orUnavailable(sql<Row>`SELECT balance FROM accounts WHERE id = ${account}`), (rows) => big(rows[0]?.balance ?? 0n)),
    verify
  }
}
