/**
 * Every way a money operation can be refused, as typed values carrying the facts a
 * caller needs. A refused operation changes nothing. Messages print amounts in USDC
 * with 6 places; the fields keep the exact micros.
 */
import { Schema } from "effect"
import { format, InvalidAmount } from "./Usdc.js"

export { InvalidAmount }

const Micros = Schema.BigIntFromSelf

/** A call's input is malformed; `field` names what was wrong. */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  field: Schema.String,
  message: Schema.String
}) {}

export class InsufficientFunds extends Schema.TaggedError<InsufficientFunds>()("InsufficientFunds", {
  wallet: Schema.String,
  requiredMicros: Micros,
  availableMicros: Micros
}) {
  override get message() {
    return `wallet ${this.wallet} has ${format(this.availableMicros)} USDC available, ${format(this.requiredMicros)} required`
  }
}

export class AgentNotFound extends Schema.TaggedError<AgentNotFound>()("AgentNotFound", {
  wallet: Schema.String
}) {
  override get message() {
    return `no agent is registered with wallet ${this.wallet}`
  }
}

export class WalletAlreadyRegistered extends Schema.TaggedError<WalletAlreadyRegistered>()("WalletAlreadyRegistered", {
  wallet: Schema.String
}) {
  override get message() {
    return `wallet ${this.wallet} is already registered`
  }
}

export class ReferralCodeNotFound extends Schema.TaggedError<ReferralCodeNotFound>()("ReferralCodeNotFound", {
  referralCode: Schema.String
}) {
  override get message() {
    return `no agent has referral code ${this.referralCode}`
  }
}

/** An agent cannot refer itself, directly or through a chain. */
export class ReferralCycle extends Schema.TaggedError<ReferralCycle>()("ReferralCycle", {
  wallet: Schema.String,
  referralCode: Schema.String
}) {
  override get message() {
    return `referral code ${this.referralCode} leads back to wallet ${this.wallet}`
  }
}

export class EscrowNotFound extends Schema.TaggedError<EscrowNotFound>()("EscrowNotFound", {
  escrowId: Schema.String
}) {
  override get message() {
    return `escrow ${this.escrowId} does not exist`
  }
}

/** The escrow has already left `pending`: the loser of a release/cancel race gets this. */
export class EscrowNotPending extends Schema.TaggedError<EscrowNotPending>()("EscrowNotPending", {
  escrowId: Schema.String,
  status: Schema.String,
  attempted: Schema.String
}) {
  override get message() {
    return `cannot ${this.attempted} escrow ${this.escrowId}: it is ${this.status}`
  }
}

/**
 * A release came after the escrow's deadline. The escrow was refunded to its payer
 * in the same transaction that refused the release, so no later call can pay it.
 */
export class EscrowExpired extends Schema.TaggedError<EscrowExpired>()("EscrowExpired", {
  escrowId: Schema.String,
  expiresAtMs: Schema.Number
}) {
  override get message() {
    return `cannot release escrow ${this.escrowId}: its deadline ${new Date(this.expiresAtMs).toISOString()} has passed; it was refunded to its payer`
  }
}

/** A partial release asked for more than is still locked. */
export class ReleaseExceedsRemaining extends Schema.TaggedError<ReleaseExceedsRemaining>()("ReleaseExceedsRemaining", {
  escrowId: Schema.String,
  requestedMicros: Micros,
  remainingMicros: Micros
}) {
  override get message() {
    return `escrow ${this.escrowId} has ${format(this.remainingMicros)} USDC locked, ${format(this.requestedMicros)} requested`
  }
}

/**
 * The idempotency key was used before, by the same caller on the same route, with a
 * different request. Names nothing of that other request: the key is the caller's
 * own, but what it answered for is not repeated to a request that differs from it.
 */
