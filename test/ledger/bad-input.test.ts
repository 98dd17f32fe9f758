/**
 * Bad input: every invalid call returns a typed error naming the field (or the
 * wallet, escrow, mandate or code it is about) and leaves every balance, posting
 * and escrow exactly as it was.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Duration, Effect, Either, Layer, Schema } from "effect"
import type { EscrowTerms } from "../../src/domain/Escrow.js"
import { type EscrowId, type MandateId, newWalletAddress, type ReferralCode, type WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Limits } from "../../src/ledger/engine.js"
import { Ledger, type LedgerShape } from "../../src/ledger/Ledger.js"
import { ledgerImplementations } from "./implementations.js"
import { snapshot } from "./support.js"

const u = Usdc.make
/** Amounts a typed caller cannot build but an untyped one (JS, a cast) can pass. */
const raw = (micros: bigint) => micros as Usdc.Usdc

interface Ctx {
  readonly ledger: LedgerShape
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  readonly stranger: WalletAddress
  readonly escrowId: EscrowId
  readonly mandateId: MandateId
  readonly terms: (extra?: Partial<EscrowTerms>) => EscrowTerms
}

interface Case {
  readonly name: string
  readonly call: (ctx: Ctx) => Effect.Effect<unknown, { readonly _tag: string }>
  /** What the error must match (`_tag` and the field or id it names). */
  readonly expected: (ctx: Ctx) => Record<string, unknown>
}

