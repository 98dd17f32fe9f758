/**
 * The settlement engine's contract: accounts, escrows, mandates, referrals and the
 * faucet. Every command is atomic and either applies completely or changes nothing.
 *
 * Implementations: `SqlLedger.layer` (any `SqlClient`: SQLite embedded, PostgreSQL
 * for scale-out) and `MemoryLedger.layer` (in process, for tests). Both run the same
 * pure rules in `engine.ts`, so they cannot drift apart in what they decide.
 */
import { Context, type Duration, type Effect } from "effect"
import type * as Errors from "../domain/errors.js"
import type {
  AgentRecord,
  EscrowEvent,
  EscrowRecord,
  EscrowStatus,
  EscrowTerms,
  MandateRecord,
  ReleaseOptions,
  WalletBalance
} from "../domain/Escrow.js"
import type { EscrowId, MandateId, ReferralCode, WalletAddress } from "../domain/ids.js"
import type { Usdc } from "../domain/Usdc.js"
import type { FeeSchedule } from "../domain/FeeSchedule.js"

export interface LedgerConfigShape {
  /** Tags escrows whose metadata names no `fly_region`. */
  readonly region: string
  readonly fees: FeeSchedule
  /** Deadline of an escrow created without a timeout. */
  readonly defaultEscrowTimeout: Duration.Duration
  /** Longest timeout a caller may ask for. */
  readonly maxEscrowTimeout: Duration.Duration
  /** How long an idempotency key answers for its request; swept after. */
  readonly idempotencyKeyTtl: Duration.Duration
  /** Credited once per wallet by the faucet. */
  readonly faucetClaimAmount: Usdc
  /** The treasury is funded with this at first start (from `system:external`). */
  readonly faucetTreasuryInitial: Usdc
  /** Claims the faucet pays per UTC day, across all wallets. */
  readonly faucetDailyCap: number
  /** Commands gathered into one transaction at most (group commit). */
  readonly maxBatchSize: number
}

export class LedgerConfig extends Context.Tag("ringmaster/LedgerConfig")<LedgerConfig, LedgerConfigShape>() {}

export interface RegisterAgentInput {
  readonly name: string
  readonly wallet?: WalletAddress | undefined
  readonly referralCode?: ReferralCode | undefined
}

export interface FaucetClaim {
  readonly wallet: WalletAddress
  readonly agentName: string
  readonly credited: Usdc
  readonly balance: Usdc
}

export interface CreateMandateInput {
  readonly payer: WalletAddress
  readonly payee: WalletAddress
  readonly maxAmount: Usdc
  readonly budget: Usdc
  readonly expiresAtMs?: number | undefined
  /** Longest timeout of an escrow opened under it; default: `defaultEscrowTimeout`, at most `maxEscrowTimeout`. */
  readonly maxTimeoutMs?: number | undefined
}

export interface EscrowQuery {
  /** Escrows where this wallet is payer or payee. */
  readonly wallet?: WalletAddress | undefined
  readonly status?: EscrowStatus | undefined
  readonly region?: string | undefined
  /** 1..500; default 50. */
  readonly limit?: number | undefined
  /** Return escrows created after this id (the previous page's `nextCursor`). */
  readonly cursor?: EscrowId | undefined
}

export interface EscrowPage {
  readonly escrows: ReadonlyArray<EscrowRecord>
  readonly nextCursor: EscrowId | null
}

export interface ReferredAgentEarnings {
  readonly agent: AgentRecord
  /** Referral income earned from escrows this agent was a party to. */
  readonly earned: Usdc
}

export interface ReferralReport {
  readonly agent: AgentRecord
  readonly referred: ReadonlyArray<ReferredAgentEarnings>
  readonly earned: Usdc
  readonly byRegion: Readonly<Record<string, Usdc>>
}

/** Money in and out of one wallet by kind, per region; reconciles with its postings. */
export interface ActivityTotals {
  /** Gross paid out of this wallet's escrows (released parts, as payer). */
  readonly spent: Usdc
  /** Net received as payee (after fees). */
  readonly revenue: Usdc
  /** Fees borne as payee. */
  readonly feesPaid: Usdc
  readonly referralIncome: Usdc
}

export interface ActivityReport extends ActivityTotals {
  readonly wallet: WalletAddress
  readonly byRegion: Readonly<Record<string, ActivityTotals>>
}

export interface Violation {
  readonly invariant: string
  readonly detail: string
}

export interface VerifyReport {
  readonly accounts: number
  readonly postings: number
  readonly escrows: number
  readonly violations: ReadonlyArray<Violation>
}

export type CreateError =
  | Errors.InvalidInput
  | Errors.InsufficientFunds
  | Errors.AgentNotFound
  | Errors.IdempotencyConflict
  | Errors.MandateNotFound
  | Errors.MandateExceeded
  | Errors.LedgerUnavailable
