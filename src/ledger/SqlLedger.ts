/**
 * The ledger on `@effect/sql`: SQLite embedded by default, PostgreSQL for scale-out.
 *
 * Writes use group commit. Commands queue up; one writer fiber takes up to
 * `maxBatchSize` of them, and in ONE transaction loads the rows they touch (row-locked
 * on PostgreSQL), decides each command with the pure rules of `engine.ts`, and writes
 * the results set-based (a handful of multi-row statements per batch, not one per
 * posting). One fsync then commits many escrows. A refused command is decided in
 * memory and writes nothing; a batch whose transaction fails is retried, then split
 * into single-command transactions so one bad command cannot sink the others.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { Clock, Context, Effect, Either, Exit, Layer, Schedule } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { AgentNotFound, EscrowNotFound, type LedgerError, LedgerUnavailable, MandateNotFound } from "../domain/errors.js"
import type { AgentRecord, EscrowRecord, MandateRecord } from "../domain/Escrow.js"
import type { EscrowId, WalletAddress } from "../domain/ids.js"
import { SystemAccount } from "../domain/ids.js"
import type { Usdc } from "../domain/Usdc.js"
import { withSpanWhenTraced } from "../observability/spans.js"
import * as GroupCommit from "./sql/GroupCommit.js"
import { SettlementJournal, type UnsettledEscrow, type UnsettledJournal } from "./SettlementJournal.js"
import { chunks, padded } from "./sql/statementShapes.js"
import { inTransaction } from "./sql/Transaction.js"
import * as Dialect from "./dialect.js"
import { apply, type Command, commandMethods, directKeys, type ResultOf, utcDay, WorkingSet } from "./engine.js"
import { slotOf } from "./idempotency.js"
import { aggregatePostings, checkInvariants } from "./invariants.js"
import {
  type ActivityTotals,
  Ledger,
  LedgerConfig,
  type LedgerConfigShape,
  type LedgerShape,
  type ReferralReport
} from "./Ledger.js"
import * as LedgerConfigLayers from "./LedgerConfig.js"
import * as Migrations from "./migrations/index.js"
import { EscrowTransitions } from "./Transitions.js"

import { big, num, type Row, toAgent, toEscrow, toEvent, toIdempotencyKey, toMandate, usdc } from "./rows.js"
import { BoundedMap } from "../domain/BoundedMap.js"
import { Limits } from "../domain/limits.js"

/** Bounds (TIGER_STYLE): queued commands, batch retries, remembered agent rows. */
const QUEUE_CAPACITY = 16_384
const BATCH_ATTEMPTS = 4
const KNOWN_AGENTS_CAPACITY = 10_000

const unavailable = (message: string, cause?: unknown) =>
  new LedgerUnavailable(cause === undefined ? { message } : { message, cause })

