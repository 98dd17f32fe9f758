import { Either } from "effect"
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { newWalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { defaultFeeSchedule, feeOf, parseRatePpm, split, validateSchedule } from "../../src/domain/FeeSchedule.js"

const A = newWalletAddress()
const B = newWalletAddress()
const C = newWalletAddress()
const D = newWalletAddress()

describe("FeeSchedule.split", () => {
  it("the worked example: 1,000 USDC, both parties referred", () => {
    const parts = split(defaultFeeSchedule, Usdc.make("1000"), [A], [B])
    expect(parts.fee).toBe(Usdc.make("10"))
    expect(parts.net).toBe(Usdc.make("990"))
    expect(parts.platform).toBe(Usdc.make("7"))
    expect(parts.shares).toEqual([
      { wallet: A, side: "payer", level: 0, amount: Usdc.make("1.5") },
      { wallet: B, side: "payee", level: 0, amount: Usdc.make("1.5") }
    ])
  })

  it("only the referred side is paid; the platform keeps the other share", () => {
    const payeeOnly = split(defaultFeeSchedule, Usdc.make("1000"), [], [B])
    expect(payeeOnly.shares).toEqual([{ wallet: B, side: "payee", level: 0, amount: Usdc.make("1.5") }])
    expect(payeeOnly.platform).toBe(Usdc.make("8.5"))
    const none = split(defaultFeeSchedule, Usdc.make("1000"), [], [])
    expect(none.shares).toEqual([])
    expect(none.platform).toBe(Usdc.make("10"))
  })

  it("rounds down: a tiny part pays no fee, and a fee too small to share stays with the platform", () => {
    // 99 micro × 1% = 0.99 micro → fee 0, payee keeps everything
    expect(split(defaultFeeSchedule, 99n, [A], [B])).toMatchObject({ fee: 0n, net: 99n, platform: 0n, shares: [] })
    // 100 micro → fee 1 micro; 15% of 1 micro rounds to 0 → no share legs, platform 1
    expect(split(defaultFeeSchedule, 100n, [A], [B])).toMatchObject({ fee: 1n, net: 99n, platform: 1n, shares: [] })
    // 1,000 micro → fee 10 micro; 15% = 1.5 → 1 micro each, platform 8
    const parts = split(defaultFeeSchedule, 1_000n, [A], [B])
    expect(parts).toMatchObject({ fee: 10n, net: 990n, platform: 8n })
    expect(parts.shares.map((s) => s.amount)).toEqual([1n, 1n])
  })

  it("multi-level tiers pay the grandparent on each side, only as deep as the tiers go", () => {
    const schedule = { feePpm: 10_000, referralTiersPpm: [150_000, 50_000] }
    const parts = split(schedule, Usdc.make("1000"), [A, B, D], [C])
    expect(parts.shares).toEqual([
      { wallet: A, side: "payer", level: 0, amount: Usdc.make("1.5") },
      { wallet: B, side: "payer", level: 1, amount: Usdc.make("0.5") },
      { wallet: C, side: "payee", level: 0, amount: Usdc.make("1.5") }
    ])
    expect(parts.platform).toBe(Usdc.make("6.5"))
  })

  it("feeOf is floor(gross × feePpm / 10^6)", () => {
    expect(feeOf(defaultFeeSchedule, Usdc.make("1000"))).toBe(Usdc.make("10"))
    expect(feeOf({ feePpm: 0, referralTiersPpm: [] }, Usdc.make("1000"))).toBe(0n)
    expect(feeOf({ feePpm: 1_000_000, referralTiersPpm: [] }, 7n)).toBe(7n)
    expect(feeOf({ feePpm: 333_333, referralTiersPpm: [] }, 10n)).toBe(3n)
  })

  const tiersArb = fc
    .array(fc.integer({ min: 0, max: 500_000 }), { maxLength: 4 })
    .filter((tiers) => 2 * tiers.reduce((a, b) => a + b, 0) <= 1_000_000)
  const chainArb = fc.array(fc.constantFrom(A, B, C, D), { maxLength: 5 })

  it("property: net + fee == gross, platform + Σ shares == fee, nothing negative", () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: Usdc.MAX_MICROS }),
        fc.integer({ min: 0, max: 1_000_000 }),
        tiersArb,
        chainArb,
        chainArb,
        (gross, feePpm, referralTiersPpm, payerChain, payeeChain) => {
          const schedule = { feePpm, referralTiersPpm }
          expect(Either.isRight(validateSchedule(schedule))).toBe(true)
          const parts = split(schedule, gross, payerChain, payeeChain)
          const shared = parts.shares.reduce((t, s) => t + s.amount, 0n)
          expect(parts.net + parts.fee).toBe(gross)
          expect(parts.platform + shared).toBe(parts.fee)
          expect(parts.fee).toBe((gross * BigInt(feePpm)) / 1_000_000n)
          expect(parts.net >= 0n && parts.platform >= 0n).toBe(true)
          for (const share of parts.shares) {
            expect(share.amount > 0n).toBe(true)
            expect(share.amount).toBe((parts.fee * BigInt(referralTiersPpm[share.level]!)) / 1_000_000n)
            const chain = share.side === "payer" ? payerChain : payeeChain
            expect(share.wallet).toBe(chain[share.level])
          }
          // at most one share per side and level, never deeper than the tiers or the chain
          expect(parts.shares.length).toBeLessThanOrEqual(
            Math.min(referralTiersPpm.length, payerChain.length) + Math.min(referralTiersPpm.length, payeeChain.length)
          )
        }
      ),
      { numRuns: 5_000 }
    )
  })
})

