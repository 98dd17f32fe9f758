/**
 * API keys: 32 random bytes, shown once, stored only as their SHA-256.
 *
 * A presented key is hashed and looked up by its hash; the stored hash is then
 * compared with the computed one in constant time. The key itself is never stored,
 * logged or put in an error (it travels as `Redacted`). Rotation issues a new key
 * and gives every older live key of the agent a deadline (`grace`), so a fleet can
 * switch keys without downtime.
 *
 * Layers: `ApiKeys.layerMemory` (tests, the in-memory service) and
 * `ApiKeys.layerSql` (any `SqlClient`; table `api_keys`, migration in
 * `migrations.ts`).
 */
import { SqlClient } from "@effect/sql"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { Clock, Context, Duration, Effect, Layer, Redacted } from "effect"
import { LedgerUnavailable } from "../domain/errors.js"
import type { AgentId, WalletAddress } from "../domain/ids.js"
import { createApiKeysTable } from "./migrations.js"

export interface ApiKeyOwner {
  readonly agentId: AgentId
  readonly wallet: WalletAddress
}

export interface StoredKey extends ApiKeyOwner {
  /** Hex SHA-256 of the key. */
  readonly keyHash: string
  readonly createdAtMs: number
  /** Set by a rotation: the key stops working at this time. */
  readonly expiresAtMs: number | null
}

/** Where key hashes live. Each method is atomic. */
export interface ApiKeyStore {
  readonly insert: (row: StoredKey) => Effect.Effect<void, LedgerUnavailable>
  readonly findByHash: (keyHash: string) => Effect.Effect<StoredKey | undefined, LedgerUnavailable>
  /** Gives every other key of the agent that outlives `expiresAtMs` that deadline, and inserts `row`. */
  readonly rotate: (row: StoredKey, expiresAtMs: number) => Effect.Effect<void, LedgerUnavailable>
}

export interface ApiKeysShape {
  /** A new key for a freshly registered agent. */
  readonly issue: (owner: ApiKeyOwner) => Effect.Effect<Redacted.Redacted<string>, LedgerUnavailable>
  /** A new key; the agent's older keys keep working for `grace`, then stop. */
  readonly rotate: (
    owner: ApiKeyOwner,
    grace: Duration.DurationInput
  ) => Effect.Effect<{ readonly apiKey: Redacted.Redacted<string>; readonly previousExpiresAtMs: number }, LedgerUnavailable>
  /** The key's owner, or null when the key is unknown, malformed or expired. */
  readonly verify: (key: Redacted.Redacted<string>) => Effect.Effect<ApiKeyOwner | null, LedgerUnavailable>
}

export const KEY_PREFIX = "pk_"
/** `pk_` + base64url of 32 bytes. */
const KEY_LENGTH = KEY_PREFIX.length + 43

export const generateKey = (): string => KEY_PREFIX + randomBytes(32).toString("base64url")

export const hashKey = (key: string): Buffer => createHash("sha256").update(key, "utf8").digest()

export interface ApiKeysOptions {
  /**
   * How long a verified key is remembered in process, so the hot path does not hit
   * storage on every request. A rotation in this process takes effect at once;
   * another instance sharing the database sees an expiry at most this late.
   * 0 disables the cache.
   */
  readonly cacheTtl?: Duration.DurationInput | undefined
  /** Entries kept at most. */
  readonly cacheMaxEntries?: number | undefined
}

export const make = (store: ApiKeyStore, options: ApiKeysOptions = {}): ApiKeysShape => {
  const cacheTtlMs = Duration.toMillis(options.cacheTtl ?? 0)
  const cacheMax = options.cacheMaxEntries ?? 10_000
  const cache = new Map<string, { readonly row: StoredKey; readonly untilMs: number }>()

  const lookup = (keyHash: string, nowMs: number): Effect.Effect<StoredKey | undefined, LedgerUnavailable> => {
    if (cacheTtlMs > 0) {
      const hit = cache.get(keyHash)
      if (hit !== undefined && hit.untilMs > nowMs) return Effect.succeed(hit.row)
    }
    return Effect.map(store.findByHash(keyHash), (row) => {
      if (row !== undefined && cacheTtlMs > 0) {
        if (cache.size >= cacheMax) cache.delete(cache.keys().next().value!)
        cache.set(keyHash, { row, untilMs: nowMs + cacheTtlMs })
      }
      return row
    })
  }

  const newRow = (owner: ApiKeyOwner, nowMs: number) => {
    const key = generateKey()
    const row: StoredKey = {
      keyHash: hashKey(key).toString("hex"),
      agentId: owner.agentId,
      wallet: owner.wallet,
      createdAtMs: nowMs,
      expiresAtMs: null
    }
    return { key, row }
  }

  return {
    issue: (owner) =>
      Effect.flatMap(Clock.currentTimeMillis, (nowMs) => {
        const { key, row } = newRow(owner, nowMs)
        return Effect.as(store.insert(row), Redacted.make(key))
      }),
    rotate: (owner, grace) =>
      Effect.flatMap(Clock.currentTimeMillis, (nowMs) => {
        const { key, row } = newRow(owner, nowMs)
        const previousExpiresAtMs = nowMs + Duration.toMillis(grace)
        return store.rotate(row, previousExpiresAtMs).pipe(
          Effect.tap(() =>
            Effect.sync(() => {
              // Rotations are rare: drop this agent's cached keys so the new deadline applies here at once.
              for (const [hash, entry] of cache) if (entry.row.agentId === owner.agentId) cache.delete(hash)
            })
          ),
          Effect.as({ apiKey: Redacted.make(key), previousExpiresAtMs })
        )
      }),
    verify: (key) => {
      const text = Redacted.value(key)
      // Malformed keys are refused without hashing or a storage round trip.
      if (text.length !== KEY_LENGTH || !text.startsWith(KEY_PREFIX)) return Effect.succeed(null)
      const digest = hashKey(text)
      return Effect.flatMap(Clock.currentTimeMillis, (nowMs) =>
        Effect.map(lookup(digest.toString("hex"), nowMs), (row) => {
          if (row === undefined) return null
          // The lookup matched on the hash; compare it again in constant time so no
          // code path's timing depends on how much of a stored hash a guess shares.
          if (!timingSafeEqual(Buffer.from(row.keyHash, "hex"), digest)) return null
          if (row.expiresAtMs !== null && row.expiresAtMs <= nowMs) return null
          return { agentId: row.agentId, wallet: row.wallet }
        })
      )
    }
  }
}

