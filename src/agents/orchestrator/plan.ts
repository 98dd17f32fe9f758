/** A task's plan: the caller's options checked, and the escrow terms they give. */
import { Duration, Either } from "effect"
import type { InvalidInput } from "../../domain/errors.js"
import type { AgentRecord, EscrowTerms } from "../../domain/Escrow.js"
import type { MandateId, WalletAddress } from "../../domain/ids.js"
import type { Usdc } from "../../domain/Usdc.js"
import type { EscrowShape } from "../../escrow/Escrow.js"
import type * as Agent from "../Agent.js"
import type { Budgets } from "./budgets.js"
import { checkInteger, invalid } from "./checks.js"
import type { Config } from "./config.js"
import { type DelegateOptions, type Handle, Limits, type StreamOptions } from "./contract.js"
import { Limits as InputLimits } from "../../domain/limits.js"

/** The orchestrator a task runs for: whose wallet pays by default, its escrow, its caps and its settings. */
export interface TaskContext {
  readonly identity: AgentRecord
  readonly escrow: EscrowShape
  readonly config: Config
  readonly reserveBudget: Budgets["reserveBudget"]
}

export interface Plan {
  readonly timeoutMs: number
  readonly payer: WalletAddress
  readonly mandateId: MandateId | undefined
  readonly description: string | undefined
  readonly region: string | undefined
  readonly maxPrice: Usdc | undefined
}

/** The caller's options for one task, checked (a bad one is an `InvalidInput`), with the orchestrator's defaults filled in. */
export const checkPlan = (
  ctx: Pick<TaskContext, "identity" | "config">,
  options: DelegateOptions<any, any, any, any> | StreamOptions
): Either.Either<Plan, InvalidInput> => {
  const { config, identity } = ctx
  const timeoutMs = options.timeoutMs ?? Limits.defaultTimeoutMs
  const timeout = checkInteger("timeoutMs", timeoutMs, 1, Limits.maxTimeoutMs)
  if (Either.isLeft(timeout)) return Either.left(timeout.left)
  if (options.description !== undefined && options.description.length > Limits.descriptionChars) {
    return Either.left(invalid("description", `at most ${Limits.descriptionChars} characters`))
  }
  if (options.region !== undefined && (options.region.length === 0 || options.region.length > InputLimits.regionChars)) {
    return Either.left(invalid("region", `must be 1-${InputLimits.regionChars} characters`))
  }
  if (options.maxPrice !== undefined && options.maxPrice < 0n) return Either.left(invalid("maxPrice", "must not be negative"))
  return Either.right({
    timeoutMs,
    payer: options.payer ?? identity.wallet,
    mandateId: options.mandateId,
    description: options.description,
    region: options.region ?? config.region,
    maxPrice: options.maxPrice
  })
}

/** The escrow a task on `handle` locks `amount` in: it outlives the task's deadline by `Limits.escrowGraceMs`. */
export const termsFor = (
  ctx: Pick<TaskContext, "identity">,
  handle: Handle<Agent.Any>,
  amount: Usdc,
  plan: Plan
): EscrowTerms => ({
  payer: plan.payer,
  payee: handle.wallet,
  amount,
  description: plan.description ?? `${handle.name} task`,
  metadata: plan.region === undefined
    ? { agent: handle.name, orchestrator: ctx.identity.name }
    : { agent: handle.name, orchestrator: ctx.identity.name, fly_region: plan.region },
  timeout: Duration.millis(plan.timeoutMs + Limits.escrowGraceMs),
  mandateId: plan.mandateId
})
