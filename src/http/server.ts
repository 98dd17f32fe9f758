/**
 * Serving the settlement API.
 *
 * - `layerRoutes`: the contract's routes, `/openapi.json`, `/docs` and the edge
 *   middleware, on `HttpApiBuilder`'s router, without binding a port. Compose it
 *   with more routes on the same router (e.g. `McpServer.layerHttp({ path: "/mcp",
 *   routerTag: HttpApiBuilder.Router })`) and serve with `HttpApiBuilder.serve()`.
 * - `Settlement.layer`: the operations over the provided `Ledger` and `ApiKeys`
 *   (the routes and the MCP tools both need it).
 * - `layer`: all of it listening on `SettlementConfig.port` with `NodeHttpServer`.
 * - `layerMemory`: a self-contained server on the in-memory ledger and key store.
 * - `layerSqlite`: the embedded production setup, ledger and keys in SQLite.
 */
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
// The module, not the package index: the index also loads the HTTP client and undici, which a cold start pays for.
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { createServer } from "node:http"
import { Effect, Layer } from "effect"
import type { Ledger, LedgerConfigShape } from "../ledger/Ledger.js"
import * as LedgerConfig from "../ledger/LedgerConfig.js"
import * as MemoryLedger from "../ledger/MemoryLedger.js"
import * as SqlLedger from "../ledger/SqlLedger.js"
import { isUntraced } from "../observability/spans.js"
import { SettlementApi } from "./Api.js"
import { ApiKeys } from "../settlement/ApiKeys.js"
import { PaymentTokens } from "../settlement/PaymentTokens.js"
import { edge } from "./edge.js"
import { HandlersLive } from "./handlers.js"
import { Settlement } from "../settlement/Settlement.js"
import * as SettlementSettings from "../settlement/SettlementConfig.js"
import { SettlementConfig, type SettlementConfigShape } from "../settlement/SettlementConfig.js"

/** Body limit and the one error shape, around every route of the router. */
export const layerEdge = HttpApiBuilder.middleware(Effect.map(SettlementConfig, (config) => edge(config.maxBodyBytes)))

/** The API implementation (`HttpApi.Api`): the contract with its handlers. */
export const layerApi = HttpApiBuilder.api(SettlementApi).pipe(Layer.provide(HandlersLive))

/**
 * `GET /openapi.json`: the document `HttpApiBuilder.middlewareOpenApi` serves, built on
 * the first request rather than at start (a service that nobody asks for it never builds it).
 */
export const layerOpenApi = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const { api } = yield* HttpApi.Api
    const response = yield* Effect.cached(Effect.orDie(Effect.suspend(() => HttpServerResponse.json(OpenApi.fromApi(api)))))
    yield* router.get("/openapi.json", response)
  })
)

/**
 * `GET /docs`: `HttpApiSwagger.layer`'s page, whose module (Swagger UI's 1.9 MB of
 * script and style) is loaded and whose page is built on the first request (apiDocs.ts).
 */
export const layerDocs = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const api = yield* HttpApi.Api
    const docs = yield* Effect.cached(
      Effect.flatMap(Effect.promise(() => import("./apiDocs.js")), (module) => module.swaggerRouter(api, "/docs"))
    )
    yield* router.get("/docs", Effect.flatten(docs))
  })
)

/** Routes, docs and middleware; binds no port. Provides `HttpApi.Api` for `HttpApiBuilder.serve()`. */
export const layerRoutes = Layer.mergeAll(layerOpenApi, layerDocs, layerEdge).pipe(Layer.provideMerge(layerApi))

/**
 * The same around another contract: `api` provides it with its handlers
 * (`HttpApiBuilder.api(...)`), e.g. the orchestrator service's `ServiceApi`, which
 * extends `SettlementApi` with its own routes.
 */
export const layerRoutesOf = <E, R>(api: Layer.Layer<HttpApi.Api, E, R>, options: { readonly maxBodyBytes: number }) =>
  Layer.mergeAll(layerOpenApi, layerDocs, HttpApiBuilder.middleware(edge(options.maxBodyBytes))).pipe(Layer.provideMerge(api))

