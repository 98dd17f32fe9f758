/**
 * The service's local journal and audit trail: one row per escrow this process
 * opens, in `DATA_DIR/service.db` (SQLite), in both settlement modes.
 *
 * A row is written `open` BEFORE the escrow is created (with the idempotency key
 * the create will carry and the exact terms), and marked `released` /
 * `cancelled` / `expired` / `refused` once it settles. A process that dies in
 * between leaves the row `open`; the next start replays the create with the same
 * key (which returns the escrow if it exists, since keys are idempotent) and
 * cancels it (see Recovery.ts). Settled rows stay as the audit trail for
 * `AUDIT_RETENTION_DAYS`.
 *
 * Durability: WAL with `synchronous = NORMAL`. A commit survives the process being
 * killed (it is in the OS's page cache); only a power loss can drop the last
 * commits, and then the escrow's own deadline (task timeout + 60 s) still refunds
 * it through the ledger's expiry. That keeps the journal off the fsync path of
 * every request. Writes are group-committed: one transaction per event-loop turn's
 * writes, each caller resumed once its own is committed (see `make`).
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Exit, Layer } from "effect"
import type { Metadata } from "../domain/Escrow.js"
import type { EscrowId, MandateId, WalletAddress } from "../domain/ids.js"
import type { Usdc } from "../domain/Usdc.js"
import * as GroupCommit from "../ledger/sql/GroupCommit.js"
import { inTransaction } from "../ledger/sql/Transaction.js"

export type JournalStatus = "open" | "released" | "cancelled" | "expired" | "refused"

export interface JournalEntry {
  readonly payer: WalletAddress
  readonly idempotencyKey: string
  readonly payee: WalletAddress
  readonly amount: Usdc
  readonly description: string
  readonly metadata: Metadata
  readonly mandateId: MandateId | null
  readonly timeoutMs: number | null
  readonly region: string
  readonly status: JournalStatus
  readonly escrowId: EscrowId | null
  /** The process (boot) that opened it: rows of a dead boot are what recovery reconciles. */
  readonly bootId: string
  readonly openedAtMs: number
  /** After this the ledger refunds the escrow by itself. */
  readonly deadlineMs: number
  readonly settledAtMs: number | null
}

export interface JournalShape {
  readonly bootId: string
  /** Before the create: durable once this succeeds. */
  readonly open: (entry: Omit<JournalEntry, "status" | "escrowId" | "bootId" | "settledAtMs">) => Effect.Effect<void>
  /** The escrow reached a terminal state (or was refused: it never existed). */
  readonly settle: (
    payer: WalletAddress,
    idempotencyKey: string,
    status: Exclude<JournalStatus, "open">,
    escrowId: EscrowId | null,
    atMs: number
  ) => Effect.Effect<void>
  /** Rows still open, oldest first (at most `limit`); `otherBootsOnly` leaves this process's own in-flight rows out. */
  readonly listOpen: (options: { readonly limit: number; readonly otherBootsOnly: boolean }) => Effect.Effect<ReadonlyArray<JournalEntry>>
  /** The audit trail, newest first. */
  readonly recent: (limit: number) => Effect.Effect<ReadonlyArray<JournalEntry>>
  /** Deletes settled rows older than `beforeMs`; returns how many. */
  readonly prune: (beforeMs: number) => Effect.Effect<number>
}

export class Journal extends Context.Tag("ringmaster/service/Journal")<Journal, JournalShape>() {}

