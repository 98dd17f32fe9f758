/**
 * A model-based checker for any `Ledger`: random operations across many agents,
 * each predicted by an independent model of the rules (its own fee split, its own
 * balances), then run on the ledger and compared, with the invariants checked
 * after every step:
 *
 *   - the outcome matches the model (success, or the exact typed refusal);
 *   - the sum over all accounts, system accounts included, never changes (0 on a
 *     fresh ledger), via `ledger.balance` / `ledger.systemBalance` and `verify`;
 *   - no wallet balance is ever negative;
 *   - every stored balance equals the sum of its postings (`verify`);
 *   - for every release, payee net + platform + referral shares == the amount
 *     released, checked on the ledger's balance deltas, and each account's delta
 *     is exactly the model's split.
 *
 * No vitest imports: `bench/soak.ts` (1,000,000+ ops) and the SQL ledger suites
 * reuse it. Usage:
 *
 *   const summary = yield* runRandomOps(ledger, seed, 10_000, { verifyEvery: 100 })
 *
 * The ledger must be fresh (no agents, no escrows). Time moves only through the
 * `expire` operation, by `options.advance` (default `TestClock.adjust`, so provide
 * `TestContext.TestContext` outside vitest, or pass your own clock mover).
 */
import { Clock, Data, Duration, Effect, Either, TestClock } from "effect"
import fc from "fast-check"
import type { EscrowRecord, EscrowTerms } from "../../src/domain/Escrow.js"
import { type EscrowId, type MandateId, newWalletAddress, type ReferralCode, SystemAccount, type WalletAddress } from "../../src/domain/ids.js"
import { MAX_MICROS, type Usdc } from "../../src/domain/Usdc.js"
import type { LedgerShape } from "../../src/ledger/Ledger.js"
import { mulberry32 } from "./support.js"

// ---------------------------------------------------------------------------------------------
// Operations: abstract, so any sequence is meaningful; indices resolve modulo what exists.

export type Op =
  | { readonly kind: "register"; readonly referrer: number | null; readonly badCode: boolean; readonly reuseWallet: number | null }
  | { readonly kind: "deposit"; readonly agent: number; readonly micros: bigint }
  | { readonly kind: "claim"; readonly agent: number }
  | {
    readonly kind: "create"
    readonly payer: number
    readonly payee: number
    readonly micros: bigint
    readonly timeoutMs: number | null
    /** An idempotency key from a small set, so keys collide (same terms → same escrow, else conflict). */
    readonly key: number | null
    /** Under a mandate (its payer and payee, unless `mandateMismatch`). */
    readonly mandate: number | null
    readonly mandateMismatch: boolean
  }
  /** Re-sends an earlier keyed create exactly (a client retry). */
  | { readonly kind: "retry"; readonly index: number }
  | {
    readonly kind: "release"
    readonly escrow: number
    readonly pendingOnly: boolean
    /** null: all that remains; 1..1000: that many permille of it; 0: a zero part; 1001: one micro more than remains. */
    readonly partPermille: number | null
  }
  | { readonly kind: "cancel"; readonly escrow: number; readonly pendingOnly: boolean }
  | { readonly kind: "expire"; readonly advanceMs: number; readonly limit: number | null }
  | {
    readonly kind: "mandate"
    readonly payer: number
    readonly payee: number
    readonly maxMicros: bigint
    readonly budgetMicros: bigint
    readonly expiresInMs: number | null
  }
  | { readonly kind: "revoke"; readonly mandate: number; readonly byPayer: boolean }

export type OpKind = Op["kind"]

const TIMEOUTS_MS = [1_000, 60_000, 600_000, 3_600_000] as const
const ADVANCES_MS = [0, 1_000, 60_000, 900_000, 3_600_000, 86_400_000] as const

/** Amounts: mostly small (where fee rounding bites), some large, some zero. */
const pickMicros = (rng: () => number): bigint => {
  const r = rng()
  if (r < 0.05) return 0n
  if (r < 0.35) return BigInt(1 + Math.floor(rng() * 2_000))
  if (r < 0.8) return BigInt(1 + Math.floor(rng() * 50_000_000))
  return BigInt(1 + Math.floor(rng() * 2_000_000_000))
}

const int = (rng: () => number) => Math.floor(rng() * 1_000_000)
const pick = <A>(rng: () => number, xs: ReadonlyArray<A>): A => xs[Math.floor(rng() * xs.length)]!

