/**
 * API keys: 32 random bytes, shown once, stored only as their SHA-256.
 *
 * A presented key is hashed and looked up by its hash; the stored hash is then
 * compared with the computed one in constant time. The key itself is never stored,
 * logged or put in an error (it travels as `Redacted`). Rotation issues a new key
 * and gives every older live key of the agent a deadline (`grace`), so a fleet can
 * switch keys without downtime.
 *
 * Only the agent's current key (the one no rotation has given a deadline) may
 * rotate or revoke keys. The store checks that in the same transaction as the
 * change, so a key another instance still holds in its cache as current, or a
 * second rotation racing the first, cannot issue a key: a stolen key that has been
 * rotated away can never mint a replacement and lock the owner out.
 *
 * The rules here touch no storage: they run over an `ApiKeyStore` (`ApiKeyStore.ts`,
 * in memory; `sql/ApiKeyStore.ts`, table `api_keys`). Layers: `ApiKeys.layer` over a
 * provided store, `ApiKeys.layerMemory` (tests, the in-memory service) and
 * `ApiKeys.layerSql` (any `SqlClient`).
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { Clock, Context, Duration, Effect, Layer, Redacted } from "effect"
import { BoundedMap } from "../domain/BoundedMap.js"
import type { LedgerUnavailable } from "../domain/errors.js"
import type { AgentId } from "../domain/ids.js"
import { type ApiKeyOwner, ApiKeyStore, type ApiKeyStoreShape, type StoredKey } from "./ApiKeyStore.js"
import { KeyInGrace } from "./errors.js"
import * as SqlApiKeyStore from "./sql/ApiKeyStore.js"

/** A key `verify` accepted: its owner, and which key it is and whether a rotation has given it a deadline. */
export interface VerifiedKey extends ApiKeyOwner {
  readonly keyHash: string
  /** Null for the agent's current key; a rotated-away key works until then. */
  readonly expiresAtMs: number | null
}

export interface ApiKeysShape {
  /** A new key for a freshly registered agent. */
  readonly issue: (owner: ApiKeyOwner) => Effect.Effect<Redacted.Redacted<string>, LedgerUnavailable>
  /**
   * A new key, asked for with the agent's current key (`presented`, as `verify`
   * gave it); the agent's older keys keep working for `grace` (0: not at all), then
   * stop. `KeyInGrace` when `presented` is no longer current in storage.
   */
  readonly rotate: (
    presented: VerifiedKey,
    grace: Duration.DurationInput
  ) => Effect.Effect<
    { readonly apiKey: Redacted.Redacted<string>; readonly previousExpiresAtMs: number },
    KeyInGrace | LedgerUnavailable
  >
  /**
   * Ends every other key of the agent now, asked for with its current key; how many
   * were live. `KeyInGrace` when `presented` is no longer current in storage.
   */
  readonly revokeOthers: (
    presented: VerifiedKey
  ) => Effect.Effect<{ readonly revokedCount: number; readonly revokedAtMs: number }, KeyInGrace | LedgerUnavailable>
  /** The key's owner and state, or null when the key is unknown, malformed or expired. */
  readonly verify: (key: Redacted.Redacted<string>) => Effect.Effect<VerifiedKey | null, LedgerUnavailable>
}

export const KEY_PREFIX = "pk_"
/** `pk_` + base64url of 32 bytes. */
const KEY_LENGTH = KEY_PREFIX.length + 43

export const generateKey = (): string => KEY_PREFIX + randomBytes(32).toString("base64url")

export const hashKey = (key: string): Buffer => createHash("sha256").update(key, "utf8").digest()

export interface ApiKeysOptions {
  /**
   * How long a verified key is remembered in process, so the hot path does not hit
   * storage on every request, and never past the key's deadline. A rotation or
   * revocation in this process takes effect at once; another instance sharing the
   * database sees it at most this late. 0 disables the cache.
   */
  readonly cacheTtl?: Duration.DurationInput | undefined
  /** Entries kept at most. */
  readonly cacheMaxEntries?: number | undefined
}

