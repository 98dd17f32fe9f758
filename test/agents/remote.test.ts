/**
 * Remote agents: escrow verification against the `Escrow` port (every backend),
 * then two agent services on two loopback ports sharing one settlement service,
 * with every escrow call going over HTTP (`EscrowHttp`).
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import * as AccountsHttp from "../../src/client/AccountsHttp.js"
import * as Agent from "../../src/agents/Agent.js"
import { EscrowRefused } from "../../src/agents/errors.js"
import { Orchestrator } from "../../src/agents/Orchestrator.js"
import * as RemoteAgent from "../../src/agents/RemoteAgent.js"
import type { WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Escrow } from "../../src/escrow/Escrow.js"
import * as EscrowHttp from "../../src/client/EscrowHttp.js"
import * as Server from "../../src/http/server.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import { EscrowTest } from "../../src/escrow/EscrowTest.js"
import { backends, Facts, feeOf, shareOf, Topic, u, worldOn } from "./support.js"

const refusal = (effect: Effect.Effect<unknown, EscrowRefused>) =>
  Effect.map(Effect.flip(effect), (e) => e.reason)

for (const backend of backends) {
  describe(`verifyEscrow on ${backend.name}`, () => {
    it.effect("refuses forged, unknown, someone else's, underfunded, settled, expiring and replayed escrows", () =>
      Effect.gen(function*() {
        const escrow = yield* Escrow
        const ledger = yield* Ledger
        const payer = yield* ledger.registerAgent({ name: "payer" })
        const me = yield* ledger.registerAgent({ name: "me" })
        const other = yield* ledger.registerAgent({ name: "other" })
        yield* ledger.deposit(payer.wallet, Usdc.make("10"))
        const guard = new RemoteAgent.ReplayGuard()
        const price = Usdc.make("1")
        const offer = (escrowId: string) => RemoteAgent.verifyEscrow(escrow, guard, { escrowId, payee: me.wallet, price })
        const open = (payee: WalletAddress, amount: string, timeoutMs = 60_000) =>
          escrow.create({ payer: payer.wallet, payee, amount: Usdc.make(amount), description: "offer", timeout: timeoutMs })

        expect(yield* refusal(offer("esc_' OR 1=1 --"))).toBe("malformed")
        expect(yield* refusal(offer("esc_0000000000000000000000000000"))).toBe("not_found")
        expect(yield* refusal(offer((yield* open(other.wallet, "1")).id))).toBe("wrong_payee")
        expect(yield* refusal(offer((yield* open(me.wallet, "0.999999")).id))).toBe("underfunded")
        const settled = yield* open(me.wallet, "1")
        yield* escrow.cancel(settled.id)
        expect(yield* refusal(offer(settled.id))).toBe("not_pending")
        expect(yield* refusal(offer((yield* open(me.wallet, "1", 4_000)).id))).toBe("expiring")

        const good = yield* open(me.wallet, "1.5")
        expect((yield* offer(good.id)).id).toBe(good.id)
        expect(yield* refusal(offer(good.id))).toBe("replayed")
        // A refusal does not consume the id: the underfunded one is refused for the same reason again.
        const thin = yield* open(me.wallet, "0.5")
        expect(yield* refusal(offer(thin.id))).toBe("underfunded")
        expect(yield* refusal(offer(thin.id))).toBe("underfunded")
        // Verification moves no money.
        expect((yield* ledger.balance(me.wallet)).available).toBe(0n)
      }).pipe(Effect.provide(backend.layer())))
  })
}

// ---------------------------------------------------------------------------
// Two agent services and one settlement service, all on loopback

const FETCH_PRICE = Usdc.make("0.30")
const REASON_PRICE = Usdc.make("1.10")

let fetcherRuns = 0
const Fetcher = Agent.make({
  name: "fetcher",
  input: Topic,
  output: Facts,
  price: FETCH_PRICE,
  run: ({ topic }) =>
    Effect.sync(() => {
      fetcherRuns++
      return { facts: [`${topic}: 3 sources`] }
    })
})

const remoteFetcher = (url: string) =>
  RemoteAgent.remote({ name: "fetcher", url, input: Topic, output: Facts, price: FETCH_PRICE })

/** Served by service A; hires the fetcher on service B with A's own wallet. */
const makeReasoner = (fetcherUrl: string) =>
  Agent.make({
    name: "reasoner",
    input: Topic,
    output: Schema.Struct({ conclusion: Schema.String }),
    price: REASON_PRICE,
    run: ({ topic }) =>
      Effect.map(Orchestrator.hire(remoteFetcher(fetcherUrl), { topic }), ({ facts }) => ({ conclusion: `${facts[0]} agree` }))
  })

