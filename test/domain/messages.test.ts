/**
 * Every error that names an amount prints it as USDC with 6 places, while its
 * fields keep the exact micros; the REST wire sends the same text.
 */
import { describe, expect, it } from "vitest"
import { ChargeExceedsMaximum } from "../../src/agents/errors.js"
import * as Errors from "../../src/domain/errors.js"
import { toWire } from "../../src/http/errors.js"
import { PayerCannotCover } from "../../src/settlement/errors.js"

const wallet = "0x" + "a".repeat(40)

describe("amounts in error messages", () => {
  it.each([
    [
      new Errors.InsufficientFunds({ wallet, requiredMicros: 5_000_000n, availableMicros: 1_000_000n }),
      `wallet ${wallet} has 1.000000 USDC available, 5.000000 required`
    ],
    [
      new Errors.ReleaseExceedsRemaining({ escrowId: "esc_1", requestedMicros: 4_500_000n, remainingMicros: 4n }),
      "escrow esc_1 has 0.000004 USDC locked, 4.500000 requested"
    ],
    [
      new Errors.FaucetTreasuryEmpty({ requiredMicros: 1_000_000n, availableMicros: 999_999n }),
      "the faucet treasury holds 0.999999 USDC, 1.000000 required"
    ],
    [
      new Errors.BudgetExceeded({ cap: "per-run", limitMicros: 8_000_000n, spentMicros: 7_500_000n, requestedMicros: 2_500_000n }),
      "per-run cap of 8.000000 USDC: 7.500000 spent, 2.500000 more requested"
    ],
    [
      new PayerCannotCover({ wallet, requiredMicros: 1_230n }),
      `wallet ${wallet} cannot cover the 0.001230 USDC required`
    ],
    [
      new ChargeExceedsMaximum({ agent: "llm", chargeMicros: 1n, chargedMicros: 500_000n, maximumMicros: 500_000n }),
      "agent llm charged 0.000001 USDC on top of 0.500000 USDC, beyond its maximum of 0.500000 USDC"
    ]
  ])("%s", (error, message) => {
    expect(error.message).toBe(message)
  })

  it("the fields keep the exact micros", () => {
    const error = new Errors.InsufficientFunds({ wallet, requiredMicros: 5_000_001n, availableMicros: 1n })
    expect([error.requiredMicros, error.availableMicros]).toEqual([5_000_001n, 1n])
  })

  it("the REST wire sends the domain's own message, and the amounts as 6-place strings in details", () => {
    const poor = new Errors.InsufficientFunds({ wallet, requiredMicros: 5_000_000n, availableMicros: 1_000_000n })
    expect(toWire(poor)).toMatchObject({
      error: "insufficient_funds",
      message: poor.message,
      details: { required_usdc: "5.000000", available_usdc: "1.000000" }
    })
    const over = new Errors.ReleaseExceedsRemaining({ escrowId: "esc_1", requestedMicros: 2n, remainingMicros: 1n })
    expect(toWire(over)).toMatchObject({ message: over.message, details: { requested_usdc: "0.000002", remaining_usdc: "0.000001" } })
  })
})