/** One random operation from a PRNG (for seeded runs outside fast-check). */
export const randomOp = (rng: () => number): Op => {
  const r = rng()
  if (r < 0.08) {
    return { kind: "register", referrer: rng() < 0.6 ? int(rng) : null, badCode: rng() < 0.05, reuseWallet: rng() < 0.05 ? int(rng) : null }
  }
  if (r < 0.18) return { kind: "deposit", agent: int(rng), micros: pickMicros(rng) * (rng() < 0.5 ? 1n : 100n) }
  if (r < 0.22) return { kind: "claim", agent: int(rng) }
  if (r < 0.45) {
    return {
      kind: "create",
      payer: int(rng),
      payee: int(rng),
      micros: pickMicros(rng),
      timeoutMs: rng() < 0.5 ? null : pick(rng, TIMEOUTS_MS),
      key: rng() < 0.3 ? Math.floor(rng() * 4) : null,
      mandate: rng() < 0.2 ? int(rng) : null,
      mandateMismatch: rng() < 0.1
    }
  }
  if (r < 0.48) return { kind: "retry", index: int(rng) }
  if (r < 0.66) {
    const p = rng()
    return {
      kind: "release",
      escrow: int(rng),
      pendingOnly: rng() < 0.85,
      partPermille: p < 0.5 ? null : p < 0.53 ? 0 : p < 0.57 ? 1001 : 1 + Math.floor(rng() * 1000)
    }
  }
  if (r < 0.77) return { kind: "cancel", escrow: int(rng), pendingOnly: rng() < 0.85 }
  if (r < 0.87) return { kind: "expire", advanceMs: pick(rng, ADVANCES_MS), limit: rng() < 0.2 ? 1 + Math.floor(rng() * 3) : null }
  if (r < 0.95) {
    return {
      kind: "mandate",
      payer: int(rng),
      payee: int(rng),
      maxMicros: pickMicros(rng),
      budgetMicros: pickMicros(rng) * 3n,
      expiresInMs: rng() < 0.5 ? null : pick(rng, [60_000, 3_600_000])
    }
  }
  return { kind: "revoke", mandate: int(rng), byPayer: rng() < 0.8 }
}

/** The same distribution as a fast-check arbitrary (shrinkable sequences for vitest). */
export const opArbitrary: fc.Arbitrary<Op> = (() => {
  const index = fc.nat({ max: 1_000_000 })
  /** true with probability 1/n */
  const rarely = (n: number) => fc.oneof({ weight: n - 1, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) })
  const mostly = (n: number) => rarely(n).map((b) => !b)
  const micros = fc.oneof(
    { weight: 1, arbitrary: fc.constant(0n) },
    { weight: 6, arbitrary: fc.bigInt({ min: 1n, max: 2_000n }) },
    { weight: 9, arbitrary: fc.bigInt({ min: 1n, max: 50_000_000n }) },
    { weight: 4, arbitrary: fc.bigInt({ min: 1n, max: 2_000_000_000n }) }
  )
  return fc.oneof(
    { weight: 8, arbitrary: fc.record({ kind: fc.constant("register" as const), referrer: fc.option(index, { freq: 3 }), badCode: rarely(20), reuseWallet: fc.option(index, { freq: 15 }) }) },
    { weight: 10, arbitrary: fc.record({ kind: fc.constant("deposit" as const), agent: index, micros: micros.map((m) => m * 100n) }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant("claim" as const), agent: index }) },
    {
      weight: 23,
      arbitrary: fc.record({
        kind: fc.constant("create" as const),
        payer: index,
        payee: index,
        micros,
        timeoutMs: fc.option(fc.constantFrom(...TIMEOUTS_MS)),
        key: fc.option(fc.nat({ max: 3 }), { freq: 3 }),
        mandate: fc.option(index, { freq: 4 }),
        mandateMismatch: rarely(10)
      })
    },
    { weight: 3, arbitrary: fc.record({ kind: fc.constant("retry" as const), index }) },
    {
      weight: 18,
      arbitrary: fc.record({
        kind: fc.constant("release" as const),
        escrow: index,
        pendingOnly: mostly(7),
        partPermille: fc.option(fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constantFrom(0, 1001)))
      })
    },
    { weight: 11, arbitrary: fc.record({ kind: fc.constant("cancel" as const), escrow: index, pendingOnly: mostly(7) }) },
    { weight: 10, arbitrary: fc.record({ kind: fc.constant("expire" as const), advanceMs: fc.constantFrom(...ADVANCES_MS), limit: fc.option(fc.integer({ min: 1, max: 3 }), { freq: 4 }) }) },
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant("mandate" as const),
        payer: index,
        payee: index,
        maxMicros: micros,
        budgetMicros: micros.map((m) => m * 3n),
        expiresInMs: fc.option(fc.constantFrom(60_000, 3_600_000))
      })
    },
    { weight: 5, arbitrary: fc.record({ kind: fc.constant("revoke" as const), mandate: index, byPayer: mostly(5) }) }
  )
})()

// ---------------------------------------------------------------------------------------------
// The model.

interface MAgent {
  readonly wallet: WalletAddress
  readonly code: ReferralCode
  readonly referrer: WalletAddress | null
}

interface MEscrow {
  readonly id: EscrowId
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  readonly amount: bigint
  released: bigint
  refunded: bigint
  feePaid: bigint
  status: EscrowRecord["status"]
  readonly expiresAtMs: number
  readonly mandateId: MandateId | null
}

