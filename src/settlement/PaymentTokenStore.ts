/**
 * Where payment token hashes live: the store contract `PaymentTokens` decides over,
 * with an in-process implementation. The SQL one is `sql/PaymentTokenStore.ts`
 * (table `payment_tokens`).
 */
import { Context, Effect, Layer } from "effect"
import type { LedgerUnavailable } from "../domain/errors.js"
import type { MandateId, WalletAddress } from "../domain/ids.js"
import type * as Usdc from "../domain/Usdc.js"

/** What a token allows; fixed when it is minted. */
export interface PaymentTokenTerms {
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  readonly maxAmount: Usdc.Usdc
  /** The payer's mandate whose budget the escrow draws on; null: the payer's wallet directly. */
  readonly mandateId: MandateId | null
  readonly createdAtMs: number
  readonly expiresAtMs: number
}

export interface StoredToken extends PaymentTokenTerms {
  /** Hex SHA-256 of the token. */
  readonly tokenHash: string
  readonly redeemedAtMs: number | null
  /** The idempotency key of the create that claimed it, so that create's retry reaches the ledger again. */
  readonly redeemedIdempotencyKey: string | null
}

/** Each method is atomic. */
export interface PaymentTokenStoreShape {
  readonly insert: (row: StoredToken) => Effect.Effect<void, LedgerUnavailable>
  readonly findByHash: (tokenHash: string) => Effect.Effect<StoredToken | undefined, LedgerUnavailable>
  /** Marks the token redeemed at `nowMs` if it is neither redeemed nor expired; true when this call did. */
  readonly claim: (tokenHash: string, nowMs: number, idempotencyKey: string | null) => Effect.Effect<boolean, LedgerUnavailable>
  /** Undoes the claim made at `claimedAtMs` (the escrow it was to pay for was refused). */
  readonly unclaim: (tokenHash: string, claimedAtMs: number) => Effect.Effect<void, LedgerUnavailable>
  /** Forgets tokens that expired before `beforeMs`. */
  readonly purgeExpired: (beforeMs: number) => Effect.Effect<void, LedgerUnavailable>
}

export class PaymentTokenStore extends Context.Tag("ringmaster/PaymentTokenStore")<PaymentTokenStore, PaymentTokenStoreShape>() {
  /** In process memory: nothing survives the process. */
  static readonly layerMemory: Layer.Layer<PaymentTokenStore> = Layer.sync(PaymentTokenStore, () => makeMemory())
}

export const makeMemory = (): PaymentTokenStoreShape => {
  const rows = new Map<string, StoredToken>()
  return {
    insert: (row) => Effect.sync(() => void rows.set(row.tokenHash, row)),
    findByHash: (tokenHash) => Effect.sync(() => rows.get(tokenHash)),
    claim: (tokenHash, nowMs, idempotencyKey) =>
      Effect.sync(() => {
        const row = rows.get(tokenHash)
        if (row === undefined || row.redeemedAtMs !== null || row.expiresAtMs <= nowMs) return false
        rows.set(tokenHash, { ...row, redeemedAtMs: nowMs, redeemedIdempotencyKey: idempotencyKey })
        return true
      }),
    unclaim: (tokenHash, claimedAtMs) =>
      Effect.sync(() => {
        const row = rows.get(tokenHash)
        if (row !== undefined && row.redeemedAtMs === claimedAtMs) {
          rows.set(tokenHash, { ...row, redeemedAtMs: null, redeemedIdempotencyKey: null })
        }
      }),
    purgeExpired: (beforeMs) =>
      Effect.sync(() => {
        for (const [hash, row] of rows) if (row.expiresAtMs < beforeMs) rows.delete(hash)
      })
  }
}
