/**
 * One settlement process (REST API over HTTP) on the ledger the environment names
 * (`DATABASE_URL` → PostgreSQL, else SQLite in `DATA_DIR`), listening on an
 * ephemeral loopback port; prints `LISTENING <base url>` once ready and stops
 * cleanly on SIGTERM. Several of these share one database in the multi-process
 * test and the PostgreSQL benchmark.
 *
 * The composition is what `ringmaster settlement` should use for scale-out:
 * `ApiKeys.layerSql()` over `Backend.layerFromEnv` instead of SQLite only.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Console, Effect, Layer } from "effect"
import { ApiKeys } from "../../src/settlement/ApiKeys.js"
import { PaymentTokens } from "../../src/settlement/PaymentTokens.js"
import { createApiKeysTable } from "../../src/settlement/migrations.js"
import * as Server from "../../src/http/server.js"
import * as SettlementSettings from "../../src/settlement/SettlementConfig.js"
import * as Backend from "../../src/ledger/Backend.js"
import { withMigrationLock } from "../../src/ledger/dialect.js"
import * as LedgerSettings from "../../src/ledger/LedgerConfig.js"

// The API keys table, created under the ledger's migration lock so processes starting together do not race on it.
const apiKeysTable = Layer.effectDiscard(withMigrationLock(createApiKeysTable))

const stores = Layer.merge(ApiKeys.layerSql(), PaymentTokens.layerSql()).pipe(Layer.provide(apiKeysTable), Layer.provideMerge(Backend.layerFromEnv))

const main = Effect.gen(function*() {
  yield* Console.log(`LISTENING ${yield* Server.baseUrl}`)
  return yield* Effect.never
}).pipe(
  Effect.provide(
    Server.layer.pipe(
      Layer.provideMerge(stores),
      Layer.provideMerge(LedgerSettings.layerConfig),
      // Load tests register many agents from one address, claim the faucet for many of
      // them, and fire many requests per agent.
      Layer.provideMerge(
        SettlementSettings.layer({
          port: 0,
          host: "127.0.0.1",
          registrationsPerMinute: 100_000,
          agentRequestsPerSecond: 100_000,
          faucetClaimsPerAddressPerDay: 100_000
        })
      )
    )
  )
)

NodeRuntime.runMain(main)