export class IdempotencyConflict extends Schema.TaggedError<IdempotencyConflict>()("IdempotencyConflict", {
  idempotencyKey: Schema.String
}) {
  override get message() {
    return `idempotency key ${this.idempotencyKey} was already used with a different request; send a new key for a new request`
  }
}

export class FaucetAlreadyClaimed extends Schema.TaggedError<FaucetAlreadyClaimed>()("FaucetAlreadyClaimed", {
  wallet: Schema.String
}) {
  override get message() {
    return `wallet ${this.wallet} has already claimed the faucet`
  }
}

export class FaucetTreasuryEmpty extends Schema.TaggedError<FaucetTreasuryEmpty>()("FaucetTreasuryEmpty", {
  requiredMicros: Micros,
  availableMicros: Micros
}) {
  override get message() {
    return `the faucet treasury holds ${format(this.availableMicros)} USDC, ${format(this.requiredMicros)} required`
  }
}

export class FaucetDailyCapReached extends Schema.TaggedError<FaucetDailyCapReached>()("FaucetDailyCapReached", {
  day: Schema.String,
  cap: Schema.Number
}) {
  override get message() {
    return `the faucet has paid its ${this.cap} claims for ${this.day}`
  }
}

export class MandateNotFound extends Schema.TaggedError<MandateNotFound>()("MandateNotFound", {
  mandateId: Schema.String
}) {
  override get message() {
    return `mandate ${this.mandateId} does not exist`
  }
}

/** A create under a mandate would exceed its per-escrow maximum or its remaining budget, or it is no longer live. */
export class MandateExceeded extends Schema.TaggedError<MandateExceeded>()("MandateExceeded", {
  mandateId: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `mandate ${this.mandateId}: ${this.reason}`
  }
}

/** An orchestrator's spending cap would be exceeded; checked before any escrow is opened. */
export class BudgetExceeded extends Schema.TaggedError<BudgetExceeded>()("BudgetExceeded", {
  cap: Schema.String,
  limitMicros: Micros,
  spentMicros: Micros,
  requestedMicros: Micros
}) {
  override get message() {
    return `${this.cap} cap of ${format(this.limitMicros)} USDC: ${format(this.spentMicros)} spent, ${format(this.requestedMicros)} more requested`
  }
}

/**
 * The settlement service refused the caller (HTTP 401 or 403): not its wallet or
 * escrow, no live mandate, a payer's cancel before the deadline, a refused payment
 * token, an unknown or expired key. Nothing was done, and repeating the call cannot
 * change the answer, so it is never retried. `code` is the service's wire code
 * (`forbidden`, `payment_token_invalid`, `key_in_grace`, `unauthorized`).
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", {
  operation: Schema.String,
  code: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `the settlement service refused ${this.operation} (${this.code}): ${this.reason}`
  }
}

/**
 * The ledger's storage failed (disk, database connection), or the settlement
 * service could not be reached or answered 5xx or 429: what a retry can fix. The
 * operation may or may not have applied.
 */
export class LedgerUnavailable extends Schema.TaggedError<LedgerUnavailable>()("LedgerUnavailable", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** Why a faucet claim failed: the ledger's, the settlement's and the agents' one union. */
export type FaucetError =
  | AgentNotFound
  | FaucetAlreadyClaimed
  | FaucetTreasuryEmpty
  | FaucetDailyCapReached
  | InvalidInput
  | LedgerUnavailable

/** Errors of the ledger's commands, as a union for `catchTags` and for HTTP mapping. */
export type LedgerError =
  | InvalidAmount
  | InvalidInput
  | InsufficientFunds
  | AgentNotFound
  | WalletAlreadyRegistered
  | ReferralCodeNotFound
  | ReferralCycle
  | EscrowNotFound
  | EscrowNotPending
  | EscrowExpired
  | ReleaseExceedsRemaining
  | IdempotencyConflict
  | FaucetAlreadyClaimed
  | FaucetTreasuryEmpty
  | FaucetDailyCapReached
  | MandateNotFound
  | MandateExceeded