interface MMandate {
  readonly id: MandateId
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  readonly maxAmount: bigint
  readonly budget: bigint
  remaining: bigint
  readonly expiresAtMs: number | null
  readonly maxTimeoutMs: number
  revoked: boolean
}

export class ModelViolation extends Data.TaggedError("ModelViolation")<{
  readonly step: number
  readonly op: Op | null
  readonly detail: string
}> {
  override get message() {
    return `step ${this.step} (${this.op === null ? "check" : JSON.stringify(this.op, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))}): ${this.detail}`
  }
}

export interface StepInfo {
  readonly step: number
  readonly op: Op
  /** "ok" or the refusal's tag. */
  readonly outcome: string
}

export interface RunOptions {
  readonly onStep?: ((info: StepInfo) => void | Effect.Effect<void>) | undefined
  /** Run `ledger.verify` (and the conservation sum) every N steps; default 1 (every step). */
  readonly verifyEvery?: number | undefined
  /** Compare every known balance with the model every N steps; default 1. Accounts an op touches are always compared. */
  readonly balancesEvery?: number | undefined
  /** Stop registering new agents beyond this many; default 12. */
  readonly maxAgents?: number | undefined
  /** Moves the ledger's clock; default `TestClock.adjust`. */
  readonly advance?: ((ms: number) => Effect.Effect<void>) | undefined
}

export interface RunSummary {
  readonly steps: number
  /** `kind:outcome` → count, e.g. `create:ok`, `create:InsufficientFunds`. */
  readonly outcomes: Readonly<Record<string, number>>
  readonly agents: number
  readonly escrows: number
  /** Gross amount released over the run, and the fees taken on it. */
  readonly releasedMicros: bigint
  readonly feesMicros: bigint
  readonly verifications: number
}

const PPM = 1_000_000n
const show = (x: unknown) => JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))

type Expect =
  | { readonly _tag: "ok" }
  | { readonly _tag: "refused"; readonly tags: ReadonlyArray<string>; readonly detail?: Record<string, unknown> }

const ok: Expect = { _tag: "ok" }
const refused = (tag: string, detail?: Record<string, unknown>): Expect => ({ _tag: "refused", tags: [tag], ...(detail ? { detail } : {}) })

