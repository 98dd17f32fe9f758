/**
 * The group-commit batches' transaction (src/ledger/sql/Transaction.ts) on a real SQLite
 * file: what it commits is there, what fails leaves nothing, a COMMIT that fails
 * is a failure the caller can retry (not a defect), and the connection is usable
 * afterwards in every case.
 */
import { SqlClient } from "@effect/sql"
import { SqlError } from "@effect/sql/SqlError"
import { SqliteClient } from "@effect/sql-sqlite-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { inTransaction } from "../../src/ledger/sql/Transaction.js"

const sqlite = () =>
  SqliteClient.layer({ filename: path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ringmaster-tx-")), "tx.db") })

const setUp = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`PRAGMA foreign_keys = ON`
  yield* sql`CREATE TABLE parents (id INTEGER PRIMARY KEY)`
  // Checked at COMMIT, not per statement: the way to make a COMMIT itself fail.
  yield* sql`CREATE TABLE children (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)`
  return sql
})

const countOf = (sql: SqlClient.SqlClient, table: "parents" | "children") =>
  Effect.map(sql<{ n: number }>`SELECT COUNT(*) AS n FROM ${sql(table)}`, (rows) => rows[0]!.n)

describe("inTransaction", () => {
  it.effect("commits every statement of the body and returns its value", () =>
    Effect.gen(function*() {
      const sql = yield* setUp
      const value = yield* inTransaction(sql, (run) =>
        Effect.gen(function*() {
          yield* run(sql`INSERT INTO parents (id) VALUES (1), (2)`)
          yield* run(sql`INSERT INTO children (id, parent) VALUES (10, 1)`)
          return "done"
        }))
      expect(value).toBe("done")
      expect(yield* countOf(sql, "parents")).toBe(2)
      expect(yield* countOf(sql, "children")).toBe(1)
    }).pipe(Effect.provide(sqlite())))

  it.effect("a body that fails or dies leaves nothing written, and the next transaction works", () =>
    Effect.gen(function*() {
      const sql = yield* setUp
      const failed = yield* Effect.exit(inTransaction(sql, (run) =>
        Effect.zipRight(run(sql`INSERT INTO parents (id) VALUES (1)`), Effect.fail("refused" as const))))
      expect(failed).toStrictEqual(Exit.fail("refused"))
      const died = yield* Effect.exit(inTransaction(sql, (run) =>
        Effect.zipRight(run(sql`INSERT INTO parents (id) VALUES (2)`), Effect.dieMessage("engine invariant broken"))))
      expect(Exit.isFailure(died) && !Exit.isInterrupted(died)).toBe(true)
      expect(yield* countOf(sql, "parents")).toBe(0)

      yield* inTransaction(sql, (run) => run(sql`INSERT INTO parents (id) VALUES (3)`))
      expect(yield* countOf(sql, "parents")).toBe(1)
    }).pipe(Effect.provide(sqlite())))

  it.effect("a COMMIT that fails rolls back and fails with its SqlError, leaving the connection usable", () =>
    Effect.gen(function*() {
      const sql = yield* setUp
      const exit = yield* Effect.exit(inTransaction(sql, (run) =>
        Effect.zipRight(
          run(sql`INSERT INTO parents (id) VALUES (1)`),
          run(sql`INSERT INTO children (id, parent) VALUES (10, 99)`) // no parent 99: refused at COMMIT
        )))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(error).toBeInstanceOf(SqlError)
        expect(String((error as SqlError).cause)).toMatch(/FOREIGN KEY/)
      }
      expect(yield* countOf(sql, "parents")).toBe(0)
      expect(yield* countOf(sql, "children")).toBe(0)

      yield* inTransaction(sql, (run) => run(sql`INSERT INTO parents (id) VALUES (2)`))
      expect(yield* countOf(sql, "parents")).toBe(1)
    }).pipe(Effect.provide(sqlite())))
})
