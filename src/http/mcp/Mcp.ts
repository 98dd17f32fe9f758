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
 */
import { Effect, Layer } from "effect"
import type { Ledger } from "../../ledger/Ledger.js"
import type { Settlement } from "../Settlement.js"
import { SettlementConfig } from "../SettlementConfig.js"
import { toolkitLayer } from "./register.js"
import { layerHandlers, SettlementToolkit } from "./SettlementTools.js"
import * as Transport from "./transport.js"

/** The seven tools on whatever MCP server and credential source are provided. */
export const layerTools = toolkitLayer(SettlementToolkit).pipe(Layer.provide(layerHandlers))

/** `POST /mcp` next to the REST routes, with the service's body limit. */
export const layerHttp: Layer.Layer<never, never, Settlement | Ledger | SettlementConfig> = Layer.unwrapEffect(
  Effect.map(SettlementConfig, (config) =>
    layerTools.pipe(Layer.provide(Transport.layerHttp({ path: "/mcp", maxBodyBytes: config.maxBodyBytes }))))
)

/**
 * The tools on this process's stdin/stdout; the caller is the owner of `PF_API_KEY`.
 * `StdioSession.finished` says when the client has gone and been answered.
 */
export const layerStdio: Layer.Layer<Transport.StdioSession, never, Settlement | Ledger> = layerTools.pipe(
  Layer.provideMerge(Transport.layerStdio())
) as Layer.Layer<Transport.StdioSession, never, Settlement | Ledger>
