/**
 * The processes `ringmaster` runs, as layers: composition only, no logic.
 *
 * - `settlementHttp`: the REST API and `POST /mcp` on one server and port.
 * - `sqliteStores`: the embedded SQLite ledger and API keys in `dataDir` (one file).
 * - `settlementFromEnv` / `mcpStdioFromEnv`: what `ringmaster settlement` and
 *   `ringmaster mcp` launch, configured from the environment.
 */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServer from "@effect/platform/HttpServer"
import { Config, Effect, Layer } from "effect"
import { ApiKeys } from "../settlement/ApiKeys.js"
import { PaymentTokens } from "../settlement/PaymentTokens.js"
import * as DashboardSettings from "../http/dashboard/DashboardConfig.js"
import * as DashboardHttp from "../http/dashboard/http.js"
import * as Mcp from "../http/mcp/Mcp.js"
import * as Server from "../http/server.js"
import { Settlement } from "../settlement/Settlement.js"
import * as SettlementSettings from "../settlement/SettlementConfig.js"
import * as Backend from "../ledger/Backend.js"
import * as ExpirySweeper from "../ledger/ExpirySweeper.js"
import * as LedgerSettings from "../ledger/LedgerConfig.js"
import * as SqlLedger from "../ledger/SqlLedger.js"

/**
 * The settlement service over HTTP on whatever `Ledger`, `ApiKeys` and
 * `SettlementConfig` are provided: `Server.layer` with the MCP route added on the
 * same router (it must be built before `serve()` snapshots the router, hence
 * provided to it together with the API routes).
 */
export const settlementHttp = HttpApiBuilder.serve().pipe(
  Layer.provide(Layer.mergeAll(Server.layerRoutes, Mcp.layerHttp, DashboardHttp.layer)),
  Layer.provide(DashboardSettings.layerConfig),
  HttpServer.withLogAddress,
  Layer.provideMerge(Server.layerNodeServer),
  Layer.provideMerge(Settlement.layer)
)

/** Ledger, API keys and payment tokens in `<dataDir>/ledger.db`. Needs `LedgerConfig`. */
export const sqliteStores = (dataDir: string) =>
  Layer.merge(ApiKeys.layerSql(), PaymentTokens.layerSql()).pipe(Layer.provideMerge(SqlLedger.layerSqlite({ dataDir })))

/** Ledger, API keys and payment tokens on the backend the environment names: PostgreSQL with `DATABASE_URL`, else SQLite in `DATA_DIR`. */
export const storesFromEnv = Layer.merge(ApiKeys.layerSql(), PaymentTokens.layerSql()).pipe(Layer.provideMerge(Backend.layerFromEnv))

/** `DATA_DIR`, default `./data`. */
export const dataDir = Config.string("DATA_DIR").pipe(Config.withDefault("./data"))

/**
 * `ringmaster settlement`: port from `PORT` (8080), data in `DATA_DIR`, the rest of the
 * settings from the environment; escrows past their deadline are refunded in the background.
 */
export const settlementFromEnv = Layer.merge(settlementHttp, ExpirySweeper.layer()).pipe(
  Layer.provide(storesFromEnv)
).pipe(Layer.provide(Layer.merge(LedgerSettings.layerConfig, SettlementSettings.layerConfig)))

/**
 * `ringmaster mcp`: the tools on stdio over the SQLite ledger in `DATA_DIR`, as the
 * owner of `PF_API_KEY`. It sweeps expired escrows too (safe next to a running
 * `ringmaster settlement` on the same file: expiry is a guarded transition), so a
 * ledger used only through stdio still refunds what nobody settled.
 */
export const mcpStdioFromEnv = Layer.unwrapEffect(
  Effect.map(dataDir, (dir) =>
    Layer.merge(Mcp.layerStdio.pipe(Layer.provide(Settlement.layer)), ExpirySweeper.layer()).pipe(
      Layer.provide(sqliteStores(dir))
    ))
).pipe(Layer.provide(Layer.merge(LedgerSettings.layerConfig, SettlementSettings.layerConfig)))
