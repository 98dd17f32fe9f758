/** What an orchestrator is built from: its ports, and the settings its sub-agents inherit. */
import type { Schedule } from "effect"
import type { EscrowShape } from "../../escrow/Escrow.js"
import type { AccountsShape } from "../Accounts.js"
import type { Budget } from "../Budget.js"

export interface Deps {
  readonly accounts: AccountsShape
  readonly escrow: EscrowShape
}

export interface Config {
  readonly budget: Budget
  readonly region: string | undefined
  readonly settlementRetry: Schedule.Schedule<unknown, unknown> | undefined
  readonly restart: Schedule.Schedule<unknown, unknown>
}
