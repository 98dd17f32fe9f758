/**
 * PostgreSQL for tests and scripts (no vitest imports): one probe of the server per
 * process, a fresh database per test file (dropped afterwards), a fresh schema per
 * ledger (for suites that need an empty ledger per test). `harness.ts` adds
 * `describePg` for vitest.
 *
 * Server: `RINGMASTER_TEST_PG_URL` (an admin URL allowed to CREATE DATABASE), else
 * 127.0.0.1:5432 as `root`, then as `postgres` (trust auth on the build machines).
 */
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Duration, Effect, Layer, Redacted } from "effect"
import { randomBytes } from "node:crypto"
import { Escrow } from "../../src/escrow/Escrow.js"
import type { LedgerConfigShape } from "../../src/ledger/Ledger.js"
import * as LedgerConfig from "../../src/ledger/LedgerConfig.js"
import * as Postgres from "../../src/ledger/Postgres.js"
import * as SqlLedger from "../../src/ledger/SqlLedger.js"

const candidates = process.env.RINGMASTER_TEST_PG_URL
  ? [process.env.RINGMASTER_TEST_PG_URL]
  : ["postgres://root@127.0.0.1:5432/postgres", "postgres://postgres@127.0.0.1:5432/postgres"]

/** Runs statements on a short-lived client (connect timeout 3 s). */
export const withClient = <A>(url: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, unknown>): Promise<A> =>
  Effect.runPromise(
    Effect.flatMap(SqlClient.SqlClient, f).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(url), connectTimeout: Duration.seconds(3), maxConnections: 1 }))
    )
  )

export type Probe =
  | { readonly available: true; readonly adminUrl: string; readonly server: string }
  | { readonly available: false; readonly reason: string }

const probe = async (): Promise<Probe> => {
  const failures: Array<string> = []
  for (const url of candidates) {
    try {
      const rows = await withClient(url, (sql) =>
        sql<{ version: string; can_create: boolean }>`SELECT current_setting('server_version') AS version,
          (SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user) AS can_create`)
      if (rows[0]?.can_create !== true) {
        failures.push(`${redact(url)}: connected, but the role may not CREATE DATABASE`)
        continue
      }
      return { available: true, adminUrl: url, server: `PostgreSQL ${rows[0].version}` }
    } catch (error) {
      failures.push(`${redact(url)}: ${messageOf(error)}`)
    }
  }
  return {
    available: false,
    reason: `no PostgreSQL server reachable (${failures.join("; ")}); start one or set RINGMASTER_TEST_PG_URL`
  }
}

const redact = (url: string) => url.replace(/:[^:@/]*@/, ":***@")
const messageOf = (error: unknown): string => {
  const e = error as { message?: string; cause?: { message?: string; code?: string; errors?: ReadonlyArray<{ code?: string }> } }
  const code = e.cause?.code ?? e.cause?.errors?.[0]?.code
  return [e.message, code, e.cause?.message].filter((part) => part !== undefined && part !== "").join(": ").slice(0, 200) || String(error)
}

/** The probe's verdict for this test file (one probe per file; vitest runs files in separate workers). */
export const pg: Probe = await probe()

const adminUrl = (): string => {
  if (!pg.available) throw new Error("PostgreSQL is not available")
  return pg.adminUrl
}

/** A URL for another database (or with extra startup options) on the probed server. */
export const urlFor = (database: string, searchPath?: string): string => {
  const url = new URL(adminUrl())
  url.pathname = `/${database}`
  return searchPath === undefined ? url.toString() : Postgres.withSessionOptions(url.toString(), { search_path: searchPath })
}

const PREFIX = "rmt_"
const suffix = () => randomBytes(5).toString("hex")