/** Runs `ops` on `ledger`, checking every step against the model. */
export const runOps = (
  ledger: LedgerShape,
  ops: Iterable<Op>,
  options: RunOptions = {}
): Effect.Effect<RunSummary, ModelViolation> =>
  Effect.gen(function*() {
    const config = ledger.config
    const tiers = config.fees.referralTiersPpm.map(BigInt)
    const feePpm = BigInt(config.fees.feePpm)
    const verifyEvery = Math.max(1, options.verifyEvery ?? 1)
    const balancesEvery = Math.max(1, options.balancesEvery ?? 1)
    const maxAgents = Math.max(2, options.maxAgents ?? 12)
    const advance = options.advance ?? ((ms: number) => TestClock.adjust(ms))
    const maxTimeoutMs = Duration.toMillis(config.maxEscrowTimeout)
    const defaultTimeoutMs = Math.ceil(Duration.toMillis(config.defaultEscrowTimeout))

    const agents: Array<MAgent> = []
    const agentOf = new Map<string, MAgent>()
    const balances = new Map<string, bigint>()
    const locked = new Map<string, bigint>()
    const escrows = new Map<string, MEscrow>()
    const escrowIds: Array<EscrowId> = []
    const pending: Array<EscrowId> = []
    const pendingIndex = new Map<string, number>()
    const mandates: Array<MMandate> = []
    const mandateOf = new Map<string, MMandate>()
    /** (opener, key) → the escrow it answered with, the request it was sent with, and until when it answers. */
    const keys = new Map<string, { readonly id: EscrowId; readonly request: string; readonly expiresAtMs: number }>()
    const keyTtlMs = Math.ceil(Duration.toMillis(config.idempotencyKeyTtl))
    /** What the ledger binds a key to: every term that shapes the escrow, the timeout as given. */
    const requestOf = (terms: EscrowTerms) =>
      show([terms.payer, terms.payee, terms.amount, terms.description, terms.metadata ?? {}, terms.timeout === undefined ? null : Math.ceil(Duration.toMillis(terms.timeout)), terms.mandateId ?? null])
    const slotOf = (terms: EscrowTerms) => `${terms.mandateId !== undefined ? terms.payee : terms.payer}\u0000${terms.idempotencyKey}`
    const keyedTerms: Array<EscrowTerms> = []
    const claimed = new Set<string>()
    const claimsPerDay = new Map<string, number>()
    const outcomes: Record<string, number> = {}
    let releasedMicros = 0n
    let feesMicros = 0n
    let verifications = 0
    let step = 0
    let currentOp: Op | null = null

    const fail = (detail: string) => Effect.fail(new ModelViolation({ step, op: currentOp, detail }))
    const bal = (account: string) => balances.get(account) ?? 0n
    const move = (account: string, delta: bigint) => balances.set(account, bal(account) + delta)
    const addPending = (id: EscrowId) => {
      pendingIndex.set(id, pending.length)
      pending.push(id)
    }
    const removePending = (id: EscrowId) => {
      const i = pendingIndex.get(id)
      if (i === undefined) return
      const last = pending.pop()!
      if (last !== id) {
        pending[i] = last
        pendingIndex.set(last, i)
      }
      pendingIndex.delete(id)
    }

    for (const account of Object.values(SystemAccount)) balances.set(account, yield* ledger.systemBalance(account).pipe(Effect.orDie))
    let initialTotal = 0n
    for (const v of balances.values()) initialTotal += v
    if (initialTotal !== 0n) return yield* fail(`a fresh ledger's system accounts sum to ${initialTotal}, not 0`)

    /** The ledger's balance of a wallet (available) or system account. */
    const ledgerBalance = (account: string) =>
      (account.startsWith("system:")
        ? ledger.systemBalance(account)
        : Effect.map(ledger.balance(account as WalletAddress), (b) => b.available as bigint)).pipe(Effect.orDie)

    const compareAccounts = (accounts: Iterable<string>) =>
      Effect.gen(function*() {
        for (const account of accounts) {
          const actual = yield* ledgerBalance(account)
          if (actual !== bal(account)) return yield* fail(`${account}: ledger ${actual}, model ${bal(account)}`)
          if (actual < 0n && account !== SystemAccount.external) return yield* fail(`${account} is negative: ${actual}`)
          if (!account.startsWith("system:")) {
            const l = (yield* ledger.balance(account as WalletAddress).pipe(Effect.orDie)).locked
            if (l !== (locked.get(account) ?? 0n)) return yield* fail(`${account} locked: ledger ${l}, model ${locked.get(account) ?? 0n}`)
          }
        }
      })

    const fullCheck = Effect.gen(function*() {
      let total = 0n
      for (const account of balances.keys()) {
        const actual = yield* ledgerBalance(account)
        total += actual
      }
      yield* compareAccounts(balances.keys())
      if (total !== initialTotal) return yield* fail(`conservation: all accounts sum to ${total}, expected ${initialTotal}`)
    })

    const verify = Effect.gen(function*() {
      verifications++
      const report = yield* ledger.verify.pipe(Effect.orDie)
      if (report.violations.length > 0) return yield* fail(`verify: ${show(report.violations.slice(0, 5))}`)
    })

    /** Referrers of a wallet, nearest first, as deep as the tiers pay. */
    const chain = (wallet: WalletAddress): Array<WalletAddress> => {
      const out: Array<WalletAddress> = []
      let current = agentOf.get(wallet)
      while (current?.referrer && out.length < tiers.length) {
        out.push(current.referrer)
        current = agentOf.get(current.referrer)
      }
      return out
    }

    /** The model's own split of a released part: account → delta. */
    const splitOf = (e: MEscrow, gross: bigint) => {
      const fee = (gross * feePpm) / PPM
      const deltas = new Map<string, bigint>()
      const add = (account: string, amount: bigint) => deltas.set(account, (deltas.get(account) ?? 0n) + amount)
      let shared = 0n
      for (const side of [chain(e.payer), chain(e.payee)]) {
        side.forEach((wallet, level) => {
          const share = (fee * tiers[level]!) / PPM
          shared += share
          if (share > 0n) add(wallet, share)
        })
      }
      add(e.payee, gross - fee)
      add(SystemAccount.platformFees, fee - shared)
      add(SystemAccount.escrowHolding, -gross)
      return { fee, deltas }
    }

    /** Expects a refusal or a success and checks it; returns the success value. */
    const expectOutcome = <A>(
      expected: Expect,
      actual: Either.Either<A, { readonly _tag: string }>
    ): Effect.Effect<A | null, ModelViolation> => {
      if (Either.isLeft(actual)) {
        const error = actual.left
        if (expected._tag === "ok") return fail(`expected success, got ${error._tag}: ${show(error)}`)
        if (!expected.tags.includes(error._tag)) return fail(`expected ${expected.tags.join(" | ")}, got ${error._tag}: ${show(error)}`)
        for (const [k, v] of Object.entries(expected.detail ?? {})) {
          if ((error as unknown as Record<string, unknown>)[k] !== v) return fail(`${error._tag}.${k}: expected ${show(v)}, got ${show((error as never)[k])}`)
        }
        return Effect.succeed(null)
      }
      if (expected._tag === "refused") return fail(`expected ${expected.tags.join(" | ")}, got success: ${show(actual.right)}`)
      return Effect.succeed(actual.right)
    }

    const checkRecord = (record: EscrowRecord, e: MEscrow) =>
      record.id !== e.id || record.status !== e.status || record.released !== e.released || record.refunded !== e.refunded ||
        record.feePaid !== e.feePaid || record.amount !== e.amount
        ? fail(`escrow record ${show(record)} differs from model ${show(e)}`)
        : Effect.void

    const pickEscrow = (index: number, pendingOnly: boolean): EscrowId | null => {
      if (pendingOnly && pending.length > 0) return pending[index % pending.length]!
      if (escrowIds.length === 0) return null
      // mostly recent escrows, so settled ones come back while their state is interesting
      const window = Math.min(escrowIds.length, 256)
      return escrowIds[escrowIds.length - 1 - (index % window)]!
    }

    const unknownEscrow = "esc_00000000000unknownunknown0" as EscrowId

    const runOne = (op: Op): Effect.Effect<string, ModelViolation> =>
      Effect.gen(function*() {
        const nowMs = yield* Clock.currentTimeMillis
        const touched = new Set<string>()
        let outcome = "ok"
        const settle = <A>(expected: Expect, actual: Either.Either<A, { readonly _tag: string }>) =>
          Effect.tap(expectOutcome(expected, actual), () => Effect.sync(() => {
            if (Either.isLeft(actual)) outcome = actual.left._tag
          }))

        switch (op.kind) {
          case "register": {
            const reuse = op.reuseWallet !== null || agents.length >= maxAgents
            const wallet = reuse && agents.length > 0 ? agents[(op.reuseWallet ?? 0) % agents.length]!.wallet : newWalletAddress()
            const referrer = op.referrer !== null && agents.length > 0 ? agents[op.referrer % agents.length]! : null
            const code = op.badCode ? ("ref_doesnotexist" as ReferralCode) : referrer?.code
            const expected = agentOf.has(wallet)
              ? refused("WalletAlreadyRegistered", { wallet })
              : op.badCode
              ? refused("ReferralCodeNotFound")
              : ok
            const result = yield* settle(expected, yield* Effect.either(ledger.registerAgent({ name: `agent-${agents.length}`, wallet, referralCode: code })))
            if (result !== null) {
              if (result.wallet !== wallet || result.referrer !== (referrer?.wallet ?? null)) return yield* fail(`agent ${show(result)}`)
              if (agents.some((a) => a.code === result.referralCode)) return yield* fail(`duplicate referral code ${result.referralCode}`)
              const agent = { wallet, code: result.referralCode, referrer: result.referrer }
              agents.push(agent)
              agentOf.set(wallet, agent)
              balances.set(wallet, 0n)
            }
            touched.add(wallet)
            break
          }
          case "deposit": {
            if (agents.length === 0) return yield* runOne({ kind: "register", referrer: null, badCode: false, reuseWallet: null })
            const wallet = agents[op.agent % agents.length]!.wallet
            const expected = op.micros <= 0n || bal(wallet) + op.micros > MAX_MICROS ? refused("InvalidInput", { field: "amount" }) : ok
            const result = yield* settle(expected, yield* Effect.either(ledger.deposit(wallet, op.micros as Usdc)))
            if (result !== null) {
              move(wallet, op.micros)
              move(SystemAccount.external, -op.micros)
              if (result.available !== bal(wallet)) return yield* fail(`deposit reported ${result.available}, model ${bal(wallet)}`)
            }
            touched.add(wallet).add(SystemAccount.external)
            break
          }
          case "claim": {
            if (agents.length === 0) return yield* runOne({ kind: "register", referrer: null, badCode: false, reuseWallet: null })
            const wallet = agents[op.agent % agents.length]!.wallet
            const day = new Date(nowMs).toISOString().slice(0, 10)
            const amount = config.faucetClaimAmount as bigint
            const expected = claimed.has(wallet)
              ? refused("FaucetAlreadyClaimed", { wallet })
              : (claimsPerDay.get(day) ?? 0) >= config.faucetDailyCap
              ? refused("FaucetDailyCapReached", { day })
              : bal(SystemAccount.faucetTreasury) < amount
              ? refused("FaucetTreasuryEmpty", { availableMicros: bal(SystemAccount.faucetTreasury) })
              : ok
            const result = yield* settle(expected, yield* Effect.either(ledger.claimFaucet({ wallet, agentName: "agent" })))
            if (result !== null) {
              move(wallet, amount)
              move(SystemAccount.faucetTreasury, -amount)
              claimed.add(wallet)
              claimsPerDay.set(day, (claimsPerDay.get(day) ?? 0) + 1)
              if (result.credited !== amount || result.balance !== bal(wallet)) return yield* fail(`claim ${show(result)}`)
            }
            touched.add(wallet).add(SystemAccount.faucetTreasury)
            break
          }
          case "create":
          case "retry": {
            let terms: EscrowTerms
            if (op.kind === "retry") {
              if (keyedTerms.length === 0) return yield* runOne({ kind: "expire", advanceMs: 0, limit: null })
              terms = keyedTerms[op.index % keyedTerms.length]!
            } else {
              if (agents.length < 2) return yield* runOne({ kind: "register", referrer: null, badCode: false, reuseWallet: null })
              const mandate = op.mandate !== null && mandates.length > 0 ? mandates[op.mandate % mandates.length]! : null
              let payer = agents[op.payer % agents.length]!.wallet
              let payee = agents[op.payee % agents.length]!.wallet
              if (mandate !== null && !op.mandateMismatch) {
                payer = mandate.payer
                payee = mandate.payee
              }
              terms = {
                payer,
                payee,
                amount: op.micros as Usdc,
                description: "job",
                timeout: op.timeoutMs ?? undefined,
                idempotencyKey: op.key === null ? undefined : `key-${op.key}`,
                mandateId: mandate?.id
              }
              if (terms.idempotencyKey !== undefined) {
                keyedTerms.push(terms)
                if (keyedTerms.length > 64) keyedTerms.shift()
              }
            }
            const mandate = terms.mandateId === undefined ? undefined : mandateOf.get(terms.mandateId)
            const previousKey = terms.idempotencyKey === undefined ? undefined : keys.get(slotOf(terms))
            const liveKey = previousKey !== undefined && previousKey.expiresAtMs > nowMs ? previousKey : undefined
            const previous = liveKey === undefined ? undefined : escrows.get(liveKey.id)
            const givenTimeoutMs = terms.timeout === undefined ? defaultTimeoutMs : Math.ceil(Duration.toMillis(terms.timeout))
            // Under a mandate the default timeout is shortened to its bounds; a given one beyond them is refused.
            const mandateBoundMs = mandate === undefined
              ? Infinity
              : Math.min(mandate.maxTimeoutMs, mandate.expiresAtMs === null ? Infinity : mandate.expiresAtMs - nowMs)
            const timeoutMs = terms.timeout === undefined ? Math.min(givenTimeoutMs, mandateBoundMs) : givenTimeoutMs
            let expected: Expect
            if (terms.amount <= 0n) expected = refused("InvalidInput", { field: "amount_usdc" })
            else if (terms.payer === terms.payee) expected = refused("InvalidInput", { field: "payee_wallet" })
            else if (givenTimeoutMs > maxTimeoutMs) expected = refused("InvalidInput", { field: "timeout" })
            else if (previous !== undefined) {
              expected = liveKey!.request === requestOf(terms) ? ok : refused("IdempotencyConflict", { idempotencyKey: terms.idempotencyKey })
            } else if (mandate !== undefined && (mandate.payer !== terms.payer || mandate.payee !== terms.payee)) {
              expected = refused("MandateExceeded", { mandateId: mandate.id })
            } else if (mandate !== undefined && (mandate.revoked || (mandate.expiresAtMs !== null && mandate.expiresAtMs <= nowMs))) {
              expected = refused("MandateExceeded", { mandateId: mandate.id })
            } else if (mandate !== undefined && (terms.amount > mandate.maxAmount || terms.amount > mandate.remaining)) {
              expected = refused("MandateExceeded", { mandateId: mandate.id })
            } else if (terms.timeout !== undefined && timeoutMs > mandateBoundMs) {
              expected = refused("InvalidInput", { field: "timeout_ms" })
            } else if (bal(terms.payer) < terms.amount) {
              expected = refused("InsufficientFunds", { wallet: terms.payer, availableMicros: bal(terms.payer), requiredMicros: terms.amount })
            } else expected = ok
            const result = yield* settle(expected, yield* Effect.either(ledger.createEscrow(terms)))
            if (result !== null) {
              if (previous !== undefined) {
                yield* checkRecord(result, previous)
                outcome = "idempotent"
              } else {
                const e: MEscrow = {
                  id: result.id,
                  payer: terms.payer,
                  payee: terms.payee,
                  amount: terms.amount,
                  released: 0n,
                  refunded: 0n,
                  feePaid: 0n,
                  status: "pending",
                  expiresAtMs: nowMs + timeoutMs,
                  mandateId: terms.mandateId ?? null
                }
                if (escrows.has(e.id)) return yield* fail(`duplicate escrow id ${e.id}`)
                if (result.expiresAtMs !== e.expiresAtMs) return yield* fail(`expiresAtMs ${result.expiresAtMs}, model ${e.expiresAtMs}`)
                yield* checkRecord(result, e)
                escrows.set(e.id, e)
                escrowIds.push(e.id)
                addPending(e.id)
                move(terms.payer, -terms.amount)
                move(SystemAccount.escrowHolding, terms.amount)
                locked.set(terms.payer, (locked.get(terms.payer) ?? 0n) + terms.amount)
                if (mandate !== undefined) mandate.remaining -= terms.amount
                if (terms.idempotencyKey !== undefined) {
                  keys.set(slotOf(terms), { id: e.id, request: requestOf(terms), expiresAtMs: nowMs + keyTtlMs })
                }
              }
            }
            if (mandate !== undefined) {
              const m = yield* ledger.getMandate(mandate.id).pipe(Effect.orDie)
              if (m.remaining !== mandate.remaining) return yield* fail(`mandate remaining ${m.remaining}, model ${mandate.remaining}`)
            }
            touched.add(terms.payer).add(terms.payee).add(SystemAccount.escrowHolding)
            break
          }
          case "release": {
            const id = pickEscrow(op.escrow, op.pendingOnly) ?? unknownEscrow
            const e = escrows.get(id)
            if (e === undefined) {
              yield* settle(refused("EscrowNotFound", { escrowId: id }), yield* Effect.either(ledger.releaseEscrow(id)))
              break
            }
            const left = e.amount - e.released - e.refunded
            const part = op.partPermille === null
              ? undefined
              : op.partPermille === 0
              ? 0n
              : op.partPermille === 1001
              ? left + 1n
              : (() => {
                const p = (left * BigInt(op.partPermille)) / 1000n
                return p > 0n ? p : 1n
              })()
            let expected: Expect
            if (e.status === "released" && part === undefined) expected = ok
            else if (e.status !== "pending") expected = refused("EscrowNotPending", { status: e.status, attempted: "release", escrowId: id })
            else if (nowMs >= e.expiresAtMs) expected = refused("EscrowExpired", { escrowId: id, expiresAtMs: e.expiresAtMs })
            else if ((part ?? left) <= 0n) expected = refused("InvalidInput", { field: "amount_usdc" })
            else if ((part ?? left) > left) expected = refused("ReleaseExceedsRemaining", { remainingMicros: left, requestedMicros: part })
            else expected = ok
            const moving = expected._tag === "ok" && e.status === "pending"
            const gross = part ?? left
            const split = moving ? splitOf(e, gross) : null
            const watched = [...new Set([e.payer, e.payee, SystemAccount.platformFees, SystemAccount.escrowHolding, ...chain(e.payer), ...chain(e.payee)])]
            const before = new Map<string, bigint>()
            for (const account of watched) before.set(account, yield* ledgerBalance(account))
            const result = yield* settle(
              expected,
              yield* Effect.either(ledger.releaseEscrow(id, part === undefined ? undefined : { amount: part as Usdc }))
            )
            if (result !== null && split !== null) {
              // the release identity, on the ledger's own balance deltas
              let credited = 0n
              for (const account of watched) {
                const delta = (yield* ledgerBalance(account)) - before.get(account)!
                const want = split.deltas.get(account) ?? 0n
                if (delta !== want) return yield* fail(`release of ${gross}: ${account} moved ${delta}, model ${want}`)
                if (account !== SystemAccount.escrowHolding) credited += delta
              }
              if (credited !== gross) return yield* fail(`release of ${gross}: payee net + platform + shares = ${credited}`)
              for (const [account, delta] of split.deltas) move(account, delta)
              locked.set(e.payer, (locked.get(e.payer) ?? 0n) - gross)
              e.released += gross
              e.feePaid += split.fee
              releasedMicros += gross
              feesMicros += split.fee
              if (gross === left) {
                e.status = "released"
                removePending(e.id)
              }
            } else if (result !== null) {
              outcome = "repeat"
            }
            if (result !== null) yield* checkRecord(result, e)
            // Refused past the deadline: the escrow expired in the same step.
            if (expected._tag === "refused" && expected.tags[0] === "EscrowExpired") refund(e, "expired")
            for (const account of watched) touched.add(account)
            break
          }
          case "cancel": {
            const id = pickEscrow(op.escrow, op.pendingOnly) ?? unknownEscrow
            const e = escrows.get(id)
            if (e === undefined) {
              yield* settle(refused("EscrowNotFound", { escrowId: id }), yield* Effect.either(ledger.cancelEscrow(id)))
              break
            }
            const expected = e.status === "pending" || e.status === "cancelled"
              ? ok
              : refused("EscrowNotPending", { status: e.status, attempted: "cancel", escrowId: id })
            const wasPending = e.status === "pending"
            const result = yield* settle(expected, yield* Effect.either(ledger.cancelEscrow(id)))
            if (result !== null && wasPending) {
              refund(e, "cancelled")
            } else if (result !== null) outcome = "repeat"
            if (result !== null) yield* checkRecord(result, e)
            touched.add(e.payer).add(e.payee).add(SystemAccount.escrowHolding)
            if (e.mandateId !== null) {
              const m = yield* ledger.getMandate(e.mandateId).pipe(Effect.orDie)
              if (m.remaining !== mandateOf.get(e.mandateId)!.remaining) return yield* fail(`mandate remaining after cancel ${m.remaining}`)
            }
            break
          }
          case "expire": {
            if (op.advanceMs > 0) yield* advance(op.advanceMs)
            const now = yield* Clock.currentTimeMillis
            const due = pending.map((id) => escrows.get(id)!).filter((e) => e.expiresAtMs <= now)
            const expired = yield* (op.limit === null ? ledger.expireDue() : ledger.expireDue(op.limit)).pipe(Effect.orDie)
            const limit = op.limit ?? 1_000
            const dueIds = new Set(due.map((e) => e.id))
            if (expired.length !== Math.min(limit, due.length)) {
              return yield* fail(`expireDue(${op.limit}) expired ${expired.length}, ${due.length} due`)
            }
            const latest = Math.max(-Infinity, ...expired.map((r) => r.expiresAtMs))
            for (const record of expired) {
              if (!dueIds.has(record.id)) return yield* fail(`expireDue expired ${record.id}, which is not due`)
              dueIds.delete(record.id)
            }
            for (const id of dueIds) {
              if (escrows.get(id)!.expiresAtMs < latest) return yield* fail(`expireDue skipped ${id}, due earlier than one it expired`)
            }
            for (const record of expired) {
              const e = escrows.get(record.id)!
              refund(e, "expired")
              yield* checkRecord(record, e)
              touched.add(e.payer)
            }
            touched.add(SystemAccount.escrowHolding)
            outcome = expired.length > 0 ? "ok" : "none"
            break
          }
          case "mandate": {
            if (agents.length < 2) return yield* runOne({ kind: "register", referrer: null, badCode: false, reuseWallet: null })
            const payer = agents[op.payer % agents.length]!.wallet
            const payee = agents[op.payee % agents.length]!.wallet
            const expected = payer === payee
              ? refused("InvalidInput", { field: "payee_wallet" })
              : op.maxMicros <= 0n
              ? refused("InvalidInput", { field: "max_amount_usdc" })
              : op.budgetMicros <= 0n
              ? refused("InvalidInput", { field: "budget_usdc" })
              : ok
            const input = {
              payer,
              payee,
              maxAmount: op.maxMicros as Usdc,
              budget: op.budgetMicros as Usdc,
              expiresAtMs: op.expiresInMs === null ? undefined : nowMs + op.expiresInMs
            }
            const result = yield* settle(expected, yield* Effect.either(ledger.createMandate(input)))
            if (result !== null) {
              const m: MMandate = {
                id: result.id,
                payer,
                payee,
                maxAmount: op.maxMicros,
                budget: op.budgetMicros,
                remaining: op.budgetMicros,
                expiresAtMs: input.expiresAtMs ?? null,
                maxTimeoutMs: defaultTimeoutMs,
                revoked: false
              }
              if (result.remaining !== m.remaining || result.expiresAtMs !== m.expiresAtMs || result.maxTimeoutMs !== m.maxTimeoutMs) {
                return yield* fail(`mandate ${show(result)}`)
              }
              mandates.push(m)
              mandateOf.set(m.id, m)
            }
            break
          }
          case "revoke": {
            const m = mandates.length > 0 ? mandates[op.mandate % mandates.length]! : null
            const id = m?.id ?? ("mdt_00000000000unknownunknown0" as MandateId)
            const by = m === null ? newWalletAddress() : op.byPayer ? m.payer : m.payee
            const expected = m !== null && op.byPayer ? ok : refused("MandateNotFound", { mandateId: id })
            const result = yield* settle(expected, yield* Effect.either(ledger.revokeMandate(id, by)))
            if (result !== null) {
              m!.revoked = true
              if (!result.revoked || result.remaining !== m!.remaining) return yield* fail(`revoked mandate ${show(result)}`)
            }
            break
          }
        }
        if (step % balancesEvery !== 0) yield* compareAccounts(touched)
        return outcome
      })

    function refund(e: MEscrow, status: "cancelled" | "expired") {
      const left = e.amount - e.released - e.refunded
      move(SystemAccount.escrowHolding, -left)
      move(e.payer, left)
      locked.set(e.payer, (locked.get(e.payer) ?? 0n) - left)
      e.refunded += left
      e.status = status
      removePending(e.id)
      if (e.mandateId !== null) mandateOf.get(e.mandateId)!.remaining += left
    }

    for (const op of ops) {
      step++
      currentOp = op
      const outcome = yield* runOne(op)
      const key = `${op.kind}:${outcome}`
      outcomes[key] = (outcomes[key] ?? 0) + 1
      if (step % balancesEvery === 0) yield* fullCheck
      if (step % verifyEvery === 0) yield* verify
      if (options.onStep !== undefined) {
        const r = options.onStep({ step, op, outcome })
        if (Effect.isEffect(r)) yield* r
      }
    }
    currentOp = null
    yield* fullCheck
    yield* verify
    return {
      steps: step,
      outcomes,
      agents: agents.length,
      escrows: escrows.size,
      releasedMicros,
      feesMicros,
      verifications
    } satisfies RunSummary
  })

/** Generates `count` operations from a seeded PRNG (or your own `() => [0, 1)`). */
export function* randomOps(rng: number | (() => number), count: number): Generator<Op> {
  const next = typeof rng === "number" ? mulberry32(rng) : rng
  for (let i = 0; i < count; i++) yield randomOp(next)
}

/** `count` random operations on `ledger`, checked against the model after every step. */
export const runRandomOps = (
  ledger: LedgerShape,
  rng: number | (() => number),
  count: number,
  options: RunOptions = {}
): Effect.Effect<RunSummary, ModelViolation> => runOps(ledger, randomOps(rng, count), options)
