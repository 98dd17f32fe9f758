/**
 * A read-only `SqlClient` whose statements run on a worker thread, on a connection
 * of its own to the same SQLite file.
 *
 * Why: better-sqlite3 is synchronous, so every statement on the ledger's connection
 * runs on the event loop. The operator's dashboard views scan whole tables. At
 * ~100,000 escrows (600,000 postings) one refresh of the operator overview took
 * ~400 ms: the series 250 ms, the referral network 100 ms, the region totals 38 ms,
 * the status counts 20 ms. While that ran, the service answered no request. In WAL
 * mode a second connection reads the last committed state while the ledger writes,
 * so these reads move to a worker thread and the event loop keeps serving.
 *
 * The thread starts on the first statement (a service whose dashboard nobody opens
 * never pays for it) and stops with the layer's scope. One connection, statements in
 * arrival order, prepared statements cached (bounded). Rows come back by structured
 * clone, so 64-bit integers stay `bigint` under `SqlClient.SafeIntegers`, as on the
 * ledger's connection. The connection is `query_only`: a write is refused.
 *
 * Why not `@effect/platform`'s `Worker`: it serializes requests through a schema
 * per message type; this worker has one message (SQL text and parameters) and
 * answers with rows as they are.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type { Connection } from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import { Context, Effect, type Scope, Stream } from "effect"
import { createRequire } from "node:module"
import { Worker } from "node:worker_threads"

/** Prepared statements the worker keeps, at most. */
const STATEMENT_CACHE = 200

/** CommonJS, evaluated in the worker: `require` resolves the driver by the path it is given. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads")
const Database = require(workerData.driver)
const db = new Database(workerData.filename, { fileMustExist: true })
db.pragma("busy_timeout = 5000")
db.pragma("query_only = ON")
const statements = new Map()
const prepared = (sql) => {
  let statement = statements.get(sql)
  if (statement === undefined) {
    statement = db.prepare(sql)
    if (statements.size >= ${STATEMENT_CACHE}) statements.delete(statements.keys().next().value)
    statements.set(sql, statement)
  }
  return statement
}
parentPort.on("message", ({ id, sql, params, safeIntegers, values }) => {
  try {
    const statement = prepared(sql)
    if (!statement.reader) throw new Error("a read-only connection runs only statements that return rows")
    statement.safeIntegers(safeIntegers)
    statement.raw(values)
    parentPort.postMessage({ id, rows: statement.all(...params) })
  } catch (error) {
    parentPort.postMessage({ id, error: { message: String(error && error.message), code: error && error.code } })
  }
})
`

interface Reply {
  readonly id: number
  readonly rows?: ReadonlyArray<unknown>
  readonly error?: { readonly message: string; readonly code?: string }
}

export interface SqliteReadWorkerOptions {
  /** The database file (not `:memory:`: another connection would not see it). */
  readonly filename: string
  /** better-sqlite3's main file, for the worker to `require` (`loadedDriver()`). */
  readonly driver: string
}

/**
 * The file of the better-sqlite3 this process already loaded (the ledger's client
 * did), so the worker loads the very same driver. Resolving the package by name
 * instead would depend on how this module itself was loaded: as ES modules, or in the
 * CommonJS bundle compiled from its code cache.
 */
export const loadedDriver = (): string | undefined =>
  Object.keys(createRequire(process.execPath).cache).find((file) => /[\\/]better-sqlite3[\\/]lib[\\/]index\.js$/.test(file))

export const make = (options: SqliteReadWorkerOptions): Effect.Effect<SqlClient.SqlClient, never, Scope.Scope> =>
  Effect.gen(function*() {
    const pending = new Map<number, (reply: Reply) => void>()
    let nextId = 0
    let worker: Worker | undefined

    const failAll = (message: string) => {
      for (const [id, resume] of pending) resume({ id, error: { message } })
      pending.clear()
    }
    const start = () => {
      const started = new Worker(WORKER_SOURCE, { eval: true, workerData: { driver: options.driver, filename: options.filename } })
      started.on("message", (reply: Reply) => {
        const resume = pending.get(reply.id)
        pending.delete(reply.id)
        if (pending.size === 0) started.unref()
        resume?.(reply)
      })
      // A thread that died takes its statements with it; the next one starts a new thread.
      started.on("error", (error) => {
        worker = undefined
        failAll(`the SQLite read worker failed: ${error.message}`)
      })
      started.on("exit", () => {
        if (worker === started) worker = undefined
        failAll("the SQLite read worker exited")
      })
      return started
    }
    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        const running = worker
        worker = undefined
        if (running !== undefined) await running.terminate()
      })
    )

    const run = (sql: string, params: ReadonlyArray<unknown>, values: boolean) =>
      Effect.withFiberRuntime<ReadonlyArray<any>, SqlError>((fiber) => {
        const safeIntegers = Context.get(fiber.currentContext, SqlClient.SafeIntegers)
        return Effect.async<ReadonlyArray<any>, SqlError>((resume) => {
          const id = nextId++
          pending.set(id, (reply) =>
            resume(
              reply.error === undefined
                ? Effect.succeed(reply.rows ?? [])
                : Effect.fail(new SqlError({ cause: reply.error, message: `Failed to execute statement: ${reply.error.message}` }))
            ))
          worker ??= start()
          // An idle thread is no reason to keep the process alive (the scope stops it); a statement awaited is.
          worker.ref()
          worker.postMessage({ id, sql, params, safeIntegers, values })
          // Interrupted: the worker still runs the statement; its answer is dropped.
          return Effect.sync(() => pending.delete(id))
        })
      })

    const connection: Connection = {
      execute: (sql, params, transformRows) =>
        transformRows === undefined ? run(sql, params, false) : Effect.map(run(sql, params, false), transformRows),
      executeRaw: (sql, params) => run(sql, params, false),
      executeValues: (sql, params) => run(sql, params, true),
      executeUnprepared: (sql, params, transformRows) =>
        transformRows === undefined ? run(sql, params ?? [], false) : Effect.map(run(sql, params ?? [], false), transformRows),
      executeStream: () => Stream.dieMessage("executeStream is not implemented by the SQLite read worker")
    }
    return yield* SqlClient.make({
      acquirer: Effect.succeed(connection),
      compiler: Statement.makeCompilerSqlite(),
      spanAttributes: [["db.system.name", "sqlite"]]
    }).pipe(Effect.provide(Reactivity.layer))
  })
