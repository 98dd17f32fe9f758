/**
 * The ledger on PostgreSQL, for deployments that outgrow one machine: several
 * settlement instances (Fly regions, a managed Postgres) share one database and the
 * database alone keeps them safe (row locks, unique keys, guarded transitions; see
 * `dialect.ts`). Same migrations and the same `SqlLedger` as the embedded SQLite.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { Config, Duration, Layer, Redacted } from "effect"
import * as SqlLedger from "./SqlLedger.js"

export interface PgOptions {
  /** `postgres://user:password@host:5432/db?sslmode=require` (Fly: the `DATABASE_URL` secret set by `fly postgres attach`). */
  readonly url: Redacted.Redacted
  /** Pool size per process (default 10). The ledger's writer uses one connection; reads share the rest. */
  readonly maxConnections?: number | undefined
  /** How long a batch waits for a row lock before it is retried (default 10 s); bounds a stuck peer. */
  readonly lockTimeoutMs?: number | undefined
  /** A connection idle inside a transaction this long is closed by the server, releasing its locks (default 60 s). */
  readonly idleInTransactionTimeoutMs?: number | undefined
  readonly applicationName?: string | undefined
  /** `false`: send no startup `options` (for poolers that refuse them). */
  readonly sessionOptions?: boolean | undefined
}

export const defaults = {
  maxConnections: 10,
  lockTimeoutMs: 10_000,
  idleInTransactionTimeoutMs: 60_000,
  connectTimeoutMs: 10_000
} as const

/**
 * Adds the session settings that bound lock waits to the URL's startup `options`
 * (kept beside any the operator put there; a setting already given wins). Poolers
 * such as PgBouncer refuse unknown startup parameters: connect directly, or set
 * `DATABASE_SESSION_OPTIONS=off` and configure the role instead
 * (`ALTER ROLE ... SET lock_timeout = '10s'`).
 */
export const withSessionOptions = (url: string, settings: Readonly<Record<string, string | number>>) => {
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return url // a keyword/value connection string: leave it as given
  }
  const existing = parsed.searchParams.get("options") ?? ""
  const added = Object.entries(settings)
    .filter(([name]) => !existing.includes(`${name}=`))
    .map(([name, value]) => `-c ${name}=${value}`)
  if (added.length === 0) return url
  parsed.searchParams.set("options", [existing, ...added].filter((part) => part.length > 0).join(" "))
  return parsed.toString()
}

const clientConfig = (options: PgOptions) => ({
  url: Redacted.make(
    options.sessionOptions === false ? Redacted.value(options.url) : withSessionOptions(Redacted.value(options.url), {
      lock_timeout: options.lockTimeoutMs ?? defaults.lockTimeoutMs,
      idle_in_transaction_session_timeout: options.idleInTransactionTimeoutMs ?? defaults.idleInTransactionTimeoutMs
    })
  ),
  maxConnections: options.maxConnections ?? defaults.maxConnections,
  connectTimeout: Duration.millis(defaults.connectTimeoutMs),
  applicationName: options.applicationName ?? "ringmaster"
})

/** A `PgClient` (also provided as `SqlClient`) with the ledger's session bounds. */
export const client = (options: PgOptions) => PgClient.layer(clientConfig(options))

/** `DATABASE_URL` (redacted: never logged), `DATABASE_POOL_MAX`, `DATABASE_LOCK_TIMEOUT_MS`, `DATABASE_SESSION_OPTIONS`. */
export const optionsFromEnv: Config.Config<PgOptions> = Config.all({
  url: Config.redacted("DATABASE_URL"),
  maxConnections: Config.integer("DATABASE_POOL_MAX").pipe(
    Config.validate({ message: "DATABASE_POOL_MAX must be 2..100", validation: (n) => n >= 2 && n <= 100 }),
    Config.withDefault(defaults.maxConnections)
  ),
  lockTimeoutMs: Config.integer("DATABASE_LOCK_TIMEOUT_MS").pipe(
    Config.validate({ message: "DATABASE_LOCK_TIMEOUT_MS must be 100..600000", validation: (n) => n >= 100 && n <= 600_000 }),
    Config.withDefault(defaults.lockTimeoutMs)
  ),
  sessionOptions: Config.boolean("DATABASE_SESSION_OPTIONS").pipe(Config.withDefault(true))
})

/** The ledger on PostgreSQL (migrated first; concurrent starts are safe). Needs `LedgerConfig`. */
export const layer = (options: PgOptions) => Layer.provideMerge(SqlLedger.layer, client(options))
