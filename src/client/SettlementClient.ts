/**
 * Calling a remote settlement service: what `EscrowHttp` (the `Escrow` port) and
 * `AccountsHttp` (the `Accounts` port) share.
 *
 * The client is derived from the same `HttpApi` contract the server implements
 * (`HttpApiClient.makeWith(SettlementApi)`), over `undici` through
 * `@effect/platform-node`: one keep-alive pool per layer, connect timeout 3 s, read
 * timeout 10 s (per attempt). A call's error body comes back as the domain's typed
 * error when the port's operation declares it; a 401 or 403 is `Forbidden` (never
 * retried); anything else (429, 5xx, transport failures, timeouts) is
 * `LedgerUnavailable` naming the cause.
 */
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as NodeHttpClient from "@effect/platform-node/NodeHttpClient"
import * as Undici from "@effect/platform-node/Undici"
import { Duration, Effect, type Redacted, Schedule, type Scope } from "effect"
import { LedgerUnavailable } from "../domain/errors.js"
import { SettlementApi } from "../http/Api.js"
import { fromWire, isWireError, statusOf } from "../http/errors.js"

export interface SettlementClientOptions {
  /** The settlement service, e.g. `https://settlement.internal:8080`. */
  readonly baseUrl: string
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

/** Would repeating the request risk doing it twice? `transient` failures did not reach a decision. */
export const isTransient = (error: unknown): boolean => {
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

/** Only a 429, which the server answers before doing anything: for calls that must not be repeated otherwise. */
export const isRateLimited = (error: unknown) => isWireError(error) && statusOf(error) === 429

export const describe = (error: unknown): string => {
  if (error instanceof AttemptTimedOut) return `no response within ${error.timeoutMs} ms`
  if (typeof error === "object" && error !== null && "message" in error) return String((error as { message: unknown }).message)
  return String(error)
}

const clientWith = (httpClient: HttpClient.HttpClient, baseUrl: string) =>
  HttpApiClient.makeWith(SettlementApi, { httpClient, baseUrl })

/** The contract's typed client: `client.escrow.create(...)`, `client.agents.register(...)`, ... */
export type Client = Effect.Effect.Success<ReturnType<typeof clientWith>>

export interface SettlementClient {
  /** The contract's client, authenticated with this key, on the shared pool. */
  readonly clientFor: (apiKey: Redacted.Redacted<string>) => Effect.Effect<Client>
  /** The contract's client without a key, on the shared pool: for the routes anyone may call (registering an agent). */
  readonly anonymous: Effect.Effect<Client>
  /**
   * One logical call: each attempt bounded by the read timeout, retried while
   * `retryable` says a repeat is safe, its failure mapped to the domain error (kept
   * only if `allowed` lists its tag: the port's error union for the operation).
   */
  readonly call: <A, E>(
    operation: string,
    attempt: Effect.Effect<A, unknown>,
    retryable: (error: unknown) => boolean,
    allowed: ReadonlySet<string>
  ) => Effect.Effect<A, E>
  /** Connect timeout plus read timeout: a bound for one attempt from scratch. */
  readonly attemptBoundMs: number
}

/** `port` names the spans: `<port>.<operation>`. */
export const make = (port: string, options: SettlementClientOptions): Effect.Effect<SettlementClient, never, Scope.Scope> =>
  Effect.gen(function*() {
    const connectTimeoutMs = Duration.toMillis(options.connectTimeout ?? "3 seconds")
    const readTimeoutMs = Duration.toMillis(options.readTimeout ?? "10 seconds")
    const retrySchedule = options.retry ?? defaultRetry

    // One pool for every call of the layer; closed with the layer's scope.
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
    const pooled = NodeHttpClient.makeUndici(dispatcher)

    return {
      clientFor: (apiKey) => clientWith(pooled.pipe(HttpClient.mapRequest(HttpClientRequest.bearerToken(apiKey))), options.baseUrl),
      anonymous: clientWith(pooled, options.baseUrl),
      call: <A, E>(
        operation: string,
        attempt: Effect.Effect<A, unknown>,
        retryable: (error: unknown) => boolean,
        allowed: ReadonlySet<string>
      ): Effect.Effect<A, E> =>
        attempt.pipe(
          Effect.timeoutFail({ duration: readTimeoutMs, onTimeout: () => new AttemptTimedOut(readTimeoutMs) }),
          Effect.retry({ schedule: retrySchedule, while: retryable }),
          Effect.mapError((error): E => {
            if (isWireError(error)) {
              const domain = fromWire(error, operation)
              // Any call may be refused for who makes it: `Forbidden` is in every operation's union.
              if (allowed.has(domain._tag) || domain._tag === "Forbidden") return domain as E
              return new LedgerUnavailable({
                message: `settlement service ${operation}: ${statusOf(error)} ${error.error}: ${error.message}`
              }) as E
            }
            return new LedgerUnavailable({ message: `settlement service ${operation} failed: ${describe(error)}`, cause: error }) as E
          }),
          Effect.withSpan(`${port}.${operation}`)
        ),
      attemptBoundMs: connectTimeoutMs + readTimeoutMs
    }
  })
