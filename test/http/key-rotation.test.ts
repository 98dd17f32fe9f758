/**
 * Who may rotate and revoke API keys: only the agent's current key. A key a rotation
 * replaced works for ordinary calls until its grace ends, and is refused (403
 * `key_in_grace`) for rotating, revoking keys and granting or revoking mandates, so a
 * stolen key the owner rotated away cannot take the account over. Both key stores,
 * the verify cache on the TestClock, and real servers (memory and SQLite).
 */
import { SqliteClient } from "@effect/sql-sqlite-node"
import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Layer, TestClock } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { AgentId, WalletAddress } from "../../src/domain/ids.js"
import { ApiKeys, make as makeApiKeys } from "../../src/settlement/ApiKeys.js"
import { make as sqlStore } from "../../src/settlement/sql/ApiKeyStore.js"
import { createApiKeysTable } from "../../src/settlement/migrations.js"
import { agent, serve, snapshot } from "./harness.js"

const owner = { agentId: "agt_0000000000test" as AgentId, wallet: ("0x" + "1".repeat(40)) as WalletAddress }

const sqlite = () => SqliteClient.layer({ filename: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-keys-")), "keys.db") })

const stores = [
  ["memory", ApiKeys.layerMemory],
  ["SQLite", Layer.unwrapEffect(Effect.sync(() => ApiKeys.layerSql({ cacheTtl: "10 seconds" }).pipe(Layer.provide(sqlite()))))]
] as const

describe("ApiKeys: only the current key manages keys", () => {
  for (const [name, layer] of stores) {
    it.scoped(`${name}: a replaced key cannot rotate or revoke, even presented as current (a stale cache elsewhere)`, () =>
      Effect.gen(function*() {
        const keys = yield* ApiKeys
        const first = yield* keys.issue(owner)
        // What another instance may still hold in its cache after the rotation below.
        const firstAsCurrent = (yield* keys.verify(first))!
        const { apiKey: second, previousExpiresAtMs } = yield* keys.rotate(firstAsCurrent, "1 hour")

        const inGrace = (yield* keys.verify(first))!
        expect(inGrace.expiresAtMs).toBe(previousExpiresAtMs)
        for (const presented of [inGrace, firstAsCurrent]) {
          expect(yield* Effect.flip(keys.rotate(presented, "1 hour"))).toMatchObject({
            _tag: "KeyInGrace",
            expiresAtMs: previousExpiresAtMs
          })
          expect(yield* Effect.flip(keys.revokeOthers(presented))).toMatchObject({ _tag: "KeyInGrace" })
        }
        // The refusals changed nothing: the first key still has its grace, the second is still current.
        expect(yield* keys.verify(first)).toMatchObject({ expiresAtMs: previousExpiresAtMs })
        const secondVerified = (yield* keys.verify(second))!
        expect(secondVerified.expiresAtMs).toBeNull()

        // The current key ends the others at once; a second revoke finds none live.
        expect(yield* keys.revokeOthers(secondVerified)).toEqual({ revokedCount: 1, revokedAtMs: 0 })
        expect(yield* keys.verify(first)).toBeNull()
        expect(yield* keys.revokeOthers(secondVerified)).toMatchObject({ revokedCount: 0 })
        expect(yield* keys.verify(second)).toMatchObject({ ...owner, expiresAtMs: null })
      }).pipe(Effect.provide(layer)))
  }

  it.scoped("SQLite with the cache on: no cached entry outlives the key's deadline", () =>
    Effect.gen(function*() {
      const keys = yield* ApiKeys
      const first = yield* keys.issue(owner)
      // Cached as current, for 10 seconds.
      const firstAsCurrent = (yield* keys.verify(first))!
      expect(firstAsCurrent.expiresAtMs).toBeNull()
      const { apiKey: second } = yield* keys.rotate(firstAsCurrent, "2 seconds")
      // Cached again, now with its deadline, for less than the cache's 10 seconds.
      expect(yield* keys.verify(first)).toMatchObject({ expiresAtMs: 2_000 })
      yield* TestClock.adjust("1999 millis")
      expect(yield* keys.verify(first)).toMatchObject(owner)
      yield* TestClock.adjust("1 millis")
      expect(yield* keys.verify(first)).toBeNull()
      expect(yield* keys.verify(second)).toMatchObject(owner)

      // Revoking drops the cached entries too: a key verified (and cached) just before is refused just after.
      const secondVerified = (yield* keys.verify(second))!
      const { apiKey: third } = yield* keys.rotate(secondVerified, "1 hour")
      expect(yield* keys.verify(second)).toMatchObject({ expiresAtMs: 2_000 + 3_600_000 })
      yield* keys.revokeOthers((yield* keys.verify(third))!)
      expect(yield* keys.verify(second)).toBeNull()
    }).pipe(Effect.provide(stores[1][1])))

  it.scoped("SQLite: the rotation and the check that the key is current are one transaction (two instances, one database)", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createApiKeysTable
      const a = makeApiKeys(sqlStore(sql), { cacheTtl: "10 seconds" })
      const b = makeApiKeys(sqlStore(sql), { cacheTtl: "10 seconds" })
      const first = yield* a.issue(owner)
      const onA = (yield* a.verify(first))!
      const onB = (yield* b.verify(first))!
      // Both instances saw the key as current; the owner rotates through A, a thief through B.
      const rotated = yield* a.rotate(onA, "1 hour")
      expect(yield* Effect.flip(b.rotate(onB, "1 hour"))).toMatchObject({ _tag: "KeyInGrace", expiresAtMs: 3_600_000 })
      const rows = yield* sql<{ readonly expires_at_ms: number | null }>`SELECT expires_at_ms FROM api_keys ORDER BY created_at_ms`
      expect(rows.filter((r) => r.expires_at_ms === null)).toHaveLength(1)
      expect(yield* b.verify(rotated.apiKey)).toMatchObject({ ...owner, expiresAtMs: null })
    }).pipe(Effect.provide(sqlite())))
})

