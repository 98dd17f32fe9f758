/**
 * API keys (hash-only storage, rotation with a grace period on the TestClock, both
 * stores), rate limits (429 with Retry-After, per agent and per address, proxy
 * headers trusted only when configured) and the body limit.
 */
import { SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, Redacted, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { AgentId, WalletAddress } from "../../src/domain/ids.js"
import { ApiKeys, hashKey } from "../../src/settlement/ApiKeys.js"
import { migrations } from "../../src/settlement/migrations.js"
import { agent, serve, snapshot } from "./harness.js"

const owner = { agentId: "agt_0000000000test" as AgentId, wallet: ("0x" + "1".repeat(40)) as WalletAddress }
const other = { agentId: "agt_0000000000othr" as AgentId, wallet: ("0x" + "2".repeat(40)) as WalletAddress }

const sqliteKeys = Layer.unwrapEffect(
  Effect.sync(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-keys-"))
    return ApiKeys.layerSql({ cacheTtl: "10 seconds" }).pipe(Layer.provideMerge(SqliteClient.layer({ filename: path.join(dir, "keys.db") })))
  })
)

const stores = [
  ["memory", ApiKeys.layerMemory],
  ["SQLite", sqliteKeys]
] as const

describe("ApiKeys", () => {
  for (const [name, layer] of stores) {
    it.scoped(`${name}: a rotated key works for the grace period, then stops (TestClock)`, () =>
      Effect.gen(function*() {
        const keys = yield* ApiKeys
        const first = yield* keys.issue(owner)
        const bystander = yield* keys.issue(other)
        const firstVerified = yield* keys.verify(first)
        expect(firstVerified).toEqual({ ...owner, keyHash: hashKey(Redacted.value(first)).toString("hex"), expiresAtMs: null })

        yield* TestClock.adjust("1 hour")
        const { apiKey: second, previousExpiresAtMs } = yield* keys.rotate(firstVerified!, "24 hours")
        expect(previousExpiresAtMs).toBe(3_600_000 + 86_400_000)
        expect(Redacted.value(second)).not.toBe(Redacted.value(first))
        expect(yield* keys.verify(first)).toMatchObject({ ...owner, expiresAtMs: previousExpiresAtMs })
        expect(yield* keys.verify(second)).toMatchObject({ ...owner, expiresAtMs: null })

        yield* TestClock.adjust("23 hours")
        yield* TestClock.adjust("59 minutes")
        expect(yield* keys.verify(first)).toMatchObject(owner)
        yield* TestClock.adjust("1 minute")
        expect(yield* keys.verify(first)).toBeNull()
        expect(yield* keys.verify(second)).toMatchObject(owner)
        // Another agent's key is untouched by the rotation.
        expect(yield* keys.verify(bystander)).toMatchObject({ ...other, expiresAtMs: null })

        // A second rotation with a shorter grace ends the current key sooner; it never extends an older one.
        const { apiKey: third } = yield* keys.rotate((yield* keys.verify(second))!, "1 minute")
        yield* TestClock.adjust("1 minute")
        expect(yield* keys.verify(second)).toBeNull()
        expect(yield* keys.verify(first)).toBeNull()
        expect(yield* keys.verify(third)).toMatchObject(owner)

        // Malformed and unknown keys are refused.
        expect(yield* keys.verify(Redacted.make("pk_short"))).toBeNull()
        expect(yield* keys.verify(Redacted.make("pk_" + "A".repeat(43)))).toBeNull()
      }).pipe(Effect.provide(layer)))
  }

  it.scoped("SQLite stores only the SHA-256 of a key, never the key", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys
      const sql = yield* SqlClient.SqlClient
      const key = Redacted.value(yield* keys.issue(owner))
      const rows = yield* sql<Record<string, unknown>>`SELECT * FROM api_keys`
      expect(rows).toHaveLength(1)
      expect(rows[0]!["key_hash"]).toBe(hashKey(key).toString("hex"))
      expect(JSON.stringify(rows)).not.toContain(key.slice(3))
      // The migration record is the same statement: running it again is harmless.
      yield* migrations["0101_api_keys"]
      expect(yield* keys.verify(Redacted.make(key))).toMatchObject(owner)
    }).pipe(Effect.provide(sqliteKeys)))
})

describe("key rotation over HTTP", () => {
  it.scoped("POST /api/agents/rotate-key: the old key keeps working for the configured grace, then 401", () =>
    Effect.gen(function*() {
      const h = yield* serve({ settlement: { keyRotationGrace: Duration.minutes(10) } })
      const alice = yield* agent(h, "alice")
      const balance = (key: string) => Effect.map(h.http("GET", `/api/wallets/${alice.wallet}`, { key }), (r) => r.status)
      const rotated = yield* h.http("POST", "/api/agents/rotate-key", { key: alice.key })
      expect(rotated.status).toBe(200)
      expect(Date.parse(rotated.body.previous_key_expires_at)).toBe(10 * 60_000)
      const fresh = rotated.body.api_key as string
      expect(yield* balance(alice.key)).toBe(200)
      expect(yield* balance(fresh)).toBe(200)
      yield* TestClock.adjust("9 minutes")
      expect(yield* balance(alice.key)).toBe(200)
      yield* TestClock.adjust("1 minute")
      const refused = yield* h.http("GET", `/api/wallets/${alice.wallet}`, { key: alice.key })
      expect(refused).toMatchObject({ status: 401, body: { error: "unauthorized" } })
      expect(yield* balance(fresh)).toBe(200)
    }))
})

