/**
 * An orchestrator's spending caps: its lifetime's, and a run's (`withBudget`). A
 * task reserves its lock against them before its escrow opens (see `../Budget.ts`).
 */
import { Effect, Either, FiberRef } from "effect"
import type { BudgetExceeded, InvalidInput } from "../../domain/errors.js"
import type { AgentRecord } from "../../domain/Escrow.js"
import type { WalletAddress } from "../../domain/ids.js"
import type { Usdc } from "../../domain/Usdc.js"
import { type Budget, perTaskCheck, reserve, settle, SpendTracker } from "../Budget.js"
import { invalid } from "./checks.js"
import type { OrchestratorShape } from "./contract.js"

/** Run caps set by `withBudget`, per orchestrator wallet: a sub-agent's hiring is not charged to its parent's run. */
const RunBudgets = FiberRef.unsafeMake<ReadonlyMap<WalletAddress, { readonly perTask: bigint | undefined; readonly tracker: SpendTracker }>>(
  new Map()
)

export const checkBudget = (field: string, budget: Budget | undefined): Either.Either<Budget, InvalidInput> => {
  for (const key of ["perTask", "perRun"] as const) {
    const value = budget?.[key]
    if (value !== undefined && value < 0n) return Either.left(invalid(`${field}.${key}`, "must not be negative"))
  }
  return Either.right(budget ?? {})
}

export const minCap = (a: bigint | undefined, b: bigint | undefined): bigint | undefined =>
  a === undefined ? b : b === undefined ? a : a < b ? a : b

export interface Budgets {
  /** Checks the caps and reserves `amount`; the returned function ends the reservation with what was paid. */
  readonly reserveBudget: (amount: Usdc, maxPrice: Usdc | undefined) => Effect.Effect<(paid: bigint) => void, BudgetExceeded>
  readonly withBudget: OrchestratorShape["withBudget"]
  readonly spent: OrchestratorShape["spent"]
}

/** The caps of the orchestrator `identity`, with `lifetimeBudget` for its whole lifetime. */
export const makeBudgets = (identity: AgentRecord, lifetimeBudget: Budget): Budgets => {
  const lifetime = new SpendTracker("per-run", lifetimeBudget.perRun)

  const trackersFor = (runs: ReadonlyMap<WalletAddress, { perTask: bigint | undefined; tracker: SpendTracker }>) => {
    const run = runs.get(identity.wallet)
    return {
      trackers: run === undefined ? [lifetime] : [lifetime, run.tracker],
      perTask: minCap(lifetimeBudget.perTask, run?.perTask)
    }
  }

  const reserveBudget = (amount: Usdc, maxPrice: Usdc | undefined) =>
    Effect.flatMap(FiberRef.get(RunBudgets), (runs) => {
      const { perTask, trackers } = trackersFor(runs)
      const taskCheck = perTaskCheck(minCap(perTask, maxPrice), amount)
      if (Either.isLeft(taskCheck)) return Effect.fail(taskCheck.left)
      const reserved = reserve(trackers, amount)
      if (Either.isLeft(reserved)) return Effect.fail(reserved.left)
      return Effect.succeed((paid: bigint) => settle(trackers, amount, paid))
    })

  const withBudget = (budget: Budget) => <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.flatMap(checkBudget("budget", budget), (valid: Budget) =>
      Effect.locallyWith(effect, RunBudgets, (runs) =>
        new Map(runs).set(identity.wallet, {
          perTask: valid.perTask,
          tracker: new SpendTracker("per-run", valid.perRun)
        })))

  return {
    reserveBudget,
    withBudget,
    spent: Effect.sync(() => ({ paidMicros: lifetime.committed, lockedMicros: lifetime.reserved }))
  }
}
