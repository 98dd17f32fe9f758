/**
 * An orchestrator on a remote settlement service only: `AccountsHttp.layerWithEscrow`
 * (and the separate `AccountsHttp.layer` and `EscrowHttp.layer`) against a real
 * server on a loopback port, with the service's default rules. Sub-agents are
 * registered, referred, funded from the faucet and paid over HTTP; every figure is
 * checked against the server's ledger to the micro-USDC.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Redacted, Schedule, Schema } from "effect"
import { Accounts } from "../../src/agents/Accounts.js"
import * as AccountsHttp from "../../src/client/AccountsHttp.js"
import * as Agent from "../../src/agents/Agent.js"
import { Orchestrator } from "../../src/agents/Orchestrator.js"
import type { ReferralCode, WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Escrow } from "../../src/escrow/Escrow.js"
import * as EscrowHttp from "../../src/client/EscrowHttp.js"
import * as Server from "../../src/http/server.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import { Facts, feeOf, shareOf, Topic, u } from "./support.js"

const PRICE = Usdc.make("0.40")

const Fetcher = Agent.make({
  name: "fetcher",
  input: Topic,
  output: Facts,
  price: PRICE,
  run: ({ topic }) => Effect.succeed({ facts: [`${topic}: 2 sources`] })
})

const Broken = Agent.make({
  name: "broken",
  input: Topic,
  output: Facts,
  price: PRICE,
  run: () => Effect.fail("upstream down" as const)
})

/** `POST /api/agents`, as any client of the service: the new agent's wallet and its key (shown once). */
const registerOverHttp = (baseUrl: string, name: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${baseUrl}/api/agents`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ agent_name: name })
    })
    const body = (await response.json()) as Record<string, string>
    return { wallet: body.wallet_address as WalletAddress, apiKey: Redacted.make(body.api_key!), referralCode: body.referral_code as ReferralCode }
  })

/**
 * A settlement service on a loopback port with its default rules (a payer may cancel
 * only after the deadline; the payee at once), the orchestrator's agent registered
 * over HTTP and funded.
 */
const world = Effect.gen(function*() {
  const settlement = yield* Layer.build(Server.layerMemory({ settlement: { port: 0, host: "127.0.0.1" } }))
  const baseUrl = yield* Effect.provide(Server.baseUrl, settlement)
  const ledger = Context.get(settlement, Ledger)
  const { apiKey, wallet } = yield* registerOverHttp(baseUrl, "orchestrator")
  yield* ledger.deposit(wallet, Usdc.make("50"))
  const remote = AccountsHttp.layerWithEscrow({ baseUrl, apiKey })
  /** The two layers on their own: neither knows the keys the other holds. */
  const separate = Layer.mergeAll(AccountsHttp.layer({ baseUrl, apiKey }), EscrowHttp.layer({ baseUrl, apiKey }))
  return { baseUrl, ledger, wallet, remote, separate }
})

/** Signals that its run started, then works until interrupted. */
const slowAgent = (name: string, started: Deferred.Deferred<void>) =>
  Agent.make({
    name,
    input: Topic,
    output: Facts,
    price: PRICE,
    run: () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never)
  })

/** Hires a fetcher of its own (spawned on first use, referred by it) with its own wallet. */
const Lead = Agent.make({
  name: "lead",
  input: Topic,
  output: Schema.Struct({ answer: Schema.String }),
  price: Usdc.make("1.00"),
  run: ({ topic }) => Effect.map(Orchestrator.hire(Fetcher, { topic }), ({ facts }) => ({ answer: facts.join("; ") }))
})

describe("AccountsHttp: an orchestrator on a remote settlement service", () => {
  it.scopedLive("spawns, refers, funds and pays sub-agents over HTTP; earnings reconcile with the server's ledger", () =>
    Effect.gen(function*() {
      const { ledger, remote, wallet } = yield* world
      const orchestrator = Orchestrator.layer({ name: "orchestrator", existing: true, wallet }).pipe(Layer.provideMerge(remote))

      const { handle, result, earnings, payments, failed } = yield* Effect.gen(function*() {
        const handle = yield* Orchestrator.spawn(Fetcher, { faucet: true })
        const result = yield* Orchestrator.delegate(handle, { topic: "rates" })
        const broken = yield* Orchestrator.spawn(Broken)
        const failed = yield* Effect.exit(Orchestrator.delegate(broken, { topic: "rates" }))
        return { handle, result, failed, earnings: yield* Orchestrator.earnings, payments: yield* (yield* Orchestrator).payments() }
      }).pipe(Effect.provide(orchestrator))

      expect(result).toEqual({ facts: ["rates: 2 sources"] })
      expect(Exit.isFailure(failed)).toBe(true)
      // Registered on the server, referred by the orchestrator, its faucet claimed with its own key.
      const onServer = yield* ledger.getAgent(handle.wallet)
      expect(onServer).toEqual(handle.identity)
      expect(onServer.referrer).toBe(wallet)
      const fee = feeOf(PRICE)
      expect((yield* ledger.balance(handle.wallet)).available).toBe(u("1") + PRICE - fee)
      // Paid once, refunded once: the orchestrator spent the price, earned the referral share of its fee.
      expect((yield* ledger.balance(wallet)).available).toBe(u("50") - PRICE + shareOf(PRICE))
      expect(earnings.spending).toBe(PRICE)
      expect(earnings.referralIncome).toBe(shareOf(PRICE))
      expect(earnings.net).toBe(shareOf(PRICE) - PRICE)
      const referred = earnings.referred.map((r) => [r.agent.wallet, r.agent.referralCode, r.earned])
      expect(referred).toContainEqual([handle.wallet, handle.identity.referralCode, shareOf(PRICE)])
      expect(referred).toHaveLength(2)
      // Who paid whom, with names from the agents' public cards.
      expect(payments.map((p) => [p.payeeName, p.status, p.released, p.refunded])).toEqual([
        ["fetcher", "released", PRICE, 0n],
        ["broken", "cancelled", 0n, PRICE]
      ])
      expect((yield* ledger.verify).violations).toEqual([])
    }))

  it.scopedLive("reads the wallet of an agent registered earlier with the key it is given, and not without it", () =>
    Effect.gen(function*() {
      const { baseUrl, ledger } = yield* world
      // An agent registered over HTTP by an earlier process: only its key reads its wallet.
      const earlier = yield* registerOverHttp(baseUrl, "earlier")
      yield* ledger.deposit(earlier.wallet, Usdc.make("3"))
      const orchestrator = yield* registerOverHttp(baseUrl, "a later orchestrator")
      const read = (agentKeys?: Record<string, Redacted.Redacted<string>>) =>
        Effect.flatMap(Accounts, (accounts) => Effect.either(accounts.balance(earlier.wallet))).pipe(
          Effect.provide(AccountsHttp.layer({ baseUrl, apiKey: orchestrator.apiKey, agentKeys }))
        )
      const without = yield* read()
      expect(without).toMatchObject({ _tag: "Left", left: { _tag: "Forbidden", operation: "balance", code: "forbidden" } })
      // A checksummed (mixed-case) address names the same wallet.
      const withKey = yield* read({ [earlier.wallet.toUpperCase().replace("0X", "0x")]: earlier.apiKey })
      expect(withKey).toMatchObject({ _tag: "Right", right: { wallet: earlier.wallet, available: u("3"), locked: 0n } })
    }))

  it.scopedLive("what the service refuses or does not offer comes back typed, and changes nothing", () =>
    Effect.gen(function*() {
      const { ledger, remote, wallet } = yield* world
      const stranger = yield* ledger.registerAgent({ name: "stranger" })
      const before = yield* ledger.balance(wallet)
      const outcomes = yield* Effect.gen(function*() {
        const accounts = yield* Accounts
        return {
          deposit: yield* Effect.flip(accounts.deposit(wallet, Usdc.make("1"))),
          unknown: yield* Effect.flip(accounts.getAgent(`0x${"7".repeat(40)}` as WalletAddress)),
          badCode: yield* Effect.flip(accounts.register({ name: "x", referralCode: "ref_doesnotexist" as ReferralCode })),
          taken: yield* Effect.flip(accounts.register({ name: "x", wallet: stranger.wallet })),
          othersBalance: yield* Effect.flip(accounts.balance(stranger.wallet)),
          othersFaucet: yield* Effect.flip(accounts.claimFaucet(stranger.wallet, "stranger")),
          // These routes answer about the caller: asked about another wallet, the layer must not answer with its own.
          othersReferrals: yield* Effect.flip(accounts.referrals(stranger.wallet)),
          othersEscrows: yield* Effect.flip(accounts.escrows({ wallet: stranger.wallet })),
          everyonesEscrows: yield* Effect.flip(accounts.escrows({})),
          ownEscrows: yield* accounts.escrows({ wallet }),
          ownReferrals: yield* accounts.referrals(wallet),
          strangerCard: yield* accounts.getAgent(stranger.wallet),
          own: yield* accounts.balance(wallet)
        }
      }).pipe(Effect.provide(remote))

      expect(outcomes.deposit).toMatchObject({ _tag: "InvalidInput", field: "wallet" })
      expect(outcomes.unknown._tag).toBe("AgentNotFound")
      expect(outcomes.badCode._tag).toBe("ReferralCodeNotFound")
      expect(outcomes.taken._tag).toBe("WalletAlreadyRegistered")
      expect(outcomes.othersBalance).toMatchObject({ _tag: "Forbidden", operation: "balance", code: "forbidden" })
      expect(outcomes.othersFaucet).toMatchObject({ _tag: "Forbidden", operation: "claimFaucet", code: "forbidden" })
      expect(outcomes.othersReferrals).toMatchObject({ _tag: "Forbidden", reason: expect.stringContaining("no key for") })
      expect(outcomes.othersEscrows).toMatchObject({ _tag: "Forbidden", reason: expect.stringContaining("no key for") })
      // No retry could fix it: the caller must name the wallet.
      expect(outcomes.everyonesEscrows).toMatchObject({ _tag: "InvalidInput", field: "wallet", message: expect.stringContaining("name the wallet") })
      expect(outcomes.ownEscrows).toEqual({ escrows: [], nextCursor: null })
      expect(outcomes.ownReferrals.agent.wallet).toBe(wallet)
      expect(outcomes.strangerCard).toEqual(stranger)
      expect(outcomes.own).toEqual(before)
      expect(yield* ledger.balance(wallet)).toEqual(before)
      expect((yield* ledger.balance(stranger.wallet)).available).toBe(0n)
      expect((yield* ledger.verify).violations).toEqual([])
    }))
  it.scopedLive("a timed-out or interrupted task is refunded at once: its payee's key cancels, not the payer's", () =>
    Effect.gen(function*() {
      const { ledger, remote, wallet } = yield* world
      const started = yield* Deferred.make<void>()
      const { timedOut, interrupted, slowWallet } = yield* Effect.gen(function*() {
        const slow = yield* Orchestrator.spawn(slowAgent("slow", started))
        const timedOut = yield* Effect.flip(Orchestrator.delegate(slow, { topic: "rates" }, { timeoutMs: 200 }))
        const again = yield* Deferred.make<void>()
        const slowToo = yield* Orchestrator.spawn(slowAgent("slow-too", again))
        const fiber = yield* Effect.fork(Orchestrator.delegate(slowToo, { topic: "rates" }))
        yield* Deferred.await(again)
        // Locked while it runs.
        expect((yield* ledger.balance(wallet)).locked).toBe(PRICE)
        const interrupted = yield* Fiber.interrupt(fiber)
        return { timedOut, interrupted, slowWallet: slow.wallet }
      }).pipe(Effect.provide(Orchestrator.layer({ name: "orchestrator", existing: true, wallet }).pipe(Layer.provideMerge(remote))))

      expect(timedOut).toMatchObject({ _tag: "TaskTimedOut", timeoutMs: 200 })
      expect(Exit.isInterrupted(interrupted)).toBe(true)
      // Both escrows cancelled well before their deadlines: nothing locked, every micro back.
      expect(yield* ledger.balance(wallet)).toEqual({ wallet, available: u("50"), locked: 0n })
      expect((yield* ledger.balance(slowWallet)).available).toBe(0n)
      const { escrows } = yield* ledger.listEscrows({ wallet })
      expect(escrows.map((e) => [e.status, e.refunded])).toEqual([["cancelled", PRICE], ["cancelled", PRICE]])
      expect((yield* ledger.verify).violations).toEqual([])
    }))

  it.scopedLive("with the layers apart, a failed task's cancel is refused until the deadline and recorded for reconciliation", () =>
    Effect.gen(function*() {
      const { ledger, separate, wallet } = yield* world
      const unsettled = yield* Effect.gen(function*() {
        const broken = yield* Orchestrator.spawn(Broken)
        yield* Effect.flip(Orchestrator.delegate(broken, { topic: "rates" }))
        return yield* Effect.flatMap(Escrow, (escrow) => escrow.unsettled)
      }).pipe(
        Effect.provide(
          Orchestrator.layer({ name: "orchestrator", existing: true, wallet, settlementRetry: Schedule.recurs(1) }).pipe(
            Layer.provideMerge(separate)
          )
        )
      )
      // The payer's key may not cancel before the deadline: the price stays locked, not lost.
      expect(yield* ledger.balance(wallet)).toEqual({ wallet, available: u("50") - PRICE, locked: PRICE })
      // Forbidden is not retried: one attempt, recorded for the reconciler (which the deadline outruns).
      expect(unsettled.map((u) => [u.intent, u.attempts, u.error.startsWith("the settlement service refused cancel (forbidden)")])).toEqual([["cancel", 1, true]])
    }))

  it.scopedLive("nested hiring: a sub-agent hires with its own key and budget; referral chain and payments on the server", () =>
    Effect.gen(function*() {
      const { ledger, remote, wallet } = yield* world
      const { answer, lead, fetcher } = yield* Effect.gen(function*() {
        const lead = yield* Orchestrator.spawn(Lead, { faucet: true })
        const { answer } = yield* Orchestrator.delegate(lead, { topic: "rates" })
        const [fetcher] = yield* lead.orchestrator!.handles
        return { answer, lead, fetcher: fetcher! }
      }).pipe(Effect.provide(Orchestrator.layer({ name: "orchestrator", existing: true, wallet }).pipe(Layer.provideMerge(remote))))

      expect(answer).toBe("rates: 2 sources")
      // Referred down the chain: the fetcher by the lead, the lead by the orchestrator.
      expect((yield* ledger.getAgent(fetcher.wallet)).referrer).toBe(lead.wallet)
      expect((yield* ledger.getAgent(lead.wallet)).referrer).toBe(wallet)
      const leadPrice = Usdc.make("1.00")
      // The lead: its faucet, less the fetcher's price, plus its own price net of fee, plus its referral share on the fetcher.
      expect((yield* ledger.balance(lead.wallet)).available).toBe(u("1") - PRICE + leadPrice - feeOf(leadPrice) + shareOf(PRICE))
      // The fetcher was registered without a faucet claim: it holds exactly its net.
      expect((yield* ledger.balance(fetcher.wallet)).available).toBe(PRICE - feeOf(PRICE))
      // The orchestrator referred the lead: a share of the fee on both escrows the lead was a party to.
      expect((yield* ledger.balance(wallet)).available).toBe(u("50") - leadPrice + shareOf(leadPrice) + shareOf(PRICE))
      expect((yield* ledger.verify).violations).toEqual([])
    }))
  it.scopedLive("spends a caller's budget under the caller's mandate: the sub-agent opens and is paid from the caller's wallet", () =>
    Effect.gen(function*() {
      const { baseUrl, ledger, remote, wallet } = yield* world
      const caller = yield* registerOverHttp(baseUrl, "caller")
      yield* ledger.deposit(caller.wallet, Usdc.make("10"))
      const { handle, paid, refused } = yield* Effect.gen(function*() {
        const handle = yield* Orchestrator.spawn(Fetcher)
        // The caller lets the fetcher draw up to 0.40 a task, 0.80 in all.
        const mandate = yield* ledger.createMandate({ payer: caller.wallet, payee: handle.wallet, maxAmount: PRICE, budget: Usdc.make("0.80") })
        const options = { payer: caller.wallet, mandateId: mandate.id }
        const paid = yield* Orchestrator.delegate(handle, { topic: "rates" }, options)
        yield* Orchestrator.delegate(handle, { topic: "fx" }, options)
        // The mandate's budget is spent: the service refuses a third, and nothing is locked.
        const refused = yield* Effect.flip(Orchestrator.delegate(handle, { topic: "bonds" }, options))
        return { handle, paid, refused }
      }).pipe(Effect.provide(Orchestrator.layer({ name: "orchestrator", existing: true, wallet }).pipe(Layer.provideMerge(remote))))

      expect(paid).toEqual({ facts: ["rates: 2 sources"] })
      expect(refused._tag).toBe("MandateExceeded")
      expect(yield* ledger.balance(caller.wallet)).toEqual({ wallet: caller.wallet, available: u("10") - 2n * PRICE, locked: 0n })
      expect((yield* ledger.balance(handle.wallet)).available).toBe(2n * (PRICE - feeOf(PRICE)))
      // The orchestrator spent nothing; it earned the referral share on its sub-agent's fees.
      expect(yield* ledger.balance(wallet)).toEqual({ wallet, available: u("50") + 2n * shareOf(PRICE), locked: 0n })
      expect((yield* ledger.verify).violations).toEqual([])
    }))
})

