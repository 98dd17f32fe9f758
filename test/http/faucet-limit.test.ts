/**
 * The faucet's per-address daily limit, over a real server on a real SQLite file:
 * registering throwaway wallets from one address and claiming the faucet for each
 * stops after `faucetClaimsPerAddressPerDay` paid claims, with 429 and Retry-After;
 * a refused claim moves no money; another address is still served; the allowance
 * comes back at midnight UTC (TestClock); claims the ledger refuses do not count;
 * and MCP claims count with REST ones from the same client address.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, TestClock } from "effect"
import * as fs from "node:fs"
import { settlementHttp, sqliteStores } from "../../src/cli/services.js"
import { SystemAccount, type WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import * as Server from "../../src/http/server.js"
import * as SettlementSettings from "../../src/settlement/SettlementConfig.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as LedgerSettings from "../../src/ledger/LedgerConfig.js"
import { call, connect, register, rest, tempDir } from "../mcp/harness.js"
import { type Harness, type Reply, serve, snapshot } from "./harness.js"

const DAY_MS = 86_400_000

const treasury = (h: Harness) => Effect.map(h.ledger.systemBalance(SystemAccount.faucetTreasury), Usdc.format)

/** Registers a fresh wallet and claims the faucet for it, both with the given headers. */
const registerAndClaim = (h: Harness, name: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const registered = yield* h.http("POST", "/api/agents", { body: { agent_name: name }, headers })
    expect(registered.status, JSON.stringify(registered.body)).toBe(201)
    const wallet = registered.body.wallet_address as WalletAddress
    const claim = yield* h.http("POST", "/api/faucet/claim", {
      key: registered.body.api_key,
      body: { wallet_address: wallet, agent_name: name },
      headers
    })
    return { wallet, key: registered.body.api_key as string, claim }
  })

const expectLimited = (reply: Reply, retryAfterMs?: number) => {
  expect(reply.status, JSON.stringify(reply.body)).toBe(429)
  expect(reply.body).toMatchObject({ error: "rate_limited", details: { limit: "3 faucet claims/day per address" } })
  expect(Object.keys(reply.body).sort()).toEqual(["details", "error", "message"])
  const ms = Number(reply.body.details.retry_after_ms)
  expect(ms).toBeGreaterThan(0)
  expect(ms).toBeLessThanOrEqual(DAY_MS)
  if (retryAfterMs !== undefined) expect(ms).toBe(retryAfterMs)
  expect(reply.headers.get("retry-after")).toBe(String(Math.ceil(ms / 1000)))
}

