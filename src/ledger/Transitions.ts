/**
 * Who hears of the escrow transitions a ledger commits: created, partly released,
 * released, cancelled, expired. Optional: a ledger built without it tells nobody.
 *
 * The ledger is the one place where a transition is known to have happened exactly
 * once. Its callers cannot tell from the record they get back: a repeated release
 * of a released escrow, a repeated cancel and an idempotent replay of a create all
 * return the record as a first call does. The engine writes an event only for a
 * real transition, so the events of a committed write are the transitions, each
 * once, whichever path (REST, MCP, a paid route, the orchestrator, the sweeper,
 * recovery) asked for it.
 */
import { Context, type Effect } from "effect"
import type { EscrowEvent } from "../domain/Escrow.js"

export interface EscrowTransitionsShape {
  /**
   * The escrow events of one committed write, in the order they were applied; called
   * after the commit and before the callers get their results. Runs on the ledger's
   * writer: keep it cheap and infallible.
   */
  readonly committed: (events: ReadonlyArray<EscrowEvent>) => Effect.Effect<void>
}

export class EscrowTransitions extends Context.Tag("ringmaster/EscrowTransitions")<EscrowTransitions, EscrowTransitionsShape>() {}
