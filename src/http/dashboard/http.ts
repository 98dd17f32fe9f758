/**
 * The dashboard on the settlement service's router: the page at `GET /dashboard`
 * (HTML, script and stylesheet, no data in any of them), the data API under
 * `/api/dashboard` (thin handlers over `Dashboard`), and the live-update stream.
 *
 * Live updates are server-sent events read with `fetch`, because `EventSource`
 * cannot send an `Authorization` header and the key must never go in a URL. Each
 * stream polls its viewer's watermark (cheap, indexed reads) and sends `change`
 * when it moves; streams are bounded in number and in lifetime, and a page that
 * cannot get one polls `/api/dashboard/watermark` instead.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import { Duration, Effect, Layer, Ref, Schedule, Stream } from "effect"
import type { Ledger } from "../../ledger/Ledger.js"
import { refuseBearer } from "../bearer.js"
import { toWire, TooManyRequestsError } from "../errors.js"
import type { ApiKeys } from "../../settlement/ApiKeys.js"
import type { PaymentTokens } from "../../settlement/PaymentTokens.js"
import * as Server from "../server.js"
import { Settlement } from "../../settlement/Settlement.js"
import type { SettlementConfig } from "../../settlement/SettlementConfig.js"
import { DashboardAccess } from "./Access.js"
import { CurrentViewer, DashboardApi, DashboardAuthorization, type Viewer } from "./Api.js"
import type * as Assets from "./assets.js"
import { Dashboard } from "./Dashboard.js"
import { DashboardConfig, type DashboardConfigShape } from "./DashboardConfig.js"
import type { ReportsSql } from "../../ledger/reports/LedgerReports.js"
import * as LedgerReportsSql from "../../ledger/reports/LedgerReportsSql.js"

const wire = Effect.mapError(toWire)

/** Answers carry one viewer's money: no cache (browser or shared) may keep them. */
const noStore = HttpApp.appendPreResponseHandler((_, response) =>
  Effect.succeed(HttpServerResponse.setHeader(response, "cache-control", "no-store"))
)

/** Bearer → who is looking (the operator, or an agent with one request of its rate limit spent). */
export const AuthorizationLive = Layer.effect(
  DashboardAuthorization,
  Effect.map(DashboardAccess, (access) =>
    DashboardAuthorization.of({ bearer: (key) => refuseBearer(Effect.tap(access.authenticate(key), () => noStore)) }))
)

/** The default page of the audit trail. */
export const DEFAULT_PAGE_SIZE = 20

/** A server-sent-events response that reports changes of the viewer's watermark. */
const liveStream = (
  dashboard: Dashboard["Type"],
  config: DashboardConfigShape,
  open: Ref.Ref<number>,
  viewer: Viewer
) =>
  Effect.gen(function*() {
    const admitted = yield* Ref.modify(open, (n) => (n < config.maxLiveStreams ? [true, n + 1] : [false, n]))
    if (!admitted) {
      return yield* Effect.fail(
        new TooManyRequestsError({
          error: "too_many_live_streams",
          message: `${config.maxLiveStreams} live streams are open; poll GET /api/dashboard/watermark instead`,
          details: { retry_after_ms: String(config.pollIntervalMs) }
        })
      )
    }
    const changes = Stream.repeatEffectWithSchedule(
      dashboard.watermark(viewer),
      Schedule.spaced(Duration.millis(config.liveIntervalMs))
    ).pipe(
      Stream.changes,
      Stream.map((watermark) => `event: change\ndata: ${JSON.stringify({ watermark })}\n\n`)
    )
    // Comment lines keep idle proxies from closing the stream.
    const heartbeat = Stream.tick(Duration.millis(config.heartbeatMs)).pipe(Stream.drop(1), Stream.as(": keep-alive\n\n"))
    const body = Stream.make(`retry: ${config.pollIntervalMs}\n\n`).pipe(
      Stream.concat(Stream.merge(changes, heartbeat, { haltStrategy: "either" })),
      Stream.interruptAfter(Duration.millis(config.liveStreamMaxMs)),
      // A storage failure ends the stream; the page reconnects or polls.
      Stream.catchAll(() => Stream.make("event: unavailable\ndata: {}\n\n")),
      Stream.encodeText,
      Stream.ensuring(Ref.update(open, (n) => n - 1))
    )
    return HttpServerResponse.stream(body, {
      contentType: "text/event-stream",
      headers: { "cache-control": "no-store", "x-accel-buffering": "no" }
    })
  })

