/**
 * The `LedgerReports` contract, run against every implementation: the memory
 * ledger's, and the SQL reports on SQLite and on PostgreSQL (when a server is
 * reachable). Every figure agrees with what the `Ledger` itself reports, pages cover
 * every escrow once, the watermark moves with every transition and only then; and
 * the same history gives the same reports in memory and in SQL.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { EscrowId, WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import { type AuditResult, LedgerReports, type LedgerReportsShape, type Scope } from "../../src/ledger/reports/LedgerReports.js"
import * as LedgerReportsSql from "../../src/ledger/reports/LedgerReportsSql.js"
import { Ledger } from "../../src/ledger/Ledger.js"
import * as LedgerConfig from "../../src/ledger/LedgerConfig.js"
import * as MemoryLedger from "../../src/ledger/MemoryLedger.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"
import { createDatabase, describePg, pgLedgerLayer } from "../postgres/harness.js"

/** A small economy: a referral chain, two regions, every kind of transition. */
const seed = Effect.gen(function*() {
  const ledger = yield* Ledger
  const root = yield* ledger.registerAgent({ name: "root" })
  const alice = yield* ledger.registerAgent({ name: "alice", referralCode: root.referralCode })
  const bob = yield* ledger.registerAgent({ name: "bob", referralCode: alice.referralCode })
  const solo = yield* ledger.registerAgent({ name: "solo" })
  for (const a of [root, alice, bob, solo]) yield* ledger.deposit(a.wallet, Usdc.make("1000"))
  const open = (payer: WalletAddress, payee: WalletAddress, amount: string, region: string) =>
    ledger.createEscrow({ payer, payee, amount: Usdc.make(amount), description: "t", metadata: { fly_region: region } })
  const e1 = yield* open(root.wallet, alice.wallet, "100.000001", "iad")
  yield* ledger.releaseEscrow(e1.id)
  const e2 = yield* open(alice.wallet, bob.wallet, "33.333333", "lhr")
  yield* ledger.releaseEscrow(e2.id, { amount: Usdc.make("10") })
  yield* ledger.releaseEscrow(e2.id)
  const e3 = yield* open(bob.wallet, solo.wallet, "7", "lhr")
  yield* ledger.cancelEscrow(e3.id)
  yield* open(solo.wallet, root.wallet, "2.5", "iad")
  for (let i = 0; i < 9; i++) {
    const e = yield* open(root.wallet, bob.wallet, `1.00000${i}`, i % 2 === 0 ? "iad" : "lhr")
    yield* ledger.releaseEscrow(e.id)
  }
  return [root, alice, bob, solo].map((a) => a.wallet)
})

