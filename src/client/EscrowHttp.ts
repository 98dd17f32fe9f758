/**
 * `Escrow` against a remote settlement service (`EscrowHttp.layer`, from `ringmaster/http`).
 *
 * The client is derived from the same `HttpApi` contract the server implements,
 * over one keep-alive undici pool per layer, connect timeout 3 s, read timeout 10 s
 * per attempt (src/client/SettlementClient.ts, shared with `AccountsHttp`). Error
 * bodies come back as the domain's typed errors (`InsufficientFunds`,
 * `EscrowNotPending` with its status, ...); a 401 or 403 is `Forbidden`, never
 * retried; what the port has no type for (429, 5xx, transport failures, timeouts)
 * is `LedgerUnavailable` naming the cause.
 *
 * Retries (jittered exponential backoff) only where a repeat cannot pay twice:
 * - create carries an idempotency key (the caller's, or one generated per logical
 *   create and reused by its retries), so a repeat returns the same escrow;
 * - a full release and a cancel are idempotent by state (repeating one on a
 *   settled escrow returns it);
 * - get is a read;
 * - a partial release is not idempotent: it is retried only on 429, which the
 *   server answers before doing anything.
 *
 * Acting as a party: the service lets an escrow's payer create and release it, and
 * lets its payee cancel it at once, where the payer may cancel only after the
 * deadline (unless the service allows more). An orchestrator holds the keys of the
 * sub-agents it registered (`AccountsHttp.layerWithEscrow` shares them here), so for
 * an escrow whose payer or payee is one of them this layer calls as that party:
 * a sub-agent's own hires are created and released with its key, an escrow under
 * a payer's mandate (the caller's budget, spent by an orchestrator) is opened and
 * released by its payee, the sub-agent, as the service allows, and a failed,
 * timed-out or interrupted task is cancelled with its payee's, refunding the payer
 * now rather than at the deadline. Without a key for either party, the layer's own
 * key is used.
 *
 * At start the pool is warmed with `GET /health` in the background: a failure is
 * logged, not fatal, so a cold start never waits on the settlement service.
 */
import { randomUUID } from "node:crypto"
import { Cause, Config, Duration, Effect, Layer, type Redacted, type Scope } from "effect"
import type { EscrowRecord } from "../domain/Escrow.js"
import type { EscrowId, WalletAddress } from "../domain/ids.js"
import * as SettlementClient from "./SettlementClient.js"
import { escrowFromView } from "../http/views.js"
import { type CancelError, type CreateError, Escrow, type EscrowShape, type ReleaseError } from "../escrow/Escrow.js"
import { memoryJournal } from "../ledger/SettlementJournal.js"
import { BoundedMap } from "../domain/BoundedMap.js"

export interface EscrowHttpOptions extends SettlementClient.SettlementClientOptions {
  readonly apiKey: Redacted.Redacted<string>
}

export const defaultRetry = SettlementClient.defaultRetry
const { describe, isRateLimited, isTransient } = SettlementClient

/** The client of an agent whose key this process holds (a sub-agent it registered), if it holds one. */
export type PartyClients = (wallet: WalletAddress) => SettlementClient.Client | undefined

/** Escrows remembered with their parties at most: the oldest is forgotten first (it is then settled with the layer's own key). */
const MAX_REMEMBERED_ESCROWS = 16_384

export const make = (options: EscrowHttpOptions): Effect.Effect<EscrowShape, never, Scope.Scope> =>
  Effect.flatMap(SettlementClient.make("EscrowHttp", options), (settlement) => makeWith(options, settlement, () => undefined))

