/**
 * The long-lived orchestrator service as one layer you compose: `Service.layer()`
 * runs what `npm start` runs; `Service.layer({ pipeline })` runs your own agents
 * behind the same billing, settlement, recovery, metrics and shutdown.
 *
 * What it serves on `PORT`:
 * - always: `/info`, `/inference`, `/tasks/{agent}` (routes.ts), and `/openapi.json`
 *   and `/docs` for the contract served (src/http/ServiceApi.ts);
 * - with the embedded ledger (`ESCROW_BASE` unset): the settlement REST API
 *   (`/api/*`, `/health`) and MCP (`POST /mcp`) on the same port, on the same
 *   SQLite file (`DATA_DIR/ledger.db`);
 * - with `ESCROW_BASE` set: settlement goes to that service with `PF_API_KEY`,
 *   and this process serves its own `/health`.
 * Either way `DATA_DIR/service.db` keeps the journal and audit trail of every
 * escrow this process opens, and Prometheus text is on `METRICS_PORT`: every
 * escrow the embedded ledger transitions, whichever path asked (Counters.ts), and
 * every refusal by its code.
 *
 * Order of start: metrics port, stores, identity, recovery of what a previous
 * process left open, then the port opens, then the metrics exporter loads
 * (Telemetry.ts). Order of stop (the scope closing, e.g. on SIGTERM under
 * `main.ts`): drain (Lifecycle.ts), close the listener, close the stores.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { randomBytes } from "node:crypto"
import { createServer } from "node:http"
import { Context, Duration, Effect, Layer, Logger, LogLevel } from "effect"
import { Escrow, type EscrowShape } from "../escrow/Escrow.js"
import { ApiKeys } from "../settlement/ApiKeys.js"
import { PaymentTokens } from "../settlement/PaymentTokens.js"
import * as Backend from "../ledger/Backend.js"
import * as DashboardSettings from "../http/dashboard/DashboardConfig.js"
import * as DashboardHttp from "../http/dashboard/http.js"
import * as Mcp from "../http/mcp/Mcp.js"
import * as Handlers from "../http/handlers.js"
import * as Server from "../http/server.js"
import { ServiceApi, ServiceApiRemote } from "../http/ServiceApi.js"
import { Settlement } from "../settlement/Settlement.js"
import * as SettlementSettings from "../settlement/SettlementConfig.js"
import { SettlementConfig } from "../settlement/SettlementConfig.js"
import * as Refusals from "../http/Refusals.js"
import { Ledger } from "../ledger/Ledger.js"
import * as LedgerConfig from "../ledger/LedgerConfig.js"
import * as Counters from "./Counters.js"
import * as Home from "./home.js"
import * as Identity from "./Identity.js"
import * as Journal from "./Journal.js"
import * as Lifecycle from "./Lifecycle.js"
import * as PaidRequests from "./PaidRequests.js"
import * as Pipeline from "./Pipeline.js"
import * as Recovery from "./Recovery.js"
import * as Routes from "./routes.js"
import * as ServiceSettings from "./ServiceConfig.js"
import { ServiceConfig, type ServiceConfigShape } from "./ServiceConfig.js"
import * as ServiceEscrow from "./ServiceEscrow.js"
import * as Telemetry from "./Telemetry.js"

/** What the service provides to code composed with it (e.g. a pipeline, tests, an admin route). */
export type Provided =
  | ServiceConfig
  | Escrow
  | Identity.Identity
  | Journal.Journal
  | Lifecycle.Lifecycle
  | PaidRequests.PaidRequests
  | Pipeline.Pipeline
  | HttpServer.HttpServer

/** What a pipeline layer may use: the decorated `Escrow` (journaled, counted), the identity, and the ledger when embedded. */
export type PipelineRequirements = Escrow | Identity.Identity | ServiceConfig | Ledger

export interface ServiceOptions {
  /** Your agents (see Pipeline.ts); the deterministic demo pipeline by default. */
  readonly pipeline?: Layer.Layer<Pipeline.Pipeline, unknown, PipelineRequirements> | undefined
  /**
   * How this process was started, for the start log line: the bundle's launcher says
   * "code cache (accepted|absent|stale|rejected)" (scripts/). An operator who set V8
   * flags in `NODE_OPTIONS` or changed node sees there why a start took the slower path.
   */
  readonly startedFrom?: string | undefined
}