describe("faucet claims per client address per day", () => {
  it.scoped("the drain: ten throwaway wallets from one address are paid three claims; refusals move no money", () =>
    Effect.gen(function*() {
      const h = yield* serve({ sqlite: true })
      const before = yield* treasury(h)
      const wallets: Array<WalletAddress> = []
      for (let i = 0; i < 10; i++) {
        const { wallet, claim } = yield* registerAndClaim(h, `throwaway-${i}`)
        wallets.push(wallet)
        if (i < 3) {
          expect(claim.status, JSON.stringify(claim.body)).toBe(200)
          expect(claim.body).toEqual({ credited_usdc: "1.000000", balance_usdc: "1.000000" })
        } else {
          const around = yield* snapshot(h, wallets)
          // TestClock at the epoch: the allowance comes back at the next midnight UTC.
          expectLimited(claim, DAY_MS)
          expect(yield* snapshot(h, wallets)).toEqual(around)
        }
      }
      expect(Usdc.make(before) - Usdc.make(yield* treasury(h))).toBe(Usdc.make("3"))
      for (const [i, wallet] of wallets.entries()) {
        const b = yield* h.ledger.balance(wallet)
        expect(Usdc.format(b.available)).toBe(i < 3 ? "1.000000" : "0.000000")
      }
      expect((yield* h.ledger.verify).violations).toEqual([])
    }))

  it.scoped("the allowance comes back at midnight UTC (TestClock), not before", () =>
    Effect.gen(function*() {
      const h = yield* serve({ sqlite: true })
      yield* TestClock.setTime(5 * DAY_MS + 10 * 3_600_000)
      for (let i = 0; i < 3; i++) expect((yield* registerAndClaim(h, `day5-${i}`)).claim.status).toBe(200)
      expectLimited((yield* registerAndClaim(h, "day5-refused")).claim, 14 * 3_600_000)

      yield* TestClock.adjust(14 * 3_600_000 - 1)
      const late = yield* registerAndClaim(h, "day5-last-ms")
      expectLimited(late.claim, 1)
      expect((yield* h.ledger.balance(late.wallet)).available).toBe(0n)

      yield* TestClock.adjust(1)
      const next = yield* registerAndClaim(h, "day6-0")
      expect(next.claim.status, JSON.stringify(next.claim.body)).toBe(200)
      expect(Usdc.format((yield* h.ledger.balance(next.wallet)).available)).toBe("1.000000")
    }))

  it.scoped("claims the ledger refuses (already claimed, not your wallet) do not count", () =>
    Effect.gen(function*() {
      const h = yield* serve({ sqlite: true })
      const first = yield* registerAndClaim(h, "first")
      expect(first.claim.status).toBe(200)
      for (let i = 0; i < 5; i++) {
        const again = yield* h.http("POST", "/api/faucet/claim", {
          key: first.key,
          body: { wallet_address: first.wallet, agent_name: "first" }
        })
        expect(again.status).toBe(409)
        expect(again.body.error).toBe("faucet_already_claimed")
      }
      const second = yield* registerAndClaim(h, "second")
      const notYours = yield* h.http("POST", "/api/faucet/claim", {
        key: second.key,
        body: { wallet_address: first.wallet, agent_name: "second" }
      })
      expect(notYours.status).toBe(403)
      expect(second.claim.status).toBe(200)
      expect((yield* registerAndClaim(h, "third")).claim.status).toBe(200)
      expectLimited((yield* registerAndClaim(h, "fourth")).claim)
    }))

  it.scoped("behind a trusted proxy each client address has its own allowance (X-Forwarded-For, Fly-Client-IP)", () =>
    Effect.gen(function*() {
      const h = yield* serve({ sqlite: true, settlement: { trustProxy: true } })
      const drainer = { "x-forwarded-for": "203.0.113.7, 10.0.0.1" }
      for (let i = 0; i < 3; i++) expect((yield* registerAndClaim(h, `drainer-${i}`, drainer)).claim.status).toBe(200)
      expectLimited((yield* registerAndClaim(h, "drainer-3", drainer)).claim)
      // The same client behind another proxy hop order is still the first entry.
      expectLimited((yield* registerAndClaim(h, "drainer-4", { "x-forwarded-for": "203.0.113.7" })).claim)

      const before = yield* treasury(h)
      const other = yield* registerAndClaim(h, "honest", { "fly-client-ip": "198.51.100.9" })
      expect(other.claim.status, JSON.stringify(other.claim.body)).toBe(200)
      const viaForwarded = yield* registerAndClaim(h, "honest-2", { "x-forwarded-for": "198.51.100.10" })
      expect(viaForwarded.claim.status).toBe(200)
      expect(Usdc.make(before) - Usdc.make(yield* treasury(h))).toBe(Usdc.make("2"))
    }))

  it.scoped("without TRUST_PROXY the proxy headers are ignored: the socket's address is limited", () =>
    Effect.gen(function*() {
      const h = yield* serve({ sqlite: true })
      for (let i = 0; i < 3; i++) {
        const headers = { "x-forwarded-for": `203.0.113.${i}`, "fly-client-ip": `198.51.100.${i}` }
        expect((yield* registerAndClaim(h, `spoof-${i}`, headers)).claim.status).toBe(200)
      }
      expectLimited((yield* registerAndClaim(h, "spoof-3", { "x-forwarded-for": "203.0.113.99" })).claim)
    }))

  it.scopedLive("MCP claims count with REST ones from the same address; the refusal is the REST body as a tool error", () =>
    Effect.gen(function*() {
      const dataDir = tempDir("ringmaster-faucet-mcp-")
      yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dataDir, { recursive: true, force: true })))
      const context = yield* Layer.build(
        settlementHttp.pipe(
          Layer.provideMerge(sqliteStores(dataDir)),
          Layer.provideMerge(LedgerSettings.layer()),
          Layer.provideMerge(SettlementSettings.layer({ port: 0, host: "127.0.0.1", trustProxy: true }))
        )
      )
      const base = yield* Effect.provide(Server.baseUrl, context)
      const ledger = yield* Effect.provide(Ledger, context)
      const treasuryBefore = yield* ledger.systemBalance(SystemAccount.faucetTreasury)
      const refused = yield* Effect.promise(async () => {
        const agents = []
        for (let i = 0; i < 4; i++) agents.push(await register(base, `mcp-${i}`))
        const proxied = (ip: string) => ({ "content-type": "application/json", "fly-client-ip": ip })
        // Two over REST, from 192.0.2.1.
        for (const a of agents.slice(0, 2)) {
          const response = await fetch(base + "/api/faucet/claim", {
            method: "POST",
            headers: { ...proxied("192.0.2.1"), authorization: `Bearer ${a.key}` },
            body: JSON.stringify({ wallet_address: a.wallet, agent_name: a.id })
          })
          expect(response.status).toBe(200)
        }
        // The third over MCP from the same address is paid; the fourth is refused.
        const third = await connect(base, agents[2]!.key, { "fly-client-ip": "192.0.2.1" })
        const paid = await call(third, "claim_faucet", { wallet_address: agents[2]!.wallet, agent_name: "third" })
        expect(paid.isError).toBe(false)
        expect(paid.structured).toEqual({ credited_usdc: "1.000000", balance_usdc: "1.000000" })
        const fourth = await connect(base, agents[3]!.key, { "fly-client-ip": "192.0.2.1" })
        const reply = await call(fourth, "claim_faucet", { wallet_address: agents[3]!.wallet, agent_name: "fourth" })
        expect(reply.isError).toBe(true)
        expect(reply.structured).toMatchObject({ error: "rate_limited", details: { limit: "3 faucet claims/day per address" } })
        // From another address, the same agent is paid.
        const elsewhere = await connect(base, agents[3]!.key, { "fly-client-ip": "192.0.2.2" })
        const paidElsewhere = await call(elsewhere, "claim_faucet", { wallet_address: agents[3]!.wallet, agent_name: "fourth" })
        expect(paidElsewhere.isError, JSON.stringify(paidElsewhere.structured)).toBe(false)
        const balance = (await rest(base, "GET", `/api/wallets/${agents[3]!.wallet}`, { key: agents[3]!.key })).body
        await Promise.all([third.close(), fourth.close(), elsewhere.close()])
        return { reply, balance }
      })
      expect(refused.balance.balance_usdc).toBe("1.000000")
      expect(treasuryBefore - (yield* ledger.systemBalance(SystemAccount.faucetTreasury))).toBe(Usdc.make("4"))
    }), { timeout: 60_000 })
})
