/**
 * Where API key hashes live: the store contract `ApiKeys` decides over, with an
 * in-process implementation. The SQL one is `sql/ApiKeyStore.ts` (table `api_keys`).
 */
import { Context, Effect, Layer } from "effect"
import type { LedgerUnavailable } from "../domain/errors.js"
import type { AgentId, WalletAddress } from "../domain/ids.js"

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

/** Each method is atomic. */
export interface ApiKeyStoreShape {
  readonly insert: (row: StoredKey) => Effect.Effect<void, LedgerUnavailable>
  readonly findByHash: (keyHash: string) => Effect.Effect<StoredKey | undefined, LedgerUnavailable>
  /**
   * If `presentedHash` is still a current key (no deadline), gives every key of the
   * agent that outlives `expiresAtMs` (the presented one included) that deadline and
   * inserts `row`; otherwise changes nothing. True when it rotated.
   */
  readonly rotate: (row: StoredKey, expiresAtMs: number, presentedHash: string) => Effect.Effect<boolean, LedgerUnavailable>
  /**
   * If `presentedHash` is still a current key of `agentId`, ends every other live key
   * of the agent at `nowMs` and returns their hashes; otherwise changes nothing and
   * returns null.
   */
  readonly revokeOthers: (
    agentId: AgentId,
    presentedHash: string,
    nowMs: number
  ) => Effect.Effect<ReadonlyArray<string> | null, LedgerUnavailable>
}

export class ApiKeyStore extends Context.Tag("ringmaster/ApiKeyStore")<ApiKeyStore, ApiKeyStoreShape>() {
  /** In process memory: nothing survives the process. */
  static readonly layerMemory: Layer.Layer<ApiKeyStore> = Layer.sync(ApiKeyStore, () => makeMemory())
}

export const makeMemory = (): ApiKeyStoreShape => {
  const rows = new Map<string, StoredKey>()
  /** The presented key's row, if it is a current key of `agentId`. */
  const current = (presentedHash: string, agentId: AgentId) => {
    const presented = rows.get(presentedHash)
    return presented !== undefined && presented.agentId === agentId && presented.expiresAtMs === null
  }
  return {
    insert: (row) => Effect.sync(() => void rows.set(row.keyHash, row)),
    findByHash: (keyHash) => Effect.sync(() => rows.get(keyHash)),
    rotate: (row, expiresAtMs, presentedHash) =>
      Effect.sync(() => {
        if (!current(presentedHash, row.agentId)) return false
        for (const [hash, other] of rows) {
          if (other.agentId === row.agentId && (other.expiresAtMs === null || other.expiresAtMs > expiresAtMs)) {
            rows.set(hash, { ...other, expiresAtMs })
          }
        }
        rows.set(row.keyHash, row)
        return true
      }),
    revokeOthers: (agentId, presentedHash, nowMs) =>
      Effect.sync(() => {
        if (!current(presentedHash, agentId)) return null
        const revoked: Array<string> = []
        for (const [hash, other] of rows) {
          if (
            other.agentId === agentId && hash !== presentedHash && (other.expiresAtMs === null || other.expiresAtMs > nowMs)
          ) {
            rows.set(hash, { ...other, expiresAtMs: nowMs })
            revoked.push(hash)
          }
        }
        return revoked
      })
  }
}
