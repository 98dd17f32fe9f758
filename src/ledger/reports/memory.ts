/**
 * The reports over the memory ledger's state: one row per escrow, event or posting,
 * folded by `folds.ts` as the SQL implementation folds its aggregates.
 */
import { Effect } from "effect"
import { AgentNotFound } from "../../domain/errors.js"
import type { AgentRecord, EscrowRecord } from "../../domain/Escrow.js"
import { SystemAccount, type WalletAddress } from "../../domain/ids.js"
import type { WorkingSet } from "../engine.js"
import * as Fold from "./folds.js"
import type { AuditFilter, LedgerReportsShape, NetworkResult, Scope } from "./LedgerReports.js"

const byId = <A extends { readonly id: string }>(a: A, b: A) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
const byAgentId = (a: AgentRecord, b: AgentRecord) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0)

export const make = (ws: WorkingSet): LedgerReportsShape => {
  const escrows = () => [...ws.escrows.values()].filter((e): e is EscrowRecord => e !== null)
  const agents = () => [...ws.agents.values()].filter((a): a is AgentRecord => a !== null)
  const inScope = (scope: Scope) => (e: EscrowRecord) => scope._tag === "All" || e.payer === scope.wallet || e.payee === scope.wallet
  const referralPostings = (account?: string) => ws.postings.filter((p) => p.kind === "referral" && (account === undefined || p.account === account))

  const activity = (wallet: WalletAddress) =>
    Effect.sync(() => {
      const all = escrows()
      return Fold.activity(wallet, {
        paid: all.filter((e) => e.payer === wallet).map((e) => ({ region: e.region, spent: e.released })),
        received: all.filter((e) => e.payee === wallet).map((e) => ({ region: e.region, revenue: e.released - e.feePaid, fees: e.feePaid })),
        referral: referralPostings(wallet).map((p) => ({ region: p.region, income: p.amount }))
      })
    })

  const referrals = (wallet: WalletAddress) => {
    const agent = ws.agent(wallet)
    if (agent === undefined) return Effect.fail(new AgentNotFound({ wallet }))
    return Effect.sync(() =>
      Fold.referrals(
        agent,
        agents().filter((a) => a.referrer === wallet).sort(byAgentId),
        referralPostings(wallet).map((p) => ({ counterparty: p.counterparty, region: p.region, earned: p.amount }))
      )
    )
  }

  const regionTotals = Effect.sync(() =>
    Fold.regionTotals(escrows().map((e) => ({
      region: e.region,
      escrows: 1,
      spent: e.released,
      revenue: (e.released - e.feePaid) as typeof e.released,
      feesPaid: e.feePaid
    })))
  )

  const escrowsByRegion = (scope: Scope) =>
    Effect.sync(() => Fold.counts(escrows().filter(inScope(scope)).map((e) => ({ key: e.region, n: 1 }))))

  const statusCounts = (scope: Scope) =>
    Effect.sync(() => Fold.statusCounts(escrows().filter(inScope(scope)).map((e) => ({ key: e.status, n: 1 }))))

  const series = (scope: Scope) =>
    Effect.sync(() => {
      const releases = ws.events.filter((ev) =>
        (ev.kind === "released" || ev.kind === "partially_released") &&
        (scope._tag === "All" || ws.escrow(ev.escrowId)?.payer === scope.wallet)
      )
      const mine = scope._tag === "All"
        ? []
        : ws.postings.filter((p) => p.account === scope.wallet && (p.kind === "payout" || p.kind === "referral"))
      // The operator's referral postings happen with releases: the events' range covers them.
      const times = [...releases.map((ev) => ev.atMs), ...mine.map((p) => p.atMs)]
      const bucketMs = Fold.seriesBucket(times.length === 0 ? [] : [{ loMs: Math.min(...times), hiMs: Math.max(...times) }])
      if (bucketMs === undefined) return Fold.emptySeries
      const at = (x: { readonly region: string; readonly atMs: number }) => ({ region: x.region, bucketMs: Fold.bucketStart(x.atMs, bucketMs) })
      const spent = releases.map((ev) => ({ ...at(ev), gross: ev.amount }))
      if (scope._tag === "All") {
        return Fold.series(bucketMs, {
          _tag: "All",
          spent,
          fees: ws.postings.filter((p) => p.account === SystemAccount.platformFees && p.kind === "fee").map((p) => ({ ...at(p), fee: p.amount })),
          referrals: referralPostings().map((p) => ({ ...at(p), referral: p.amount }))
        })
      }
      return Fold.series(bucketMs, {
        _tag: "Wallet",
        spent,
        received: mine.map((p) => ({
          ...at(p),
          revenue: p.kind === "payout" ? p.amount : 0n,
          referral: p.kind === "referral" ? p.amount : 0n
        }))
      })
    })

  const audit = (scope: Scope, filter: AuditFilter) =>
    Effect.sync(() => {
      const limit = Math.min(Math.max(Math.trunc(filter.limit), 1), 100)
      const { counterparty, region, status, cursor } = filter
      const matching = escrows().filter((e) =>
        inScope(scope)(e) &&
        (status === undefined || e.status === status) &&
        (region === undefined || e.region === region) &&
        (counterparty === undefined || e.payer === counterparty || e.payee === counterparty)
      )
      // Ids sort by creation time: newest first, and a cursor pages on to older ones.
      const page = matching.filter((e) => cursor === undefined || e.id < cursor).sort(byId).reverse().slice(0, limit + 1)
      return Fold.auditPage(page, limit, matching.length)
    })

  const names = (wallets: ReadonlyArray<WalletAddress>) =>
    Effect.sync(() => {
      const named = new Map<string, string>()
      for (const wallet of [...new Set(wallets)].slice(0, Fold.MAX_NAMES)) {
        const agent = ws.agent(wallet)
        if (agent !== undefined) named.set(wallet, agent.name)
      }
      return named
    })

  const network = (maxAgents: number) =>
    Effect.sync((): NetworkResult => {
      const all = agents()
      const referredCount = new Map<string, number>()
      for (const a of all) if (a.referrer !== null) referredCount.set(a.referrer, (referredCount.get(a.referrer) ?? 0) + 1)
      // Agents in a referral relationship first: they make the tree; lone agents fill what room is left.
      const inTree = (a: AgentRecord) => a.referrer !== null || referredCount.has(a.wallet)
      const members = [...all.filter(inTree).sort(byAgentId), ...all.filter((a) => !inTree(a)).sort(byAgentId)]
        .slice(0, Math.max(1, Math.trunc(maxAgents)))
        .map((agent) => ({ agent, referredCount: referredCount.get(agent.wallet) ?? 0 }))
      return {
        members,
        total: all.length,
        ...Fold.referralIncome(referralPostings().map((p) => ({ account: p.account, counterparty: p.counterparty, earned: p.amount })))
      }
    })

  // Every transition appends an event, every movement of money postings, every
  // registration an agent: their counts change whenever a view could.
  const watermark = (scope: Scope) =>
    Effect.sync(() => {
      if (scope._tag === "All") return [ws.events.length, ws.postings.length, agents().length].join("|")
      const mine = escrows().filter(inScope(scope))
      const versions = mine.reduce((sum, e) => sum + e.version, 0)
      const postings = ws.postings.filter((p) => p.account === scope.wallet).length
      const referred = agents().filter((a) => a.referrer === scope.wallet).length
      return [`${mine.length}.${versions}`, `${ws.balanceOf(scope.wallet)}@${postings}`, String(referred)].join("|")
    })

  return { activity, referrals, regionTotals, escrowsByRegion, statusCounts, series, audit, names, network, watermark }
}
