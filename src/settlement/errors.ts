/**
 * The refusals the settlement rules add to the ledger's (`NotAuthorized`,
 * `Unauthenticated`, `RateLimited`, ...), tagged like the domain errors. Their wire
 * form is the transport's business (`toWire` in src/http/errors.ts).
 */
import { Schema } from "effect"
import type * as Errors from "../domain/errors.js"
import * as Usdc from "../domain/Usdc.js"

/** The caller is authenticated but may not do this (not its wallet, not a party, no mandate). */
export class NotAuthorized extends Schema.TaggedError<NotAuthorized>()("NotAuthorized", {
  message: Schema.String,
  field: Schema.optional(Schema.String)
}) {}

/** No API key, or one that is unknown or past its rotation grace period. */
export class Unauthenticated extends Schema.TaggedError<Unauthenticated>()("Unauthenticated", {
  message: Schema.String
}) {}

/**
 * The presented API key was replaced by a rotation: it still authenticates ordinary
 * calls until `expiresAtMs`, but rotating or revoking keys and granting or revoking
 * mandates or payment tokens need the agent's current key. A key that leaked and was
 * rotated away can so never mint a replacement or hand out spending rights.
 */
export class KeyInGrace extends Schema.TaggedError<KeyInGrace>()("KeyInGrace", {
  agentId: Schema.String,
  expiresAtMs: Schema.Number
}) {
  override get message() {
    return `this API key was replaced by a rotation and only works for ordinary calls until ${
      new Date(this.expiresAtMs).toISOString()
    }; managing keys, mandates and payment tokens needs the agent's current key`
  }
}

/** A rate limit refused the request; nothing was done. */
export class RateLimited extends Schema.TaggedError<RateLimited>()("RateLimited", {
  limit: Schema.String,
  retryAfterMs: Schema.Number
}) {
  override get message() {
    return `rate limit exceeded (${this.limit}); retry after ${this.retryAfterMs} ms`
  }
}

/**
 * A payment token could not pay for this escrow: `reason` says why (unknown,
 * expired, redeemed, wrong_payee, wrong_payer, over_max). Nothing was charged and
 * the token is unchanged.
 */
export class PaymentTokenInvalid extends Schema.TaggedError<PaymentTokenInvalid>()("PaymentTokenInvalid", {
  reason: Schema.Literal("unknown", "expired", "redeemed", "wrong_payee", "wrong_payer", "over_max"),
  message: Schema.String
}) {}

/**
 * The payer's balance does not cover an escrow someone else (a mandated payee, or a
 * payee redeeming a payment token) opens against it. Unlike `InsufficientFunds`, it
 * carries no available balance: a payer's balance is its own business.
 */
export class PayerCannotCover extends Schema.TaggedError<PayerCannotCover>()("PayerCannotCover", {
  wallet: Schema.String,
  requiredMicros: Schema.BigIntFromSelf
}) {
  override get message() {
    return `wallet ${this.wallet} cannot cover the ${Usdc.format(this.requiredMicros)} USDC required`
  }
}

/** Everything a settlement operation can be refused with. */
export type SettlementError =
  | Errors.LedgerError
  | Errors.LedgerUnavailable
  | Errors.BudgetExceeded
  | NotAuthorized
  | KeyInGrace
  | PaymentTokenInvalid
  | PayerCannotCover
  | Unauthenticated
  | RateLimited