const checks = Effect.gen(function*() {
  const ledger = yield* Ledger
  const queries = yield* LedgerReports
  const wallets = yield* seed

  // Totals per region: Σ Ledger.activity over every wallet.
  const expected = new Map<string, { spent: bigint; revenue: bigint; feesPaid: bigint; referralIncome: bigint }>()
  for (const wallet of wallets) {
    const activity = yield* ledger.activity(wallet)
    for (const [region, t] of Object.entries(activity.byRegion)) {
      const row = expected.get(region) ?? { spent: 0n, revenue: 0n, feesPaid: 0n, referralIncome: 0n }
      expected.set(region, {
        spent: row.spent + t.spent,
        revenue: row.revenue + t.revenue,
        feesPaid: row.feesPaid + t.feesPaid,
        referralIncome: row.referralIncome + t.referralIncome
      })
    }
  }
  const regions = yield* queries.regionTotals
  expect(Object.fromEntries(regions.map((r) => [r.region, { spent: r.spent, revenue: r.revenue, feesPaid: r.feesPaid }])))
    .toEqual(Object.fromEntries([...expected].map(([region, t]) => [region, { spent: t.spent, revenue: t.revenue, feesPaid: t.feesPaid }])))
  expect(regions.reduce((n, r) => n + r.escrows, 0)).toBe(13)

  // Series: per region and per wallet, the buckets add up to the same totals.
  const all: Scope = { _tag: "All" }
  const series = yield* queries.series(all)
  for (const [region, t] of expected) {
    const points = series.buckets.flatMap((b) => b.regions.filter((p) => p.region === region))
    expect(points.reduce((a, p) => a + p.revenue, 0n), region).toBe(t.revenue)
    expect(points.reduce((a, p) => a + p.spent, 0n), region).toBe(t.spent)
    expect(points.reduce((a, p) => a + p.referralIncome, 0n), region).toBe(t.referralIncome)
  }
  for (const wallet of wallets) {
    const activity = yield* ledger.activity(wallet)
    const mine = yield* queries.series({ _tag: "Wallet", wallet })
    const points = mine.buckets.flatMap((b) => b.regions)
    expect(points.reduce((a, p) => a + p.revenue, 0n)).toBe(activity.revenue)
    expect(points.reduce((a, p) => a + p.spent, 0n)).toBe(activity.spent)
    expect(points.reduce((a, p) => a + p.referralIncome, 0n)).toBe(activity.referralIncome)
  }

  // Status counts and escrows per region, scoped.
  expect(yield* queries.statusCounts(all)).toEqual({ pending: 1, released: 11, cancelled: 1, expired: 0 })
  const solo = wallets[3]!
  expect(yield* queries.statusCounts({ _tag: "Wallet", wallet: solo })).toEqual({ pending: 1, released: 0, cancelled: 1, expired: 0 })
  expect(Object.fromEntries(yield* queries.escrowsByRegion({ _tag: "Wallet", wallet: solo }))).toEqual({ iad: 1, lhr: 1 })

  // Audit pages: every escrow once, newest first; filters narrow; the scope holds.
  const seen: Array<string> = []
  let cursor: EscrowId | null = null
  for (let i = 0; i < 10; i++) {
    const page: AuditResult = yield* queries.audit(all, { limit: 4, cursor: cursor ?? undefined })
    expect(page.total).toBe(13)
    seen.push(...page.escrows.map((e) => e.id))
    cursor = page.nextCursor
    if (cursor === null) break
  }
  expect(seen.length).toBe(13)
  expect(seen).toEqual([...seen].sort().reverse())
  const lhrReleased = yield* queries.audit(all, { limit: 100, status: "released", region: "lhr" })
  const fromLedger = yield* ledger.listEscrows({ status: "released", region: "lhr", limit: 500 })
  expect(lhrReleased.escrows.map((e) => e.id)).toEqual(fromLedger.escrows.map((e) => e.id).reverse())
  const soloWithRoot = yield* queries.audit({ _tag: "Wallet", wallet: solo }, { limit: 100, counterparty: wallets[0]! })
  expect(soloWithRoot.total).toBe(1)

  // The network: referrers and what each earned from each party.
  const network = yield* queries.network(100)
  expect(network.total).toBe(4)
  expect(network.members.map((m) => m.agent.name).slice(0, 3).sort()).toEqual(["alice", "bob", "root"])
  expect(network.members[3]!.agent.name).toBe("solo")
  for (const wallet of wallets) {
    const report = yield* ledger.referrals(wallet)
    expect(network.incomeByWallet.get(wallet) ?? 0n).toBe(report.earned)
    for (const referred of report.referred) {
      expect(network.incomeByPair.get(`${wallet} ${referred.agent.wallet}`) ?? 0n).toBe(referred.earned)
    }
  }
  expect((yield* queries.network(2)).members.length).toBe(2)

  // Names, bounded.
  const names = yield* queries.names(wallets)
  expect([...names.values()].sort()).toEqual(["alice", "bob", "root", "solo"])

  // Watermarks: unchanged by reading, moved by every transition in scope, not by others'.
  const before = { all: yield* queries.watermark(all), solo: yield* queries.watermark({ _tag: "Wallet", wallet: solo }) }
  expect(yield* queries.watermark(all)).toBe(before.all)
  const e = yield* ledger.createEscrow({ payer: wallets[0]!, payee: wallets[1]!, amount: Usdc.make("1"), description: "t" })
  const afterCreate = { all: yield* queries.watermark(all), solo: yield* queries.watermark({ _tag: "Wallet", wallet: solo }) }
  expect(afterCreate.all).not.toBe(before.all)
  expect(afterCreate.solo).toBe(before.solo)
  yield* ledger.cancelEscrow(e.id)
  expect(yield* queries.watermark(all)).not.toBe(afterCreate.all)
  const pending = (yield* queries.audit({ _tag: "Wallet", wallet: solo }, { limit: 10, status: "pending" })).escrows[0]!
  yield* ledger.releaseEscrow(pending.id)
  expect(yield* queries.watermark({ _tag: "Wallet", wallet: solo })).not.toBe(before.solo)
})

const sqlite = () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-dashboard-queries-"))
  return LedgerReportsSql.layer.pipe(
    Layer.provideMerge(SqlLedger.layerSqlite({ dataDir, synchronous: "NORMAL" })),
    Layer.provide(LedgerConfig.layer({ region: "local" }))
  )
}

const memory = () => MemoryLedger.layerWithReports.pipe(Layer.provide(LedgerConfig.layer({ region: "local" })))

/**
 * Every report of the seeded history, wallets replaced by agent names (each
 * implementation makes its own wallets) and series by their totals per region.
 */
