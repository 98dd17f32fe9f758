/**
 * One path from a bearer key to who is calling, for both HTTP APIs the settlement
 * serves: the REST API's `Authorization` middleware and the dashboard's both run
 * `Settlement.authenticate` (the dashboard after its operator key, see
 * dashboard/Access.ts) and answer its refusals with the same 401, 429 and 503, so a
 * key is accepted, limited and refused alike on either.
 */
import { Effect, type Redacted } from "effect"
import type { LedgerUnavailable } from "../domain/errors.js"
import type { SettlementShape } from "../settlement/Settlement.js"
import type { RateLimited, Unauthenticated } from "../settlement/errors.js"
import { type ServiceUnavailableError, toWire, type TooManyRequestsError, type UnauthorizedError } from "./errors.js"

/** The failures a bearer middleware declares. */
export type BearerRefusal = UnauthorizedError | TooManyRequestsError | ServiceUnavailableError

/** A key check's refusals on the wire: `toWire` maps these three to 401, 429 and 503, the middleware's declared failures. */
export const refuseBearer = <A, R>(
  check: Effect.Effect<A, Unauthenticated | RateLimited | LedgerUnavailable, R>
): Effect.Effect<A, BearerRefusal, R> => Effect.mapError(check, (error) => toWire(error) as BearerRefusal)

/** Bearer → the agent behind the key, one request of its rate limit spent. */
export const authenticateBearer = (settlement: Pick<SettlementShape, "authenticate">, key: Redacted.Redacted<string>) =>
  refuseBearer(settlement.authenticate(key))