export type ReleaseError =
  | Errors.EscrowNotFound
  | Errors.EscrowNotPending
  | Errors.EscrowExpired
  | Errors.ReleaseExceedsRemaining
  | Errors.InvalidInput
  | Errors.LedgerUnavailable
export type CancelError = Errors.EscrowNotFound | Errors.EscrowNotPending | Errors.LedgerUnavailable

export interface LedgerShape {
  readonly config: LedgerConfigShape
  readonly registerAgent: (
    input: RegisterAgentInput
  ) => Effect.Effect<
    AgentRecord,
    Errors.InvalidInput | Errors.WalletAlreadyRegistered | Errors.ReferralCodeNotFound | Errors.ReferralCycle | Errors.LedgerUnavailable
  >
  /** Funds a wallet from outside the ledger (an on-chain deposit; tests and demos). */
  readonly deposit: (
    wallet: WalletAddress,
    amount: Usdc
  ) => Effect.Effect<WalletBalance, Errors.InvalidInput | Errors.AgentNotFound | Errors.LedgerUnavailable>
  readonly claimFaucet: (input: {
    readonly wallet: WalletAddress
    readonly agentName: string
  }) => Effect.Effect<FaucetClaim, Errors.FaucetError>
  readonly createEscrow: (terms: EscrowTerms) => Effect.Effect<EscrowRecord, CreateError>
  /**
   * Pays out all that remains, or `options.amount` of it. Repeating a release of a released escrow returns it.
   * At or after the deadline it is refused with `EscrowExpired`, and the escrow is refunded to its payer in the same transaction.
   */
  readonly releaseEscrow: (id: EscrowId, options?: ReleaseOptions) => Effect.Effect<EscrowRecord, ReleaseError>
  /** Refunds what remains to the payer. Repeating a cancel of a cancelled escrow returns it. */
  readonly cancelEscrow: (id: EscrowId) => Effect.Effect<EscrowRecord, CancelError>
  /** Refunds pending escrows past their deadline (at most `limit`); returns those it expired. */
  readonly expireDue: (limit?: number) => Effect.Effect<ReadonlyArray<EscrowRecord>, Errors.LedgerUnavailable>
  /** Forgets idempotency keys past their lifetime (at most `limit`); returns how many. */
  readonly forgetExpiredKeys: (limit?: number) => Effect.Effect<number, Errors.LedgerUnavailable>
  readonly createMandate: (
    input: CreateMandateInput
  ) => Effect.Effect<MandateRecord, Errors.InvalidInput | Errors.AgentNotFound | Errors.LedgerUnavailable>
  /** Only the payer may revoke. Escrows already opened under it keep their deadlines (bounded by `maxTimeoutMs`). */
  readonly revokeMandate: (
    id: MandateId,
    payer: WalletAddress
  ) => Effect.Effect<MandateRecord, Errors.MandateNotFound | Errors.LedgerUnavailable>

  readonly getEscrow: (id: EscrowId) => Effect.Effect<EscrowRecord, Errors.EscrowNotFound | Errors.LedgerUnavailable>
  readonly listEscrows: (query: EscrowQuery) => Effect.Effect<EscrowPage, Errors.LedgerUnavailable>
  readonly escrowHistory: (id: EscrowId) => Effect.Effect<ReadonlyArray<EscrowEvent>, Errors.LedgerUnavailable>
  readonly getMandate: (id: MandateId) => Effect.Effect<MandateRecord, Errors.MandateNotFound | Errors.LedgerUnavailable>
  /** The newest live mandate from payer to payee, if any. */
  readonly findLiveMandate: (
    payer: WalletAddress,
    payee: WalletAddress
  ) => Effect.Effect<MandateRecord | null, Errors.LedgerUnavailable>
  readonly getAgent: (wallet: WalletAddress) => Effect.Effect<AgentRecord, Errors.AgentNotFound | Errors.LedgerUnavailable>
  readonly balance: (wallet: WalletAddress) => Effect.Effect<WalletBalance, Errors.LedgerUnavailable>
  /** A system account's balance (signed: `system:external` is negative). */
  readonly systemBalance: (account: string) => Effect.Effect<bigint, Errors.LedgerUnavailable>
  readonly referrals: (wallet: WalletAddress) => Effect.Effect<ReferralReport, Errors.AgentNotFound | Errors.LedgerUnavailable>
  readonly activity: (wallet: WalletAddress) => Effect.Effect<ActivityReport, Errors.LedgerUnavailable>
  /** Recomputes every balance from postings and checks every invariant. */
  readonly verify: Effect.Effect<VerifyReport, Errors.LedgerUnavailable>
}

export class Ledger extends Context.Tag("ringmaster/Ledger")<Ledger, LedgerShape>() {}
