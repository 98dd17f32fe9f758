/**
 * The second raw baseline of `npm run bench`: the ledger's own SQLite work written
 * directly on better-sqlite3, without Effect and without the engine.
 *
 * The database is the ledger's real one: `SqlLedger.layerSqliteWith` migrates it and
 * registers the bench's payer and payee (the payee referred by the payer) and funds
 * the payer, then closes it; it is reopened here with the pragmas of
 * `SqlLedger.sqliteClient`. Each transaction then writes, for N lifecycles, what the
 * ledger's two group-commit batches write (`loadWorkingSet`, `writeChanges`): for the
 * creates, the accounts read, the accounts upsert, the escrows upsert, the lock
 * postings and the `created` events; for the releases, the escrows read by id, the
 * accounts read, the accounts and escrows upserts, the payout postings (net, fee,
 * referral shares from the real `split` and default config) and the `released`
 * events. Same SQL text, multi-row statements split into power-of-two chunks and IN
 * lists padded as the ledger does, so the prepared statements are the same few.
 *
 * One difference stays, and is the issue's definition of the baseline: N lifecycles
 * per transaction, so one commit per N, where the ledger commits its creates and its
 * releases as two batches (a release can only be asked for once its create returned).
 */
import Database from "better-sqlite3"
import { Duration, Effect } from "effect"
import { newEscrowId, SystemAccount, type WalletAddress } from "../src/domain/ids.js"
import * as Usdc from "../src/domain/Usdc.js"
import { split } from "../src/domain/FeeSchedule.js"
import { Ledger } from "../src/ledger/Ledger.js"
import * as LedgerConfig from "../src/ledger/LedgerConfig.js"
import * as SqlLedger from "../src/ledger/SqlLedger.js"
import { chunks, padded } from "../src/ledger/sql/statementShapes.js"

/** The parties of every benchmarked lifecycle: the payee referred by the payer, so each release pays a referral share. */
export const benchParties = Effect.gen(function*() {
  const ledger = yield* Ledger
  const payer = yield* ledger.registerAgent({ name: "bench-payer" })
  const payee = yield* ledger.registerAgent({ name: "bench-payee", referralCode: payer.referralCode })
  yield* ledger.deposit(payer.wallet, Usdc.make("100000000"))
  return { payer, payee }
})

/** The terms of every benchmarked escrow. */
export const benchTerms = { amount: Usdc.make("0.01"), description: "bench" } as const

type Row = Record<string, unknown>

/** `INSERT INTO table ("a","b") VALUES (?,?),(?,?)…suffix` as `sql.insert` compiles it, prepared once per row count. */
const multiRowInsert = (db: Database.Database, table: string, columns: ReadonlyArray<string>, suffix = "") => {
  const head = `INSERT INTO ${table} (${columns.map((c) => `"${c}"`).join(",")}) VALUES `
  const tuple = `(${columns.map(() => "?").join(",")})`
  const byRowCount = new Map<number, Database.Statement>()
  return (rows: ReadonlyArray<Row>) => {
    for (const chunk of chunks(rows)) {
      let statement = byRowCount.get(chunk.length)
      if (statement === undefined) {
        statement = db.prepare(head + Array.from({ length: chunk.length }, () => tuple).join(",") + suffix)
        byRowCount.set(chunk.length, statement)
      }
      statement.run(chunk.flatMap((row) => columns.map((column) => row[column])))
    }
  }
}

/** `… WHERE "id" IN (?,…) ORDER BY id` over a padded key list, prepared once per list length; integers read as bigint. */
const selectByIds = (db: Database.Database, select: string) => {
  const byLength = new Map<number, Database.Statement>()
  return (ids: ReadonlyArray<string>): Array<Row> => {
    const keys = padded(ids)
    let statement = byLength.get(keys.length)
    if (statement === undefined) {
      statement = db.prepare(`${select} WHERE "id" IN (${keys.map(() => "?").join(",")}) ORDER BY id`).safeIntegers(true)
      byLength.set(keys.length, statement)
    }
    return statement.all(keys) as Array<Row>
  }
}

const ESCROW_COLUMNS = [
  "id", "payer", "payee", "amount", "released", "fee_paid", "refunded", "status", "description", "metadata", "region",
  "idempotency_key", "mandate_id", "created_at_ms", "expires_at_ms", "settled_at_ms", "version"
]
const POSTING_COLUMNS = ["transfer_id", "leg", "account", "amount", "kind", "escrow_id", "counterparty", "region", "at_ms"]
const EVENT_COLUMNS = ["escrow_id", "seq", "kind", "from_status", "to_status", "amount", "region", "at_ms"]

interface Leg {
  readonly account: string
  readonly amount: bigint
  readonly kind: string
  readonly counterparty: string | null
}

