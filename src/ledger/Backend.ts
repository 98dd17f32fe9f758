/**
 * Which database the ledger runs on, from the environment: `DATABASE_URL` set →
 * PostgreSQL (shared by every settlement instance); otherwise the embedded SQLite
 * file in `DATA_DIR` (default `./data`). Nothing else in the service changes.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import { Config, type ConfigError, Effect, Layer, Option, Redacted } from "effect"
import type { SettlementJournal } from "./SettlementJournal.js"
import type { Ledger, LedgerConfig } from "./Ledger.js"
import type * as Postgres from "./Postgres.js"
import * as SqlLedger from "./SqlLedger.js"

/** PostgreSQL's client (and its driver) load only when `DATABASE_URL` asks for them: they are a cost on every embedded start. */
const loadPostgres = Effect.promise(() => import("./Postgres.js"))

export type Backend =
  | { readonly _tag: "Postgres"; readonly options: Postgres.PgOptions }
  | { readonly _tag: "Sqlite"; readonly dataDir: string }

/** `DATA_DIR`, default `./data`. */
export const dataDir = Config.string("DATA_DIR").pipe(Config.withDefault("./data"))

/** An empty `DATABASE_URL` counts as unset, so `DATABASE_URL=` in a shell falls back to SQLite. */
const databaseUrl: Config.Config<Option.Option<Redacted.Redacted>> = Config.option(Config.redacted("DATABASE_URL")).pipe(
  Config.map(Option.filter((url) => Redacted.value(url).trim().length > 0))
)

export const fromEnv: Effect.Effect<Backend, ConfigError.ConfigError> = Effect.gen(function*() {
  const url = yield* databaseUrl
  if (Option.isNone(url)) return { _tag: "Sqlite", dataDir: yield* dataDir } as const
  const { optionsFromEnv } = yield* loadPostgres
  return { _tag: "Postgres", options: { ...(yield* optionsFromEnv), url: url.value } } as const
})

/** Where the ledger lives, for logs and CLI output (the URL's password is never shown). */
export const describe = (backend: Backend): string =>
  backend._tag === "Sqlite" ? `SQLite ${SqlLedger.sqliteFilename({ dataDir: backend.dataDir })}` : "PostgreSQL (DATABASE_URL)"

export type LedgerLayer = Layer.Layer<Ledger | SettlementJournal | SqlClient.SqlClient, unknown, LedgerConfig>

/** The ledger on the chosen backend. Needs `LedgerConfig`. */
export const layer = (backend: Backend): LedgerLayer =>
  backend._tag === "Postgres"
    ? Layer.unwrapEffect(Effect.map(loadPostgres, (pg) => pg.layer(backend.options)))
    : SqlLedger.layerSqlite({ dataDir: backend.dataDir })

/** The ledger on the backend the environment names. */
export const layerFromEnv: LedgerLayer = Layer.unwrapEffect(Effect.map(fromEnv, layer))
