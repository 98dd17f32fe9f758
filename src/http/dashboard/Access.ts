/**
 * Who a dashboard key belongs to. The operator key is checked first, in constant
 * time; any other key is an agent's, checked by the settlement service's own
 * `authenticate` (hashed lookup, rotation grace, the agent's rate limit), so the
 * dashboard accepts exactly the keys the REST API accepts.
 */
import { createHash, timingSafeEqual } from "node:crypto"
import { Context, Effect, Layer, Option, Redacted } from "effect"
import type { LedgerUnavailable } from "../../domain/errors.js"
import type { RateLimited, Unauthenticated } from "../../settlement/errors.js"
import { Settlement } from "../../settlement/Settlement.js"
import type { Viewer } from "./Api.js"
import { DashboardConfig } from "./DashboardConfig.js"

export interface DashboardAccessShape {
  readonly authenticate: (key: Redacted.Redacted<string>) => Effect.Effect<Viewer, Unauthenticated | RateLimited | LedgerUnavailable>
}

export class DashboardAccess extends Context.Tag("ringmaster/DashboardAccess")<DashboardAccess, DashboardAccessShape>() {
  static readonly layer: Layer.Layer<DashboardAccess, never, Settlement | DashboardConfig> = Layer.effect(
    DashboardAccess,
    Effect.gen(function*() {
      const settlement = yield* Settlement
      const config = yield* DashboardConfig
      // Only the digest is kept; comparing digests of equal length makes the
      // comparison's time independent of how much of the key a guess shares.
      const operatorDigest = Option.map(config.operatorApiKey, (key) => digest(Redacted.value(key)))
      const isOperator = (key: Redacted.Redacted<string>) =>
        Option.match(operatorDigest, {
          onNone: () => false,
          onSome: (expected) => timingSafeEqual(expected, digest(Redacted.value(key)))
        })
      return {
        authenticate: (key) =>
          isOperator(key)
            ? Effect.succeed<Viewer>({ _tag: "Operator" })
            : Effect.map(settlement.authenticate(key), (caller): Viewer => ({ _tag: "Agent", caller }))
      }
    })
  )
}

const digest = (text: string) => createHash("sha256").update(text, "utf8").digest()