/** Log format, level and the annotations every line carries (region, Fly app, machine). */
export const layerLogging = (config: ServiceConfigShape): Layer.Layer<never> =>
  Layer.mergeAll(
    config.logFormat === "json" ? Logger.json : Logger.pretty,
    Logger.minimumLogLevel(LogLevel.fromLiteral(config.logLevel as LogLevel.Literal))
  )

const annotations = (config: ServiceConfigShape) => ({
  region: config.region,
  ...(config.flyAppName === undefined ? {} : { fly_app: config.flyAppName }),
  ...(config.flyMachineId === undefined ? {} : { fly_machine: config.flyMachineId })
})

/** The settlement side: the ledger stores (embedded) or the HTTP client (remote), as the undecorated `Escrow`. */
const layerBackend = (config: ServiceConfigShape) => {
  if (config.settlement._tag === "Remote") {
    const remote = config.settlement
    // Imported here, not at the top: with settlement embedded the settlement client is never loaded.
    return Layer.scoped(
      Escrow,
      Effect.flatMap(Effect.promise(() => import("../client/EscrowHttp.js")), (EscrowHttp) =>
        EscrowHttp.make({ baseUrl: remote.baseUrl, apiKey: remote.apiKey }))
    )
  }
  // Ledger, API keys and payment tokens share one database, as `ringmaster settlement`
  // does: PostgreSQL when DATABASE_URL is set, else DATA_DIR/ledger.db. The paid routes
  // redeem payment tokens there too (PaidRequests).
  const ledger = Layer.unwrapEffect(
    Effect.map(Backend.fromEnv, (backend) =>
      Backend.layer(backend._tag === "Sqlite" ? { _tag: "Sqlite", dataDir: config.dataDir } : backend))
  ).pipe(Layer.provide(Counters.layerTransitions)) // every escrow transition counted, whoever asked for it
  return Escrow.layerFromLedger.pipe(
    Layer.provideMerge(Layer.merge(ApiKeys.layerSql(), PaymentTokens.layerSql()).pipe(Layer.provideMerge(ledger))),
    Layer.provide(LedgerConfig.layer(config.ledger))
  )
}

/** The settlement API's own settings (`RATE_LIMIT_PER_AGENT`, `TRUST_PROXY`, ...) from the environment, on this service's port. */
const layerSettlementConfig = (config: ServiceConfigShape) =>
  Layer.effect(
    SettlementConfig,
    Effect.map(SettlementSettings.fromEnv, (settings) =>
      SettlementSettings.make({ ...settings, port: config.port, host: config.host, maxBodyBytes: config.maxBodyBytes }))
  )

/** Listens on PORT with a node server this module owns, so the drain can close its idle connections. */
const layerNodeServer = (config: ServiceConfigShape) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const lifecycle = yield* Lifecycle.Lifecycle
      // keepAliveTimeout above Fly's proxy idle timeout (60 s), so the proxy closes first.
      const server = createServer({ keepAliveTimeout: 65_000 })
      yield* lifecycle.attachServer(server)
      return NodeHttpServer.layer(() => server, { port: config.port, host: config.host })
    })
  )

const layerHttp = (config: ServiceConfigShape) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const lifecycle = yield* Lifecycle.Lifecycle
      // Outermost, so every error response is counted by its code, the drain's 503 too.
      const countRefusals = Refusals.observe(yield* Refusals.Refusals)
      const middleware = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
        countRefusals(lifecycle.middleware(app))
      if (config.settlement._tag === "Embedded") {
        const api = HttpApiBuilder.api(ServiceApi).pipe(Layer.provide(Layer.merge(Handlers.HandlersLive, Routes.layerEmbedded)))
        return HttpApiBuilder.serve(middleware).pipe(
          // The dashboard reads the local ledger, so it is served only when settlement is embedded.
          Layer.provide(Layer.mergeAll(Server.layerRoutesOf(api, config), Mcp.layerHttp, DashboardHttp.layer)),
          Layer.provide(DashboardSettings.layerConfig),
          Layer.provide(Settlement.layer),
          Layer.provide(layerSettlementConfig(config))
        )
      }
      const api = HttpApiBuilder.api(ServiceApiRemote).pipe(Layer.provide(Routes.layerRemote))
      return HttpApiBuilder.serve(middleware).pipe(
        Layer.provide(Layer.merge(Server.layerRoutesOf(api, config), Home.layer(config.metricsPort, config.metricsPath)))
      )
    })
  ).pipe(HttpServer.withLogAddress, Layer.provideMerge(layerNodeServer(config)))