interface Registered {
  readonly wallet: WalletAddress
  readonly key: Redacted.Redacted<string>
  readonly referralCode: string
}

const register = (base: string, name: string, referralCode?: string) =>
  Effect.promise(async (): Promise<Registered> => {
    const response = await fetch(`${base}/api/agents`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(referralCode === undefined ? { agent_name: name } : { agent_name: name, referral_code: referralCode })
    })
    const body = (await response.json()) as Record<string, string>
    if (response.status !== 201) throw new Error(`register ${name}: ${response.status} ${JSON.stringify(body)}`)
    return { wallet: body.wallet_address as WalletAddress, key: Redacted.make(body.api_key!), referralCode: body.referral_code! }
  })

const post = (url: string, body: unknown) =>
  Effect.promise(async () => {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
    return { status: response.status, body: (await response.json()) as Record<string, any> }
  })

/** An orchestrator for an already registered wallet, its accounts and escrows over HTTP with the wallet's key. */
const orchestratorOver = (base: string, who: Registered, name: string) =>
  Orchestrator.layer({ name, existing: true, wallet: who.wallet }).pipe(
    Layer.provideMerge(AccountsHttp.layerWithEscrow({ baseUrl: base, apiKey: who.key }))
  )

const world = Effect.gen(function*() {
  const settlement = yield* Layer.build(
    Server.layerMemory({
      settlement: { port: 0, host: "127.0.0.1", agentRequestsPerSecond: 100_000 }
    })
  )
  const base = yield* Effect.provide(Server.baseUrl, settlement)
  const ledger = Context.get(settlement, Ledger)
  const user = yield* register(base, "user")
  const a = yield* register(base, "service-a", user.referralCode)
  const b = yield* register(base, "service-b", a.referralCode)
  yield* ledger.deposit(user.wallet, Usdc.make("100"))
  yield* ledger.claimFaucet({ wallet: a.wallet, agentName: "service-a" })

  // Service B serves the fetcher, verifying escrows through the settlement service with B's key.
  const serviceB = yield* Layer.build(
    RemoteAgent.layerServer([Fetcher], { identity: yield* ledger.getAgent(b.wallet), port: 0 }).pipe(
      Layer.provide(EscrowHttp.layer({ baseUrl: base, apiKey: b.key }))
    )
  )
  const urlB = yield* Effect.provide(RemoteAgent.baseUrl, serviceB)
  // Service A serves the reasoner, which hires B's fetcher with A's wallet.
  const serviceA = yield* Layer.build(
    RemoteAgent.layerServer([makeReasoner(urlB)], { identity: yield* ledger.getAgent(a.wallet), port: 0 }).pipe(
      Layer.provideMerge(orchestratorOver(base, a, "service-a"))
    )
  )
  const urlA = yield* Effect.provide(RemoteAgent.baseUrl, serviceA)
  const userContext = yield* Layer.build(orchestratorOver(base, user, "user"))
  return { base, ledger, user, a, b, urlA, urlB, userContext }
})