const backends = [["memory", false], ["SQLite", true]] as const

describe("key rotation over HTTP", () => {
  for (const [name, sqliteBackend] of backends) {
    it.scoped(`${name}: after the owner rotates, the old key cannot rotate, revoke or touch mandates; the new key keeps working`, () =>
      Effect.gen(function*() {
        const h = yield* serve({ sqlite: sqliteBackend, settlement: { keyRotationGrace: Duration.seconds(2) } })
        const alice = yield* agent(h, "alice", "10")
        const bob = yield* agent(h, "bob")
        const wallets = [alice.wallet, bob.wallet]
        const status = (key: string) => Effect.map(h.http("GET", `/api/wallets/${alice.wallet}`, { key }), (r) => r.status)
        const mandate = (key: string) =>
          h.http("POST", "/api/mandates", {
            key,
            body: { payee_wallet: bob.wallet, max_amount_usdc: "1", budget_usdc: "5" }
          })

        // The owner rotates; the old key leaked.
        const owners = yield* h.http("POST", "/api/agents/rotate-key", { key: alice.key })
        expect(owners.status).toBe(200)
        const fresh = owners.body.api_key as string
        const before = yield* snapshot(h, wallets)

        // The thief's rotation with the old key is refused, and so is everything that manages keys or mandates.
        const thief = yield* h.http("POST", "/api/agents/rotate-key", { key: alice.key })
        expect(thief).toMatchObject({
          status: 403,
          body: { error: "key_in_grace", field: "Authorization", details: { agent_id: alice.agentId, expires_at: "1970-01-01T00:00:02.000Z" } }
        })
        expect(thief.body.api_key).toBeUndefined()
        expect(yield* h.http("POST", "/api/agents/rotate-key", { key: alice.key, body: { grace_seconds: 0 } })).toMatchObject({
          status: 403,
          body: { error: "key_in_grace" }
        })
        expect(yield* h.http("POST", "/api/agents/revoke-keys", { key: alice.key })).toMatchObject({
          status: 403,
          body: { error: "key_in_grace" }
        })
        expect(yield* mandate(alice.key)).toMatchObject({ status: 403, body: { error: "key_in_grace" } })
        expect(yield* snapshot(h, wallets)).toEqual(before)

        // Ordinary calls with the old key work until its grace ends.
        expect(yield* status(alice.key)).toBe(200)

        // Mandates: granted with the current key, and not revocable with the old one.
        const granted = yield* mandate(fresh)
        expect(granted.status).toBe(201)
        const mandateId = granted.body.mandate_id as string
        expect(yield* h.http("DELETE", `/api/mandates/${mandateId}`, { key: alice.key })).toMatchObject({
          status: 403,
          body: { error: "key_in_grace" }
        })
        expect(yield* h.http("DELETE", `/api/mandates/${mandateId}`, { key: fresh })).toMatchObject({
          status: 200,
          body: { revoked: true }
        })

        yield* TestClock.adjust("3 seconds")
        expect(yield* status(alice.key)).toBe(401)
        expect(yield* status(fresh)).toBe(200)
        // The owner is still in control: the new key rotates.
        expect((yield* h.http("POST", "/api/agents/rotate-key", { key: fresh })).status).toBe(200)
        expect(yield* snapshot(h, wallets)).toEqual(before)
      }))
  }

  it.scoped("grace_seconds: 0 ends the old key at once; absent, the configured grace; bad values are 400 and change nothing", () =>
    Effect.gen(function*() {
      const h = yield* serve({ settlement: { keyRotationGrace: Duration.minutes(10) } })
      const alice = yield* agent(h, "alice", "10")
      const status = (key: string) => Effect.map(h.http("GET", `/api/wallets/${alice.wallet}`, { key }), (r) => r.status)
      const rotate = (key: string, body?: unknown) => h.http("POST", "/api/agents/rotate-key", { key, body })

      for (const bad of [-1, 1.5, "60", 601, 10 ** 12, null]) {
        const refused = yield* rotate(alice.key, { grace_seconds: bad })
        expect(refused.status, JSON.stringify(bad)).toBe(400)
        expect(refused.body.field).toBe("grace_seconds")
      }
      // Nothing was rotated: the key is still the current one.
      expect(yield* h.http("POST", "/api/agents/revoke-keys", { key: alice.key })).toMatchObject({
        status: 200,
        body: { agent_id: alice.agentId, revoked_count: 0 }
      })

      // The published contract: the body is optional, and revoke-keys is there.
      const spec = (yield* h.http("GET", "/openapi.json")).body
      expect(spec.paths["/api/agents/rotate-key"].post.requestBody.required).toBe(false)
      expect(Object.keys(spec.paths["/api/agents/revoke-keys"].post.responses)).toContain("403")

      // An empty object takes the configured grace, as an empty body does.
      const defaulted = yield* rotate(alice.key, {})
      expect(defaulted.status).toBe(200)
      expect(defaulted.body.previous_key_expires_at).toBe(new Date(10 * 60_000).toISOString())
      const second = defaulted.body.api_key as string

      const shorter = yield* rotate(second, { grace_seconds: 30 })
      expect(shorter.body.previous_key_expires_at).toBe(new Date(30_000).toISOString())
      const third = shorter.body.api_key as string
      // The whole configured grace is allowed.
      const longest = yield* rotate(third, { grace_seconds: 600 })
      expect(longest.status).toBe(200)
      const fourth = longest.body.api_key as string

      const immediate = yield* rotate(fourth, { grace_seconds: 0 })
      expect(immediate.status).toBe(200)
      expect(immediate.body.previous_key_expires_at).toBe(new Date(0).toISOString())
      expect(yield* status(fourth)).toBe(401)
      expect(yield* status(immediate.body.api_key)).toBe(200)
      // A later rotation with a short grace also cut the older keys' grace short: none outlives its latest deadline.
      expect(yield* status(alice.key)).toBe(401)
      expect(yield* status(second)).toBe(401)
      expect(yield* status(third)).toBe(401)
    }))

  it.scoped("POST /api/agents/revoke-keys: the current key ends every other key now and says how many", () =>
    Effect.gen(function*() {
      const h = yield* serve({ settlement: { keyRotationGrace: Duration.hours(24) } })
      const alice = yield* agent(h, "alice")
      const bob = yield* agent(h, "bob")
      const status = (key: string, wallet = alice.wallet) =>
        Effect.map(h.http("GET", `/api/wallets/${wallet}`, { key }), (r) => r.status)
      const second = (yield* h.http("POST", "/api/agents/rotate-key", { key: alice.key })).body.api_key as string
      yield* TestClock.adjust("1 minute")
      const third = (yield* h.http("POST", "/api/agents/rotate-key", { key: second })).body.api_key as string
      expect(yield* status(alice.key)).toBe(200)
      expect(yield* status(second)).toBe(200)

      expect(yield* h.http("POST", "/api/agents/revoke-keys", { key: second })).toMatchObject({
        status: 403,
        body: { error: "key_in_grace" }
      })
      const revoked = yield* h.http("POST", "/api/agents/revoke-keys", { key: third })
      expect(revoked).toMatchObject({
        status: 200,
        body: { agent_id: alice.agentId, revoked_count: 2, revoked_at: new Date(60_000).toISOString() }
      })
      expect(yield* status(alice.key)).toBe(401)
      expect(yield* status(second)).toBe(401)
      expect(yield* status(third)).toBe(200)
      // Another agent's key is untouched.
      expect(yield* status(bob.key, bob.wallet)).toBe(200)
      expect((yield* h.http("POST", "/api/agents/revoke-keys", { key: third })).body.revoked_count).toBe(0)
      expect((yield* h.http("POST", "/api/agents/revoke-keys", {})).status).toBe(401)
    }))
})
