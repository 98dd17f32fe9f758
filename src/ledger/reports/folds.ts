/**
 * The report arithmetic, once: each report is a fold of rows into its record. The
 * SQL implementation hands these functions the rows its aggregate queries return;
 * the memory implementation hands them one row per escrow, event or posting. A fold
 * adds rows of the same key together, so grouped and ungrouped rows give one answer.
 */
import type { AgentRecord, EscrowRecord, EscrowStatus } from "../../domain/Escrow.js"
import { EscrowStatuses } from "../../domain/Escrow.js"
import type { WalletAddress } from "../../domain/ids.js"
import { MAX_BUCKETS } from "../../domain/reports.js"
import type { Usdc } from "../../domain/Usdc.js"
import type { ActivityReport, ActivityTotals, ReferralReport } from "../Ledger.js"
import type { AuditResult, ReferralIncome, RegionRow, SeriesBucket, SeriesResult } from "./LedgerReports.js"

/** Names a `names` call resolves at most. */
export const MAX_NAMES = 500

const usdc = (micros: bigint) => micros as Usdc
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

// ---- one wallet ------------------------------------------------------------------------

/** What one wallet paid, received and earned, per region. */
export interface ActivityRows {
  /** Released gross of escrows the wallet paid. */
  readonly paid: ReadonlyArray<{ readonly region: string; readonly spent: bigint }>
  /** Net and fees of escrows the wallet was paid by. */
  readonly received: ReadonlyArray<{ readonly region: string; readonly revenue: bigint; readonly fees: bigint }>
  /** Its referral postings. */
  readonly referral: ReadonlyArray<{ readonly region: string; readonly income: bigint }>
}

interface MutableTotals {
  spent: bigint
  revenue: bigint
  feesPaid: bigint
  referralIncome: bigint
}

const toTotals = (t: MutableTotals): ActivityTotals => ({
  spent: usdc(t.spent),
  revenue: usdc(t.revenue),
  feesPaid: usdc(t.feesPaid),
  referralIncome: usdc(t.referralIncome)
})

export const activity = (wallet: WalletAddress, rows: ActivityRows): ActivityReport => {
  const regions = new Map<string, MutableTotals>()
  const at = (region: string) => {
    let t = regions.get(region)
    if (t === undefined) regions.set(region, (t = { spent: 0n, revenue: 0n, feesPaid: 0n, referralIncome: 0n }))
    return t
  }
  for (const row of rows.paid) at(row.region).spent += row.spent
  for (const row of rows.received) {
    at(row.region).revenue += row.revenue
    at(row.region).feesPaid += row.fees
  }
  for (const row of rows.referral) at(row.region).referralIncome += row.income
  const total: MutableTotals = { spent: 0n, revenue: 0n, feesPaid: 0n, referralIncome: 0n }
  const byRegion: Record<string, ActivityTotals> = {}
  for (const [region, t] of regions) {
    total.spent += t.spent
    total.revenue += t.revenue
    total.feesPaid += t.feesPaid
    total.referralIncome += t.referralIncome
    // A region where nothing moved (an escrow still pending there) is left out.
    if (t.spent + t.revenue + t.feesPaid + t.referralIncome > 0n) byRegion[region] = toTotals(t)
  }
  return { wallet, ...toTotals(total), byRegion }
}

/** One wallet's referral postings, by the party each came from and the region. */
export type ReferralEarningRows = ReadonlyArray<{
  readonly counterparty: string | null
  readonly region: string
  readonly earned: bigint
}>

/** `referred`: the agents `agent` referred, in the order they registered. */
export const referrals = (
  agent: AgentRecord,
  referred: ReadonlyArray<AgentRecord>,
  rows: ReferralEarningRows
): ReferralReport => {
  const byCounterparty = new Map<string, bigint>()
  const byRegion: Record<string, Usdc> = {}
  let earned = 0n
  for (const row of rows) {
    earned += row.earned
    byRegion[row.region] = usdc((byRegion[row.region] ?? 0n) + row.earned)
    if (row.counterparty !== null) byCounterparty.set(row.counterparty, (byCounterparty.get(row.counterparty) ?? 0n) + row.earned)
  }
  return {
    agent,
    referred: referred.map((a) => ({ agent: a, earned: usdc(byCounterparty.get(a.wallet) ?? 0n) })),
    earned: usdc(earned),
    byRegion
  }
}

// ---- every wallet ----------------------------------------------------------------------

export const regionTotals = (rows: ReadonlyArray<RegionRow>): ReadonlyArray<RegionRow> => {
  const regions = new Map<string, { escrows: number; spent: bigint; revenue: bigint; feesPaid: bigint }>()
  for (const row of rows) {
    const t = regions.get(row.region) ?? { escrows: 0, spent: 0n, revenue: 0n, feesPaid: 0n }
    regions.set(row.region, {
      escrows: t.escrows + row.escrows,
      spent: t.spent + row.spent,
      revenue: t.revenue + row.revenue,
      feesPaid: t.feesPaid + row.feesPaid
    })
  }
  return [...regions].map(([region, t]) => ({
    region,
    escrows: t.escrows,
    spent: usdc(t.spent),
    revenue: usdc(t.revenue),
    feesPaid: usdc(t.feesPaid)
  }))
}

export const counts = (rows: ReadonlyArray<{ readonly key: string; readonly n: number }>): ReadonlyMap<string, number> => {
  const byKey = new Map<string, number>()
  for (const row of rows) byKey.set(row.key, (byKey.get(row.key) ?? 0) + row.n)
  return byKey
}