describe("remote agents over HTTP: two agent services, one settlement service", () => {
  it.scopedLive("a task hired across both services is paid hop by hop, with referral shares, exactly", () =>
    Effect.gen(function*() {
      const { a, b, ledger, urlA, user, userContext } = yield* world
      const reasoner = RemoteAgent.remote({
        name: "reasoner",
        url: urlA,
        input: Topic,
        output: Schema.Struct({ conclusion: Schema.String }),
        price: REASON_PRICE
      })
      const result = yield* Effect.gen(function*() {
        const handle = yield* Orchestrator.spawn(reasoner)
        expect(handle.wallet).toBe(a.wallet)
        expect(handle.identity.referrer).toBe(user.wallet)
        return yield* Orchestrator.delegate(handle, { topic: "rates" }, { timeoutMs: 20_000 })
      }).pipe(Effect.provide(userContext))
      expect(result).toEqual({ conclusion: "rates: 3 sources agree" })

      const pA = REASON_PRICE as bigint
      const pB = FETCH_PRICE as bigint
      const balance = (w: WalletAddress) => Effect.map(ledger.balance(w), (x) => [x.available as bigint, x.locked as bigint])
      // user referred A: a share of the fee on user→A (A payee) and on A→B (A payer).
      expect(yield* balance(user.wallet)).toEqual([u("100") - pA + shareOf(pA) + shareOf(pB), 0n])
      // A referred B: a share of the fee on A→B.
      expect(yield* balance(a.wallet)).toEqual([u("1") + pA - feeOf(pA) - pB + shareOf(pB), 0n])
      expect(yield* balance(b.wallet)).toEqual([pB - feeOf(pB), 0n])
      const page = yield* ledger.listEscrows({})
      expect(page.escrows.map((e) => e.status)).toEqual(["released", "released"])
      expect((yield* ledger.verify).violations).toEqual([])
    }))

  it.scopedLive("service B refuses forged, underfunded, someone else's and replayed escrow ids before any work", () =>
    Effect.gen(function*() {
      const { a, b, ledger, urlB, user, userContext } = yield* world
      const escrow = Context.get(userContext, Escrow)
      const tasks = `${urlB}/agents/fetcher/tasks`
      const runsBefore = fetcherRuns
      const before = yield* ledger.balance(b.wallet)

      const forged = yield* post(tasks, { escrow_id: "esc_0000000000000000000000000000", input: { topic: "x" } })
      expect([forged.status, forged.body.reason]).toEqual([402, "not_found"])
      const garbage = yield* post(tasks, { escrow_id: "../../etc/passwd", input: { topic: "x" } })
      expect([garbage.status, garbage.body.reason]).toEqual([402, "malformed"])

      const thin = yield* escrow.create({ payer: user.wallet, payee: b.wallet, amount: Usdc.make("0.29"), description: "thin" })
      const underfunded = yield* post(tasks, { escrow_id: thin.id, input: { topic: "x" } })
      expect([underfunded.status, underfunded.body.reason]).toEqual([402, "underfunded"])
      // It paid B, too little: B, its payee, cancelled it, so the user has it back before the deadline.
      expect((yield* ledger.getEscrow(thin.id)).status).toBe("cancelled")

      // An escrow that pays service A: B is not a party, and the settlement service will not show it to B.
      const others = yield* escrow.create({ payer: user.wallet, payee: a.wallet, amount: Usdc.make("5"), description: "for A" })
      const someoneElses = yield* post(tasks, { escrow_id: others.id, input: { topic: "x" } })
      expect([someoneElses.status, someoneElses.body.reason]).toEqual([402, "unverifiable"])

      const bad = yield* post(tasks, { escrow_id: thin.id, input: { topic: "" } })
      expect([bad.status, bad.body._tag, bad.body.field]).toEqual([400, "InvalidInput", "input.topic"])

      expect(fetcherRuns).toBe(runsBefore)
      expect(yield* ledger.balance(b.wallet)).toEqual(before)

      const paid = yield* escrow.create({ payer: user.wallet, payee: b.wallet, amount: FETCH_PRICE, description: "fetch" })
      const ok = yield* post(tasks, { escrow_id: paid.id, input: { topic: "fx" } })
      expect([ok.status, ok.body.output]).toEqual([200, { facts: ["fx: 3 sources"] }])
      const replay = yield* post(tasks, { escrow_id: paid.id, input: { topic: "fx" } })
      expect([replay.status, replay.body.reason]).toEqual([402, "replayed"])
      expect(fetcherRuns).toBe(runsBefore + 1)
      // The payer may not cancel before the deadline (the service's default): the ledger does, to leave no lock behind.
      expect(yield* Effect.flip(escrow.cancel(others.id))).toMatchObject({ _tag: "Forbidden", operation: "cancel", code: "forbidden" })
      yield* ledger.cancelEscrow(others.id)
      yield* escrow.release(paid.id)
    }))

  it.scopedLive("through the orchestrator: an escrow below the remote's price is refused and refunded in full", () =>
    Effect.gen(function*() {
      const { ledger, urlB, user, userContext } = yield* world
      const cheapskate = RemoteAgent.remote({ name: "fetcher", url: urlB, input: Topic, output: Facts, price: Usdc.make("0.10") })
      const error = yield* Effect.gen(function*() {
        const handle = yield* Orchestrator.spawn(cheapskate)
        return yield* Effect.flip(Orchestrator.delegate(handle, { topic: "x" }, { retries: 2 }))
      }).pipe(Effect.provide(userContext))
      expect(error).toBeInstanceOf(EscrowRefused)
      expect((error as EscrowRefused).reason).toBe("underfunded")
      // Not retried: a refusal is final. The one escrow was cancelled by the remote agent, its payee,
      // at once (the orchestrator, its payer, may not before the deadline).
      const page = yield* ledger.listEscrows({ wallet: user.wallet })
      expect(page.escrows.map((e) => e.status)).toEqual(["cancelled"])
      expect((yield* ledger.balance(user.wallet)).available).toBe(u("100"))
    }))

  it.scopedLive("a remote agent whose run fails cancels the escrow itself; the caller is refunded", () =>
    Effect.gen(function*() {
      const settlement = yield* Layer.build(
        Server.layerMemory({ settlement: { port: 0, host: "127.0.0.1", agentRequestsPerSecond: 100_000 } })
      )
      const base = yield* Effect.provide(Server.baseUrl, settlement)
      const ledger = Context.get(settlement, Ledger)
      const user = yield* register(base, "user")
      const worker = yield* register(base, "worker", user.referralCode)
      yield* ledger.deposit(user.wallet, Usdc.make("10"))
      const Flaky = Agent.make({ name: "flaky", input: Topic, output: Facts, price: Usdc.make("2"), run: () => Effect.fail("out of quota") })
      const server = yield* Layer.build(
        RemoteAgent.layerServer([Flaky], { identity: yield* ledger.getAgent(worker.wallet), port: 0 }).pipe(
          Layer.provide(EscrowHttp.layer({ baseUrl: base, apiKey: worker.key }))
        )
      )
      const url = yield* Effect.provide(RemoteAgent.baseUrl, server)
      // Payer cancels are not allowed before the deadline here: only the payee's own cancel refunds early.
      const error = yield* Effect.gen(function*() {
        const handle = yield* Orchestrator.spawn(RemoteAgent.remote({ name: "flaky", url, input: Topic, output: Facts, price: Usdc.make("2") }))
        return yield* Effect.flip(Orchestrator.delegate(handle, { topic: "x" }))
      }).pipe(Effect.provide(orchestratorOver(base, user, "user")))
      expect(error).toMatchObject({ _tag: "RemoteTaskFailed", agent: "flaky" })
      expect((yield* ledger.listEscrows({})).escrows.map((e) => e.status)).toEqual(["cancelled"])
      expect((yield* ledger.balance(user.wallet)).available).toBe(u("10"))
    }))
})

describe("remote agents: the caller's side", () => {
  it.live("spawning an agent whose service is unreachable fails with RemoteAgentUnavailable and registers nothing", () =>
    Effect.gen(function*() {
      const ledger = yield* Ledger
      const before = (yield* ledger.verify).accounts
      const error = yield* Effect.flip(
        Orchestrator.spawn(RemoteAgent.remote({ name: "ghost", url: "http://127.0.0.1:1", input: Topic, output: Facts, price: Usdc.make("1") }))
      )
      expect(error).toMatchObject({ _tag: "RemoteAgentUnavailable", agent: "ghost", url: "http://127.0.0.1:1" })
      expect((yield* ledger.verify).accounts).toBe(before)
    }).pipe(Effect.provide(worldOn(EscrowTest.layer()))))

  it("a bad URL or name is refused when the agent is defined", () => {
    expect(() => RemoteAgent.remote({ name: "x", url: "ftp://example", input: Topic, output: Facts, price: Usdc.make("1") })).toThrow(
      /http\(s\) URL/
    )
    expect(() => RemoteAgent.remote({ name: "a b", url: "http://127.0.0.1:8080", input: Topic, output: Facts, price: Usdc.make("1") }))
      .toThrow(/agent name/)
  })
})
