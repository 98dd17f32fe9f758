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
 * every request.
 */
import { Migrator, SqlClient } from "@effect/sql"
import { SqliteClient } from "@effect/sql-sqlite-node"
import * as fs from "node:fs"
import * as path from "node:path"
import { Context, Effect, Layer } from "effect"
import type { Metadata } from "../domain/Escrow.js"
import type { EscrowId, MandateId, WalletAddress } from "../domain/ids.js"
import type { Usdc } from "../domain/Usdc.js"

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

/** The journal over the provided `SqlClient` (migrated first). Storage failures are defects: a journal that cannot be written must not let money move. */
export const make = (bootId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: "service_migrations" })
    const journal: JournalShape = {
      bootId,
      open: (e) =>
        sql`INSERT INTO service_escrows ${
          sql.insert({
            payer: e.payer,
            idempotency_key: e.idempotencyKey,
            payee: e.payee,
            amount_micros: e.amount,
            description: e.description,
            metadata: JSON.stringify(e.metadata),
            mandate_id: e.mandateId,
            timeout_ms: e.timeoutMs,
            region: e.region,
            status: "open",
            escrow_id: null,
            boot_id: bootId,
            opened_at_ms: e.openedAtMs,
            deadline_ms: e.deadlineMs,
            settled_at_ms: null
          })
        } ON CONFLICT (payer, idempotency_key) DO UPDATE SET status = 'open', boot_id = excluded.boot_id,
          opened_at_ms = excluded.opened_at_ms, deadline_ms = excluded.deadline_ms, settled_at_ms = NULL`.pipe(Effect.asVoid, Effect.orDie),
      settle: (payer, key, status, escrowId, atMs) =>
        sql`UPDATE service_escrows SET status = ${status}, escrow_id = COALESCE(${escrowId}, escrow_id), settled_at_ms = ${atMs}
          WHERE payer = ${payer} AND idempotency_key = ${key}`.pipe(Effect.asVoid, Effect.orDie),
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
  Layer.effect(Journal, make(options.bootId)).pipe(
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
