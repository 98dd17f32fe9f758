/**
 * Payment tokens: a payer's one-time authorization for one payee to open one escrow
 * of at most a given amount against the payer's wallet, before a deadline.
 *
 * A wallet address is public, so it cannot authorize a charge; a token can. The
 * payer mints it with its API key (`POST /api/payment-tokens`), hands it to the payee
 * (e.g. as `Authorization: Payment <token>` on a paid route), and the payee redeems
 * it when it opens the escrow (`POST /api/escrow/create` with `payment_token`).
 *
 * - 32 random bytes, shown once, stored only as their SHA-256 (like API keys); it
 *   travels as `Redacted` and is never logged or put in an error.
 * - Scoped: one payee, one payer, a maximum amount, optionally one mandate of the
 *   payer's whose budget the escrow draws on.
 * - Short-lived: 5 minutes by default, at most `maxTtl` (1 hour by default).
 * - Single use: redemption claims the token with one conditional UPDATE (`WHERE
 *   redeemed_at_ms IS NULL`), so of two concurrent redemptions exactly one opens an
 *   escrow. A create the ledger refuses (no funds, mandate exhausted, ...) un-claims
 *   it, so the payer may top up and the same token still pays. A create whose outcome
 *   is unknown (the storage failed) keeps it claimed: the escrow may exist, and a
 *   second one must not. A retry with the same idempotency key as the claim reaches
 *   the ledger again, which returns the escrow the first attempt opened (a client's
 *   retry after a lost response).
 *
 * `redeem` is the one place the rule lives; the REST create (`Settlement.createEscrow`)
 * and the orchestrator's paid routes (`PaidRequests`, embedded ledger) both call it.
 *
 * The rules here touch no storage: they run over a `PaymentTokenStore`
 * (`PaymentTokenStore.ts`, in memory; `sql/PaymentTokenStore.ts`, table
 * `payment_tokens`). Layers: `PaymentTokens.layer` over a provided store,
 * `PaymentTokens.layerMemory` and `PaymentTokens.layerSql` (any `SqlClient`).
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { createHash, randomBytes, timingSafeEqual } from "node:crypto"
import { Clock, Context, Duration, Effect, Layer, Redacted } from "effect"
import { InvalidInput, type LedgerUnavailable } from "../domain/errors.js"
import type { MandateId, WalletAddress } from "../domain/ids.js"
import * as Usdc from "../domain/Usdc.js"
import { PaymentTokenInvalid } from "./errors.js"
import {
  PaymentTokenStore,
  type PaymentTokenStoreShape,
  type PaymentTokenTerms,
  type StoredToken
} from "./PaymentTokenStore.js"
import * as SqlPaymentTokenStore from "./sql/PaymentTokenStore.js"


export interface MintInput {
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  readonly maxAmount: Usdc.Usdc
  /** Default: `defaultTtl`; 1 to `maxTtl` seconds. */
  readonly expiresInSeconds?: number | undefined
  readonly mandateId?: MandateId | undefined
}

export interface MintedToken {
  /** Shown to the payer once. */
  readonly token: Redacted.Redacted<string>
  readonly terms: PaymentTokenTerms
}

/** What the redeeming payee asks a token to pay for. */
export interface Redemption {
  /** The authenticated caller redeeming the token: must be the token's payee. */
  readonly payee: WalletAddress
  /** When the request names a payer, it must be the token's. */
  readonly payer?: WalletAddress | undefined
  readonly amount: Usdc.Usdc
  readonly idempotencyKey?: string | undefined
}

/** What the escrow is opened under once the token is claimed. */
export interface Grant {
  readonly payer: WalletAddress
  readonly mandateId: MandateId | undefined
}

export interface PaymentTokensShape {
  readonly mint: (input: MintInput) => Effect.Effect<MintedToken, InvalidInput | LedgerUnavailable>
  /**
   * Checks the token against `redemption`, claims it, and runs `create` with the
   * token's payer and mandate. A refusal of the token changes nothing; a `create`
   * failing with a typed refusal un-claims it (see the module's doc).
   */
  readonly redeem: <A, E extends { readonly _tag: string }, R>(
    token: Redacted.Redacted<string>,
    redemption: Redemption,
    create: (grant: Grant) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | PaymentTokenInvalid | LedgerUnavailable, R>
}

export const TOKEN_PREFIX = "ptk_"
/** `ptk_` + base64url of 32 bytes. */
const TOKEN_LENGTH = TOKEN_PREFIX.length + 43

export const generateToken = (): string => TOKEN_PREFIX + randomBytes(32).toString("base64url")

const hashToken = (token: string): Buffer => createHash("sha256").update(token, "utf8").digest()

export interface PaymentTokensOptions {
  /** Lifetime of a token minted without `expires_in_seconds`; 5 minutes by default. */
  readonly defaultTtl?: Duration.DurationInput | undefined
  /** The longest lifetime a payer may ask for; 1 hour by default. */
  readonly maxTtl?: Duration.DurationInput | undefined
}

/** Expired tokens are kept this long (a late retry is told "expired", not "unknown"), then purged at a mint. */
const EXPIRED_RETENTION_MS = 24 * 60 * 60 * 1000

const invalid = (reason: PaymentTokenInvalid["reason"], message: string) => Effect.fail(new PaymentTokenInvalid({ reason, message }))

export const make = (store: PaymentTokenStoreShape, options: PaymentTokensOptions = {}): PaymentTokensShape => {
  const maxTtlSeconds = Math.floor(Duration.toSeconds(options.maxTtl ?? "1 hour"))
  const defaultTtlSeconds = Math.min(Math.floor(Duration.toSeconds(options.defaultTtl ?? "5 minutes")), maxTtlSeconds)

  const mint = (input: MintInput): Effect.Effect<MintedToken, InvalidInput | LedgerUnavailable> => {
    const ttlSeconds = input.expiresInSeconds ?? defaultTtlSeconds
    if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > maxTtlSeconds) {
      return Effect.fail(new InvalidInput({ field: "expires_in_seconds", message: `expected a whole number of seconds from 1 to ${maxTtlSeconds}` }))
    }
    if (input.payee === input.payer) {
      return Effect.fail(new InvalidInput({ field: "payee_wallet", message: "a payment token pays another wallet, not the payer's own" }))
    }
    return Effect.flatMap(Clock.currentTimeMillis, (nowMs) => {
      const token = generateToken()
      const row: StoredToken = {
        tokenHash: hashToken(token).toString("hex"),
        payer: input.payer,
        payee: input.payee,
        maxAmount: input.maxAmount,
        mandateId: input.mandateId ?? null,
        createdAtMs: nowMs,
        expiresAtMs: nowMs + ttlSeconds * 1000,
        redeemedAtMs: null,
        redeemedIdempotencyKey: null
      }
      const { tokenHash: _hash, redeemedAtMs: _at, redeemedIdempotencyKey: _key, ...terms } = row
      return store.purgeExpired(nowMs - EXPIRED_RETENTION_MS).pipe(
        Effect.zipRight(store.insert(row)),
        Effect.as({ token: Redacted.make(token), terms })
      )
    })
  }