describe("rate limits", () => {
  it.scoped("per agent: the (N+1)th request in a second is 429 with Retry-After, and nothing changes; the bucket refills", () =>
    Effect.gen(function*() {
      const h = yield* serve({ settlement: { agentRequestsPerSecond: 5 } })
      const payer = yield* agent(h, "payer", "10")
      const payee = yield* agent(h, "payee")
      const create = h.http("POST", "/api/escrow/create", {
        key: payer.key,
        body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "1", description: "x" }
      })
      for (let i = 0; i < 5; i++) expect((yield* create).status).toBe(201)
      const before = yield* snapshot(h, [payer.wallet, payee.wallet])
      const limited = yield* create
      expect(limited).toMatchObject({ status: 429, body: { error: "rate_limited" } })
      expect(Number(limited.body.details.retry_after_ms)).toBeGreaterThan(0)
      expect(limited.headers.get("retry-after")).toBe("1")
      expect(yield* snapshot(h, [payer.wallet, payee.wallet])).toEqual(before)
      // Other agents have their own buckets.
      expect((yield* h.http("GET", `/api/wallets/${payee.wallet}`, { key: payee.key })).status).toBe(200)
      yield* TestClock.adjust("1 second")
      expect((yield* create).status).toBe(201)
    }))

  it.scoped("registrations per client address; X-Forwarded-For is ignored unless the proxy is trusted", () =>
    Effect.gen(function*() {
      const h = yield* serve({ settlement: { registrationsPerMinute: 3 } })
      const register = (headers: Record<string, string> = {}) =>
        Effect.map(h.http("POST", "/api/agents", { body: { agent_name: "a" }, headers }), (r) => r.status)
      for (let i = 0; i < 3; i++) expect(yield* register({ "x-forwarded-for": `10.0.0.${i}` })).toBe(201)
      const before = (yield* h.ledger.verify).accounts
      expect(yield* register({ "x-forwarded-for": "10.0.0.99", "fly-client-ip": "10.0.0.98" })).toBe(429)
      expect((yield* h.ledger.verify).accounts).toBe(before)
      yield* TestClock.adjust("20 seconds")
      expect(yield* register()).toBe(201)
    }))

  it.scoped("behind a trusted proxy, Fly-Client-IP / X-Forwarded-For pick the bucket", () =>
    Effect.gen(function*() {
      const h = yield* serve({ settlement: { registrationsPerMinute: 2, trustProxy: true } })
      const register = (headers: Record<string, string>) =>
        Effect.map(h.http("POST", "/api/agents", { body: { agent_name: "a" }, headers }), (r) => r.status)
      expect(yield* register({ "fly-client-ip": "203.0.113.1" })).toBe(201)
      expect(yield* register({ "fly-client-ip": "203.0.113.1" })).toBe(201)
      expect(yield* register({ "fly-client-ip": "203.0.113.1" })).toBe(429)
      expect(yield* register({ "fly-client-ip": "203.0.113.2" })).toBe(201)
      expect(yield* register({ "x-forwarded-for": "198.51.100.7, 10.0.0.1" })).toBe(201)
      expect(yield* register({ "x-forwarded-for": "198.51.100.7, 10.0.0.2" })).toBe(201)
      expect(yield* register({ "x-forwarded-for": "198.51.100.7" })).toBe(429)
    }))

  it.scoped("the default limits do not stop a burst of legitimate load", () =>
    Effect.gen(function*() {
      const h = yield* serve()
      const a = yield* agent(h, "a")
      const statuses = yield* Effect.forEach(
        Array.from({ length: 300 }, () => h.http("GET", `/api/wallets/${a.wallet}`, { key: a.key })),
        (r) => Effect.map(r, (x) => x.status),
        { concurrency: 50 }
      )
      expect(statuses.every((s) => s === 200)).toBe(true)
    }))
})

describe("body size limit", () => {
  it.scoped("a chunked body that grows past the limit is refused too (413 or the connection is cut), nothing changes", () =>
    Effect.gen(function*() {
      const h = yield* serve({ settlement: { maxBodyBytes: 1024 } })
      const payer = yield* agent(h, "payer", "10")
      const payee = yield* agent(h, "payee")
      const before = yield* snapshot(h, [payer.wallet, payee.wallet])
      const body = JSON.stringify({
        payer_wallet: payer.wallet,
        payee_wallet: payee.wallet,
        amount_usdc: "1",
        description: "x".repeat(4096)
      })
      const outcome = yield* Effect.promise(async () => {
        const encoder = new TextEncoder()
        const stream = new ReadableStream({
          start(controller) {
            for (let i = 0; i < body.length; i += 512) controller.enqueue(encoder.encode(body.slice(i, i + 512)))
            controller.close()
          }
        })
        try {
          const response = await fetch(`${h.base}/api/escrow/create`, {
            method: "POST",
            headers: { authorization: `Bearer ${payer.key}`, "content-type": "application/json" },
            body: stream,
            duplex: "half"
          } as RequestInit)
          return { status: response.status, body: await response.json() as any }
        } catch (error) {
          return { status: 0, body: String(error) }
        }
      })
      if (outcome.status !== 0) expect(outcome).toMatchObject({ status: 413, body: { error: "payload_too_large" } })
      expect(yield* snapshot(h, [payer.wallet, payee.wallet])).toEqual(before)
      // A body within the limit is accepted.
      const small = yield* h.http("POST", "/api/escrow/create", {
        key: payer.key,
        body: { payer_wallet: payer.wallet, payee_wallet: payee.wallet, amount_usdc: "1", description: "ok" }
      })
      expect(small.status).toBe(201)
    }))
})