const cases: ReadonlyArray<Case> = [
  // createEscrow: amounts
  { name: "create: zero amount", call: (c) => c.ledger.createEscrow(c.terms({ amount: raw(0n) })), expected: () => ({ _tag: "InvalidInput", field: "amount_usdc" }) },
  { name: "create: negative amount", call: (c) => c.ledger.createEscrow(c.terms({ amount: raw(-1_000_000n) })), expected: () => ({ _tag: "InvalidInput", field: "amount_usdc" }) },
  { name: "create: amount over the maximum", call: (c) => c.ledger.createEscrow(c.terms({ amount: raw(Usdc.MAX_MICROS + 1n) })), expected: () => ({ _tag: "InvalidInput", field: "amount_usdc" }) },
  { name: "create: more than the payer has", call: (c) => c.ledger.createEscrow(c.terms({ amount: u("1000") })), expected: (c) => ({ _tag: "InsufficientFunds", wallet: c.payer }) },
  // createEscrow: parties and text
  { name: "create: payer == payee", call: (c) => c.ledger.createEscrow(c.terms({ payee: c.payer })), expected: () => ({ _tag: "InvalidInput", field: "payee_wallet" }) },
  { name: "create: unknown payer", call: (c) => c.ledger.createEscrow(c.terms({ payer: c.stranger })), expected: (c) => ({ _tag: "AgentNotFound", wallet: c.stranger }) },
  { name: "create: unknown payee", call: (c) => c.ledger.createEscrow(c.terms({ payee: c.stranger })), expected: (c) => ({ _tag: "AgentNotFound", wallet: c.stranger }) },
  { name: "create: description too long", call: (c) => c.ledger.createEscrow(c.terms({ description: "x".repeat(Limits.descriptionChars + 1) })), expected: () => ({ _tag: "InvalidInput", field: "description" }) },
  { name: "create: metadata over 4 KiB", call: (c) => c.ledger.createEscrow(c.terms({ metadata: { blob: "x".repeat(4_096) } })), expected: () => ({ _tag: "InvalidInput", field: "metadata" }) },
  // 1,400 three-byte characters: under 4,096 characters, over 4,096 bytes
  { name: "create: metadata over 4 KiB in UTF-8 bytes", call: (c) => c.ledger.createEscrow(c.terms({ metadata: { note: "€".repeat(1_400) } })), expected: () => ({ _tag: "InvalidInput", field: "metadata" }) },
  { name: "create: empty idempotency key", call: (c) => c.ledger.createEscrow(c.terms({ idempotencyKey: "" })), expected: () => ({ _tag: "InvalidInput", field: "idempotency_key" }) },
  { name: "create: idempotency key too long", call: (c) => c.ledger.createEscrow(c.terms({ idempotencyKey: "k".repeat(Limits.idempotencyKeyChars + 1) })), expected: () => ({ _tag: "InvalidInput", field: "idempotency_key" }) },
  // createEscrow: timeouts
  { name: "create: zero timeout", call: (c) => c.ledger.createEscrow(c.terms({ timeout: 0 })), expected: () => ({ _tag: "InvalidInput", field: "timeout" }) },
  { name: "create: negative timeout", call: (c) => c.ledger.createEscrow(c.terms({ timeout: -5_000 })), expected: () => ({ _tag: "InvalidInput", field: "timeout" }) },
  { name: "create: timeout over the maximum (30 days)", call: (c) => c.ledger.createEscrow(c.terms({ timeout: Duration.days(31) })), expected: () => ({ _tag: "InvalidInput", field: "timeout" }) },
  { name: "create: infinite timeout", call: (c) => c.ledger.createEscrow(c.terms({ timeout: Duration.infinity })), expected: () => ({ _tag: "InvalidInput", field: "timeout" }) },
  { name: "create: NaN timeout", call: (c) => c.ledger.createEscrow(c.terms({ timeout: Number.NaN })), expected: () => ({ _tag: "InvalidInput", field: "timeout" }) },
  {
    name: "create: malformed timeout text",
    call: (c) => c.ledger.createEscrow(c.terms({ timeout: "5 fortnights" as Duration.DurationInput })),
    expected: () => ({ _tag: "InvalidInput", field: "timeout" }),
  },
  {
    name: "create: metadata that is not JSON (a bigint)",
    call: (c) => c.ledger.createEscrow(c.terms({ metadata: { units: 10n } })),
    expected: () => ({ _tag: "InvalidInput", field: "metadata" }),
  },
  {
    name: "create: metadata that is not JSON (a cycle)",
    call: (c) => {
      const metadata: Record<string, unknown> = {}
      metadata["self"] = metadata
      return c.ledger.createEscrow(c.terms({ metadata }))
    },
    expected: () => ({ _tag: "InvalidInput", field: "metadata" }),
  },
  // createEscrow: mandates
  { name: "create: unknown mandate", call: (c) => c.ledger.createEscrow(c.terms({ mandateId: "mdt_00000000000zzzzzzzzzzzzzzzz" as MandateId })), expected: () => ({ _tag: "MandateNotFound", mandateId: "mdt_00000000000zzzzzzzzzzzzzzzz" }) },
  { name: "create: over the mandate's per-escrow maximum", call: (c) => c.ledger.createEscrow(c.terms({ amount: u("5.000001"), mandateId: c.mandateId })), expected: (c) => ({ _tag: "MandateExceeded", mandateId: c.mandateId }) },
  // release / cancel / get
  { name: "release: unknown escrow", call: (c) => c.ledger.releaseEscrow("esc_00000000000zzzzzzzzzzzzzzzz" as EscrowId), expected: () => ({ _tag: "EscrowNotFound", escrowId: "esc_00000000000zzzzzzzzzzzzzzzz" }) },
  { name: "release: malformed escrow id", call: (c) => c.ledger.releaseEscrow("not-an-id" as EscrowId), expected: () => ({ _tag: "EscrowNotFound", escrowId: "not-an-id" }) },
  { name: "release: more than remains", call: (c) => c.ledger.releaseEscrow(c.escrowId, { amount: u("6.000001") }), expected: (c) => ({ _tag: "ReleaseExceedsRemaining", escrowId: c.escrowId, remainingMicros: u("6") }) },
  { name: "release: zero part", call: (c) => c.ledger.releaseEscrow(c.escrowId, { amount: raw(0n) }), expected: () => ({ _tag: "InvalidInput", field: "amount_usdc" }) },
  { name: "release: negative part", call: (c) => c.ledger.releaseEscrow(c.escrowId, { amount: raw(-1n) }), expected: () => ({ _tag: "InvalidInput", field: "amount_usdc" }) },
  { name: "cancel: unknown escrow", call: (c) => c.ledger.cancelEscrow("esc_00000000000zzzzzzzzzzzzzzzz" as EscrowId), expected: () => ({ _tag: "EscrowNotFound", escrowId: "esc_00000000000zzzzzzzzzzzzzzzz" }) },
  { name: "get: unknown escrow", call: (c) => c.ledger.getEscrow("esc_00000000000zzzzzzzzzzzzzzzz" as EscrowId), expected: () => ({ _tag: "EscrowNotFound" }) },
  // deposit
  { name: "deposit: zero", call: (c) => c.ledger.deposit(c.payer, raw(0n)), expected: () => ({ _tag: "InvalidInput", field: "amount" }) },
  { name: "deposit: negative", call: (c) => c.ledger.deposit(c.payer, raw(-1n)), expected: () => ({ _tag: "InvalidInput", field: "amount" }) },
  { name: "deposit: balance would exceed the maximum", call: (c) => c.ledger.deposit(c.payer, raw(Usdc.MAX_MICROS)), expected: () => ({ _tag: "InvalidInput", field: "amount" }) },
  { name: "deposit: unknown wallet", call: (c) => c.ledger.deposit(c.stranger, u("1")), expected: (c) => ({ _tag: "AgentNotFound", wallet: c.stranger }) },
  // mandates
  { name: "mandate: payer == payee", call: (c) => c.ledger.createMandate({ payer: c.payer, payee: c.payer, maxAmount: u("1"), budget: u("1") }), expected: () => ({ _tag: "InvalidInput", field: "payee_wallet" }) },
  { name: "mandate: zero maximum", call: (c) => c.ledger.createMandate({ payer: c.payer, payee: c.payee, maxAmount: raw(0n), budget: u("1") }), expected: () => ({ _tag: "InvalidInput", field: "max_amount_usdc" }) },
  { name: "mandate: zero budget", call: (c) => c.ledger.createMandate({ payer: c.payer, payee: c.payee, maxAmount: u("1"), budget: raw(0n) }), expected: () => ({ _tag: "InvalidInput", field: "budget_usdc" }) },
  { name: "mandate: expiry in the past", call: (c) => c.ledger.createMandate({ payer: c.payer, payee: c.payee, maxAmount: u("1"), budget: u("1"), expiresAtMs: -1 }), expected: () => ({ _tag: "InvalidInput", field: "expires_at" }) },
  { name: "mandate: unknown payee", call: (c) => c.ledger.createMandate({ payer: c.payer, payee: c.stranger, maxAmount: u("1"), budget: u("1") }), expected: (c) => ({ _tag: "AgentNotFound", wallet: c.stranger }) },
  { name: "revoke: not the payer's mandate", call: (c) => c.ledger.revokeMandate(c.mandateId, c.payee), expected: (c) => ({ _tag: "MandateNotFound", mandateId: c.mandateId }) },
  // agents and faucet
  { name: "register: empty name", call: (c) => c.ledger.registerAgent({ name: "  " }), expected: () => ({ _tag: "InvalidInput", field: "agent_name" }) },
  { name: "register: name too long", call: (c) => c.ledger.registerAgent({ name: "n".repeat(Limits.agentNameChars + 1) }), expected: () => ({ _tag: "InvalidInput", field: "agent_name" }) },
  { name: "register: wallet already registered", call: (c) => c.ledger.registerAgent({ name: "again", wallet: c.payer }), expected: (c) => ({ _tag: "WalletAlreadyRegistered", wallet: c.payer }) },
  { name: "register: unknown referral code", call: (c) => c.ledger.registerAgent({ name: "x", referralCode: "ref_nobody" as ReferralCode }), expected: () => ({ _tag: "ReferralCodeNotFound", referralCode: "ref_nobody" }) },
  { name: "faucet: unknown wallet", call: (c) => c.ledger.claimFaucet({ wallet: c.stranger, agentName: "x" }), expected: (c) => ({ _tag: "AgentNotFound", wallet: c.stranger }) },
  { name: "faucet: agent name too long", call: (c) => c.ledger.claimFaucet({ wallet: c.payee, agentName: "n".repeat(Limits.agentNameChars + 1) }), expected: () => ({ _tag: "InvalidInput", field: "agent_name" }) }
]