const migration = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE service_escrows (
    payer TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    payee TEXT NOT NULL,
    amount_micros INTEGER NOT NULL,
    description TEXT NOT NULL,
    metadata TEXT NOT NULL,
    mandate_id TEXT,
    timeout_ms INTEGER,
    region TEXT NOT NULL,
    status TEXT NOT NULL,
    escrow_id TEXT,
    boot_id TEXT NOT NULL,
    opened_at_ms INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,
    settled_at_ms INTEGER,
    PRIMARY KEY (payer, idempotency_key)
  )`
  yield* sql`CREATE INDEX service_escrows_open ON service_escrows (opened_at_ms) WHERE status = 'open'`
  yield* sql`CREATE INDEX service_escrows_settled ON service_escrows (settled_at_ms) WHERE status <> 'open'`
})

export const migrations = { "0001_service_escrows": migration }

type Row = Record<string, unknown>

const toEntry = (r: Row): JournalEntry => ({
  payer: r.payer as WalletAddress,
  idempotencyKey: r.idempotency_key as string,
  payee: r.payee as WalletAddress,
  amount: BigInt(r.amount_micros as number | bigint) as Usdc,
  description: r.description as string,
  metadata: JSON.parse(r.metadata as string) as Metadata,
  mandateId: (r.mandate_id ?? null) as MandateId | null,
  timeoutMs: r.timeout_ms === null || r.timeout_ms === undefined ? null : Number(r.timeout_ms),
  region: r.region as string,
  status: r.status as JournalStatus,
  escrowId: (r.escrow_id ?? null) as EscrowId | null,
  bootId: r.boot_id as string,
  openedAtMs: Number(r.opened_at_ms),
  deadlineMs: Number(r.deadline_ms),
  settledAtMs: r.settled_at_ms === null || r.settled_at_ms === undefined ? null : Number(r.settled_at_ms)
})

/** One row write, as the SQL text and its parameters: run on a batch's transaction connection. */
interface Write {
  readonly text: string
  readonly params: ReadonlyArray<unknown>
}

const OPEN_ROW = `INSERT INTO service_escrows (payer, idempotency_key, payee, amount_micros, description, metadata,
    mandate_id, timeout_ms, region, status, escrow_id, boot_id, opened_at_ms, deadline_ms, settled_at_ms)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', NULL, ?, ?, ?, NULL)
  ON CONFLICT (payer, idempotency_key) DO UPDATE SET status = 'open', boot_id = excluded.boot_id,
    opened_at_ms = excluded.opened_at_ms, deadline_ms = excluded.deadline_ms, settled_at_ms = NULL`
const SETTLE_ROW = `UPDATE service_escrows SET status = ?, escrow_id = COALESCE(?, escrow_id), settled_at_ms = ?
  WHERE payer = ? AND idempotency_key = ?`

/** Bounds (TIGER_STYLE) of the journal's group commit. */
export const JOURNAL_BATCH_MAX = 512
export const JOURNAL_QUEUE_CAPACITY = 16_384

/**
 * The journal over the provided `SqlClient` (migrated first). Storage failures are
 * defects: a journal that cannot be written must not let money move.
 *
 * `open` and `settle` are group-committed (src/ledger/sql/GroupCommit.ts): the writes of one
 * event-loop turn go into one transaction, each caller resuming once it committed, as
 * durable as a transaction of its own (WAL, synchronous=NORMAL). One transaction per
 * write cost a transaction's statements (BEGIN, COMMIT) and, through the client, a span
 * and a Scope per statement: measurable at every paid request, twice. A batch whose
 * transaction fails is retried one write per transaction, so one bad write cannot sink
 * its batch-mates; a write that fails alone dies, as it did before batching.
 */
export const make = (bootId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: "service_migrations" })

    const inOneTransaction = (writes: ReadonlyArray<Write>) =>
      // Straight to the transaction's connection: through the client each statement
      // would also open a span and a Scope to acquire the connection it already holds.
      inTransaction(sql, (_run, connection) =>
        Effect.forEach(writes, (write) => connection.execute(write.text, write.params, undefined), { discard: true })).pipe(
          Effect.orDie,
          Effect.exit
        )

    const write = yield* GroupCommit.make<Write, void, never>({
      maxBatchSize: JOURNAL_BATCH_MAX,
      queueCapacity: JOURNAL_QUEUE_CAPACITY,
      commit: (writes) =>
        Effect.flatMap(inOneTransaction(writes), (exit) =>
          Exit.isSuccess(exit) || writes.length === 1
            ? Effect.succeed(writes.map(() => exit))
            : Effect.forEach(writes, (one) => inOneTransaction([one]))),
      closed: () => Exit.die(new Error("the service journal is closed"))
    })

    const journal: JournalShape = {
      bootId,
      open: (e) =>
        write({
          text: OPEN_ROW,
          params: [
            e.payer,
            e.idempotencyKey,
            e.payee,
            e.amount,
            e.description,
            JSON.stringify(e.metadata),
            e.mandateId,
            e.timeoutMs,
            e.region,
            bootId,
            e.openedAtMs,
            e.deadlineMs
          ]
        }),
      settle: (payer, key, status, escrowId, atMs) => write({ text: SETTLE_ROW, params: [status, escrowId, atMs, payer, key] }),
      listOpen: ({ limit, otherBootsOnly }) =>
        (otherBootsOnly
          ? sql<Row>`SELECT * FROM service_escrows WHERE status = 'open' AND boot_id <> ${bootId} ORDER BY opened_at_ms LIMIT ${limit}`
          : sql<Row>`SELECT * FROM service_escrows WHERE status = 'open' ORDER BY opened_at_ms LIMIT ${limit}`).pipe(
            Effect.map((rows) => rows.map(toEntry)),
            Effect.orDie
          ),
      recent: (limit) =>
        sql<Row>`SELECT * FROM service_escrows ORDER BY opened_at_ms DESC LIMIT ${limit}`.pipe(
          Effect.map((rows) => rows.map(toEntry)),
          Effect.orDie
        ),
      prune: (beforeMs) =>
        sql<Row>`DELETE FROM service_escrows WHERE status <> 'open' AND settled_at_ms < ${beforeMs} RETURNING payer`.pipe(
          Effect.map((rows) => rows.length),
          Effect.orDie
        )
    }
    return journal
  })

export const journalFilename = (dataDir: string) => path.join(dataDir, "service.db")

/** `DATA_DIR/service.db`, its own SQLite connection (not the ledger's: different durability, no contention with group commit). */
export const layerSqlite = (options: { readonly dataDir: string; readonly bootId: string }): Layer.Layer<Journal> =>
  Layer.scoped(Journal, make(options.bootId)).pipe(
    Layer.provide(
      Layer.unwrapEffect(
        Effect.sync(() => {
          const filename = journalFilename(options.dataDir)
          fs.mkdirSync(path.dirname(filename), { recursive: true })
          return Layer.effectDiscard(
            Effect.flatMap(SqlClient.SqlClient, (sql) =>
              Effect.all([sql.unsafe("PRAGMA synchronous = NORMAL"), sql.unsafe("PRAGMA busy_timeout = 5000")]))
          ).pipe(Layer.provideMerge(SqliteClient.layer({ filename })))
        })
      )
    ),
    Layer.orDie
  )