/** On a pool the caller made, acting for the parties `partyClients` holds keys of (see the module's doc). */
export const makeWith = (
  options: EscrowHttpOptions,
  settlement: SettlementClient.SettlementClient,
  partyClients: PartyClients
): Effect.Effect<EscrowShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const own = yield* settlement.clientFor(options.apiKey)
    const call = settlement.call
    const journal = yield* memoryJournal

    /**
     * The parties of the escrows this layer opened for which it holds a party's key;
     * others are settled with the layer's own key and need no entry. Forgotten once
     * the escrow is settled.
     */
    const parties = new BoundedMap<EscrowId, Pick<EscrowRecord, "payer" | "payee" | "mandateId">>(MAX_REMEMBERED_ESCROWS)
    const remember = (escrow: EscrowRecord) => {
      if (partyClients(escrow.payer) === undefined && partyClients(escrow.payee) === undefined) return
      parties.set(escrow.id, { payer: escrow.payer, payee: escrow.payee, mandateId: escrow.mandateId })
    }
    const forget = (id: EscrowId) => Effect.sync(() => parties.delete(id))
    /** Releases are the payer's, or the payee's under a mandate (as is the create). */
    const asReleaser = (id: EscrowId) => {
      const known = parties.get(id)
      if (known === undefined) return own
      return partyClients(known.payer) ?? (known.mandateId !== null ? partyClients(known.payee) : undefined) ?? own
    }
    /** The payee may cancel at once, the payer only after the deadline: the payee's key first. */
    const asCanceller = (id: EscrowId) => {
      const known = parties.get(id)
      return (known && (partyClients(known.payee) ?? partyClients(known.payer))) ?? own
    }

    const createErrors = new Set([
      "InvalidInput",
      "InvalidAmount",
      "InsufficientFunds",
      "AgentNotFound",
      "IdempotencyConflict",
      "MandateNotFound",
      "MandateExceeded",
      "LedgerUnavailable"
    ])
    const releaseErrors = new Set(["EscrowNotFound", "EscrowNotPending", "EscrowExpired", "ReleaseExceedsRemaining", "InvalidInput", "LedgerUnavailable"])
    const cancelErrors = new Set(["EscrowNotFound", "EscrowNotPending", "LedgerUnavailable"])
    const getErrors = new Set(["EscrowNotFound", "LedgerUnavailable"])

    const escrow: EscrowShape = {
      create: (terms) =>
        Effect.suspend(() => {
          // One key per logical create, shared by its retries: a repeat returns the same escrow.
          const idempotencyKey = terms.idempotencyKey ?? `rm_${randomUUID()}`
          const timeout = terms.timeout === undefined ? undefined : Math.ceil(Duration.toMillis(Duration.decode(terms.timeout)))
          return call<EscrowRecord, CreateError>(
            "create",
            // The payer opens its escrows; under the payer's mandate or with its payment token, the payee does.
            (terms.paymentToken !== undefined
              ? partyClients(terms.payee) ?? own
              : partyClients(terms.payer) ?? (terms.mandateId !== undefined ? partyClients(terms.payee) : undefined) ?? own).escrow.create({
              payload: {
                payer_wallet: terms.payer,
                payee_wallet: terms.payee,
                amount_usdc: terms.amount,
                description: terms.description,
                metadata: terms.metadata,
                timeout_ms: timeout,
                mandate_id: terms.mandateId,
                payment_token: terms.paymentToken
              },
              headers: { "idempotency-key": idempotencyKey }
            }).pipe(Effect.map(escrowFromView)),
            isTransient,
            createErrors
          ).pipe(Effect.tap((created) => Effect.sync(() => remember(created))))
        }),
      release: (id, releaseOptions) => {
        const amount = releaseOptions?.amount
        return call<EscrowRecord, ReleaseError>(
          "release",
          asReleaser(id).escrow.release({ payload: { escrow_id: id, amount_usdc: amount } }).pipe(Effect.map(escrowFromView)),
          amount === undefined ? isTransient : isRateLimited,
          releaseErrors
        ).pipe(
          Effect.tap((released) => (released.status === "pending" ? Effect.void : forget(id))),
          // Refused past the deadline: the service expired the escrow as it refused.
          Effect.tapError((error) => (error._tag === "EscrowExpired" ? forget(id) : Effect.void))
        )
      },
      cancel: (id) =>
        call<EscrowRecord, CancelError>(
          "cancel",
          asCanceller(id).escrow.cancel({ payload: { escrow_id: id } }).pipe(Effect.map(escrowFromView)),
          isTransient,
          cancelErrors
        ).pipe(
          Effect.tap(() => forget(id)),
          Effect.tapError((error) => (error._tag === "EscrowNotPending" ? forget(id) : Effect.void))
        ),
      get: (id) => call("get", asReleaser(id).escrow.get({ path: { id } }).pipe(Effect.map(escrowFromView)), isTransient, getErrors),
      recordUnsettled: journal.record,
      unsettled: journal.list,
      markSettled: journal.markSettled
    }

    yield* own.health().pipe(
      Effect.timeout(settlement.attemptBoundMs),
      Effect.tap((health) => Effect.logDebug("settlement service reachable", { region: health.region })),
      Effect.catchAllCause((cause) =>
        Effect.logWarning("settlement service not reachable at start; calls will connect on demand", {
          baseUrl: options.baseUrl,
          error: describe(Cause.squash(cause))
        })
      ),
      Effect.forkScoped
    )

    return escrow
  })

/** `Escrow` on the settlement service at `baseUrl`, authenticated with `apiKey`. */
export const layer = (options: EscrowHttpOptions): Layer.Layer<Escrow> => Layer.scoped(Escrow, make(options))

/**
 * From the environment: `ESCROW_BASE` (the service's URL) and `PF_API_KEY` (its
 * key, redacted); optionally `ESCROW_CONNECT_TIMEOUT` and `ESCROW_READ_TIMEOUT`
 * ("3 seconds", "10 seconds").
 */
export const config: Config.Config<EscrowHttpOptions> = Config.all({
  baseUrl: Config.url("ESCROW_BASE").pipe(Config.map((url) => url.toString().replace(/\/$/, ""))),
  apiKey: Config.redacted("PF_API_KEY"),
  connectTimeout: Config.duration("ESCROW_CONNECT_TIMEOUT").pipe(Config.withDefault(Duration.seconds(3))),
  readTimeout: Config.duration("ESCROW_READ_TIMEOUT").pipe(Config.withDefault(Duration.seconds(10)))
})

export const layerConfig = Layer.scoped(Escrow, Effect.flatMap(config, make))
