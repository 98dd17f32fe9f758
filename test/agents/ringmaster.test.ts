/**
 * The one-call set-ups: each gives an orchestrator program everything it needs in
 * one layer. `test()` under the TestClock with scripted failures, `memory()`,
 * `local()` on a real SQLite file, and `remote()` against a real settlement server
 * on a loopback port: registering, funding, keeping and checking its identity.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Redacted, Schema } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Agent from "../../src/agents/Agent.js"
import { Accounts } from "../../src/agents/Accounts.js"
import { Orchestrator } from "../../src/agents/Orchestrator.js"
import * as Ringmaster from "../../src/agents/Ringmaster.js"
import * as RingmasterLocal from "../../src/agents/RingmasterLocal.js"
import * as RingmasterRemote from "../../src/client/RingmasterRemote.js"
import { LedgerUnavailable } from "../../src/domain/errors.js"
import type { WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { Escrow } from "../../src/escrow/Escrow.js"
import { EscrowTest } from "../../src/escrow/EscrowTest.js"
import * as Server from "../../src/http/server.js"
import { Ledger, type LedgerConfigShape } from "../../src/ledger/Ledger.js"
import { feeOf, shareOf, tempDir, Text, Topic, u } from "./support.js"

const Writer = Agent.make({
  name: "writer",
  input: Topic,
  output: Text,
  price: Usdc.make("0.5"),
  run: ({ topic }) => Effect.succeed({ text: `${topic} rose` })
})

/** Delegates one task to a fresh writer; returns both wallets' balances afterwards. */
const hireWriter = Effect.gen(function*() {
  const me = yield* Orchestrator.identity
  const writer = yield* Orchestrator.spawn(Writer)
  const { text } = yield* Orchestrator.delegate(writer, { topic: "rates" })
  const accounts = yield* Accounts
  return {
    text,
    me: (yield* accounts.balance(me.wallet)).available as bigint,
    writer: (yield* accounts.balance(writer.wallet)).available as bigint
  }
})

const paidOnce = (deposit: bigint) => ({
  text: "rates rose",
  me: deposit - u("0.5") + shareOf(u("0.5")),
  writer: u("0.5") - feeOf(u("0.5"))
})

describe("Ringmaster.test()", () => {
  it.effect("three injected release failures are retried at once under the TestClock; the writer is paid once", () =>
    Effect.gen(function*() {
      const test = yield* EscrowTest
      yield* test.failNext("release", new LedgerUnavailable({ message: "settlement restarting" }), { times: 3 })
      expect(yield* hireWriter).toEqual(paidOnce(u("5")))
      expect((yield* test.calls).map((c) => `${c.op}:${c.outcome._tag}`)).toEqual([
        "create:Success",
        "release:Failure",
        "release:Failure",
        "release:Failure",
        "release:Success"
      ])
      expect(yield* (yield* Escrow).unsettled).toEqual([])
      expect((yield* test.ledger.verify).violations).toEqual([])
    }).pipe(Effect.provide(Ringmaster.test({ deposit: Usdc.make("5") }))))

  it.effect("more failures than retries: recorded for reconciliation, the price still locked, nothing waited for", () =>
    Effect.gen(function*() {
      const test = yield* EscrowTest
      const me = yield* Orchestrator.identity
      yield* test.failNext("release", new LedgerUnavailable({ message: "down" }), { times: 5 })
      yield* hireWriter
      const unsettled = yield* (yield* Escrow).unsettled
      expect(unsettled).toMatchObject([{ intent: "release", attempts: 5, error: "down" }])
      expect(yield* test.ledger.balance(me.wallet)).toMatchObject({ available: u("4.5"), locked: u("0.5") })
    }).pipe(Effect.provide(Ringmaster.test({ deposit: Usdc.make("5") }))))

  it.effect("a sub-agent that dies twice is restarted at once under the TestClock", () =>
    Effect.gen(function*() {
      let runs = 0
      const shaky = yield* Orchestrator.spawn(
        Agent.make({
          name: "shaky",
          input: Topic,
          output: Text,
          price: Usdc.make("1"),
          run: ({ topic }) => Effect.suspend(() => (++runs < 3 ? Effect.dieMessage("crashed") : Effect.succeed({ text: topic })))
        })
      )
      expect(yield* Orchestrator.delegate(shaky, { topic: "ok" })).toEqual({ text: "ok" })
      expect(runs).toBe(3)
      expect((yield* shaky.status).restarts).toBe(2)
    }).pipe(Effect.provide(Ringmaster.test({ deposit: Usdc.make("5") }))))

  it.effect("takes the ledger's rules and the orchestrator's name and budget", () =>
    Effect.gen(function*() {
      expect((yield* Orchestrator.identity).name).toBe("lab")
      const writer = yield* Orchestrator.spawn(Writer)
      yield* Orchestrator.delegate(writer, { topic: "a" })
      expect((yield* Effect.flip(Orchestrator.delegate(writer, { topic: "b" })))._tag).toBe("BudgetExceeded")
      // A 5% fee: the writer nets 0.475.
      expect((yield* (yield* Ledger).balance(writer.wallet)).available).toBe(u("0.475"))
    }).pipe(
      Effect.provide(
        Ringmaster.test({
          name: "lab",
          deposit: Usdc.make("5"),
          budget: { perRun: Usdc.make("0.8") },
          ledger: { fees: { feePpm: 50_000, referralTiersPpm: [] } }
        })
      )
    ))
})