export const make = (config: LedgerConfigShape) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const dialect = Dialect.make(sql)
    const m = dialect.money
    const safe = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provideService(effect, SqlClient.SafeIntegers, true)
    const orUnavailable = <A, R>(effect: Effect.Effect<A, SqlError, R>) =>
      safe(effect).pipe(Effect.mapError((error) => unavailable(`ledger storage failed: ${error.message}`, error.cause)))
    const transitions = yield* Effect.serviceOption(EscrowTransitions)

    /**
     * Agents read from the database, by wallet. An agent row never changes once
     * written, so a row read here stays true; a wallet not found is not remembered
     * (another process may register it). Saves a batch one or two statements, most of
     * its cost when it holds a single command. Bounded: the oldest entry goes first.
     */
    const knownAgents = new BoundedMap<string, AgentRecord>(KNOWN_AGENTS_CAPACITY)
    const rememberAgent = (agent: AgentRecord) => {
      knownAgents.set(agent.wallet, agent)
    }

    // ---- loading a batch's working set -------------------------------------------------

    const loadWorkingSet = (commands: ReadonlyArray<Command>, run: Dialect.Run) =>
      Effect.gen(function*() {
        const ws = new WorkingSet(false)
        const wallets = new Set<string>()
        const escrowIds = new Set<string>()
        const slots = new Map<string, { readonly owner: string; readonly route: string; readonly key: string }>()
        const mandateIds = new Set<string>()
        const codes = new Set<string>()
        const faucetWallets = new Set<string>()
        const lockedWallets = new Set<string>()
        for (const command of commands) {
          const keys = directKeys(command)
          keys.wallets.forEach((w) => wallets.add(w))
          keys.escrowIds.forEach((id) => escrowIds.add(id))
          keys.idempotencySlots.forEach((k) => slots.set(slotOf(k.owner, k.route, k.key), k))
          keys.mandateIds.forEach((id) => mandateIds.add(id))
          keys.codes.forEach((c) => codes.add(c))
          if (command._tag === "ClaimFaucet") faucetWallets.add(command.wallet)
          if (command._tag === "ClaimFaucet" || command._tag === "Deposit") lockedWallets.add(command.wallet)
        }

        const putEscrowRow = (row: Row) => {
          const escrow = toEscrow(row)
          ws.escrows.set(escrow.id, escrow)
          wallets.add(escrow.payer)
          wallets.add(escrow.payee)
          if (escrow.mandateId !== null) mandateIds.add(escrow.mandateId)
        }
        if (slots.size > 0) {
          // By (owner, key) on the primary key; the cross product of the two IN lists
          // may match slots no command asked about, filtered out here. Locked first:
          // a key's row, then its escrow, then mandates and accounts, in every batch.
          const owners = [...new Set([...slots.values()].map((s) => s.owner))].sort()
          const keys = [...new Set([...slots.values()].map((s) => s.key))].sort()
          const rows = yield* run(sql<Row>`SELECT * FROM idempotency_keys WHERE ${sql.in("owner", padded(owners))}
            AND ${sql.in("key", padded(keys))} ORDER BY owner, route, key ${dialect.forUpdate}`)
          for (const row of rows) {
            const record = toIdempotencyKey(row)
            const slot = slotOf(record.owner, record.route, record.key)
            if (!slots.has(slot)) continue
            ws.idempotencyKeys.set(slot, record)
            escrowIds.add(record.escrowId)
          }
          for (const slot of slots.keys()) if (!ws.idempotencyKeys.has(slot)) ws.idempotencyKeys.set(slot, null)
        }
        if (escrowIds.size > 0) {
          const ids = [...escrowIds].sort()
          for (const row of yield* run(sql<Row>`SELECT * FROM escrows WHERE ${sql.in("id", padded(ids))} ORDER BY id ${dialect.forUpdate}`)) {
            putEscrowRow(row)
          }
          for (const id of ids) if (!ws.escrows.has(id)) ws.escrows.set(id, null)
        }
        if (mandateIds.size > 0) {
          const ids = [...mandateIds].sort()
          for (const row of yield* run(sql<Row>`SELECT * FROM mandates WHERE ${sql.in("id", padded(ids))} ORDER BY id ${dialect.forUpdate}`)) {
            const mandate = toMandate(row)
            ws.mandates.set(mandate.id, mandate)
          }
          for (const id of ids) if (!ws.mandates.has(id)) ws.mandates.set(id, null)
        }
        if (codes.size > 0) {
          for (const row of yield* run(sql<Row>`SELECT * FROM agents WHERE ${sql.in("referral_code", padded([...codes]))}`)) {
            const agent = toAgent(row)
            ws.agentsByCode.set(agent.referralCode, agent)
            ws.agents.set(agent.wallet, agent)
          }
          for (const code of codes) if (!ws.agentsByCode.has(code)) ws.agentsByCode.set(code, null)
        }
        // Agents, then their referrers as deep as the fee schedule pays (agent rows never change, so no lock).
        let toLoad = [...wallets].filter((w) => !ws.agents.has(w))
        const accountIds = new Set<string>(wallets)
        for (let level = 0; level <= config.fees.referralTiersPpm.length && toLoad.length > 0; level++) {
          const unknown = toLoad.filter((w) => !knownAgents.has(w))
          const found = new Map<string, AgentRecord>()
          if (unknown.length > 0) {
            for (const row of yield* run(sql<Row>`SELECT * FROM agents WHERE ${sql.in("wallet", padded(unknown))}`)) {
              const agent = toAgent(row)
              found.set(agent.wallet, agent)
              rememberAgent(agent)
            }
          }
          const next: Array<string> = []
          for (const wallet of toLoad) {
            const agent = knownAgents.get(wallet) ?? found.get(wallet) ?? null
            ws.agents.set(wallet, agent)
            if (agent?.referrer) {
              accountIds.add(agent.referrer)
              if (!ws.agents.has(agent.referrer)) next.push(agent.referrer)
            }
          }
          toLoad = level < config.fees.referralTiersPpm.length - 1 ? next : []
        }
        for (const agent of ws.agents.values()) if (agent?.referrer) accountIds.add(agent.referrer)
        for (const system of Object.values(SystemAccount)) accountIds.add(system)
        const sortedAccounts = [...accountIds].sort()
        for (const row of yield* dialect.selectAccountsForUpdate(padded(sortedAccounts), run)) {
          ws.accounts.set(row.id as string, big(row.balance))
        }
        for (const id of sortedAccounts) if (!ws.accounts.has(id)) ws.accounts.set(id, 0n)

        if (faucetWallets.size > 0) {
          const claimed = new Set(
            (yield* run(sql<Row>`SELECT wallet FROM faucet_claims WHERE ${sql.in("wallet", padded([...faucetWallets]))}`)).map((r) => r.wallet as string)
          )
          for (const wallet of faucetWallets) ws.faucetClaimed.set(wallet, claimed.has(wallet))
          const day = utcDay(yield* Clock.currentTimeMillis)
          const rows = yield* run(sql<Row>`SELECT claims FROM faucet_days WHERE day = ${day} ${dialect.forUpdate}`)
          ws.faucetDays.set(day, rows.length > 0 ? num(rows[0]!.claims) : 0)
        }
        if (lockedWallets.size > 0) {
          const rows = yield* run(sql<Row>`SELECT payer, SUM(amount - released - refunded) AS locked FROM escrows
            WHERE status = 'pending' AND ${sql.in("payer", padded([...lockedWallets]))} GROUP BY payer`)
          for (const wallet of lockedWallets) ws.locked.set(wallet, 0n)
          for (const row of rows) ws.locked.set(row.payer as string, big(row.locked))
        }
        return ws
      })

    // ---- writing a batch's changes, set-based ------------------------------------------

    const escrowRow = (e: EscrowRecord) => ({
      id: e.id,
      payer: e.payer,
      payee: e.payee,
      amount: m(e.amount),
      released: m(e.released),
      fee_paid: m(e.feePaid),
      refunded: m(e.refunded),
      status: e.status,
      description: e.description,
      metadata: JSON.stringify(e.metadata),
      region: e.region,
      idempotency_key: e.idempotencyKey,
      mandate_id: e.mandateId,
      created_at_ms: e.createdAtMs,
      expires_at_ms: e.expiresAtMs,
      settled_at_ms: e.settledAtMs,
      version: e.version
    })

    const mandateRow = (x: MandateRecord) => ({
      id: x.id,
      payer: x.payer,
      payee: x.payee,
      max_amount: m(x.maxAmount),
      budget: m(x.budget),
      remaining: m(x.remaining),
      expires_at_ms: x.expiresAtMs,
      max_timeout_ms: x.maxTimeoutMs,
      revoked: x.revoked ? 1 : 0,
      created_at_ms: x.createdAtMs
    })

    const writeChanges = (ws: WorkingSet, nowMs: number, run: Dialect.Run) =>
      Effect.gen(function*() {
        for (const rows of chunks(ws.newAgents)) {
          yield* run(sql`INSERT INTO agents ${
            sql.insert(rows.map((a) => ({
              wallet: a.wallet,
              agent_id: a.agentId,
              name: a.name,
              referral_code: a.referralCode,
              referrer: a.referrer,
              created_at_ms: a.createdAtMs
            })))
          }`)
        }
        const accounts = [...ws.dirtyAccounts].sort().map((id) => ({ id, balance: m(ws.balanceOf(id)), updated_at_ms: nowMs }))
        for (const rows of chunks(accounts)) {
          yield* run(sql`INSERT INTO accounts ${sql.insert(rows)}
            ON CONFLICT (id) DO UPDATE SET balance = excluded.balance, updated_at_ms = excluded.updated_at_ms`)
        }
        const escrows = [...ws.dirtyEscrows].map((id) => escrowRow(ws.escrow(id)!))
        for (const rows of chunks(escrows)) {
          yield* run(sql`INSERT INTO escrows ${sql.insert(rows)}
            ON CONFLICT (id) DO UPDATE SET released = excluded.released, fee_paid = excluded.fee_paid,
              refunded = excluded.refunded, status = excluded.status, settled_at_ms = excluded.settled_at_ms,
              version = excluded.version`)
        }
        const mandates = [...ws.dirtyMandates].map((id) => mandateRow(ws.mandate(id)!))
        for (const rows of chunks(mandates)) {
          yield* run(sql`INSERT INTO mandates ${sql.insert(rows)}
            ON CONFLICT (id) DO UPDATE SET remaining = excluded.remaining, revoked = excluded.revoked`)
        }
        // An expired key's row is replaced: it was read under lock, so deleting it takes
        // no one's live key. A new key is a plain insert: a concurrent batch inserting
        // the same one fails on the primary key and is retried, then sees this one.
        for (const old of ws.replacedKeys) {
          yield* run(sql`DELETE FROM idempotency_keys WHERE owner = ${old.owner} AND route = ${old.route} AND key = ${old.key}
            AND expires_at_ms = ${old.expiresAtMs}`)
        }
        for (const rows of chunks(ws.newKeys)) {
          yield* run(sql`INSERT INTO idempotency_keys ${
            sql.insert(rows.map((k) => ({
              owner: k.owner,
              route: k.route,
              key: k.key,
              request_sha256: k.requestSha256,
              escrow_id: k.escrowId,
              created_at_ms: k.createdAtMs,
              expires_at_ms: k.expiresAtMs
            })))
          }`)
        }
        const legs = new Map<string, number>()
        const postings = ws.postings.map((p) => {
          const leg = legs.get(p.transferId) ?? 0
          legs.set(p.transferId, leg + 1)
          return {
            transfer_id: p.transferId,
            leg,
            account: p.account,
            amount: m(p.amount),
            kind: p.kind,
            escrow_id: p.escrowId,
            counterparty: p.counterparty,
            region: p.region,
            at_ms: p.atMs
          }
        })
        for (const rows of chunks(postings)) yield* run(sql`INSERT INTO postings ${sql.insert(rows)}`)
        const events = ws.events.map((e) => ({
          escrow_id: e.escrowId,
          seq: e.seq,
          kind: e.kind,
          from_status: e.fromStatus,
          to_status: e.toStatus,
          amount: m(e.amount),
          region: e.region,
          at_ms: e.atMs
        }))
        for (const rows of chunks(events)) yield* run(sql`INSERT INTO escrow_events ${sql.insert(rows)}`)
        for (const rows of chunks(ws.claims)) {
          yield* run(sql`INSERT INTO faucet_claims ${
            sql.insert(rows.map((c) => ({ wallet: c.wallet, agent_name: c.agentName, amount: m(c.amount), day: c.day, at_ms: c.atMs })))
          }`)
        }
        for (const day of ws.dirtyFaucetDays) {
          yield* run(sql`INSERT INTO faucet_days ${sql.insert({ day, claims: ws.claimsOn(day) })}
            ON CONFLICT (day) DO UPDATE SET claims = excluded.claims`)
        }
      })

    // ---- the group-commit writer -------------------------------------------------------

    type Outcome = Either.Either<unknown, LedgerError>

    /** One transaction for the whole batch; returns each command's outcome and the escrow events it wrote. */
    const runBatch = (commands: ReadonlyArray<Command>) =>
      inTransaction(sql, (run) =>
        Effect.gen(function*() {
          const nowMs = yield* Clock.currentTimeMillis
          const ws = yield* loadWorkingSet(commands, run)
          // A throw here is a broken invariant in the engine: the batch must not commit.
          const outcomes = commands.map((command): Outcome => apply(ws, command, config, nowMs))
          yield* writeChanges(ws, nowMs, run)
          return { outcomes, events: ws.events }
        })).pipe(withSpanWhenTraced("Ledger.batch", { attributes: { "ledger.commands": commands.length }, captureStackTrace: false }))

    /** The committed batch's transitions, told once (an attempt that rolled back told nothing). */
    const tell = transitions._tag === "Some" ? transitions.value.committed : undefined

    const retryTransient = Schedule.exponential("2 millis").pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(BATCH_ATTEMPTS - 1)),
      Schedule.whileInput((error: SqlError) => dialect.isTransient(error.cause))
    )

    type CommandExit = Exit.Exit<unknown, LedgerError | LedgerUnavailable>

    /** One batch, retried on transient errors; a batch that still fails is split so one bad command sinks only itself. */
    const commitCommands = (commands: ReadonlyArray<Command>): Effect.Effect<ReadonlyArray<CommandExit>> =>
      safe(runBatch(commands)).pipe(
        Effect.retry(retryTransient),
        Effect.exit,
        Effect.flatMap((exit): Effect.Effect<ReadonlyArray<CommandExit>> => {
          if (Exit.isSuccess(exit)) {
            const results = exit.value.outcomes.map((outcome) => Either.isRight(outcome) ? Exit.succeed(outcome.right) : Exit.fail(outcome.left))
            return tell === undefined || exit.value.events.length === 0 ? Effect.succeed(results) : Effect.as(tell(exit.value.events), results)
          }
          if (commands.length > 1) {
            // Isolate: a command that breaks the transaction must not take its batch-mates with it.
            return Effect.map(Effect.forEach(commands, (command) => commitCommands([command])), (outcomes) => outcomes.flat())
          }
          return Effect.logError("ledger command failed", commands[0]!._tag, exit.cause).pipe(
            Effect.as([Exit.fail(unavailable("the ledger could not apply the command", exit.cause))])
          )
        })
      )

    // Group commit (src/ledger/sql/GroupCommit.ts): commands submitted within one event-loop
    // turn go into one batch; on shutdown the queued ones commit, later ones are refused.
    const submitCommand = yield* GroupCommit.make({
      maxBatchSize: config.maxBatchSize,
      queueCapacity: QUEUE_CAPACITY,
      commit: commitCommands,
      closed: () => Exit.fail(unavailable("the ledger is shutting down"))
    })
    const submit = <C extends Command>(command: C) =>
      submitCommand(command) as Effect.Effect<ResultOf<C>, LedgerError | LedgerUnavailable>

    // ---- first start: fund the faucet treasury once ------------------------------------

    const funded = yield* safe(sql<Row>`SELECT value FROM ledger_meta WHERE key = 'treasury_funded'`).pipe(Effect.orDie)
    if (funded.length === 0) {
      yield* inTransaction(sql, (run) =>
        Effect.gen(function*() {
          const nowMs = yield* Clock.currentTimeMillis
          // The meta row's primary key makes a concurrent first start of another instance fail here and retry.
          yield* run(sql`INSERT INTO ledger_meta ${sql.insert({ key: "treasury_funded", value: String(nowMs) })}`)
          const ws = yield* loadWorkingSet([], run)
          apply(ws, { _tag: "FundTreasury", amount: config.faucetTreasuryInitial }, config, nowMs)
          yield* writeChanges(ws, nowMs, run)
        })).pipe(safe, Effect.catchAll((error) =>
        dialect.isTransient(error.cause) ? Effect.void : Effect.die(error)
      ))
    }

    // ---- reads -------------------------------------------------------------------------

    const getEscrow = (id: EscrowId) =>
      orUnavailable(sql<Row>`SELECT * FROM escrows WHERE id = ${id}`).pipe(
        Effect.flatMap((rows) =>
          rows.length === 0 ? Effect.fail(new EscrowNotFound({ escrowId: id })) : Effect.succeed(toEscrow(rows[0]!))
        )
      )

    const getAgent = (wallet: WalletAddress) =>
      orUnavailable(sql<Row>`SELECT * FROM agents WHERE wallet = ${wallet}`).pipe(
        Effect.flatMap((rows) => rows.length === 0 ? Effect.fail(new AgentNotFound({ wallet })) : Effect.succeed(toAgent(rows[0]!)))
      )

    const ledger: LedgerShape = {
      config,
      ...commandMethods(submit),
      expireDue: (limit = 1_000) =>
        Effect.gen(function*() {
          const nowMs = yield* Clock.currentTimeMillis
          const due = yield* orUnavailable(sql<Row>`SELECT id FROM escrows
            WHERE status = 'pending' AND expires_at_ms <= ${nowMs} ORDER BY expires_at_ms LIMIT ${Math.max(1, Math.min(limit, 10_000))}`)
          const expired = yield* Effect.forEach(
            due,
            (row) => submit({ _tag: "ExpireEscrow", id: row.id as EscrowId }),
            { concurrency: "unbounded" }
          )
          return expired.filter((e): e is EscrowRecord => e !== null)
        }).pipe(Effect.catchAll((e) => e._tag === "LedgerUnavailable" ? Effect.fail(e) : Effect.die(e))),

      forgetExpiredKeys: (limit = 10_000) =>
        Effect.gen(function*() {
          const nowMs = yield* Clock.currentTimeMillis
          // At most `limit` rows, oldest first, found through the expiry index.
          const rows = yield* orUnavailable(sql<Row>`DELETE FROM idempotency_keys WHERE (owner, route, key) IN (
            SELECT owner, route, key FROM idempotency_keys WHERE expires_at_ms <= ${nowMs}
            ORDER BY expires_at_ms LIMIT ${Math.max(1, Math.min(limit, 100_000))}) RETURNING owner`)
          return rows.length
        }),

      getEscrow,
      listEscrows: (query) =>
        Effect.gen(function*() {
          const limit = Math.min(Math.max(query.limit ?? Limits.pageSizeDefault, 1), Limits.pageSizeMax)
          const where = [
            query.wallet === undefined ? undefined : sql`(payer = ${query.wallet} OR payee = ${query.wallet})`,
            query.status === undefined ? undefined : sql`status = ${query.status}`,
            query.region === undefined ? undefined : sql`region = ${query.region}`,
            query.cursor === undefined ? undefined : sql`id > ${query.cursor}`
          ].filter((f) => f !== undefined)
          const rows = yield* orUnavailable(
            sql<Row>`SELECT * FROM escrows ${where.length > 0 ? sql`WHERE ${sql.and(where)}` : sql``} ORDER BY id LIMIT ${limit + 1}`
          )
          const escrows = rows.slice(0, limit).map(toEscrow)
          return { escrows, nextCursor: rows.length > limit ? escrows[escrows.length - 1]!.id : null }
        }),
      escrowHistory: (id) =>
        Effect.map(orUnavailable(sql<Row>`SELECT * FROM escrow_events WHERE escrow_id = ${id} ORDER BY seq`), (rows) => rows.map(toEvent)),
      getMandate: (id) =>
        orUnavailable(sql<Row>`SELECT * FROM mandates WHERE id = ${id}`).pipe(
          Effect.flatMap((rows) =>
            rows.length === 0 ? Effect.fail(new MandateNotFound({ mandateId: id })) : Effect.succeed(toMandate(rows[0]!))
          )
        ),
      findLiveMandate: (payer, payee) =>
        Effect.gen(function*() {
          const nowMs = yield* Clock.currentTimeMillis
          const rows = yield* orUnavailable(sql<Row>`SELECT * FROM mandates
            WHERE payer = ${payer} AND payee = ${payee} AND revoked = 0 AND (expires_at_ms IS NULL OR expires_at_ms > ${nowMs})
            ORDER BY id DESC LIMIT 1`)
          return rows.length === 0 ? null : toMandate(rows[0]!)
        }),
      getAgent,
      balance: (wallet) =>
        Effect.gen(function*() {
          const [account, locked] = yield* orUnavailable(Effect.all([
            sql<Row>`SELECT balance FROM accounts WHERE id = ${wallet}`,
            sql<Row>`SELECT COALESCE(SUM(amount - released - refunded), 0) AS locked FROM escrows
              WHERE payer = ${wallet} AND status = 'pending'`
          ]))
          return {
            wallet,
            available: usdc(account[0]?.balance ?? 0n),
            locked: usdc(locked[0]?.locked ?? 0n)
          }
        }),
      systemBalance: (account) =>
        Effect.map(orUnavailable(sql<Row>`SELECT balance FROM accounts WHERE id = ${account}`), (rows) => big(rows[0]?.balance ?? 0n)),
      referrals: (wallet) =>
        Effect.gen(function*() {
          const agent = yield* getAgent(wallet)
          const [referredRows, earnedRows] = yield* orUnavailable(Effect.all([
            sql<Row>`SELECT * FROM agents WHERE referrer = ${wallet} ORDER BY agent_id`,
            sql<Row>`SELECT counterparty, region, SUM(amount) AS earned FROM postings
              WHERE account = ${wallet} AND kind = 'referral' GROUP BY counterparty, region`
          ]))
          const byCounterparty = new Map<string, bigint>()
          const byRegion: Record<string, Usdc> = {}
          let earned = 0n
          for (const row of earnedRows) {
            const amount = big(row.earned)
            earned += amount
            byRegion[row.region as string] = usdc((byRegion[row.region as string] ?? 0n) + amount)
            const counterparty = row.counterparty as string | null
            if (counterparty !== null) byCounterparty.set(counterparty, (byCounterparty.get(counterparty) ?? 0n) + amount)
          }
          const referred = referredRows.map(toAgent).map((a) => ({ agent: a, earned: usdc(byCounterparty.get(a.wallet) ?? 0n) }))
          return { agent, referred, earned: usdc(earned), byRegion } satisfies ReferralReport
        }),
      activity: (wallet) =>
        Effect.gen(function*() {
          const [paid, received, referral] = yield* orUnavailable(Effect.all([
            sql<Row>`SELECT region, SUM(released) AS spent FROM escrows WHERE payer = ${wallet} GROUP BY region`,
            sql<Row>`SELECT region, SUM(released - fee_paid) AS revenue, SUM(fee_paid) AS fees FROM escrows
              WHERE payee = ${wallet} GROUP BY region`,
            sql<Row>`SELECT region, SUM(amount) AS income FROM postings WHERE account = ${wallet} AND kind = 'referral' GROUP BY region`
          ]))
          const regions = new Map<string, { spent: bigint; revenue: bigint; feesPaid: bigint; referralIncome: bigint }>()
          const at = (region: unknown) => {
            const key = region as string
            let t = regions.get(key)
            if (t === undefined) regions.set(key, (t = { spent: 0n, revenue: 0n, feesPaid: 0n, referralIncome: 0n }))
            return t
          }
          for (const row of paid) at(row.region).spent += big(row.spent)
          for (const row of received) {
            at(row.region).revenue += big(row.revenue)
            at(row.region).feesPaid += big(row.fees)
          }
          for (const row of referral) at(row.region).referralIncome += big(row.income)
          const total = { spent: 0n, revenue: 0n, feesPaid: 0n, referralIncome: 0n }
          const byRegion: Record<string, ActivityTotals> = {}
          for (const [region, t] of regions) {
            total.spent += t.spent
            total.revenue += t.revenue
            total.feesPaid += t.feesPaid
            total.referralIncome += t.referralIncome
            if (t.spent + t.revenue + t.feesPaid + t.referralIncome > 0n) {
              byRegion[region] = { spent: usdc(t.spent), revenue: usdc(t.revenue), feesPaid: usdc(t.feesPaid), referralIncome: usdc(t.referralIncome) }
            }
          }
          return {
            wallet,
            spent: usdc(total.spent),
            revenue: usdc(total.revenue),
            feesPaid: usdc(total.feesPaid),
            referralIncome: usdc(total.referralIncome),
            byRegion
          }
        }),
      verify: Effect.gen(function*() {
        // Aggregated in SQL so a large ledger is checked without loading every posting.
        const [accounts, postingTotals, unbalanced, legs, escrows, mandates, postingCount] = yield* orUnavailable(dialect.consistentReads(Effect.all([
          sql<Row>`SELECT id, balance FROM accounts`,
          sql<Row>`SELECT account, SUM(amount) AS total FROM postings GROUP BY account`,
          sql<Row>`SELECT transfer_id, SUM(amount) AS total FROM postings GROUP BY transfer_id HAVING SUM(amount) <> 0`,
          sql<Row>`SELECT escrow_id, account, kind, SUM(amount) AS total FROM postings
            WHERE escrow_id IS NOT NULL GROUP BY escrow_id, account, kind`,
          sql<Row>`SELECT * FROM escrows`,
          sql<Row>`SELECT * FROM mandates`,
          sql<Row>`SELECT COUNT(*) AS n FROM postings`
        ])))
        const aggregates = aggregatePostings([])
        for (const row of postingTotals) aggregates.accountTotals.set(row.account as string, big(row.total))
        for (const row of unbalanced) aggregates.transferTotals.set(row.transfer_id as string, big(row.total))
        for (const row of legs) {
          aggregates.addEscrowLeg(row.escrow_id as string, row.account as string, row.kind as string, big(row.total))
        }
        const balances = new Map(accounts.map((row) => [row.id as string, big(row.balance)]))
        return {
          accounts: accounts.length,
          postings: num(postingCount[0]!.n),
          escrows: escrows.length,
          violations: checkInvariants({ balances, aggregates, escrows: escrows.map(toEscrow), mandates: mandates.map(toMandate) })
        }
      })
    }

    const journal: UnsettledJournal = {
      record: (entry: UnsettledEscrow) =>
        safe(sql`INSERT INTO unsettled_escrows ${
          sql.insert({ escrow_id: entry.escrowId, intent: entry.intent, error: entry.error.slice(0, 2_000), attempts: entry.attempts, at_ms: entry.atMs })
        } ON CONFLICT (escrow_id) DO UPDATE SET intent = excluded.intent, error = excluded.error,
          attempts = excluded.attempts, at_ms = excluded.at_ms`).pipe(
          Effect.catchAll((error) =>
            // The journal shares the ledger's storage; if both are down, the log line and the escrow's deadline remain.
            Effect.logError("could not journal an unsettled escrow", { escrowId: entry.escrowId, error: error.message })
          )
        ),
      list: safe(sql<Row>`SELECT * FROM unsettled_escrows ORDER BY at_ms`).pipe(
        Effect.map((rows) =>
          rows.map((r): UnsettledEscrow => ({
            escrowId: r.escrow_id as EscrowId,
            intent: r.intent as "release" | "cancel",
            error: r.error as string,
            attempts: num(r.attempts),
            atMs: num(r.at_ms)
          }))
        ),
        Effect.orDie
      ),
      markSettled: (id) => safe(sql`DELETE FROM unsettled_escrows WHERE escrow_id = ${id}`).pipe(Effect.asVoid, Effect.orDie)
    }

    return { ledger, journal, dialect }
  })