  const redeem: PaymentTokensShape["redeem"] = (token, redemption, create) =>
    Effect.gen(function*() {
      const text = Redacted.value(token)
      // Malformed tokens are refused without hashing or a storage round trip.
      if (text.length !== TOKEN_LENGTH || !text.startsWith(TOKEN_PREFIX)) {
        return yield* invalid("unknown", "payment token unknown: mint one with POST /api/payment-tokens")
      }
      const digest = hashToken(text)
      const tokenHash = digest.toString("hex")
      const row = yield* store.findByHash(tokenHash)
      // The lookup matched on the hash; compare again in constant time (as for API keys).
      if (row === undefined || !timingSafeEqual(Buffer.from(row.tokenHash, "hex"), digest)) {
        return yield* invalid("unknown", "payment token unknown: mint one with POST /api/payment-tokens")
      }
      if (row.payee !== redemption.payee) {
        return yield* invalid("wrong_payee", `payment token is for payee ${row.payee}, not for the caller ${redemption.payee}`)
      }
      if (redemption.payer !== undefined && redemption.payer !== row.payer) {
        return yield* invalid("wrong_payer", `payment token was minted by ${row.payer}, not by payer_wallet ${redemption.payer}`)
      }
      if (redemption.amount > row.maxAmount) {
        return yield* invalid(
          "over_max",
          `amount ${Usdc.format(redemption.amount)} USDC exceeds the payment token's maximum of ${Usdc.format(row.maxAmount)} USDC`
        )
      }
      const nowMs = yield* Clock.currentTimeMillis
      if (row.expiresAtMs <= nowMs) {
        return yield* invalid("expired", `payment token expired at ${new Date(row.expiresAtMs).toISOString()}: mint a new one`)
      }
      const grant: Grant = { payer: row.payer, mandateId: row.mandateId ?? undefined }
      const key = redemption.idempotencyKey ?? null
      const isRetryOfClaim = (r: StoredToken) => key !== null && r.redeemedIdempotencyKey === key
      if (row.redeemedAtMs !== null) {
        // The ledger's idempotency returns the escrow the claiming create opened; it never opens a second.
        if (isRetryOfClaim(row)) return yield* create(grant)
        return yield* invalid("redeemed", "payment token already redeemed: each token pays for one escrow")
      }
      if (!(yield* store.claim(tokenHash, nowMs, key))) {
        // Lost a race to a concurrent redemption (or it just expired).
        const now = yield* store.findByHash(tokenHash)
        if (now !== undefined && isRetryOfClaim(now)) return yield* create(grant)
        return yield* invalid("redeemed", "payment token already redeemed: each token pays for one escrow")
      }
      return yield* create(grant).pipe(
        Effect.tapError((error) =>
          // Refused: nothing was opened, so the token may pay again. Unknown outcome: it stays spent.
          error._tag === "LedgerUnavailable"
            ? Effect.void
            : store.unclaim(tokenHash, nowMs).pipe(
              Effect.catchAll((e) => Effect.logWarning("payment token could not be un-claimed; it stays spent", { error: e.message }))
            )
        )
      )
    })

  return { mint, redeem }
}

export class PaymentTokens extends Context.Tag("ringmaster/PaymentTokens")<PaymentTokens, PaymentTokensShape>() {
  /** Over the provided store. */
  static readonly layer = (options: PaymentTokensOptions = {}): Layer.Layer<PaymentTokens, never, PaymentTokenStore> =>
    Layer.effect(PaymentTokens, Effect.map(PaymentTokenStore, (store) => make(store, options)))

  /** In process memory. */
  static readonly layerMemory = (options: PaymentTokensOptions = {}): Layer.Layer<PaymentTokens> =>
    PaymentTokens.layer(options).pipe(Layer.provide(PaymentTokenStore.layerMemory))

  /** On the `SqlClient` (SQLite or PostgreSQL), its table created if missing. */
  static readonly layerSql = (options: PaymentTokensOptions = {}): Layer.Layer<PaymentTokens, LedgerUnavailable, SqlClient.SqlClient> =>
    PaymentTokens.layer(options).pipe(Layer.provide(SqlPaymentTokenStore.layer))
}