/** A ledger with some history: a funded payer, a partly released escrow, a mandate, a faucet claim. */
const setup = Effect.gen(function*() {
  const ledger = yield* Ledger
  const referrer = yield* ledger.registerAgent({ name: "referrer" })
  const payer = (yield* ledger.registerAgent({ name: "payer", referralCode: referrer.referralCode })).wallet
  const payee = (yield* ledger.registerAgent({ name: "payee" })).wallet
  yield* ledger.deposit(payer, u("100"))
  yield* ledger.claimFaucet({ wallet: payer, agentName: "payer" })
  const terms = (extra: Partial<EscrowTerms> = {}): EscrowTerms => ({ payer, payee, amount: u("1"), description: "job", ...extra })
  const escrow = yield* ledger.createEscrow(terms({ amount: u("10") }))
  yield* ledger.releaseEscrow(escrow.id, { amount: u("4") })
  const mandate = yield* ledger.createMandate({ payer, payee, maxAmount: u("5"), budget: u("20") })
  const ctx: Ctx = {
    ledger,
    payer,
    payee,
    stranger: newWalletAddress(),
    escrowId: escrow.id,
    mandateId: mandate.id,
    terms
  }
  const wallets = [referrer.wallet, payer, payee, ctx.stranger]
  return { ctx, all: snapshot(ledger, wallets) }
})

