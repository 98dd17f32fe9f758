/**
 * The ledger in process memory: the same rules (`engine.ts`) over a state that lives
 * in maps. For test suites and examples that need no file; `EscrowTest` builds on it.
 * Nothing survives the process.
 */
import { Clock, Context, Effect, Either, Layer } from "effect"
import { AgentNotFound, EscrowNotFound, MandateNotFound } from "../domain/errors.js"
import type { EscrowEvent, EscrowRecord, MandateRecord } from "../domain/Escrow.js"
import { SystemAccount, type WalletAddress } from "../domain/ids.js"
import type { Usdc } from "../domain/Usdc.js"
import { apply, type Command, commandMethods, type ResultOf, WorkingSet } from "./engine.js"
import { aggregatePostings, checkInvariants } from "./invariants.js"
import { Ledger, LedgerConfig, type LedgerConfigShape, type LedgerShape } from "./Ledger.js"
import { LedgerReports } from "./reports/LedgerReports.js"
import * as MemoryReports from "./reports/memory.js"
import { EscrowTransitions } from "./Transitions.js"
import { Limits } from "../domain/limits.js"

/** The memory ledger's whole state, exposed read-only for assertions (`EscrowTest`). */
export interface MemoryLedgerState {
  readonly ws: WorkingSet
}

const asUsdc = (micros: bigint) => micros as Usdc

