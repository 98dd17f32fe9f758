/**
 * What the dashboard shows a viewer, and the one place that decides what a viewer
 * may see:
 *
 * - an agent: its own wallet (`Ledger.activity`, `Ledger.balance`), the escrows it
 *   is a party to, and its own referrals (`Ledger.referrals`); one escrow only
 *   through `Settlement.get` (the REST API's party check), so the rule exists once;
 * - the operator: every wallet, escrow and agent.
 *
 * The per-agent figures come straight from the `Ledger` interface; what it does not
 * offer (totals across wallets, series, counts, filtered audit pages, the whole
 * referral network, change watermarks) comes from `LedgerReports`, the ledger's
 * read-only reports.
 */
import { Clock, Context, Effect, Layer } from "effect"
import type { AgentNotFound, EscrowNotFound, LedgerUnavailable } from "../../domain/errors.js"
import type { EscrowId, WalletAddress } from "../../domain/ids.js"
import { SystemAccount } from "../../domain/ids.js"
import type { Usdc } from "../../domain/Usdc.js"
import { Ledger } from "../../ledger/Ledger.js"
import type { NotAuthorized } from "../../settlement/errors.js"
import { Settlement } from "../../settlement/Settlement.js"
import { escrowView } from "../views.js"
import type * as Api from "./Api.js"
import { DashboardConfig } from "./DashboardConfig.js"
import * as Reports from "../../ledger/reports/folds.js"
import { type AuditFilter, LedgerReports, type Scope, type SeriesResult } from "../../ledger/reports/LedgerReports.js"

type Type<S extends { readonly Type: unknown }> = S["Type"]
export type SessionView = Type<typeof Api.Session>
export type OverviewView = Type<typeof Api.Overview>
export type NetworkView = Type<typeof Api.Network>
export type AuditPageView = Type<typeof Api.AuditPage>
export type EscrowDetailView = Type<typeof Api.EscrowDetail>

export interface DashboardShape {
  readonly session: (viewer: Api.Viewer) => Effect.Effect<SessionView, AgentNotFound | LedgerUnavailable>
  readonly overview: (viewer: Api.Viewer) => Effect.Effect<OverviewView, LedgerUnavailable>
  readonly network: (viewer: Api.Viewer) => Effect.Effect<NetworkView, AgentNotFound | LedgerUnavailable>
  readonly escrows: (viewer: Api.Viewer, filter: AuditFilter) => Effect.Effect<AuditPageView, LedgerUnavailable>
  readonly escrow: (
    viewer: Api.Viewer,
    id: EscrowId
  ) => Effect.Effect<EscrowDetailView, NotAuthorized | EscrowNotFound | LedgerUnavailable>
  readonly watermark: (viewer: Api.Viewer) => Effect.Effect<string, LedgerUnavailable>
}

export class Dashboard extends Context.Tag("ringmaster/Dashboard")<Dashboard, DashboardShape>() {
  static readonly layer: Layer.Layer<Dashboard, never, Ledger | Settlement | LedgerReports | DashboardConfig> = Layer.effect(
    Dashboard,
    Effect.gen(function*() {
      return yield* make
    })
  )
}

export const scopeOf = (viewer: Api.Viewer): Scope =>
  viewer._tag === "Operator" ? { _tag: "All" } : { _tag: "Wallet", wallet: viewer.caller.wallet }

const zero = 0n as Usdc
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

