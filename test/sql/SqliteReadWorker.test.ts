/**
 * The read-only SQLite client on a worker thread (src/ledger/sql/SqliteReadWorker.ts),
 * beside a real SQLite file written through the ordinary client: it reads what was
 * committed, keeps 64-bit integers exact, refuses writes, survives a bad
 * statement, and leaves the event loop free while a long query runs, where the
 * ordinary client holds it.
 */
import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as SqliteReadWorker from "../../src/ledger/sql/SqliteReadWorker.js"

const setUp = Effect.gen(function*() {
  const filename = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-read-worker-")), "db.sqlite")
  const context = yield* Layer.build(SqliteClient.layer({ filename }))
  const writer = context.unsafeMap.get(SqlClient.SqlClient.key) as SqlClient.SqlClient
  yield* writer`CREATE TABLE amounts (id INTEGER PRIMARY KEY, micros BIGINT NOT NULL)`
  const reader = yield* SqliteReadWorker.make({ filename, driver: SqliteReadWorker.loadedDriver()! })
  return { writer, reader }
})

/** A query that keeps SQLite busy for a while: a recursive count. */
const slowCount = (sql: SqlClient.SqlClient) =>
  sql<{ n: number }>`WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) SELECT COUNT(*) AS n FROM c`

/** Timer callbacks that ran while `effect` did: none if it held the event loop. */
const ticksDuring = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    let ticks = 0
    const timer = setInterval(() => ticks++, 2)
    // Let the first interval come due, so a blocked loop cannot be mistaken for a young timer.
    yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 5)))
    const before = ticks
    const started = performance.now()
    const value = yield* effect
    const elapsedMs = performance.now() - started
    clearInterval(timer)
    return { value, ticks: ticks - before, elapsedMs }
  })

describe("SqliteReadWorker", () => {
  it.scopedLive("reads what the writer committed, later commits included, with 64-bit integers exact", () =>
    Effect.gen(function*() {
      const { reader, writer } = yield* setUp
      const big = 9_007_199_254_740_993n // 2^53 + 1: not a JavaScript number
      yield* writer`INSERT INTO amounts (id, micros) VALUES (1, ${big})`.pipe(Effect.provideService(SqlClient.SafeIntegers, true))
      const exact = yield* reader<{ micros: bigint }>`SELECT micros FROM amounts WHERE id = 1`.pipe(
        Effect.provideService(SqlClient.SafeIntegers, true)
      )
      expect(exact).toEqual([{ micros: big }])
      // Without SafeIntegers, as on the ledger's own client: a number.
      expect(typeof (yield* reader<{ micros: unknown }>`SELECT micros FROM amounts`)[0]!.micros).toBe("number")

      yield* writer`INSERT INTO amounts (id, micros) VALUES (2, 5)`
      expect((yield* reader<{ n: number }>`SELECT COUNT(*) AS n FROM amounts`)[0]!.n).toBe(2)
    }))

  it.scopedLive("refuses a write and reports a bad statement as a SqlError, then goes on reading", () =>
    Effect.gen(function*() {
      const { reader, writer } = yield* setUp
      yield* writer`INSERT INTO amounts (id, micros) VALUES (1, 7)`
      const write = yield* Effect.flip(reader`INSERT INTO amounts (id, micros) VALUES (2, 8)`)
      expect(write).toBeInstanceOf(SqlError)
      const unknown = yield* Effect.flip(reader`SELECT * FROM no_such_table`)
      expect(unknown).toBeInstanceOf(SqlError)
      expect(unknown.message).toMatch(/no such table/)
      expect(yield* reader<{ micros: number }>`SELECT micros FROM amounts`).toEqual([{ micros: 7 }])
      expect((yield* writer<{ n: number }>`SELECT COUNT(*) AS n FROM amounts`)[0]!.n).toBe(1)
    }))

  it.scopedLive("leaves the event loop free during a long query, where the writer's own connection holds it", () =>
    Effect.gen(function*() {
      const { reader, writer } = yield* setUp
      const onWorker = yield* ticksDuring(slowCount(reader))
      const onLoop = yield* ticksDuring(slowCount(writer))
      expect(onWorker.value).toEqual([{ n: 3_000_000 }])
      expect(onLoop.value).toEqual([{ n: 3_000_000 }])
      // The query takes tens of milliseconds or more either way; only on the worker do timers run meanwhile.
      expect(onLoop.elapsedMs).toBeGreaterThan(20)
      expect(onLoop.ticks).toBe(0)
      expect(onWorker.ticks).toBeGreaterThan(3)
    }))
})