export const statusCounts = (rows: ReadonlyArray<{ readonly key: string; readonly n: number }>): Record<EscrowStatus, number> => {
  const byStatus = Object.fromEntries(EscrowStatuses.map((s) => [s, 0])) as Record<EscrowStatus, number>
  for (const [status, n] of counts(rows)) byStatus[status as EscrowStatus] = n
  return byStatus
}

/** Referral postings by receiver and the party each was earned from. */
export const referralIncome = (
  rows: ReadonlyArray<{ readonly account: string; readonly counterparty: string | null; readonly earned: bigint }>
): ReferralIncome => {
  const incomeByWallet = new Map<string, bigint>()
  const incomeByPair = new Map<string, bigint>()
  for (const row of rows) {
    incomeByWallet.set(row.account, (incomeByWallet.get(row.account) ?? 0n) + row.earned)
    if (row.counterparty !== null) {
      const pair = `${row.account} ${row.counterparty}`
      incomeByPair.set(pair, (incomeByPair.get(pair) ?? 0n) + row.earned)
    }
  }
  return { incomeByWallet, incomeByPair }
}

/**
 * The operator's money per region and in all: the region totals, with each region's
 * referral income taken from the operator's series (one scan of the postings, not two).
 */
export const operatorMoney = (
  regions: ReadonlyArray<RegionRow>,
  everyones: SeriesResult
): { readonly byRegion: ReadonlyArray<RegionRow & ActivityTotals>; readonly totals: ActivityTotals } => {
  const referral = new Map<string, bigint>()
  for (const bucket of everyones.buckets) {
    for (const r of bucket.regions) referral.set(r.region, (referral.get(r.region) ?? 0n) + r.referralIncome)
  }
  const byRegion = [...regions]
    .sort((a, b) => byName(a.region, b.region))
    .map((r) => ({ ...r, referralIncome: usdc(referral.get(r.region) ?? 0n) }))
  const sum = (pick: (r: ActivityTotals) => bigint) => usdc(byRegion.reduce((acc, r) => acc + pick(r), 0n))
  return {
    byRegion,
    totals: { spent: sum((r) => r.spent), revenue: sum((r) => r.revenue), feesPaid: sum((r) => r.feesPaid), referralIncome: sum((r) => r.referralIncome) }
  }
}

/** A page of `limit` asked for with one row more: that row only says another page follows. */
export const auditPage = (rows: ReadonlyArray<EscrowRecord>, limit: number, total: number): AuditResult => {
  const escrows = rows.slice(0, limit)
  return { escrows, nextCursor: rows.length > limit ? escrows[escrows.length - 1]!.id : null, total }
}

// ---- money over time -------------------------------------------------------------------

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

export const emptySeries: SeriesResult = { bucketMs: BUCKET_LADDER_MS[0]!, buckets: [] }

/** The bucket width for the times a series covers; undefined when there are none. */
export const seriesBucket = (ranges: ReadonlyArray<{ readonly loMs: number; readonly hiMs: number }>): number | undefined =>
  ranges.length === 0
    ? undefined
    : bucketFor(Math.min(...ranges.map((r) => r.loMs)), Math.max(...ranges.map((r) => r.hiMs)))

interface BucketRow {
  readonly region: string
  readonly bucketMs: number
}

/**
 * Whose money a series shows. Everyone's: spending is the gross of each release; the
 * payees' revenue is that gross less the fee, whose two parts are the platform's fee
 * postings and the referral postings. One wallet's: what it spent, and its own
 * payout and referral postings.
 */
export type SeriesRows =
  | {
    readonly _tag: "All"
    readonly spent: ReadonlyArray<BucketRow & { readonly gross: bigint }>
    readonly fees: ReadonlyArray<BucketRow & { readonly fee: bigint }>
    readonly referrals: ReadonlyArray<BucketRow & { readonly referral: bigint }>
  }
  | {
    readonly _tag: "Wallet"
    readonly spent: ReadonlyArray<BucketRow & { readonly gross: bigint }>
    readonly received: ReadonlyArray<BucketRow & { readonly revenue: bigint; readonly referral: bigint }>
  }

export const series = (bucketMs: number, rows: SeriesRows): SeriesResult => {
  const cells = new Map<number, Map<string, { revenue: bigint; spent: bigint; referralIncome: bigint }>>()
  const cell = (row: BucketRow) => {
    let byRegion = cells.get(row.bucketMs)
    if (byRegion === undefined) cells.set(row.bucketMs, byRegion = new Map())
    let c = byRegion.get(row.region)
    if (c === undefined) byRegion.set(row.region, c = { revenue: 0n, spent: 0n, referralIncome: 0n })
    return c
  }
  for (const row of rows.spent) cell(row).spent += row.gross
  if (rows._tag === "All") {
    for (const c of cells.values()) for (const v of c.values()) v.revenue = v.spent
    for (const row of rows.fees) cell(row).revenue -= row.fee
    for (const row of rows.referrals) {
      const c = cell(row)
      c.revenue -= row.referral
      c.referralIncome += row.referral
    }
  } else {
    for (const row of rows.received) {
      const c = cell(row)
      c.revenue += row.revenue
      c.referralIncome += row.referral
    }
  }
  const buckets = [...cells.entries()]
    .sort(([a], [b]) => a - b)
    .map(([startMs, byRegion]): SeriesBucket => ({
      startMs,
      regions: [...byRegion.entries()]
        .sort(([a], [b]) => byName(a, b))
        .map(([region, c]) => ({ region, revenue: usdc(c.revenue), spent: usdc(c.spent), referralIncome: usdc(c.referralIncome) }))
    }))
  return { bucketMs, buckets }
}

/** The bucket a time falls in. */
export const bucketStart = (atMs: number, bucketMs: number) => Math.floor(atMs / bucketMs) * bucketMs