export const make = Effect.gen(function*() {
  const ledger = yield* Ledger
  const settlement = yield* Settlement
  const queries = yield* LedgerReports
  const config = yield* DashboardConfig
  const fees = ledger.config.fees
  const live = (scope: "operator" | "agent") => ({
    interval_ms: config.liveIntervalMs,
    poll_interval_ms: config.pollIntervalMs,
    recheck_ms: scope === "operator" ? config.operatorRefreshMs : config.liveIntervalMs
  })

  /**
   * The operator's views read every row of some tables, and the SQLite driver runs on
   * the event loop: so they are computed by one fiber at a time, shared by every
   * operator tab, and recomputed only when the watermark has moved and at most once
   * per `operatorRefreshMs`. Each answer carries the watermark read before its data;
   * a page holding an older one asks again after `recheck_ms`.
   */
  const throttled = <A, E>(compute: (watermark: string) => Effect.Effect<A, E>) => {
    let cached: { readonly value: A; readonly watermark: string; readonly atMs: number } | undefined
    const lock = Effect.unsafeMakeSemaphore(1)
    return lock.withPermits(1)(Effect.gen(function*() {
      const watermark = yield* queries.watermark({ _tag: "All" })
      const nowMs = yield* Clock.currentTimeMillis
      if (cached !== undefined && (cached.watermark === watermark || nowMs - cached.atMs < config.operatorRefreshMs)) {
        return cached.value
      }
      const value = yield* compute(watermark)
      cached = { value, watermark, atMs: yield* Clock.currentTimeMillis }
      return value
    }))
  }

  const seriesView = (s: SeriesResult): OverviewView["series"] => ({
    bucket_ms: s.bucketMs,
    buckets: s.buckets.map((b) => ({
      start: b.startMs,
      regions: b.regions.map((r) => ({
        region: r.region,
        revenue_usdc: r.revenue,
        spent_usdc: r.spent,
        referral_income_usdc: r.referralIncome
      }))
    }))
  })

  /** Names an agent viewer may see: only its own (the operator sees all). */
  const namesFor = (viewer: Api.Viewer, wallets: ReadonlyArray<WalletAddress>) =>
    viewer._tag === "Operator"
      ? queries.names(wallets)
      : Effect.map(ledger.getAgent(viewer.caller.wallet), (agent) => new Map([[agent.wallet as string, agent.name]])).pipe(
        Effect.catchTag("AgentNotFound", () => Effect.succeed(new Map<string, string>()))
      )

  const operatorOverview = throttled((watermark) =>
    Effect.gen(function*() {
      const [s, regions, counts, locked, platform, nowMs] = yield* Effect.all([
        queries.series({ _tag: "All" }),
        queries.regionTotals,
        queries.statusCounts({ _tag: "All" }),
        ledger.systemBalance(SystemAccount.escrowHolding),
        ledger.systemBalance(SystemAccount.platformFees),
        Clock.currentTimeMillis
      ])
      const money = Reports.operatorMoney(regions, s)
      return {
        scope: "operator",
        wallet_address: null,
        totals: {
          revenue_usdc: money.totals.revenue,
          spent_usdc: money.totals.spent,
          fees_paid_usdc: money.totals.feesPaid,
          referral_income_usdc: money.totals.referralIncome
        },
        locked_usdc: locked as Usdc,
        available_usdc: null,
        platform_fees_usdc: platform as Usdc,
        by_region: money.byRegion.map((r) => ({
          region: r.region,
          escrows: r.escrows,
          revenue_usdc: r.revenue,
          spent_usdc: r.spent,
          fees_paid_usdc: r.feesPaid,
          referral_income_usdc: r.referralIncome
        })),
        status_counts: counts,
        series: seriesView(s),
        watermark,
        generated_at: nowMs
      } satisfies OverviewView
    })
  )

  const agentOverview = (wallet: WalletAddress) =>
    Effect.gen(function*() {
      const scope: Scope = { _tag: "Wallet", wallet }
      const [watermark, activity, balance, counts, perRegion, s, nowMs] = yield* Effect.all([
        queries.watermark(scope),
        ledger.activity(wallet),
        ledger.balance(wallet),
        queries.statusCounts(scope),
        queries.escrowsByRegion(scope),
        Effect.map(queries.series(scope), seriesView),
        Clock.currentTimeMillis
      ])
      // The ledger leaves out regions where nothing moved; an escrow still pending there counts.
      const regions = [...new Set([...Object.keys(activity.byRegion), ...perRegion.keys()])].sort(byName)
      return {
        scope: "agent",
        wallet_address: wallet,
        totals: {
          revenue_usdc: activity.revenue,
          spent_usdc: activity.spent,
          fees_paid_usdc: activity.feesPaid,
          referral_income_usdc: activity.referralIncome
        },
        locked_usdc: balance.locked,
        available_usdc: balance.available,
        platform_fees_usdc: null,
        by_region: regions.map((region) => {
          const t = activity.byRegion[region]
          return {
            region,
            escrows: perRegion.get(region) ?? 0,
            revenue_usdc: t?.revenue ?? zero,
            spent_usdc: t?.spent ?? zero,
            fees_paid_usdc: t?.feesPaid ?? zero,
            referral_income_usdc: t?.referralIncome ?? zero
          }
        }),
        status_counts: counts,
        series: s,
        watermark,
        generated_at: nowMs
      } satisfies OverviewView
    })

  const operatorNetwork = throttled(() => Effect.map(queries.network(config.maxNetworkAgents), (n): NetworkView => ({
    scope: "operator",
    root_wallet: null,
    agents: n.members.map(({ agent, referredCount }) => ({
      agent_id: agent.agentId,
      agent_name: agent.name,
      wallet_address: agent.wallet,
      referrer_wallet: agent.referrer,
      referral_income_usdc: (n.incomeByWallet.get(agent.wallet) ?? 0n) as Usdc,
      earned_for_referrer_usdc: agent.referrer === null
        ? null
        : (n.incomeByPair.get(`${agent.referrer} ${agent.wallet}`) ?? 0n) as Usdc,
      referred_count: referredCount,
      created_at: agent.createdAtMs
    })),
    total_agents: n.total,
    truncated: n.members.length < n.total,
    earned_usdc: [...n.incomeByWallet.values()].reduce((a, b) => a + b, 0n) as Usdc
  })))

  const agentNetwork = (wallet: WalletAddress) =>
    Effect.map(ledger.referrals(wallet), (report): NetworkView => {
      const referred = report.referred.slice(0, Math.max(0, config.maxNetworkAgents - 1))
      return {
        scope: "agent",
        root_wallet: wallet,
        agents: [
          {
            agent_id: report.agent.agentId,
            agent_name: report.agent.name,
            wallet_address: report.agent.wallet,
            referrer_wallet: report.agent.referrer,
            referral_income_usdc: report.earned,
            earned_for_referrer_usdc: null,
            referred_count: report.referred.length,
            created_at: report.agent.createdAtMs
          },
          // The agents it referred: what it earned from each is its own data; their
          // own income and referrals are theirs.
          ...referred.map(({ agent, earned }) => ({
            agent_id: agent.agentId,
            agent_name: agent.name,
            wallet_address: agent.wallet,
            referrer_wallet: agent.referrer,
            referral_income_usdc: null,
            earned_for_referrer_usdc: earned,
            referred_count: null,
            created_at: agent.createdAtMs
          }))
        ],
        total_agents: report.referred.length + 1,
        truncated: referred.length < report.referred.length,
        earned_usdc: report.earned
      }
    })

  const service: DashboardShape = {
    session: (viewer) =>
      viewer._tag === "Operator"
        ? Effect.succeed({ scope: "operator", region: ledger.config.region, agent: null, live: live("operator") })
        : Effect.map(ledger.getAgent(viewer.caller.wallet), (agent) => ({
          scope: "agent" as const,
          region: ledger.config.region,
          agent: {
            agent_id: agent.agentId,
            agent_name: agent.name,
            wallet_address: agent.wallet,
            referral_code: agent.referralCode,
            referrer_wallet: agent.referrer
          },
          live: live("agent")
        })),

    overview: (viewer) => (viewer._tag === "Operator" ? operatorOverview : agentOverview(viewer.caller.wallet)),

    network: (viewer) => (viewer._tag === "Operator" ? operatorNetwork : agentNetwork(viewer.caller.wallet)),

    escrows: (viewer, filter) =>
      Effect.gen(function*() {
        const page = yield* queries.audit(scopeOf(viewer), filter)
        const names = yield* namesFor(viewer, page.escrows.flatMap((e) => [e.payer, e.payee]))
        return {
          escrows: page.escrows.map((e) => ({
            escrow_id: e.id,
            status: e.status,
            region: e.region,
            payer_wallet: e.payer,
            payee_wallet: e.payee,
            payer_name: names.get(e.payer) ?? null,
            payee_name: names.get(e.payee) ?? null,
            amount_usdc: e.amount,
            released_usdc: e.released,
            fee_paid_usdc: e.feePaid,
            refunded_usdc: e.refunded,
            description: e.description,
            created_at: e.createdAtMs,
            settled_at: e.settledAtMs,
            version: e.version
          })),
          next_cursor: page.nextCursor,
          total: page.total,
          limit: filter.limit
        }
      }),

    escrow: (viewer, id) =>
      Effect.gen(function*() {
        const record = viewer._tag === "Operator" ? yield* ledger.getEscrow(id) : yield* settlement.get(viewer.caller, id)
        const [history, names] = yield* Effect.all([
          ledger.escrowHistory(id),
          namesFor(viewer, [record.payer, record.payee])
        ])
        return {
          escrow: escrowView(record, fees),
          payer_name: names.get(record.payer) ?? null,
          payee_name: names.get(record.payee) ?? null,
          history: history.map((event) => ({
            seq: event.seq,
            kind: event.kind,
            from_status: event.fromStatus,
            to_status: event.toStatus,
            amount_usdc: event.amount,
            region: event.region,
            at: event.atMs
          }))
        }
      }),

    watermark: (viewer) => queries.watermark(scopeOf(viewer))
  }
  return service
})
