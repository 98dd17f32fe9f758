/**
 * The ledger's reports over its own tables (`ledger/migrations/0001_ledger.ts`), on
 * SQLite and PostgreSQL alike, read-only. Aggregation happens in SQL (amounts summed
 * as integers, micro-USDC, read back as bigint), so the operator's views never load
 * every posting; the rows it returns are folded by `reports/folds.ts`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type { Fragment } from "@effect/sql/Statement"
import { Effect } from "effect"
import { AgentNotFound, LedgerUnavailable } from "../../domain/errors.js"
import type { WalletAddress } from "../../domain/ids.js"
import { SystemAccount } from "../../domain/ids.js"
import type { Usdc } from "../../domain/Usdc.js"
import * as Fold from "../reports/folds.js"
import type { AuditFilter, LedgerReportsShape, NetworkResult, Scope } from "../reports/LedgerReports.js"
import { big as rowBig, type Row, toAgent, toEscrow } from "../rows.js"

// Aggregates may be NULL (an empty SUM): read as zero here, unlike a stored column.
const big = (value: unknown): bigint => (value === null || value === undefined ? 0n : rowBig(value))
const usdc = (value: unknown) => big(value) as Usdc
const num = (value: unknown): number => Number(value ?? 0)

const isSqlError = (error: unknown): error is SqlError => (error as { readonly _tag?: unknown })._tag === "SqlError"

const HOLDING = SystemAccount.escrowHolding
const FEES = SystemAccount.platformFees

export const make = (sql: SqlClient.SqlClient): LedgerReportsShape => {
  const read = <A, E>(effect: Effect.Effect<A, E | SqlError>): Effect.Effect<A, Exclude<E, SqlError> | LedgerUnavailable> =>
    Effect.catchIf(effect, isSqlError, (cause) =>
      Effect.fail(new LedgerUnavailable({ message: `ledger report failed: ${cause.message}`, cause: cause.cause }))) as Effect.Effect<
        A,
        Exclude<E, SqlError> | LedgerUnavailable
      >
  // One wallet's figures are exact past 2^53 micro-USDC, as the ledger's own reads.
  const exact = <A, E>(effect: Effect.Effect<A, E>) => Effect.provideService(effect, SqlClient.SafeIntegers, true)

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

  const activity = (wallet: WalletAddress) =>
    exact(read(Effect.map(
      Effect.all([
        sql<Row>`SELECT region, SUM(released) AS spent FROM escrows WHERE payer = ${wallet} GROUP BY region`,
        sql<Row>`SELECT region, SUM(released - fee_paid) AS revenue, SUM(fee_paid) AS fees FROM escrows
          WHERE payee = ${wallet} GROUP BY region`,
        sql<Row>`SELECT region, SUM(amount) AS income FROM postings WHERE account = ${wallet} AND kind = 'referral' GROUP BY region`
      ]),
      ([paid, received, referral]) =>
        Fold.activity(wallet, {
          paid: paid.map((r) => ({ region: r.region as string, spent: big(r.spent) })),
          received: received.map((r) => ({ region: r.region as string, revenue: big(r.revenue), fees: big(r.fees) })),
          referral: referral.map((r) => ({ region: r.region as string, income: big(r.income) }))
        })
    )))

  const referrals = (wallet: WalletAddress) =>
    exact(read(Effect.gen(function*() {
      const agentRows = yield* sql<Row>`SELECT * FROM agents WHERE wallet = ${wallet}`
      if (agentRows.length === 0) return yield* Effect.fail(new AgentNotFound({ wallet }))
      const [referred, earned] = yield* Effect.all([
        sql<Row>`SELECT * FROM agents WHERE referrer = ${wallet} ORDER BY agent_id`,
        sql<Row>`SELECT counterparty, region, SUM(amount) AS earned FROM postings
          WHERE account = ${wallet} AND kind = 'referral' GROUP BY counterparty, region`
      ])
      return Fold.referrals(
        toAgent(agentRows[0]!),
        referred.map(toAgent),
        earned.map((r) => ({ counterparty: r.counterparty as string | null, region: r.region as string, earned: big(r.earned) }))
      )
    })))

  const regionTotals = read(Effect.map(
    sql<Row>`SELECT region, COUNT(*) AS n, SUM(released) AS spent, SUM(released - fee_paid) AS revenue,
      SUM(fee_paid) AS fees FROM ${allEscrows} GROUP BY region`,
    (rows) =>
      Fold.regionTotals(rows.map((r) => ({
        region: r.region as string,
        escrows: num(r.n),
        spent: usdc(r.spent),
        revenue: usdc(r.revenue),
        feesPaid: usdc(r.fees)
      })))
  ))

  const countsBy = (column: "region" | "status", scope: Scope) =>
    sql<Row>`SELECT ${sql.literal(column)} AS k, COUNT(*) AS n FROM escrows ${where(scopeFilter(scope))} GROUP BY ${sql.literal(column)}`.pipe(
      Effect.map((rows) => rows.map((r) => ({ key: r.k as string, n: num(r.n) })))
    )

  const escrowsByRegion = (scope: Scope) => read(Effect.map(countsBy("region", scope), Fold.counts))

  const statusCounts = (scope: Scope) => read(Effect.map(countsBy("status", scope), Fold.statusCounts))

  // The bucket width is one of a few integers computed here, never caller input, so
  // it is inlined: both backends then divide integers exactly.
  const bucketExpr = (column: string, bucketMs: number) => sql.literal(`((${column} / ${bucketMs}) * ${bucketMs})`)
  const bucketRow = (r: Row) => ({ region: r.region as string, bucketMs: num(r.bucket) })

  /** Every read goes through an index except the scan of release events for the operator. */
  const series = (scope: Scope) =>
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
      const bucketMs = Fold.seriesBucket(
        ranges.flat().filter((r) => r.lo !== null && r.lo !== undefined).map((r) => ({ loMs: num(r.lo), hiMs: num(r.hi) }))
      )
      if (bucketMs === undefined) return Fold.emptySeries
      const bucket = (column: string) => bucketExpr(column, bucketMs)
      const spent = (yield* sql<Row>`SELECT ev.region AS region, ${bucket("ev.at_ms")} AS bucket, SUM(ev.amount) AS gross
        ${spentFrom} GROUP BY ev.region, ${bucket("ev.at_ms")}`).map((r) => ({ ...bucketRow(r), gross: big(r.gross) }))
      if (mine === undefined) {
        const [fees, shares] = yield* Effect.all([
          sql<Row>`SELECT region, ${bucket("at_ms")} AS bucket, SUM(amount) AS fee FROM postings
            WHERE account = ${FEES} AND kind = 'fee' GROUP BY region, ${bucket("at_ms")}`,
          sql<Row>`SELECT region, ${bucket("at_ms")} AS bucket, SUM(amount) AS referral FROM ${postingsScan}
            WHERE ${referralPostings} GROUP BY region, ${bucket("at_ms")}`
        ])
        return Fold.series(bucketMs, {
          _tag: "All",
          spent,
          fees: fees.map((r) => ({ ...bucketRow(r), fee: big(r.fee) })),
          referrals: shares.map((r) => ({ ...bucketRow(r), referral: big(r.referral) }))
        })
      }
      const received = yield* sql<Row>`SELECT region, ${bucket("at_ms")} AS bucket,
          SUM(CASE WHEN kind = 'payout' THEN amount ELSE 0 END) AS revenue,
          SUM(CASE WHEN kind = 'referral' THEN amount ELSE 0 END) AS referral
        ${mine} GROUP BY region, ${bucket("at_ms")}`
      return Fold.series(bucketMs, {
        _tag: "Wallet",
        spent,
        received: received.map((r) => ({ ...bucketRow(r), revenue: big(r.revenue), referral: big(r.referral) }))
      })
    }))

  const audit = (scope: Scope, filter: AuditFilter) =>
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
      return Fold.auditPage(rows.map(toEscrow), limit, num(count[0]?.n))
    }))

  const names = (wallets: ReadonlyArray<WalletAddress>) => {
    const unique = [...new Set(wallets)].slice(0, Fold.MAX_NAMES)
    if (unique.length === 0) return Effect.succeed(new Map<string, string>())
    return read(Effect.map(
      sql<Row>`SELECT wallet, name FROM agents WHERE ${sql.in("wallet", unique)}`,
      (rows) => new Map(rows.map((r) => [r.wallet as string, r.name as string]))
    ))
  }

  const network = (maxAgents: number) =>
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
      return {
        members: rows.map((r) => ({ agent: toAgent(r), referredCount: num(r.referred_count) })),
        total: num(count[0]?.n),
        ...Fold.referralIncome(income.map((r) => ({
          account: r.account as string,
          counterparty: r.counterparty as string | null,
          earned: big(r.earned)
        })))
      } satisfies NetworkResult
    }))

  const watermark = (scope: Scope) =>
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

  return { activity, referrals, regionTotals, escrowsByRegion, statusCounts, series, audit, names, network, watermark }
}

