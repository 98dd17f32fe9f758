/**
 * Fees and referral shares, in integers.
 *
 * Rates are parts per million (ppm): 1% = 10_000 ppm, 15% = 150_000 ppm.
 * Rounding rule, for a released part `p`:
 *
 *   fee      = floor(p × feePpm / 10^6)          borne by the payee
 *   net      = p − fee                            paid to the payee
 *   share_i  = floor(fee × tierPpm_i / 10^6)      to each referrer, per side and level
 *   platform = fee − Σ share_i                    kept by the platform
 *
 * so net + fee = p and platform + Σ share = fee exactly; every rounding remainder
 * stays with the payee (fee) or the platform (shares).
 *
 * Worked example (1% fee, 15% referral, both parties referred): p = 1,000 USDC
 * = 1,000,000,000 micro. fee = 10,000,000 (10 USDC); each referrer gets
 * 1,500,000 (1.50 USDC); the platform keeps 7,000,000 (7 USDC); the payee nets
 * 990,000,000 (990 USDC).
 */
import { Either } from "effect"
import { InvalidInput } from "./errors.js"
import type { WalletAddress } from "./ids.js"

export const PPM = 1_000_000n

export interface FeeSchedule {
  /** The escrow fee, e.g. 10_000 (1%). */
  readonly feePpm: number
  /**
   * Referral shares of the fee by level, per side: [150_000] is the default, one level
   * of 15%; [150_000, 50_000] pays the referrer's referrer 5% as well. Both sides
   * (payer's and payee's referrers) are paid, so 2 × Σ tiers must not exceed 100%.
   */
  readonly referralTiersPpm: ReadonlyArray<number>
}

export const defaultFeeSchedule: FeeSchedule = { feePpm: 10_000, referralTiersPpm: [150_000] }

/** Parses a rate such as "0.01" or "0.15" into ppm, exactly. */
export const parseRatePpm = (field: string, text: string): Either.Either<number, InvalidInput> => {
  const match = /^(0|1)(?:\.(\d{1,6}))?$/.exec(text.trim())
  const fail = (why: string) => Either.left(new InvalidInput({ field, message: `${field}=${JSON.stringify(text)}: ${why}` }))
  if (match === null) return fail("expected a fraction between 0 and 1 with at most 6 decimals, such as 0.01")
  const ppm = Number(match[1]) * 1_000_000 + Number((match[2] ?? "").padEnd(6, "0"))
  if (ppm > 1_000_000) return fail("must not exceed 1")
  return Either.right(ppm)
}

export const validateSchedule = (schedule: FeeSchedule): Either.Either<FeeSchedule, InvalidInput> => {
  const { feePpm, referralTiersPpm } = schedule
  if (!Number.isInteger(feePpm) || feePpm < 0 || feePpm > 1_000_000) {
    return Either.left(new InvalidInput({ field: "ESCROW_FEE", message: `fee ${feePpm} ppm must be between 0 and 1,000,000` }))
  }
  const perSide = referralTiersPpm.reduce((a, b) => a + b, 0)
  if (referralTiersPpm.some((t) => !Number.isInteger(t) || t < 0) || 2 * perSide > 1_000_000) {
    return Either.left(
      new InvalidInput({
        field: "REFERRAL_RATE",
        message: `referral tiers ${referralTiersPpm.join(",")} ppm pay both sides, so their sum must not exceed 50% of the fee`
      })
    )
  }
  return Either.right(schedule)
}

export interface Share {
  readonly wallet: WalletAddress
  readonly side: "payer" | "payee"
  readonly level: number
  readonly amount: bigint
}

export interface Split {
  readonly gross: bigint
  readonly fee: bigint
  readonly net: bigint
  readonly platform: bigint
  readonly shares: ReadonlyArray<Share>
}

export const feeOf = (schedule: FeeSchedule, gross: bigint): bigint => (gross * BigInt(schedule.feePpm)) / PPM

/**
 * Splits a released part among payee, referrers and platform.
 * `payerChain` / `payeeChain` list each party's referrers, nearest first.
 */
export const split = (
  schedule: FeeSchedule,
  gross: bigint,
  payerChain: ReadonlyArray<WalletAddress>,
  payeeChain: ReadonlyArray<WalletAddress>
): Split => {
  const fee = feeOf(schedule, gross)
  const shares: Array<Share> = []
  const pay = (side: "payer" | "payee", chain: ReadonlyArray<WalletAddress>) =>
    schedule.referralTiersPpm.forEach((tierPpm, level) => {
      const wallet = chain[level]
      if (wallet === undefined) return
      const amount = (fee * BigInt(tierPpm)) / PPM
      if (amount > 0n) shares.push({ wallet, side, level, amount })
    })
  pay("payer", payerChain)
  pay("payee", payeeChain)
  const platform = fee - shares.reduce((total, share) => total + share.amount, 0n)
  return { gross, fee, net: gross - fee, platform, shares }
}