/**
 * One ledger per implementation, shared by all cases: every case must leave it
 * exactly as it found it, so sharing only makes the check stronger (and keeps the
 * SQLite run short).
 */
class Fixture extends Context.Tag("test/BadInputFixture")<Fixture, Effect.Effect.Success<typeof setup>>() {}

for (const [implementation, make] of ledgerImplementations) {
  const fixture = Layer.effect(Fixture, setup).pipe(Layer.provide(make({})))
  layer(fixture, { excludeTestServices: true, timeout: "60 seconds" })(`bad input: ${implementation}`, (it) => {
    for (const c of cases) {
      const body = Effect.gen(function*() {
        const { ctx, all } = yield* Fixture
        const before = yield* all
        const mandateBefore = yield* ctx.ledger.getMandate(ctx.mandateId)
        const escrowBefore = yield* ctx.ledger.getEscrow(ctx.escrowId)
        const outcome = yield* Effect.exit(c.call(ctx))
        // whatever the outcome, nothing changed
        expect(yield* all).toEqual(before)
        expect(yield* ctx.ledger.getMandate(ctx.mandateId)).toEqual(mandateBefore)
        expect(yield* ctx.ledger.getEscrow(ctx.escrowId)).toEqual(escrowBefore)
        expect((yield* ctx.ledger.verify).violations).toEqual([])
        // and it is the typed error naming the field
        expect(outcome._tag).toBe("Failure")
        const error = yield* Effect.flip(Effect.suspend(() => outcome))
        expect(error).toMatchObject(c.expected(ctx))
        expect(String((error as { message?: unknown }).message ?? "").length).toBeGreaterThan(0)
      })
      it.effect(c.name, () => body)
    }

    it.effect("a bad command among concurrent good ones (one group-commit batch) sinks only itself", () =>
      Effect.gen(function*() {
        const { ctx, all } = yield* Fixture
        const before = yield* all
        const good = (i: number): Effect.Effect<unknown, unknown> => ctx.ledger.createEscrow(ctx.terms({ description: `good ${i}` }))
        const bad: Array<Effect.Effect<unknown, unknown>> = [
          ctx.ledger.createEscrow(ctx.terms({ amount: raw(0n) })),
          ctx.ledger.createEscrow(ctx.terms({ metadata: { units: 10n } })),
          ctx.ledger.releaseEscrow(ctx.escrowId, { amount: u("1000") })
        ]
        const exits = yield* Effect.all(
          [good(1), bad[0]!, good(2), bad[1]!, good(3), bad[2]!, good(4)].map((e) => Effect.exit(e)),
          { concurrency: "unbounded" }
        )
        expect(exits.map((e) => e._tag)).toEqual(["Success", "Failure", "Success", "Failure", "Success", "Failure", "Success"])
        const after = yield* all
        expect(after.available[ctx.payer]).toBe(before.available[ctx.payer]! - u("4"))
        expect(after.locked[ctx.payer]).toBe(before.locked[ctx.payer]! + u("4"))
        expect((yield* ctx.ledger.verify).violations).toEqual([])
        // put the fixture back as the other cases expect it
        for (const exit of exits) {
          if (exit._tag === "Success") {
            const record = exit.value as { id: EscrowId; description: string }
            if (record.description.startsWith("good")) yield* ctx.ledger.cancelEscrow(record.id)
          }
        }
        expect((yield* all).available).toEqual(before.available)
      }))
  })
}

describe("bad input at the wire edge", () => {
  const Terms = Schema.Struct({ amount_usdc: Usdc.PositiveFromWire })
  const decode = Schema.decodeUnknownEither(Terms)

  it.each([
    ["more than 6 decimals", "1.0000001", /more than 6 decimal places/],
    ["a float finer than a micro", 0.0000015, /more precise than 1 micro-USDC/],
    ["zero", "0", /greater than zero/],
    ["negative", "-1", /negative/],
    ["an exponent", "1e3", /expected a decimal number/],
    ["over the maximum", "1000000001", /exceeds the maximum/]
  ])("amount with %s is refused, naming amount_usdc", (_label, input, reason) => {
    const result = decode({ amount_usdc: input })
    expect(Either.isLeft(result)).toBe(true)
    if (Either.isLeft(result)) {
      expect(result.left.message).toContain("amount_usdc")
      expect(result.left.message).toMatch(reason)
    }
  })
})
