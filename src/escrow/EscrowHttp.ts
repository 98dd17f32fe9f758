/**
 * `Escrow` against a remote settlement service (`Escrow.layerHttp`).
 *
 * The client is derived from the same `HttpApi` contract the server implements
 * (`HttpApiClient.makeWith(SettlementApi)`), over `undici` through
 * `@effect/platform-node`: one keep-alive pool per layer, connect timeout 3 s, read
 * timeout 10 s (per attempt). Error bodies come back as the domain's typed errors
 * (`InsufficientFunds`, `EscrowNotPending` with its status, ...); what the port
 * has no type for (401, 403, 429, 5xx, transport failures, timeouts) is
 * `LedgerUnavailable` naming the cause.
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
 * At start the pool is warmed with `GET /health` in the background: a failure is
 * logged, not fatal, so a cold start never waits on the settlement service.
 */
import { HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import * as Undici from "@effect/platform-node/Undici"
import { randomUUID } from "node:crypto"
import { Cause, Config, Duration, Effect, Layer, type Redacted, Schedule, type Scope } from "effect"
import { LedgerUnavailable } from "../domain/errors.js"
import { SettlementApi } from "../http/Api.js"
import { fromWire, isWireError, statusOf } from "../http/errors.js"
import { escrowFromView } from "../http/views.js"
import { Escrow, type EscrowShape } from "./Escrow.js"
import { memoryJournal } from "./EscrowLocal.js"

export interface EscrowHttpOptions {
  /** The settlement service, e.g. `https://settlement.internal:8080`. */
  readonly baseUrl: string
  readonly apiKey: Redacted.Redacted<string>
  /** Default 3 s. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Per attempt, from sending the request to the end of the response body. Default 10 s. */
  readonly readTimeout?: Duration.DurationInput | undefined
  /** Sockets kept to the service at most. Default 64. */
  readonly maxConnections?: number | undefined
  /** Backoff between attempts of a retryable call. Default: 100 ms doubling, jittered, 4 retries. */
  readonly retry?: Schedule.Schedule<unknown, unknown> | undefined
}

export const defaultRetry: Schedule.Schedule<unknown, unknown> = Schedule.exponential("100 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(4))
)

class AttemptTimedOut {
  readonly _tag = "AttemptTimedOut"
  constructor(readonly timeoutMs: number) {}
}

type Failure = unknown

/** Would repeating the request risk doing it twice? `transient` failures did not reach a decision. */
const isTransient = (error: Failure): boolean => {
  if (error instanceof AttemptTimedOut) return true
  if (isWireError(error)) {
    const status = statusOf(error)
    return status === 429 || status === 503
  }
  const tag = (error as { _tag?: string })._tag
  if (tag === "RequestError") return true // transport: connection refused, reset, DNS
  if (tag === "ResponseError") {
    const status = (error as { response?: { status?: number } }).response?.status ?? 0
    return status >= 500 || status === 429 // a proxy's 502/503/504 page
  }
  return false
}

const isRateLimited = (error: Failure) => isWireError(error) && statusOf(error) === 429

const describe = (error: Failure): string => {
  if (error instanceof AttemptTimedOut) return `no response within ${error.timeoutMs} ms`
  if (typeof error === "object" && error !== null && "message" in error) return String((error as { message: unknown }).message)
  return String(error)
}

export const make = (options: EscrowHttpOptions): Effect.Effect<EscrowShape, never, Scope.Scope> =>
  Effect.gen(function*() {
    const connectTimeoutMs = Duration.toMillis(options.connectTimeout ?? "3 seconds")
    const readTimeoutMs = Duration.toMillis(options.readTimeout ?? "10 seconds")
    const retrySchedule = options.retry ?? defaultRetry

    // One pool for every call of this layer; closed with the layer's scope.
    const dispatcher = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new Undici.Agent({
          connect: { timeout: connectTimeoutMs },
          connections: options.maxConnections ?? 64,
          keepAliveTimeout: 30_000
        })
      ),
      (agent) => Effect.promise(() => agent.destroy())
    )
    const httpClient = NodeHttpClient.makeUndici(dispatcher).pipe(
      HttpClient.mapRequest(HttpClientRequest.bearerToken(options.apiKey))
    )
    const client = yield* HttpApiClient.makeWith(SettlementApi, { httpClient, baseUrl: options.baseUrl })
    const journal = yield* memoryJournal

    /**
     * One logical call: each attempt bounded by the read timeout, retried while
     * `retryable` says a repeat is safe, its failure mapped to the domain error
     * (kept only if `allowed` lists its tag: the port's error union for the operation).
     */
    const call = <A, E>(
      operation: string,
      attempt: Effect.Effect<A, unknown>,
      retryable: (error: Failure) => boolean,
      allowed: ReadonlySet<string>
    ): Effect.Effect<A, E> =>
      attempt.pipe(
        Effect.timeoutFail({ duration: readTimeoutMs, onTimeout: () => new AttemptTimedOut(readTimeoutMs) }),
        Effect.retry({ schedule: retrySchedule, while: retryable }),
        Effect.mapError((error): E => {
          if (isWireError(error)) {
            const domain = fromWire(error)
            if (allowed.has(domain._tag)) return domain as E
            return new LedgerUnavailable({
              message: `settlement service ${operation}: ${statusOf(error)} ${error.error}: ${error.message}`
            }) as E
          }
          return new LedgerUnavailable({ message: `settlement service ${operation} failed: ${describe(error)}`, cause: error }) as E
        }),
        Effect.withSpan(`EscrowHttp.${operation}`)
      )

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
    const releaseErrors = new Set(["EscrowNotFound", "EscrowNotPending", "ReleaseExceedsRemaining", "InvalidInput", "LedgerUnavailable"])
    const cancelErrors = new Set(["EscrowNotFound", "EscrowNotPending", "LedgerUnavailable"])
    const getErrors = new Set(["EscrowNotFound", "LedgerUnavailable"])

    const escrow: EscrowShape = {
      create: (terms) =>
        Effect.suspend(() => {
          // One key per logical create, shared by its retries: a repeat returns the same escrow.
          const idempotencyKey = terms.idempotencyKey ?? `rm_${randomUUID()}`
          const timeout = terms.timeout === undefined ? undefined : Math.ceil(Duration.toMillis(Duration.decode(terms.timeout)))
          return call(
            "create",
            client.escrow.create({
              payload: {
                payer_wallet: terms.payer,
                payee_wallet: terms.payee,
                amount_usdc: terms.amount,
                description: terms.description,
                metadata: terms.metadata,
                timeout_ms: timeout,
                mandate_id: terms.mandateId
              },
              headers: { "idempotency-key": idempotencyKey }
            }).pipe(Effect.map(escrowFromView)),
            isTransient,
            createErrors
          )
        }),
      release: (id, releaseOptions) => {
        const amount = releaseOptions?.amount
        return call(
          "release",
          client.escrow.release({ payload: { escrow_id: id, amount_usdc: amount } }).pipe(Effect.map(escrowFromView)),
          amount === undefined ? isTransient : isRateLimited,
          releaseErrors
        )
      },
      cancel: (id) =>
        call(
          "cancel",
          client.escrow.cancel({ payload: { escrow_id: id } }).pipe(Effect.map(escrowFromView)),
          isTransient,
          cancelErrors
        ),
      get: (id) => call("get", client.escrow.get({ path: { id } }).pipe(Effect.map(escrowFromView)), isTransient, getErrors),
      recordUnsettled: journal.record,
      unsettled: journal.list,
      markSettled: journal.markSettled
    }

    yield* client.health().pipe(
      Effect.timeout(connectTimeoutMs + readTimeoutMs),
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
