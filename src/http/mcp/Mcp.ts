/**
 * The settlement service's MCP server, ready to compose:
 *
 * - `layerHttp`: StreamableHTTP at `POST /mcp` on `HttpApiBuilder.Router`, i.e. on the
 *   REST API's own server and port. It must be built before `HttpApiBuilder.serve()`
 *   reads the router, so provide it to `serve()` alongside the API routes:
 *
 *       HttpApiBuilder.serve().pipe(Layer.provide(Layer.merge(Server.layerRoutes, Mcp.layerHttp)), ...)
 *
 * - `layerStdio`: the same tools on stdin/stdout, keyed by `PF_API_KEY`.
 *
 * Both need `Settlement` (the operations with their authorization rules) and `Ledger`
 * (for the fee schedule the escrow view reports); `layerHttp` also `SettlementConfig`
 * (the body limit).
 *
 * The server itself (McpServers.ts, with @effect/ai and @effect/rpc) is loaded with a
 * dynamic `import()`: loading it was about a tenth of the service's cold start, and
 * `/health` does not need it. `layerHttp` routes `/mcp` at once and builds the server on
 * the first `POST /mcp`, which waits for it.
 */
import type * as McpServer from "@effect/ai/McpServer"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Effect, Fiber, Layer } from "effect"
import type { Ledger } from "../../ledger/Ledger.js"
import type { Settlement } from "../../settlement/Settlement.js"
import { SettlementConfig } from "../../settlement/SettlementConfig.js"
import type { McpCredential } from "./McpCredential.js"
import type { StdioSession } from "./transport.js"

const servers = Effect.promise(() => import("./McpServers.js"))

/** The seven tools on whatever MCP server and credential source are provided. */
export const layerTools: Layer.Layer<never, never, McpServer.McpServer | McpCredential | Settlement | Ledger> = Layer
  .unwrapEffect(Effect.map(servers, (module) => module.layerTools))

const path = "/mcp"

/** `POST /mcp` next to the REST routes, with the service's body limit. */
export const layerHttp: Layer.Layer<never, never, Settlement | Ledger | SettlementConfig> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* SettlementConfig
    const scope = yield* Effect.scope
    const context = yield* Effect.context<Settlement | Ledger>()
    // Forked into this layer's scope, once: a first request that goes away does not stop the build.
    const building = yield* Effect.cached(
      Effect.forkIn(
        Effect.flatMap(servers, (module) => module.httpApp({ maxBodyBytes: config.maxBodyBytes, trustProxy: config.trustProxy })).pipe(Effect.provide(context)),
        scope
      )
    )
    const router = yield* HttpApiBuilder.Router
    // `Fiber.await`, not `Fiber.join`: joining would also hand the build fiber's FiberRefs
    // (its context, with the layer's scope) to the request.
    const app = Effect.flatMap(building, (fiber) => Effect.flatten(Fiber.await(fiber)))
    yield* router.post(path, Effect.flatten(app))
    // No server-initiated SSE stream and no sessions: StreamableHTTP says 405 for both.
    const notAllowed = HttpServerResponse.unsafeJson(
      { error: "method_not_allowed", message: `${path} takes POST only (no SSE stream, no sessions)` },
      { status: 405, headers: { allow: "POST" } }
    )
    yield* router.get(path, Effect.succeed(notAllowed))
    yield* router.del(path, Effect.succeed(notAllowed))
  })
).pipe(Layer.provide(HttpApiBuilder.Router.Live))

/**
 * The tools on this process's stdin/stdout; the caller is the owner of `PF_API_KEY`.
 * `StdioSession.finished` says when the client has gone and been answered.
 */
export const layerStdio: Layer.Layer<StdioSession, never, Settlement | Ledger> = Layer.unwrapEffect(
  Effect.map(servers, (module) => module.layerStdio)
) as Layer.Layer<StdioSession, never, Settlement | Ledger>
