/**
 * The fee arithmetic an escrow's view shows: what its payee bears and gets under a
 * fee schedule. Kept beside the schedule, out of the transports that print it.
 */
import { type FeeSchedule, feeOf } from "./FeeSchedule.js"

/** What an escrow's payee bears and gets, in micro-USDC (see `payeeTerms`). */
export interface PayeeTerms {
  readonly remainingMicros: bigint
  readonly feeMicros: bigint
  readonly netMicros: bigint
}

/**
 * What the payee of an escrow bears and gets: fees already taken on released
 * parts, plus (while pending) what releasing the remainder in full would take.
 * For a fresh escrow that is 1% and 99% of the amount.
 */
export const payeeTerms = (
  schedule: FeeSchedule,
  escrow: {
    readonly amount: bigint
    readonly released: bigint
    readonly refunded: bigint
    readonly feePaid: bigint
    readonly status: string
  }
): PayeeTerms => {
  const remainingMicros = escrow.amount - escrow.released - escrow.refunded
  const pending = escrow.status === "pending"
  const feeMicros = escrow.feePaid + (pending ? feeOf(schedule, remainingMicros) : 0n)
  const grossMicros = escrow.released + (pending ? remainingMicros : 0n)
  return { remainingMicros, feeMicros, netMicros: grossMicros - feeMicros }
}
