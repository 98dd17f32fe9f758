/**
 * Read-only queries the dashboard needs and the `Ledger` interface does not offer:
 * totals across every wallet, time series, status counts, the audit trail filtered
 * by counterparty and newest first, the whole referral network, and a cheap
 * "has anything changed" watermark for live updates.
 *
 * They read the ledger's own tables (`ledger/migrations/0001_ledger.ts`) through the
 * same `SqlClient`, on SQLite and PostgreSQL alike, and never write. Amounts are
 * summed in SQL as integers (micro-USDC) and read back as bigint. Every answer is
 * bounded: pages by `limit`, series by `MAX_BUCKETS`, the network by `maxAgents`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import { Context, Effect, Layer, Option } from "effect"
import { LedgerUnavailable } from "../domain/errors.js"
import type { AgentRecord, EscrowRecord, EscrowStatus } from "../domain/Escrow.js"
import { EscrowStatuses } from "../domain/Escrow.js"
import type { EscrowId, WalletAddress } from "../domain/ids.js"
import { SystemAccount } from "../domain/ids.js"
import { MAX_BUCKETS } from "../domain/reports.js"
import type { Usdc } from "../domain/Usdc.js"
import { big as rowBig, type Row, toAgent, toEscrow } from "./rows.js"
import * as SqliteReadWorker from "./sql/SqliteReadWorker.js"

/** Whose data: every wallet's (the operator), or one wallet's escrows and referrals. */
/** The database the reports read: the ledger's own `SqlClient`. */
export type ReportsSql = SqlClient.SqlClient

export type Scope = { readonly _tag: "All" } | { readonly _tag: "Wallet"; readonly wallet: WalletAddress }

export interface MoneyTotals {
  readonly spent: Usdc
  readonly revenue: Usdc
  readonly feesPaid: Usdc
  readonly referralIncome: Usdc
}

export interface RegionRow extends Omit<MoneyTotals, "referralIncome"> {
  readonly region: string
  readonly escrows: number
}

export interface SeriesBucket {
  readonly startMs: number
  readonly regions: ReadonlyArray<{ readonly region: string; readonly revenue: Usdc; readonly spent: Usdc; readonly referralIncome: Usdc }>
}

export interface SeriesResult {
  readonly bucketMs: number
  readonly buckets: ReadonlyArray<SeriesBucket>
}

export interface AuditFilter {
  readonly status?: EscrowStatus | undefined
  readonly region?: string | undefined
  readonly counterparty?: WalletAddress | undefined
  /** 1..100. */
  readonly limit: number
  readonly cursor?: EscrowId | undefined
}

export interface AuditResult {
  readonly escrows: ReadonlyArray<EscrowRecord>
  readonly nextCursor: EscrowId | null
  readonly total: number
}

export interface NetworkMember {
  readonly agent: AgentRecord
  readonly referredCount: number
}

export interface NetworkResult {
  readonly members: ReadonlyArray<NetworkMember>
  readonly total: number
  /** Referral income per receiving wallet. */
  readonly incomeByWallet: ReadonlyMap<string, bigint>
  /** Referral income per (receiving wallet, party it was earned from): key `${receiver} ${party}`. */
  readonly incomeByPair: ReadonlyMap<string, bigint>
}

export interface DashboardQueriesShape {
  /**
   * Every wallet's escrow money per region (operator): sums of what `Ledger.activity`
   * reports per wallet. Referral income per region is the sum of the operator series'.
   */
  readonly regionTotals: Effect.Effect<ReadonlyArray<RegionRow>, LedgerUnavailable>
  readonly escrowsByRegion: (scope: Scope) => Effect.Effect<ReadonlyMap<string, number>, LedgerUnavailable>
  readonly statusCounts: (scope: Scope) => Effect.Effect<Record<EscrowStatus, number>, LedgerUnavailable>
  readonly series: (scope: Scope) => Effect.Effect<SeriesResult, LedgerUnavailable>
  readonly audit: (scope: Scope, filter: AuditFilter) => Effect.Effect<AuditResult, LedgerUnavailable>
  /** Agent names by wallet, for at most 500 wallets. */
  readonly names: (wallets: ReadonlyArray<WalletAddress>) => Effect.Effect<ReadonlyMap<string, string>, LedgerUnavailable>
  /** Agents in referral relationships first, then the rest, at most `maxAgents`. */
  readonly network: (maxAgents: number) => Effect.Effect<NetworkResult, LedgerUnavailable>
  /** Changes when anything the scope's views show may have changed. */
  readonly watermark: (scope: Scope) => Effect.Effect<string, LedgerUnavailable>
}

