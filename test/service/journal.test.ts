/**
 * The journal's group commit on a real SQLite file: concurrent writes each commit
 * exactly once, each caller resumes only once its row is committed (visible to
 * another connection), they survive closing and reopening the file, closing commits
 * what is queued, and a failing write dies alone without sinking its batch-mates.
 */
import { describe, expect, it } from "@effect/vitest"
import Database from "better-sqlite3"
import { Cause, Context, Effect, Exit, Layer, Scope } from "effect"
import type { WalletAddress } from "../../src/domain/ids.js"
import * as Usdc from "../../src/domain/Usdc.js"
import * as Journal from "../../src/service/Journal.js"
import { tempDir } from "./support.js"

const payer = `0x${"a".repeat(40)}` as WalletAddress
const payee = `0x${"b".repeat(40)}` as WalletAddress

const entry = (key: string) => ({
  payer,
  idempotencyKey: key,
  payee,
  amount: Usdc.make("0.001"),
  description: "Inference (iad)",
  metadata: { fly_region: "iad", route: "inference" },
  mandateId: null,
  timeoutMs: 31_000,
  region: "iad",
  openedAtMs: 1_000,
  deadlineMs: 32_000
})

/** The journal in its own scope, so a test can close it (and with it the SQLite file) when it chooses. */
const openJournal = (dataDir: string, bootId: string) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const journal = Context.get(yield* Layer.buildWithScope(Journal.layerSqlite({ dataDir, bootId }), scope), Journal.Journal)
    return { journal, close: Scope.close(scope, Exit.void) }
  })

/** Rows as another process would see them: committed ones only. */
const committedRows = (dataDir: string) => {
  const db = new Database(Journal.journalFilename(dataDir), { readonly: true })
  try {
    return db.prepare("SELECT idempotency_key, status, escrow_id FROM service_escrows ORDER BY idempotency_key").all() as Array<
      { idempotency_key: string; status: string; escrow_id: string | null }
    >
  } finally {
    db.close()
  }
}

const keys = (n: number, prefix = "k") => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(5, "0")}`)

describe("journal group commit", () => {
  it.live("many concurrent opens and settles commit exactly once each, each visible when its caller resumes, and survive a reopen", () =>
    Effect.gen(function*() {
      const dataDir = tempDir()
      const { close, journal } = yield* openJournal(dataDir, "boot_1")
      // More than one batch's worth, all submitted in the same turn.
      const all = keys(Journal.JOURNAL_BATCH_MAX * 2 + 37)
      const reader = new Database(Journal.journalFilename(dataDir), { readonly: true })
      const committed = reader.prepare("SELECT 1 FROM service_escrows WHERE payer = ? AND idempotency_key = ?")
      const visibleOnResume = yield* Effect.forEach(
        all,
        (key) => Effect.map(journal.open(entry(key)), () => committed.get(payer, key) !== undefined),
        { concurrency: "unbounded" }
      )
      reader.close()
      expect(visibleOnResume.every((visible) => visible)).toBe(true)
      yield* Effect.forEach(
        all.filter((_, i) => i % 2 === 0),
        (key) => journal.settle(payer, key, "released", `esc_${key}` as never, 2_000),
        { concurrency: "unbounded", discard: true }
      )
      yield* close

      const rows = committedRows(dataDir)
      expect(rows.map((r) => r.idempotency_key)).toEqual(all)
      expect(rows.filter((r) => r.status === "released").length).toBe(Math.ceil(all.length / 2))
      expect(rows.filter((r) => r.status === "open").length).toBe(Math.floor(all.length / 2))
      expect(rows.find((r) => r.idempotency_key === all[0])!.escrow_id).toBe(`esc_${all[0]}`)

      const reopened = yield* openJournal(dataDir, "boot_2")
      const open = yield* reopened.journal.listOpen({ limit: 10_000, otherBootsOnly: true })
      expect(open.map((e) => e.idempotencyKey).sort()).toEqual(all.filter((_, i) => i % 2 === 1))
      expect(open[0]).toMatchObject({ amount: Usdc.make("0.001"), metadata: { fly_region: "iad", route: "inference" }, bootId: "boot_1" })
      yield* reopened.close
    }))

  it.live("closing commits the writes still queued; a write after close dies", () =>
    Effect.gen(function*() {
      const dataDir = tempDir()
      const { close, journal } = yield* openJournal(dataDir, "boot_1")
      const all = keys(300)
      // Submitted, not awaited: they sit in the queue when the close begins.
      const fibers = yield* Effect.forEach(all, (key) => Effect.fork(journal.open(entry(key))))
      yield* Effect.yieldNow()
      yield* close
      expect(committedRows(dataDir).map((r) => r.idempotency_key)).toEqual(all)
      for (const fiber of fibers) expect(Exit.isSuccess(yield* fiber.await)).toBe(true)

      const late = yield* Effect.exit(journal.open(entry("late")))
      expect(Exit.isFailure(late) && Cause.isDie(late.cause)).toBe(true)
      expect(committedRows(dataDir).some((r) => r.idempotency_key === "late")).toBe(false)
    }))

  it.live("a write that fails dies alone: its batch-mates commit", () =>
    Effect.gen(function*() {
      const dataDir = tempDir()
      const { close, journal } = yield* openJournal(dataDir, "boot_1")
      const good = keys(50)
      // NOT NULL on description: SQLite refuses this row inside the batch's transaction.
      const bad = { ...entry("bad"), description: null as unknown as string }
      const [goodExits, badExit] = yield* Effect.all([
        Effect.forEach(good, (key) => Effect.exit(journal.open(entry(key))), { concurrency: "unbounded" }),
        Effect.exit(journal.open(bad))
      ], { concurrency: "unbounded" })
      expect(goodExits.every(Exit.isSuccess)).toBe(true)
      expect(Exit.isFailure(badExit) && Cause.isDie(badExit.cause)).toBe(true)
      expect(committedRows(dataDir).map((r) => r.idempotency_key)).toEqual(good)
      yield* close
    }))
})
