/**
 * Postings out for accounting, as CSV or JSON lines, page by page (keyset on the
 * postings key, never the whole table in memory) from one consistent snapshot:
 * the export is an exact point-in-time copy whose amounts sum to zero.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { Effect } from "effect"
import * as Usdc from "../domain/Usdc.js"
import * as Dialect from "./dialect.js"

export type ExportFormat = "csv" | "jsonl"

export interface PostingExportRow {
  readonly transferId: string
  readonly leg: number
  readonly atMs: number
  readonly account: string
  readonly kind: string
  readonly amountMicros: bigint
  readonly escrowId: string | null
  readonly counterparty: string | null
  readonly region: string
}

export const PAGE_SIZE_MAX = 10_000

/**
 * The exported columns, in order: the CSV header and the JSON line keys are both
 * these names, so the two formats cannot drift apart. Amounts are strings
 * (6-place decimal and integer micros): no JSON consumer rounds them through a float.
 */
const columns: ReadonlyArray<readonly [name: string, value: (r: PostingExportRow) => string | number | null]> = [
  ["transfer_id", (r) => r.transferId],
  ["leg", (r) => r.leg],
  ["at", (r) => new Date(r.atMs).toISOString()],
  ["at_ms", (r) => r.atMs],
  ["account", (r) => r.account],
  ["kind", (r) => r.kind],
  ["amount_usdc", (r) => Usdc.format(r.amountMicros)],
  ["amount_micros", (r) => r.amountMicros.toString()],
  ["escrow_id", (r) => r.escrowId],
  ["counterparty", (r) => r.counterparty],
  ["region", (r) => r.region]
]

export const csvHeader = columns.map(([name]) => name).join(",")

/** RFC 4180: quote a field holding a comma, quote or line break (regions come from client metadata). */
const csvField = (value: string | number | null): string => {
  if (value === null) return ""
  const text = String(value)
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

export const toCsvLine = (r: PostingExportRow): string => columns.map(([, value]) => csvField(value(r))).join(",")

/** One JSON object per posting, keyed as the CSV header. */
export const toJsonLine = (r: PostingExportRow): string =>
  JSON.stringify(Object.fromEntries(columns.map(([name, value]) => [name, value(r)])))

type Row = Record<string, unknown>
const toRow = (r: Row): PostingExportRow => ({
  transferId: r.transfer_id as string,
  leg: Number(r.leg),
  atMs: Number(r.at_ms),
  account: r.account as string,
  kind: r.kind as string,
  amountMicros: typeof r.amount === "bigint" ? r.amount : BigInt(r.amount as string | number),
  escrowId: (r.escrow_id as string | null) ?? null,
  counterparty: (r.counterparty as string | null) ?? null,
  region: r.region as string
})

export interface ExportSummary {
  readonly rows: number
  readonly pages: number
  /** Σ amounts over the exported postings: 0 for a whole, consistent ledger. */
  readonly sumMicros: bigint
}

/**
 * Writes every posting, ordered by (transfer id, leg), through `write` (one call per
 * page: text ending in a newline). `write` should apply back-pressure (resolve when
 * the sink has taken the text), so memory stays bounded by one page.
 */
export const exportPostings = <E, R>(options: {
  readonly format: ExportFormat
  readonly pageSize?: number | undefined
  readonly write: (text: string) => Effect.Effect<void, E, R>
}) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const pageSize = Math.max(1, Math.min(options.pageSize ?? 1_000, PAGE_SIZE_MAX))
    const line = options.format === "csv" ? toCsvLine : toJsonLine
    if (options.format === "csv") yield* options.write(`${csvHeader}\n`)
    let after: { transferId: string; leg: number } | null = null
    let rows = 0
    let pages = 0
    let sumMicros = 0n
    // Bounded: each page advances the key strictly, so the loop ends after ⌈rows / pageSize⌉ pages.
    while (true) {
      const page: ReadonlyArray<Row> = yield* sql<Row>`SELECT transfer_id, leg, at_ms, account, kind, amount, escrow_id, counterparty, region
        FROM postings ${after === null ? sql`` : sql`WHERE (transfer_id, leg) > (${after.transferId}, ${after.leg})`}
        ORDER BY transfer_id, leg LIMIT ${pageSize}`
      if (page.length === 0) break
      const parsed = page.map(toRow)
      pages++
      rows += parsed.length
      for (const r of parsed) sumMicros += r.amountMicros
      yield* options.write(parsed.map(line).join("\n") + "\n")
      const last = parsed[parsed.length - 1]!
      after = { transferId: last.transferId, leg: last.leg }
      if (page.length < pageSize) break
    }
    return { rows, pages, sumMicros } satisfies ExportSummary
  }).pipe(
    Effect.provideService(SqlClient.SafeIntegers, true),
    Dialect.snapshot
  )
