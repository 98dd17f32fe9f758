/**
 * The ledger's reports: one wallet's activity and referral earnings, and what the
 * dashboard shows across wallets (totals per region, time series, status counts,
 * the audit trail newest first, the referral network, a "has anything changed"
 * watermark). Read-only, and every answer is bounded: pages by `limit`, series by
 * `MAX_BUCKETS`, the network by `maxAgents`, names by 500 wallets.
 *
 * Implementations differ only in how they fetch rows: `sql/reports.ts` aggregates
 * in SQL, `reports/memory.ts` reads the memory ledger's state. Both fold the rows
 * with `folds.ts`, so the arithmetic exists once. `MemoryLedger.layerWithReports`
 * provides the memory reports beside its ledger; `LedgerReportsSql.layer` (its own module, so the core loads no SQL driver) reads the SQL ledger's
 * tables.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Context, type Effect } from "effect"
import type { AgentNotFound, LedgerUnavailable } from "../../domain/errors.js"
import type { AgentRecord, EscrowRecord, EscrowStatus } from "../../domain/Escrow.js"
import type { EscrowId, WalletAddress } from "../../domain/ids.js"
import type { Usdc } from "../../domain/Usdc.js"
import type { ActivityReport, ReferralReport } from "../Ledger.js"

/** The database the SQL reports read: the ledger's own `SqlClient`. */
export type ReportsSql = SqlClient.SqlClient

/** Whose data: every wallet's (the operator), or one wallet's escrows and referrals. */
export type Scope = { readonly _tag: "All" } | { readonly _tag: "Wallet"; readonly wallet: WalletAddress }

export interface RegionRow {
  readonly region: string
  readonly escrows: number
  readonly spent: Usdc
  readonly revenue: Usdc
  readonly feesPaid: Usdc
}

export interface SeriesBucket {
  readonly startMs: number
  readonly regions: ReadonlyArray<{ readonly region: string; readonly revenue: Usdc; readonly spent: Usdc; readonly referralIncome: Usdc }>
}

export interface SeriesResult {
  readonly bucketMs: number
  readonly buckets: ReadonlyArray<SeriesBucket>
}

export interface AuditResult {
  readonly escrows: ReadonlyArray<EscrowRecord>
  readonly nextCursor: EscrowId | null
  readonly total: number
}

export interface ReferralIncome {
  /** Referral income per receiving wallet. */
  readonly incomeByWallet: ReadonlyMap<string, bigint>
  /** Referral income per (receiving wallet, party it was earned from): key `${receiver} ${party}`. */
  readonly incomeByPair: ReadonlyMap<string, bigint>
}

export interface AuditFilter {
  readonly status?: EscrowStatus | undefined
  readonly region?: string | undefined
  readonly counterparty?: WalletAddress | undefined
  /** 1..100. */
  readonly limit: number
  readonly cursor?: EscrowId | undefined
}

export interface NetworkMember {
  readonly agent: AgentRecord
  readonly referredCount: number
}

export interface NetworkResult extends ReferralIncome {
  readonly members: ReadonlyArray<NetworkMember>
  readonly total: number
}

export interface LedgerReportsShape {
  /** Money in and out of one wallet by kind, per region (`Ledger.activity`). */
  readonly activity: (wallet: WalletAddress) => Effect.Effect<ActivityReport, LedgerUnavailable>
  /** The agents one wallet referred and what it earned from each (`Ledger.referrals`). */
  readonly referrals: (wallet: WalletAddress) => Effect.Effect<ReferralReport, AgentNotFound | LedgerUnavailable>
  /**
   * Every wallet's escrow money per region (operator): sums of what `activity`
   * reports per wallet. Referral income per region is the sum of the operator series'.
   */
  readonly regionTotals: Effect.Effect<ReadonlyArray<RegionRow>, LedgerUnavailable>
  readonly escrowsByRegion: (scope: Scope) => Effect.Effect<ReadonlyMap<string, number>, LedgerUnavailable>
  readonly statusCounts: (scope: Scope) => Effect.Effect<Record<EscrowStatus, number>, LedgerUnavailable>
  readonly series: (scope: Scope) => Effect.Effect<SeriesResult, LedgerUnavailable>
  readonly audit: (scope: Scope, filter: AuditFilter) => Effect.Effect<AuditResult, LedgerUnavailable>
  /** Agent names by wallet, for at most `MAX_NAMES` (folds.ts) wallets. */
  readonly names: (wallets: ReadonlyArray<WalletAddress>) => Effect.Effect<ReadonlyMap<string, string>, LedgerUnavailable>
  /** Agents in referral relationships first, then the rest, at most `maxAgents`. */
  readonly network: (maxAgents: number) => Effect.Effect<NetworkResult, LedgerUnavailable>
  /** Changes when anything the scope's views show may have changed. */
  readonly watermark: (scope: Scope) => Effect.Effect<string, LedgerUnavailable>
}

export class LedgerReports extends Context.Tag("ringmaster/LedgerReports")<LedgerReports, LedgerReportsShape>() {}