/** The data API's handlers: decode (the contract), ask `Dashboard`, encode. */
export const HandlersLive = HttpApiBuilder.group(DashboardApi, "dashboard", (handlers) =>
  Effect.gen(function*() {
    const dashboard = yield* Dashboard
    const config = yield* DashboardConfig
    const openStreams = yield* Ref.make(0)
    return handlers
      .handle("session", () => Effect.flatMap(CurrentViewer, (viewer) => wire(dashboard.session(viewer))))
      .handle("overview", () => Effect.flatMap(CurrentViewer, (viewer) => wire(dashboard.overview(viewer))))
      .handle("network", () => Effect.flatMap(CurrentViewer, (viewer) => wire(dashboard.network(viewer))))
      .handle("escrows", ({ urlParams }) =>
        Effect.flatMap(CurrentViewer, (viewer) =>
          wire(dashboard.escrows(viewer, { ...urlParams, limit: urlParams.limit ?? DEFAULT_PAGE_SIZE }))))
      .handle("escrow", ({ path }) => Effect.flatMap(CurrentViewer, (viewer) => wire(dashboard.escrow(viewer, path.id))))
      .handle("watermark", () =>
        Effect.flatMap(CurrentViewer, (viewer) => wire(Effect.map(dashboard.watermark(viewer), (watermark) => ({ watermark })))))
      .handle("live", () => Effect.flatMap(CurrentViewer, (viewer) => liveStream(dashboard, config, openStreams, viewer)))
  })).pipe(Layer.provide(AuthorizationLive))

// ---------------------------------------------------------------------------
// The page
// ---------------------------------------------------------------------------

/**
 * Scripts and styles only from this origin, no inline script, requests only back to
 * this origin: the key sits in `sessionStorage`, so nothing else may run on the page.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join("; ")

const pageHeaders = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY"
}

/**
 * The handler of one of the page's files, served with its digest as ETag. The files (assets.ts) are
 * loaded, and their digests computed, on the first request for the page rather than
 * at start: the service answers /health sooner (bench:coldstart) and a service whose
 * dashboard nobody opens never loads them.
 */
const asset = (
  loaded: Effect.Effect<typeof Assets>,
  pick: (assets: typeof Assets) => string,
  contentType: string
) => {
  const file = Effect.cached(Effect.map(loaded, (assets) => {
    const body = pick(assets)
    return { body, etag: `"${assets.digest(body)}"` }
  }))
  return Effect.map(file, (file) =>
    Effect.zipWith(file, HttpServerRequest.HttpServerRequest, ({ body, etag }, request) =>
      request.headers["if-none-match"] === etag
        ? HttpServerResponse.empty({ status: 304, headers: { etag, "cache-control": "no-cache" } })
        : HttpServerResponse.text(body, {
          contentType,
          headers: { ...pageHeaders, etag, "cache-control": "no-cache" }
        })))
}

/**
 * `GET /dashboard`, its script and stylesheet, and the data API's OpenAPI document;
 * `GET /` (a person opening the port in a browser) redirects to the dashboard.
 */
export const layerPage: Layer.Layer<never> = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    yield* router.get("/", Effect.succeed(HttpServerResponse.redirect("/dashboard", { status: 302 })))
    const assets = yield* Effect.cached(Effect.promise(() => import("./assets.js")))
    // The router ignores a trailing slash: this serves `/dashboard/` too.
    yield* router.get("/dashboard", yield* asset(assets, (a) => a.html, "text/html; charset=utf-8"))
    yield* router.get("/dashboard/app.js", yield* asset(assets, (a) => a.script, "text/javascript; charset=utf-8"))
    yield* router.get("/dashboard/app.css", yield* asset(assets, (a) => a.css, "text/css; charset=utf-8"))
    // Built on the first request, like the settlement API's document (server.ts).
    const spec = yield* Effect.cached(Effect.sync(() => HttpServerResponse.unsafeJson(OpenApi.fromApi(DashboardApi))))
    yield* router.get("/api/dashboard/openapi.json", spec)
  })
)

/**
 * Everything the dashboard adds to the service's router. Needs what the settlement
 * routes need (`Settlement`, `Ledger`), the ledger's `SqlClient` and `DashboardConfig`.
 * Merge it with the other route layers given to `HttpApiBuilder.serve()`.
 */
export const layer: Layer.Layer<never, never, Settlement | Ledger | ReportsSql | DashboardConfig> = Layer.mergeAll(
  HandlersLive,
  layerPage
).pipe(
  Layer.provide(Layer.mergeAll(Dashboard.layer, DashboardAccess.layer)),
  Layer.provide(LedgerReportsSql.layer)
)

/**
 * The settlement REST API and the dashboard on one Node server (`SettlementConfig.port`):
 * `Server.layer` with the dashboard's routes on the same router. For tests, demos and a
 * service that wants nothing else; the long-lived service merges `layer` into its own
 * `HttpApiBuilder.serve()` instead.
 */
export const layerWithSettlement: Layer.Layer<
  HttpServer.HttpServer | Settlement,
  unknown,
  Ledger | ApiKeys | PaymentTokens | SettlementConfig | ReportsSql | DashboardConfig
> = HttpApiBuilder.serve().pipe(
  Layer.provide(Layer.merge(Server.layerRoutes, layer)),
  HttpServer.withLogAddress,
  Layer.provideMerge(Server.layerNodeServer),
  Layer.provideMerge(Settlement.layer)
)