describe("Ringmaster.memory()", () => {
  it.effect("an orchestrator, its accounts, escrow and ledger in one layer", () =>
    Effect.gen(function*() {
      expect(yield* hireWriter).toEqual(paidOnce(u("10")))
      expect((yield* (yield* Ledger).verify).violations).toEqual([])
    }).pipe(Effect.provide(Ringmaster.memory({ deposit: Usdc.make("10") }))))
})

describe("Ringmaster.local({ dataDir })", () => {
  it.scoped("keeps the ledger in dataDir/ledger.db: a later start finds the orchestrator and its balance", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir("ringmaster-local-")
      const first = yield* Effect.provide(
        Effect.zip(hireWriter, Orchestrator.identity),
        RingmasterLocal.local({ dataDir, synchronous: "NORMAL", deposit: Usdc.make("10") })
      )
      expect(first[0]).toEqual(paidOnce(u("10")))
      expect(fs.existsSync(path.join(dataDir, "ledger.db"))).toBe(true)
      const wallet = first[1].wallet
      const again = yield* Effect.provide(
        Effect.flatMap(Orchestrator, (o) => o.balance),
        RingmasterLocal.local({ dataDir, existing: true, wallet })
      )
      expect(again.available).toBe(first[0].me)
    }))
})

// ---------------------------------------------------------------------------
// remote(): a settlement server on a loopback port

const settlementServer = (options: { readonly ledger?: Partial<LedgerConfigShape> } = {}) =>
  Effect.gen(function*() {
    const context = yield* Layer.build(
      Server.layerMemory({ ...options, settlement: { port: 0, host: "127.0.0.1", agentRequestsPerSecond: 100_000 } })
    )
    return { baseUrl: yield* Effect.provide(Server.baseUrl, context), ledger: Context.get(context, Ledger) }
  })