/** Drops test databases left behind by test processes that no longer run (the pid is in the name). */
const dropOrphans = (sql: SqlClient.SqlClient) =>
  Effect.gen(function*() {
    const rows = yield* sql<{ datname: string }>`SELECT datname FROM pg_database WHERE datname LIKE ${PREFIX + "%"}`
    for (const { datname } of rows) {
      const pid = Number(/^rmt_(\d+)_/.exec(datname)?.[1])
      if (!Number.isInteger(pid) || isAlive(pid)) continue
      yield* sql.unsafe(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`).pipe(Effect.ignore)
    }
  })

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as { code?: string }).code === "EPERM"
  }
}

export interface TestDatabase {
  readonly name: string
  readonly url: string
  readonly drop: () => Promise<void>
}

/** A fresh, empty database for one test file: `rmt_<pid>_<label>_<random>`. */
export const createDatabase = async (label: string): Promise<TestDatabase> => {
  const name = `${PREFIX}${process.pid}_${label.replace(/[^a-z0-9]/g, "")}_${suffix()}`
  await withClient(adminUrl(), (sql) =>
    Effect.zipRight(dropOrphans(sql), sql.unsafe(`CREATE DATABASE "${name}"`)))
  return {
    name,
    url: urlFor(name),
    drop: () => withClient(adminUrl(), (sql) => sql.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)).then(() => undefined)
  }
}

/**
 * A fresh schema in `databaseUrl`, created when the layer is built and dropped
 * (with everything in it) when it is released: an empty ledger per test.
 */
export const schemaLayer = (databaseUrl: string) => {
  const schema = `s_${suffix()}`
  const url = new URL(databaseUrl)
  const client = Postgres.client({
    url: Redacted.make(Postgres.withSessionOptions(url.toString(), { search_path: schema })),
    maxConnections: 4
  })
  const lifecycle = Layer.scopedDiscard(
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* Effect.acquireRelease(
        sql.unsafe(`CREATE SCHEMA "${schema}"`),
        () => sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).pipe(Effect.orDie)
      )
    })
  )
  return { schema, client, lifecycle }
}

/** An empty SQL ledger on PostgreSQL in its own schema (dropped on release), with config overrides. */
export const pgLedgerLayer = (databaseUrl: string, config: Partial<LedgerConfigShape> = {}) => {
  const { client, lifecycle } = schemaLayer(databaseUrl)
  return SqlLedger.layer.pipe(
    Layer.provide(lifecycle),
    Layer.provideMerge(client),
    Layer.provide(LedgerConfig.layer(config))
  )
}

/**
 * Empties every ledger table in the client's schema (the migrations stay applied),
 * so the next ledger built on it starts fresh, treasury funding included. DELETE,
 * not TRUNCATE: on tables this small it costs a few ms where TRUNCATE fsyncs new
 * files (~350 ms), and it is far cheaper than creating every table again.
 */
export const emptyAllTables = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const tables = yield* sql<{ table_name: string }>`SELECT table_name FROM information_schema.tables
    WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' AND table_name <> 'effect_sql_migrations'`
  yield* sql.withTransaction(Effect.forEach(tables, (t) => sql.unsafe(`DELETE FROM "${t.table_name}"`), { discard: true }))
})

/**
 * One schema for a whole test file, reset before each ledger: an empty ledger per
 * test. Tests in a file run one after another, so they never share state.
 */
export const resettingLedger = (databaseUrl: string) => {
  const schema = `s_${suffix()}`
  const url = Redacted.make(Postgres.withSessionOptions(databaseUrl, { search_path: schema }))
  let created = false
  return (config: Partial<LedgerConfigShape> = {}) => {
    const client = Postgres.client({ url, maxConnections: 4 })
    const reset = Layer.effectDiscard(
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        if (!created) {
          yield* sql.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`)
          created = true
        }
        yield* emptyAllTables
      })
    )
    return SqlLedger.layer.pipe(Layer.provide(reset), Layer.provideMerge(client), Layer.provide(LedgerConfig.layer(config)))
  }
}

/** `Escrow` on a fresh ledger from `resettingLedger`: the shape the escrow contract suite takes. */
export const resettingEscrow = (databaseUrl: string) => {
  const ledger = resettingLedger(databaseUrl)
  return (config: Partial<LedgerConfigShape> = {}) => Escrow.layerFromLedger.pipe(Layer.provideMerge(ledger(config)))
}

/**
 * Several ledger instances on ONE schema, each with its own connection pool and
 * group-commit writer: to the database they are separate settlement processes.
 * `instance(config)` builds one; the schema is created on first use and dropped by
 * `drop()`.
 */
export const sharedSchema = (databaseUrl: string) => {
  const schema = `s_${suffix()}`
  const url = Redacted.make(Postgres.withSessionOptions(databaseUrl, { search_path: schema }))
  return {
    schema,
    url,
    create: () => withClient(databaseUrl, (sql) => sql.unsafe(`CREATE SCHEMA "${schema}"`)),
    drop: () => withClient(databaseUrl, (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)).then(() => undefined),
    instance: (config: Partial<LedgerConfigShape> = {}) =>
      SqlLedger.layer.pipe(Layer.provideMerge(Postgres.client({ url, maxConnections: 4 })), Layer.provide(LedgerConfig.layer(config)))
  }
}
