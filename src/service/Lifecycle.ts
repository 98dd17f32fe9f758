/**
 * Graceful shutdown. Every request is counted; paid work runs in a fiber set the
 * service owns, so it can be interrupted (which cancels its escrow: `Escrow.scoped`
 * refunds on interruption). `drain`:
 *
 * 1. stops accepting: every new request is answered 503 `shutting_down` with
 *    `Connection: close` (Fly's health check fails too, so the proxy routes away);
 * 2. waits for the requests in flight to finish, at most `SHUTDOWN_TIMEOUT`;
 * 3. interrupts the paid work still running: each escrow is cancelled and its
 *    request answered 503;
 * 4. closes idle keep-alive connections, so the listener can close at once.
 *
 * Afterwards every escrow this process opened is released or cancelled, and the
 * layers below (ledger, journal) close with nothing in flight.
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Http from "node:http"
import { Cause, Clock, Context, Deferred, Duration, Effect, Fiber, FiberSet, Layer, Ref } from "effect"
import { ShuttingDown } from "./errors.js"

export interface LifecycleShape {
  /** Runs paid work so that a shutdown can interrupt (and refund) it. Fails with `ShuttingDown` once draining. */
  readonly run: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ShuttingDown, R>
  /** Requests being handled now (all routes). */
  readonly inFlight: Effect.Effect<number>
  readonly isDraining: () => boolean
  /** Idempotent: the second call waits for the first. */
  readonly drain: Effect.Effect<void>
  /** The middleware that counts requests and refuses them while draining. */
  readonly middleware: <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) => Effect.Effect<
    HttpServerResponse.HttpServerResponse,
    E,
    R | HttpServerRequest.HttpServerRequest
  >
  /** The node server, registered by the HTTP layer so `drain` can close its idle connections. */
  readonly attachServer: (server: Http.Server) => Effect.Effect<void>
}

export class Lifecycle extends Context.Tag("ringmaster/service/Lifecycle")<Lifecycle, LifecycleShape>() {}

const shuttingDownResponse = () =>
  HttpServerResponse.unsafeJson(
    { error: "shutting_down", message: new ShuttingDown().message },
    { status: 503, headers: { connection: "close", "retry-after": "1" } }
  )

export const make = (options: { readonly shutdownTimeoutMs: number }) =>
  Effect.gen(function*() {
    const work = yield* FiberSet.make<unknown, unknown>()
    let draining = false
    let requests = 0
    const servers = yield* Ref.make<ReadonlyArray<Http.Server>>([])
    const drained = yield* Deferred.make<void>()
    const started = yield* Ref.make(false)

    const run = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | ShuttingDown, R> => {
      const tracked = Effect.suspend((): Effect.Effect<A, E | ShuttingDown, R> =>
        draining
          ? Effect.fail(new ShuttingDown())
          : Effect.flatMap(FiberSet.run(work, effect), (fiber) =>
            // The client going away interrupts the work too: nobody pays for a result nobody receives.
            Fiber.join(fiber).pipe(Effect.onInterrupt(() => Fiber.interrupt(fiber))))
      )
      return Effect.catchAllCause(tracked, (cause): Effect.Effect<never, E | ShuttingDown> =>
        // Interrupted by the drain (not by our own caller): answer as a shutdown.
        draining && Cause.isInterruptedOnly(cause) ? Effect.fail(new ShuttingDown()) : Effect.failCause(cause))
    }

    const drainOnce = Effect.gen(function*() {
      draining = true
      const start = yield* Clock.currentTimeMillis
      yield* Effect.logInfo("shutting down: draining requests in flight", { inFlight: requests, timeoutMs: options.shutdownTimeoutMs })
      // 2. Let what is running finish, within the bound. Polling a counter: requests
      // are not fibers we own (the platform forks them), so there is nothing to await.
      while (requests > 0 && (yield* Clock.currentTimeMillis) - start < options.shutdownTimeoutMs) {
        yield* Effect.sleep(Duration.millis(20))
      }
      // 3. Interrupt what is left of the paid work: each escrow is cancelled by its scope.
      const left = yield* FiberSet.size(work)
      if (left > 0) yield* Effect.logWarning("shutdown timeout reached: interrupting paid work (escrows cancelled)", { tasks: left })
      yield* FiberSet.clear(work)
      // Their requests now answer 503; give them a moment to be written.
      const answeredBy = (yield* Clock.currentTimeMillis) + 2_000
      while (requests > 0 && (yield* Clock.currentTimeMillis) < answeredBy) yield* Effect.sleep(Duration.millis(10))
      // 4. Idle keep-alive connections would hold the listener open until they time out.
      for (const server of yield* Ref.get(servers)) {
        server.closeIdleConnections()
        // A connection that sends a request after this would keep `close()` waiting: cut everything shortly.
        setTimeout(() => server.closeAllConnections(), 1_000).unref()
      }
      yield* Effect.logInfo("drained", { elapsedMs: (yield* Clock.currentTimeMillis) - start, requestsLeft: requests })
    })

    const drain = Effect.flatMap(Ref.getAndSet(started, true), (already) =>
      already ? Deferred.await(drained) : Effect.ensuring(drainOnce, Deferred.succeed(drained, undefined)))

    const service: LifecycleShape = {
      run,
      inFlight: Effect.sync(() => requests),
      isDraining: () => draining,
      drain: Effect.uninterruptible(drain),
      middleware: (app) =>
        Effect.suspend(() => {
          if (draining) return Effect.succeed(shuttingDownResponse())
          requests++
          return Effect.ensuring(app, Effect.sync(() => requests--))
        }),
      attachServer: (server) => Ref.update(servers, (all) => [...all, server])
    }
    return service
  })

export const layer = (options: { readonly shutdownTimeoutMs: number }) => Layer.scoped(Lifecycle, make(options))
