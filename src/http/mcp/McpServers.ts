/**
 * The MCP servers themselves: the settlement tools over StreamableHTTP or stdio.
 * Reached only through Mcp.ts, which imports this module (and @effect/ai and
 * @effect/rpc under it) when an MCP server is first needed.
 */
import { Effect, Layer } from "effect"
import { toolkitLayer } from "./register.js"
import { layerHandlers, SettlementToolkit } from "./SettlementTools.js"
import * as Transport from "./transport.js"

/** The seven tools on whatever MCP server and credential source are provided. */
export const layerTools = toolkitLayer(SettlementToolkit).pipe(Layer.provide(layerHandlers))

/** The tools over StreamableHTTP, alive as long as the current scope: the app that `POST /mcp` runs. */
export const httpApp = (options: Transport.HttpOptions) =>
  Effect.gen(function*() {
    const { app, server } = yield* Transport.makeHttp(options)
    yield* Layer.buildWithScope(layerTools.pipe(Layer.provide(server)), yield* Effect.scope)
    return app
  })

/** The tools on this process's stdin/stdout. */
export const layerStdio = layerTools.pipe(Layer.provideMerge(Transport.layerStdio()))
