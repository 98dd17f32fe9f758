/**
 * API key rotation on PostgreSQL with concurrent transactions: rotations and
 * revocations racing with the same key (as several instances whose caches all still
 * hold it as current would send them) leave exactly one winner and one current key.
 */
import { SqlClient } from "@effect/sql"
import { afterAll, beforeAll, expect, it } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import type { AgentId, WalletAddress } from "../../src/domain/ids.js"
import { make as makeApiKeys } from "../../src/settlement/ApiKeys.js"
import { make as sqlStore } from "../../src/settlement/sql/ApiKeyStore.js"
import { createApiKeysTable } from "../../src/settlement/migrations.js"
import { createDatabase, describePg, schemaLayer, type TestDatabase } from "./harness.js"

let db: TestDatabase | undefined

const owner = { agentId: "agt_0000000000test" as AgentId, wallet: ("0x" + "1".repeat(40)) as WalletAddress }

const keysDb = () => {
  const { client, lifecycle } = schemaLayer(db!.url)
  return Layer.provideMerge(lifecycle, client)
}

describePg("PostgreSQL: API key rotation under concurrency", () => {
  beforeAll(async () => {
    db = await createDatabase("apikeys")
  })
  afterAll(async () => {
    await db?.drop()
  })

  it.live("8 rotations with one key at once, through 4 instances: one new key, the rest key_in_grace", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* createApiKeysTable
      const instances = Array.from({ length: 4 }, () => makeApiKeys(sqlStore(sql), { cacheTtl: "10 seconds" }))
      const first = yield* instances[0]!.issue(owner)
      // Every instance verified (and cached) the key as current.
      const presented = yield* Effect.forEach(instances, (keys) => Effect.map(keys.verify(first), (k) => k!))

      const outcomes = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => i),
        (i) => Effect.either(instances[i % 4]!.rotate(presented[i % 4]!, "1 hour")),
        { concurrency: "unbounded" }
      )
      const winners = outcomes.filter(Either.isRight)
      expect(winners).toHaveLength(1)
      for (const lost of outcomes.filter(Either.isLeft)) expect(lost.left._tag).toBe("KeyInGrace")

      const rows = yield* sql<{ readonly expires_at_ms: string | null }>`SELECT expires_at_ms FROM api_keys`
      expect(rows).toHaveLength(2)
      expect(rows.filter((r) => r.expires_at_ms === null)).toHaveLength(1)
      const current = (yield* instances[1]!.verify(winners[0]!.right.apiKey))!
      expect(current.expiresAtMs).toBeNull()

      // Revocations with the current key racing rotations with it: at most one rotation wins (a revoke leaves
      // the presented key current), and the agent still has exactly one current key.
      const raced = yield* Effect.forEach(
        Array.from({ length: 8 }, (_, i) => i),
        (i) =>
          Effect.either(
            i % 2 === 0 ? instances[i % 4]!.revokeOthers(current) : Effect.asVoid(instances[i % 4]!.rotate(current, "1 hour"))
          ),
        { concurrency: "unbounded" }
      )
      expect(raced.filter((r, i) => i % 2 === 1 && Either.isRight(r)).length).toBeLessThanOrEqual(1)
      for (const lost of raced.filter(Either.isLeft)) expect(lost.left._tag).toBe("KeyInGrace")
      const after = yield* sql<{ readonly expires_at_ms: string | null }>`SELECT expires_at_ms FROM api_keys`
      expect(after.filter((r) => r.expires_at_ms === null)).toHaveLength(1)
    }).pipe(Effect.provide(keysDb())))
})
