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
 * provides the memory reports beside its ledger; `LedgerReports.layerSql` reads the SQL ledger's
 * tables.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Context, Effect, Layer, Option } from "effect"
import type { AgentNotFound, LedgerUnavailable } from "../../domain/errors.js"
import type { AgentRecord, EscrowRecord, EscrowStatus } from "../../domain/Escrow.js"
import type { EscrowId, WalletAddress } from "../../domain/ids.js"
import type { Usdc } from "../../domain/Usdc.js"
import type { ActivityReport, ReferralReport } from "../Ledger.js"
import * as SqlReports from "../sql/reports.js"
import * as SqliteReadWorker from "../sql/SqliteReadWorker.js"

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

export class LedgerReports extends Context.Tag("ringmaster/LedgerReports")<LedgerReports, LedgerReportsShape>() {
  /**
   * On the ledger's database. A SQLite file is read on a worker thread of its own
   * (src/ledger/sql/SqliteReadWorker.ts), so the operator's scans of whole tables do not
   * hold up the event loop; PostgreSQL's driver is asynchronous already, and an
   * in-memory SQLite database has only the one connection.
   */
  static readonly layerSql: Layer.Layer<LedgerReports, never, SqlClient.SqlClient> = Layer.scoped(
    LedgerReports,
    Effect.gen(function*() {
      const sqlite = yield* Effect.serviceOption(SqliteClient.SqliteClient)
      const filename = Option.isSome(sqlite) ? sqlite.value.config.filename : undefined
      if (filename === undefined || filename === "" || filename === ":memory:") return SqlReports.make(yield* SqlClient.SqlClient)
      const driver = SqliteReadWorker.loadedDriver()
      if (driver === undefined) {
        yield* Effect.logWarning("dashboard: better-sqlite3's file not found among the loaded modules; reading on the ledger's connection")
        return SqlReports.make(yield* SqlClient.SqlClient)
      }
      return SqlReports.make(yield* SqliteReadWorker.make({ filename, driver }))
    })
  )
}