export const make = (store: ApiKeyStoreShape, options: ApiKeysOptions = {}): ApiKeysShape => {
  const cacheTtlMs = Duration.toMillis(options.cacheTtl ?? 0)
  const cacheMax = options.cacheMaxEntries ?? 10_000
  const cache = new BoundedMap<string, { readonly row: StoredKey; readonly untilMs: number }>(cacheMax)

  const lookup = (keyHash: string, nowMs: number): Effect.Effect<StoredKey | undefined, LedgerUnavailable> => {
    if (cacheTtlMs > 0) {
      const hit = cache.get(keyHash)
      if (hit !== undefined) {
        if (hit.untilMs > nowMs && !isExpired(hit.row, nowMs)) return Effect.succeed(hit.row)
        cache.delete(keyHash)
      }
    }
    return Effect.map(store.findByHash(keyHash), (row) => {
      // An expired key is not remembered: it is refused from storage each time, and
      // a live key is remembered no longer than it lives.
      if (row !== undefined && cacheTtlMs > 0 && !isExpired(row, nowMs)) {
        const untilMs = Math.min(nowMs + cacheTtlMs, row.expiresAtMs ?? Number.POSITIVE_INFINITY)
        cache.set(keyHash, { row, untilMs })
      }
      return row
    })
  }

  /** Rotations and revocations are rare: this agent's keys are read from storage again, so a new deadline applies here at once. */
  const forgetAgent = (agentId: AgentId) =>
    Effect.sync(() => {
      for (const [hash, entry] of cache) if (entry.row.agentId === agentId) cache.delete(hash)
    })

  /** The refusal for a key that storage no longer holds as current. */
  const notCurrent = (presented: VerifiedKey, nowMs: number) =>
    Effect.flatMap(store.findByHash(presented.keyHash), (row) =>
      Effect.fail(new KeyInGrace({ agentId: presented.agentId, expiresAtMs: row?.expiresAtMs ?? presented.expiresAtMs ?? nowMs })))

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
    rotate: (presented, grace) =>
      Effect.flatMap(Clock.currentTimeMillis, (nowMs) => {
        const { key, row } = newRow(presented, nowMs)
        const previousExpiresAtMs = nowMs + Duration.toMillis(grace)
        return store.rotate(row, previousExpiresAtMs, presented.keyHash).pipe(
          Effect.tap(() => forgetAgent(presented.agentId)),
          Effect.flatMap((rotated) =>
            rotated ? Effect.succeed({ apiKey: Redacted.make(key), previousExpiresAtMs }) : notCurrent(presented, nowMs)
          )
        )
      }),
    revokeOthers: (presented) =>
      Effect.flatMap(Clock.currentTimeMillis, (nowMs) =>
        store.revokeOthers(presented.agentId, presented.keyHash, nowMs).pipe(
          Effect.tap(() => forgetAgent(presented.agentId)),
          Effect.flatMap((revoked) =>
            revoked === null
              ? notCurrent(presented, nowMs)
              : Effect.succeed({ revokedCount: revoked.length, revokedAtMs: nowMs })
          )
        )),
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
          if (isExpired(row, nowMs)) return null
          return { agentId: row.agentId, wallet: row.wallet, keyHash: row.keyHash, expiresAtMs: row.expiresAtMs }
        })
      )
    }
  }
}

const isExpired = (row: StoredKey, nowMs: number) => row.expiresAtMs !== null && row.expiresAtMs <= nowMs

export class ApiKeys extends Context.Tag("ringmaster/ApiKeys")<ApiKeys, ApiKeysShape>() {
  /** Over the provided store. */
  static readonly layer = (options: ApiKeysOptions = {}): Layer.Layer<ApiKeys, never, ApiKeyStore> =>
    Layer.effect(ApiKeys, Effect.map(ApiKeyStore, (store) => make(store, options)))

  /** In process memory. */
  static readonly layerMemory: Layer.Layer<ApiKeys> = ApiKeys.layer().pipe(Layer.provide(ApiKeyStore.layerMemory))

  /** On the `SqlClient` (SQLite or PostgreSQL), its table created if missing. */
  static readonly layerSql = (options: ApiKeysOptions = { cacheTtl: "10 seconds" }): Layer.Layer<ApiKeys, LedgerUnavailable, SqlClient.SqlClient> =>
    ApiKeys.layer(options).pipe(Layer.provide(SqlApiKeyStore.layer))
}