export class DashboardQueries extends Context.Tag("ringmaster/DashboardQueries")<DashboardQueries, DashboardQueriesShape>() {
  /**
   * On the ledger's database. A SQLite file is read on a worker thread of its own
   * (src/ledger/sql/SqliteReadWorker.ts), so the operator's scans of whole tables do not
   * hold up the event loop; PostgreSQL's driver is asynchronous already, and an
   * in-memory SQLite database has only the one connection.
   */
  static readonly layerSql: Layer.Layer<DashboardQueries, never, SqlClient.SqlClient> = Layer.scoped(
    DashboardQueries,
    Effect.gen(function*() {
      const sqlite = yield* Effect.serviceOption(SqliteClient.SqliteClient)
      const filename = Option.isSome(sqlite) ? sqlite.value.config.filename : undefined
      if (filename === undefined || filename === "" || filename === ":memory:") return make(yield* SqlClient.SqlClient)
      const driver = SqliteReadWorker.loadedDriver()
      if (driver === undefined) {
        yield* Effect.logWarning("dashboard: better-sqlite3's file not found among the loaded modules; reading on the ledger's connection")
        return make(yield* SqlClient.SqlClient)
      }
      return make(yield* SqliteReadWorker.make({ filename, driver }))
    })
  )
}

/** Bucket widths a series may use, narrowest first. */
export const BUCKET_LADDER_MS: ReadonlyArray<number> = [
  60_000,
  5 * 60_000,
  15 * 60_000,
  3_600_000,
  3 * 3_600_000,
  6 * 3_600_000,
  86_400_000,
  7 * 86_400_000,
  30 * 86_400_000
]

/** The narrowest bucket that fits `[loMs, hiMs]` in at most `MAX_BUCKETS`. */
export const bucketFor = (loMs: number, hiMs: number): number => {
  for (const width of BUCKET_LADDER_MS) {
    if (Math.floor(hiMs / width) - Math.floor(loMs / width) + 1 <= MAX_BUCKETS) return width
  }
  const day = 86_400_000
  return Math.ceil((hiMs - loMs + 1) / (MAX_BUCKETS - 1) / day) * day
}

// Aggregates may be NULL (an empty SUM): read as zero here, unlike a stored column.
const big = (value: unknown): bigint => (value === null || value === undefined ? 0n : rowBig(value))
const usdc = (value: unknown) => big(value) as Usdc
const num = (value: unknown): number => Number(value ?? 0)

const HOLDING = SystemAccount.escrowHolding
const FEES = SystemAccount.platformFees

export { toEscrow }

