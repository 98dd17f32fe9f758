/** The loop that retries the settlements an orchestrator's tasks could not make. */
import { type Duration, Effect, type Scope } from "effect"
import type { EscrowShape } from "../../escrow/Escrow.js"
import { reconcileUnsettled } from "../../escrow/settlement.js"

/**
 * Forks, in the current scope, a reconciliation of `escrow.unsettled` every `every`
 * (30 seconds by default), for as long as the scope lives.
 */
export const reconcileForever = (
  escrow: EscrowShape,
  every: Duration.DurationInput | undefined
): Effect.Effect<void, never, Scope.Scope> =>
  reconcileUnsettled(escrow).pipe(
    // A pass that dies (its journal unreadable, say) must not end the reconciler.
    Effect.catchAllCause((cause) => Effect.logError("reconciling unsettled escrows failed; retrying on the next pass", cause)),
    Effect.delay(every ?? "30 seconds"),
    Effect.forever,
    Effect.forkScoped,
    Effect.asVoid
  )