describe("FeeSchedule.validateSchedule", () => {
  it("accepts the default, one level of 50%, and tiers summing to 50%", () => {
    expect(Either.isRight(validateSchedule(defaultFeeSchedule))).toBe(true)
    expect(Either.isRight(validateSchedule({ feePpm: 10_000, referralTiersPpm: [500_000] }))).toBe(true)
    expect(Either.isRight(validateSchedule({ feePpm: 10_000, referralTiersPpm: [150_000, 50_000, 300_000] }))).toBe(true)
    expect(Either.isRight(validateSchedule({ feePpm: 0, referralTiersPpm: [] }))).toBe(true)
    expect(Either.isRight(validateSchedule({ feePpm: 1_000_000, referralTiersPpm: [] }))).toBe(true)
  })

  it.each([
    [[500_001]],
    [[150_000, 350_001]],
    [[-1]],
    [[1.5]],
    [[Number.NaN]]
  ])("rejects referral tiers %j (2 × Σ tiers must be ≤ 100%% of the fee)", (referralTiersPpm) => {
    const result = validateSchedule({ feePpm: 10_000, referralTiersPpm })
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.field).toBe("REFERRAL_RATE")
  })

  it.each([-1, 1_000_001, 0.5, Number.NaN])("rejects the fee %d ppm", (feePpm) => {
    const result = validateSchedule({ feePpm, referralTiersPpm: [] })
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) expect(result.left.field).toBe("ESCROW_FEE")
  })
})

describe("FeeSchedule.parseRatePpm", () => {
  it.each([
    ["0.01", 10_000],
    ["0.15", 150_000],
    ["0.05", 50_000],
    ["0", 0],
    ["1", 1_000_000],
    ["1.0", 1_000_000],
    ["0.000001", 1],
    [" 0.5 ", 500_000]
  ])("parses %j as %d ppm", (text, ppm) => {
    expect(parseRatePpm("ESCROW_FEE", text)).toEqual(Either.right(ppm))
  })

  it.each(["0.0000001", "1.5", "1.000001", "2", "-0.1", ".15", "15%", "0,15", "1e-2", "", "abc"])(
    "rejects %j, naming the field",
    (text) => {
      const result = parseRatePpm("REFERRAL_RATE", text)
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left.field).toBe("REFERRAL_RATE")
        expect(result.left.message).toContain("REFERRAL_RATE")
      }
    }
  )

  it("property: every ppm value round-trips through its 6-place text", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1_000_000 }), (ppm) => {
        const text = `${Math.floor(ppm / 1_000_000)}.${String(ppm % 1_000_000).padStart(6, "0")}`
        expect(parseRatePpm("X", text)).toEqual(Either.right(ppm))
      }),
      { numRuns: 2_000 }
    )
  })
})