export const make = (sql: SqlClient.SqlClient): DashboardQueriesShape => {
  const read = <A>(effect: Effect.Effect<A, SqlError>): Effect.Effect<A, LedgerUnavailable> =>
    Effect.mapError(effect, (cause) => new LedgerUnavailable({ message: "dashboard query failed", cause }))

  const partyOf = (wallet: WalletAddress) => sql`(payer = ${wallet} OR payee = ${wallet})`
  // Referral postings are many and spread over many accounts: one sequential scan
  // reads them faster than index lookups would. SQLite would otherwise walk an index
  // to save a sort and fetch every row from it (measured with 650,000 postings:
  // 485 ms scanning against 1.26 s through the index); PostgreSQL scans by itself.
  const referralPostings = sql`kind = 'referral'`
  const postingsScan = sql.onDialectOrElse({ sqlite: () => sql.literal("postings NOT INDEXED"), orElse: () => sql.literal("postings") })
  // A release's event carries its gross amount: spending over time without the postings.
  const releaseEvents = (alias: string) => sql.literal(`${alias}.kind IN ('released', 'partially_released')`)
  const where = (fragments: ReadonlyArray<Fragment>) =>
    fragments.length === 0 ? sql`` : sql`WHERE ${sql.and(fragments)}`
  const scopeFilter = (scope: Scope) => (scope._tag === "All" ? [] : [partyOf(scope.wallet)])

  // SQLite would walk the region index and fetch every row from it (2.5x slower than
  // reading the table in order); PostgreSQL plans a sequential scan by itself.
  const allEscrows = sql.onDialectOrElse({ sqlite: () => sql.literal("escrows NOT INDEXED"), orElse: () => sql.literal("escrows") })

  const regionTotals = read(Effect.map(
    sql<Row>`SELECT region, COUNT(*) AS n, SUM(released) AS spent, SUM(released - fee_paid) AS revenue,
      SUM(fee_paid) AS fees FROM ${allEscrows} GROUP BY region`,
    (rows) =>
      rows.map((r): RegionRow => ({
        region: r.region as string,
        escrows: num(r.n),
        spent: usdc(r.spent),
        revenue: usdc(r.revenue),
        feesPaid: usdc(r.fees)
      }))
  ))

  const escrowsByRegion = (scope: Scope) =>
    read(Effect.map(
      sql<Row>`SELECT region, COUNT(*) AS n FROM escrows ${where(scopeFilter(scope))} GROUP BY region`,
      (rows) => new Map(rows.map((r) => [r.region as string, num(r.n)]))
    ))

  const statusCounts = (scope: Scope) =>
    read(Effect.map(
      sql<Row>`SELECT status, COUNT(*) AS n FROM escrows ${where(scopeFilter(scope))} GROUP BY status`,
      (rows) => {
        const counts = Object.fromEntries(EscrowStatuses.map((s) => [s, 0])) as Record<EscrowStatus, number>
        for (const r of rows) counts[r.status as EscrowStatus] = num(r.n)
        return counts
      }
    ))

  // The bucket width is one of a few integers computed here, never caller input, so
  // it is inlined: both backends then divide integers exactly.
  const bucketExpr = (column: string, bucketMs: number) => sql.literal(`((${column} / ${bucketMs}) * ${bucketMs})`)

  /**
   * Money over time per region. Spending is the gross of each release (its event);
   * a payee's revenue is that gross less the fee, whose two parts are the platform's
   * fee posting and the referral postings; an agent's own revenue and referral
   * income are its own postings. Every read goes through an index except the scan
   * of release events for the operator.
   */
  const series = (scope: Scope): Effect.Effect<SeriesResult, LedgerUnavailable> =>
    read(Effect.gen(function*() {
      const mine = scope._tag === "Wallet"
        ? sql`FROM postings WHERE account = ${scope.wallet} AND kind IN ('payout', 'referral')`
        : undefined
      const spentFrom = scope._tag === "Wallet"
        ? sql`FROM escrows e JOIN escrow_events ev ON ev.escrow_id = e.id WHERE e.payer = ${scope.wallet} AND ${releaseEvents("ev")}`
        : sql`FROM escrow_events ev WHERE ${releaseEvents("ev")}`
      const ranges = yield* Effect.all([
        sql<Row>`SELECT MIN(ev.at_ms) AS lo, MAX(ev.at_ms) AS hi ${spentFrom}`,
        // The operator's referral postings happen with releases: the events' range covers them.
        ...(mine === undefined ? [] : [sql<Row>`SELECT MIN(at_ms) AS lo, MAX(at_ms) AS hi ${mine}`])
      ])
      const bounds = ranges.flat().filter((r) => r.lo !== null && r.lo !== undefined)
      if (bounds.length === 0) return { bucketMs: BUCKET_LADDER_MS[0]!, buckets: [] }
      const lo = Math.min(...bounds.map((r) => num(r.lo)))
      const hi = Math.max(...bounds.map((r) => num(r.hi)))
      const bucketMs = bucketFor(lo, hi)

      const cells = new Map<number, Map<string, { revenue: bigint; spent: bigint; referralIncome: bigint }>>()
      const cell = (startMs: number, region: string) => {
        let byRegion = cells.get(startMs)
        if (byRegion === undefined) cells.set(startMs, byRegion = new Map())
        let c = byRegion.get(region)
        if (c === undefined) byRegion.set(region, c = { revenue: 0n, spent: 0n, referralIncome: 0n })
        return c
      }
      const spent = yield* sql<Row>`SELECT ev.region AS region, ${bucketExpr("ev.at_ms", bucketMs)} AS bucket, SUM(ev.amount) AS gross
        ${spentFrom} GROUP BY ev.region, ${bucketExpr("ev.at_ms", bucketMs)}`
      for (const r of spent) cell(num(r.bucket), r.region as string).spent += big(r.gross)
      if (mine === undefined) {
        const [fees, shares] = yield* Effect.all([
          sql<Row>`SELECT region, ${bucketExpr("at_ms", bucketMs)} AS bucket, SUM(amount) AS fee FROM postings
            WHERE account = ${FEES} AND kind = 'fee' GROUP BY region, ${bucketExpr("at_ms", bucketMs)}`,
          sql<Row>`SELECT region, ${bucketExpr("at_ms", bucketMs)} AS bucket, SUM(amount) AS referral FROM ${postingsScan}
            WHERE ${referralPostings} GROUP BY region, ${bucketExpr("at_ms", bucketMs)}`
        ])
        for (const c of cells.values()) for (const v of c.values()) v.revenue = v.spent
        for (const r of fees) cell(num(r.bucket), r.region as string).revenue -= big(r.fee)
        for (const r of shares) {
          const c = cell(num(r.bucket), r.region as string)
          c.revenue -= big(r.referral)
          c.referralIncome += big(r.referral)
        }
      } else {
        const received = yield* sql<Row>`SELECT region, ${bucketExpr("at_ms", bucketMs)} AS bucket,
            SUM(CASE WHEN kind = 'payout' THEN amount ELSE 0 END) AS revenue,
            SUM(CASE WHEN kind = 'referral' THEN amount ELSE 0 END) AS referral
          ${mine} GROUP BY region, ${bucketExpr("at_ms", bucketMs)}`
        for (const r of received) {
          const c = cell(num(r.bucket), r.region as string)
          c.revenue += big(r.revenue)
          c.referralIncome += big(r.referral)
        }
      }
      const buckets = [...cells.entries()]
        .sort(([a], [b]) => a - b)
        .map(([startMs, byRegion]): SeriesBucket => ({
          startMs,
          regions: [...byRegion.entries()]
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
            .map(([region, c]) => ({
              region,
              revenue: c.revenue as Usdc,
              spent: c.spent as Usdc,
              referralIncome: c.referralIncome as Usdc
            }))
        }))
      return { bucketMs, buckets }
    }))

  const audit = (scope: Scope, filter: AuditFilter): Effect.Effect<AuditResult, LedgerUnavailable> =>
    read(Effect.gen(function*() {
      const limit = Math.min(Math.max(Math.trunc(filter.limit), 1), 100)
      const filters = [
        ...scopeFilter(scope),
        ...(filter.status === undefined ? [] : [sql`status = ${filter.status}`]),
        ...(filter.region === undefined ? [] : [sql`region = ${filter.region}`]),
        ...(filter.counterparty === undefined ? [] : [partyOf(filter.counterparty)])
      ]
      const paged = filter.cursor === undefined ? filters : [...filters, sql`id < ${filter.cursor}`]
      // Ids sort by creation time, so `id DESC` is newest first and `id <` pages on.
      const [rows, count] = yield* Effect.all([
        sql<Row>`SELECT * FROM escrows ${where(paged)} ORDER BY id DESC LIMIT ${limit + 1}`,
        sql<Row>`SELECT COUNT(*) AS n FROM escrows ${where(filters)}`
      ])
      const escrows = rows.slice(0, limit).map(toEscrow)
      return {
        escrows,
        nextCursor: rows.length > limit ? escrows[escrows.length - 1]!.id : null,
        total: num(count[0]?.n)
      }
    }))

  const names = (wallets: ReadonlyArray<WalletAddress>) => {
    const unique = [...new Set(wallets)].slice(0, 500)
    if (unique.length === 0) return Effect.succeed(new Map<string, string>())
    return read(Effect.map(
      sql<Row>`SELECT wallet, name FROM agents WHERE ${sql.in("wallet", unique)}`,
      (rows) => new Map(rows.map((r) => [r.wallet as string, r.name as string]))
    ))
  }

  const network = (maxAgents: number): Effect.Effect<NetworkResult, LedgerUnavailable> =>
    read(Effect.gen(function*() {
      const limit = Math.max(1, Math.trunc(maxAgents))
      const [count, rows, income] = yield* Effect.all([
        sql<Row>`SELECT COUNT(*) AS n FROM agents`,
        // Agents in a referral relationship first: they make the tree; lone agents fill what room is left.
        sql<Row>`SELECT a.*, (SELECT COUNT(*) FROM agents c WHERE c.referrer = a.wallet) AS referred_count
          FROM agents a
          ORDER BY CASE WHEN a.referrer IS NOT NULL OR EXISTS (SELECT 1 FROM agents c WHERE c.referrer = a.wallet)
            THEN 0 ELSE 1 END, a.agent_id
          LIMIT ${limit}`,
        sql<Row>`SELECT account, counterparty, SUM(amount) AS earned FROM ${postingsScan}
          WHERE ${referralPostings} GROUP BY account, counterparty`
      ])
      const incomeByWallet = new Map<string, bigint>()
      const incomeByPair = new Map<string, bigint>()
      for (const r of income) {
        const receiver = r.account as string
        const earned = big(r.earned)
        incomeByWallet.set(receiver, (incomeByWallet.get(receiver) ?? 0n) + earned)
        if (r.counterparty !== null) incomeByPair.set(`${receiver} ${r.counterparty as string}`, earned)
      }
      return {
        members: rows.map((r) => ({ agent: toAgent(r), referredCount: num(r.referred_count) })),
        total: num(count[0]?.n),
        incomeByWallet,
        incomeByPair
      }
    }))

  const watermark = (scope: Scope): Effect.Effect<string, LedgerUnavailable> =>
    read(
      scope._tag === "All"
        // Every escrow transition moves money through the holding account and every
        // release pays a fee, so their rows' balance and time change with each one
        // (primary-key reads: cheap at any ledger size); new agents change the newest id.
        ? Effect.map(
          Effect.all([
            sql<Row>`SELECT id, balance, updated_at_ms FROM accounts WHERE ${sql.in("id", [HOLDING, FEES])}`,
            sql<Row>`SELECT MAX(agent_id) AS newest FROM agents`
          ]),
          ([accounts, agents]) =>
            [
              ...[...accounts].sort((a, b) => String(a.id).localeCompare(String(b.id))).map((r) => `${big(r.balance)}@${num(r.updated_at_ms)}`),
              String(agents[0]?.newest ?? "")
            ].join("|")
        )
        // One wallet: its escrows' transitions (each bumps `version`), its own account
        // (payouts, refunds, referral income) and the agents it referred.
        : Effect.map(
          Effect.all([
            sql<Row>`SELECT COUNT(*) AS n, SUM(version) AS v FROM escrows WHERE payer = ${scope.wallet} OR payee = ${scope.wallet}`,
            sql<Row>`SELECT balance, updated_at_ms FROM accounts WHERE id = ${scope.wallet}`,
            sql<Row>`SELECT COUNT(*) AS n FROM agents WHERE referrer = ${scope.wallet}`
          ]),
          ([escrows, account, referred]) =>
            [
              `${num(escrows[0]?.n)}.${big(escrows[0]?.v)}`,
              `${big(account[0]?.balance)}@${num(account[0]?.updated_at_ms)}`,
              String(num(referred[0]?.n))
            ].join("|")
        )
    )

  return { regionTotals, escrowsByRegion, statusCounts, series, audit, names, network, watermark }
}
