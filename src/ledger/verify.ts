/**
 * `ledger verify` as a library call: `Ledger.verify` (every balance recomputed from
 * postings, every invariant checked) run on one consistent snapshot, so a check of
 * a live PostgreSQL ledger is not fooled by writes landing between its queries.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Data, Effect } from "effect"
import { Ledger, type VerifyReport } from "./Ledger.js"

/** The ledger broke an invariant: the operator must look before money moves again. */
export class LedgerVerifyFailed extends Data.TaggedError("LedgerVerifyFailed")<{
  readonly report: VerifyReport
}> {
  override get message() {
    return `ledger verification found ${this.report.violations.length} violation(s)`
  }
}

/**
 * `Ledger.verify` on one snapshot of the database. PostgreSQL: the SQL ledger's
 * verify already reads one snapshot (`dialect.consistentReads`). SQLite: a read
 * transaction here, in case another process is writing the file.
 */
export const verifySnapshot: Effect.Effect<VerifyReport, unknown, Ledger | SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const ledger = yield* Ledger
  return yield* sql.onDialectOrElse({ pg: () => ledger.verify, orElse: () => sql.withTransaction(ledger.verify) })
})

/** Fails with `LedgerVerifyFailed` unless the report is clean. */
export const requireClean = (report: VerifyReport): Effect.Effect<VerifyReport, LedgerVerifyFailed> =>
  report.violations.length === 0 ? Effect.succeed(report) : Effect.fail(new LedgerVerifyFailed({ report }))

/** Human-readable lines: a summary, then one line per violation (at most 1,000 are reported). */
export const formatReport = (where: string, report: VerifyReport): ReadonlyArray<string> => [
  `ledger verify (${where}): ${report.accounts} accounts, ${report.postings} postings, ${report.escrows} escrows: ${
    report.violations.length === 0 ? "OK, every invariant holds" : `${report.violations.length} VIOLATION(S)`
  }`,
  ...report.violations.map((v) => `  ${v.invariant}: ${v.detail}`)
]
