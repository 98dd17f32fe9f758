/** What an orchestrator earned, spent and paid whom, and who referred whom: all read from the ledger. */
import { Effect } from "effect"
import type { AgentNotFound } from "../../domain/errors.js"
import type { AgentRecord, EscrowRecord } from "../../domain/Escrow.js"
import type { EscrowId, WalletAddress } from "../../domain/ids.js"
import type { Usdc } from "../../domain/Usdc.js"
import { Accounts, type AccountsShape, type ReadError } from "../Accounts.js"
import { type Earnings, type EarningsTotals, Limits, type Payment, type PaymentOutcome } from "./contract.js"
import { Limits as InputLimits } from "../../domain/limits.js"

/** Referral income, spending, revenue and net of the orchestrator `identity`, in total and per region. */
export const earnings = (
  accounts: AccountsShape,
  identity: AgentRecord
): Effect.Effect<Earnings, AgentNotFound | ReadError> =>
  Effect.gen(function*() {
    const [activity, referrals] = yield* Effect.all([accounts.activity(identity.wallet), accounts.referrals(identity.wallet)])
    const totals = (t: { spent: Usdc; revenue: Usdc; feesPaid: Usdc; referralIncome: Usdc }): EarningsTotals => ({
      referralIncome: t.referralIncome,
      spending: t.spent,
      revenue: t.revenue,
      feesPaid: t.feesPaid,
      net: t.revenue + t.referralIncome - t.spent
    })
    const byRegion: Record<string, EarningsTotals> = {}
    for (const [region, t] of Object.entries(activity.byRegion)) byRegion[region] = totals(t)
    return {
      agent: referrals.agent,
      ...totals(activity),
      byRegion,
      referred: referrals.referred.map((r) => ({ agent: r.agent, earned: r.earned }))
    } satisfies Earnings
  })

/** What an escrow came to for its payer and payee (see `PaymentOutcome`). */
export const outcomeOf = (escrow: EscrowRecord): PaymentOutcome => {
  if (escrow.status === "pending") {
    return { _tag: "Pending", paid: escrow.released, locked: (escrow.amount - escrow.released - escrow.refunded) as Usdc }
  }
  if (escrow.released === 0n) return { _tag: "Refunded", refunded: escrow.refunded }
  if (escrow.refunded === 0n) return { _tag: "Paid", paid: escrow.released }
  return { _tag: "PartlyPaid", paid: escrow.released, refunded: escrow.refunded }
}

/** Escrows the wallet of `identity` paid or was paid by, oldest first, with both parties' names. */
export const payments = (
  accounts: AccountsShape,
  identity: AgentRecord,
  options: { readonly limit?: number } = {}
): Effect.Effect<ReadonlyArray<Payment>, ReadError> =>
  Effect.gen(function*() {
    const limit = Math.min(Math.max(Math.trunc(options.limit ?? 1_000), 1), Limits.maxPayments)
    const names = new Map<string, string>([[identity.wallet, identity.name]])
    const nameOf = (wallet: WalletAddress) =>
      names.has(wallet)
        ? Effect.succeed(names.get(wallet)!)
        : accounts.getAgent(wallet).pipe(
          Effect.map((a) => a.name),
          Effect.catchTag("AgentNotFound", () => Effect.succeed(wallet as string)),
          Effect.tap((name) => Effect.sync(() => names.set(wallet, name)))
        )
    const out: Array<Payment> = []
    let cursor: EscrowId | undefined
    while (out.length < limit) {
      const page = yield* accounts.escrows({ wallet: identity.wallet, limit: Math.min(InputLimits.pageSizeMax, limit - out.length), cursor }).pipe(
        // Refused only for a query naming no wallet, and this one names its own.
        Effect.catchTag("InvalidInput", Effect.die)
      )
      for (const e of page.escrows) {
        out.push({
          escrowId: e.id,
          payer: e.payer,
          payerName: yield* nameOf(e.payer),
          payee: e.payee,
          payeeName: yield* nameOf(e.payee),
          locked: e.amount,
          released: e.released,
          fee: e.feePaid,
          refunded: e.refunded,
          outcome: outcomeOf(e),
          status: e.status,
          description: e.description,
          region: e.region,
          createdAtMs: e.createdAtMs
        })
      }
      if (page.nextCursor === null || page.escrows.length === 0) break
      cursor = page.nextCursor
    }
    return out
  })

/**
 * The referral chain above a wallet, nearest first: who referred it, who referred
 * them, … (at most 32 levels).
 */
export const referralChain = (
  wallet: WalletAddress
): Effect.Effect<ReadonlyArray<AgentRecord>, AgentNotFound | ReadError, Accounts> =>
  Effect.gen(function*() {
    const accounts = yield* Accounts
    const chain: Array<AgentRecord> = []
    let current = yield* accounts.getAgent(wallet)
    while (current.referrer !== null && chain.length < Limits.maxReferralDepth) {
      current = yield* accounts.getAgent(current.referrer)
      chain.push(current)
    }
    return chain
  })