/** `POST /api/agents`, as a client outside this process registers: the key is shown only here. */
const registerOverHttp = (baseUrl: string, body: { readonly agent_name: string; readonly referral_code?: string }) =>
  Effect.promise(() =>
    fetch(`${baseUrl}/api/agents`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then(
      (r) => r.json() as Promise<{ wallet_address: WalletAddress; api_key: string }>
    )
  )

const StoredIdentity = Schema.Struct({ base_url: Schema.String, agent_name: Schema.String, wallet_address: Schema.String, api_key: Schema.String })

describe("Ringmaster.remote({ baseUrl })", () => {
  it.scopedLive("registers and funds its identity at the first start, keeps it in identityFile, and finds it again", () =>
    Effect.gen(function*() {
      const { baseUrl, ledger } = yield* settlementServer()
      const identityFile = path.join(yield* tempDir("ringmaster-remote-"), "keys", "orchestrator.json")
      const first = yield* Effect.provide(
        Effect.zip(Orchestrator.identity, hireWriter),
        RingmasterRemote.remote({ baseUrl, identityFile, name: "planner" })
      )
      const [me, paid] = first
      expect(me.name).toBe("planner")
      // The faucet's 1 USDC paid the writer; the orchestrator referred the writer and got its share.
      expect(paid).toEqual(paidOnce(u("1")))
      const stored = Schema.decodeUnknownSync(StoredIdentity)(JSON.parse(fs.readFileSync(identityFile, "utf8")))
      expect(stored).toMatchObject({ base_url: baseUrl, agent_name: "planner", wallet_address: me.wallet })
      expect(fs.statSync(identityFile).mode & 0o777).toBe(0o600)

      // The second start reads the file: the same wallet, not funded again (it holds something).
      const again = yield* Effect.provide(
        Effect.flatMap(Orchestrator, (o) => Effect.zip(Effect.succeed(o.identity), o.balance)),
        RingmasterRemote.remote({ baseUrl, identityFile })
      )
      expect(again[0].wallet).toBe(me.wallet)
      expect(again[1].available).toBe(paid.me)
      expect((yield* ledger.verify).violations).toEqual([])

      // A plain-string key with its wallet works the same, and is held redacted.
      const given = RingmasterRemote.remote({ baseUrl, apiKey: stored.api_key, wallet: stored.wallet_address })
      const found = yield* Effect.provide(Orchestrator.identity, given)
      expect([found.wallet, found.name]).toEqual([me.wallet, "planner"])
    }))

  it.scopedLive("an API key alone: the service names its agent and wallet, and the orchestrator pays from that wallet", () =>
    Effect.gen(function*() {
      const { baseUrl, ledger } = yield* settlementServer()
      const root = yield* ledger.registerAgent({ name: "root" })
      const registered = yield* registerOverHttp(baseUrl, { agent_name: "keyholder", referral_code: root.referralCode })
      yield* ledger.deposit(registered.wallet_address, Usdc.make("3"))

      const [me, paid] = yield* Effect.provide(
        Effect.zip(Orchestrator.identity, hireWriter),
        RingmasterRemote.remote({ baseUrl, apiKey: registered.api_key, faucet: false })
      )
      expect([me.wallet, me.name]).toEqual([registered.wallet_address, "keyholder"])
      // Paid from the key's wallet: nothing registered in its place, no faucet claimed.
      expect(paid).toEqual(paidOnce(u("3")))
      expect((yield* ledger.balance(registered.wallet_address)).available).toBe(paid.me)
      expect((yield* ledger.referrals(root.wallet)).referred.map((r) => r.agent.name)).toEqual(["keyholder"])
      expect((yield* ledger.verify).violations).toEqual([])
    }))

  it.scopedLive("refuses, naming what is missing: a key the service does not know, the key of a wallet, a key not the wallet's", () =>
    Effect.gen(function*() {
      const { baseUrl, ledger } = yield* settlementServer()
      // Every start below would register under root's code if it registered anything.
      const root = yield* ledger.registerAgent({ name: "root" })
      const start = (options: Omit<RingmasterRemote.RemoteOptions, "baseUrl">) =>
        Effect.flip(
          Effect.provide(Orchestrator.identity, RingmasterRemote.remote({ baseUrl, referralCode: root.referralCode, ...options }))
        )

      const unknown = yield* start({ apiKey: "rm_key" })
      expect(unknown).toMatchObject({ _tag: "RemoteSetupFailed", missing: "apiKey" })
      expect(unknown.message).toContain("did not accept this API key")
      const someone = yield* ledger.registerAgent({ name: "someone", referralCode: root.referralCode })
      expect(yield* start({ wallet: someone.wallet })).toMatchObject({ _tag: "RemoteSetupFailed", missing: "apiKey" })
      const forged = yield* start({ wallet: someone.wallet, apiKey: Redacted.make("rm_not_a_key") })
      expect(forged).toMatchObject({ _tag: "RemoteSetupFailed", missing: "apiKey" })
      expect(forged.message).toContain(someone.wallet)
      const other = yield* registerOverHttp(baseUrl, { agent_name: "other" })
      const crossed = yield* start({ wallet: someone.wallet, apiKey: other.api_key })
      expect(crossed).toMatchObject({ _tag: "RemoteSetupFailed", missing: "apiKey" })
      expect(crossed.message).toContain(`belongs to wallet ${other.wallet_address}, not ${someone.wallet}`)
      expect(yield* start({ wallet: "not-a-wallet", apiKey: "x" })).toMatchObject({ missing: "wallet" })
      expect(yield* start({ baseUrl: "ftp://nowhere" } as never)).toMatchObject({ _tag: "InvalidInput", field: "baseUrl" })
      expect((yield* ledger.referrals(root.wallet)).referred.map((r) => r.agent.name)).toEqual(["someone"])
    }))

  it.scopedLive("an identity file of another service, or not an identity, is refused before anything is registered", () =>
    Effect.gen(function*() {
      const { baseUrl } = yield* settlementServer()
      const dir = yield* tempDir("ringmaster-remote-")
      const elsewhere = path.join(dir, "elsewhere.json")
      fs.writeFileSync(
        elsewhere,
        JSON.stringify({ base_url: "http://10.0.0.1:8080", agent_name: "x", wallet_address: `0x${"a".repeat(40)}`, api_key: "k" })
      )
      const garbage = path.join(dir, "garbage.json")
      fs.writeFileSync(garbage, "{\"api_key\":")
      for (const identityFile of [elsewhere, garbage]) {
        const error = yield* Effect.flip(Effect.provide(Orchestrator.identity, RingmasterRemote.remote({ baseUrl, identityFile })))
        expect(error).toMatchObject({ _tag: "RemoteSetupFailed", missing: "identityFile" })
        expect(error.message).toContain(identityFile)
      }
    }))

  it.scopedLive("without funds from the faucet, the start fails naming the wallet to fund; faucet: false runs unfunded", () =>
    Effect.gen(function*() {
      const { baseUrl, ledger } = yield* settlementServer({ ledger: { faucetTreasuryInitial: Usdc.zero } })
      const identityFile = path.join(yield* tempDir("ringmaster-remote-"), "id.json")
      const error = yield* Effect.flip(Effect.provide(Orchestrator.identity, RingmasterRemote.remote({ baseUrl, identityFile })))
      expect(error).toMatchObject({ _tag: "RemoteSetupFailed", missing: "funds" })
      const wallet = JSON.parse(fs.readFileSync(identityFile, "utf8")).wallet_address as WalletAddress
      expect(error.message).toContain(wallet)
      expect(error.message).toContain("FaucetTreasuryEmpty")
      const unfunded = yield* Effect.provide(Orchestrator.identity, RingmasterRemote.remote({ baseUrl, identityFile, faucet: false }))
      expect(unfunded.wallet).toBe(wallet)
      // Funded from outside, the next start needs no faucet.
      yield* ledger.deposit(wallet, Usdc.make("2"))
      const funded = yield* Effect.provide(Effect.flatMap(Orchestrator, (o) => o.balance), RingmasterRemote.remote({ baseUrl, identityFile }))
      expect(funded.available).toBe(u("2"))
    }))
})
