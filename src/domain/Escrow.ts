/**
 * Escrow terms and records: the shape of a two-phase transfer.
 *
 * `pending` → `released` | `cancelled` | `expired`, each terminal state reached at
 * most once. A partial release leaves the escrow `pending` with less locked.
 */
import type { Duration, Redacted } from "effect"
import type { AgentId, EscrowId, MandateId, ReferralCode, WalletAddress } from "./ids.js"
import type { Usdc } from "./Usdc.js"

export type EscrowStatus = "pending" | "released" | "cancelled" | "expired"
export const EscrowStatuses: ReadonlyArray<EscrowStatus> = ["pending", "released", "cancelled", "expired"]

/** JSON-compatible metadata; `fly_region` in it tags the escrow with its region. */
export type Metadata = { readonly [key: string]: unknown }

export interface EscrowTerms {
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  readonly amount: Usdc
  readonly description: string
  readonly metadata?: Metadata | undefined
  /**
   * A retry with the same key and the same request returns the same escrow; the same
   * key with a different request is refused (`IdempotencyConflict`). Keys expire
   * (the ledger's `idempotencyKeyTtl`, 24 hours by default).
   */
  readonly idempotencyKey?: string | undefined
  /** Whose key it is and where it was sent; default: the opener (payee under a mandate, else payer) on `Escrow.create`. */
  readonly idempotencyScope?: IdempotencyScope | undefined
  /** SHA-256 (hex) of the request as its caller sent it; default: of these terms. */
  readonly requestSha256?: string | undefined
  /** Time until the escrow expires and refunds; the ledger's default when absent. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Opened by the payee under the payer's mandate: the mandate's budget pays for it. */
  readonly mandateId?: MandateId | undefined
  /**
   * Opened by the payee with the payer's payment token (`POST /api/payment-tokens`):
   * the settlement service checks and spends it. Sent by the HTTP client; an
   * in-process ledger has no caller to authorize, and its callers redeem tokens
   * themselves (`PaymentTokens.redeem`).
   */
  readonly paymentToken?: Redacted.Redacted<string> | undefined
}

/** An idempotency key binds only within its scope: the caller that sent it, on the route it was sent to. */
export interface IdempotencyScope {
  readonly owner: WalletAddress
  readonly route: string
}

export interface EscrowRecord {
  readonly id: EscrowId
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  /** The full amount locked at creation. */
  readonly amount: Usdc
  /** Sum of the parts released so far (gross, fees included). */
  readonly released: Usdc
  /** Sum of the fees taken on the released parts. */
  readonly feePaid: Usdc
  /** What went back to the payer on cancel or expiry. */
  readonly refunded: Usdc
  readonly status: EscrowStatus
  readonly description: string
  readonly metadata: Metadata
  /** `metadata.fly_region`, or the ledger's own region when the caller gave none. */
  readonly region: string
  readonly idempotencyKey: string | null
  readonly mandateId: MandateId | null
  readonly createdAtMs: number
  readonly expiresAtMs: number
  readonly settledAtMs: number | null
  /** Transitions so far (1 after create); the audit trail's sequence number of the last one. */
  readonly version: number
}

/** What is still locked in an escrow. */
export const remaining = (escrow: EscrowRecord): Usdc => (escrow.amount - escrow.released - escrow.refunded) as Usdc

export interface ReleaseOptions {
  /** Release only this part (gross, fee included); the rest stays locked. Default: all that remains. */
  readonly amount?: Usdc | undefined
}

/** One step of an escrow's audit trail. */
export interface EscrowEvent {
  readonly escrowId: EscrowId
  readonly seq: number
  readonly kind: "created" | "partially_released" | "released" | "cancelled" | "expired"
  readonly fromStatus: EscrowStatus | null
  readonly toStatus: EscrowStatus
  /** The amount this step moved (locked, released or refunded). */
  readonly amount: Usdc
  readonly region: string
  readonly atMs: number
}

export interface AgentRecord {
  readonly agentId: AgentId
  readonly name: string
  readonly wallet: WalletAddress
  readonly referralCode: ReferralCode
  /** The wallet of the agent whose code this one registered with. */
  readonly referrer: WalletAddress | null
  readonly createdAtMs: number
}

export interface MandateRecord {
  readonly id: MandateId
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  readonly maxAmount: Usdc
  readonly budget: Usdc
  /** Budget still available: the budget less what pending and released escrows under it hold. */
  readonly remaining: Usdc
  readonly expiresAtMs: number | null
  /** Longest timeout an escrow opened under it may have: none outlives this, nor the mandate's own expiry. */
  readonly maxTimeoutMs: number
  readonly revoked: boolean
  readonly createdAtMs: number
}

export interface WalletBalance {
  readonly wallet: WalletAddress
  /** What the wallet can spend now. */
  readonly available: Usdc
  /** What pending escrows it pays for hold. */
  readonly locked: Usdc
}