/** The SQL ledger over a provided `SqlClient` (schema migrated first), with its durable settlement journal. */
export const layer: Layer.Layer<
  Ledger | SettlementJournal,
  SqlError | Migrations.MigrationError,
  SqlClient.SqlClient | LedgerConfig
> = Layer.scopedContext(
  Effect.gen(function*() {
    yield* Migrations.run
    const { ledger, journal } = yield* make(yield* LedgerConfig)
    return Context.make(Ledger, ledger).pipe(Context.add(SettlementJournal, journal))
  })
)

export interface SqliteOptions {
  /** The directory holding `ledger.db` (created if missing). */
  readonly dataDir?: string | undefined
  /** Or an explicit database file. */
  readonly filename?: string | undefined
  /** `synchronous` pragma: FULL (default) fsyncs every commit; NORMAL is faster and may lose the last commits on power loss. */
  readonly synchronous?: "FULL" | "NORMAL" | undefined
}

export const sqliteFilename = (options: SqliteOptions) =>
  options.filename ?? path.join(options.dataDir ?? "./data", "ledger.db")

/** A SQLite client with the ledger's pragmas: WAL, durable commits, a busy timeout for other processes. */
export const sqliteClient = (options: SqliteOptions) =>
  Layer.unwrapEffect(
    Effect.sync(() => {
      const filename = sqliteFilename(options)
      fs.mkdirSync(path.dirname(filename), { recursive: true })
      const client = SqliteClient.layer({ filename })
      const pragmas = Layer.effectDiscard(
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql.unsafe(`PRAGMA synchronous = ${options.synchronous ?? "FULL"}`)
          yield* sql.unsafe("PRAGMA busy_timeout = 5000")
          yield* sql.unsafe("PRAGMA foreign_keys = ON")
        })
      )
      return Layer.provideMerge(pragmas, client)
    })
  )

/** Self-contained embedded ledger: a SQLite file in `dataDir`, migrated, with config from `LedgerConfig`. */
export const layerSqlite = (
  options: SqliteOptions = {}
): Layer.Layer<Ledger | SettlementJournal | SqlClient.SqlClient, never, LedgerConfig> =>
  Layer.provideMerge(layer, sqliteClient(options)).pipe(Layer.orDie)

/** Convenience for examples and tests: the embedded ledger with explicit settings. */
export const layerSqliteWith = (options: SqliteOptions = {}, config: Partial<LedgerConfigShape> = {}) =>
  Layer.provide(layerSqlite(options), LedgerConfigLayers.layer(config))