export class ApiKeys extends Context.Tag("ringmaster/ApiKeys")<ApiKeys, ApiKeysShape>() {
  /** In process memory. */
  static readonly layerMemory: Layer.Layer<ApiKeys> = Layer.sync(ApiKeys, () => make(memoryStore()))

  /**
   * On the `SqlClient` (SQLite or PostgreSQL). Creates its table if missing (the
   * same statement as migration `0101_api_keys`, so running both is harmless).
   */
  static readonly layerSql = (options: ApiKeysOptions = { cacheTtl: "10 seconds" }): Layer.Layer<ApiKeys, LedgerUnavailable, SqlClient.SqlClient> =>
    Layer.effect(
      ApiKeys,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* createApiKeysTable.pipe(Effect.mapError(unavailable))
        return make(sqlStore(sql), options)
      })
    )
}

export const memoryStore = (): ApiKeyStore => {
  const rows = new Map<string, StoredKey>()
  return {
    insert: (row) => Effect.sync(() => void rows.set(row.keyHash, row)),
    findByHash: (keyHash) => Effect.sync(() => rows.get(keyHash)),
    rotate: (row, expiresAtMs) =>
      Effect.sync(() => {
        for (const [hash, other] of rows) {
          if (other.agentId === row.agentId && (other.expiresAtMs === null || other.expiresAtMs > expiresAtMs)) {
            rows.set(hash, { ...other, expiresAtMs })
          }
        }
        rows.set(row.keyHash, row)
      })
  }
}

const unavailable = (cause: unknown) =>
  new LedgerUnavailable({ message: "api key storage failed", cause })

interface KeyRow {
  readonly key_hash: string
  readonly agent_id: string
  readonly wallet: string
  readonly created_at_ms: number | string | bigint
  readonly expires_at_ms: number | string | bigint | null
}

export const sqlStore = (sql: SqlClient.SqlClient): ApiKeyStore => {
  const insert = (row: StoredKey) =>
    sql`INSERT INTO api_keys (key_hash, agent_id, wallet, created_at_ms, expires_at_ms)
        VALUES (${row.keyHash}, ${row.agentId}, ${row.wallet}, ${row.createdAtMs}, ${row.expiresAtMs})`
  return {
    insert: (row) => insert(row).pipe(Effect.asVoid, Effect.mapError(unavailable)),
    findByHash: (keyHash) =>
      sql<KeyRow>`SELECT key_hash, agent_id, wallet, created_at_ms, expires_at_ms FROM api_keys WHERE key_hash = ${keyHash}`.pipe(
        Effect.map((rows) => {
          const r = rows[0]
          if (r === undefined) return undefined
          // PostgreSQL returns BIGINT as a string, SQLite as a number.
          return {
            keyHash: r.key_hash,
            agentId: r.agent_id as AgentId,
            wallet: r.wallet as WalletAddress,
            createdAtMs: Number(r.created_at_ms),
            expiresAtMs: r.expires_at_ms === null ? null : Number(r.expires_at_ms)
          }
        }),
        Effect.mapError(unavailable)
      ),
    rotate: (row, expiresAtMs) =>
      sql.withTransaction(
        Effect.zipRight(
          sql`UPDATE api_keys SET expires_at_ms = ${expiresAtMs}
              WHERE agent_id = ${row.agentId} AND (expires_at_ms IS NULL OR expires_at_ms > ${expiresAtMs})`,
          insert(row)
        )
      ).pipe(Effect.asVoid, Effect.mapError(unavailable))
  }
}