export const make = (config: LedgerConfigShape): Effect.Effect<LedgerShape & MemoryLedgerState> =>
  Effect.gen(function*() {
    const ws = new WorkingSet(true)

    /** Pending escrows, so the sweeper does not scan every escrow ever made. */
    const pendingIds = new Set<string>()
    const escrowCommands = new Set<Command["_tag"]>(["CreateEscrow", "ReleaseEscrow", "CancelEscrow", "ExpireEscrow"])
    const transitions = yield* Effect.serviceOption(EscrowTransitions)
    const run = <C extends Command>(command: C) =>
      Effect.flatMap(Clock.currentTimeMillis, (nowMs) => {
        const eventsBefore = ws.events.length
        const outcome = apply(ws, command, config, nowMs)
        if (Either.isLeft(outcome)) {
          // A release refused past the deadline expired the escrow as it refused.
          if (outcome.left._tag === "EscrowExpired") pendingIds.delete(outcome.left.escrowId)
          return Effect.fail(outcome.left)
        }
        if (escrowCommands.has(command._tag) && outcome.right !== null) {
          const escrow = outcome.right as EscrowRecord
          if (escrow.status === "pending") pendingIds.add(escrow.id)
          else pendingIds.delete(escrow.id)
        }
        const result = Effect.succeed(outcome.right as ResultOf<C>)
        // The events this command appended are its transitions (none for a repeat).
        return transitions._tag === "None" || ws.events.length === eventsBefore
          ? result
          : Effect.zipRight(transitions.value.committed(ws.events.slice(eventsBefore)), result)
      })

    yield* Effect.orDie(run({ _tag: "FundTreasury", amount: config.faucetTreasuryInitial }))

    const escrows = () => [...ws.escrows.values()].filter((e): e is EscrowRecord => e !== null)
    const mandates = () => [...ws.mandates.values()].filter((m): m is MandateRecord => m !== null)

    const reports = MemoryReports.make(ws)

    const getAgent = (wallet: WalletAddress) => {
      const agent = ws.agent(wallet)
      return agent === undefined ? Effect.fail(new AgentNotFound({ wallet })) : Effect.succeed(agent)
    }

    const ledger: LedgerShape & MemoryLedgerState = {
      ws,
      config,
      ...commandMethods(run),
      expireDue: (limit = 1_000) =>
        Effect.flatMap(Clock.currentTimeMillis, (nowMs) => {
          const due = [...pendingIds]
            .map((id) => ws.escrow(id)!)
            .filter((e) => e.status === "pending" && e.expiresAtMs <= nowMs)
            .sort((a, b) => a.expiresAtMs - b.expiresAtMs)
            .slice(0, limit)
          // Expiry of a pending, due escrow cannot be refused.
          return Effect.forEach(due, (e) => Effect.orDie(run({ _tag: "ExpireEscrow", id: e.id }))).pipe(
            Effect.map((expired) => expired.filter((e): e is EscrowRecord => e !== null))
          )
        }),

      forgetExpiredKeys: (limit = 10_000) =>
        Effect.map(Clock.currentTimeMillis, (nowMs) => {
          let forgotten = 0
          for (const [slot, record] of ws.idempotencyKeys) {
            if (forgotten >= limit) break
            if (record !== null && record.expiresAtMs <= nowMs) {
              ws.idempotencyKeys.delete(slot)
              forgotten++
            }
          }
          return forgotten
        }),

      getEscrow: (id) => {
        const escrow = ws.escrow(id)
        return escrow === undefined ? Effect.fail(new EscrowNotFound({ escrowId: id })) : Effect.succeed(escrow)
      },
      listEscrows: (query) =>
        Effect.sync(() => {
          const limit = Math.min(Math.max(query.limit ?? Limits.pageSizeDefault, 1), Limits.pageSizeMax)
          const page = escrows()
            .filter((e) =>
              (query.wallet === undefined || e.payer === query.wallet || e.payee === query.wallet) &&
              (query.status === undefined || e.status === query.status) &&
              (query.region === undefined || e.region === query.region) &&
              (query.cursor === undefined || e.id > query.cursor)
            )
            .sort((a, b) => (a.id < b.id ? -1 : 1))
            .slice(0, limit + 1)
          const more = page.length > limit
          const escrowsPage = page.slice(0, limit)
          return { escrows: escrowsPage, nextCursor: more ? escrowsPage[escrowsPage.length - 1]!.id : null }
        }),
      escrowHistory: (id) =>
        Effect.sync(() =>
          ws.events.filter((event): event is EscrowEvent => event.escrowId === id).sort((a, b) => a.seq - b.seq)
        ),
      getMandate: (id) => {
        const mandate = ws.mandate(id)
        return mandate === undefined ? Effect.fail(new MandateNotFound({ mandateId: id })) : Effect.succeed(mandate)
      },
      findLiveMandate: (payer, payee) =>
        Effect.map(Clock.currentTimeMillis, (nowMs) =>
          mandates()
            .filter((m) => m.payer === payer && m.payee === payee && !m.revoked && (m.expiresAtMs === null || m.expiresAtMs > nowMs))
            .sort((a, b) => (a.id < b.id ? 1 : -1))[0] ?? null
        ),
      getAgent,
      balance: (wallet) => Effect.sync(() => ({ wallet, available: asUsdc(ws.balanceOf(wallet)), locked: asUsdc(ws.lockedOf(wallet)) })),
      systemBalance: (account) => Effect.sync(() => ws.balanceOf(account)),
      referrals: reports.referrals,
      activity: reports.activity,
      verify: Effect.sync(() => ({
        accounts: ws.accounts.size,
        postings: ws.postings.length,
        escrows: ws.escrows.size,
        violations: checkInvariants({
          balances: ws.accounts,
          aggregates: aggregatePostings(ws.postings),
          escrows: escrows(),
          mandates: mandates()
        })
      }))
    }
    return ledger
  })

/** An in-memory `Ledger`, configured by `LedgerConfig`. */
export const layer: Layer.Layer<Ledger, never, LedgerConfig> = Layer.effect(
  Ledger,
  Effect.flatMap(LedgerConfig, make)
)

/** The in-memory `Ledger` with its `LedgerReports`, which read its state. */
export const layerWithReports: Layer.Layer<Ledger | LedgerReports, never, LedgerConfig> = Layer.effectContext(
  Effect.map(Effect.flatMap(LedgerConfig, make), (ledger) =>
    Context.make(Ledger, ledger).pipe(Context.add(LedgerReports, MemoryReports.make(ledger.ws))))
)

export { SystemAccount }
