/**
 * The ledger's invariants, checked over plain rows so that both ledgers (and the
 * property tests) use one definition. `SqlLedger.verify` streams its tables into
 * this; `MemoryLedger.verify` passes its state directly.
 */
import { type EscrowRecord, type MandateRecord, remaining } from "../domain/Escrow.js"
import { SystemAccount } from "../domain/ids.js"
import { format } from "../domain/Usdc.js"
import type { Violation } from "./Ledger.js"

export interface PostingRow {
  readonly transferId: string
  readonly account: string
  readonly amount: bigint
  readonly kind: string
  readonly escrowId: string | null
}

/** Posting sums the invariants need, built from rows in memory or by SQL `GROUP BY`. */
export class PostingAggregates {
  readonly accountTotals = new Map<string, bigint>()
  /** Sum per transfer; SQL fills in only the non-zero ones. */
  readonly transferTotals = new Map<string, bigint>()
  readonly escrowLegs = new Map<string, { lock: bigint; out: bigint; refund: bigint; fee: bigint }>()

  addEscrowLeg(escrowId: string, account: string, kind: string, amount: bigint): void {
    const e = this.escrowLegs.get(escrowId) ?? { lock: 0n, out: 0n, refund: 0n, fee: 0n }
    if (account === SystemAccount.escrowHolding) {
      if (kind === "lock") e.lock += amount
      else if (kind === "payout") e.out -= amount
      else if (kind === "refund") e.refund -= amount
    } else if (kind === "fee" || kind === "referral") {
      e.fee += amount
    }
    this.escrowLegs.set(escrowId, e)
  }
}

export const aggregatePostings = (postings: Iterable<PostingRow>): PostingAggregates => {
  const aggregates = new PostingAggregates()
  for (const p of postings) {
    aggregates.accountTotals.set(p.account, (aggregates.accountTotals.get(p.account) ?? 0n) + p.amount)
    aggregates.transferTotals.set(p.transferId, (aggregates.transferTotals.get(p.transferId) ?? 0n) + p.amount)
    if (p.escrowId !== null) aggregates.addEscrowLeg(p.escrowId, p.account, p.kind, p.amount)
  }
  return aggregates
}

/** Amounts in violations read as every message does: USDC with 6 places. */
const usdc = (micros: bigint) => format(micros, { unit: true })

export const checkInvariants = (input: {
  readonly balances: ReadonlyMap<string, bigint>
  readonly aggregates: PostingAggregates
  readonly escrows: Iterable<EscrowRecord>
  readonly mandates: Iterable<MandateRecord>
}): Array<Violation> => {
  const violations: Array<Violation> = []
  const fail = (invariant: string, detail: string) => {
    if (violations.length < 1_000) violations.push({ invariant, detail })
  }
  const { accountTotals: fromPostings, transferTotals: transfers, escrowLegs: perEscrow } = input.aggregates

  for (const [transferId, total] of transfers) {
    if (total !== 0n) fail("transfer balances", `transfer ${transferId} sums to ${usdc(total)}`)
  }
  let total = 0n
  for (const [account, balance] of input.balances) {
    total += balance
    const derived = fromPostings.get(account) ?? 0n
    if (derived !== balance) fail("balance equals postings", `${account}: stored ${usdc(balance)}, postings ${usdc(derived)}`)
    if (balance < 0n && account !== SystemAccount.external) fail("no negative balance", `${account}: ${usdc(balance)}`)
  }
  for (const [account, derived] of fromPostings) {
    if (!input.balances.has(account) && derived !== 0n) fail("balance equals postings", `${account}: no row, postings ${usdc(derived)}`)
  }
  if (total !== 0n) fail("conservation", `all balances sum to ${usdc(total)}, not 0`)

  let lockedTotal = 0n
  const underMandate = new Map<string, bigint>()
  for (const escrow of input.escrows) {
    const left = remaining(escrow)
    const e = perEscrow.get(escrow.id) ?? { lock: 0n, out: 0n, refund: 0n, fee: 0n }
    if (left < 0n) fail("escrow parts", `${escrow.id}: released ${usdc(escrow.released)} + refunded ${usdc(escrow.refunded)} > amount ${usdc(escrow.amount)}`)
    if (escrow.status === "pending") lockedTotal += left
    else if (left !== 0n) fail("escrow settled", `${escrow.id} is ${escrow.status} with ${usdc(left)} still locked`)
    if (escrow.status === "released" && escrow.refunded !== 0n) fail("escrow settled", `${escrow.id} released but refunded ${usdc(escrow.refunded)}`)
    if ((escrow.status === "cancelled" || escrow.status === "expired") && left === 0n && escrow.settledAtMs === null) {
      fail("escrow settled", `${escrow.id} is ${escrow.status} without a settlement time`)
    }
    if (e.lock !== escrow.amount) fail("escrow postings", `${escrow.id}: locked ${usdc(e.lock)}, amount ${usdc(escrow.amount)}`)
    if (e.out !== escrow.released) fail("escrow postings", `${escrow.id}: paid out ${usdc(e.out)}, released ${usdc(escrow.released)}`)
    if (e.refund !== escrow.refunded) fail("escrow postings", `${escrow.id}: refunded ${usdc(e.refund)}, record says ${usdc(escrow.refunded)}`)
    if (e.fee !== escrow.feePaid) fail("escrow postings", `${escrow.id}: fee legs ${usdc(e.fee)}, record says ${usdc(escrow.feePaid)}`)
    if (escrow.mandateId !== null) {
      underMandate.set(escrow.mandateId, (underMandate.get(escrow.mandateId) ?? 0n) + escrow.amount - escrow.refunded)
    }
  }
  const holding = input.balances.get(SystemAccount.escrowHolding) ?? 0n
  if (holding !== lockedTotal) fail("holding equals pending", `holding ${usdc(holding)}, pending escrows lock ${usdc(lockedTotal)}`)

  for (const mandate of input.mandates) {
    const used = underMandate.get(mandate.id) ?? 0n
    if (mandate.remaining !== mandate.budget - used) {
      fail("mandate budget", `${mandate.id}: remaining ${usdc(mandate.remaining)}, budget ${usdc(mandate.budget)} less used ${usdc(used)}`)
    }
    if (mandate.remaining < 0n) fail("mandate budget", `${mandate.id} overspent: remaining ${usdc(mandate.remaining)}`)
  }
  return violations
}