/**
 * The parts built so far, to the next layer. Typed loosely on purpose: which
 * services exist depends on the settlement mode (the ledger and API keys only when
 * embedded), which the types of one composition cannot follow.
 */
const provideAll = (context: Context.Context<any>): Layer.Layer<any> => Layer.succeedContext(context)

/**
 * The service on the provided `ServiceConfig`. Builds in order and tears down in
 * reverse, with the drain first (see the module comment).
 */
export const layer = (options: ServiceOptions = {}): Layer.Layer<Provided, unknown, ServiceConfig> =>
  Layer.unwrapEffect(
    Effect.map(ServiceConfig, (config) => {
      const bootId = `boot_${Date.now().toString(36)}_${randomBytes(6).toString("hex")}`
      const journal = Journal.layerSqlite({ dataDir: config.dataDir, bootId })
      const configLayer = Layer.succeed(ServiceConfig, config)

      const composed = Layer.scopedContext(
        Effect.gen(function*() {
          // 1. Stores and settlement backend; the backend `Escrow` is kept undecorated for recovery.
          const base = yield* Layer.build(Layer.mergeAll(layerBackend(config), journal, configLayer, Counters.layerRefusals(config.region)))
          const backend: EscrowShape = Context.get(base, Escrow)
          // The escrow series of this region from 0, and the gauge from what is pending, before anything transitions.
          yield* Counters.exportZero(config.region)
          const embeddedLedger = Context.getOption(base, Ledger)
          if (embeddedLedger._tag === "Some") yield* Counters.countPendingAtStart(embeddedLedger.value)
          const identityLayer = config.settlement._tag === "Embedded" ? Identity.layerEmbedded : Identity.layerRemote
          const withIdentity = yield* Layer.build(identityLayer.pipe(Layer.provide(provideAll(base))))
          // 2. The decorated Escrow everything above uses: journaled, and counted here only when the ledger is remote.
          const decorated = ServiceEscrow.decorate(backend, Context.get(base, Journal.Journal), {
            region: config.region,
            defaultTimeoutMs: Duration.toMillis(config.ledger.defaultEscrowTimeout),
            countEscrows: config.settlement._tag === "Remote"
          })
          const core = Context.merge(base, withIdentity).pipe(Context.add(Escrow, decorated))
          const pipeline = yield* Layer.build(
            (options.pipeline ?? Pipeline.layerDefault).pipe(Layer.provide(provideAll(core)))
          )
          const lifecycle = yield* Layer.build(Lifecycle.layer({ shutdownTimeoutMs: config.shutdownTimeoutMs }))
          const withPipeline = Context.merge(Context.merge(core, pipeline), lifecycle)
          // 3. Whatever a previous process left open is settled before the port opens.
          yield* Layer.build(Recovery.layer(backend).pipe(Layer.provide(provideAll(withPipeline))))
          const paid = yield* Layer.build(PaidRequests.layer.pipe(Layer.provide(provideAll(withPipeline))))
          const all = Context.merge(withPipeline, paid)
          // 4. The port opens.
          const http = yield* Layer.build(layerHttp(config).pipe(Layer.provide(provideAll(all))))
          // 5. Registered last, so it runs first when the scope closes: drain before anything stops.
          yield* Effect.addFinalizer(() => Context.get(lifecycle, Lifecycle.Lifecycle).drain)
          // 6. The port answers: now load what only the metrics endpoint needs (see Telemetry.ts).
          yield* Effect.flatMap(Telemetry.Exporter, (exporter) => exporter.startInBackground)
          yield* Effect.logInfo("ringmaster service started", {
            port: config.port,
            settlement: config.settlement._tag === "Embedded" ? "embedded" : config.settlement.baseUrl,
            wallet: Context.get(withIdentity, Identity.Identity).wallet,
            metricsPort: config.metricsPort,
            bootId,
            startedFrom: options.startedFrom ?? "source"
          })
          return Context.merge(all, http) as Context.Context<Provided>
        })
      )
      return composed.pipe(
        Layer.provide(Telemetry.layer(config)),
        Layer.annotateLogs(annotations(config)),
        Layer.provide(layerLogging(config))
      )
    })
  )

/** From the environment (and the current `ConfigProvider`): what `main.ts` launches. */
export const layerFromEnv = (options: ServiceOptions = {}) => layer(options).pipe(Layer.provide(ServiceSettings.layerConfig))