const reportsByName = Effect.gen(function*() {
  const ledger = yield* Ledger
  const reports: LedgerReportsShape = yield* LedgerReports
  const wallets = yield* seed
  const names = yield* reports.names(wallets)
  const name = (wallet: string) => names.get(wallet) ?? wallet
  const perAgent = yield* Effect.forEach(wallets, (wallet) =>
    Effect.gen(function*() {
      const activity = yield* reports.activity(wallet)
      const referrals = yield* reports.referrals(wallet)
      const series = yield* reports.series({ _tag: "Wallet", wallet })
      return {
        name: name(wallet),
        activity: { ...activity, wallet: name(wallet) },
        sameAsLedger: JSON.stringify(activity, bigints) === JSON.stringify(yield* ledger.activity(wallet), bigints),
        referrals: {
          earned: referrals.earned,
          byRegion: referrals.byRegion,
          referred: referrals.referred.map((r) => `${r.agent.name} ${r.earned}`).sort()
        },
        series: seriesTotals(series.buckets),
        statusCounts: yield* reports.statusCounts({ _tag: "Wallet", wallet }),
        escrowsByRegion: Object.fromEntries(yield* reports.escrowsByRegion({ _tag: "Wallet", wallet }))
      }
    }))
  const network = yield* reports.network(100)
  return {
    perAgent,
    regionTotals: [...(yield* reports.regionTotals)].sort((a, b) => a.region.localeCompare(b.region)),
    series: seriesTotals((yield* reports.series({ _tag: "All" })).buckets),
    statusCounts: yield* reports.statusCounts({ _tag: "All" }),
    network: {
      // Ids order members and pages; each implementation makes its own ids.
      members: network.members.map((m) => `${m.agent.name} ${m.referredCount}`).sort(),
      total: network.total,
      incomeByWallet: Object.fromEntries([...network.incomeByWallet].map(([w, v]) => [name(w), v])),
      incomeByPair: Object.fromEntries([...network.incomeByPair].map(([pair, v]) => [pair.split(" ").map(name).join(" "), v]))
    },
    audit: (yield* reports.audit({ _tag: "All" }, { limit: 100 })).escrows
      .map((e) => `${name(e.payer)} ${name(e.payee)} ${e.amount} ${e.status} ${e.region}`)
      .sort()
  }
})

const bigints = (_key: string, value: unknown) => (typeof value === "bigint" ? `${value}` : value)

const seriesTotals = (buckets: ReadonlyArray<{ readonly regions: ReadonlyArray<{ readonly region: string; readonly revenue: bigint; readonly spent: bigint; readonly referralIncome: bigint }> }>) => {
  const totals: Record<string, { revenue: bigint; spent: bigint; referralIncome: bigint }> = {}
  for (const r of buckets.flatMap((b) => b.regions)) {
    const t = totals[r.region] ?? { revenue: 0n, spent: 0n, referralIncome: 0n }
    totals[r.region] = { revenue: t.revenue + r.revenue, spent: t.spent + r.spent, referralIncome: t.referralIncome + r.referralIncome }
  }
  return totals
}

describe("ledger reports in memory", () => {
  it.scoped("agree with the ledger", () => Effect.provide(checks, memory()), 30_000)
})

describe("ledger reports: one history, one answer", () => {
  it.scoped("memory and SQLite fold the same history into the same reports", () =>
    Effect.gen(function*() {
      const inMemory = yield* Effect.provide(reportsByName, memory())
      const onSqlite = yield* Effect.provide(reportsByName, sqlite())
      expect(inMemory.perAgent.every((a) => a.sameAsLedger)).toBe(true)
      expect(onSqlite.perAgent.every((a) => a.sameAsLedger)).toBe(true)
      // Money moved in both, so equal reports are not two empty ones.
      expect(inMemory.regionTotals.reduce((n, r) => n + r.spent, 0n)).toBeGreaterThan(0n)
      expect(Object.keys(inMemory.network.incomeByPair).length).toBeGreaterThan(0)
      expect(inMemory).toEqual(onSqlite)
    }), 30_000)
})

describe("dashboard queries on SQLite", () => {
  it.scoped("agree with the ledger", () => Effect.provide(checks, sqlite()), 30_000)
})

describePg("dashboard queries on PostgreSQL", () => {
  it.scoped("agree with the ledger", () =>
    Effect.gen(function*() {
      const db = yield* Effect.acquireRelease(Effect.promise(() => createDatabase("dashboard")), (d) => Effect.promise(() => d.drop()))
      yield* Effect.provide(checks, LedgerReportsSql.layer.pipe(Layer.provideMerge(pgLedgerLayer(db.url, { region: "local" }))))
    }), 60_000)

  it.scoped("fold the same history into the same reports as memory", () =>
    Effect.gen(function*() {
      const db = yield* Effect.acquireRelease(Effect.promise(() => createDatabase("reports")), (d) => Effect.promise(() => d.drop()))
      const onPg = yield* Effect.provide(reportsByName, LedgerReportsSql.layer.pipe(Layer.provideMerge(pgLedgerLayer(db.url, { region: "local" }))))
      expect(onPg.perAgent.every((a) => a.sameAsLedger)).toBe(true)
      expect(onPg).toEqual(yield* Effect.provide(reportsByName, memory()))
    }), 60_000)
})