/**
 * The platform opens a server span for every request (it parses the URL, copies and
 * redacts the headers into attributes, and wraps the app in the span). With no
 * tracer installed, Effect's default tracer keeps those spans nowhere, so then, and
 * only then, the span is not opened: a measurable share of a request's CPU
 * (bench/http.ts). With an OpenTelemetry tracer in place (`@effect/opentelemetry`'s
 * layers), every request is traced. The setting is a `FiberRef` the platform
 * reads per request, so it has to be in place when the server layer is built: it is
 * part of `layerNodeServer`, which every composition of this server provides.
 */
export const layerRequestSpans: Layer.Layer<never> = Layer.unwrapEffect(
  Effect.map(isUntraced, (untraced) =>
    untraced
      ? Layer.locallyScoped(HttpMiddleware.currentTracerDisabledWhen, () => true)
      : Layer.empty)
)

/** Listens on `SettlementConfig.port` / `host`. */
export const layerNodeServer = Layer.unwrapEffect(
  Effect.map(SettlementConfig, (config) =>
    NodeHttpServer.layer(() => createServer({ keepAliveTimeout: 65_000 }), { port: config.port, host: config.host }))
).pipe(Layer.provideMerge(layerRequestSpans))

/**
 * The settlement service over HTTP, on whatever `Ledger`, `ApiKeys` and
 * `SettlementConfig` are provided.
 */
export const layer: Layer.Layer<HttpServer.HttpServer | Settlement, unknown, Ledger | ApiKeys | PaymentTokens | SettlementConfig> = HttpApiBuilder
  .serve()
  .pipe(
    Layer.provide(layerRoutes),
    HttpServer.withLogAddress,
    Layer.provideMerge(layerNodeServer),
    Layer.provideMerge(Settlement.layer)
  )

/** Self-contained: in-memory ledger and API keys. For tests, demos and examples. */
export const layerMemory = (
  options: { readonly settlement?: Partial<SettlementConfigShape>; readonly ledger?: Partial<LedgerConfigShape> } = {}
): Layer.Layer<HttpServer.HttpServer | Settlement | Ledger | ApiKeys | PaymentTokens | SettlementConfig, unknown> =>
  layer.pipe(
    Layer.provideMerge(ApiKeys.layerMemory),
    Layer.provideMerge(PaymentTokens.layerMemory()),
    Layer.provideMerge(MemoryLedger.layer),
    Layer.provideMerge(LedgerConfig.layer(options.ledger)),
    Layer.provideMerge(SettlementSettings.layer(options.settlement))
  )

/**
 * The embedded production setup: the SQLite ledger in `dataDir` (`ledger.db`) and
 * the API keys in the same database, config from the given overrides.
 */
export const layerSqlite = (
  options: {
    readonly dataDir?: string | undefined
    readonly synchronous?: "FULL" | "NORMAL" | undefined
    readonly settlement?: Partial<SettlementConfigShape>
    readonly ledger?: Partial<LedgerConfigShape>
  } = {}
): Layer.Layer<HttpServer.HttpServer | Settlement | Ledger | ApiKeys | PaymentTokens | SettlementConfig, unknown> =>
  layer.pipe(
    Layer.provideMerge(Layer.merge(ApiKeys.layerSql(), PaymentTokens.layerSql())),
    Layer.provideMerge(SqlLedger.layerSqlite({ dataDir: options.dataDir, synchronous: options.synchronous })),
    Layer.provideMerge(LedgerConfig.layer(options.ledger)),
    Layer.provideMerge(SettlementSettings.layer(options.settlement))
  )

/** The listening address, e.g. for tests on port 0. */
export const baseUrl: Effect.Effect<string, never, HttpServer.HttpServer> = Effect.map(HttpServer.HttpServer, (server) => {
  const address = server.address
  if (address._tag !== "TcpAddress") throw new Error("the settlement server is not on TCP")
  const host = address.hostname === "0.0.0.0" ? "127.0.0.1" : address.hostname
  return `http://${host}:${address.port}`
})