/** What deciding a batch's commands reads (the escrows it loaded by id) and may do: move money, add escrow and event rows. */
interface BatchStep {
  readonly nowMs: number
  readonly loaded: ReadonlyMap<string, Row>
  readonly transfer: (transferId: string, escrowId: string, region: unknown, legs: ReadonlyArray<Leg>) => void
  readonly escrows: Array<Row>
  readonly events: Array<Row>
}

/**
 * Lifecycles per second with `lifecyclesPerTransaction` lifecycles in each
 * transaction, on a ledger database made in `dataDir`. Dies if the postings do not
 * sum to zero or an account's balance is not the sum of its postings.
 */
export const rawLedgerShapeBench = (options: { dataDir: string; lifecyclesPerTransaction: number; seconds: number }) =>
  Effect.gen(function*() {
    const config = LedgerConfig.make()
    const { payer, payee } = yield* Effect.provide(benchParties, SqlLedger.layerSqliteWith({ dataDir: options.dataDir }))
    const filename = SqlLedger.sqliteFilename({ dataDir: options.dataDir })
    const db = new Database(filename)
    db.pragma("journal_mode = WAL")
    db.pragma("synchronous = FULL")
    db.pragma("busy_timeout = 5000")
    db.pragma("foreign_keys = ON")

    // The ledger remembers agent rows (they never change), so its batches read none: read them once here.
    const referrers = new Map<string, WalletAddress | null>()
    for (const agent of db.prepare("SELECT wallet, referrer FROM agents").all() as Array<{ wallet: string; referrer: WalletAddress | null }>) {
      referrers.set(agent.wallet, agent.referrer)
    }
    const referrerChain = (wallet: string): Array<WalletAddress> => {
      const chain: Array<WalletAddress> = []
      let next = referrers.get(wallet) ?? null
      while (next !== null && chain.length < config.fees.referralTiersPpm.length) {
        chain.push(next)
        next = referrers.get(next) ?? null
      }
      return chain
    }
    const payerChain = referrerChain(payer.wallet)
    const payeeChain = referrerChain(payee.wallet)
    const involvedAccounts = [...new Set([payer.wallet, payee.wallet, ...payerChain, ...payeeChain, ...Object.values(SystemAccount)])].sort()

    const selectAccounts = selectByIds(db, "SELECT id, balance FROM accounts")
    const selectEscrows = selectByIds(db, "SELECT * FROM escrows")
    const upsertAccounts = multiRowInsert(db, "accounts", ["id", "balance", "updated_at_ms"], `
            ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, updated_at_ms = excluded.updated_at_ms`)
    const upsertEscrows = multiRowInsert(db, "escrows", ESCROW_COLUMNS, `
            ON CONFLICT (id) DO UPDATE SET released = excluded.released, fee_paid = excluded.fee_paid,
              refunded = excluded.refunded, status = excluded.status, settled_at_ms = excluded.settled_at_ms,
              version = excluded.version`)
    const insertPostings = multiRowInsert(db, "postings", POSTING_COLUMNS)
    const insertEvents = multiRowInsert(db, "escrow_events", EVENT_COLUMNS)

    /**
     * One of the ledger's batches, in its order: read the escrows by id (if any), then
     * the accounts; decide; write accounts, escrows, postings, events.
     */
    const batch = (escrowIds: ReadonlyArray<string>, decide: (step: BatchStep) => void) => {
      const nowMs = Date.now()
      const loaded = new Map(escrowIds.length === 0 ? [] : selectEscrows([...escrowIds].sort()).map((row) => [row.id as string, row]))
      const balances = new Map(selectAccounts(involvedAccounts).map((row) => [row.id as string, row.balance as bigint]))
      const dirtyAccounts = new Set<string>()
      const postings: Array<Row> = []
      const escrows: Array<Row> = []
      const events: Array<Row> = []
      const transfer = (transferId: string, escrowId: string, region: unknown, legs: ReadonlyArray<Leg>) => {
        let leg = 0
        for (const { account, amount, kind, counterparty } of legs) {
          // As the engine: a zero leg is not written.
          if (amount === 0n) continue
          const balance = (balances.get(account) ?? 0n) + amount
          if (balance < 0n) throw new Error(`${transferId} would take ${account} negative`)
          balances.set(account, balance)
          dirtyAccounts.add(account)
          postings.push({ transfer_id: transferId, leg: leg++, account, amount, kind, escrow_id: escrowId, counterparty, region, at_ms: nowMs })
        }
      }
      decide({ nowMs, loaded, transfer, escrows, events })
      upsertAccounts([...dirtyAccounts].sort().map((id) => ({ id, balance: balances.get(id)!, updated_at_ms: nowMs })))
      upsertEscrows(escrows)
      insertPostings(postings)
      insertEvents(events)
    }

    const timeoutMs = Math.ceil(Duration.toMillis(config.defaultEscrowTimeout))
    // db.transaction begins with a plain (deferred) BEGIN, as @effect/sql begins the ledger's batches.
    const lifecycles = db.transaction((count: number) => {
      const ids: Array<string> = []
      batch([], ({ escrows, events, nowMs, transfer }) => {
        for (let i = 0; i < count; i++) {
          const id = newEscrowId(nowMs)
          ids.push(id)
          transfer(`${id}:1`, id, config.region, [
            { account: payer.wallet, amount: -benchTerms.amount, kind: "lock", counterparty: payee.wallet },
            { account: SystemAccount.escrowHolding, amount: benchTerms.amount, kind: "lock", counterparty: null }
          ])
          escrows.push({
            id,
            payer: payer.wallet,
            payee: payee.wallet,
            amount: benchTerms.amount,
            released: 0n,
            fee_paid: 0n,
            refunded: 0n,
            status: "pending",
            description: benchTerms.description,
            metadata: "{}",
            region: config.region,
            idempotency_key: null,
            mandate_id: null,
            created_at_ms: nowMs,
            expires_at_ms: nowMs + timeoutMs,
            settled_at_ms: null,
            version: 1
          })
          events.push({
            escrow_id: id,
            seq: 1,
            kind: "created",
            from_status: null,
            to_status: "pending",
            amount: benchTerms.amount,
            region: config.region,
            at_ms: nowMs
          })
        }
      })
      batch(ids, ({ escrows, events, loaded, nowMs, transfer }) => {
        for (const id of ids) {
          const escrow = loaded.get(id)
          if (escrow?.status !== "pending") throw new Error(`escrow ${id} is not pending`)
          const gross = (escrow.amount as bigint) - (escrow.released as bigint) - (escrow.refunded as bigint)
          const parts = split(config.fees, gross, payerChain, payeeChain)
          const seq = (escrow.version as bigint) + 1n
          transfer(`${id}:${seq}`, id, escrow.region, [
            { account: SystemAccount.escrowHolding, amount: -gross, kind: "payout", counterparty: null },
            { account: payee.wallet, amount: parts.net, kind: "payout", counterparty: payer.wallet },
            { account: SystemAccount.platformFees, amount: parts.platform, kind: "fee", counterparty: null },
            ...parts.shares.map((share) => ({
              account: share.wallet,
              amount: share.amount,
              kind: "referral",
              counterparty: share.side === "payer" ? payer.wallet : payee.wallet
            }))
          ])
          escrows.push({
            ...escrow,
            released: (escrow.released as bigint) + gross,
            fee_paid: (escrow.fee_paid as bigint) + parts.fee,
            status: "released",
            settled_at_ms: nowMs,
            version: seq
          })
          events.push({
            escrow_id: id,
            seq,
            kind: "released",
            from_status: "pending",
            to_status: "released",
            amount: gross,
            region: escrow.region,
            at_ms: nowMs
          })
        }
      })
    })

    const deadline = performance.now() + options.seconds * 1000
    const start = performance.now()
    let done = 0
    while (performance.now() < deadline) {
      lifecycles(options.lifecyclesPerTransaction)
      done += options.lifecyclesPerTransaction
    }
    const perSecond = done / ((performance.now() - start) / 1000)

    const total = db.prepare("SELECT COALESCE(SUM(amount), 0) FROM postings").pluck().safeIntegers(true).get() as bigint
    const postingTotals = new Map(
      (db.prepare("SELECT account, SUM(amount) AS total FROM postings GROUP BY account").safeIntegers(true).all() as Array<{ account: string; total: bigint }>)
        .map((row) => [row.account, row.total])
    )
    const balances = db.prepare("SELECT id, balance FROM accounts").safeIntegers(true).all() as Array<{ id: string; balance: bigint }>
    db.close()
    if (total !== 0n) return yield* Effect.dieMessage(`raw ledger-shape baseline: postings sum to ${total}, not 0`)
    for (const { id, balance } of balances) {
      const expected = postingTotals.get(id) ?? 0n
      if (balance !== expected) return yield* Effect.dieMessage(`raw ledger-shape baseline: ${id} holds ${balance}, its postings sum to ${expected}`)
      postingTotals.delete(id)
    }
    if (postingTotals.size > 0) return yield* Effect.dieMessage(`raw ledger-shape baseline: postings to accounts without a row: ${[...postingTotals.keys()].join(", ")}`)
    return { perSecond, filename }
  })

/** Rows an escrow lifecycle left in a ledger database, to check the raw baseline writes what the ledger writes. */
export const rowsPerLifecycle = (filename: string) => {
  const db = new Database(filename, { readonly: true })
  const count = (query: string) => db.prepare(query).pluck().get() as number
  const escrows = count("SELECT COUNT(*) FROM escrows")
  const unreleased = count("SELECT COUNT(*) FROM escrows WHERE status <> 'released'")
  const postings = count("SELECT COUNT(*) FROM postings WHERE escrow_id IS NOT NULL")
  const events = count("SELECT COUNT(*) FROM escrow_events")
  db.close()
  if (escrows === 0 || unreleased > 0) throw new Error(`${filename}: ${escrows} escrows, ${unreleased} of them not released`)
  return { postings: postings / escrows, events: events / escrows }
}
